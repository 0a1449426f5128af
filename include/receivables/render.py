"""Jinja2 templates for emails and reports (``include/templates/``), auto-escaped for HTML."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2

from receivables.paths import TEMPLATES_DIR


@cache
def environment() -> jinja2.Environment:
    """The template environment: strict about undefined names, HTML escaped by default."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
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
