"""The summary ``receivables run`` prints: what came in, what is owed, where to look."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receivables.aging import summarise
from receivables.config import Settings
from receivables.fx import rates_on
from receivables.warehouse.db import redact
from receivables.warehouse.schema import (
    credit_models,
    credit_scores,
    ingested_files,
    invoice_risk,
    risk_warnings,
)


def _money(text: str) -> str:
    return f"{Decimal(text):,.2f}"


def _reminder_lines(engine: Engine, as_of: dt.date) -> list[str]:
    from receivables.collection.report import reminder_summary

    summary = reminder_summary(engine, as_of)
    via = " and ".join(
        {"sendgrid": "SendGrid", "outbox": ".eml files in the outbox"}.get(p, p)
        for p in summary["providers"]
    )
    lines = [
        f"  reminders: {summary['planned']:,} planned, {summary['sent']:,} sent"
        + (f" (via {via})" if via else "")
        + f", {summary['refused']:,} refused, {summary['failed']:,} failed, "
        f"{summary['pending']:,} pending"
    ]
    if summary["by_stage"]:
        lines.append(
            "    by stage: " + ", ".join(f"{k} {v:,}" for k, v in summary["by_stage"].items())
        )
    if summary["by_locale"]:
        lines.append(
            "    by language: " + ", ".join(f"{k} {v:,}" for k, v in summary["by_locale"].items())
        )
    if summary["refused_by_rule"]:
        lines.append(
            "    refused by rule: "
            + ", ".join(f"{k} {v:,}" for k, v in summary["refused_by_rule"].items())
        )
    if summary["actions"]:
        actions = sorted(summary["actions"].items())
        lines.append("    worklist: " + ", ".join(f"{v:,} {k}" for k, v in actions))
    return lines


def _legal_lines(settings: Settings, engine: Engine, as_of: dt.date) -> list[str]:
    from receivables.legal.escalation import legal_summary

    summary = legal_summary(engine, as_of)
    by_status = summary["cases_by_status"]
    lines = [
        f"  legal cases: {summary['proposed_today']:,} proposed today, "
        f"{summary['case_files_today']:,} case file(s) written; all cases by status: "
        + (", ".join(f"{k} {v:,}" for k, v in by_status.items()) or "none")
    ]
    waiting = by_status.get("proposed", 0)
    if waiting:
        lines.append(
            f"    {waiting:,} case(s) wait for a decision: Airflow's Required actions, or "
            "receivables legal approve|reject CASE_ID"
        )
    folder = settings.home / "legal"
    if folder.exists():
        lines.append(f"    case files   {folder}")
    return lines


def _evaluation_lines(settings: Settings, as_of: dt.date) -> list[str]:
    import json

    from receivables.evaluation.quarters import just_ended
    from receivables.evaluation.report import report_folder

    quarter = just_ended(as_of)
    folder = report_folder(settings, quarter)
    figures = folder / "figures.json"
    if not figures.is_file():
        return [f"  quarterly evaluation {quarter.label}: no report written"]
    kpis = json.loads(figures.read_text(encoding="utf-8"))["kpis"][quarter.label]

    def shown(name: str, percent: bool = True) -> str:
        value = kpis.get(name)
        if value is None:
            return "–"
        return f"{float(value) * 100:.1f} %" if percent else f"{float(value):.1f}"

    return [
        f"  quarterly evaluation {quarter.label}: overdue ratio {shown('overdue_ratio')}, "
        f"recovery rate {shown('recovery_rate')}, CEI {shown('cei')}, "
        f"DSO {shown('dso', percent=False)} days; "
        f"sent to {', '.join(settings.management_emails)}",
        f"    report       {folder}",
    ]


def run_summary(
    settings: Settings, engine: Engine, as_of: dt.date, reports: list, log_file: Path | None
) -> str:
    """Plain-text summary of one ``receivables run``."""
    lines = [f"\nReceivables as of {as_of}"]
    ingest = next((r for r in reports if r.dag_id == "ledger_ingest"), None)
    if ingest is not None:
        f = ingested_files
        with engine.connect() as conn:
            files = conn.execute(
                sa.select(
                    f.c.file_name,
                    f.c.status,
                    f.c.rows_read,
                    f.c.rows_loaded,
                    f.c.rows_quarantined,
                    f.c.reason,
                )
                .where(f.c.dag_run_id == ingest.run_id)
                .order_by(f.c.file_id)
            ).all()
        loaded = [x for x in files if x.status == "loaded"]
        rejected = [x for x in files if x.status == "rejected"]
        read = sum(x.rows_read for x in files)
        lines.append(
            f"  ingest: {len(loaded)} file(s) loaded, {len(rejected)} refused; rows "
            f"{read:,} read = {sum(x.rows_loaded for x in files):,} loaded + "
            f"{sum(x.rows_quarantined for x in files):,} quarantined"
        )
        for x in rejected:
            lines.append(f"    refused {x.file_name}: {x.reason}")
        if not files:
            lines.append("    (the inbox was empty)")
    aging = summarise(engine, as_of)
    lines.append(f"  aging: {aging.invoices:,} open invoice(s) of {aging.customers:,} customer(s)")
    for currency, total in aging.outstanding_by_currency.items():
        overdue = Decimal(aging.overdue_by_currency.get(currency, "0"))
        share = overdue / Decimal(total) if Decimal(total) else Decimal(0)
        lines.append(
            f"    {currency}: outstanding {_money(total)}, overdue {_money(str(overdue))} "
            f"({share:.1%})"
        )
    lines += _reporting_lines(settings, engine, as_of, aging)
    currencies = list(aging.outstanding_by_currency)
    if currencies:
        buckets = [b.name for b in settings.policy.aging.buckets]
        classes = [b.name for b in settings.policy.aging.risk_classes]
        lines += _table("bucket", buckets, aging.by_bucket, currencies)
        lines += _table("risk class", classes, aging.by_risk_class, currencies)
    lines += _risk_lines(engine, as_of)
    if any(r.dag_id == "collection_reminders" for r in reports):
        lines += _reminder_lines(engine, as_of)
    if any(r.dag_id == "legal_escalation" for r in reports):
        lines += _legal_lines(settings, engine, as_of)
    if any(r.dag_id == "monthly_report" for r in reports):
        from receivables.evaluation.monthly import month_end_before, monthly_folder

        month_end = month_end_before(as_of)
        folder = monthly_folder(settings, month_end)
        lines.append(
            f"  monthly report {month_end:%Y-%m}: "
            + ("sent to " + ", ".join(settings.management_emails) if folder.exists() else "none")
        )
        if folder.exists():
            lines.append(f"    report       {folder}")
    if any(r.dag_id == "quarterly_evaluation" for r in reports):
        lines += _evaluation_lines(settings, as_of)
    outbox = settings.outbox_dir
    emails = len(list(outbox.glob("*.eml"))) if outbox.exists() else 0
    lines += [
        "  where things are:",
        f"    warehouse    {redact(engine.url)}",
        f"    archive      {settings.archive_dir}",
        f"    rejected     {settings.rejected_dir}",
        f"    emails       {outbox} ({emails} .eml file(s))",
        f"    data docs    {settings.data_docs_index}",
    ]
    models = settings.reports_dir / "models"
    if models.exists() and any(models.glob("*.md")):
        lines.append(f"    model cards  {models}")
    if log_file:
        lines.append(f"    Airflow log  {log_file}")
    lines.append(
        "  exports: receivables export "
        "aging|rejects|scores|warnings|reminders|worklist|legal_cases|kpis "
        f"--as-of {as_of} "
        "--out FILE.csv"
    )
    return "\n".join(lines)


def _reporting_lines(settings: Settings, engine: Engine, as_of: dt.date, aging) -> list[str]:
    """The totals of all currencies in the reporting currency (those with a rate)."""
    currencies = list(aging.outstanding_by_currency)
    reporting = settings.policy.currency.reporting_currency
    if not currencies or currencies == [reporting]:
        return []
    rates = rates_on(engine, as_of, reporting)
    missing = rates.missing(currencies)
    converted = [c for c in currencies if c not in missing]
    if not converted:
        return [f"    no {reporting} rate for {', '.join(missing)}: no total in {reporting}"]

    def total(amounts: dict[str, str]) -> Decimal:
        return rates.total({c: Decimal(amount) for c, amount in amounts.items()})[0]

    outstanding, overdue = total(aging.outstanding_by_currency), total(aging.overdue_by_currency)
    share = overdue / outstanding if outstanding else Decimal(0)
    line = (
        f"    all in {reporting} at the rates of {as_of}: outstanding {outstanding:,.2f}, "
        f"overdue {overdue:,.2f} ({share:.1%})"
    )
    if missing:
        line += f"; without a rate, left out: {', '.join(missing)}"
    return [line]


def _table(
    title: str, order: list[str], groups: dict[str, dict[str, str]], currencies: list[str]
) -> list[str]:
    rows = [[title, *currencies]]
    for name in order:
        amounts = groups.get(name, {})
        rows.append([name, *(_money(amounts[c]) if c in amounts else "-" for c in currencies)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "    "
        + "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(r)
        )
        for r in rows
    ]


def _risk_lines(engine: Engine, as_of: dt.date) -> list[str]:
    """Grades, warnings and provisions of ``as_of`` (nothing when the risk DAG has not run)."""
    s, w, r, m = credit_scores, risk_warnings, invoice_risk, credit_models
    with engine.connect() as conn:
        grades = dict(
            conn.execute(
                sa.select(s.c.grade, sa.func.count())
                .where(s.c.as_of_date == as_of)
                .group_by(s.c.grade)
            ).all()
        )
        if not grades:
            return []
        model = conn.execute(
            sa.select(m.c.model_id, m.c.kind, m.c.trained_as_of, m.c.auc)
            .join(s, s.c.model_id == m.c.model_id)
            .where(s.c.as_of_date == as_of)
            .limit(1)
        ).first()
        severities = dict(
            conn.execute(
                sa.select(w.c.severity, sa.func.count())
                .where(w.c.as_of_date == as_of)
                .group_by(w.c.severity)
            ).all()
        )
        ecl = sa.type_coerce(sa.func.sum(r.c.ecl), r.c.ecl.type)
        provisions = conn.execute(
            sa.select(r.c.currency, ecl).where(r.c.as_of_date == as_of).group_by(r.c.currency)
        ).all()
    described = (
        f"scorecard {model.model_id} trained as of {model.trained_as_of}"
        + (f", held-out AUC {model.auc:.3f}" if model.auc else "")
        if model.kind == "scorecard"
        else "the rules scorecard (no trained model approved yet)"
    )
    lines = [
        f"  credit grades ({described}):",
        "    " + "  ".join(f"{g} {grades.get(g, 0):,}" for g in "ABCDE"),
        "  warnings: "
        + (
            ", ".join(
                f"{severities[k]:,} {k}"
                for k in ("critical", "high", "medium", "low")
                if severities.get(k)
            )
            or "none"
        ),
        "  provisions (IFRS 9 ECL): "
        + ("; ".join(f"{c} {_money(str(v))}" for c, v in provisions) or "none"),
    ]
    return lines
