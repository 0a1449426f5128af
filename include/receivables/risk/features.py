"""Behaviour features per customer as of a date, and the credit model's target.

One implementation serves training (many month-ends) and daily scoring (one as-of date), so
the model sees in production exactly what it was trained on. Everything is computed with numpy
over the whole ledger held as integer arrays (days since 1970-01-01, cents): no per-row Python.

Features of customer *c* as of day *t* (only what was known on *t*):

=========================  ==============================================================
``worst_dpd_3m/6m/12m``    the most days late of an invoice due in the last 3/6/12 months,
                           or still open (paid invoices: days late when settled)
``avg_dpd_3m/6m/12m``      the average days late over the same invoices
``late_share_12m``         share of invoices due in the last 12 months settled (or still
                           open) more than 30 days past due
``partial_ratio_12m``      share of those invoices paid in instalments or only in part
``utilisation``            outstanding ÷ credit limit (missing without a limit)
``tenure_months``          months since the first invoice, counted up to 12 (a ledger
                           rarely holds a customer's whole history: beyond the longest
                           window a longer count would measure the ledger, not the customer)
``disputed_share_12m``     share of invoices issued in the last 12 months marked disputed
``overdue_share``          overdue ÷ total outstanding (missing when nothing is owed)
=========================  ==============================================================

The target ("bad") of *c* at *t*: an invoice of *c* reaches the configured days past due
(default 90) during the horizon (default the 6 months after *t*) without being paid in full.
Customers already that far past due at *t* are not in the population of *t*.

Limits, stated in the model card: the ledger keeps only the current ``disputed`` flag and
credit limit, so for past dates they are the values known today.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from receivables.warehouse import sqlfiles

log = logging.getLogger(__name__)

EPOCH = dt.date(1970, 1, 1)
NEVER = np.iinfo(np.int32).max
WINDOWS = {"3m": 91, "6m": 182, "12m": 365}
LATE_DAYS = 30
TENURE_CAP_MONTHS = 12.0

FEATURES = (
    "worst_dpd_3m",
    "worst_dpd_6m",
    "worst_dpd_12m",
    "avg_dpd_3m",
    "avg_dpd_6m",
    "avg_dpd_12m",
    "late_share_12m",
    "partial_ratio_12m",
    "utilisation",
    "tenure_months",
    "disputed_share_12m",
    "overdue_share",
)


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01."""
    return (day - EPOCH).days


@dataclass
class LedgerArrays:
    """The ledger as numpy arrays; invoices sorted by customer."""

    customer_ids: np.ndarray
    credit_limit: np.ndarray  # cents, NaN without a limit
    segment: np.ndarray  # object: the customer's segment, None or "" when unknown
    inv_customer: np.ndarray
    inv_issue: np.ndarray
    inv_due: np.ndarray
    inv_amount: np.ndarray
    inv_disputed: np.ndarray
    inv_full_paid: np.ndarray  # the day payments reached the amount, NEVER if not (yet)
    pay_invoice: np.ndarray
    pay_day: np.ndarray
    pay_amount: np.ndarray

    @property
    def customers(self) -> int:
        """Number of customers."""
        return len(self.customer_ids)


def _fetch(engine: Engine, name: str, columns: list[str], dtypes: list) -> dict[str, np.ndarray]:
    """Run ``sql/<name>`` and return its columns as numpy arrays, without a Python object per
    row where it can: PostgreSQL streams the result as CSV through ``COPY … TO STDOUT``;
    SQLite's rows are fetched in large chunks."""
    (statement,) = sqlfiles.render(name, engine.dialect.name)
    if engine.dialect.name == "postgresql":
        return _fetch_copy(engine, statement, columns, dtypes)
    parts: dict[str, list[np.ndarray]] = {c: [] for c in columns}
    with engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.execute(statement)
            names = [d[0] for d in cursor.description]
            while rows := cursor.fetchmany(250_000):
                values = list(zip(*rows, strict=True))
                for column, dtype in zip(columns, dtypes, strict=True):
                    parts[column].append(_as_array(values[names.index(column)], dtype))
        finally:
            cursor.close()
    return {
        c: np.concatenate(parts[c]) if parts[c] else np.empty(0, dtype=d)
        for c, d in zip(columns, dtypes, strict=True)
    }


def _as_array(values: tuple, dtype) -> np.ndarray:
    if dtype is object:
        return np.asarray(values, dtype=object)
    if dtype is float:
        return np.asarray([np.nan if v is None else v for v in values], dtype=float)
    return np.asarray(values, dtype=dtype)


def _fetch_copy(
    engine: Engine, statement: str, columns: list[str], dtypes: list
) -> dict[str, np.ndarray]:
    import io

    import pyarrow as pa
    import pyarrow.csv as pcsv

    buffer = io.BytesIO()
    with engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            with cursor.copy(f"COPY ({statement}) TO STDOUT WITH (FORMAT csv, HEADER true)") as out:
                for block in out:
                    buffer.write(block)
        finally:
            cursor.close()
    buffer.seek(0)
    types = {
        c: (pa.string() if d is object else pa.float64() if d is float else pa.int64())
        for c, d in zip(columns, dtypes, strict=True)
    }
    table = pcsv.read_csv(buffer, convert_options=pcsv.ConvertOptions(column_types=types))
    result = {}
    for column, dtype in zip(columns, dtypes, strict=True):
        array = table.column(column)
        if dtype is object:
            result[column] = np.asarray(array.to_pylist(), dtype=object)
        elif dtype is float:
            result[column] = array.to_numpy().astype(float)
        else:
            result[column] = array.to_numpy().astype(dtype)
    return result


def load_ledger(engine: Engine) -> LedgerArrays:
    """Read customers, invoices and payments as integer arrays (streamed in chunks)."""
    customers = _fetch(
        engine,
        "risk/ledger_customers.sql",
        ["customer_id", "credit_limit_cents", "segment"],
        [object, float, object],
    )
    invoices = _fetch(
        engine,
        "risk/ledger_invoices.sql",
        ["idx", "customer_idx", "issue_day", "due_day", "amount_cents", "disputed"],
        [np.int64, np.int32, np.int32, np.int32, np.int64, np.int8],
    )
    payments = _fetch(
        engine,
        "risk/ledger_payments.sql",
        ["invoice_idx", "paid_day", "amount_cents"],
        [np.int64, np.int32, np.int64],
    )
    # full-payment day of every invoice: payments in date order, the first day the running
    # total reaches the amount
    n_inv = len(invoices["idx"])
    order = np.lexsort((payments["paid_day"], payments["invoice_idx"]))
    p_inv = payments["invoice_idx"][order]
    p_day = payments["paid_day"][order]
    p_amt = payments["amount_cents"][order]
    running = np.cumsum(p_amt)
    group_start = np.r_[0, np.flatnonzero(np.diff(p_inv)) + 1] if len(p_inv) else np.empty(0, int)
    offsets = np.zeros(len(p_inv), dtype=np.int64)
    if len(p_inv):
        starts_running = np.r_[0, running[group_start[1:] - 1]]
        offsets = np.repeat(starts_running, np.diff(np.r_[group_start, len(p_inv)]))
    paid_so_far = running - offsets
    amount_by_invoice = np.empty(n_inv, dtype=np.int64)
    amount_by_invoice[invoices["idx"]] = invoices["amount_cents"]
    reached = paid_so_far >= amount_by_invoice[p_inv] if len(p_inv) else np.zeros(0, bool)
    full_paid = np.full(n_inv, NEVER, dtype=np.int64)
    np.minimum.at(full_paid, p_inv[reached], p_day[reached].astype(np.int64))
    # invoices in customer order, payments re-pointed to the new invoice positions
    by_customer = np.argsort(invoices["customer_idx"], kind="stable")
    position = np.empty(n_inv, dtype=np.int64)
    position[invoices["idx"][by_customer]] = np.arange(n_inv)
    return LedgerArrays(
        customer_ids=customers["customer_id"],
        credit_limit=customers["credit_limit_cents"],
        segment=customers["segment"],
        inv_customer=invoices["customer_idx"][by_customer],
        inv_issue=invoices["issue_day"][by_customer],
        inv_due=invoices["due_day"][by_customer],
        inv_amount=invoices["amount_cents"][by_customer],
        inv_disputed=invoices["disputed"][by_customer].astype(bool),
        inv_full_paid=full_paid[invoices["idx"][by_customer]],
        pay_invoice=position[payments["invoice_idx"]],
        pay_day=payments["paid_day"],
        pay_amount=payments["amount_cents"],
    )


def _per_customer(
    ledger: LedgerArrays, values: np.ndarray, how: str, empty: float = 0.0
) -> np.ndarray:
    """Sum or max of per-invoice ``values`` per customer (``empty`` without invoices)."""
    n = ledger.customers
    if how == "sum":
        # astype: bincount of nothing comes back as integers
        return np.bincount(ledger.inv_customer, weights=values, minlength=n).astype(float)
    counts = np.bincount(ledger.inv_customer, minlength=n)
    result = np.full(n, empty, dtype=float)
    nonempty = counts > 0
    if values.size:
        starts = np.r_[0, np.cumsum(counts)[:-1]][nonempty]
        result[nonempty] = np.maximum.reduceat(values, starts)
    return result


def features_at(ledger: LedgerArrays, day: dt.date) -> pd.DataFrame:
    """Features of every customer with an invoice issued on or before ``day`` (one row each,
    indexed by customer position), plus ``worst_open_dpd`` (days past due of its oldest open
    invoice on ``day``) and the counts behind the shares."""
    t = day_number(day)
    issued = ledger.inv_issue <= t
    paid_mask = ledger.pay_day <= t
    paid = np.bincount(
        ledger.pay_invoice[paid_mask],
        weights=ledger.pay_amount[paid_mask],
        minlength=len(ledger.inv_issue),
    )
    payments_made = np.bincount(ledger.pay_invoice[paid_mask], minlength=len(ledger.inv_issue))
    settled = ledger.inv_full_paid <= t
    open_ = issued & ~settled
    due_passed = issued & (ledger.inv_due <= t)
    late = np.where(
        settled,
        np.maximum(ledger.inv_full_paid - ledger.inv_due, 0),
        np.maximum(t - ledger.inv_due, 0),
    ).astype(float)
    outstanding = np.where(open_, ledger.inv_amount - paid, 0.0)
    overdue = np.where(open_ & (ledger.inv_due < t), outstanding, 0.0)

    out: dict[str, np.ndarray] = {}
    for label, days in WINDOWS.items():
        relevant = due_passed & ((ledger.inv_due > t - days) | open_)
        count = _per_customer(ledger, relevant.astype(float), "sum")
        total = _per_customer(ledger, np.where(relevant, late, 0.0), "sum")
        out[f"worst_dpd_{label}"] = _per_customer(ledger, np.where(relevant, late, 0.0), "max")
        out[f"avg_dpd_{label}"] = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
        if label == "12m":
            due_12m = count
            late_12m = _per_customer(ledger, (relevant & (late > LATE_DAYS)).astype(float), "sum")
            partial = relevant & ((payments_made >= 2) | (open_ & (paid > 0)))
            partial_12m = _per_customer(ledger, partial.astype(float), "sum")
    recent = issued & (ledger.inv_issue > t - WINDOWS["12m"])
    issued_12m = _per_customer(ledger, recent.astype(float), "sum")
    disputed_12m = _per_customer(ledger, (recent & ledger.inv_disputed).astype(float), "sum")
    owed = _per_customer(ledger, outstanding, "sum")
    overdue_total = _per_customer(ledger, overdue, "sum")
    first_issue = _per_customer(
        ledger, np.where(issued, -ledger.inv_issue, -NEVER), "max", empty=-NEVER
    )
    has_invoice = first_issue > -NEVER
    worst_open = _per_customer(
        ledger, np.where(open_, np.maximum(t - ledger.inv_due, 0), 0).astype(float), "max"
    )

    with np.errstate(divide="ignore", invalid="ignore"):
        out["late_share_12m"] = np.where(due_12m > 0, late_12m / due_12m, np.nan)
        out["partial_ratio_12m"] = np.where(due_12m > 0, partial_12m / due_12m, np.nan)
        limit = ledger.credit_limit
        out["utilisation"] = np.where(limit > 0, owed / limit, np.nan)
        out["tenure_months"] = np.where(
            has_invoice, np.minimum((t + first_issue) / 30.4375, TENURE_CAP_MONTHS), 0.0
        )
        out["disputed_share_12m"] = np.where(issued_12m > 0, disputed_12m / issued_12m, np.nan)
        out["overdue_share"] = np.where(owed > 0, overdue_total / owed, np.nan)
    frame = pd.DataFrame({name: out[name] for name in FEATURES})
    frame["due_12m"] = due_12m
    frame["late_12m"] = late_12m
    frame["partial_12m"] = partial_12m
    frame["issued_12m"] = issued_12m
    frame["disputed_12m"] = disputed_12m
    frame["outstanding_cents"] = owed
    frame["worst_open_dpd"] = worst_open
    frame["customer_id"] = ledger.customer_ids
    return frame[has_invoice]


def targets_at(
    ledger: LedgerArrays, day: dt.date, horizon_end: dt.date, bad_days: int
) -> np.ndarray:
    """Per customer: does an invoice reach ``bad_days`` past due after ``day`` and by
    ``horizon_end`` without being paid in full by then?"""
    t, end = day_number(day), day_number(horizon_end)
    crossing = ledger.inv_due + bad_days
    bad = (crossing > t) & (crossing <= end) & (ledger.inv_full_paid > crossing)
    return _per_customer(ledger, bad.astype(float), "max") > 0
