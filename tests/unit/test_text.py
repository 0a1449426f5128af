"""Untrusted text made safe to show (receivables.text)."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from receivables.text import excerpt, has_unsafe_characters, one_line, shown


def test_an_excerpt_escapes_and_says_how_long_the_text_was():
    assert excerpt("Müller\x00GmbH") == "Müller\\x00GmbH"
    assert excerpt("x" * 100, limit=5) == "xxxxx… (100 characters)"
    assert excerpt(b"caf\xe9") == "caf\\xe9"  # bytes that are not UTF-8


def test_shown_fits_its_width_and_never_cuts_an_escape():
    name = os.fsdecode(b"invoices\xff\xfe.csv")  # a file name that is not UTF-8
    assert shown(name, 255) == "invoices\\xff\\xfe.csv"
    assert shown("\u202e" * 50, 30) == "\\u202e\\u202e… (50 characters)"


@given(st.text(), st.integers(20, 300))
def test_shown_is_always_safe_and_bounded(text, limit):
    result = shown(text, limit)
    assert len(result) <= limit
    assert not has_unsafe_characters(result)


def test_one_line_cannot_forge_lines():
    assert one_line("Acme\r\nBcc: x@evil.example\u202e") == "Acme Bcc: x@evil.example"
