"""The links in every reminder and the pages behind them: tokens nobody can forge, an opt-out
that only a deliberate POST performs (never a mail scanner's GET), RFC 8058 one-click, and
disputes and feedback recorded, in the customer's language, on both engines."""

from __future__ import annotations

import datetime as dt
import os
import stat
import threading

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from receivables.collection import links
from receivables.collection.links import (
    feedback_url,
    link_secret,
    opt_out_url,
    reminder_of,
    token_for,
)
from receivables.collection.selfservice import (
    MAX_MESSAGE_LENGTH,
    opt_out,
    page_context,
    record_feedback,
)
from receivables.config import ConfigError, Settings
from receivables.warehouse.schema import customer_feedback, suppressions
from tests.signing import add_customer, add_reminder, plugin_module, utc

NOW = dt.datetime(2026, 11, 28, 2, 30, tzinfo=dt.UTC)


@pytest.fixture
def settings(home, monkeypatch) -> Settings:
    """Settings of a fresh home, the link secret made there on first use."""
    monkeypatch.delenv(links.SECRET_ENV, raising=False)
    monkeypatch.setenv("RECEIVABLES_PUBLIC_URL", "https://pay.example.com/")
    return Settings.from_env()


@pytest.fixture
def client(settings, engine, db_url, monkeypatch):
    """The plugin's app on this test's warehouse."""
    monkeypatch.setenv("RECEIVABLES_DB_URL", db_url)
    plugin = plugin_module()
    with TestClient(plugin.app) as test_client:
        yield test_client
    plugin.dispose_engines()


def suppressed(engine) -> dict[str, tuple[str, str]]:
    with engine.connect() as conn:
        return {
            r.address: (r.reason, r.source) for r in conn.execute(sa.select(suppressions)).all()
        }


def feedback_rows(engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(customer_feedback).order_by(customer_feedback.c.feedback_id))
        return [r._asdict() for r in rows]


def path(url: str) -> str:
    """The app's own path of a public link (Airflow mounts the app under /receivables)."""
    return url.removeprefix("https://pay.example.com/receivables")


# --- links -------------------------------------------------------------------------------------


def test_a_token_names_its_reminder_and_nothing_else(settings):
    token = token_for(settings, 42)

    assert token.startswith("42.")
    assert len(token.split(".")[1]) == links.TAG_LENGTH
    assert reminder_of(settings, token) == 42
    assert token_for(settings, 42) == token  # stable: the same link in every resend
    assert reminder_of(settings, token_for(settings, 43)) == 43
    assert opt_out_url(settings, 42) == f"https://pay.example.com/receivables/preferences/{token}"
    assert feedback_url(settings, 42) == f"https://pay.example.com/receivables/feedback/{token}"


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: "43." + t.split(".")[1],  # another reminder's id with this tag
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # one character of the tag changed
        lambda t: t[:-1],  # cut short
        lambda t: t + "A",
        lambda t: "042." + t.split(".")[1],  # the same id written differently
        lambda t: "0." + t.split(".")[1],
        lambda t: t.split(".")[0],
        lambda t: "",
        lambda t: "٤٢." + t.split(".")[1],  # Arabic-Indic digits are digits to str.isdigit
        lambda t: t.replace(".", "é"),
        lambda t: "9" * 200 + "." + t.split(".")[1],
    ],
)
def test_a_forged_or_tampered_token_names_no_reminder(settings, forge):
    assert reminder_of(settings, forge(token_for(settings, 42))) is None


def test_the_secret_is_made_once_private_and_an_environment_secret_wins(settings, monkeypatch):
    token = token_for(settings, 7)
    secret_file = settings.home / "link-secret"

    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert len(secret_file.read_text().strip()) == 64  # 32 random bytes, hex
    assert token_for(settings, 7) == token  # read back, not made again
    assert [p.name for p in settings.home.iterdir() if "link-secret" in p.name] == ["link-secret"]

    monkeypatch.setenv(links.SECRET_ENV, "s" * 40)
    assert reminder_of(settings, token) is None  # another secret: the old links are not its
    assert reminder_of(settings, token_for(settings, 7)) == 7
    monkeypatch.setenv(links.SECRET_ENV, "short")
    with pytest.raises(ConfigError, match="too short"):
        token_for(settings, 7)


def test_processes_racing_to_make_the_secret_agree_on_one(settings):
    start = threading.Barrier(8)
    secrets: list[bytes] = []

    def make():
        start.wait()
        secrets.append(link_secret(settings))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(secrets) == 8
    assert len(set(secrets)) == 1
    assert secrets[0] == (settings.home / "link-secret").read_bytes().strip()
    assert sorted(os.listdir(settings.home)) == ["inbox", "link-secret"]  # no leftovers


def test_a_damaged_secret_file_is_refused_not_replaced(settings):
    (settings.home / "link-secret").write_text("abc\n")

    with pytest.raises(ConfigError, match="fewer than 32 characters"):
        token_for(settings, 1)
    assert (settings.home / "link-secret").read_text() == "abc\n"


# --- the opt-out page ------------------------------------------------------------------------


def test_get_shows_the_opt_out_page_and_never_opts_out(client, settings, engine):
    add_customer(engine, name="<b>Acme & Co</b>", email="alex@example.com; ap@example.com")
    rid = add_reminder(engine, recipients="Alex@Example.com")
    url = path(opt_out_url(settings, rid))

    for _ in range(3):  # a mail scanner, a preview, the customer
        page = client.get(url)
        assert page.status_code == 200
    assert client.head(url).status_code in (200, 405)

    assert suppressed(engine) == {}
    assert page.headers["content-type"].startswith("text/html")
    assert "Dear &lt;b&gt;Acme &amp; Co&lt;/b&gt;," in page.text  # escaped
    assert '<form method="post">' in page.text
    assert "Stop email reminders" in page.text
    assert "does not cancel or change any amount owed" in page.text
    assert "27 November 2026" in page.text or "November 27, 2026" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "<script" not in page.text
    assert "http" not in page.text.split("<body>")[1]  # nothing fetched from elsewhere


def test_post_opts_out_every_address_of_the_customer(client, settings, engine):
    add_customer(engine, email="alex@example.com; AP@example.com")
    rid = add_reminder(engine, recipients="Alex@Example.com;billing@example.com")
    url = path(opt_out_url(settings, rid))

    answer = client.post(url)

    assert answer.status_code == 200
    assert "You have opted out" in answer.text
    assert suppressed(engine) == {
        "alex@example.com": ("opt_out", "self_service"),
        "ap@example.com": ("opt_out", "self_service"),
        "billing@example.com": ("opt_out", "self_service"),
    }
    assert client.post(url).status_code == 200  # again: nothing new, nothing broken
    assert len(suppressed(engine)) == 3
    again = client.get(url)
    assert "You have opted out" in again.text
    assert "Stop email reminders" not in again.text


def test_rfc_8058_one_click_opts_out(client, settings, engine):
    rid = add_reminder(engine, recipients="alex@example.com")

    answer = client.post(path(opt_out_url(settings, rid)), data={"List-Unsubscribe": "One-Click"})

    assert answer.status_code == 200
    assert suppressed(engine) == {"alex@example.com": ("opt_out", "self_service")}


def test_an_opt_out_keeps_an_earlier_suppression_as_it_was(engine):
    rid = add_reminder(engine, recipients="alex@example.com")
    with engine.begin() as conn:
        conn.execute(
            suppressions.insert().values(
                address="alex@example.com",
                reason="bounce",
                source="webhook",
                since=NOW - dt.timedelta(days=3),
                sg_event_id="e1",
            )
        )

    assert opt_out(engine, rid, NOW) == 1

    assert suppressed(engine) == {"alex@example.com": ("bounce", "webhook")}
    assert opt_out(engine, rid + 1, NOW) is None


def test_a_forged_token_or_an_unknown_reminder_gets_the_not_found_page(client, settings, engine):
    rid = add_reminder(engine, recipients="alex@example.com")
    token = token_for(settings, rid)
    forged = f"{rid}.{'A' * links.TAG_LENGTH}"
    unknown = token_for(settings, rid + 1)  # genuine, but no such reminder

    for token_ in (forged, unknown, token.upper(), "..", "%00"):
        for page in ("preferences", "feedback"):
            assert client.get(f"/{page}/{token_}").status_code == 404, (page, token_)
            answer = client.post(f"/{page}/{token_}", data={"kind": "dispute", "message": "x"})
            assert answer.status_code == 404, (page, token_)
    assert "Link not valid" in client.get(f"/preferences/{forged}").text
    assert suppressed(engine) == {}
    assert feedback_rows(engine) == []


def test_pages_speak_the_customers_language(client, settings, engine):
    add_customer(engine, name="示例客户", locale="zh-CN")
    rid = add_reminder(engine, locale="zh-CN")

    preferences = client.get(path(opt_out_url(settings, rid)))
    feedback = client.get(path(feedback_url(settings, rid)))
    done = client.post(path(opt_out_url(settings, rid)))

    assert '<html lang="zh-CN">' in preferences.text
    assert "尊敬的示例客户：" in preferences.text
    assert "停止邮件提醒" in preferences.text
    assert "2026年11月27日" in preferences.text
    assert "应收账款管理部" in preferences.text  # the team, from the strategy
    assert "我对本提醒中的金额或发票有异议" in feedback.text
    assert "已退订邮件提醒" in done.text


# --- disputes and feedback -------------------------------------------------------------------


def test_a_dispute_is_recorded_and_the_customer_told_reminders_pause(client, settings, engine):
    add_customer(engine)
    rid = add_reminder(engine)
    url = path(feedback_url(settings, rid))

    form = client.get(url)
    answer = client.post(
        url, data={"kind": "dispute", "message": "  Invoice I1 was paid on 2 May.\r\nRef 88  "}
    )

    assert form.status_code == 200
    assert 'name="message"' in form.text
    assert 'value="dispute"' in form.text
    assert answer.status_code == 200
    assert "We will not send you reminders while we look into it" in answer.text
    [row] = feedback_rows(engine)
    assert row["customer_id"] == "C1"
    assert row["reminder_id"] == rid
    assert (row["kind"], row["status"]) == ("dispute", "open")
    assert row["message"] == "Invoice I1 was paid on 2 May.\nRef 88"
    assert utc(row["received_at"]) <= dt.datetime.now(dt.UTC)
    # the form now says the dispute is being looked into
    assert "We are looking into a dispute you raised" in client.get(url).text
    # a reload of the result page posts the same again: recorded once
    client.post(url, data={"kind": "dispute", "message": "Invoice I1 was paid on 2 May.\nRef 88"})
    assert len(feedback_rows(engine)) == 1


def test_feedback_without_a_message_or_a_kind_is_asked_for_again(client, settings, engine):
    rid = add_reminder(engine)
    url = path(feedback_url(settings, rid))

    empty = client.post(url, data={"kind": "feedback", "message": " \x00\t\n "})
    no_kind = client.post(url, data={"message": "<script>alert(1)</script>"})
    bad_kind = client.post(url, data={"kind": "refund", "message": "hello"})

    assert empty.status_code == 400
    assert "Please write your message." in empty.text
    assert no_kind.status_code == 400
    assert "Please choose what your message is about." in no_kind.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in no_kind.text  # kept, escaped
    assert "<script>" not in no_kind.text
    assert bad_kind.status_code == 400
    assert feedback_rows(engine) == []
    ok = client.post(url, data={"kind": "feedback", "message": "Please call me."})
    assert "We have received your message" in ok.text
    assert [r["kind"] for r in feedback_rows(engine)] == ["feedback"]


def test_a_form_post_over_64_kb_is_refused(client, settings, engine):
    rid = add_reminder(engine)

    answer = client.post(
        path(feedback_url(settings, rid)), data={"kind": "feedback", "message": "x" * 70_000}
    )

    assert answer.status_code == 413
    assert feedback_rows(engine) == []


def test_record_feedback_cleans_and_bounds_the_message(engine):
    rid = add_reminder(engine)
    hostile = "\u202eevil\u202c\x00 ok\x1b[31m\u2028next" + "y" * 5000

    record_feedback(engine, rid, "feedback", hostile, NOW)

    [row] = feedback_rows(engine)
    assert row["message"].startswith("evil ok[31m\nnexty")
    assert len(row["message"]) == MAX_MESSAGE_LENGTH
    with pytest.raises(ValueError, match="empty"):
        record_feedback(engine, rid, "dispute", "\u202e \x07", NOW)
    with pytest.raises(ValueError, match="kind"):
        record_feedback(engine, rid, "complaint", "hello", NOW)
    with pytest.raises(LookupError):
        record_feedback(engine, rid + 1, "dispute", "hello", NOW)
    with pytest.raises(ValueError, match="timezone"):
        record_feedback(engine, rid, "dispute", "hello", dt.datetime(2026, 11, 28))


def test_page_context_tells_the_pages_what_they_need(engine):
    add_customer(engine, name="Acme Trading", email="alex@example.com")
    rid = add_reminder(engine, stage="final_notice", locale="en-GB")

    context = page_context(engine, rid)

    assert (context.customer_name, context.locale, context.stage) == (
        "Acme Trading",
        "en",
        "final_notice",
    )
    assert (context.opted_out, context.disputing) == (False, False)
    opt_out(engine, rid, NOW)
    record_feedback(engine, rid, "dispute", "not mine", NOW)
    assert (page_context(engine, rid).opted_out, page_context(engine, rid).disputing) == (
        True,
        True,
    )
    assert page_context(engine, rid + 1) is None
    orphan = add_reminder(engine, customer_id="GONE", locale="zh-CN")
    assert page_context(engine, orphan).customer_name is None
    assert page_context(engine, orphan).locale == "zh-CN"
