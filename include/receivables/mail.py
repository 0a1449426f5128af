"""Outgoing email: one message, one idempotency key, at most one delivery.

Two transports deliver an :class:`OutboundEmail`:

* :class:`SendGridTransport` posts it to SendGrid's Mail Send API with the official ``sendgrid``
  client, when the ``sendgrid_default`` connection is configured (docs/contract.md §2);
* :class:`EmlTransport` otherwise writes it as an ``.eml`` file to ``$RECEIVABLES_HOME/outbox/``.
  The file name is the message's key, and a message whose key is already there is not written
  again.

:func:`send_once` (the operations emails) sends a message at most once per key on either
transport: a retried task never sends the same message twice. Before SendGrid is called the key
is claimed with a marker file under ``outbox/.sent/``; a definitive refusal releases the claim
(a retry may send), an uncertain outcome keeps it (never twice).

A message may carry files (:class:`Attachment`: a legal case file's PDFs): the ``.eml`` writes
them as MIME parts, SendGrid gets them base64-encoded. Both refuse a file name that could be
read as a path and a message over SendGrid's size limit.

Nothing here logs an API key or a recipient's address: log lines carry keys, statuses and
SendGrid's message ids.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.client
import json
import logging
import os
import random
import re
import ssl
import threading
import time
import urllib.error
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import formataddr, make_msgid, parseaddr, parsedate_to_datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from receivables.render import render_email
from receivables.text import has_unsafe_characters, one_line, shown

if TYPE_CHECKING:
    from receivables.config import SendGridConfig, Settings

log = logging.getLogger(__name__)

#: SendGrid's limits on a message (Mail Send API): categories, their length, scheduling.
MAX_CATEGORIES = 10
MAX_CATEGORY_LENGTH = 255
MAX_SEND_AHEAD = dt.timedelta(hours=72)
#: Headers SendGrid sets itself and refuses in ``headers`` (and that the .eml writes itself).
RESERVED_HEADERS = frozenset(
    {
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "content-type",
        "content-transfer-encoding",
        "to",
        "from",
        "subject",
        "reply-to",
        "cc",
        "bcc",
    }
)
#: The public API; a ``host`` in the connection (a contract mock) replaces it.
SENDGRID_API = "https://api.sendgrid.com"
#: A reason stored or logged is cut to this many characters.
REASON_LENGTH = 500
#: SendGrid refuses a message over 30 MB, attachments included (base64-encoded, as sent). Both
#: transports count the text, the HTML and each attachment as SendGrid receives them.
MAX_MESSAGE_BYTES = 30 * 1000 * 1000
#: The longest attachment file name (most file systems keep at most 255 bytes).
MAX_FILENAME_LENGTH = 255
#: A MIME type as ``type/subtype`` (RFC 6838 characters), nothing around it.
#: An inline image's content id: a plain token (letters, digits, dot, dash, underscore, @).
_CONTENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$", re.I)

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Attachment:
    """A file sent with a message: its name as the recipient sees it (a plain name, never a
    path), its MIME type (``application/pdf``) and its bytes; with a ``content_id``, an image
    the HTML body shows inline (``cid:`` URL) rather than a file to open."""

    filename: str
    content_type: str
    content: bytes = field(repr=False)
    #: an image shown in the HTML body (``<img src="cid:...">``) instead of a file to open
    content_id: str | None = None

    @property
    def encoded_size(self) -> int:
        """Bytes the file takes in the request: base64, as SendGrid receives it."""
        return 4 * ((len(self.content) + 2) // 3)


@dataclass(frozen=True)
class OutboundEmail:
    """A message to send. ``key`` identifies it across retries and re-runs.

    ``category`` names the kind of message (``alert``, ``risk-digest``, ``reminder``) and is sent
    as the first SendGrid category; ``categories`` adds more (at most 10 in all). ``custom_args``
    come back in SendGrid's webhook events; ``send_at`` (unix seconds, at most 72 h ahead)
    schedules the delivery; ``headers`` are extra headers such as ``List-Unsubscribe``;
    ``attachments`` are files sent with it (see :class:`Attachment`).
    """

    key: str
    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    category: str = "operations"
    categories: tuple[str, ...] = ()
    custom_args: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    send_at: int | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    reply_to: str | None = None
    attachments: tuple[Attachment, ...] = ()

    @property
    def all_categories(self) -> tuple[str, ...]:
        """``category`` then ``categories``, each once, in order."""
        return tuple(dict.fromkeys((self.category, *self.categories)))


@dataclass(frozen=True)
class Delivery:
    """What happened to a message: ``sent`` or ``duplicate`` (sent before), and where: the
    ``.eml`` file, or ``sendgrid:<message id>``. ``provider_message_id`` is SendGrid's
    ``X-Message-Id`` (None when the API did not return one, as the contract mock does) or the
    ``Message-ID`` written to the ``.eml``."""

    status: str
    location: str
    provider_message_id: str | None = None


class DeliveryError(Exception):
    """A message was not delivered.

    ``reason`` is one line, safe to store and log (no API key, no address). ``retryable``: the
    same request may succeed later (429, 5xx, network). ``uncertain``: the request may have
    reached the provider and been accepted (the connection broke after the body was sent), so
    the message must never be re-sent automatically. ``retry_after``: seconds the provider asked
    to wait. ``attempts``: how many requests were made.
    """

    def __init__(
        self,
        reason: str,
        *,
        status_code: int | None = None,
        retryable: bool = False,
        uncertain: bool = False,
        retry_after: float | None = None,
        attempts: int = 0,
    ):
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code
        self.retryable = retryable
        self.uncertain = uncertain
        self.retry_after = retry_after
        self.attempts = attempts


class Transport(Protocol):
    """Delivers one message: ``name`` is ``sendgrid`` or ``outbox``."""

    name: str

    def deliver(self, email: OutboundEmail) -> Delivery:
        """Deliver ``email``; raise :class:`DeliveryError` when it was not delivered."""
        ...


# --- checks shared by both transports -----------------------------------------------------------

_ADDRESS = re.compile(r"[^\s@<>\"',;:()\[\]]+@[^\s@<>\"',;:()\[\]]+")
_API_KEY = re.compile(r"SG\.[\w.-]+")


def safe_reason(text: str) -> str:
    """``text`` made a reason safe to store and log: one line, no address, no API key, at most
    :data:`REASON_LENGTH` characters."""
    text = _API_KEY.sub("<api key>", _ADDRESS.sub("<address>", one_line(text)))
    return shown(text, REASON_LENGTH)


def _refuse(email: OutboundEmail, why: str) -> DeliveryError:
    return DeliveryError(safe_reason(f"email {email.key} refused before sending: {why}"))


def _attachment_problem(attachment: object, position: int, seen: set[str]) -> str | None:
    """Why the ``position``-th attachment (from 1) cannot be sent, or None. Reasons name the
    position, never the file name (it may come from data)."""
    which = f"attachment {position}"
    if not isinstance(attachment, Attachment):
        return f"{which} is not an Attachment"
    name = attachment.filename
    if not isinstance(name, str) or not name.strip():
        return f"{which} has no file name"
    if name != name.strip() or name in (".", ".."):
        return f"{which} has a file name with surrounding blanks or a dot name"
    if "/" in name or "\\" in name:
        return f"{which} has a file name with a path separator"
    if has_unsafe_characters(name):
        return f"{which} has a file name with control or bidirectional characters"
    if len(name) > MAX_FILENAME_LENGTH:
        return f"{which} has a file name of {len(name)} characters (at most 255)"
    if name.lower() in seen:
        return f"{which} has the same file name as an earlier one"
    seen.add(name.lower())
    if not isinstance(attachment.content_type, str) or not _CONTENT_TYPE.match(
        attachment.content_type
    ):
        return f"{which} has no valid MIME type (type/subtype)"
    if not isinstance(attachment.content, bytes):
        return f"{which} has content that is not bytes"
    if not attachment.content:
        return f"{which} is empty"
    if attachment.content_id is not None:
        if not isinstance(attachment.content_id, str) or not _CONTENT_ID.match(
            attachment.content_id
        ):
            return f"{which} has a content id that is not a plain token"
        if not attachment.content_type.lower().startswith("image/"):
            return f"{which} is inline but not an image"
        if f"cid:{attachment.content_id}".lower() in seen:
            return f"{which} has the same content id as an earlier one"
        seen.add(f"cid:{attachment.content_id}".lower())
    return None


def message_size(email: OutboundEmail) -> int:
    """Bytes of ``email`` that count towards SendGrid's limit: subject, text and HTML in UTF-8,
    each attachment base64-encoded."""
    size = sum(
        len(part.encode("utf-8", "surrogatepass"))
        for part in (email.subject, email.text, email.html or "")
    )
    return size + sum(a.encoded_size for a in email.attachments if isinstance(a, Attachment))


def check_email(email: OutboundEmail, now: float | None = None) -> None:
    """Refuse (:class:`DeliveryError`, not retryable) a message SendGrid would refuse: no
    recipient, more than 10 categories or one over 255 characters, a custom argument or header
    that is not a string, a reserved header, ``send_at`` more than 72 hours ahead, an
    attachment without a plain file name (a path separator, a control character), a MIME type
    or content, or a message over :data:`MAX_MESSAGE_BYTES`.

    Both transports check, so the ``.eml`` outbox refuses what SendGrid would."""
    if not email.to:
        raise _refuse(email, "no recipient")
    categories = email.all_categories
    if len(categories) > MAX_CATEGORIES:
        raise _refuse(email, f"{len(categories)} categories (at most {MAX_CATEGORIES})")
    for category in categories:
        if not isinstance(category, str) or not category:
            raise _refuse(email, "a category is not a non-empty string")
        if len(category) > MAX_CATEGORY_LENGTH:
            raise _refuse(email, f"a category has {len(category)} characters (at most 255)")
    for name, value in email.custom_args.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise _refuse(email, f"custom argument {name!r} is not a string (SendGrid needs one)")
    for name, value in email.headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise _refuse(email, f"header {name!r} is not a string")
        if name.lower() in RESERVED_HEADERS:
            raise _refuse(email, f"header {name!r} is set by the mail system, not by a message")
    if email.send_at is not None:
        if isinstance(email.send_at, bool) or not isinstance(email.send_at, int):
            raise _refuse(email, "send_at must be an integer unix time")
        now = time.time() if now is None else now
        if email.send_at > now + MAX_SEND_AHEAD.total_seconds():
            raise _refuse(email, "send_at is more than 72 hours ahead")
    seen: set[str] = set()
    for position, attachment in enumerate(email.attachments, start=1):
        problem = _attachment_problem(attachment, position, seen)
        if problem:
            raise _refuse(email, problem)
    size = message_size(email)
    if size > MAX_MESSAGE_BYTES:
        raise _refuse(
            email,
            f"the message takes {size:,} bytes with its attachments encoded; SendGrid accepts "
            f"at most {MAX_MESSAGE_BYTES:,}",
        )


# --- the .eml outbox --------------------------------------------------------------------------


def _file_name(key: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("._")[:120]
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:10]
    return f"{safe}-{digest}.eml"


def build_message(email: OutboundEmail, mail_from: str) -> EmailMessage:
    """The RFC 5322 message (text, with an HTML alternative when given, and the attachments as
    parts of a ``multipart/mixed`` message). What SendGrid would carry outside the message
    (categories, custom arguments, the scheduled time) is written as ``X-Receivables-*``
    headers, so a reader of the ``.eml`` sees it."""
    message = EmailMessage()
    name, address = parseaddr(mail_from)
    message["From"] = formataddr((name, address))
    message["To"] = ", ".join(email.to)
    if email.reply_to:
        message["Reply-To"] = email.reply_to
    message["Subject"] = email.subject
    domain = address.split("@")[-1] or "receivables.invalid"
    digest = hashlib.sha256(email.key.encode("utf-8")).hexdigest()[:24]
    message["Message-ID"] = make_msgid(idstring=digest, domain=domain)
    message["X-Receivables-Key"] = email.key
    message["X-Receivables-Category"] = email.category
    if email.categories:
        message["X-Receivables-Categories"] = json.dumps(
            list(email.all_categories), ensure_ascii=False
        )
    if email.custom_args:
        message["X-Receivables-Custom-Args"] = json.dumps(
            dict(email.custom_args), ensure_ascii=False, sort_keys=True
        )
    if email.send_at is not None:
        message["X-Receivables-Send-At"] = dt.datetime.fromtimestamp(
            email.send_at, dt.UTC
        ).isoformat()
    for header, value in email.headers.items():
        message[header] = value
    message.set_content(email.text)
    if email.html:
        message.add_alternative(email.html, subtype="html")
    inline = [a for a in email.attachments if a.content_id is not None and email.html]
    if inline:
        html_part = message.get_body(("html",))
        for attachment in inline:
            maintype, subtype = attachment.content_type.lower().split("/", 1)
            html_part.add_related(
                attachment.content,
                maintype=maintype,
                subtype=subtype,
                cid=f"<{attachment.content_id}>",
                filename=attachment.filename,
                disposition="inline",
            )
    shown_inline = {id(a) for a in inline}
    for attachment in email.attachments:
        if id(attachment) in shown_inline:
            continue
        maintype, subtype = attachment.content_type.lower().split("/", 1)
        message.add_attachment(
            attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return message


def _message_id_of(path: Path) -> str | None:
    try:
        with path.open("rb") as f:
            return BytesHeaderParser().parse(f).get("Message-ID")
    except OSError:
        return None


class EmlTransport:
    """Writes each message once as ``<key>.eml`` in ``directory`` (the outbox used until
    SendGrid is configured)."""

    name = "outbox"

    def __init__(self, directory: Path, mail_from: str):
        self.directory = Path(directory)
        self.mail_from = mail_from

    def deliver(self, email: OutboundEmail) -> Delivery:
        """Write the message unless a message with the same key was written before."""
        check_email(email)
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / _file_name(email.key)
        if target.exists():
            log.info("email %s was sent before (%s); not sending it again", email.key, target.name)
            return Delivery("duplicate", str(target), _message_id_of(target))
        message = build_message(email, self.mail_from)
        temporary = target.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(bytes(message))
        try:
            # link() refuses to replace an existing file: of two racing writers, one wins.
            os.link(temporary, target)
        except FileExistsError:
            return Delivery("duplicate", str(target), _message_id_of(target))
        finally:
            temporary.unlink(missing_ok=True)
        log.info("email %s written to the outbox as %s", email.key, target.name)
        return Delivery("sent", str(target), message["Message-ID"])

    #: the name the outbox had before the transports (tests and older callers)
    send = deliver


#: The earlier name of :class:`EmlTransport`.
FileOutbox = EmlTransport


# --- SendGrid ---------------------------------------------------------------------------------


class _QuietClientLogs(logging.Filter):
    """python_http_client logs each request's headers (the API key) and body (the addresses)
    at DEBUG: those records are dropped, whatever the logging configuration."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


def _quiet_client_logs() -> None:
    logger = logging.getLogger("python_http_client.client")
    if not any(isinstance(f, _QuietClientLogs) for f in logger.filters):
        logger.addFilter(_QuietClientLogs())


def _retry_after(headers: Any) -> float | None:
    """Seconds from a ``Retry-After`` header (a number of seconds or an HTTP date)."""
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    value = str(value).strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _problems(headers: Any, body: Any) -> list[str]:
    """What the API said was wrong: the contract mock's ``sl-violations`` header (a JSON list),
    else the ``errors`` of the body (SendGrid's own format)."""
    violations = headers.get("sl-violations") if headers is not None else None
    if violations:
        try:
            return [str(v.get("message", v)) for v in json.loads(violations)]
        except (ValueError, AttributeError, TypeError):
            return [str(violations)]
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    try:
        answer = json.loads(body or "null")
    except ValueError:
        return []
    errors = answer.get("errors") if isinstance(answer, dict) else None
    found = []
    for error in errors if isinstance(errors, list) else []:
        if isinstance(error, dict) and error.get("message"):
            where = f"{error['field']}: " if error.get("field") else ""
            found.append(f"{where}{error['message']}")
    return found


def _status_error(status: int, headers: Any, body: Any) -> DeliveryError:
    problems = "; ".join(_problems(headers, body))
    retryable = status in (408, 429) or status >= 500
    return DeliveryError(
        safe_reason(f"SendGrid answered {status}" + (f": {problems}" if problems else "")),
        status_code=status,
        retryable=retryable,
        retry_after=_retry_after(headers) if retryable else None,
    )


def _address(text: str) -> tuple[str, str | None]:
    name, address = parseaddr(text)
    return address or text.strip(), name or None


class SendGridTransport:
    """Posts each message to SendGrid's Mail Send API with the official client.

    Retries 429, 5xx and a connection that could not be made, with exponential backoff and
    full jitter (``backoff`` seconds doubled per attempt, at most ``max_wait``; a ``Retry-After``
    header is honoured, capped at ``max_wait``), up to ``max_attempts`` requests. Never retries
    when the body may have arrived (the connection broke or timed out while waiting for the
    answer): that raises an ``uncertain`` :class:`DeliveryError`. ``backoff`` may also be a
    function of the attempt number returning seconds; ``sleep`` waits (tests pass a recorder).
    ``request_headers`` are added to every request (e.g. a contract mock's ``Prefer``).
    """

    name = "sendgrid"

    def __init__(
        self,
        config: SendGridConfig,
        mail_from: str,
        max_attempts: int = 5,
        timeout: float = 30,
        backoff: float | Callable[[int], float] = 1.0,
        *,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        request_headers: Mapping[str, str] | None = None,
    ):
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.config = config
        self.mail_from = mail_from
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.backoff = backoff
        self.max_wait = max_wait
        self.sleep = sleep
        self.request_headers = dict(request_headers or {})
        self._clients = threading.local()
        _quiet_client_logs()

    def __repr__(self) -> str:
        return f"SendGridTransport(host={self.config.host or SENDGRID_API!r})"

    def request_body(self, email: OutboundEmail) -> dict[str, Any]:
        """The Mail Send request for ``email``, shaped by the official library's helpers: one
        personalization with every ``to`` address, text then HTML content, categories, custom
        arguments, ``send_at``, headers, ``reply_to`` and the attachments (base64 content, MIME
        type, file name, disposition ``attachment``, or ``inline`` with its content id for an image
        the HTML shows)."""
        from sendgrid.helpers.mail import Attachment as FileAttachment
        from sendgrid.helpers.mail import (
            Category,
            ContentId,
            CustomArg,
            Disposition,
            FileContent,
            FileName,
            FileType,
            From,
            Header,
            HtmlContent,
            Mail,
            Personalization,
            PlainTextContent,
            ReplyTo,
            SendAt,
            Subject,
            To,
        )

        check_email(email)
        mail = Mail(from_email=From(*_address(self.mail_from)), subject=Subject(email.subject))
        personalization = Personalization()
        for recipient in email.to:
            personalization.add_to(To(*_address(recipient)))
        mail.add_personalization(personalization)
        mail.add_content(PlainTextContent(email.text))
        if email.html:
            mail.add_content(HtmlContent(email.html))
        # the library inserts each category in front: added last to first, they keep the order
        for category in reversed(email.all_categories):
            mail.add_category(Category(category))
        for name, value in email.custom_args.items():
            mail.add_custom_arg(CustomArg(name, value))
        for name, value in email.headers.items():
            mail.add_header(Header(name, value))
        if email.send_at is not None:
            mail.send_at = SendAt(email.send_at)
        if email.reply_to:
            mail.reply_to = ReplyTo(*_address(email.reply_to))
        # inserted in front too: added last to first, they keep the message's order
        for attachment in reversed(email.attachments):
            inline = attachment.content_id is not None and bool(email.html)
            mail.add_attachment(
                FileAttachment(
                    FileContent(base64.b64encode(attachment.content).decode("ascii")),
                    FileName(attachment.filename),
                    FileType(attachment.content_type),
                    Disposition("inline" if inline else "attachment"),
                    ContentId(attachment.content_id) if inline else None,
                )
            )
        return mail.get()

    def deliver(self, email: OutboundEmail) -> Delivery:
        """Send ``email``; ``sent`` with SendGrid's message id, or :class:`DeliveryError`."""
        import tenacity

        try:
            body = self.request_body(email)
        except DeliveryError:
            raise
        except Exception as exc:  # the library refused a value (e.g. an API key in the text)
            raise _refuse(email, type(exc).__name__) from None

        def retry(error: BaseException) -> bool:
            return isinstance(error, DeliveryError) and error.retryable and not error.uncertain

        def before_sleep(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "email %s: SendGrid attempt %d of %d failed (%s); retrying in %.1f s",
                email.key,
                state.attempt_number,
                self.max_attempts,
                getattr(error, "reason", type(error).__name__),
                state.upcoming_sleep,
            )

        attempts = 0

        def attempt() -> Delivery:
            nonlocal attempts
            attempts += 1
            return self._post(email, body)

        try:
            delivery = tenacity.Retrying(
                stop=tenacity.stop_after_attempt(self.max_attempts),
                wait=self._wait,
                retry=tenacity.retry_if_exception(retry),
                sleep=self.sleep,
                before_sleep=before_sleep,
                reraise=True,
            )(attempt)
        except DeliveryError as error:
            error.attempts = attempts
            if attempts > 1:
                error.reason = safe_reason(f"{error.reason} (after {attempts} attempts)")
                error.args = (error.reason,)
            log.warning("email %s not delivered: %s", email.key, error.reason)
            raise
        log.info(
            "email %s accepted by SendGrid (message id %s, %d attempt(s))",
            email.key,
            delivery.provider_message_id or "not returned",
            attempts,
        )
        return delivery

    def _wait(self, state: Any) -> float:
        """Seconds before the next attempt: the server's ``Retry-After`` when given, else
        exponential backoff with full jitter; never more than ``max_wait``."""
        error = state.outcome.exception() if state.outcome else None
        asked = getattr(error, "retry_after", None)
        if asked is not None:
            return min(asked, self.max_wait)
        if callable(self.backoff):
            return min(float(self.backoff(state.attempt_number)), self.max_wait)
        ceiling = min(self.backoff * 2 ** (state.attempt_number - 1), self.max_wait)
        return random.uniform(0, ceiling)

    def _post(self, email: OutboundEmail, body: dict[str, Any]) -> Delivery:
        """One request. Errors become :class:`DeliveryError`: retryable when the request cannot
        have been accepted, uncertain when it may have been."""
        from python_http_client.exceptions import HTTPError as ApiError
        from sendgrid import SendGridAPIClient

        # a client per thread: python_http_client keeps request headers in shared state, so
        # threads must not share one; making one per request costs as much as the request
        client = getattr(self._clients, "client", None)
        if client is None:
            client = self._clients.client = SendGridAPIClient(
                api_key=self.config.api_key, host=self._host
            )
        try:
            response = client.client.mail.send.post(
                request_body=body,
                request_headers=dict(self.request_headers),
                timeout=self.timeout,
            )
        except ApiError as exc:
            raise _status_error(exc.status_code, exc.headers, exc.body) from None
        except urllib.error.URLError as exc:
            # urllib wraps what failed while connecting or writing the request: the body did not
            # arrive whole, so SendGrid cannot have accepted it.
            reason = exc.reason
            certificate = isinstance(reason, ssl.SSLCertVerificationError)
            raise DeliveryError(
                safe_reason(f"SendGrid not reached: {type(reason).__name__}: {reason}"),
                retryable=not certificate,
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            # the request was written and the answer never came (timeout, reset, closed): it may
            # have been accepted
            raise DeliveryError(
                safe_reason(
                    f"no answer from SendGrid after the request was sent ({type(exc).__name__}); "
                    "it may have been accepted: not sent again automatically"
                ),
                uncertain=True,
            ) from None
        if not 200 <= response.status_code < 300:  # urllib raises for these; kept for safety
            raise _status_error(response.status_code, response.headers, response.body)
        message_id = response.headers.get("X-Message-Id") if response.headers else None
        location = f"sendgrid:{message_id}" if message_id else "sendgrid"
        return Delivery("sent", location, message_id)

    @property
    def _host(self) -> str:
        return self.config.host or SENDGRID_API


def transport_for(settings: Settings) -> Transport:
    """How ``settings`` send email: SendGrid when the ``sendgrid_default`` connection is set,
    else the ``.eml`` outbox."""
    if settings.sendgrid is not None:
        return SendGridTransport(settings.sendgrid, settings.mail_from)
    return EmlTransport(settings.outbox_dir, settings.mail_from)


def outbox_for(settings: Settings) -> EmlTransport:
    """The ``.eml`` outbox of ``settings`` (whatever transport is configured)."""
    return EmlTransport(settings.outbox_dir, settings.mail_from)


# --- at most once per key ---------------------------------------------------------------------


def _claim_path(claims: Path, key: str) -> Path:
    return claims / (_file_name(key).removesuffix(".eml") + ".json")


def _write_claim(path: Path, record: dict[str, Any]) -> None:
    """Replace the claim's content atomically: the file itself never disappears."""
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(record, sort_keys=True), encoding="utf-8")
    os.replace(temporary, path)


def deliver_once(transport: Transport, email: OutboundEmail, claims: Path) -> Delivery:
    """Deliver ``email`` through ``transport`` at most once per key.

    The ``.eml`` outbox deduplicates by its own files. For any other transport the key is
    claimed first by creating ``claims/<key>.json`` exclusively; a key already claimed returns a
    ``duplicate`` delivery without sending. A definitive :class:`DeliveryError` releases the
    claim (a later retry may send); an uncertain one, or any other exception, keeps it: the
    message may have gone, and is never sent twice. Remove the claim file to send it again.
    """
    if transport.name == "outbox":
        return transport.deliver(email)
    claims.mkdir(parents=True, exist_ok=True)
    path = _claim_path(claims, email.key)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        try:
            record = json.loads(path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            record = {}
        log.info("email %s was claimed before (%s); not sending it again", email.key, path.name)
        return Delivery(
            "duplicate",
            record.get("location") or str(path),
            record.get("provider_message_id"),
        )
    claimed_at = dt.datetime.now(dt.UTC).isoformat()
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"key": email.key, "state": "sending", "claimed_at": claimed_at}, f)
    try:
        delivery = transport.deliver(email)
    except DeliveryError as error:
        if error.uncertain:
            _write_claim(
                path,
                {
                    "key": email.key,
                    "state": "uncertain",
                    "claimed_at": claimed_at,
                    "reason": error.reason,
                },
            )
        else:
            path.unlink(missing_ok=True)
        raise
    _write_claim(
        path,
        {
            "key": email.key,
            "state": "sent",
            "claimed_at": claimed_at,
            "transport": transport.name,
            "location": delivery.location,
            "provider_message_id": delivery.provider_message_id,
        },
    )
    return delivery


def send_email_once(settings: Settings, email: OutboundEmail) -> Delivery:
    """Send a ready ``email`` (attachments included) at most once per key through
    :func:`transport_for`; a second call with the same key returns a ``duplicate`` delivery
    and sends nothing (see :func:`deliver_once`)."""
    return deliver_once(transport_for(settings), email, settings.outbox_dir / ".sent")


def send_once(
    settings: Settings,
    key: str,
    template: str,
    to: Iterable[str],
    category: str,
    **context: Any,
) -> Delivery:
    """Render the email ``template`` (``subject.txt``, ``body.txt``, ``body.html`` under
    ``include/templates/<template>/``) with ``context`` and send it once under ``key`` through
    :func:`transport_for` (SendGrid, or the ``.eml`` outbox).

    A second call with the same key, from a retry or a re-run, sends nothing and returns a
    ``duplicate`` delivery (see :func:`deliver_once`). Every value the templates print is made
    one line (see :mod:`receivables.render`), so ledger text in ``context`` cannot forge lines
    or headers. Raises :class:`DeliveryError` when SendGrid refused or could not be reached.
    """
    subject, text, html = render_email(template, **context)
    email = OutboundEmail(
        key=key,
        to=tuple(to),
        subject=subject,
        text=text,
        html=html,
        category=category,
    )
    return send_email_once(settings, email)
