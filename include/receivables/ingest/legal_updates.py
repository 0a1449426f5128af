"""Legal updates: the steps of legal cases a ``legal_updates*`` file reports, taken in file order.

A ledger row is upserted by SQL (``sql/ingest/merge_<kind>.sql``) whatever came before it. A
legal update is a step in the life of a case (:mod:`receivables.legal.lifecycle`): whether it
may be taken depends on the case as the steps before it left it, earlier rows of the same file
included (filed, then judgment). So a file's good rows are taken one by one, in file order,
through :func:`receivables.legal.lifecycle.apply`, which alone decides what a case may do: that
it exists, the transition, a date not before the case's last step, the amount a status needs
(recovered, settled, written off) or refuses (the others). They are taken twice:

* :func:`rehearse` — one of the file's checks, after the row checks: every good row is taken in
  a transaction that is rolled back; the rows that could not be taken are returned as problems
  (the lifecycle's own message when it refused them) and held back, so later rows of the same
  case are judged without them, as the load will judge them;
* :func:`apply_rows` — in the file's load transaction: the same good rows in the same order.
  The ingest holds the warehouse's writer lock, so the cases do not change in between and every
  row is taken as rehearsed; should one be refused all the same, :class:`CasesChanged` rolls the
  whole file back.

Besides the lifecycle's rules, a step is held back when

* its date is after the business date of the run: a step is reported once it has happened (and
  a mistyped year would bar every real step before it);
* the file states a currency other than the case's: its amount would be in the wrong money;
* the same step (status and date) is in the case's history already with another amount.

A step already in the case's history (same status, date and amount) changes nothing and counts
as loaded: a file sent again, or one repeating earlier steps, records no step twice. Every step
recorded names its file: ``source`` is ``file:<file name as dropped>``. Reasons name the case
and the step, never the actor or a customer.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from decimal import Decimal

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from receivables.ingest.rules import PROBLEM_SCHEMA, SHOWN_LENGTH, SHOWN_WIDTH
from receivables.legal.lifecycle import LifecycleError, Step, apply
from receivables.text import shown
from receivables.warehouse.schema import ingested_files, legal_case_events, legal_cases

log = logging.getLogger(__name__)

#: ``legal_case_events.source`` of a step a file reported: this, then the file's name.
SOURCE_PREFIX = "file:"
#: Width of ``legal_case_events.source``.
SOURCE_CHARACTERS = 255
#: Characters of a reason (the lifecycle's messages quote case ids of at most 64 characters).
REASON_CHARACTERS = 1000


class CasesChanged(RuntimeError):
    """A step the rehearsal took could not be taken in the load: the cases changed meanwhile
    (a writer that does not hold the warehouse's lock). Nothing of the file is loaded."""


class _Refused(Exception):
    """One row's step cannot be taken: which column it is about, its value, why."""

    def __init__(self, column: str, value: str | None, reason: str):
        super().__init__(reason)
        self.column = column
        self.value = value
        self.reason = reason


def source_of(file_name: str) -> str:
    """``file:<name>`` as ``legal_case_events.source`` holds it (a long name is cut, saying
    how long it was; ``file_name`` is the name as shown, already escaped where needed)."""
    return SOURCE_PREFIX + shown(file_name, SOURCE_CHARACTERS - len(SOURCE_PREFIX))


def _good_rows(conn: Connection, table: sa.Table) -> list[Row]:
    """The staged rows that passed every check so far, in file order."""
    return conn.execute(
        sa.select(table).where(sa.not_(table.c.held)).order_by(table.c.row_number)
    ).all()


def _step(row: Row, source: str) -> Step:
    amount = None if row.amount_cents is None else Decimal(row.amount_cents).scaleb(-2)
    return Step(
        case_id=row.case_id,
        status=row.status,
        occurred_on=row.date,
        amount=amount,
        note=row.note,
        actor=row.actor,
        source=source,
    )


def _amount_text(amount: Decimal | None, currency: str) -> str:
    return "no amount" if amount is None else f"amount {amount:.2f} {currency}"


def _value(step: Step, row: Row, column: str) -> str | None:
    """The value of ``column`` in the row, as text for the quarantine."""
    value = {
        "case_id": step.case_id,
        "status": step.status,
        "date": step.occurred_on.isoformat(),
        "amount": None if step.amount is None else f"{step.amount:.2f}",
        "currency": row.currency,
    }[column]
    return None if value is None else shown(value, SHOWN_LENGTH)


def _take(conn: Connection, row: Row, source: str, as_of: dt.date, now: dt.datetime) -> bool:
    """Take the row's step on its case inside ``conn``'s transaction: True when recorded, False
    when it is in the case's history already; raises :class:`_Refused` when it cannot be."""
    step = _step(row, source)
    if step.occurred_on > as_of:
        raise _Refused(
            "date",
            _value(step, row, "date"),
            f"case {step.case_id}: {step.status} on {step.occurred_on} is after the business "
            f"date {as_of}: a step is reported once it has happened",
        )
    case = conn.execute(sa.select(legal_cases).where(legal_cases.c.case_id == step.case_id)).first()
    if case is not None:
        if row.currency is not None and row.currency != case.currency:
            raise _Refused(
                "currency",
                _value(step, row, "currency"),
                f"case {case.case_id} is claimed in {case.currency}: a step in {row.currency} "
                "cannot be recorded on it",
            )
        e = legal_case_events.c
        earlier = conn.execute(
            sa.select(e.amount)
            .where(
                e.case_id == step.case_id,
                e.status == step.status,
                e.occurred_on == step.occurred_on,
            )
            .limit(1)
        ).first()
        if earlier is not None:
            if earlier.amount != step.amount:
                raise _Refused(
                    "amount",
                    _value(step, row, "amount"),
                    f"case {case.case_id}: {step.status} on {step.occurred_on} is recorded "
                    f"already with {_amount_text(earlier.amount, case.currency)}, not "
                    f"{_amount_text(step.amount, case.currency)}",
                )
            return False
    try:
        return apply(conn, step, now)
    except LifecycleError as exc:
        raise _Refused(exc.field, _value(step, row, exc.field), str(exc)) from None


def _each(
    conn: Connection, table: sa.Table, source: str, as_of: dt.date
) -> Iterator[tuple[Row, bool | _Refused]]:
    """Every good row and what taking it did (recorded, already recorded, or refused)."""
    now = dt.datetime.now(dt.UTC)
    for row in _good_rows(conn, table):
        try:
            yield row, _take(conn, row, source, as_of, now)
        except _Refused as refusal:
            yield row, refusal


def rehearse(engine: Engine, table: sa.Table, as_of: dt.date, file_name: str) -> pa.Table:
    """Take every good staged row of ``table`` in a transaction that is rolled back; return the
    problems of the rows that could not be taken (the caller holds them back)."""
    problems = []
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            for row, taken in _each(conn, table, source_of(file_name), as_of):
                if isinstance(taken, _Refused):
                    problems.append(
                        {
                            "row_number": row.row_number,
                            "record_id": shown(row.step_id, SHOWN_WIDTH),
                            "column_name": taken.column,
                            "value": taken.value,
                            "reason": shown(taken.reason, REASON_CHARACTERS),
                        }
                    )
        finally:
            transaction.rollback()
    return pa.Table.from_pylist(problems, schema=PROBLEM_SCHEMA)


def apply_rows(conn: Connection, table: sa.Table, file_id: int) -> int:
    """Take every good staged row of ``table`` in file order inside ``conn``'s transaction (the
    file's load, whose ``ingested_files`` row is ``file_id``); return the rows taken, those
    already recorded included. Raises :class:`CasesChanged` when one cannot be taken."""
    record = conn.execute(
        sa.select(ingested_files.c.file_name, ingested_files.c.as_of_date).where(
            ingested_files.c.file_id == file_id
        )
    ).one()
    recorded = unchanged = 0
    for row, taken in _each(conn, table, source_of(record.file_name), record.as_of_date):
        if isinstance(taken, _Refused):
            raise CasesChanged(
                f"file {file_id}: row {row.row_number} ({shown(row.step_id, SHOWN_LENGTH)}) "
                f"passed the rehearsal but the load refused it: {taken.reason}"
            )
        if taken:
            recorded += 1
        else:
            unchanged += 1
    log.info(
        "file %s: %d step(s) recorded, %d already in the cases' history",
        file_id,
        recorded,
        unchanged,
    )
    return recorded + unchanged
