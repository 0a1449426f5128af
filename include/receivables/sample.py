"""Deterministic, realistic sample ledgers for demos, tests and the benchmark.

:func:`generate_sample` writes ``collectors``, ``customers``, ``invoices``, ``payments`` and
``feedback`` files (CSV by default, or XLSX / Parquet) whose columns are the project's input
contract (see :data:`COLUMNS`). Everything is drawn from numpy generators keyed on ``seed``
(and Faker provider word lists), never from the clock, so the same arguments always give
byte-identical files. The invoice and payment tables are built with vectorised numpy / pyarrow
code, chunk by chunk of customers, so 250 000 customers (about 5 million invoices) stay fast
and within a few hundred MB.

Behaviours
----------
Every customer is given one hidden behaviour (:func:`customer_behaviours`, or ``truth=True`` to
write ``_truth.csv``) which drives its whole payment history:

* ``on_time`` (~55 %): pays each invoice in full a few days either side of the due date.
* ``habitually_late`` (~20 %): pays in full, consistently 10-60 days late (a customer-specific
  habit, so it is stable and does not by itself lead to default).
* ``partial`` (~10 %): settles most invoices in 2-3 instalments and sometimes leaves a small
  remainder open for good.
* ``disputer`` (~5 %): disputes 20-40 % of its invoices (``disputed=true``); those are paid very
  late or never; the rest is paid somewhat late.
* ``defaulter`` (~10 %): looks like an on-time or late payer until a customer-specific
  deterioration date (spread over the history, about 30 % of them in the last six months). From
  then on every payment slips further (a customer-specific 8-20 extra days per month since the
  deterioration), instalments and disputes become more frequent and it buys less; after a stop
  date 2.5-7 months later it pays nothing at all, the seller stops invoicing it a few weeks
  later, and its open invoices age into 91-180, 181-360 and 361+ days past due.

Why a credit model can learn it: the deterioration always precedes the stop by months, so at any
cut-off the customers that will reach 90+ days past due during the next six months are mostly
already showing it in behaviour features computed from the ledger up to the cut-off -- growing
days-to-pay trend, more instalments per invoice, rising disputed share and overdue balance --
while stable late payers keep a flat (if high) lateness, which separates them from deteriorating
customers.

Customers are Chinese (~80 %, zh-CN, mostly CNY, some HKD in Hong Kong) or English-speaking
(~20 %, mostly USD) companies; names follow Faker's zh_CN / en_US / en_GB company styles but are
composed from word lists (Faker's own zh_CN list has only 332 distinct names), and every e-mail
address lives under an RFC 2606 domain (``*.example.com``, ``*.example.net``, ``*.example.org``).
With the default mix about 15-20 % of the outstanding amount is overdue at ``as_of``, spread over
every aging bucket.

Defects
-------
With ``defects > 0`` that fraction of invoice, payment and customer rows (at least one of every
kind) is corrupted in realistic ways -- unparseable dates, malformed or negative amounts, missing
required values, due dates before issue dates, duplicate invoice ids, payments for unknown
invoices and invalid e-mail addresses -- and counted by kind in :class:`SampleSummary`.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = [
    "BEHAVIOURS",
    "COLUMNS",
    "FILE_FORMATS",
    "PAYMENT_METHODS",
    "SampleSummary",
    "customer_behaviours",
    "generate_sample",
]

COLUMNS: dict[str, tuple[str, ...]] = {
    "collectors": ("collector_id", "name", "email", "team"),
    "customers": (
        "customer_id",
        "name",
        "email",
        "phone",
        "locale",
        "timezone",
        "segment",
        "credit_limit",
        "currency",
        "collector_id",
        "do_not_contact",
    ),
    "invoices": (
        "invoice_id",
        "customer_id",
        "issue_date",
        "due_date",
        "amount",
        "currency",
        "description",
        "disputed",
    ),
    "payments": ("payment_id", "invoice_id", "paid_date", "amount", "method"),
    "fx_rates": ("rate_date", "currency", "rate"),
    "feedback": ("feedback_id", "date", "author", "team", "topic", "text"),
}
"""Columns of every sample file, in file order (the project's input contract)."""

BEHAVIOURS: tuple[str, ...] = ("on_time", "habitually_late", "partial", "disputer", "defaulter")
"""Hidden payment behaviours, see the module docstring."""

PAYMENT_METHODS: tuple[str, ...] = ("bank_transfer", "cheque", "alipay", "wechat_pay", "card")
"""Values of ``payments.method``."""

FILE_FORMATS: tuple[str, ...] = ("csv", "xlsx", "parquet")
"""Supported values of ``generate_sample(file_format=...)``."""

_ON_TIME, _LATE, _PARTIAL, _DISPUTER, _DEFAULTER = range(5)
_BEHAVIOUR_P = (0.55, 0.20, 0.10, 0.05, 0.10)

# Customers are simulated in blocks so that memory stays flat whatever the size of the ledger.
_CHUNK_CUSTOMERS = 25_000
_DAYS_PER_MONTH = 30.4375
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

_SEGMENTS = ("corporate", "sme", "retail")
# Segment mix by behaviour: small customers default and pay in instalments more often, which
# also keeps the overdue share of the (amount-weighted) ledger realistic.
_SEGMENT_P = (
    (0.28, 0.50, 0.22),
    (0.12, 0.52, 0.36),
    (0.10, 0.50, 0.40),
    (0.15, 0.55, 0.30),
    (0.05, 0.45, 0.50),
)
# Invoices per month for an average customer of the segment; ~20 invoices per customer per
# 24 months overall once late onboarding and defaulters' credit holds are accounted for.
_SEGMENT_RATE = (1.62, 0.87, 0.49)
# Median invoice in CNY and the spread of customer sizes around it.
_SEGMENT_MEDIAN_CNY = (150_000.0, 30_000.0, 5_000.0)
_SEGMENT_SIGMA = (0.7, 0.7, 0.6)
_TERMS = (30, 45, 60, 90)
_SEGMENT_TERMS_P = ((0.2, 0.2, 0.35, 0.25), (0.4, 0.25, 0.25, 0.1), (0.7, 0.15, 0.15, 0.0))

_CURRENCIES = ("CNY", "USD", "HKD")
_CNY_PER_UNIT = (1.0, 7.2, 1 / 1.09)

_TEAMS = ("East China", "South China", "North China", "Central & West China", "International")

# (name, pinyin, team index, telephone area code, weight)
_CITIES = (
    ("上海", "shanghai", 0, "21", 14),
    ("杭州", "hangzhou", 0, "571", 6),
    ("南京", "nanjing", 0, "25", 5),
    ("苏州", "suzhou", 0, "512", 6),
    ("宁波", "ningbo", 0, "574", 4),
    ("无锡", "wuxi", 0, "510", 3),
    ("合肥", "hefei", 0, "551", 2),
    ("温州", "wenzhou", 0, "577", 2),
    ("广州", "guangzhou", 1, "20", 8),
    ("深圳", "shenzhen", 1, "755", 9),
    ("东莞", "dongguan", 1, "769", 4),
    ("佛山", "foshan", 1, "757", 3),
    ("厦门", "xiamen", 1, "592", 3),
    ("福州", "fuzhou", 1, "591", 2),
    ("北京", "beijing", 2, "10", 8),
    ("天津", "tianjin", 2, "22", 3),
    ("青岛", "qingdao", 2, "532", 3),
    ("济南", "jinan", 2, "531", 2),
    ("大连", "dalian", 2, "411", 2),
    ("沈阳", "shenyang", 2, "24", 2),
    ("武汉", "wuhan", 3, "27", 3),
    ("长沙", "changsha", 3, "731", 2),
    ("成都", "chengdu", 3, "28", 4),
    ("重庆", "chongqing", 3, "23", 3),
    ("西安", "xian", 3, "29", 2),
    ("郑州", "zhengzhou", 3, "371", 2),
    ("香港", "hk", 1, "852", 0),
)
_HONG_KONG = len(_CITIES) - 1

# Trade-name characters with their pinyin, so that e-mail domains match the Chinese name
# (Faker's zh_CN company() only knows 332 distinct names, far too few for 200 000 customers).
_TRADE_CHARS = (
    ("恒", "heng"), ("达", "da"), ("华", "hua"), ("鑫", "xin"), ("泰", "tai"), ("盛", "sheng"),
    ("源", "yuan"), ("隆", "long"), ("兴", "xing"), ("昌", "chang"), ("荣", "rong"), ("富", "fu"),
    ("嘉", "jia"), ("宏", "hong"), ("永", "yong"), ("利", "li"), ("安", "an"), ("康", "kang"),
    ("瑞", "rui"), ("德", "de"), ("和", "he"), ("顺", "shun"), ("丰", "feng"), ("祥", "xiang"),
    ("金", "jin"), ("海", "hai"), ("天", "tian"), ("宇", "yu"), ("中", "zhong"), ("新", "xin"),
    ("博", "bo"), ("创", "chuang"), ("联", "lian"), ("信", "xin"), ("通", "tong"), ("远", "yuan"),
    ("科", "ke"), ("锦", "jin"), ("辉", "hui"), ("明", "ming"), ("诚", "cheng"), ("正", "zheng"),
    ("凯", "kai"), ("龙", "long"), ("星", "xing"), ("光", "guang"), ("晨", "chen"), ("阳", "yang"),
    ("益", "yi"), ("佳", "jia"), ("鼎", "ding"), ("峰", "feng"), ("腾", "teng"), ("飞", "fei"),
    ("威", "wei"), ("豪", "hao"), ("振", "zhen"), ("汇", "hui"), ("万", "wan"), ("国", "guo"),
)  # fmt: skip
_ZH_INDUSTRIES = (
    ("贸易", "trading"), ("科技", "tech"), ("电子", "electronics"), ("机械", "machinery"),
    ("化工", "chemical"), ("纺织", "textile"), ("物流", "logistics"), ("建材", "building"),
    ("食品", "foods"), ("医药", "pharma"), ("包装", "packaging"), ("塑胶", "plastics"),
    ("五金", "hardware"), ("家具", "furniture"), ("服饰", "apparel"), ("汽车配件", "autoparts"),
    ("新材料", "materials"), ("环保", "enviro"), ("印刷", "printing"), ("信息技术", "infotech"),
    ("实业", "industrial"), ("供应链", "supplychain"), ("进出口", "impex"),
)  # fmt: skip
_ZH_FORMS = ("有限公司", "股份有限公司", "有限责任公司", "集团有限公司")
_ZH_FORMS_P = (0.6, 0.15, 0.15, 0.1)
_ZH_SURNAMES = (
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
    ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"),
    ("马", "ma"), ("朱", "zhu"), ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("林", "lin"),
    ("高", "gao"), ("罗", "luo"), ("郑", "zheng"), ("梁", "liang"), ("谢", "xie"), ("宋", "song"),
)  # fmt: skip
_ZH_GIVEN = (
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"),
    ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"),
    ("杰", "jie"), ("娟", "juan"), ("涛", "tao"), ("明", "ming"), ("超", "chao"),
    ("秀英", "xiuying"), ("晓东", "xiaodong"), ("海燕", "haiyan"), ("建华", "jianhua"),
    ("婷婷", "tingting"),
    ("志强", "zhiqiang"), ("丽华", "lihua"), ("玉兰", "yulan"), ("俊杰", "junjie"),
    ("雪梅", "xuemei"), ("文博", "wenbo"), ("思远", "siyuan"), ("佳怡", "jiayi"),
)  # fmt: skip
_ZH_ROLE_MAILBOXES = ("finance", "caiwu", "ar", "accounts", "cw", "fin")

# (timezone, weight, name-suffix region, phone prefix, random phone digits, currency)
_EN_REGIONS = (
    ("America/New_York", 30, 0, "+1 212-555-01", 2, 1),
    ("America/Chicago", 10, 0, "+1 312-555-01", 2, 1),
    ("America/Los_Angeles", 15, 0, "+1 310-555-01", 2, 1),
    ("Europe/London", 20, 1, "+44 20 7946 0", 3, 1),
    ("Asia/Singapore", 12, 2, "+65 6", 7, 1),
    ("Australia/Sydney", 5, 3, "+61 2 5550 ", 4, 1),
    ("Asia/Hong_Kong", 8, 4, "+852 ", 8, 2),
)
_EN_SUFFIXES = (
    ("Inc", "LLC", "Corp", "Group"),
    ("Ltd", "PLC", "Limited", "Group"),
    ("Pte Ltd", "Pte Ltd", "Holdings", "Group"),
    ("Pty Ltd", "Pty Ltd", "Group", "Holdings"),
    ("Limited", "Ltd", "Holdings", "Group"),
)
_EN_INDUSTRIES = (
    "Logistics", "Trading", "Technologies", "Manufacturing", "Foods", "Consulting", "Systems",
    "Supplies", "Engineering", "Industries", "Packaging", "Electronics", "Textiles", "Partners",
    "Components", "Materials",
)  # fmt: skip
_EN_ROLE_MAILBOXES = ("accounts.payable", "ap", "finance", "billing", "accounts", "payables")
_EN_BRANCHES = ("North", "South", "East", "West", "Central", "Pacific", "Atlantic", "Metro")

_ZH_DESCRIPTIONS = (
    "货款", "技术服务费", "物流运输费", "设备租赁费", "原材料款", "维护服务费", "咨询服务费",
    "加工费",
)  # fmt: skip
_EN_DESCRIPTIONS = (
    "Goods delivered", "Services", "Consulting fees", "Freight charges", "Equipment rental",
    "Maintenance", "Software licences", "Raw materials",
)  # fmt: skip
_EN_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip

# Preferred payment method by customer group (zh CNY, zh USD, HKD, en USD); order of
# PAYMENT_METHODS.
_METHOD_P = (
    (0.72, 0.06, 0.10, 0.07, 0.05),
    (0.90, 0.05, 0.0, 0.0, 0.05),
    (0.65, 0.25, 0.0, 0.02, 0.08),
    (0.70, 0.15, 0.0, 0.0, 0.15),
)

_INVOICE_DEFECTS = ("bad_date", "bad_amount", "missing_value", "due_before_issue", "duplicate_id")
_PAYMENT_DEFECTS = ("bad_date", "bad_amount", "missing_value", "unknown_invoice")
_CUSTOMER_DEFECTS = ("invalid_email",)


@dataclass(frozen=True)
class SampleSummary:
    """What :func:`generate_sample` wrote.

    ``paths`` maps each table (``fx_rates``, ``collectors``, ``customers``, ``invoices``,
    ``payments``, ``feedback`` and ``truth`` when requested) to its file; ``defects`` counts
    corrupted rows by ``"<table>.<kind>"`` and is empty for clean data.
    """

    out_dir: Path
    paths: dict[str, Path]
    customers: int
    collectors: int
    invoices: int
    payments: int
    defects: dict[str, int] = field(default_factory=dict)
    fx_rates: int = 0
    #: staff remarks in the ``feedback`` file
    feedback: int = 0

    @property
    def defect_rows(self) -> int:
        """Total number of corrupted rows over all tables."""
        return sum(self.defects.values())


# --------------------------------------------------------------------------------------------
# Random streams and small vectorised helpers


def _rng(seed: int, *key: int) -> np.random.Generator:
    """An independent generator per purpose, so adding a draw somewhere never shifts another."""
    ss = np.random.SeedSequence(entropy=int(seed) & 0xFFFF_FFFF_FFFF_FFFF, spawn_key=key)
    return np.random.Generator(np.random.PCG64(ss))


def _day(d: date) -> int:
    return d.toordinal() - _EPOCH_ORDINAL


def _months_before(d: date, months: int) -> date:
    total = d.year * 12 + d.month - 1 - months
    year, month = divmod(total, 12)
    month += 1
    for day in (d.day, 30, 29, 28):
        try:
            return date(year, month, day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _choice_by_row(rng: np.random.Generator, cdf: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Draw one category per element where each element has its own probability row."""
    u = rng.random(rows.size)
    return (u[:, None] >= cdf[rows]).sum(axis=1).clip(max=cdf.shape[1] - 1)


def _s(values: np.ndarray) -> pa.Array:
    return pa.array(values).cast(pa.string())


def _take(vocab: Sequence[str], idx: np.ndarray) -> pa.Array:
    return pa.array(vocab, pa.string()).take(pa.array(idx))


def _join(*parts: pa.Array | str, sep: str = "") -> pa.Array:
    return pc.binary_join_element_wise(*parts, sep)


def _lpad(values: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(_s(values), width, "0")


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array(days.astype(np.int32), pa.int32()).cast(pa.date32()).cast(pa.string())


def _money(cents: np.ndarray) -> pa.Array:
    """Amounts as text with exactly two decimals, built from integer cents (no float)."""
    cents = cents.astype(np.int64)
    sign = np.where(cents < 0, "-", "")
    mag = np.abs(cents)
    return _join(_s(sign), _s(mag // 100), ".", _lpad(mag % 100, 2))


def _bools(values: np.ndarray) -> pa.Array:
    return _take(("false", "true"), values.astype(np.int8))


def _years(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


def _dup_rank(values: pa.Array) -> np.ndarray:
    """0 for the first occurrence of a value, 1 for the second, and so on."""
    series = pd.Series(values.to_numpy(zero_copy_only=False))
    return series.groupby(series, sort=False).cumcount().to_numpy()


def _group_positions(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For groups of sizes ``k`` laid out one after another: (group index, position in group)."""
    group = np.repeat(np.arange(k.size), k)
    first = np.cumsum(k) - k
    return group, np.arange(group.size) - first[group]


# --------------------------------------------------------------------------------------------
# Customers (every customer level attribute is drawn once, for all customers)


@dataclass
class _Customers:
    n: int
    ids: pa.Array
    behaviour: np.ndarray
    en: np.ndarray
    city: np.ndarray
    en_region: np.ndarray
    timezone: np.ndarray
    currency: np.ndarray
    segment: np.ndarray
    terms: np.ndarray
    start: np.ndarray
    end: np.ndarray
    rate: np.ndarray
    typical_cents: np.ndarray
    round_amounts: np.ndarray
    delay_mean: np.ndarray
    delay_sd: np.ndarray
    dispute_p: np.ndarray
    method: np.ndarray
    deterioration: np.ndarray
    stop: np.ndarray
    slope: np.ndarray
    description: np.ndarray
    credit_limit: np.ndarray
    do_not_contact: np.ndarray
    team: np.ndarray


def _behaviour_codes(customers: int, seed: int) -> np.ndarray:
    return _rng(seed, 1).choice(len(BEHAVIOURS), size=customers, p=_BEHAVIOUR_P).astype(np.int8)


def _customer_ids(n: int) -> pa.Array:
    return _join("C", _lpad(np.arange(1, n + 1), 6))


def customer_behaviours(customers: int, seed: int = 42) -> dict[str, str]:
    """Hidden behaviour of each customer id for ``generate_sample(customers=..., seed=...)``.

    The assignment depends only on the number of customers and the seed, so tests and model
    evaluations can recover the ground truth without it ever being written to the ledger files.
    """
    codes = _behaviour_codes(customers, seed)
    return dict(
        zip(_customer_ids(customers).to_pylist(), (BEHAVIOURS[c] for c in codes), strict=True)
    )


def _draw_customers(n: int, seed: int, start_day: int, as_of_day: int) -> _Customers:
    rng = _rng(seed, 2)
    behaviour = _behaviour_codes(n, seed)
    en = rng.random(n) < 0.2

    city_w = np.array([c[4] for c in _CITIES], dtype=float)
    city = rng.choice(len(_CITIES), size=n, p=city_w / city_w.sum())
    hk = rng.random(n) < 0.08
    city = np.where(hk, _HONG_KONG, city)
    region_w = np.array([r[1] for r in _EN_REGIONS], dtype=float)
    en_region = rng.choice(len(_EN_REGIONS), size=n, p=region_w / region_w.sum())

    zh_tz = np.where(city == _HONG_KONG, 1, 0)
    timezone = np.where(en, 2 + en_region, zh_tz)
    zh_currency = np.where(city == _HONG_KONG, 2, np.where(rng.random(n) < 0.05, 1, 0))
    currency = np.where(en, np.array([r[5] for r in _EN_REGIONS])[en_region], zh_currency)
    team = np.where(en, 4, np.array([c[2] for c in _CITIES])[city])

    segment = _choice_by_row(rng, np.cumsum(np.array(_SEGMENT_P), axis=1), behaviour)
    terms_cdf = np.cumsum(np.array(_SEGMENT_TERMS_P), axis=1)
    terms = np.array(_TERMS)[_choice_by_row(rng, terms_cdf, segment)]

    # Most customers predate the history; the rest were onboarded during it.
    late_start = rng.random(n) < 0.15
    span = max(as_of_day - 60 - start_day, 1)
    start = np.where(late_start, start_day + (rng.random(n) * span).astype(np.int64), start_day)
    rate = np.array(_SEGMENT_RATE)[segment] * rng.gamma(4.0, 0.25, n) / _DAYS_PER_MONTH
    median = np.array(_SEGMENT_MEDIAN_CNY)[segment] / np.array(_CNY_PER_UNIT)[currency]
    typical_cents = 100 * median * np.exp(np.array(_SEGMENT_SIGMA)[segment] * rng.normal(size=n))
    round_amounts = rng.random(n) < 0.2

    # Days paid after the due date, by behaviour; defaulters start as on-time or late payers.
    delay_mean = rng.uniform(-5, 1, n)
    delay_sd = np.full(n, 2.5)
    late_habit = (behaviour == _LATE) | ((behaviour == _DEFAULTER) & (rng.random(n) < 0.35))
    delay_mean = np.where(late_habit, rng.uniform(10, 38, n), delay_mean)
    delay_sd = np.where(late_habit, 6.0, delay_sd)
    delay_mean = np.where(behaviour == _PARTIAL, rng.uniform(-3, 10, n), delay_mean)
    delay_sd = np.where(behaviour == _PARTIAL, 5.0, delay_sd)
    delay_mean = np.where(behaviour == _DISPUTER, rng.uniform(0, 20, n), delay_mean)
    delay_sd = np.where(behaviour == _DISPUTER, 8.0, delay_sd)
    dispute_p = np.array([0.01, 0.02, 0.03, 0.0, 0.015])[behaviour]
    dispute_p = np.where(behaviour == _DISPUTER, rng.uniform(0.2, 0.4, n), dispute_p)

    # Deterioration is spread evenly from four months into the history up to as_of.
    det_span = max(as_of_day - start_day - 120, 1)
    deterioration = start_day + 120 + (rng.random(n) * det_span).astype(np.int64)
    deterioration = np.maximum(deterioration, start + 90)
    stop = deterioration + rng.integers(75, 211, n)
    slope = rng.uniform(8, 20, n)
    defaulter = behaviour == _DEFAULTER
    hold = np.minimum(stop + rng.integers(15, 61, n), as_of_day)
    end = np.where(defaulter, np.maximum(hold, start), as_of_day)
    deterioration = np.where(defaulter, deterioration, np.iinfo(np.int64).max // 4)
    stop = np.where(defaulter, stop, np.iinfo(np.int64).max // 4)

    method_group = np.where(en, 3, np.where(currency == 2, 2, np.where(currency == 1, 1, 0)))
    method_cdf = np.cumsum(np.array(_METHOD_P), axis=1)
    method = _choice_by_row(rng, method_cdf, method_group)

    monthly_units = typical_cents / 100 * rate * _DAYS_PER_MONTH
    limit = monthly_units * (terms / 30 + 1) * rng.uniform(1.3, 2.2, n)
    step = np.where(limit < 100_000, 1_000, 10_000)
    credit_limit = np.maximum(np.ceil(limit / step) * step, 5_000).astype(np.int64) * 100

    return _Customers(
        n=n,
        ids=_customer_ids(n),
        behaviour=behaviour,
        en=en,
        city=city,
        en_region=en_region,
        timezone=timezone,
        currency=currency,
        segment=segment,
        terms=terms,
        start=start,
        end=end,
        rate=rate,
        typical_cents=typical_cents,
        round_amounts=round_amounts,
        delay_mean=delay_mean,
        delay_sd=delay_sd,
        dispute_p=dispute_p,
        method=method,
        deterioration=deterioration,
        stop=stop,
        slope=slope,
        description=rng.integers(0, len(_ZH_DESCRIPTIONS), n),
        credit_limit=credit_limit,
        do_not_contact=rng.random(n) < 0.01,
        team=team,
    )


def _english_last_names() -> list[str]:
    from faker.providers.person import en_GB, en_US

    names = dict.fromkeys(list(en_US.Provider.last_names) + list(en_GB.Provider.last_names))
    return sorted(n for n in names if n.isalpha())


def _english_first_names() -> list[str]:
    from faker.providers.person import en_GB

    return sorted({n for n in en_GB.Provider.first_names if n.isalpha()})


def _unique(names: pa.Array) -> pa.Array:
    """Number the remaining duplicates (rare once branch suffixes are applied)."""
    for _ in range(100):
        rank = _dup_rank(names)
        if rank.max(initial=0) == 0:
            return names
        names = pc.if_else(pa.array(rank > 0), _join(names, " ", _s(rank + 1)), names)
    raise AssertionError("could not make names unique")


def _customer_table(c: _Customers, seed: int) -> dict[str, pa.Array]:
    rng = _rng(seed, 3)
    n = c.n

    # Chinese: city + two-character trade name + industry + legal form, e.g. 苏州恒达贸易有限公司.
    t1 = rng.integers(0, len(_TRADE_CHARS), n)
    t2 = (t1 + rng.integers(1, len(_TRADE_CHARS), n)) % len(_TRADE_CHARS)
    industry = rng.integers(0, len(_ZH_INDUSTRIES), n)
    form = rng.choice(len(_ZH_FORMS), size=n, p=_ZH_FORMS_P)
    trade = _join(_take([t[0] for t in _TRADE_CHARS], t1), _take([t[0] for t in _TRADE_CHARS], t2))
    zh_name = _join(
        _take([x[0] for x in _CITIES], c.city),
        trade,
        _take([x[0] for x in _ZH_INDUSTRIES], industry),
        _take(_ZH_FORMS, form),
    )
    zh_slug = _join(
        _take([t[1] for t in _TRADE_CHARS], t1),
        _take([t[1] for t in _TRADE_CHARS], t2),
        "-",
        _take([x[1] for x in _ZH_INDUSTRIES], industry),
    )

    # English, in the style of Faker's en_US / en_GB company() with region-specific suffixes.
    last = _english_last_names()
    l1, l2, l3 = (rng.integers(0, len(last), n) for _ in range(3))
    en_industry = rng.integers(0, len(_EN_INDUSTRIES), n)
    suffix_idx = np.array([r[2] for r in _EN_REGIONS])[c.en_region] * 4 + rng.integers(0, 4, n)
    suffix = _take([s for group in _EN_SUFFIXES for s in group], suffix_idx)
    fmt = rng.choice(4, size=n, p=(0.15, 0.25, 0.15, 0.45))
    name1, name2, name3 = (_take(last, i) for i in (l1, l2, l3))
    ind = _take(_EN_INDUSTRIES, en_industry)
    en_name = pc.choose(
        pa.array(fmt, pa.int8()),
        _join(name1, " ", suffix),
        _join(name1, "-", name2),
        _join(name1, ", ", name2, " and ", name3),
        _join(name1, " ", ind, " ", suffix),
    )
    lower1, lower2 = pc.utf8_lower(name1), pc.utf8_lower(name2)
    en_slug = pc.choose(
        pa.array(fmt, pa.int8()),
        _join(lower1, "-", pc.replace_substring(pc.utf8_lower(suffix), " ", "")),
        _join(lower1, "-", lower2),
        _join(lower1, "-", lower2),
        _join(lower1, "-", pc.utf8_lower(ind)),
    )
    en_slug = pc.replace_substring_regex(en_slug, "[^a-z0-9-]+", "")

    en_mask = pa.array(c.en)
    zh_branches = [x[0] + "分公司" for x in _CITIES[:-1]]
    names = pc.if_else(en_mask, en_name, zh_name)
    branch_suffixes = [f"（{b}）" for b in zh_branches] + [f" ({b})" for b in _EN_BRANCHES]
    # Chinese duplicates get a Chinese branch, English ones an English branch.
    rank = _dup_rank(names)
    pick = np.where(
        c.en,
        len(zh_branches) + rng.integers(0, len(_EN_BRANCHES), n),
        rng.integers(0, len(zh_branches), n),
    )
    names = pc.if_else(pa.array(rank > 0), _join(names, _take(branch_suffixes, pick)), names)
    names = _unique(names)

    slug = pc.if_else(en_mask, en_slug, zh_slug)
    slug_rank = _dup_rank(slug)
    slug = pc.if_else(pa.array(slug_rank > 0), _join(slug, _s(slug_rank + 1)), slug)
    tld = np.where(c.en, 0, np.where(c.city == _HONG_KONG, 2, 1))
    domain = _join(slug, _take((".example.com", ".example.net", ".example.org"), tld))

    role = np.where(
        c.en,
        len(_ZH_ROLE_MAILBOXES) + rng.integers(0, len(_EN_ROLE_MAILBOXES), n),
        rng.integers(0, len(_ZH_ROLE_MAILBOXES), n),
    )
    primary = _join(_take(_ZH_ROLE_MAILBOXES + _EN_ROLE_MAILBOXES, role), "@", domain)
    first = _english_first_names()
    zh_person = _join(
        _take([s[1] for s in _ZH_SURNAMES], rng.integers(0, len(_ZH_SURNAMES), n)),
        ".",
        _take([g[1] for g in _ZH_GIVEN], rng.integers(0, len(_ZH_GIVEN), n)),
    )
    en_person = _join(
        pc.utf8_lower(_take(first, rng.integers(0, len(first), n))), ".", pc.utf8_lower(name2)
    )
    person = _join(pc.if_else(en_mask, en_person, zh_person), "@", domain)
    two = pa.array(rng.random(n) < 0.25)
    email = pc.if_else(two, _join(primary, ";", person), primary)

    phone = _phones(c, rng)
    timezones = ["Asia/Shanghai", "Asia/Hong_Kong"] + [r[0] for r in _EN_REGIONS]
    return {
        "customer_id": c.ids,
        "name": names,
        "email": email,
        "phone": phone,
        "locale": _take(("zh-CN", "en"), c.en.astype(np.int8)),
        "timezone": _take(timezones, c.timezone),
        "segment": _take(_SEGMENTS, c.segment),
        "credit_limit": _money(c.credit_limit),
        "currency": _take(_CURRENCIES, c.currency),
        "collector_id": pa.nulls(n, pa.string()),  # filled in once collectors exist
        "do_not_contact": _bools(c.do_not_contact),
    }


def _phones(c: _Customers, rng: np.random.Generator) -> pa.Array:
    n = c.n
    g4a, g4b = _lpad(rng.integers(0, 10_000, n), 4), _lpad(rng.integers(0, 10_000, n), 4)
    mobile = _join(
        "+86 1",
        _take("3589", rng.integers(0, 4, n)),
        _s(rng.integers(0, 10, n)),
        " ",
        g4a,
        " ",
        g4b,
        sep="",
    )
    area = _take([x[3] for x in _CITIES], c.city)
    first_digit = _s(rng.integers(5, 9, n))
    landline = _join("+86 ", area, " ", first_digit, pc.utf8_slice_codeunits(g4a, 1), " ", g4b)
    hk_head = _join(_take("2369", rng.integers(0, 4, n)), _lpad(rng.integers(0, 1000, n), 3))
    hk = _join("+852 ", hk_head, " ", g4b)
    cn = pc.if_else(pa.array(rng.random(n) < 0.7), mobile, landline)
    zh = pc.if_else(pa.array(c.city == _HONG_KONG), hk, cn)
    digits = np.array([r[4] for r in _EN_REGIONS])[c.en_region]
    tail = pc.choose(
        pa.array(np.searchsorted([2, 3, 4, 7, 8], digits), pa.int8()),
        _lpad(rng.integers(0, 100, n), 2),
        _lpad(rng.integers(0, 1000, n), 3),
        g4b,
        _join(_lpad(rng.integers(0, 1000, n), 3), " ", g4b),
        _join(hk_head, " ", g4b),
    )
    en = _join(_take([r[3] for r in _EN_REGIONS], c.en_region), tail)
    return pc.if_else(pa.array(c.en), en, zh)


def _collectors(c: _Customers, seed: int) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Collectors by team, and each customer's collector (index)."""
    from faker import Faker

    rng = _rng(seed, 4)
    n_col = max(2, round(c.n / 60))
    per_team = np.bincount(c.team, minlength=len(_TEAMS)).astype(float)
    nonempty = per_team > 0
    # Largest-remainder allocation, with at least one collector for each team that has customers.
    share = per_team / per_team.sum() * n_col
    alloc = np.floor(share).astype(int)
    if n_col >= nonempty.sum():
        alloc = np.where(nonempty, np.maximum(alloc, 1), 0)
    while alloc.sum() > n_col:
        alloc[np.argmax(np.where(alloc > 1, alloc - share, -np.inf))] -= 1
    while alloc.sum() < n_col:
        alloc[np.argmax(share - alloc)] += 1
    team_of = np.repeat(np.arange(len(_TEAMS)), alloc)
    first = np.cumsum(alloc) - alloc
    own = alloc[c.team] > 0
    in_team = first[c.team] + (rng.random(c.n) * np.maximum(alloc[c.team], 1)).astype(int)
    assigned = np.where(own, in_team, rng.integers(0, n_col, c.n))

    fake = Faker("en_GB")
    fake.seed_instance(seed)
    names: list[str] = []
    mailboxes: list[str] = []
    seen: dict[str, int] = {}
    for team in team_of:
        if team == 4:
            given, family = fake.first_name(), fake.last_name()
            names.append(f"{given} {family}")
            box = re.sub(r"[^a-z.]", "", f"{given}.{family}".lower())
        else:
            s = _ZH_SURNAMES[rng.integers(len(_ZH_SURNAMES))]
            g = _ZH_GIVEN[rng.integers(len(_ZH_GIVEN))]
            names.append(s[0] + g[0])
            box = f"{s[1]}.{g[1]}"
        seen[box] = seen.get(box, 0) + 1
        mailboxes.append(box if seen[box] == 1 else f"{box}{seen[box]}")
    table = {
        "collector_id": pa.array([f"COL-{i:03d}" for i in range(1, n_col + 1)], pa.string()),
        "name": pa.array(names, pa.string()),
        "email": pa.array([f"{b}@collections.example.com" for b in mailboxes], pa.string()),
        "team": _take(_TEAMS, team_of),
    }
    return table, assigned


# --------------------------------------------------------------------------------------------
# Staff feedback

#: What collectors say of the plan, per topic: (Chinese, English) remarks.
_REMARKS = {
    "strategy": (
        (
            "第二次提醒发得太晚，很多客户到那时已经逾期一个多月。",
            "The second reminder comes too "
            "late: many customers are more than a month overdue by then.",
        ),
        (
            "惯性拖欠的客户在第一次提醒后打电话效果更好。",
            "Habitually late payers respond better to a call right after the first reminder.",
        ),
        (
            "建议对承诺付款的客户暂停提醒到承诺日。",
            "Pause reminders for customers who promised to pay until the promised date.",
        ),
    ),
    "templates": (
        (
            "最后通知的措辞太生硬，有客户投诉。",
            "The final notice reads too harshly; a customer complained.",
        ),
        ("提醒邮件里应写明开户行和账号。", "Reminders should state the bank account to pay into."),
    ),
    "customers": (
        (
            "几家客户反映发票金额与合同不符，应先核对再催收。",
            "Several customers say invoice "
            "amounts differ from their contracts; check before chasing.",
        ),
        ("部分客户的联系邮箱已失效。", "Some customers' contact addresses no longer work."),
    ),
    "legal": (
        (
            "小额案件走诉讼成本太高，建议先发律师函。",
            "Court is too costly for small claims; send a lawyer's letter first.",
        ),
    ),
    "tools": (
        ("工作清单希望能按逾期金额排序。", "The worklist should sort by overdue amount."),
        (
            "系统里看不到客户最近一次付款的日期。",
            "The customer's last payment date is not shown anywhere.",
        ),
    ),
}


def _staff_feedback(collectors: dict[str, pa.Array], seed: int, as_of_day: int) -> dict:
    """A few remarks of the collectors from 200 to 20 days before ``as_of`` (so that runs of
    the days before it load them too): about one per two collectors, at least 8, at most 120,
    each in the language of its author's team."""
    rng = _rng(seed, 11)
    names = collectors["name"].to_pylist()
    teams = collectors["team"].to_pylist()
    topics = list(_REMARKS)
    weights = np.array([0.35, 0.2, 0.2, 0.1, 0.15])
    count = min(120, max(8, len(names) // 2))
    who = rng.integers(0, len(names), count)
    days = np.sort(as_of_day - 20 - rng.integers(0, 181, count))
    topic = rng.choice(len(topics), count, p=weights)
    rows: dict[str, list] = {column: [] for column in COLUMNS["feedback"]}
    for n, (w, day, t) in enumerate(zip(who, days, topic, strict=True), start=1):
        remark = _REMARKS[topics[t]][rng.integers(len(_REMARKS[topics[t]]))]
        english = teams[w] == _TEAMS[4]
        rows["feedback_id"].append(f"FB-{n:04d}")
        rows["date"].append(str(np.datetime64(int(day), "D")))
        rows["author"].append(names[w])
        rows["team"].append(teams[w])
        rows["topic"].append(topics[t])
        rows["text"].append(remark[1] if english else remark[0])
    return {column: pa.array(values, pa.string()) for column, values in rows.items()}


# --------------------------------------------------------------------------------------------
# Invoices and payments, simulated per block of customers


@dataclass
class _Ledger:
    inv_cust: np.ndarray
    issue: np.ndarray
    due: np.ndarray
    cents: np.ndarray
    disputed: np.ndarray
    template: np.ndarray
    pay_inv: np.ndarray
    pay_day: np.ndarray
    pay_cents: np.ndarray
    pay_method: np.ndarray


def _simulate(c: _Customers, lo: int, hi: int, as_of_day: int, rng: np.random.Generator) -> _Ledger:
    cust = np.arange(lo, hi)
    active = np.maximum(c.end[cust] - c.start[cust] + 1, 1)
    counts = rng.poisson(c.rate[cust] * active)
    ci = np.repeat(cust, counts)
    m = ci.size
    issue = c.start[ci] + (rng.random(m) * active[ci - lo]).astype(np.int64)
    # Invoices are raised on working days.
    weekday = (issue + 3) % 7
    issue = issue - (weekday == 5) + (weekday == 6)
    issue = np.minimum(issue, as_of_day)
    # A deteriorating customer also buys less (and the seller ships less to it).
    thinned = (c.behaviour[ci] == _DEFAULTER) & (issue >= c.deterioration[ci])
    keep = ~thinned | (rng.random(m) < 0.6)
    ci, issue = ci[keep], issue[keep]
    m = ci.size
    order = np.lexsort((issue, ci))
    ci, issue = ci[order], issue[order]
    b = c.behaviour[ci]
    due = issue + c.terms[ci]

    raw = c.typical_cents[ci] * rng.lognormal(0.0, 0.35, m)
    rounded = np.maximum(np.round(raw / 10_000), 1) * 10_000
    exact = np.maximum(np.round(raw), 5_000)
    cents = np.where(c.round_amounts[ci], rounded, exact).astype(np.int64)

    delay = c.delay_mean[ci] + c.delay_sd[ci] * rng.standard_normal(m)
    delay = np.where(b == _LATE, delay.clip(8, 70), delay)
    det = c.deterioration[ci]
    deteriorated = (b == _DEFAULTER) & (issue >= det)
    dispute_p = np.where(deteriorated, 0.10, c.dispute_p[ci])
    disputed = rng.random(m) < dispute_p
    never = disputed & (rng.random(m) < np.where(b == _DISPUTER, 0.12, 0.05))
    resolved = np.where(b == _DISPUTER, rng.uniform(30, 150, m), rng.uniform(20, 85, m))
    delay = np.where(disputed, resolved, delay)

    # Instalments per invoice.
    u = rng.random(m)
    three = rng.random(m) < 0.4
    k = np.ones(m, dtype=np.int64)
    k = np.where((b == _PARTIAL) & (u < 0.7), 2 + three, k)
    months_late = (due + delay - det) / _DAYS_PER_MONTH
    p_split = np.clip(0.2 + 0.12 * months_late, 0.0, 0.8)
    k = np.where((b == _DEFAULTER) & (months_late > 0) & (u < p_split), 2 + three, k)
    k = np.where(np.isin(b, (_ON_TIME, _LATE, _DISPUTER)) & (u < 0.03), 2, k)
    k = np.where(never, 0, k)

    short = np.zeros(m)
    keep_rest = (b == _PARTIAL) & (k >= 2) & (rng.random(m) < 0.3)
    short = np.where(keep_rest, rng.uniform(0.02, 0.08, m), short)
    settled = disputed & ~never & (rng.random(m) < np.where(b == _DISPUTER, 0.3, 0.1))
    short = np.where(settled, rng.uniform(0.05, 0.2, m), short)
    to_pay = cents - np.floor(cents * short).astype(np.int64)

    inv, pos = _group_positions(k)
    n_p = inv.size
    starts = np.cumsum(k) - k
    first, last_row = starts[inv], (starts + k - 1)[inv]
    gap = np.where(pos > 0, rng.uniform(10, 35, n_p), 0.0)
    cum_gap = np.cumsum(gap)
    offset = cum_gap - cum_gap[first]
    when = due[inv] + delay[inv] + offset
    p_det = det[inv]
    slipping = (b[inv] == _DEFAULTER) & (when > p_det)
    when = np.where(slipping, when + c.slope[ci[inv]] * (when - p_det) / _DAYS_PER_MONTH, when)
    day = np.maximum(np.round(when).astype(np.int64), issue[inv])

    # Instalment boundaries are cumulative integer cents, so the parts add up to to_pay exactly.
    weight = rng.uniform(0.5, 1.5, n_p)
    cum_w = np.cumsum(weight)
    within = cum_w - (cum_w[first] - weight[first])
    bound = np.floor(to_pay[inv] * (within / within[last_row])).astype(np.int64)
    bound = np.where(np.arange(n_p) == last_row, to_pay[inv], bound)
    prev = np.where(pos > 0, np.roll(bound, 1), 0)
    amount = bound - prev

    method = np.where(
        rng.random(n_p) < 0.85,
        c.method[ci[inv]],
        np.where(c.en[ci[inv]], rng.choice(np.array([0, 1, 4]), n_p), rng.integers(0, 5, n_p)),
    )
    keep = (day <= as_of_day) & (day <= c.stop[ci[inv]]) & (amount > 0)
    template = np.where(rng.random(m) < 0.75, c.description[ci], rng.integers(0, 8, m))
    return _Ledger(
        inv_cust=ci,
        issue=issue,
        due=due,
        cents=cents,
        disputed=disputed,
        template=template,
        pay_inv=inv[keep],
        pay_day=day[keep],
        pay_cents=amount[keep],
        pay_method=method[keep],
    )


class _Numbering:
    """Per-year sequence numbers that continue across customer blocks (INV-2024-0000001)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.next: dict[int, int] = {}

    def ids(self, days: np.ndarray) -> pa.Array:
        years = _years(days)
        seq = np.zeros(days.size, dtype=np.int64)
        for year in np.unique(years):
            mask = years == year
            start = self.next.get(int(year), 1)
            count = int(mask.sum())
            seq[mask] = np.arange(start, start + count)
            self.next[int(year)] = start + count
        return _join(self.prefix, _s(years), "-", _lpad(seq, 7))


def _descriptions(start_day: int, as_of_day: int) -> tuple[pa.Array, int]:
    """Every (locale, template, month) description; index = (en*8 + template) * months + month."""
    first = np.datetime64(int(start_day) - 7, "D").astype("datetime64[M]")
    last = np.datetime64(int(as_of_day), "D").astype("datetime64[M]")
    months = np.arange(first, last + 1)
    labels: list[str] = []
    for template in _ZH_DESCRIPTIONS:
        for mo in months.astype(object):
            labels.append(f"{mo.year}年{mo.month}月 {template}")
    for template in _EN_DESCRIPTIONS:
        for mo in months.astype(object):
            labels.append(f"{template} {_EN_MONTHS[mo.month - 1]} {mo.year}")
    return pa.array(labels, pa.string()), int(first.astype(np.int64))


# --------------------------------------------------------------------------------------------
# Defects


def _pick_rows(
    rng: np.random.Generator, n: int, fraction: float, kinds: Sequence[str], minimum: bool
) -> list[tuple[str, np.ndarray]]:
    if n == 0 or fraction <= 0:
        return []
    count = max(len(kinds) if minimum else 0, round(fraction * n))
    rows = rng.choice(n, size=min(count, n), replace=False)
    return [(kind, rows[i :: len(kinds)]) for i, kind in enumerate(kinds)]


def _put(col: pa.Array, rows: np.ndarray, values: pa.Array | list[str | None]) -> pa.Array:
    if rows.size == 0:
        return col
    order = np.argsort(rows)
    mask = np.zeros(len(col), dtype=bool)
    mask[rows] = True
    values = values if isinstance(values, pa.Array) else pa.array(values, pa.string())
    return pc.replace_with_mask(col, pa.array(mask), values.take(pa.array(order)))


def _bad_dates(rng: np.random.Generator, size: int, year: int) -> list[str | None]:
    pool = (f"{year}-13-45", f"{year}-02-30", f"{year}-00-12", f"{year}/31/12")
    return [pool[i] for i in rng.integers(0, len(pool), size)]


def _bad_amounts(rng: np.random.Generator, amounts: pa.Array) -> pa.Array:
    n = len(amounts)
    head, mid, tail = rng.integers(1, 99, n), rng.integers(10, 99, n), rng.integers(0, 9, n)
    garbled = _join(_s(head), ",", _s(mid), ".", _s(tail), "x")
    negative = _join("-", amounts)
    return pc.if_else(pa.array(rng.random(len(amounts)) < 0.5, pa.bool_()), garbled, negative)


def _corrupt_invoices(
    t: dict[str, pa.Array],
    ledger: _Ledger,
    paid: np.ndarray,
    rng: np.random.Generator,
    fraction: float,
    minimum: bool,
    year: int,
    counts: dict[str, int],
) -> None:
    for kind, rows in _pick_rows(rng, len(t["invoice_id"]), fraction, _INVOICE_DEFECTS, minimum):
        if rows.size == 0:
            continue
        counts[f"invoices.{kind}"] = counts.get(f"invoices.{kind}", 0) + int(rows.size)
        if kind == "bad_date":
            column = "issue_date" if rng.random() < 0.5 else "due_date"
            t[column] = _put(t[column], rows, _bad_dates(rng, rows.size, year))
        elif kind == "bad_amount":
            t["amount"] = _put(t["amount"], rows, _bad_amounts(rng, t["amount"].take(rows)))
        elif kind == "missing_value":
            for i, row in enumerate(rows):
                column = ("customer_id", "issue_date", "amount", "due_date")[i % 4]
                t[column] = _put(t[column], np.array([row]), [None])
        elif kind == "due_before_issue":
            early = ledger.issue[rows] - rng.integers(1, 31, rows.size)
            t["due_date"] = _put(t["due_date"], rows, _dates(early))
        elif kind == "duplicate_id":
            # Reuse the id of another invoice; prefer rows without payments so that the only
            # problem is the duplicate itself, not orphaned payments as well.
            unpaid = np.flatnonzero(~paid)
            victims = rows if unpaid.size < rows.size else rng.choice(unpaid, rows.size, False)
            others = (victims + 1 + rng.integers(0, max(len(paid) - 1, 1), victims.size)) % len(
                paid
            )
            t["invoice_id"] = _put(t["invoice_id"], victims, t["invoice_id"].take(others))


def _corrupt_payments(
    t: dict[str, pa.Array],
    rng: np.random.Generator,
    fraction: float,
    minimum: bool,
    year: int,
    counts: dict[str, int],
) -> None:
    for kind, rows in _pick_rows(rng, len(t["payment_id"]), fraction, _PAYMENT_DEFECTS, minimum):
        if rows.size == 0:
            continue
        counts[f"payments.{kind}"] = counts.get(f"payments.{kind}", 0) + int(rows.size)
        if kind == "bad_date":
            t["paid_date"] = _put(t["paid_date"], rows, _bad_dates(rng, rows.size, year))
        elif kind == "bad_amount":
            t["amount"] = _put(t["amount"], rows, _bad_amounts(rng, t["amount"].take(rows)))
        elif kind == "missing_value":
            for i, row in enumerate(rows):
                column = ("invoice_id", "paid_date", "amount")[i % 3]
                t[column] = _put(t[column], np.array([row]), [None])
        elif kind == "unknown_invoice":
            # No invoice can be issued after as_of, so next year's numbers are unknown for sure.
            ids = [f"INV-{year + 1}-{n:07d}" for n in rng.integers(1, 10_000_000, rows.size)]
            t["invoice_id"] = _put(t["invoice_id"], rows, ids)


# --------------------------------------------------------------------------------------------
# Writers


class _Sink(Protocol):
    def write(self, table: dict[str, pa.Array]) -> None: ...

    def close(self) -> None: ...


def _csv_field(values: pa.Array) -> pa.Array:
    """Quote like ``csv.QUOTE_MINIMAL``: only fields holding a comma, quote or line break."""
    values = pc.fill_null(values, "")
    needs = pc.match_substring_regex(values, '[",\r\n]')
    if not pc.any(needs).as_py():
        return values
    quoted = _join('"', pc.replace_substring(values, '"', '""'), '"')
    return pc.if_else(needs, quoted, values)


class _CsvSink:
    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        self.handle = path.open("wb")
        self.handle.write((",".join(columns) + "\n").encode("utf-8"))

    def write(self, table: dict[str, pa.Array]) -> None:
        if len(table[self.columns[0]]) == 0:
            return
        fields = [_csv_field(table[name]) for name in self.columns]
        lines = _join(_join(*fields, sep=","), "", sep="\n")
        if isinstance(lines, pa.ChunkedArray):
            lines = lines.combine_chunks()
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[
            lines.offset : lines.offset + len(lines) + 1
        ]
        data = memoryview(lines.buffers()[2])
        self.handle.write(data[int(offsets[0]) : int(offsets[-1])])

    def close(self) -> None:
        self.handle.close()


class _ParquetSink:
    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        self.schema = pa.schema([(name, pa.string()) for name in columns])
        self.writer = pq.ParquetWriter(path, self.schema)
        self.rows = 0

    def write(self, table: dict[str, pa.Array]) -> None:
        arrays = [table[name] for name in self.columns]
        self.writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
        self.rows += len(arrays[0])

    def close(self) -> None:
        if self.rows == 0:
            self.writer.write_table(self.schema.empty_table())
        self.writer.close()


class _XlsxSink:
    """Write-only workbook with one sheet of text cells; timestamps pinned for reproducibility."""

    def __init__(self, path: Path, columns: Sequence[str], stamp: datetime) -> None:
        from openpyxl import Workbook

        self.path, self.columns, self.stamp = path, tuple(columns), stamp
        self.book = Workbook(write_only=True)
        self.sheet = self.book.create_sheet(path.stem)
        self.sheet.append(list(columns))

    def write(self, table: dict[str, pa.Array]) -> None:
        for row in zip(*(table[name].to_pylist() for name in self.columns), strict=True):
            self.sheet.append(list(row))

    def close(self) -> None:
        self.book.properties.created = self.stamp
        buffer = io.BytesIO()
        self.book.save(buffer)
        # openpyxl stamps the save time into docProps/core.xml and every zip entry.
        stamp = self.stamp.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
        with (
            zipfile.ZipFile(buffer) as source,
            zipfile.ZipFile(self.path, "w", zipfile.ZIP_DEFLATED) as target,
        ):
            for item in source.infolist():
                data = source.read(item.filename)
                if item.filename == "docProps/core.xml":
                    data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>" + stamp, data)
                info = zipfile.ZipInfo(item.filename, date_time=self.stamp.timetuple()[:6])
                info.compress_type = zipfile.ZIP_DEFLATED
                target.writestr(info, data)


def _open_sink(path: Path, columns: Sequence[str], file_format: str, stamp: datetime) -> _Sink:
    if file_format == "csv":
        return _CsvSink(path, columns)
    if file_format == "parquet":
        return _ParquetSink(path, columns)
    return _XlsxSink(path, columns, stamp)


def _write_whole(
    path: Path, columns: Sequence[str], table: dict[str, pa.Array], fmt: str, stamp: datetime
) -> None:
    sink = _open_sink(path, columns, fmt, stamp)
    try:
        sink.write(table)
    finally:
        sink.close()


def _fx_rates(seed: int, start_day: int, as_of_day: int) -> dict[str, pa.Array]:
    """Daily rates to CNY of the sample's other currencies over the whole history: a small
    seeded random walk around each currency's usual rate, to four decimals."""
    rng = _rng(seed, 11)
    days = np.arange(start_day, as_of_day + 1)
    dates, currencies, rates = [], [], []
    for code, usual in zip(_CURRENCIES, _CNY_PER_UNIT, strict=True):
        if code == "CNY":
            continue
        walk = np.cumsum(rng.normal(0.0, 0.0015, days.size))
        walk -= walk.mean()  # stays around the usual rate over the history
        dates.append(days)
        currencies.append(np.full(days.size, code, dtype=object))
        rates.append(np.round(usual * np.exp(walk), 4))
    return {
        "rate_date": _dates(np.concatenate(dates)),
        "currency": pa.array(np.concatenate(currencies).tolist(), pa.string()),
        "rate": pa.array([f"{r:.4f}" for r in np.concatenate(rates)], pa.string()),
    }


# --------------------------------------------------------------------------------------------
# Entry point


def generate_sample(
    out_dir: Path,
    customers: int,
    as_of: date,
    seed: int = 42,
    *,
    history_months: int = 24,
    defects: float = 0.0,
    file_format: str = "csv",
    truth: bool = False,
) -> SampleSummary:
    """Write a realistic, reproducible sample ledger as of ``as_of`` into ``out_dir``.

    Writes ``fx_rates`` (daily rates of USD and HKD to CNY), ``collectors``, ``customers``,
    ``invoices``, ``payments`` and ``feedback`` (the collectors' remarks) files (``.csv``, ``.xlsx``
    or ``.parquet`` per ``file_format``; columns in :data:`COLUMNS`, all values as text) with
    ``history_months`` months of invoices up to ``as_of`` and every payment received by then.
    ``defects`` is the fraction of invoice, payment and customer rows to corrupt (0 for clean
    data); ``truth=True`` also writes ``_truth.csv`` with each customer's hidden behaviour and,
    for defaulters, the deterioration and stop dates. Same arguments, same bytes.
    """
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if history_months < 1:
        raise ValueError("history_months must be at least 1")
    if not 0.0 <= defects < 1.0:
        raise ValueError("defects must be a fraction in [0, 1)")
    if file_format not in FILE_FORMATS:
        raise ValueError(f"file_format must be one of {', '.join(FILE_FORMATS)}")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    as_of_day = _day(as_of)
    start_day = _day(_months_before(as_of, history_months))
    stamp = datetime(as_of.year, as_of.month, as_of.day)  # noqa: DTZ001 - file metadata only
    paths = {name: out_dir / f"{name}.{file_format}" for name in COLUMNS}
    defect_counts: dict[str, int] = {}
    defect_rng = _rng(seed, 9)

    c = _draw_customers(customers, seed, start_day, as_of_day)
    collectors, assigned = _collectors(c, seed)
    table = _customer_table(c, seed)
    table["collector_id"] = collectors["collector_id"].take(pa.array(assigned))
    if defects > 0:
        rows = _pick_rows(defect_rng, customers, defects, _CUSTOMER_DEFECTS, True)[0][1]
        table["email"] = _put(table["email"], rows, ["not-an-email"] * rows.size)
        defect_counts["customers.invalid_email"] = int(rows.size)
    rates = _fx_rates(seed, start_day, as_of_day)
    _write_whole(paths["fx_rates"], COLUMNS["fx_rates"], rates, file_format, stamp)
    _write_whole(paths["collectors"], COLUMNS["collectors"], collectors, file_format, stamp)
    _write_whole(paths["customers"], COLUMNS["customers"], table, file_format, stamp)
    feedback = _staff_feedback(collectors, seed, as_of_day)
    _write_whole(paths["feedback"], COLUMNS["feedback"], feedback, file_format, stamp)
    currency = table["currency"]
    del table

    descriptions, first_month = _descriptions(start_day, as_of_day)
    n_months = len(descriptions) // (len(_ZH_DESCRIPTIONS) + len(_EN_DESCRIPTIONS))
    invoice_ids, payment_ids = _Numbering("INV-"), _Numbering("PAY-")
    invoice_sink = _open_sink(paths["invoices"], COLUMNS["invoices"], file_format, stamp)
    payment_sink = _open_sink(paths["payments"], COLUMNS["payments"], file_format, stamp)
    n_invoices = n_payments = 0
    try:
        for block, lo in enumerate(range(0, customers, _CHUNK_CUSTOMERS)):
            hi = min(lo + _CHUNK_CUSTOMERS, customers)
            ledger = _simulate(c, lo, hi, as_of_day, _rng(seed, 5, block))
            inv_ids = invoice_ids.ids(ledger.issue)
            month = (
                ledger.issue.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
                - first_month
            )
            en = c.en[ledger.inv_cust].astype(np.int64)
            desc = (en * len(_ZH_DESCRIPTIONS) + ledger.template) * n_months + month
            invoices = {
                "invoice_id": inv_ids,
                "customer_id": c.ids.take(pa.array(ledger.inv_cust)),
                "issue_date": _dates(ledger.issue),
                "due_date": _dates(ledger.due),
                "amount": _money(ledger.cents),
                "currency": currency.take(pa.array(ledger.inv_cust)),
                "description": descriptions.take(pa.array(desc)),
                "disputed": _bools(ledger.disputed),
            }
            payments = {
                "payment_id": payment_ids.ids(ledger.pay_day),
                "invoice_id": inv_ids.take(pa.array(ledger.pay_inv)),
                "paid_date": _dates(ledger.pay_day),
                "amount": _money(ledger.pay_cents),
                "method": _take(PAYMENT_METHODS, ledger.pay_method),
            }
            if defects > 0:
                paid = np.zeros(ledger.issue.size, dtype=bool)
                paid[ledger.pay_inv] = True
                first = block == 0
                _corrupt_invoices(
                    invoices, ledger, paid, defect_rng, defects, first, as_of.year, defect_counts
                )
                _corrupt_payments(
                    payments, defect_rng, defects, block == 0, as_of.year, defect_counts
                )
            invoice_sink.write(invoices)
            payment_sink.write(payments)
            n_invoices += ledger.issue.size
            n_payments += ledger.pay_day.size
    finally:
        invoice_sink.close()
        payment_sink.close()

    if truth:
        paths["truth"] = out_dir / "_truth.csv"
        defaulter = c.behaviour == _DEFAULTER
        never = pa.nulls(customers, pa.string())
        _write_whole(
            paths["truth"],
            ("customer_id", "behaviour", "deterioration_date", "stop_date"),
            {
                "customer_id": c.ids,
                "behaviour": _take(BEHAVIOURS, c.behaviour),
                "deterioration_date": pc.if_else(
                    pa.array(defaulter), _dates(np.where(defaulter, c.deterioration, 0)), never
                ),
                "stop_date": pc.if_else(
                    pa.array(defaulter), _dates(np.where(defaulter, c.stop, 0)), never
                ),
            },
            "csv",
            stamp,
        )

    return SampleSummary(
        out_dir=out_dir,
        paths=paths,
        customers=customers,
        collectors=len(collectors["collector_id"]),
        invoices=n_invoices,
        payments=n_payments,
        defects=dict(sorted(defect_counts.items())),
        fx_rates=len(rates["rate_date"]),
        feedback=len(feedback["feedback_id"]),
    )
