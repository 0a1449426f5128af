"""Jinja2 templates for emails and reports (``include/templates/``), auto-escaped for HTML.

Templates interpolate text that comes from ledger files (customer names, file names, reasons).
Every value a template prints passes through :func:`finalize`, so no template can forget it: the
value is made one line (:func:`receivables.text.one_line`), its line breaks, tabs, control and
bidirectional characters turned into single spaces. A name therefore cannot forge lines of a
plain-text message or subject ("\\nPlease pay to account …"), nor reverse what a reader sees; in
HTML (escaped as before) it cannot break a ``<pre>`` into lines either. A template that needs
several lines builds them itself, from one-line values.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup

from receivables.paths import TEMPLATES_DIR
from receivables.text import one_line


def finalize(value: Any) -> str:
    """Every value a template prints, made one line (markup stays markup, to be escaped once)."""
    if type(value) is str and value.isprintable() and value[:1] != " " and value[-1:] != " ":
        # already one line: no control, separator or bidirectional character is printable, and
        # the only printable white space is the space, which one_line would strip at the ends
        return value
    if hasattr(value, "__html__"):
        return Markup(one_line(value.__html__()))
    return one_line(value)


@cache
def environment() -> jinja2.Environment:
    """The template environment: strict about undefined names, HTML escaped by default, every
    printed value through :func:`finalize`."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=finalize,
        # templates ship with the code: no stat of every template file at every render
        auto_reload=False,
    )


def render(name: str, **context: Any) -> str:
    """Render ``include/templates/<name>``."""
    return environment().get_template(name).render(**context)


def render_email(folder: str, **context: Any) -> tuple[str, str, str]:
    """(subject, text, html) from ``<folder>/subject.txt``, ``body.txt`` and ``body.html``."""
    subject = " ".join(render(f"{folder}/subject.txt", **context).split())
    return (
        subject,
        render(f"{folder}/body.txt", **context),
        render(f"{folder}/body.html", **context),
    )
