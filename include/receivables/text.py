"""Untrusted text made safe to show: in refusal reasons, logs, emails and exports.

Ledger files come from other systems and sometimes from hostile hands. Whatever part of them
this project repeats (a value in a reason, a file name in an email, a name in a reminder) goes
through one of these functions first, so a control character cannot forge a line, a
right-to-left override cannot reverse what a reader sees, and a megabyte of garbage never ends
up in an email.
"""

from __future__ import annotations

import re

#: C0 controls except tab, DEL and the C1 controls: never part of a well-formed value.
CONTROL_CHARACTERS = "\x00-\x08\x0a-\x1f\x7f-\x9f"
#: Bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): they
#: reorder what a reader sees without changing the text ("Trojan Source").
BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"
#: Other invisible line and paragraph separators.
LINE_SEPARATORS = "\u2028\u2029"

_PARTIAL_ESCAPE = re.compile(r"\\(x[0-9a-f]?|u[0-9a-f]{0,3})?$")
_UNSAFE = re.compile(f"[{CONTROL_CHARACTERS}{BIDI_CONTROLS}{LINE_SEPARATORS}]")
_LINE_BREAKING = re.compile(f"[\t{CONTROL_CHARACTERS}{BIDI_CONTROLS}{LINE_SEPARATORS}]+")

#: Characters shown by default in an excerpt of untrusted text.
EXCERPT_LENGTH = 80


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """Control, bidirectional and separator characters written as ``\\xNN`` / ``\\uNNNN``.

    >>> escape_controls("A\\x00B\\u202e")
    'A\\\\x00B\\\\u202e'
    """
    return _UNSAFE.sub(_escape, text)


def excerpt(value: str | bytes, limit: int = EXCERPT_LENGTH, encoding: str = "utf-8") -> str:
    """A short, escaped, single-line excerpt of untrusted text (or bytes, decoded leniently).

    Longer text is cut and says how long it was:

    >>> excerpt("x" * 100, limit=5)
    'xxxxx… (100 characters)'
    """
    if isinstance(value, bytes):
        value = value.decode(encoding, errors="backslashreplace")
    cut = value[:limit]
    shown = escape_controls(cut)
    if len(value) > limit:
        shown += f"… ({len(value):,} characters)"
    return shown


def escape_undecodable(text: str) -> str:
    """``text`` with its lone surrogates (Python's stand-ins for bytes that were not UTF-8, as
    in a file name) written as ``\\xNN``."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that no undecodable byte produced
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def shown(text: str, limit: int) -> str:
    """Untrusted ``text`` safe to store and show in at most ``limit`` characters: undecodable
    bytes, control and bidirectional characters escaped; longer text is cut (never inside an
    escape) and says how long it was. For columns and messages of a bounded width.

    >>> shown("ab\\x00" * 10, 24)
    'ab\\\\x00a… (30 characters)'
    """
    escaped = escape_controls(escape_undecodable(text))
    if len(escaped) <= limit:
        return escaped
    tail = f"… ({len(text):,} characters)"
    return _PARTIAL_ESCAPE.sub("", escaped[: max(0, limit - len(tail))]) + tail


def has_unsafe_characters(text: str) -> bool:
    """True when ``text`` holds a control (other than tab), bidirectional or separator
    character."""
    return _UNSAFE.search(text) is not None


def one_line(value: object) -> str:
    """``value`` as text on one line: line breaks, tabs, other control characters and
    bidirectional controls become single spaces (for plain-text emails and subjects)."""
    return _LINE_BREAKING.sub(" ", str(value)).strip()
