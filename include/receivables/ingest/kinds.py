"""The file kinds of the ledger drop (docs/contract.md §3) and their columns.

One declaration per kind drives everything downstream: the row checks, the staging table, the
Great Expectations suites (which must agree with it; a test checks that) and the load order.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Column types understood by :mod:`receivables.ingest.rules`.
COLUMN_TYPES = (
    "id",
    "text",
    "date",
    "amount",
    "bool",
    "email_list",
    "locale",
    "timezone",
    "currency",
    "rate",
    "choice",
)


@dataclass(frozen=True)
class Column:
    """One column of a ledger file."""

    name: str
    type: str
    required: bool = False
    max_length: int = 255
    #: amounts: True means strictly positive (> 0), False allows zero
    positive: bool = True
    #: free text that may span lines: line breaks are allowed (tabs are in any text column),
    #: other control characters are not
    multiline: bool = False
    #: a column not read from the file but built from these columns of the same row (a
    #: composite id, e.g. "<rate_date> <currency>"): it is staged, never expected in the file
    derived_from: tuple[str, ...] = ()
    #: choice columns: the values a file may write (canonical, lower case)
    choices: tuple[str, ...] = ()
    #: choice columns: added to the reason of a refused value, e.g. why a value is not offered
    choices_note: str = ""

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise ValueError(f"column {self.name}: unknown type {self.type!r}")
        if (self.type == "choice") != bool(self.choices):
            raise ValueError(f"column {self.name}: choices go with (and only with) type choice")
        if self.multiline and self.type != "text":
            raise ValueError(f"column {self.name}: only text columns may be multiline")
        if self.derived_from and (self.type != "id" or self.required):
            raise ValueError(f"column {self.name}: a derived column is an optional id")

    @property
    def staged_name(self) -> str:
        """Name in the staging table: amounts are staged as integer cents (``<name>_cents``),
        rates as integer units of 1e-10 (``<name>_e10``)."""
        if self.type == "amount":
            return f"{self.name}_cents"
        if self.type == "rate":
            return f"{self.name}_e10"
        return self.name


@dataclass(frozen=True)
class FileKind:
    """A kind of ledger file, recognised by its name prefix."""

    name: str
    id_column: str
    columns: tuple[Column, ...]
    #: loading order within one drop: customers before their invoices, invoices before payments
    #: (exchange rates first: they refer to nothing; legal updates after the ledger; staff
    #: feedback, which refers to nothing, last)
    order: int
    description: str = ""
    #: (earlier, later) date columns whose order every row must respect
    date_order: tuple[tuple[str, str], ...] = ()
    #: warehouse tables a load writes (their statistics are refreshed after it); empty: the
    #: table named like the kind
    tables: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        known = {c.name for c in self.columns}
        if self.id_column not in known:
            raise ValueError(f"kind {self.name}: id column {self.id_column!r} is not a column")
        for column in self.columns:
            if not set(column.derived_from) <= known - {column.name}:
                raise ValueError(f"kind {self.name}: {column.name} derives from unknown columns")

    @property
    def required(self) -> tuple[str, ...]:
        """Names of the required columns."""
        return tuple(c.name for c in self.columns if c.required)

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the columns a file of this kind may carry, in contract order (derived
        columns are not among them)."""
        return tuple(c.name for c in self.columns if not c.derived_from)

    @property
    def written_tables(self) -> tuple[str, ...]:
        """The warehouse tables a load of this kind writes."""
        return self.tables or (self.name,)

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


#: The steps of a legal case a ``legal_updates`` file may record: what happens once a case is
#: approved (filed in court, judged, recovered, settled, written off, closed). Approving or
#: rejecting a case is the institution's decision, taken in its review (by a person, recorded
#: with who decided, or automatically under a configured amount), never by an update file.
FILE_STATUSES = ("filed", "judgment", "recovered", "settled", "written_off", "closed")

#: What a ``feedback`` file's remark is about (``topic``; ``other`` when the file leaves it empty).
FEEDBACK_TOPICS = ("strategy", "templates", "customers", "legal", "tools", "other")

KINDS: dict[str, FileKind] = {
    kind.name: kind
    for kind in (
        FileKind(
            name="fx_rates",
            id_column="rate_id",
            order=-1,
            description="exchange rates to the reporting currency (policy "
            "currency.reporting_currency): units of it for one unit of currency",
            columns=(
                Column("rate_date", "date", required=True),
                Column("currency", "currency", required=True),
                Column("rate", "rate", required=True),
                # one rate per date and currency: "<rate_date> <currency>", for the repeated-id
                # check and every message that names the row
                Column("rate_id", "id", derived_from=("rate_date", "currency")),
            ),
        ),
        FileKind(
            name="collectors",
            id_column="collector_id",
            order=0,
            description="collection staff (an extension of docs/contract.md §3)",
            columns=(
                Column("collector_id", "id", required=True, max_length=64),
                Column("name", "text", required=True),
                Column("email", "email_list", max_length=320),
                Column("team", "text"),
            ),
        ),
        FileKind(
            name="customers",
            id_column="customer_id",
            order=1,
            columns=(
                Column("customer_id", "id", required=True, max_length=64),
                Column("name", "text", required=True),
                Column("email", "email_list", max_length=2000),
                Column("phone", "text", max_length=64),
                Column("locale", "locale"),
                Column("timezone", "timezone"),
                Column("segment", "text", max_length=64),
                Column("credit_limit", "amount", positive=False),
                Column("currency", "currency"),
                Column("collector_id", "id", max_length=64),
                Column("do_not_contact", "bool"),
            ),
        ),
        FileKind(
            name="invoices",
            id_column="invoice_id",
            order=2,
            date_order=(("issue_date", "due_date"),),
            columns=(
                Column("invoice_id", "id", required=True, max_length=64),
                Column("customer_id", "id", required=True, max_length=64),
                Column("issue_date", "date", required=True),
                Column("due_date", "date", required=True),
                Column("amount", "amount", required=True),
                Column("currency", "currency"),
                Column("description", "text", max_length=2000, multiline=True),
                Column("disputed", "bool"),
            ),
        ),
        FileKind(
            name="payments",
            id_column="payment_id",
            order=3,
            columns=(
                Column("payment_id", "id", required=True, max_length=64),
                Column("invoice_id", "id", required=True, max_length=64),
                Column("paid_date", "date", required=True),
                Column("amount", "amount", required=True),
                Column("method", "text", max_length=64),
            ),
        ),
        FileKind(
            name="legal_updates",
            id_column="step_id",
            order=4,
            description="steps of legal cases reported by the legal team, applied in file order "
            "through the case lifecycle (receivables.ingest.legal_updates)",
            tables=("legal_cases", "legal_case_events"),
            columns=(
                Column("case_id", "id", required=True, max_length=64),
                Column(
                    "status",
                    "choice",
                    required=True,
                    choices=FILE_STATUSES,
                    choices_note="a case is approved or rejected in its legal review, never by "
                    "a file",
                ),
                Column("date", "date", required=True),
                Column("amount", "amount"),
                # the case's currency, when the file states it: a check, never a conversion
                Column("currency", "currency"),
                Column("note", "text", max_length=2000, multiline=True),
                Column("actor", "text"),
                # a case takes each status once: "<case_id> <status>" names the row, and a step
                # written twice in one file holds back both copies
                Column("step_id", "id", derived_from=("case_id", "status")),
            ),
        ),
        FileKind(
            name="feedback",
            id_column="feedback_id",
            order=5,
            description="remarks of the collection staff on the plan (strategy, templates, "
            "customers, legal, tools), shown in the quarterly evaluation of their date's quarter",
            tables=("staff_feedback",),
            columns=(
                Column("feedback_id", "id", required=True, max_length=64),
                Column("date", "date", required=True),
                Column("author", "text", required=True),
                Column("team", "text"),
                Column("topic", "choice", choices=FEEDBACK_TOPICS),
                Column("text", "text", required=True, max_length=4000, multiline=True),
            ),
        ),
    )
}

#: Prefixes reserved for kinds this version does not handle: such files wait in the inbox
#: untouched (none at present).
RESERVED_PREFIXES: tuple[str, ...] = ()

FORMATS = {".csv": "csv", ".xlsx": "xlsx", ".parquet": "parquet"}


def kind_for(file_name: str) -> FileKind | None:
    """The kind a file name announces by its prefix (case-insensitive), or None."""
    lowered = file_name.lower()
    for kind in KINDS.values():
        if lowered.startswith(kind.name):
            return kind
    return None


def ordered_kinds() -> list[FileKind]:
    """Kinds in loading order."""
    return sorted(KINDS.values(), key=lambda k: k.order)
