"""Printable documents: PDFs from HTML by WeasyPrint, and the font that Chinese text needs.

Text in Chinese needs a font covering Chinese: without one a PDF (or a chart) prints empty boxes
where the text should be. :func:`cjk_fonts` asks fontconfig which installed families cover it;
callers refuse to produce a document with Chinese text when there is none, naming the Debian
package to install (:data:`CJK_FONT_PACKAGE`).
"""

from __future__ import annotations

import re
import shutil
import subprocess

#: The Debian package of the font that covers Chinese (WenQuanYi Micro Hei).
CJK_FONT_PACKAGE = "fonts-wqy-microhei"
#: Chinese, Japanese and Korean characters and their punctuation and full-width forms: text
#: holding one of them needs a font with CJK glyphs.
_CJK = re.compile(
    "[\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3190-\u31ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003134f]"
)


def _fc_list(*args: str) -> list[str]:
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return []
    try:
        done = subprocess.run(
            [fc_list, ":lang=zh", *args], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if done.returncode != 0:
        return []
    return sorted({line.strip() for line in done.stdout.splitlines() if line.strip()})


def cjk_fonts() -> list[str]:
    """The font families fontconfig knows that cover Chinese (``fc-list :lang=zh``); empty
    when there is none, or no fontconfig."""
    return _fc_list("family")


def cjk_font_files() -> list[str]:
    """The files of the fonts that cover Chinese (for libraries that load a font by its file,
    such as matplotlib); empty when there is none."""
    return [name.rstrip(":").strip() for name in _fc_list("file")]


def needs_cjk_font(text: str) -> bool:
    """Whether ``text`` holds a Chinese, Japanese or Korean character."""
    return _CJK.search(text) is not None


def pdf_from_html(html: str, *, images: bool = False) -> bytes:
    """The PDF of ``html`` by WeasyPrint. Nothing outside the document is fetched (no file,
    no URL); with ``images``, ``data:`` URLs (images the document carries) are read."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    fetcher = URLFetcher(allowed_protocols=("data",) if images else ())
    return HTML(string=html, base_url=None, url_fetcher=fetcher).write_pdf()
