"""The fx_rates file kind through the real per-file ingest, on SQLite and PostgreSQL.

Exchange rates are exact (integer units of 1e-10 from the text, never a float), one per date
and currency (a repeated pair holds back every copy), a later file corrects an earlier rate, and
the reporting currency's own rate can only be 1. The GX suites of every kind agree with the kind
declarations.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from receivables.config import Settings
from receivables.ingest import rules
from receivables.ingest.kinds import KINDS
from receivables.ingest.pipeline import FileIngest, discover
from receivables.ingest.validation import load_suite_definitions
from receivables.warehouse.schema import fx_rates
from tests.helpers import INGEST_AS_OF, drop, exported

AS_OF = INGEST_AS_OF
HEADER = "rate_date,currency,rate\n"


def rates(engine) -> dict[tuple[dt.date, str], tuple[Decimal, int]]:
    with engine.connect() as conn:
        found = conn.execute(sa.select(fx_rates)).all()
    return {(r.rate_date, r.currency): (r.rate, r.source_file_id) for r in found}


def rejects(engine, tmp_path) -> dict[tuple[str, str, str], dict]:
    found, _text = exported(engine, "rejects", tmp_path)
    return {(r["file"], r["row_number"], r["column"]): r for r in found}


def test_a_good_file_loads_exact_rates(ingest, engine, home):
    inbox = home / "inbox"
    drop(
        inbox,
        "FX_Rates_2024-03-01.csv",
        HEADER + "2024-03-01,IDR,0.0004412345\n"
        "2024-03-01,USD,7.1234\n"
        "2024/03/01,hkd,0.9123456789\n"
        "20240301,KWD,23.1\n"
        "2024-03-01,CNY,1.0000000000\n"  # the reporting currency, at its only possible rate
        "2024-03-02,XAF,99999999.9999999999\n",  # the largest rate the warehouse holds
    )
    outcome = ingest.ingest(inbox / "FX_Rates_2024-03-01.csv")
    assert (outcome.kind, outcome.status, outcome.rows_loaded, outcome.rows_quarantined) == (
        "fx_rates",
        "loaded",
        6,
        0,
    )
    day = dt.date(2024, 3, 1)
    found = rates(engine)
    assert {key: rate for key, (rate, _) in found.items()} == {
        (day, "IDR"): Decimal("0.0004412345"),
        (day, "USD"): Decimal("7.1234000000"),
        (day, "HKD"): Decimal("0.9123456789"),
        (day, "KWD"): Decimal("23.1000000000"),
        (day, "CNY"): Decimal("1.0000000000"),
        (dt.date(2024, 3, 2), "XAF"): Decimal("99999999.9999999999"),
    }
    assert {file_id for _, file_id in found.values()} == {outcome.file_id}
    assert not list(inbox.iterdir())  # archived


def test_bad_rate_rows_are_quarantined_with_their_reasons(ingest, engine, home, tmp_path):
    inbox = home / "inbox"
    drop(
        inbox,
        "fx_rates.csv",
        HEADER + "2024-03-01,USD,7.1234\n"  # 1: good
        "2024-02-30,EUR,7.8\n"  # 2: no such day
        "2024-03-01,JPY,0\n"  # 3
        "2024-03-01,GBP,-9.1\n"  # 4
        "2024-03-01,IDR,0.00044123451\n"  # 5: 11 decimals
        "2024-03-01,SGD,five\n"  # 6
        "2024-03-01,ZZZ,1.5\n"  # 7: no such currency
        "2024-03-02,USD,7.1\n"  # 8: repeated date and currency ...
        "20240302,usd,7.2\n"  # 9: ... written differently
        "2024-03-01,CNY,7\n"  # 10: the reporting currency
        "2024-03-01,,1.1\n"  # 11
        "2024-03-01,EUR,7.8\n",  # 12: good
    )
    outcome = ingest.ingest(inbox / "fx_rates.csv")
    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == (12, 2, 10)
    day = dt.date(2024, 3, 1)
    assert {key: rate for key, (rate, _) in rates(engine).items()} == {
        (day, "USD"): Decimal("7.1234"),
        (day, "EUR"): Decimal("7.8"),
    }
    found = rejects(engine, tmp_path)

    def reason(row: int, column: str) -> str:
        return found[("fx_rates.csv", str(row), column)]["reason"]

    assert reason(2, "rate_date") == rules.REASON_DATE
    assert reason(3, "rate") == "must be greater than 0"
    assert reason(4, "rate") == "must be greater than 0"
    assert reason(5, "rate") == "more than 10 decimal places: rates are kept to 10 decimal places"
    assert reason(6, "rate") == rules.REASON_RATE
    assert reason(7, "currency") == rules.REASON_CURRENCY
    for row in (8, 9):
        line = found[("fx_rates.csv", str(row), "rate_id")]
        assert (line["record_id"], line["value"]) == ("2024-03-02 USD", "2024-03-02 USD")
        assert line["reason"] == "rate_id appears 2 times in this file; every copy is held back"
    line = found[("fx_rates.csv", "10", "rate")]
    assert (line["record_id"], line["value"], line["reason"]) == (
        "2024-03-01 CNY",
        "7",
        "CNY is the reporting currency: its rate is always 1",
    )
    assert reason(11, "currency") == rules.REASON_REQUIRED
    assert found[("fx_rates.csv", "2", "rate_date")]["record_id"] == "2024-02-30 EUR"


def test_a_later_file_corrects_a_rate(ingest, engine, home):
    inbox = home / "inbox"
    drop(inbox, "fx_rates_1.csv", HEADER + "2024-03-01,USD,7.1234\n2024-03-01,EUR,7.8\n")
    first = ingest.ingest(inbox / "fx_rates_1.csv")
    drop(inbox, "fx_rates_2.csv", HEADER + "2024-03-01,usd,7.2\n2024-03-04,USD,7.25\n")
    second = ingest.ingest(inbox / "fx_rates_2.csv")
    assert (second.status, second.rows_loaded, second.rows_quarantined) == ("loaded", 2, 0)
    assert rates(engine) == {
        (dt.date(2024, 3, 1), "USD"): (Decimal("7.2"), second.file_id),
        (dt.date(2024, 3, 1), "EUR"): (Decimal("7.8"), first.file_id),
        (dt.date(2024, 3, 4), "USD"): (Decimal("7.25"), second.file_id),
    }


def test_the_reporting_currency_comes_from_the_policy(home, engine, tmp_path, monkeypatch):
    policy = tmp_path / "policy.toml"
    policy.write_text('[currency]\nreporting_currency = "USD"\n', encoding="utf-8")
    monkeypatch.setenv("RECEIVABLES_CONFIG", str(policy))
    ingest = FileIngest(engine, Settings.from_env(), AS_OF, "test-run")
    inbox = home / "inbox"
    drop(inbox, "fx_rates.csv", HEADER + "2024-03-01,USD,7.1\n2024-03-01,CNY,0.14\n")
    outcome = ingest.ingest(inbox / "fx_rates.csv")
    assert (outcome.rows_loaded, outcome.rows_quarantined) == (1, 1)
    assert rates(engine) == {(dt.date(2024, 3, 1), "CNY"): (Decimal("0.14"), outcome.file_id)}
    line = rejects(engine, tmp_path)[("fx_rates.csv", "1", "rate")]
    assert line["reason"] == "USD is the reporting currency: its rate is always 1"


def test_typed_parquet_rates_load_exactly(ingest, engine, home):
    import pyarrow as pa
    import pyarrow.parquet as pq

    inbox = home / "inbox"
    pq.write_table(
        pa.table(
            {
                "rate_date": pa.array([dt.date(2024, 3, 1)] * 3, pa.date32()),
                "currency": ["IDR", "USD", "JPY"],
                "rate": pa.array(
                    [Decimal("0.0004412345"), Decimal("7.1234"), Decimal("0.0481234567")],
                    pa.decimal128(20, 10),
                ),
            }
        ),
        inbox / "fx_rates.parquet",
    )
    # a float column reads as its shortest exact text, never with binary noise
    pq.write_table(
        pa.table(
            {
                "rate_date": ["2024-03-04"],
                "currency": ["USD"],
                "rate": pa.array([7.1234], pa.float64()),
            }
        ),
        inbox / "fx_rates_float.parquet",
    )
    assert ingest.ingest(inbox / "fx_rates.parquet").rows_loaded == 3
    assert ingest.ingest(inbox / "fx_rates_float.parquet").rows_loaded == 1
    assert {key: rate for key, (rate, _) in rates(engine).items()} == {
        (dt.date(2024, 3, 1), "IDR"): Decimal("0.0004412345"),
        (dt.date(2024, 3, 1), "USD"): Decimal("7.1234"),
        (dt.date(2024, 3, 1), "JPY"): Decimal("0.0481234567"),
        (dt.date(2024, 3, 4), "USD"): Decimal("7.1234"),
    }


def test_a_file_without_a_required_column_is_refused(ingest, engine, home):
    inbox = home / "inbox"
    drop(inbox, "fx_rates.csv", "rate_date,currency,value\n2024-03-01,USD,7.1\n")
    outcome = ingest.ingest(inbox / "fx_rates.csv")
    assert outcome.status == "rejected"
    assert "missing required column(s): rate" in outcome.reason
    assert rates(engine) == {}


@pytest.mark.parametrize(
    ("parser", "line", "failing"),
    [
        ("rate", "2024-03-01,USD,-7.1", "rate_e10"),  # a rate check that forgot "> 0"
        ("currency", "2024-03-01,usd,7.1", "currency"),  # a code check that forgot upper case
    ],
)
def test_great_expectations_is_the_gate_before_the_merge(
    ingest, engine, home, monkeypatch, parser, line, failing
):
    real = rules.PARSERS[parser]

    def forgetful(values, column):
        parsed = real(values, column)
        if parser == "rate":
            parsed.failures = [f for f in parsed.failures if f[1] != rules.REASON_AMOUNT_POSITIVE]
        else:
            parsed.values = values
        return parsed

    monkeypatch.setitem(rules.PARSERS, parser, forgetful)
    inbox = home / "inbox"
    drop(inbox, "fx_rates.csv", HEADER + line + "\n")
    outcome = ingest.ingest(inbox / "fx_rates.csv")
    assert outcome.status == "rejected"
    assert "fx_rates_staged failed" in outcome.reason
    assert f"column={failing}" in outcome.reason
    assert rates(engine) == {}


def test_a_malformed_line_is_quarantined_like_any_other(ingest, engine, home, tmp_path):
    # A line the reader cannot split: its id is read from the date and currency it carries.
    inbox = home / "inbox"
    drop(inbox, "fx_rates.csv", HEADER + "2024-03-01,USD,7.1\n2024-03-01,EUR\n")
    outcome = ingest.ingest(inbox / "fx_rates.csv")
    assert (outcome.rows_loaded, outcome.rows_quarantined) == (1, 1)
    line = rejects(engine, tmp_path)[("fx_rates.csv", "2", "")]
    assert line["record_id"] == "2024-03-01 EUR"


def test_discover_lists_rate_files_first(tmp_path):
    for name in ("payments.csv", "FX_RATES_2024-03.csv", "fx_rates_b.xlsx", "legal_updates.csv"):
        (tmp_path / name).write_text("x")
    found = discover(tmp_path)
    assert next(iter(found.by_kind)) == "fx_rates"
    assert [Path(p).name for p in found.by_kind["fx_rates"]] == [
        "FX_RATES_2024-03.csv",
        "fx_rates_b.xlsx",
    ]
    assert [Path(p).name for p in found.by_kind["legal_updates"]] == ["legal_updates.csv"]
    assert found.waiting == []


def test_the_suites_agree_with_the_kinds():
    suites = load_suite_definitions()
    assert set(suites) == {f"{k}_{part}" for k in KINDS for part in ("header", "staged")}
    for name, kind in KINDS.items():
        header = suites[f"{name}_header"]["expectations"]
        assert {e["type"] for e in header} == {"expect_column_to_exist"}
        assert [e["kwargs"]["column"] for e in header] == list(kind.required)
        staged_columns = {c.staged_name for c in kind.columns}
        for expectation in suites[f"{name}_staged"]["expectations"]:
            kwargs = expectation["kwargs"]
            named = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
            named += kwargs.get("column_list", [])
            assert named, expectation
            assert set(named) <= staged_columns, (name, expectation)
    fx_staged = suites["fx_rates_staged"]["expectations"]
    assert {
        e["kwargs"]["column"]
        for e in fx_staged
        if e["type"] == "expect_column_values_to_not_be_null"
    } == {"rate_date", "currency", "rate_e10"}
    fx = {e["type"]: e["kwargs"] for e in fx_staged}
    assert fx["expect_column_values_to_be_between"] == {
        "column": "rate_e10",
        "min_value": 0,
        "strict_min": True,
    }
    assert fx["expect_column_values_to_match_regex"] == {
        "column": "currency",
        "regex": "^[A-Z]{3}$",
    }
    assert fx["expect_compound_columns_to_be_unique"] == {"column_list": ["rate_date", "currency"]}
