"""History follows the ledger, not the order of the loads.

A back-dated payment or a corrected invoice changes month-ends that earlier risk runs already
snapshotted; the next run recomputes them (and their roll matrices). Property: one ledger,
loaded through the real ingest in two orders with a risk run after each load, ends with the
same roll history, provision matrices and ECL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from pathlib import Path

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receivables.aging import compute_snapshot
from receivables.config import Policy, Settings
from receivables.ingest.pipeline import FileIngest
from receivables.risk.classification import compute_customer_classes
from receivables.risk.provisions import compute_provisions
from receivables.warehouse.db import create_engine
from receivables.warehouse.migrate import upgrade
from receivables.warehouse.schema import ingested_files, invoice_risk, provision_rates, roll_rates
from tests.helpers import new_pg_database

POLICY = Policy.model_validate({"provisions": {"min_history_months": 2}})
AS_OF = dt.date(2024, 6, 30)
FIRST = dt.date(2023, 1, 1)


@contextlib.contextmanager
def warehouse(kind: str, folder: Path, admin_url: str):
    """A fresh, migrated warehouse (SQLite file or a new PostgreSQL database)."""
    with contextlib.ExitStack() as stack:
        if kind == "sqlite":
            url = f"sqlite:///{folder / f'{uuid.uuid4().hex}.db'}"
        else:
            url = stack.enter_context(new_pg_database(admin_url))
        engine = create_engine(url)
        stack.callback(engine.dispose)
        upgrade(engine)
        yield engine


invoices_strategy = st.lists(
    st.tuples(
        st.integers(0, 4),  # customer
        st.integers(0, 520),  # issue: days after FIRST
        st.sampled_from([30, 60]),  # terms
        st.integers(1_000, 500_000),  # amount, cents
        st.sampled_from([None, -5, 10, 45, 100, 200]),  # paid days after due (None: unpaid)
        st.booleans(),  # paid in one go, or in two halves
        st.booleans(),  # which file the payment arrives in
    ),
    min_size=5,
    max_size=25,
)


def _files(folder: Path, ledger) -> dict[str, Path]:
    """customers / invoices / two payment files for ``ledger``."""
    folder.mkdir(parents=True, exist_ok=True)
    customers = ["customer_id,name"] + [f"C{i},Customer {i}" for i in range(5)]
    invoices = ["invoice_id,customer_id,issue_date,due_date,amount"]
    # the two files name their columns in different orders: never byte-identical (a file
    # identical to one already loaded is refused as a duplicate)
    payments = {
        True: ["payment_id,invoice_id,paid_date,amount"],
        False: ["invoice_id,payment_id,paid_date,amount"],
    }
    for n, (customer, issue, terms, cents, paid_after, split, first_file) in enumerate(ledger):
        issued = FIRST + dt.timedelta(days=issue)
        due = issued + dt.timedelta(days=terms)
        invoices.append(f"I{n},C{customer},{issued},{due},{cents / 100:.2f}")
        if paid_after is None:
            continue
        paid = max(issued, due + dt.timedelta(days=paid_after))
        parts = [cents // 2, cents - cents // 2] if split else [cents]
        for k, part in enumerate(parts):
            day = paid + dt.timedelta(days=20 * k)
            ids = f"P{n}-{k},I{n}" if first_file else f"I{n},P{n}-{k}"
            payments[first_file].append(f"{ids},{day},{part / 100:.2f}")
    paths = {}
    for name, lines in (
        ("customers.csv", customers),
        ("invoices.csv", invoices),
        ("payments_a.csv", payments[True]),
        ("payments_b.csv", payments[False]),
    ):
        paths[name] = folder / name
        paths[name].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


def _risk(engine) -> None:
    compute_snapshot(engine, AS_OF, POLICY.aging)
    compute_customer_classes(engine, AS_OF, POLICY)
    compute_provisions(engine, AS_OF, POLICY.aging, POLICY.provisions)


def _history(engine) -> dict:
    with engine.connect() as conn:
        rolls = sorted(
            (r.month_end, r.currency, r.from_bucket, r.to_bucket, r.amount, r.invoices)
            for r in conn.execute(sa.select(roll_rates))
        )
        rates = sorted(
            (r.currency, r.bucket, r.loss_rate, r.method, r.observations)
            for r in conn.execute(
                sa.select(provision_rates).where(provision_rates.c.as_of_date == AS_OF)
            )
        )
        ecl = sorted(
            (r.invoice_id, r.outstanding, r.loss_rate, r.ecl)
            for r in conn.execute(sa.select(invoice_risk).where(invoice_risk.c.as_of_date == AS_OF))
        )
    return {"roll_rates": rolls, "provision_rates": rates, "ecl": ecl}


def _load_in_order(engine, home: Path, files: dict[str, Path], order: list[str]) -> dict:
    settings_ = Settings.from_env({"RECEIVABLES_HOME": str(home)})
    ingest = FileIngest(engine, settings_, AS_OF, "history-test")
    for name in ("customers.csv", "invoices.csv"):
        assert ingest.ingest(files[name]).status == "loaded"
    for name in order:  # a risk run after each payment file: its month-ends go stale
        outcome = ingest.ingest(files[name])
        assert outcome.status == "loaded", outcome
        assert outcome.rows_quarantined == 0, outcome
        _risk(engine)
    return _history(engine)


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ledger=invoices_strategy)
def test_one_ledger_in_two_orders_gives_the_same_history(db_url, tmp_path, pg_server, ledger):
    kind = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    run = tmp_path / uuid.uuid4().hex
    results = []
    for order in (["payments_a.csv", "payments_b.csv"], ["payments_b.csv", "payments_a.csv"]):
        folder = run / "-".join(order)
        files = _files(folder / "inbox", ledger)
        with warehouse(kind, folder, pg_server) as engine:
            results.append(_load_in_order(engine, folder / "home", files, order))
    assert results[0] == results[1]


def test_a_back_dated_payment_marks_the_snapshots_it_changes(engine, tmp_path):
    files = _files(
        tmp_path / "inbox",
        [(0, 0, 30, 100_000, 10, False, False), (1, 300, 30, 50_000, None, False, True)],
    )
    home = tmp_path / "home"
    ingest = FileIngest(engine, Settings.from_env({"RECEIVABLES_HOME": str(home)}), AS_OF, "t")
    for name in ("customers.csv", "invoices.csv", "payments_a.csv"):
        ingest.ingest(files[name])
    _risk(engine)
    ingest.ingest(files["payments_b.csv"])  # I0 paid on 2023-02-10: back-dated by 16 months
    with engine.connect() as conn:
        earliest = dict(
            conn.execute(
                sa.select(ingested_files.c.file_name, ingested_files.c.earliest_date)
            ).all()
        )
    assert earliest["payments_b.csv"] == dt.date(2023, 2, 10)
    assert earliest["invoices.csv"] == FIRST
    assert earliest["customers.csv"] is None
    from receivables.aging import stale_or_missing
    from receivables.risk.provisions import months_back

    month_ends = [months_back(dt.date(2024, 6, 30), n) for n in range(18)]
    stale = stale_or_missing(engine, month_ends)
    assert stale == sorted(d for d in month_ends if d >= dt.date(2023, 2, 28))
