"""Unforgeable links to the self-service pages: opt out, dispute, feedback.

Every reminder carries two links that name it by a token: ``{reminder_id}.{tag}``, where the tag
is the first 32 characters of the base64url HMAC-SHA256 of the reminder id under the project's
link secret (192 bits: not guessable, and one reminder's token says nothing about another's).
The id in clear lets the page find its reminder without a lookup table; the tag proves the link
was made here. A token never expires: a customer may opt out from a reminder of last year.

The secret is ``RECEIVABLES_LINK_SECRET`` when set (the same value on every host that makes or
checks links), else the file ``$RECEIVABLES_HOME/link-secret``, created on first use with 32
random bytes (hex) and mode 0600. Replacing the secret breaks every link already sent.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from receivables.config import ConfigError, Settings

SECRET_ENV = "RECEIVABLES_LINK_SECRET"
SECRET_FILE = "link-secret"
#: Characters of the base64url tag kept in a token (6 bits each: 192 bits).
TAG_LENGTH = 32
#: A secret shorter than this is refused: a short one could be found by trying.
MIN_SECRET_LENGTH = 32
#: Longest token worth looking at (a 10-digit id, the dot, the tag); longer input is refused
#: before any work.
MAX_TOKEN_LENGTH = 64
#: What the HMAC signs besides the id, so a tag made here is useless for any other purpose.
_PURPOSE = b"receivables/reminder-link/v1/"
#: The largest id a reminder can have (``reminders.reminder_id`` is a 32-bit integer).
MAX_REMINDER_ID = 2**31 - 1
_TOKEN = re.compile(rf"([1-9][0-9]{{0,9}})\.([A-Za-z0-9_-]{{{TAG_LENGTH}}})")

#: Secrets read, by home folder: read once per process (every reminder's two links need it, and
#: the secret never changes while links are made: changing it breaks every link already sent).
_by_home: dict[object, bytes] = {}


def link_secret(settings: Settings) -> bytes:
    """The link secret: ``RECEIVABLES_LINK_SECRET``, else ``$RECEIVABLES_HOME/link-secret``
    (created once, race-safe, when missing). Raises :class:`ConfigError` for a weak secret."""
    from_env = os.environ.get(SECRET_ENV, "").strip()
    if from_env:
        if len(from_env) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"{SECRET_ENV} is too short: expected at least {MIN_SECRET_LENGTH} characters "
                "(e.g. the output of `openssl rand -hex 32`)"
            )
        return from_env.encode("utf-8")
    secret = _by_home.get(settings.home)
    if secret is None:
        path = Path(settings.home) / SECRET_FILE
        secret = _read_secret_file(path)
        if secret is None:
            secret = _create_secret(path)
        _by_home[settings.home] = secret
    return secret


def _read_secret_file(path: Path) -> bytes | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"cannot read the link secret {path}: {exc}") from None
    if len(text) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"the link secret {path} holds fewer than {MIN_SECRET_LENGTH} characters: "
            "restore it (links already sent depend on it), or remove it to make a new one"
        )
    return text.encode("ascii")


def _create_secret(path: Path) -> bytes:
    """Write a new secret beside its final name, then link it there: ``link`` fails when the
    name exists, so of two processes racing exactly one secret wins, and nobody ever reads a
    half-written file. The loser reads the winner's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process won: read its secret
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    secret = _read_secret_file(path)
    if secret is None:  # pragma: no cover - removed between link and read
        raise ConfigError(f"the link secret {path} vanished while it was being created")
    return secret


def _tag(secret: bytes, reminder_id: int) -> str:
    digest = hmac.new(secret, _PURPOSE + str(reminder_id).encode("ascii"), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode("ascii")[:TAG_LENGTH]


def _check_id(reminder_id: int) -> int:
    if isinstance(reminder_id, bool) or not isinstance(reminder_id, int):
        raise TypeError(f"a reminder id is an int, not {type(reminder_id).__name__}")
    if not 1 <= reminder_id <= MAX_REMINDER_ID:
        raise ValueError(f"a reminder id is between 1 and {MAX_REMINDER_ID}, not {reminder_id}")
    return reminder_id


def token_for(settings: Settings, reminder_id: int) -> str:
    """The token naming ``reminder_id`` in its self-service links: ``{id}.{tag}``."""
    reminder_id = _check_id(reminder_id)
    return f"{reminder_id}.{_tag(link_secret(settings), reminder_id)}"


def reminder_of(settings: Settings, token: str) -> int | None:
    """The reminder id a genuine ``token`` names; None for anything else (forged, tampered,
    malformed, or made under another secret). The tag is compared in constant time."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        return None
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    reminder_id = int(match.group(1))
    if reminder_id > MAX_REMINDER_ID:
        return None
    expected = _tag(link_secret(settings), reminder_id)
    if not hmac.compare_digest(match.group(2).encode("ascii"), expected.encode("ascii")):
        return None
    return reminder_id


def opt_out_url(settings: Settings, reminder_id: int) -> str:
    """The reminder's opt-out page: ``{public_url}/receivables/preferences/{token}``."""
    return f"{settings.public_url.rstrip('/')}/receivables/preferences/" + token_for(
        settings, reminder_id
    )


def feedback_url(settings: Settings, reminder_id: int) -> str:
    """The reminder's dispute and feedback page: ``{public_url}/receivables/feedback/{token}``."""
    return f"{settings.public_url.rstrip('/')}/receivables/feedback/" + token_for(
        settings, reminder_id
    )
