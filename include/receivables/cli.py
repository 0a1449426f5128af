"""The ``receivables`` command (docs/contract.md §5): init, sample, run, export, airflow.

``run`` drives the real DAGs through Airflow (``DAG.test()``), never a second code path.
Airflow itself is imported only by the commands that need it, after its environment is set.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from pathlib import Path

import click

from receivables.config import ConfigError, Settings
from receivables.dates import EARLIEST_AS_OF, parse_iso_date


def _date(_ctx, _param, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        day = parse_iso_date(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if day < EARLIEST_AS_OF:
        raise click.BadParameter(f"{day} is before {EARLIEST_AS_OF}, the earliest supported date")
    return day


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _engine(settings: Settings, *, existing: bool = False):
    """The warehouse engine; with ``existing``, refuse a warehouse that was never initialised.

    A warehouse that cannot be opened (no such database, no server, a path that cannot be
    created) is one line and exit code 1, never a traceback."""
    from sqlalchemy.engine import make_url

    from receivables.warehouse.db import WarehouseUnavailable, check_reachable, create_engine
    from receivables.warehouse.migrate import ensure_current

    try:
        url = settings.warehouse_url()
        if existing:
            parsed = make_url(url)
            if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").exists():
                raise click.ClickException(
                    f"no warehouse at {parsed.database} (RECEIVABLES_HOME={settings.home}): "
                    "run `receivables init` and `receivables run` first"
                )
        engine = create_engine(url)
        check_reachable(engine)
        if existing:
            ensure_current(engine)
        return engine
    except (WarehouseUnavailable, ValueError, ConfigError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log more (and show Airflow's own output).")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Accounts-receivable collection on Apache Airflow."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = {"verbose": verbose}


@main.command()
def init() -> None:
    """Create or upgrade the warehouse schema."""
    from receivables.warehouse.db import redact
    from receivables.warehouse.migrate import upgrade

    settings = _settings()
    engine = _engine(settings)
    before, after = upgrade(engine)
    where = redact(engine.url)
    if before == after:
        click.echo(f"warehouse {where} is up to date (schema {after})")
    else:
        click.echo(f"warehouse {where}: schema {before or 'empty'} -> {after}")
    for folder in ("inbox", "archive", "rejected", "outbox", "reports"):
        (settings.home / folder).mkdir(parents=True, exist_ok=True)
    settings.inbox.mkdir(parents=True, exist_ok=True)


@main.command()
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Folder.")
@click.option("--customers", required=True, type=click.IntRange(min=1), help="How many.")
@click.option("--as-of", "as_of", required=True, callback=_date, help="YYYY-MM-DD")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option(
    "--defects",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 0.5),
    help="Share of invoice and payment rows to corrupt (to see quarantine work).",
)
@click.option(
    "--format",
    "file_format",
    default="csv",
    show_default=True,
    type=click.Choice(["csv", "xlsx", "parquet"]),
)
def sample(
    out: Path, customers: int, as_of: dt.date, seed: int, defects: float, file_format: str
) -> None:
    """Write a realistic sample ledger (with history before DATE) into OUT."""
    from receivables.sample import generate_sample

    summary = generate_sample(out, customers, as_of, seed, defects=defects, file_format=file_format)
    click.echo(
        f"sample ledger as of {as_of} in {out}: {summary.customers} customers, "
        f"{summary.invoices} invoices, {summary.payments} payments"
        + (f", {summary.defect_rows} defective rows" if defects else "")
    )


@main.command()
@click.option("--as-of", "as_of", required=True, callback=_date, help="YYYY-MM-DD")
@click.option(
    "--inbox",
    type=click.Path(path_type=Path, file_okay=False),
    help="Read ledger files from this folder instead of RECEIVABLES_INBOX.",
)
@click.option(
    "--legal-review",
    "legal_review",
    type=click.Choice(["later", "approve", "reject"]),
    default=lambda: os.environ.get("RECEIVABLES_LEGAL_REVIEW", "later"),
    show_default="later, or RECEIVABLES_LEGAL_REVIEW",
    help="How this run answers the legal cases waiting for a decision, through Airflow's API: "
    "leave them proposed for a person, or approve or reject them all.",
)
@click.pass_context
def run(ctx: click.Context, as_of: dt.date, inbox: Path | None, legal_review: str) -> None:
    """Run the daily DAGs for DATE through Airflow (and the quarterly one on quarter starts)."""
    from receivables.warehouse.migrate import upgrade

    settings = _settings()
    verbose = ctx.obj["verbose"]
    if inbox is not None:
        inbox = inbox.resolve()
        if not inbox.is_dir():
            raise click.ClickException(f"--inbox {inbox} is not a folder")
    elif not settings.inbox.is_dir():
        settings.inbox.mkdir(parents=True, exist_ok=True)
    upgrade(_engine(settings))
    # A CLI run fails fast: retries belong to the scheduler, where a retry can wait.
    os.environ.setdefault("RECEIVABLES_TASK_RETRIES", "0")

    from receivables.airflow.approvals import ReviewError
    from receivables.airflow.runner import dags_for, prepare_airflow, run_dag
    from receivables.dates import start_of_business_day
    from receivables.report import run_summary

    prepare_airflow(settings)
    logical = start_of_business_day(as_of, settings.timezone)
    log_file = None if verbose else settings.logs_dir / f"run-{as_of}.log"
    dag_ids = dags_for(as_of)
    reports = []
    for dag_id in dag_ids:
        conf = {"inbox": str(inbox)} if inbox and dag_id == "ledger_ingest" else {}
        click.echo(f"→ {dag_id} for {as_of} …")
        try:
            report = run_dag(
                dag_id, logical, conf=conf, log_file=log_file, legal_review=legal_review
            )
        except ReviewError as exc:
            raise click.ClickException(f"{dag_id} for {as_of}: {exc}") from None
        reports.append(report)
        ran = sum(1 for t in report.tasks if t[2] == "success")
        if report.ok:
            click.echo(f"✓ {dag_id}: {ran} task(s) succeeded in {report.seconds:.1f} s")
            continue
        click.echo(f"✗ {dag_id} for {as_of}: {report.state}", err=True)
        if report.failed_tasks:
            click.echo(f"  failed: {', '.join(report.failed_tasks)}", err=True)
        elif not ran:
            click.echo("  no task ran (is the date before the DAG's start_date?)", err=True)
        if log_file:
            click.echo(f"  Airflow log: {log_file}", err=True)
        ctx.exit(1)
    click.echo(run_summary(settings, _engine(settings), as_of, reports, log_file))


@main.command("export")
@click.argument("name")
@click.option("--as-of", "as_of", callback=_date, help="YYYY-MM-DD")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path, dir_okay=False))
def export_command(name: str, as_of: dt.date | None, out: Path) -> None:
    """Write one result (aging, rejects, scores, warnings, reminders, worklist, legal_cases,
    kpis) as CSV."""
    from receivables.exports import ExportError, export

    settings = _settings()
    try:
        rows = export(name, _engine(settings, existing=True), as_of, out)
    except ExportError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{name}: {rows} row(s) written to {out}")


@main.command()
@click.argument("customer_id")
@click.option("--as-of", "as_of", callback=_date, help="YYYY-MM-DD (default: today).")
@click.option(
    "--html",
    "html_out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the HTML part to this file.",
)
def preview(customer_id: str, as_of: dt.date | None, html_out: Path | None) -> None:
    """Show the reminder CUSTOMER_ID would get (today), without sending anything."""
    from receivables.collection.preview import PreviewError, latest_day
    from receivables.collection.preview import preview as make_preview
    from receivables.dates import today_in

    settings = _settings()
    engine = _engine(settings, existing=True)
    wanted = as_of or today_in(settings.timezone)
    day = latest_day(engine, wanted)
    if day is None:
        raise click.ClickException(
            f"no risk results on or before {wanted}: run `receivables run --as-of DATE` first"
        )
    if day != wanted:
        click.echo(f"(no risk results for {wanted}: showing {day}, the latest before it)")
    try:
        shown = make_preview(engine, settings, customer_id, day)
    except (PreviewError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"customer {customer_id} on {day}: {shown.decision}")
    if shown.email is None:
        return
    moment = shown.send_at.isoformat() if shown.send_at else "-"
    click.echo(f"stage: {shown.stage}   deliver at: {moment}   to: {shown.recipients or '-'}")
    click.echo(f"subject: {shown.email.subject}\n")
    click.echo(shown.email.text)
    if html_out is not None:
        html_out.write_text(shown.email.html, encoding="utf-8")
        click.echo(f"HTML part written to {html_out}")


@main.command()
@click.argument("customer_id")
@click.option("--pay-by", "pay_by", required=True, callback=_date, help="YYYY-MM-DD promised.")
@click.option("--on", "promised_on", callback=_date, help="YYYY-MM-DD the promise was made.")
@click.option("--amount", help="Amount promised (optional).")
@click.option("--currency", help="Its currency (ISO 4217; default the customer's).")
@click.option("--note", default="", help="What was said (kept with the promise).")
def promise(
    customer_id: str,
    pay_by: dt.date,
    promised_on: dt.date | None,
    amount: str | None,
    currency: str | None,
    note: str,
) -> None:
    """Record a promise to pay: reminders to CUSTOMER_ID pause until PAY_BY."""
    from receivables.collection.records import RecordError, record_promise
    from receivables.dates import today_in

    settings = _settings()
    try:
        recorded = record_promise(
            _engine(settings, existing=True),
            customer_id,
            promised_on=promised_on or today_in(settings.timezone),
            pay_by=pay_by,
            amount=amount,
            currency=currency,
            note=note,
        )
    except RecordError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(recorded)


@main.command("resolve-dispute")
@click.argument("feedback_id", type=int)
def resolve_dispute(feedback_id: int) -> None:
    """Mark a dispute a customer raised through its reminder's link resolved (its reminders
    resume)."""
    from receivables.collection.records import RecordError
    from receivables.collection.records import resolve_dispute as resolve

    settings = _settings()
    try:
        click.echo(resolve(_engine(settings, existing=True), feedback_id))
    except RecordError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
def airflow() -> None:
    """Run Airflow locally (``airflow standalone``) with this project's DAGs; UI on :8080."""
    from receivables.airflow.runner import prepare_airflow

    settings = _settings()
    env = prepare_airflow(settings)
    os.environ.setdefault("AIRFLOW__API__HOST", "127.0.0.1")
    os.environ.setdefault("AIRFLOW__API__PORT", "8080")
    airflow_bin = Path(sys.executable).with_name("airflow")
    # standalone starts its components as `airflow …` subprocesses found on the PATH
    os.environ["PATH"] = f"{airflow_bin.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    click.echo(f"Airflow home {env['AIRFLOW_HOME']}; UI on http://127.0.0.1:8080 (Ctrl-C stops)")
    os.execv(str(airflow_bin), [str(airflow_bin), "standalone"])


if __name__ == "__main__":
    main()


@main.group()
def legal() -> None:
    """Legal cases: decide a proposed case, record what happened to it, show its history."""


#: The longest note kept with a step of a legal case.
NOTE_LENGTH = 2000


def _case_step(
    case_id: str, status: str, on: dt.date | None, amount: str | None, note: str
) -> None:
    from decimal import Decimal, InvalidOperation

    from receivables.dates import today_in
    from receivables.legal.lifecycle import LifecycleError, Step, apply
    from receivables.text import excerpt

    settings = _settings()
    value = None
    if amount is not None:
        shown_amount = excerpt(amount, 32)
        try:
            value = Decimal(amount.replace(",", "").strip())
            exact = value.is_finite() and value == value.quantize(Decimal("0.01"))
        except InvalidOperation:
            raise click.ClickException(f"--amount {shown_amount} is not a number") from None
        if not exact or value.adjusted() >= 15:
            raise click.ClickException(
                f"--amount {shown_amount}: expected an amount with at most two decimals and "
                "below 10^15"
            )
    if len(note) > NOTE_LENGTH:
        raise click.ClickException(f"--note is {len(note):,} characters (at most {NOTE_LENGTH})")
    today = today_in(settings.timezone)
    day = on or today
    if day > today:
        raise click.ClickException(f"--on {day} is in the future (today is {today})")
    actor = os.environ.get("USER") or os.environ.get("LOGNAME") or "command line"
    engine = _engine(settings, existing=True)
    try:
        with engine.begin() as conn:
            changed = apply(
                conn,
                Step(case_id, status, day, value, note or None, actor=actor, source="cli"),
            )
    except LifecycleError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"case {case_id}: {status} on {day}"
        if changed
        else f"case {case_id}: already {status} on {day} (nothing changed)"
    )


@legal.command("approve")
@click.argument("case_id")
@click.option("--on", "on", callback=_date, help="YYYY-MM-DD decided (default: today).")
@click.option("--note", default="", help="Why (kept with the decision).")
def legal_approve(case_id: str, on: dt.date | None, note: str) -> None:
    """Approve a proposed case: collection stops, its case file goes to the legal team on the
    next run of legal_escalation."""
    _case_step(case_id, "approved", on, None, note)


@legal.command("reject")
@click.argument("case_id")
@click.option("--on", "on", callback=_date, help="YYYY-MM-DD decided (default: today).")
@click.option("--note", default="", help="Why (kept with the decision).")
def legal_reject(case_id: str, on: dt.date | None, note: str) -> None:
    """Reject a proposed case: the customer stays with collection."""
    _case_step(case_id, "rejected", on, None, note)


@legal.command("update")
@click.argument("case_id")
@click.argument(
    "status",
    type=click.Choice(["filed", "judgment", "recovered", "settled", "written_off", "closed"]),
)
@click.option("--on", "on", callback=_date, help="YYYY-MM-DD it happened (default: today).")
@click.option("--amount", help="Recovered, settled or written off (in the case's currency).")
@click.option("--note", default="", help="What happened (kept with the step).")
def legal_update(
    case_id: str, status: str, on: dt.date | None, amount: str | None, note: str
) -> None:
    """Record the next step of a case (filed, judgment, recovered, settled, written_off,
    closed)."""
    _case_step(case_id, status, on, amount, note)


@legal.command("show")
@click.argument("case_id")
def legal_show(case_id: str) -> None:
    """Show a case and every step of it."""
    import sqlalchemy as sa

    from receivables.legal.lifecycle import TRANSITIONS, history
    from receivables.text import excerpt, one_line
    from receivables.warehouse.schema import legal_cases

    settings = _settings()
    with _engine(settings, existing=True).connect() as conn:
        case = conn.execute(sa.select(legal_cases).where(legal_cases.c.case_id == case_id)).first()
        if case is None:
            raise click.ClickException(f"no legal case {excerpt(case_id, 64)}")
        steps = history(conn, case_id)
    click.echo(
        f"case {case.case_id}: customer {one_line(case.customer_id)}, {case.status}, claim "
        f"{case.currency} {case.amount:,.2f} (principal {case.principal:,.2f}, interest "
        f"{case.interest:,.2f}), opened {case.opened_on}"
    )
    if case.case_file:
        click.echo(f"case file: {settings.home / case.case_file}")
    for step in steps:
        amount = f" {case.currency} {step.amount:,.2f}" if step.amount is not None else ""
        who = f" by {one_line(step.actor)}" if step.actor else ""
        click.echo(f"  {step.occurred_on}  {step.status}{amount}{who} [{one_line(step.source)}]")
        if step.note:
            click.echo(f"      {one_line(step.note)}")
    follows = TRANSITIONS[case.status]
    click.echo(f"next: {', '.join(follows) if follows else 'nothing (final)'}")
