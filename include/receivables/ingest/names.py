"""Inbox file names as the file system gives them, made safe to store, show and pass on.

A name in the inbox can be anything the file system allows: blanks at either end, backslashes,
line breaks, bidirectional controls, 255 bytes of Chinese, or bytes that are not UTF-8 at all
(Python hands those over as lone surrogates, ``\\udcff``). The ingest never uses such a name
as it is anywhere but to open the file:

* :func:`shown_name` — the name for people (``ingested_files.file_name``, the rejects export,
  emails, logs, XCom outcomes): as dropped when it is plain text, else with the offending
  characters and bytes written as ``\\xNN`` / ``\\uNNNN``; never longer than 255 characters.
* :func:`safe_name` — the name of the copy kept under ``archive/`` and ``rejected/``: NFC,
  without control, bidirectional or path-like characters, without blanks or dots at its ends,
  cut to :data:`SAFE_NAME_BYTES` bytes (its extension kept), so that ``<sha12>_<name>`` and
  ``<name>.reason.txt`` stay under the 255-byte limit of a file name.
* :func:`run_key` — an ASCII id for Great Expectations (its run names become folder names).
* :func:`path_token` / :func:`path_from_token` — the path as a string that survives JSON (a
  mapped task gets its file through XCom), byte for byte.
"""

from __future__ import annotations

import base64
import os
import re
import unicodedata
from pathlib import Path

from receivables.text import (
    BIDI_CONTROLS,
    CONTROL_CHARACTERS,
    LINE_SEPARATORS,
    escape_undecodable,
    shown,
)

#: Bytes of a file name the ingest may use for its own copies, leaving room for the checksum
#: prefix (13 bytes), a "-N" to tell equal names apart and ".reason.txt" within 255 bytes.
SAFE_NAME_BYTES = 160
#: Characters of ``ingested_files.file_name``.
SHOWN_NAME_CHARACTERS = 255
#: Longest extension kept whole when a name is cut.
_MAX_SUFFIX_BYTES = 16
#: A path token that is not a plain absolute path: the path's bytes, base64url-encoded.
_BYTES_TOKEN = "fsbytes:"

_UNSAFE_IN_NAME = re.compile(
    f"[\t{CONTROL_CHARACTERS}{BIDI_CONTROLS}{LINE_SEPARATORS}"
    # path separators and what Windows shares refuse; U+FFFD stands for bytes that were not UTF-8
    '\\\\/:*?"<>|\ufffd\u200b-\u200f\ufeff]+'
)
_NOT_ASCII_ID = re.compile(r"[^A-Za-z0-9._-]+")


def shown_name(name: str, limit: int = SHOWN_NAME_CHARACTERS) -> str:
    """``name`` for people: as dropped when it is plain text, else escaped; at most ``limit``
    characters (a longer escaped form is cut and says how long the name was)."""
    return shown(name, limit)


def _encodable(name: str) -> bool:
    try:
        os.fsencode(name)
    except UnicodeEncodeError:
        return False
    return True


def _cut(text: str, budget: int) -> str:
    """``text`` cut to at most ``budget`` UTF-8 bytes, on a character boundary."""
    return text.encode("utf-8")[:budget].decode("utf-8", "ignore")


def safe_name(name: str, budget: int = SAFE_NAME_BYTES) -> str:
    """A file name derived from ``name`` that is safe anywhere: see the module's docstring.

    >>> safe_name(" invoices\\\\2024\\n.csv ")
    'invoices_2024_.csv'
    """
    text = escape_undecodable(name) if _encodable(name) else name
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = unicodedata.normalize("NFC", text)
    text = _UNSAFE_IN_NAME.sub("_", text).strip(" .")
    if text.startswith(("-", "~")):  # never read as a command-line option or a home folder
        text = "_" + text[1:]
    text = text or "file"
    if len(text.encode("utf-8")) <= budget:
        return text
    stem, dot, suffix = text.rpartition(".")
    if not dot or not stem or len(suffix.encode("utf-8")) >= _MAX_SUFFIX_BYTES:
        return _cut(text, budget).rstrip(" .") or "file"
    suffix = "." + suffix
    return _cut(stem, budget - len(suffix.encode("utf-8"))).rstrip(" .") + suffix


def run_key(sha256: str, name: str, length: int = 40) -> str:
    """An ASCII id of one file's content and name: ``<sha12>_<name in ASCII>``."""
    ascii_name = _NOT_ASCII_ID.sub("-", safe_name(name)).strip("-.")[:length].strip("-.")
    return f"{sha256[:12]}_{ascii_name or 'file'}"


def path_token(path: str | os.PathLike[str]) -> str:
    """``path`` (made absolute) as text that survives JSON and any UTF-8 transport.

    A path that is valid Unicode is returned as it is. A path holding bytes that are not UTF-8
    (lone surrogates in Python) cannot be written as UTF-8 JSON: it becomes ``fsbytes:``
    followed by its bytes in base64url. An absolute path never starts with that prefix.
    """
    text = os.fspath(Path(path).absolute())
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _BYTES_TOKEN + base64.urlsafe_b64encode(os.fsencode(text)).decode("ascii")
    return text


def path_from_token(token: str | os.PathLike[str]) -> Path:
    """The path a :func:`path_token` stands for (a plain path is taken as it is)."""
    text = os.fspath(token)
    if text.startswith(_BYTES_TOKEN):
        return Path(os.fsdecode(base64.urlsafe_b64decode(text[len(_BYTES_TOKEN) :])))
    return Path(text)
