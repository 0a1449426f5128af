"""Contact rules: whether a reminder may go to a customer, each rule its own function.

Every rule reads one :class:`Candidate` (the facts about one customer's reminder: its stage, its
moment of delivery, its addresses, what is paused or stopped) and returns a :class:`Refusal`
naming itself, or None. :func:`check` applies them in :data:`RULES` order and returns the first
refusal: the planner records it with the reminder (status ``refused``), and the sender applies
the same rules again right before sending, on fresh facts, so a customer who paid, disputed,
promised, opted out or was put into a legal case since the plan is not chased.

Defaults (the strategy's ``contact`` section): the window 08:00–21:00 in the customer's own time
zone (US Regulation F §1006.6(b)(1)(i); PRC industry guidance forbids 22:00–08:00, so the window
satisfies both); at most one email a day and three in seven days; never to a customer marked
``do_not_contact`` or to an address that bounced, reported spam or unsubscribed; paused while an
invoice is disputed or a promise to pay runs; stopped while a legal case is open; only the
debtor's own addresses. A debt past its limitation period (PRC Civil Code: three years) is never
threatened with legal action (Reg F §1006.26(b)): :func:`may_mention_legal`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from receivables.collection.strategy import ContactRules

#: A plain address: something@domain.tld, no spaces, no controls, no display name.
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")

#: Reminders that count against the caps: planned to go, going, or gone.
COUNTED_STATUSES = ("pending", "sending", "sent")


@dataclass(frozen=True)
class Refusal:
    """Why a reminder may not go: the rule's name and the reason in words."""

    rule: str
    reason: str

    def text(self) -> str:
        """``rule: reason`` (what the ``reminders`` export shows)."""
        return f"{self.rule}: {self.reason}"


@dataclass(frozen=True)
class Candidate:
    """The facts the rules judge, for one customer's reminder."""

    customer_id: str
    timezone: str
    addresses: tuple[str, ...]
    do_not_contact: bool
    send_at: dt.datetime
    outstanding: Decimal
    disputed_invoices: int = 0
    open_disputes: int = 0
    promise_until: dt.date | None = None
    legal_case: str | None = None
    suppressed: frozenset[str] = field(default_factory=frozenset)
    #: moments (UTC) of this customer's other reminders that count against the caps
    other_sends: tuple[dt.datetime, ...] = ()

    @cached_property
    def usable_addresses(self) -> tuple[str, ...]:
        """The well-formed addresses on file (lower-cased, each once, in order)."""
        return usable_addresses(self.addresses)

    @cached_property
    def deliverable_addresses(self) -> tuple[str, ...]:
        """Usable addresses that are not suppressed."""
        return tuple(a for a in self.usable_addresses if a not in self.suppressed)


def usable_addresses(addresses: Iterable[str]) -> tuple[str, ...]:
    """The well-formed addresses among ``addresses`` (split on ``;`` or ``,``), lower-cased."""
    seen: dict[str, None] = {}
    for text in addresses:
        for part in re.split(r"[;,]", text or ""):
            address = part.strip().lower()
            if len(address) <= 254 and _ADDRESS.match(address):
                seen.setdefault(address, None)
    return tuple(seen)


def customer_timezone(name: str | None, fallback: str) -> str:
    """The customer's IANA time zone, or ``fallback`` (the business zone) when it has none or an
    unknown one."""
    try:
        ZoneInfo(name or fallback)
        return name or fallback
    except (ZoneInfoNotFoundError, ValueError):
        return fallback


def local_time(moment: dt.datetime, timezone: str) -> dt.datetime:
    """``moment`` on the customer's clock."""
    return moment.astimezone(ZoneInfo(timezone))


# --- the rules, in the order they are applied -------------------------------------------------


def do_not_contact(c: Candidate, rules: ContactRules) -> Refusal | None:
    """A customer marked ``do_not_contact`` is never contacted."""
    if c.do_not_contact:
        return Refusal("do_not_contact", "the customer is marked do-not-contact")
    return None


def legal_case_open(c: Candidate, rules: ContactRules) -> Refusal | None:
    """An open legal case stops collection: the lawyers speak for us now."""
    if c.legal_case:
        return Refusal("legal_case_open", f"legal case {c.legal_case} is open")
    return None


def invoice_disputed(c: Candidate, rules: ContactRules) -> Refusal | None:
    """A disputed invoice, or a dispute the customer raised through its link, pauses collection
    until it is resolved."""
    if c.disputed_invoices:
        return Refusal("invoice_disputed", f"{c.disputed_invoices} open invoice(s) disputed")
    if c.open_disputes:
        return Refusal("invoice_disputed", "the customer raised a dispute that is still open")
    return None


def promise_to_pay(c: Candidate, rules: ContactRules) -> Refusal | None:
    """A running promise to pay pauses collection until its date."""
    if c.promise_until is not None and local_time(c.send_at, c.timezone).date() <= c.promise_until:
        return Refusal("promise_to_pay", f"promise to pay by {c.promise_until} is running")
    return None


def nothing_outstanding(c: Candidate, rules: ContactRules) -> Refusal | None:
    """A customer who has paid everything is not chased."""
    if c.outstanding <= 0:
        return Refusal("nothing_outstanding", "nothing is outstanding any more")
    return None


def no_usable_address(c: Candidate, rules: ContactRules) -> Refusal | None:
    """Only the debtor's own, well-formed addresses are written to."""
    if not c.usable_addresses:
        return Refusal("no_usable_address", "no usable email address on file")
    return None


def address_suppressed(c: Candidate, rules: ContactRules) -> Refusal | None:
    """Never to an address that bounced, was dropped, reported spam or unsubscribed."""
    if not c.deliverable_addresses:
        return Refusal(
            "address_suppressed",
            "every address on file bounced, reported spam or unsubscribed",
        )
    return None


def contact_window(c: Candidate, rules: ContactRules) -> Refusal | None:
    """Delivery only inside the window on the customer's own clock."""
    local = local_time(c.send_at, c.timezone).time()
    if not rules.window_start <= local < rules.window_end:
        return Refusal(
            "contact_window",
            f"{local:%H:%M} is outside {rules.window_start:%H:%M}-{rules.window_end:%H:%M} "
            f"in {c.timezone}",
        )
    return None


def _local_days(c: Candidate) -> list[dt.date]:
    return [local_time(moment, c.timezone).date() for moment in c.other_sends]


def daily_cap(c: Candidate, rules: ContactRules) -> Refusal | None:
    """At most ``max_per_day`` emails a day, days on the customer's clock."""
    day = local_time(c.send_at, c.timezone).date()
    if sum(1 for d in _local_days(c) if d == day) >= rules.max_per_day:
        return Refusal("daily_cap", f"already {rules.max_per_day} email(s) on {day}")
    return None


def weekly_cap(c: Candidate, rules: ContactRules) -> Refusal | None:
    """At most ``max_per_week`` emails in any seven consecutive days ending on the send day."""
    day = local_time(c.send_at, c.timezone).date()
    first = day - dt.timedelta(days=6)
    if sum(1 for d in _local_days(c) if first <= d <= day) >= rules.max_per_week:
        return Refusal(
            "weekly_cap", f"already {rules.max_per_week} email(s) in the 7 days to {day}"
        )
    return None


Rule = Callable[[Candidate, ContactRules], Refusal | None]

RULES: tuple[Rule, ...] = (
    do_not_contact,
    legal_case_open,
    invoice_disputed,
    promise_to_pay,
    nothing_outstanding,
    no_usable_address,
    address_suppressed,
    contact_window,
    daily_cap,
    weekly_cap,
)
RULE_NAMES = tuple(rule.__name__ for rule in RULES)


def check(c: Candidate, rules: ContactRules) -> Refusal | None:
    """The first rule that refuses ``c``, or None when every rule allows it."""
    for rule in RULES:
        refusal = rule(c, rules)
        if refusal is not None:
            return refusal
    return None


def too_late(planned: dt.datetime, now: dt.datetime, max_delay_hours: int) -> Refusal | None:
    """A reminder is sent close to the moment it was planned for, or not at all: its facts
    (what is owed, what the customer said) are of that day. A backfill of an old date, or a
    sender that ran days late, must not write to customers about it now."""
    late = now - planned
    if late > dt.timedelta(hours=max_delay_hours):
        hours = int(late.total_seconds() // 3600)
        return Refusal(
            "too_late",
            f"planned for {planned:%Y-%m-%d %H:%M} UTC, {hours} hours ago (more than "
            f"{max_delay_hours}): not sent so late",
        )
    return None


def time_barred(oldest_due: dt.date, as_of: dt.date, rules: ContactRules) -> bool:
    """Whether a debt due on ``oldest_due`` is past its limitation period on ``as_of``."""
    try:
        limit = oldest_due.replace(year=oldest_due.year + rules.limitation_years)
    except ValueError:  # 29 February
        limit = oldest_due.replace(year=oldest_due.year + rules.limitation_years, day=28)
    return as_of > limit


def may_mention_legal(
    stage_mentions_legal: bool, due_dates: Iterable[dt.date], as_of: dt.date, rules: ContactRules
) -> bool:
    """A reminder mentions the legal step only at a stage that does and only when no debt in
    its statement is past its limitation period (a time-barred debt is never threatened)."""
    return stage_mentions_legal and not any(time_barred(d, as_of, rules) for d in due_dates)


def within_window(moment: dt.datetime, timezone: str, rules: ContactRules) -> dt.datetime:
    """``moment`` if it falls inside the contact window on the customer's clock, else the next
    opening of the window (UTC)."""
    tz = ZoneInfo(timezone)
    local = moment.astimezone(tz)
    if rules.window_start <= local.time() < rules.window_end:
        return moment.astimezone(dt.UTC)
    day = local.date() if local.time() < rules.window_start else local.date() + dt.timedelta(1)
    opening = dt.datetime.combine(day, rules.window_start, tzinfo=tz)
    return opening.astimezone(dt.UTC)


def delivery_moment(
    planned: dt.datetime, now: dt.datetime, timezone: str, rules: ContactRules
) -> dt.datetime | None:
    """When to ask the provider to deliver a reminder planned for ``planned``, sending at
    ``now``: the planned moment while it is ahead; None (at once) when it has passed and the
    customer's clock is inside the window; else the window's next opening. Never at night."""
    if planned > now:
        return planned
    moment = within_window(now, timezone, rules)
    return None if moment <= now else moment
