"""The ``receivables`` command as a user runs it: a fresh home, the contract's commands."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).with_name("receivables")


def cli(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RECEIVABLES"))}
    clean.update({"RECEIVABLES_HOME": str(home), **env})
    return subprocess.run(
        [str(BIN), *args], capture_output=True, text=True, env=clean, check=False, timeout=600
    )


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """One full CLI session: init, sample (with defects), run, exports."""
    home = tmp_path_factory.mktemp("cli") / "var"
    steps = {
        "init": cli("init", home=home),
        "sample": cli(
            "sample",
            "--out",
            str(home / "inbox"),
            "--customers",
            "40",
            "--as-of",
            "2025-06-30",
            "--seed",
            "9",
            "--defects",
            "0.01",
            home=home,
        ),
        "run": cli("run", "--as-of", "2025-06-30", home=home),
        "aging": cli(
            "export", "aging", "--as-of", "2025-06-30", "--out", str(home / "aging.csv"), home=home
        ),
        "rejects": cli(
            "export",
            "rejects",
            "--as-of",
            "2025-06-30",
            "--out",
            str(home / "rejects.csv"),
            home=home,
        ),
        **{
            name: cli(
                "export",
                name,
                "--as-of",
                "2025-06-30",
                "--out",
                str(home / f"{name}.csv"),
                home=home,
            )
            for name in ("scores", "warnings", "reminders", "worklist", "legal_cases")
        },
    }
    return home, steps


def test_contract_commands_succeed(ran):
    _home, steps = ran
    for name, done in steps.items():
        assert done.returncode == 0, f"{name}: {done.stdout}\n{done.stderr}"
    assert "schema empty -> " in steps["init"].stdout
    assert "40 customers" in steps["sample"].stdout
    out = steps["run"].stdout
    assert "✓ ledger_ingest" in out
    assert "✓ receivables_risk" in out
    assert "Receivables as of 2025-06-30" in out
    assert "quarantined" in out
    assert "data docs" in out
    assert "credit grades (the rules scorecard" in out
    assert "provisions (IFRS 9 ECL): CNY" in out
    assert "✓ collection_reminders" in out
    assert "reminders: " in out
    assert "sent (via .eml files in the outbox)" in out
    assert "✓ legal_escalation" in out
    assert "legal cases: 0 proposed today" in out


def test_exports_have_the_contract_columns(ran):
    home, _steps = ran
    with (home / "aging.csv").open(encoding="utf-8") as f:
        aging = list(csv.DictReader(f))
    assert list(aging[0])[:10] == [
        "as_of_date",
        "invoice_id",
        "customer_id",
        "currency",
        "amount",
        "outstanding",
        "due_date",
        "days_past_due",
        "bucket",
        "risk_class",
    ]
    assert {r["as_of_date"] for r in aging} == {"2025-06-30"}
    assert all(float(r["outstanding"]) > 0 for r in aging)
    with (home / "rejects.csv").open(encoding="utf-8") as f:
        rejects = list(csv.DictReader(f))
    assert list(rejects[0])[:6] == ["file", "row_number", "record_id", "column", "value", "reason"]
    assert all(r["reason"] for r in rejects)
    assert {r["file"] for r in rejects} <= {
        "fx_rates.csv",
        "collectors.csv",
        "customers.csv",
        "invoices.csv",
        "payments.csv",
    }


def test_scores_and_warnings_exports(ran):
    home, _steps = ran
    with (home / "scores.csv").open(encoding="utf-8") as f:
        scores = list(csv.DictReader(f))
    assert list(scores[0])[:4] == ["customer_id", "score", "grade", "reasons"]
    assert {s["grade"] for s in scores} <= set("ABCDE")
    assert all(s["reasons"] for s in scores)
    assert len({s["customer_id"] for s in scores}) == len(scores) > 0
    with (home / "warnings.csv").open(encoding="utf-8") as f:
        warnings = list(csv.DictReader(f))
    assert list(warnings[0])[:4] == ["customer_id", "kind", "severity", "message"]


def test_the_reminders_export_and_preview(ran):
    home, _steps = ran
    with (home / "reminders.csv").open(encoding="utf-8") as f:
        reminders = list(csv.DictReader(f))
    assert list(reminders[0])[:6] == [
        "customer_id",
        "stage",
        "status",
        "reason",
        "provider_message_id",
        "send_at",
    ]
    assert {r["status"] for r in reminders} <= {"sent", "refused", "failed", "pending"}
    assert "sent" in {r["status"] for r in reminders}
    for r in reminders:
        if r["status"] == "refused":
            assert r["reason"].split(":")[0] in r["rule"]
        assert r["send_at"].endswith("Z")
    sent = next(r for r in reminders if r["status"] == "sent")
    shown = cli(
        "preview",
        sent["customer_id"],
        "--as-of",
        "2025-06-30",
        "--html",
        str(home / "p.html"),
        home=home,
    )
    assert shown.returncode == 0, shown.stderr
    assert "already planned: sent" in shown.stdout
    assert "subject: " in shown.stdout
    assert "/receivables/preferences/" in shown.stdout
    assert "<html" in (home / "p.html").read_text(encoding="utf-8").lower()
    unknown = cli("preview", "NOBODY\x1b[31m", "--as-of", "2025-06-30", home=home)
    assert unknown.returncode == 1
    assert "no customer" in unknown.stderr
    assert "\x1b" not in unknown.stderr
    with (home / "worklist.csv").open(encoding="utf-8") as f:
        assert list(csv.DictReader(f).fieldnames or [])[:4] == [
            "planned_on",
            "customer_id",
            "kind",
            "cause",
        ]
    with (home / "legal_cases.csv").open(encoding="utf-8") as f:
        assert list(csv.DictReader(f).fieldnames or [])[:5] == [
            "case_id",
            "customer_id",
            "opened_on",
            "amount",
            "status",
        ]


def test_legal_commands_refuse_clearly(ran):
    home, _steps = ran
    missing = cli("legal", "approve", "LC-NOPE", home=home)
    assert missing.returncode == 1
    assert "no legal case LC-NOPE" in missing.stderr
    bad = cli("legal", "update", "LC-NOPE", "recovered", "--amount", "12abc", home=home)
    assert bad.returncode == 1
    assert "is not a number" in bad.stderr
    for amount in ("1e400", "NaN", "12.345", "-Infinity"):
        odd = cli("legal", "update", "LC-NOPE", "settled", "--amount", amount, home=home)
        assert odd.returncode == 1, amount
        assert "Traceback" not in odd.stderr
    assert cli("legal", "show", "LC-NOPE", home=home).returncode == 1
    future = cli("legal", "reject", "LC-NOPE", "--on", "2999-01-01", home=home)
    assert future.returncode == 1
    assert "is in the future" in future.stderr


def test_a_promise_to_pay_pauses_the_preview(ran):
    home, _steps = ran
    with (home / "aging.csv").open(encoding="utf-8") as f:
        customer = next(r["customer_id"] for r in csv.DictReader(f) if int(r["days_past_due"]) > 0)
    recorded = cli("promise", customer, "--pay-by", "2025-07-10", "--on", "2025-06-29", home=home)
    assert recorded.returncode == 0, recorded.stderr
    assert "reminders pause until then" in recorded.stdout
    refused = cli("promise", customer, "--pay-by", "2025-06-01", "--on", "2025-06-29", home=home)
    assert refused.returncode == 1
    assert "before the promise" in refused.stderr
    assert cli("promise", "NOBODY", "--pay-by", "2025-07-10", home=home).returncode == 1
    assert cli("resolve-dispute", "999999", home=home).returncode == 1


def test_bad_arguments_are_refused_clearly(tmp_path):
    before = cli("run", "--as-of", "1999-12-31", home=tmp_path)
    assert before.returncode == 2
    assert "earliest supported date" in before.stderr
    not_a_date = cli("run", "--as-of", "2025-02-30", home=tmp_path)
    assert not_a_date.returncode == 2
    assert "expected YYYY-MM-DD" in not_a_date.stderr
    no_warehouse = cli(
        "export",
        "aging",
        "--as-of",
        "2025-06-30",
        "--out",
        str(tmp_path / "a.csv"),
        home=tmp_path / "nothing",
    )
    assert no_warehouse.returncode == 1
    assert "run `receivables init`" in no_warehouse.stderr
    unknown = cli("export", "nonsense", "--out", str(tmp_path / "a.csv"), home=tmp_path / "x")
    assert unknown.returncode == 1


def test_a_failed_run_exits_non_zero(tmp_path):
    home = tmp_path / "var"
    assert cli("init", home=home).returncode == 0
    (home / "inbox" / "customers.csv").write_text("customer_id,name\nC1,A\n", encoding="utf-8")
    broken = cli(
        "run",
        "--as-of",
        "2025-06-30",
        home=home,
        RECEIVABLES_DB_URL="postgresql://nobody@127.0.0.1:1/none",
    )
    assert broken.returncode == 1
    assert "✗" in broken.stderr or "Error" in broken.stderr
