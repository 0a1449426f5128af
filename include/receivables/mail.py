"""Outgoing email: one message, one idempotency key, at most one delivery.

Until a SendGrid connection is configured (docs/contract.md §2), messages are written as
``.eml`` files to ``$RECEIVABLES_HOME/outbox/``. The file name is the message's key, and a
message whose key is already there is not written again: a retried task never sends the same
message twice.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any

from receivables.render import render_email

if TYPE_CHECKING:
    from receivables.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboundEmail:
    """A message to send. ``key`` identifies it across retries and re-runs."""

    key: str
    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    category: str = "operations"


@dataclass(frozen=True)
class Delivery:
    """What happened to a message: ``sent`` or ``duplicate`` (sent before), and where."""

    status: str
    location: str


def _file_name(key: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("._")[:120]
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:10]
    return f"{safe}-{digest}.eml"


def build_message(email: OutboundEmail, mail_from: str) -> EmailMessage:
    """The RFC 5322 message (text, with an HTML alternative when given)."""
    message = EmailMessage()
    name, address = parseaddr(mail_from)
    message["From"] = formataddr((name, address))
    message["To"] = ", ".join(email.to)
    message["Subject"] = email.subject
    domain = address.split("@")[-1] or "receivables.invalid"
    digest = hashlib.sha256(email.key.encode("utf-8")).hexdigest()[:24]
    message["Message-ID"] = make_msgid(idstring=digest, domain=domain)
    message["X-Receivables-Key"] = email.key
    message["X-Receivables-Category"] = email.category
    message.set_content(email.text)
    if email.html:
        message.add_alternative(email.html, subtype="html")
    return message


class FileOutbox:
    """Writes each message once as ``<key>.eml`` in ``directory``."""

    def __init__(self, directory: Path, mail_from: str):
        self.directory = directory
        self.mail_from = mail_from

    def send(self, email: OutboundEmail) -> Delivery:
        """Write the message unless a message with the same key was written before."""
        if not email.to:
            raise ValueError(f"email {email.key!r} has no recipient")
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / _file_name(email.key)
        if target.exists():
            log.info("email %s was sent before (%s); not sending it again", email.key, target.name)
            return Delivery("duplicate", str(target))
        temporary = target.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(bytes(build_message(email, self.mail_from)))
        try:
            # link() refuses to replace an existing file: of two racing writers, one wins.
            os.link(temporary, target)
        except FileExistsError:
            return Delivery("duplicate", str(target))
        finally:
            temporary.unlink(missing_ok=True)
        log.info("email %s written to the outbox as %s", email.key, target.name)
        return Delivery("sent", str(target))


def outbox_for(settings: Settings) -> FileOutbox:
    """Where ``settings`` send email: the file outbox until SendGrid is configured."""
    return FileOutbox(settings.outbox_dir, settings.mail_from)


def send_once(
    settings: Settings,
    key: str,
    template: str,
    to: Iterable[str],
    category: str,
    **context: Any,
) -> Delivery:
    """Render the email ``template`` (``subject.txt``, ``body.txt``, ``body.html`` under
    ``include/templates/<template>/``) with ``context`` and send it once under ``key``.

    A second call with the same key, from a retry or a re-run, sends nothing and returns a
    ``duplicate`` delivery. Every value the templates print is made one line (see
    :mod:`receivables.render`), so ledger text in ``context`` cannot forge lines or headers.
    """
    subject, text, html = render_email(template, **context)
    return outbox_for(settings).send(
        OutboundEmail(
            key=key,
            to=tuple(to),
            subject=subject,
            text=text,
            html=html,
            category=category,
        )
    )
