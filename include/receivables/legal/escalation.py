"""Legal escalation for one as-of date: propose, decide, open.

1. :func:`propose_cases` writes the day's proposals (``legal_cases`` rows ``proposed``, the
   invoices they claim, a ``proposed`` step with the rule results); a claim below the configured
   amount is approved at once by the rule (``auto_approve_below``). Running the date again
   proposes nothing new: a customer with a case proposed or running is not proposed twice.
2. A person decides every case still ``proposed`` (in Airflow: one human-in-the-loop task per
   case, see :mod:`receivables.airflow.review`; or ``receivables legal approve|reject``):
   :func:`decide` records it.
3. :func:`open_approved_cases` writes the case file of every approved case that has none yet
   (``$RECEIVABLES_HOME/legal/<case_id>/``) and emails it to the legal team once (the email's key
   is the case id: a retry or a re-run never sends it twice).

From approval on, the customer is under legal hold: no reminder goes to it while the case is
open (``approved``, ``filed``, ``judgment``).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import Counter
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receivables.collection.strategy import Strategy
from receivables.legal.lifecycle import Step, apply, record_event
from receivables.legal.selection import Proposal, select_cases
from receivables.text import one_line
from receivables.warehouse.schema import legal_case_invoices, legal_cases

if TYPE_CHECKING:
    from receivables.config import Settings

log = logging.getLogger(__name__)

#: Who takes the steps the rules take.
SELECTION = "selection rules"
AUTO_APPROVAL = "auto-approval"
#: Markdown that could format, link or break a table; ids never start a line, so list and
#: heading markers need no escape there.
_MARKDOWN = re.compile(r"([\\`*_\[\]()<>#|~])")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def case_id_for(as_of: dt.date, number: int) -> str:
    """``LC-<yyyymmdd>-<nnnn>``: the date that proposed it and its number that day (never any
    customer data: the id names folders and files)."""
    return f"LC-{as_of:%Y%m%d}-{number:04d}"


def _next_number(conn, as_of: dt.date) -> int:
    prefix = case_id_for(as_of, 0)[:-4]
    ids = conn.execute(
        sa.select(legal_cases.c.case_id).where(legal_cases.c.case_id.like(f"{prefix}%"))
    ).scalars()
    return max((int(i[len(prefix) :]) for i in ids if i[len(prefix) :].isdigit()), default=0) + 1


def _propose(conn, as_of: dt.date, case_id: str, p: Proposal, version: str, now) -> None:
    conn.execute(
        legal_cases.insert().values(
            case_id=case_id,
            customer_id=p.customer_id,
            opened_on=as_of,
            amount=p.amount,
            currency=p.currency,
            status="proposed",
            updated_on=as_of,
            principal=p.principal,
            interest=p.interest,
            worst_days_past_due=p.worst_days_past_due,
            rules=p.rules_json(),
            recovered_amount=Decimal(0),
            written_off_amount=Decimal(0),
            strategy_version=version,
        )
    )
    conn.execute(
        legal_case_invoices.insert(),
        [
            {
                "case_id": case_id,
                "invoice_id": i.invoice_id,
                "due_date": i.due_date,
                "days_past_due": i.days_past_due,
                "outstanding": i.outstanding,
                "interest": i.interest,
            }
            for i in p.invoices
        ],
    )
    record_event(
        conn,
        Step(
            case_id,
            "proposed",
            as_of,
            note="; ".join(r.detail for r in p.rules),
            actor=SELECTION,
            source="selection",
        ),
        now,
    )


def propose_cases(
    engine: Engine, as_of: dt.date, strategy: Strategy, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Propose the day's cases (approving those below the automatic amount); return counts."""
    now = now or _now()
    with engine.begin() as conn:
        selection = select_cases(conn, as_of, strategy)
        number = _next_number(conn, as_of)
        proposed, auto = [], []
        for proposal in selection.proposals:
            case_id = case_id_for(as_of, number)
            number += 1
            _propose(conn, as_of, case_id, proposal, strategy.version, now)
            proposed.append(case_id)
            if proposal.auto_approve:
                threshold = strategy.legal.auto_approve_below[proposal.currency]
                apply(
                    conn,
                    Step(
                        case_id,
                        "approved",
                        as_of,
                        note=f"claim below {proposal.currency} {threshold:,.2f}: approved "
                        "without review",
                        actor=AUTO_APPROVAL,
                        source="selection",
                    ),
                    now,
                )
                auto.append(case_id)
    summary = {
        "as_of_date": as_of.isoformat(),
        "considered": selection.considered,
        "proposed": len(proposed),
        "auto_approved": len(auto),
        "not_proposed_by_rule": dict(sorted(selection.not_proposed.items())),
        "case_ids": proposed,
    }
    log.info(
        "legal escalation %s: %d customer(s) considered, %d case(s) proposed (%d approved "
        "automatically); not proposed, by first failed rule: %s",
        as_of,
        selection.considered,
        len(proposed),
        len(auto),
        summary["not_proposed_by_rule"] or "none",
    )
    return summary


def _md(text: object) -> str:
    """``text`` on one line with Markdown's special characters escaped (ids come from files)."""
    return _MARKDOWN.sub(r"\\\1", one_line(text))


def cases_to_review(engine: Engine, as_of: dt.date) -> list[dict[str, Any]]:
    """Every case still ``proposed`` on ``as_of``, with the subject and body a reviewer sees."""
    import json

    c = legal_cases.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(legal_cases)
            .where(c.status == "proposed", c.opened_on <= as_of)
            .order_by(c.case_id)
        ).all()
    items = []
    zero = Decimal(0)
    for row in rows:
        rules = json.loads(row.rules or "[]")
        principal, interest = row.principal or zero, row.interest or zero
        lines = [
            f"**Case {_md(row.case_id)}**: customer {_md(row.customer_id)}, proposed on "
            f"{row.opened_on}.",
            "",
            "| | |",
            "| --- | --- |",
            f"| Principal | {_md(row.currency)} {principal:,.2f} |",
            f"| Late interest | {_md(row.currency)} {interest:,.2f} |",
            f"| **Claim** | **{_md(row.currency)} {row.amount:,.2f}** |",
            f"| Worst invoice | {row.worst_days_past_due or '?'} days past due |",
            "",
            "Why it is proposed:",
            "",
            *[f"- {_md(r.get('detail', ''))}" for r in rules],
            "",
            "Approve to open the case (collection stops and the case file goes to the legal "
            "team); reject to leave the customer with collection.",
        ]
        items.append(
            {
                "case_id": row.case_id,
                "as_of": as_of.isoformat(),
                "subject": f"Legal case {row.case_id}: {row.currency} {row.amount:,.2f} "
                f"from customer {one_line(row.customer_id)[:64]}",
                "body": "\n".join(lines),
            }
        )
    return items


def decide(
    engine: Engine,
    case_id: str,
    approve: bool,
    on: dt.date,
    actor: str,
    note: str | None = None,
    source: str = "review",
) -> str:
    """Record a person's decision on a proposed case; returns the case's status after it.

    A case already decided the same way is left as it is; a case decided otherwise in the
    meantime (say, through the command line) keeps that decision — the first decision stands —
    and :class:`LifecycleError` says so."""
    status = "approved" if approve else "rejected"
    with engine.begin() as conn:
        current = conn.execute(
            sa.select(legal_cases.c.status).where(legal_cases.c.case_id == case_id)
        ).scalar()
        if current == status:
            return status
        apply(conn, Step(case_id, status, on, note=note, actor=actor, source=source))
    log.info("case %s %s by %s", case_id, status, actor)
    return status


def open_approved_cases(
    engine: Engine, settings: Settings, as_of: dt.date, strategy: Strategy
) -> dict[str, Any]:
    """Write and send the case file of every approved case that has none yet."""
    from receivables.legal import casefile
    from receivables.mail import DeliveryError, send_email_once

    c = legal_cases.c
    with engine.connect() as conn:
        ids = (
            conn.execute(
                sa.select(c.case_id)
                .where(c.status == "approved", c.case_file.is_(None), c.opened_on <= as_of)
                .order_by(c.case_id)
            )
            .scalars()
            .all()
        )
    written: list[str] = []
    failed: dict[str, str] = {}
    for case_id in ids:
        folder = settings.home / "legal" / case_id
        try:
            with engine.connect() as conn:
                content = casefile.gather(
                    conn, case_id, as_of, strategy, buckets=settings.policy.aging.buckets
                )
            output = casefile.write_case_file(content, folder, strategy)
            email = casefile.case_file_email(content, output, strategy.legal.recipients)
            # once per case: a retry or a re-run finds the claim and sends nothing
            send_email_once(settings, email)
        except (casefile.CaseFileError, DeliveryError) as exc:
            failed[case_id] = getattr(exc, "reason", None) or str(exc)
            log.error("case %s: no case file (%s)", case_id, exc)
            continue
        with engine.begin() as conn:
            conn.execute(
                sa.update(legal_cases)
                .where(c.case_id == case_id)
                .values(case_file=str(folder.relative_to(settings.home)))
            )
        written.append(case_id)
        log.info("case %s: case file written to %s and sent to the legal team", case_id, folder)
    if failed:
        raise CaseFilesIncomplete(
            f"{len(failed)} case file(s) could not be made: "
            + "; ".join(f"{k}: {v}" for k, v in failed.items())
        )
    return {"as_of_date": as_of.isoformat(), "case_files": written}


class CaseFilesIncomplete(RuntimeError):
    """Some approved cases got no case file (the others did); the reasons are in the message."""


def legal_summary(engine: Engine, as_of: dt.date) -> dict[str, Any]:
    """Cases by status up to ``as_of``, and what this date proposed and approved."""
    c = legal_cases.c
    with engine.connect() as conn:
        by_status = Counter(
            dict(
                conn.execute(
                    sa.select(c.status, sa.func.count())
                    .where(c.opened_on <= as_of)
                    .group_by(c.status)
                ).all()
            )
        )
        today = conn.execute(
            sa.select(c.case_id, c.status, c.case_file).where(c.opened_on == as_of)
        ).all()
    return {
        "as_of_date": as_of.isoformat(),
        "cases_by_status": dict(sorted(by_status.items())),
        "proposed_today": len(today),
        "open_today": sum(1 for t in today if t.status not in ("proposed", "rejected")),
        "case_files_today": sum(1 for t in today if t.case_file),
    }
