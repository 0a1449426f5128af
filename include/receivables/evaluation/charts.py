"""The evaluation's charts as PNG images (matplotlib, no display), in English or Chinese.

Chinese labels need a font covering Chinese: the first font file fontconfig knows for it is
given to matplotlib (:func:`receivables.documents.cjk_font_files`); without one a Chinese chart
is refused (:class:`ChartError`) rather than drawn with empty boxes.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from decimal import Decimal
from functools import cache

from receivables.documents import CJK_FONT_PACKAGE, cjk_font_files, needs_cjk_font

#: Pixels per inch of the PNGs: sharp in an email and on a printed page.
DPI = 144
#: Width and height of a chart, in inches.
SIZE = (7.2, 3.4)
#: Colours of the series (colour-blind safe, Okabe-Ito), and of the aging buckets from current
#: to the oldest.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442")
BUCKET_COLOURS = ("#009E73", "#56B4E9", "#F0E442", "#E69F00", "#D55E00", "#CC79A7", "#7F3C8D")

# matplotlib's pyplot keeps global state: one chart at a time
_LOCK = threading.Lock()


class ChartError(RuntimeError):
    """A chart that cannot be drawn correctly (no font covering Chinese)."""


@cache
def _cjk_family() -> str | None:
    """The family name of the first font covering Chinese, registered with matplotlib."""
    from matplotlib import font_manager

    files = cjk_font_files()
    if not files:
        return None
    font_manager.fontManager.addfont(files[0])
    return font_manager.FontProperties(fname=files[0]).get_name()


def _font_family(locale: str, texts: Sequence[str] = ()) -> list[str]:
    """Fonts in order of preference; matplotlib falls back along the list glyph by glyph, so an
    English chart still draws a Chinese collector name."""
    cjk = _cjk_family()
    if cjk is None and (locale == "zh-CN" or any(needs_cjk_font(t) for t in texts)):
        raise ChartError(
            "no font covering Chinese is installed (fontconfig's 'fc-list :lang=zh' finds "
            f"none), so Chinese text in charts would show empty boxes; install the Debian "
            f"package {CJK_FONT_PACKAGE}"
        )
    if cjk is None:
        return ["DejaVu Sans"]
    return [cjk, "DejaVu Sans"] if locale == "zh-CN" else ["DejaVu Sans", cjk]


def _figure(locale: str, texts: Sequence[str] = ()):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    plt.rcParams["font.family"] = _font_family(locale, texts)
    plt.rcParams["axes.unicode_minus"] = False
    # labels come from data (collector names): "$" must not start TeX-like math
    plt.rcParams["text.parse_math"] = False
    figure, axes = plt.subplots(figsize=SIZE, dpi=DPI)
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    return plt, figure, axes


def _png(plt, figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    # no timestamp or software version in the file: the same figures give the same bytes
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def _grouped_ticks(axes) -> None:
    from matplotlib.ticker import FuncFormatter

    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))


def _legend_below(axes, entries: int) -> None:
    if entries:
        axes.legend(
            fontsize=7,
            ncols=min(entries, 4),
            loc="upper center",
            bbox_to_anchor=(0.5, -0.12),
            frameon=False,
        )


def _float(value: Decimal | None) -> float:
    return float("nan") if value is None else float(value)


def stacked_bars(
    title: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[Decimal]]],
    locale: str,
    *,
    unit: str = "",
) -> bytes:
    """Stacked bars: one bar per category (a quarter), one segment per series (a bucket)."""
    with _LOCK:
        plt, figure, axes = _figure(locale, [title, *categories, *(n for n, _ in series)])
        bottoms = [0.0] * len(categories)
        for index, (name, values) in enumerate(series):
            heights = [_float(v) for v in values]
            axes.bar(
                categories,
                heights,
                bottom=bottoms,
                label=name,
                color=BUCKET_COLOURS[index % len(BUCKET_COLOURS)],
                width=0.6,
            )
            bottoms = [b + (0.0 if h != h else h) for b, h in zip(bottoms, heights, strict=True)]
        axes.set_title(title, fontsize=11, loc="left")
        if unit:
            axes.set_ylabel(unit)
        _grouped_ticks(axes)
        _legend_below(axes, len(series))
        return _png(plt, figure)


def lines(
    title: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[Decimal | None]]],
    locale: str,
    *,
    percent: bool = True,
) -> bytes:
    """Lines over the categories (quarters); ratios shown as percentages; a missing value
    leaves a gap."""
    with _LOCK:
        plt, figure, axes = _figure(locale, [title, *categories, *(n for n, _ in series)])
        for index, (name, values) in enumerate(series):
            points = [_float(v) * (100 if percent else 1) for v in values]
            axes.plot(
                categories,
                points,
                marker="o",
                label=name,
                color=COLOURS[index % len(COLOURS)],
                linewidth=1.6,
            )
        axes.set_title(title, fontsize=11, loc="left")
        if percent:
            axes.set_ylabel("%")
            axes.set_ylim(bottom=0)
        _legend_below(axes, len(series))
        return _png(plt, figure)


def ranking(
    title: str, names: Sequence[str], values: Sequence[Decimal | None], locale: str
) -> bytes:
    """Horizontal bars, best first (ratios as percentages)."""
    with _LOCK:
        plt, figure, axes = _figure(locale, [title, *names])
        shown = list(zip(names, values, strict=True))[:15]
        labels = [name for name, _ in reversed(shown)]
        points = [_float(value) * 100 for _, value in reversed(shown)]
        axes.barh(labels or [""], points or [0.0], color=COLOURS[0], height=0.6)
        axes.grid(axis="x", color="#dddddd", linewidth=0.6)
        axes.grid(axis="y", visible=False)
        axes.set_xlabel("%")
        axes.set_title(title, fontsize=11, loc="left")
        for y, value in enumerate(points):
            if value == value:
                axes.text(value, y, f" {value:.1f}", va="center", fontsize=7)
        return _png(plt, figure)
