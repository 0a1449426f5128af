"""The *Receivables* page as a person sees it: a real ``airflow api-server`` with the project's
plugin over a warehouse the pipeline filled (the sample ledger, ``receivables run`` for three
days, so reminders, final notices and legal cases exist), opened in headless Chromium (Debian's
``chromium``, driven by Playwright) — refused before Airflow's login, shown after it, alone and
inside the Airflow UI. The figures on the page must be those ``receivables run`` printed for the
same day. Screenshots go to ``var/test-artifacts/``."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from receivables.sample import generate_sample

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ARTIFACTS = REPO / "var" / "test-artifacts"
#: The first run loads the ledger and sends the first reminders, the second the final notices,
#: the third (10 days later) proposes legal cases; none is the first of a month (no model,
#: monthly or quarterly report: a shorter run).
DAYS = ("2025-06-03", "2025-06-10", "2025-06-20")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(),
    reason="needs Debian's chromium (apt-get install chromium) for the headless browser test",
)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RECEIVABLES"))}
    env.update({"PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", **extra})
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """A home whose warehouse the pipeline filled; the summary ``receivables run`` printed for
    the last day."""
    home = tmp_path_factory.mktemp("dashboard") / "var"
    env = _clean_env(RECEIVABLES_HOME=str(home))

    def cli(*args: str) -> str:
        done = subprocess.run(
            [str(BIN / "receivables"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, f"receivables {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    cli("init")
    generate_sample(home / "inbox", 100, dt.date.fromisoformat(DAYS[-1]), seed=7, defects=0.002)
    summaries = [cli("run", "--as-of", day) for day in DAYS]
    return home, summaries[-1]


@pytest.fixture(scope="module")
def api_server(ran, tmp_path_factory):
    """``airflow api-server`` (one worker) with the plugin, reading that warehouse; the base URL
    and the password of its user ``ops`` (role viewer, Airflow's simple auth manager)."""
    home, _ = ran
    airflow_home = tmp_path_factory.mktemp("airflow-api")
    port = _free_port()
    env = _clean_env(
        AIRFLOW_HOME=str(airflow_home),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{airflow_home / 'airflow.db'}",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="ops:viewer",
        RECEIVABLES_HOME=str(home),
    )
    subprocess.run(
        [str(BIN / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True
    )
    log = airflow_home / "api-server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "airflow"), "api-server", "-H", "127.0.0.1", "-p", str(port), "-w", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    "airflow api-server exited:\n" + log.read_text(errors="replace")[-4000:]
                )
            try:
                with urllib.request.urlopen(f"{base}/receivables/icon.svg", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("airflow api-server did not answer:\n" + log.read_text()[-4000:])
            time.sleep(2)
        passwords = airflow_home / "simple_auth_manager_passwords.json.generated"
        yield base, json.loads(passwords.read_text(encoding="utf-8"))["ops"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium refuses root otherwise
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            yield chromium
        finally:
            chromium.close()


def _figures(summary: str) -> dict[str, str]:
    """What ``receivables run`` printed for the day: the CNY totals, warnings, legal cases."""
    totals = re.search(
        r"all in CNY at the rates of (\S+): outstanding ([\d,.]+), overdue ([\d,.]+) \(([\d.]+)%\)",
        summary,
    )
    assert totals, summary
    line = re.search(r"^  warnings: (.+)$", summary, re.MULTILINE)
    assert line, summary
    warnings = {
        severity: count
        for count, severity in re.findall(r"(\d+) (critical|high|medium|low)", line.group(1))
    }
    legal = re.search(r"all cases by status: (.+)", summary)
    assert legal, summary
    cases = dict(re.findall(r"(\w+) (\d+)", legal.group(1)))
    return {
        "day": totals.group(1),
        "outstanding": totals.group(2),
        "overdue": totals.group(3),
        "share": totals.group(4),
        "warnings": warnings,
        "cases": cases,
    }


def _text(page_or_frame) -> str:
    return re.sub(r"\s+", " ", page_or_frame.locator("body").inner_text())


def test_the_receivables_page_behind_airflows_login_in_chromium(ran, api_server, browser):
    _home, summary = ran
    base, password = api_server
    expected = _figures(summary)
    assert expected["day"] == DAYS[-1]
    assert expected["cases"], "the third day should have proposed legal cases"
    assert expected["warnings"], "the day should have risk warnings"
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()

    # without a login: Airflow's login page, not the figures; a script gets 401
    page.goto(f"{base}/receivables/dashboard")
    page.wait_for_selector("input[name=username]", timeout=60_000)
    assert "/auth/login" in page.url
    assert expected["outstanding"] not in page.content()
    refused = context.request.get(f"{base}/receivables/dashboard", fail_on_status_code=False)
    assert refused.status == 401
    assert expected["outstanding"] not in refused.text()

    # log in as a real user through Airflow's own login form: back to the page
    page.fill("input[name=username]", "ops")
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/receivables/dashboard", timeout=60_000)
    text = _text(page)
    assert f"Receivables as of {DAYS[-1]}" in text
    # the same figures as receivables run printed: the totals row and the cards
    assert re.search(
        rf"All in CNY [\d,]+ [\d,]+ {expected['outstanding']} {expected['overdue']} "
        rf"{expected['share']} %",
        text,
    ), text
    assert f"{expected['share']} % of outstanding" in text
    for severity, count in expected["warnings"].items():
        assert f"{count} {severity}" in text
    for status, count in expected["cases"].items():
        assert re.search(rf"{status.replace('_', ' ')} {count} [A-Z]{{3}} ", text), status
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot of the Receivables page: {shot}")

    # the same page inside the Airflow UI, under its navigation bar
    page.goto(f"{base}/plugin/receivables")
    frame = page.frame_locator("iframe[title=Receivables]")
    frame.locator("h1").wait_for(timeout=60_000)
    assert f"as of {DAYS[-1]}" in frame.locator("h1").inner_text()
    assert expected["outstanding"] in frame.locator("body").inner_text()
    in_ui = ARTIFACTS / "dashboard-in-airflow.png"
    page.screenshot(path=str(in_ui))
    print(f"screenshot inside the Airflow UI: {in_ui}")

    # logged out (the cookie gone), the page refuses again
    context.clear_cookies()
    page.goto(f"{base}/receivables/dashboard")
    page.wait_for_selector("input[name=username]", timeout=60_000)
    assert expected["outstanding"] not in page.content()
    context.close()
