"""The warehouse schema (SQLAlchemy Core). Alembic migrations create it; see ``migrations/``.

Money columns use :class:`~receivables.warehouse.types.Money`; dates are ``DATE``; every ledger
row remembers the file it came from (``source_file_id``) so a data engineer can trace it.

References between ledger tables (invoice → customer, payment → invoice, row → source file) are
not declared as foreign keys, on purpose: the database would check them row by row, which more
than doubles the time of a bulk load on PostgreSQL (measured: 1M invoices, 3.0 s without, 9.8 s
with). They are enforced set-based instead, once per file, before anything is written — the
ingest's unknown-reference checks (``sql/ingest/checks_*.sql``) — and again by the merge, which
joins the referenced table and refuses to commit when it writes fewer rows than it should.
Rows are never deleted, so a reference that held when a row was loaded keeps holding.
"""

from __future__ import annotations

import sqlalchemy as sa

from receivables.warehouse.types import FX_RATE_SCALE, TOTAL_PRECISION, Money, Rate

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = sa.String(64)
CURRENCY = sa.String(3)

ingested_files = sa.Table(
    "ingested_files",
    metadata,
    sa.Column("file_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("file_name", sa.String(255), nullable=False, comment="name as dropped in the inbox"),
    sa.Column("kind", sa.String(32), comment="collectors, customers, invoices, payments"),
    sa.Column("file_format", sa.String(16)),
    sa.Column("encoding", sa.String(32)),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, comment="why a file was refused whole"),
    sa.Column("reason_column", sa.String(255), comment="the column(s) a refusal is about"),
    sa.Column("rows_read", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_loaded", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_quarantined", sa.Integer, nullable=False, server_default="0"),
    sa.Column("as_of_date", sa.Date, nullable=False, comment="business date of the ingest run"),
    sa.Column(
        "earliest_date",
        sa.Date,
        comment="earliest business date whose ledger this load changed (history is recomputed "
        "from there)",
    ),
    sa.Column("dag_run_id", sa.String(250)),
    sa.Column("stored_path", sa.Text, comment="where the file went: archive/ or rejected/"),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('loaded', 'rejected')", name="status"),
    sa.CheckConstraint("rows_read = rows_loaded + rows_quarantined", name="rows_reconcile"),
    sa.Index(
        "uq_ingested_files_loaded_sha256",
        "sha256",
        unique=True,
        sqlite_where=sa.text("status = 'loaded'"),
        postgresql_where=sa.text("status = 'loaded'"),
    ),
)

quarantined_rows = sa.Table(
    "quarantined_rows",
    metadata,
    sa.Column("quarantine_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("file_id", sa.ForeignKey("ingested_files.file_id"), nullable=False, index=True),
    sa.Column("row_number", sa.Integer, comment="data rows counted from 1"),
    sa.Column("record_id", sa.String(255), comment="the row's own id when it could be read"),
    sa.Column("column_name", sa.String(255)),
    sa.Column("value", sa.Text),
    sa.Column("reason", sa.Text, nullable=False),
)

collectors = sa.Table(
    "collectors",
    metadata,
    sa.Column("collector_id", ID, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("email", sa.String(320)),
    sa.Column("team", sa.String(255)),
    sa.Column("source_file_id", sa.Integer, nullable=False),
)

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("customer_id", ID, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("email", sa.Text, comment="one or more addresses separated by ';'"),
    sa.Column("phone", sa.String(64)),
    sa.Column("locale", sa.String(8), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("segment", sa.String(64)),
    sa.Column("credit_limit", Money),
    sa.Column("currency", CURRENCY, nullable=False),
    sa.Column("collector_id", ID, index=True, comment="not enforced: collectors may come later"),
    sa.Column("do_not_contact", sa.Boolean, nullable=False),
    sa.Column("source_file_id", sa.Integer, nullable=False),
)

invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("invoice_id", ID, primary_key=True),
    sa.Column("customer_id", ID, nullable=False, index=True),
    sa.Column("issue_date", sa.Date, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("currency", CURRENCY, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("disputed", sa.Boolean, nullable=False),
    sa.Column("source_file_id", sa.Integer, nullable=False),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
    sa.CheckConstraint("due_date >= issue_date", name="due_after_issue"),
)

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("payment_id", ID, primary_key=True),
    sa.Column("invoice_id", ID, nullable=False),
    sa.Column("paid_date", sa.Date, nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("method", sa.String(64)),
    sa.Column("source_file_id", sa.Integer, nullable=False),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
    sa.Index("ix_payments_invoice_id_paid_date", "invoice_id", "paid_date"),
)

fx_rates = sa.Table(
    "fx_rates",
    metadata,
    sa.Column("rate_date", sa.Date, primary_key=True),
    sa.Column("currency", CURRENCY, primary_key=True),
    sa.Column(
        "rate",
        Rate(FX_RATE_SCALE, 20),
        nullable=False,
        comment="units of the reporting currency for one unit of currency",
    ),
    sa.Column("source_file_id", sa.Integer, nullable=False),
    sa.CheckConstraint("rate > 0", name="rate_positive"),
    comment="exchange rates to the reporting currency; a date without its own rate uses the "
    "latest earlier one",
)

aging_snapshots = sa.Table(
    "aging_snapshots",
    metadata,
    sa.Column("as_of_date", sa.Date, primary_key=True),
    sa.Column("invoice_id", ID, primary_key=True),
    sa.Column("customer_id", ID, nullable=False),
    sa.Column("currency", CURRENCY, nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("paid", Money, nullable=False, comment="payments with paid_date <= as_of_date"),
    sa.Column("outstanding", Money, nullable=False),
    sa.Column("issue_date", sa.Date, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("days_past_due", sa.Integer, nullable=False),
    sa.Column("bucket", sa.String(16), nullable=False),
    sa.Column("risk_class", sa.String(16), nullable=False),
    sa.Column("disputed", sa.Boolean, nullable=False),
    sa.Index("ix_aging_snapshots_as_of_date_customer_id", "as_of_date", "customer_id"),
)

aging_runs = sa.Table(
    "aging_runs",
    metadata,
    sa.Column("as_of_date", sa.Date, primary_key=True),
    sa.Column("open_invoices", sa.Integer, nullable=False),
    sa.Column(
        "ledger_file_id",
        sa.Integer,
        comment="the newest loaded file the snapshot saw: a later load that changed this date "
        "makes it stale",
    ),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False, comment="audit only"),
    comment="one row per as-of date whose aging snapshot exists (even when it has no rows)",
)

# --- risk (issue: classification, provisions, roll rates, scores, warnings) ------------------

#: Shares, roll rates and loss rates are stored exactly (8 decimal places): the provision of an
#: invoice is its outstanding times its loss rate, rounded half-up to the cent, and must come out
#: to the same cent on every engine. A money column holding a sum of many rows is a ``TOTAL``.
RATE = Rate()
TOTAL = Money(TOTAL_PRECISION)

customer_risk_classes = sa.Table(
    "customer_risk_classes",
    metadata,
    sa.Column("as_of_date", sa.Date, primary_key=True),
    sa.Column("customer_id", ID, primary_key=True),
    sa.Column("currency", CURRENCY, primary_key=True),
    sa.Column("outstanding", TOTAL, nullable=False),
    sa.Column("substandard_or_worse", TOTAL, nullable=False),
    sa.Column(
        "substandard_share",
        RATE,
        nullable=False,
        comment="share of the customer's outstanding (converted) that is substandard or worse",
    ),
    sa.Column("worst_days_past_due", sa.Integer, nullable=False),
    sa.Column("risk_class", sa.String(16), nullable=False, comment="the worst of its invoices"),
    sa.Column(
        "rule_applied",
        sa.Boolean,
        nullable=False,
        comment="more than the threshold is substandard or worse: all at least substandard",
    ),
    sa.Column(
        "fx_rate",
        Rate(FX_RATE_SCALE, 20),
        comment="rate to the reporting currency on the as-of date (none: judged on its own)",
    ),
    sa.Column("reporting_outstanding", TOTAL, comment="outstanding in the reporting currency"),
    comment="customer-level five-category classification per as-of date and currency",
)

invoice_risk = sa.Table(
    "invoice_risk",
    metadata,
    sa.Column("as_of_date", sa.Date, primary_key=True),
    sa.Column("invoice_id", ID, primary_key=True),
    sa.Column("customer_id", ID, nullable=False),
    sa.Column("currency", CURRENCY, nullable=False),
    sa.Column("segment", sa.String(64)),
    sa.Column("bucket", sa.String(16), nullable=False),
    sa.Column("outstanding", Money, nullable=False),
    sa.Column(
        "risk_class",
        sa.String(16),
        nullable=False,
        comment="by days past due, raised to substandard by the customer rule",
    ),
    sa.Column("loss_rate", RATE, nullable=False),
    sa.Column("ecl", Money, nullable=False, comment="expected credit loss = outstanding x rate"),
    sa.Index("ix_invoice_risk_as_of_date_customer_id", "as_of_date", "customer_id"),
    comment="per open invoice: final risk class and IFRS 9 provision",
)

roll_rates = sa.Table(
    "roll_rates",
    metadata,
    sa.Column("month_end", sa.Date, primary_key=True, comment="the later of the two month-ends"),
    sa.Column("currency", CURRENCY, primary_key=True),
    sa.Column("from_bucket", sa.String(16), primary_key=True),
    sa.Column("to_bucket", sa.String(16), primary_key=True, comment="a bucket, or 'paid'"),
    sa.Column("amount", TOTAL, nullable=False, comment="outstanding at the earlier month-end"),
    sa.Column("invoices", sa.Integer, nullable=False),
    sa.Column(
        "ledger_file_id",
        sa.Integer,
        comment="the newest loaded file the two month-end snapshots saw",
    ),
    comment="bucket-to-bucket movement of open invoices between consecutive month-ends",
)

provision_rates = sa.Table(
    "provision_rates",
    metadata,
    sa.Column("as_of_date", sa.Date, primary_key=True),
    sa.Column("currency", CURRENCY, primary_key=True, comment="each book has its own history"),
    sa.Column("bucket", sa.String(16), primary_key=True),
    sa.Column("roll_rate", RATE, comment="average roll rate to the next bucket"),
    sa.Column("roll_months", sa.Integer, comment="months over which this bucket's roll is seen"),
    sa.Column("loss_rate", RATE, nullable=False),
    sa.Column("method", sa.String(16), nullable=False, comment="roll_rates or fallback"),
    sa.Column("observations", sa.Integer, nullable=False, comment="roll observations averaged"),
)

credit_models = sa.Table(
    "credit_models",
    metadata,
    sa.Column("model_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("trained_as_of", sa.Date, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False, comment="scorecard or rules"),
    sa.Column("status", sa.String(16), nullable=False, comment="approved or rejected"),
    sa.Column("status_reason", sa.Text),
    sa.Column("auc", sa.Float),
    sa.Column("ks", sa.Float),
    sa.Column("gini", sa.Float),
    sa.Column("psi", sa.Float),
    sa.Column("train_rows", sa.Integer),
    sa.Column("holdout_rows", sa.Integer),
    sa.Column("definition", sa.Text, nullable=False, comment="JSON: bins, WoE, coefficients"),
    sa.Column("card_path", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, comment="audit only"),
    sa.UniqueConstraint("trained_as_of", "kind"),
)

credit_scores = sa.Table(
    "credit_scores",
    metadata,
    sa.Column("as_of_date", sa.Date, primary_key=True),
    sa.Column("customer_id", ID, primary_key=True),
    sa.Column("model_id", sa.Integer, nullable=False),
    sa.Column("score", sa.Float(53), nullable=False, comment="rounded to 2 decimals"),
    sa.Column(
        "pd", sa.Float(53), nullable=False, comment="probability of reaching 90+ days past due"
    ),
    sa.Column("grade", sa.String(1), nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column(
        "basis",
        sa.String(16),
        nullable=False,
        server_default="behaviour",
        comment="behaviour (payment history) or application (no payment history yet)",
    ),
)

risk_warnings = sa.Table(
    "risk_warnings",
    metadata,
    sa.Column("as_of_date", sa.Date, primary_key=True),
    sa.Column("customer_id", ID, primary_key=True),
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("currency", CURRENCY),
    sa.Column("proposed_credit_limit", Money),
    sa.Column("dunning_stage", sa.String(32)),
)

# --- collection (reminders, their outbox, the worklist, email events, suppressions) ----------

#: Customer-facing email is an outbox: a reminder row (its idempotency key: customer, stage,
#: date) is written before anything is sent, claimed (``sending``) right before the request
#: and marked ``sent`` with the provider's message id, or ``failed`` with the reason, right
#: after. A crash between claim and mark leaves ``sending``: that reminder is never sent again
#: automatically (the provider may have accepted it); see ``receivables.collection.sender``.
REMINDER_STATUSES = ("pending", "sending", "sent", "refused", "failed")

reminders = sa.Table(
    "reminders",
    metadata,
    sa.Column("reminder_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "idempotency_key",
        sa.String(200),
        nullable=False,
        unique=True,
        comment="customer/stage/planned_on: one reminder of a stage per customer and day",
    ),
    sa.Column("planned_on", sa.Date, nullable=False, comment="the as-of date that planned it"),
    sa.Column("customer_id", ID, nullable=False),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("ladder", sa.String(16), nullable=False, comment="standard or early"),
    sa.Column("channel", sa.String(16), nullable=False, server_default="email"),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("rule", sa.String(64), comment="the compliance rule that refused it"),
    sa.Column("reason", sa.Text, comment="why it was refused or failed, in words"),
    sa.Column("locale", sa.String(8), nullable=False),
    sa.Column("recipients", sa.Text, comment="the debtor's own addresses, ';'-separated"),
    sa.Column("send_at", sa.DateTime(timezone=True), comment="planned moment of delivery (UTC)"),
    sa.Column(
        "oldest_invoice_id", ID, nullable=False, comment="the invoice whose age sets the stage"
    ),
    sa.Column("days_past_due", sa.Integer, nullable=False, comment="of the oldest invoice"),
    sa.Column("invoices", sa.Integer, nullable=False, comment="open invoices in the statement"),
    sa.Column("mentions_legal", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("strategy_version", sa.String(64), nullable=False),
    sa.Column("batch", sa.Integer, comment="send batch within the planned date"),
    sa.Column("provider", sa.String(16), comment="sendgrid, or outbox (.eml files)"),
    sa.Column("provider_message_id", sa.String(255)),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Column("delivery_status", sa.String(32), comment="the latest Event Webhook event"),
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    sa.Column("opened_at", sa.DateTime(timezone=True)),
    sa.Column("clicked_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint(
        "status IN ('pending', 'sending', 'sent', 'refused', 'failed')", name="status"
    ),
    sa.Index("ix_reminders_customer_id_planned_on", "customer_id", "planned_on"),
    # not status: a change of status then updates the row in place (migration 0007)
    sa.Index("ix_reminders_planned_on_batch", "planned_on", "batch"),
    sa.Index("ix_reminders_oldest_invoice_id", "oldest_invoice_id"),
    comment="customer reminders: the outbox of customer-facing email, one row per customer, "
    "stage and planned date",
)

reminder_invoices = sa.Table(
    "reminder_invoices",
    metadata,
    sa.Column("reminder_id", sa.Integer, primary_key=True),
    sa.Column("invoice_id", ID, primary_key=True),
    sa.Column("currency", CURRENCY, nullable=False),
    sa.Column("outstanding", Money, nullable=False, comment="when planned"),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("days_past_due", sa.Integer, nullable=False),
    comment="the open invoices a reminder's statement covers",
)

collection_actions = sa.Table(
    "collection_actions",
    metadata,
    sa.Column("action_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("planned_on", sa.Date, nullable=False),
    sa.Column("customer_id", ID, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False, comment="call, visit, fix_data, review"),
    sa.Column("cause", sa.String(64), nullable=False, comment="the stage or rule behind it"),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("collector_id", ID),
    sa.Column("reminder_id", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("planned_on", "customer_id", "kind", "cause"),
    comment="the collectors' worklist: calls, visits and data fixes (recorded, never sent)",
)

email_events = sa.Table(
    "email_events",
    metadata,
    sa.Column("sg_event_id", sa.String(255), primary_key=True),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("email", sa.String(320)),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sg_message_id", sa.String(255)),
    sa.Column("reminder_id", sa.Integer, index=True, comment="from the send's custom_args"),
    sa.Column("payload", sa.Text, nullable=False, comment="the event as received (JSON)"),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    comment="SendGrid Event Webhook events, each stored once",
)

suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("address", sa.String(320), primary_key=True, comment="lower case"),
    sa.Column(
        "reason",
        sa.String(32),
        nullable=False,
        comment="bounce, dropped, spamreport, unsubscribe, group_unsubscribe, opt_out",
    ),
    sa.Column("source", sa.String(32), nullable=False, comment="webhook or self_service"),
    sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sg_event_id", sa.String(255)),
    comment="addresses no reminder may be sent to",
)

customer_feedback = sa.Table(
    "customer_feedback",
    metadata,
    sa.Column("feedback_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer_id", ID, nullable=False, index=True),
    sa.Column("reminder_id", sa.Integer),
    sa.Column("kind", sa.String(16), nullable=False, comment="dispute or feedback"),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, comment="open or resolved"),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    comment="what customers told us through the link in their reminder",
)

staff_feedback = sa.Table(
    "staff_feedback",
    metadata,
    sa.Column("feedback_id", ID, primary_key=True),
    sa.Column("given_on", sa.Date, nullable=False, index=True),
    sa.Column("author", sa.String(255), nullable=False),
    sa.Column("team", sa.String(255)),
    sa.Column(
        "topic",
        sa.String(16),
        nullable=False,
        comment="strategy, templates, customers, legal, tools or other",
    ),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("source_file_id", sa.Integer, nullable=False),
    comment="what the collection staff said of the plan (feedback files)",
)

promises_to_pay = sa.Table(
    "promises_to_pay",
    metadata,
    sa.Column("promise_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer_id", ID, nullable=False, index=True),
    sa.Column("promised_on", sa.Date, nullable=False, comment="when the customer promised"),
    sa.Column("pay_by", sa.Date, nullable=False),
    sa.Column("amount", Money),
    sa.Column("currency", CURRENCY),
    sa.Column("note", sa.Text),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    comment="promises to pay: collection pauses from promised_on until pay_by",
)

#: A legal case's life: proposed by the selection rules, approved or rejected by a person (or
#: approved automatically under a configured amount), filed in court, judged, and ended by a
#: recovery, a settlement, a write-off or closing. See ``receivables.legal.lifecycle``.
CASE_STATUSES = (
    "proposed",
    "approved",
    "rejected",
    "filed",
    "judgment",
    "recovered",
    "settled",
    "written_off",
    "closed",
)

legal_cases = sa.Table(
    "legal_cases",
    metadata,
    sa.Column("case_id", ID, primary_key=True),
    sa.Column("customer_id", ID, nullable=False, index=True),
    sa.Column("opened_on", sa.Date, nullable=False, comment="the as-of date that proposed it"),
    sa.Column("amount", TOTAL, nullable=False, comment="claimed: principal + interest"),
    sa.Column("currency", CURRENCY, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("updated_on", sa.Date, nullable=False),
    sa.Column("principal", TOTAL, comment="outstanding of the claimed invoices at escalation"),
    sa.Column("interest", TOTAL, comment="late interest claimed (0 when not configured)"),
    sa.Column("worst_days_past_due", sa.Integer),
    sa.Column("rules", sa.Text, comment="the selection rule results that proposed it (JSON)"),
    sa.Column("decided_by", sa.String(255), comment="who approved or rejected it"),
    sa.Column("decided_at", sa.DateTime(timezone=True)),
    sa.Column("decision_note", sa.Text),
    sa.Column("recovered_amount", TOTAL, comment="recovered or settled"),
    sa.Column("written_off_amount", TOTAL),
    sa.Column("case_file", sa.Text, comment="folder of its case file under RECEIVABLES_HOME"),
    sa.Column("strategy_version", sa.String(64)),
    sa.CheckConstraint(
        "status IN ('proposed', 'approved', 'rejected', 'filed', 'judgment', 'recovered', "
        "'settled', 'written_off', 'closed')",
        name="status",
    ),
    comment="legal cases; reminders stop while one is open (approved, filed, judgment)",
)

legal_case_events = sa.Table(
    "legal_case_events",
    metadata,
    sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", ID, nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, comment="the status it moved to"),
    sa.Column("occurred_on", sa.Date, nullable=False),
    sa.Column("amount", TOTAL, comment="recovered, settled or written off"),
    sa.Column("note", sa.Text),
    sa.Column("actor", sa.String(255), comment="a person, or the rule that decided"),
    sa.Column("source", sa.String(255), nullable=False, comment="selection, review, cli, a file"),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    comment="every step of every legal case, in order",
)

legal_case_invoices = sa.Table(
    "legal_case_invoices",
    metadata,
    sa.Column("case_id", ID, primary_key=True),
    sa.Column("invoice_id", ID, primary_key=True),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("days_past_due", sa.Integer, nullable=False, comment="at escalation"),
    sa.Column("outstanding", Money, nullable=False, comment="at escalation"),
    sa.Column("interest", Money, nullable=False),
    comment="the invoices a legal case claims, as they stood at escalation",
)
