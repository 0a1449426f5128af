"""Instruments for a worker: RSS sampling per stage, SQL statement and function timings.

Nothing here changes what the package does. The stage labels come from the ingest's own
``Stopwatch`` (subclassed at run time), so memory and SQL time are attributed to the same
stages as ``FileOutcome.seconds``.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
import time
from collections.abc import Iterator

import psutil
import sqlalchemy as sa


class Probe:
    """The current stage label, and the peak RSS seen under each label.

    A daemon thread samples the process RSS every ``interval`` seconds; every label change
    samples too, so a stage shorter than the interval still gets its entry and exit RSS.
    """

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.label = "setup"
        self.peaks: dict[str, int] = {}
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> Probe:
        """Start sampling."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling (one last sample first)."""
        self.sample()
        self._stop.set()
        self._thread.join()

    def rss(self) -> int:
        """The current RSS in bytes."""
        return self._process.memory_info().rss

    def sample(self) -> None:
        """Record the current RSS under the current label."""
        rss, label = self.rss(), self.label
        if rss > self.peaks.get(label, 0):
            self.peaks[label] = rss

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    @contextlib.contextmanager
    def labelled(self, label: str) -> Iterator[None]:
        """Attribute what runs in the ``with`` block to ``label``."""
        previous = self.label
        self.sample()
        self.label = label
        self.sample()
        try:
            yield
        finally:
            self.sample()
            self.label = previous

    def peak(self, prefix: str) -> int:
        """The highest RSS under any label starting with ``prefix``."""
        return max((v for k, v in self.peaks.items() if k.startswith(prefix)), default=0)


def _shorten(statement: str, width: int = 150) -> str:
    text = re.sub(r"\s+", " ", statement).strip()
    return text if len(text) <= width else text[: width - 1] + "…"


class StatementTimer:
    """Seconds per SQL statement text and stage label, from SQLAlchemy cursor events.

    Times the DBAPI ``execute``/``executemany`` call. psycopg fetches a result whole inside it;
    sqlite3 computes up to the first row, which for the set-based checks (no rows on clean data),
    INSERT … SELECT and aggregates is all the work. Raw DBAPI cursors (the staging ``COPY``) are
    not seen here: :class:`FunctionTimer` times them. It listens on every engine of the process
    by default, so the queries Great Expectations runs on its own engine are seen too.
    """

    def __init__(self, probe: Probe, target=sa.engine.Engine):
        self.probe = probe
        self.totals: dict[tuple[str, str], list] = {}
        sa.event.listen(target, "before_cursor_execute", self._before)
        sa.event.listen(target, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:
        elapsed = time.perf_counter() - conn.info["bench_started"].pop()
        entry = self.totals.setdefault((self.probe.label, _shorten(statement)), [0, 0.0])
        entry[0] += 1
        entry[1] += elapsed

    def rows(self) -> list[dict]:
        """One dict per (label, statement), slowest first."""
        rows = [
            {"label": label, "statement": text, "calls": calls, "seconds": round(seconds, 4)}
            for (label, text), (calls, seconds) in self.totals.items()
        ]
        return sorted(rows, key=lambda r: -r["seconds"])


class FunctionTimer:
    """Seconds spent in chosen package functions, per stage label (wrapped at run time)."""

    def __init__(self, probe: Probe):
        self.probe = probe
        self.totals: dict[tuple[str, str], list] = {}

    def wrap(self, owner, name: str, qualname: str | None = None) -> bool:
        """Replace ``owner.name`` by a timed wrapper (``owner`` is a module or a class).

        Package internals change; a function that is not there (any more) is skipped: False.
        """
        original = getattr(owner, name, None)
        if original is None:
            return False
        qualname = qualname or f"{getattr(owner, '__name__', owner)}.{name}"

        @functools.wraps(original)
        def timed(*args, **kwargs):
            label, started = self.probe.label, time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                entry = self.totals.setdefault((label, qualname), [0, 0.0])
                entry[0] += 1
                entry[1] += time.perf_counter() - started

        setattr(owner, name, timed)
        return True

    def rows(self) -> list[dict]:
        """One dict per (label, function), slowest first."""
        rows = [
            {"label": label, "function": fn, "calls": calls, "seconds": round(seconds, 4)}
            for (label, fn), (calls, seconds) in self.totals.items()
        ]
        return sorted(rows, key=lambda r: -r["seconds"])
