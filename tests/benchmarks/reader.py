"""Benchmark of the CSV reader: ``python -m tests.benchmarks.reader [--before REF] [--repeat N]``.

On the 1M-invoice ledger of the main benchmark (``tests/benchmarks/data/1m/invoices.csv``,
generated once), and on variants derived from it, it times, best of ``--repeat`` runs:

* pyarrow's plain streaming read of the file alone (the reader's own pyarrow options, no
  scan, no renumbering, no normalisation): the yardstick;
* the pre-scan alone (:func:`receivables.ingest.csvscan.scan_csv`: encoding and quotes);
* the whole reader (``open_ledger_file`` and every batch, as the ingest consumes it), with the
  code before the change (``reader.py`` of ``--before``, default ``HEAD``, loaded from git
  without touching the working tree) and after it (the working tree).

The variants: ``utf8`` (the generated file: UTF-8 with Chinese descriptions, no quotes),
``gb18030`` (the same text in GB18030), ``utf8-quoted`` (every field quoted, so every line goes
through the quote check), ``utf8-stray`` (a stray quote opening the description of every
1,000th row: the reader then leaves those lines out and renumbers) and ``utf8-multiline``
(every description a quoted value on two lines: the uncommon path, where every record goes
through the multi-line check). It writes
``results-reader.md`` next to this file, with the rows and malformed rows each reader reported.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from tests.benchmarks.common import BENCH_DIR, DATA_DIR, REPO, SIZES, WORK_DIR, ensure_sample

RESULTS_MD = BENCH_DIR / "results-reader.md"
VARIANTS_DIR = DATA_DIR / "reader"
STRAY_EVERY = 1_000


def log(message: str) -> None:
    """A progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout


def reader_before(ref: str) -> ModuleType:
    """``receivables/ingest/reader.py`` as it is in ``ref``, imported under another name."""
    source = _git("show", f"{ref}:include/receivables/ingest/reader.py")
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    path = WORK_DIR / "reader_before.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("reader_before", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def variants(source: Path) -> dict[str, Path]:
    """The files measured, derived from ``source`` once."""
    VARIANTS_DIR.mkdir(parents=True, exist_ok=True)
    files = {"utf8": source}
    text = source.read_bytes()
    wanted = {
        "gb18030": lambda: text.decode("utf-8").encode("gb18030"),
        "utf8-quoted": lambda: _quote_all(text),
        "utf8-stray": lambda: _stray_quotes(text),
        "utf8-multiline": lambda: _multiline(text),
    }
    for name, make in wanted.items():
        path = VARIANTS_DIR / f"invoices-{name}.csv"
        if not path.exists() or path.stat().st_mtime < source.stat().st_mtime:
            log(f"writing {path}")
            partial = path.with_suffix(".part")
            partial.write_bytes(make())
            partial.rename(path)
        files[name] = path
    return files


def _quote_all(text: bytes) -> bytes:
    # the generated values hold no quotes, commas or line breaks: quoting is a substitution
    body = text.rstrip(b"\n").replace(b",", b'","').replace(b"\n", b'"\n"')
    return b'"' + body + b'"\n'


def _multiline(text: bytes) -> bytes:
    lines = text.rstrip(b"\n").split(b"\n")
    for i in range(1, len(lines)):
        fields = lines[i].split(b",")
        fields[6] = b'"' + fields[6] + b'\nsecond line"'  # every description on two lines
        lines[i] = b",".join(fields)
    return b"\n".join(lines) + b"\n"


def _stray_quotes(text: bytes) -> bytes:
    lines = text.split(b"\n")
    for i in range(STRAY_EVERY, len(lines) - 1, STRAY_EVERY):
        fields = lines[i].split(b",")
        fields[6] = b'"' + fields[6]  # the description
        lines[i] = b",".join(fields)
    return b"\n".join(lines)


def best_of(repeat: int, run: Callable[[], object]) -> tuple[float, object]:
    """The shortest of ``repeat`` runs, and the last run's result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def plain_pyarrow(path: Path, encoding: str) -> int:
    """Stream ``path`` through pyarrow with the reader's options; return the rows."""
    import pyarrow.csv as pcsv

    from receivables.ingest.reader import pyarrow_csv_options

    header = path.open("rb").readline().decode(encoding).lstrip("\ufeff").rstrip("\r\n")
    names = [n.strip('"') for n in header.split(",")]
    reader = pcsv.open_csv(path, **pyarrow_csv_options(names, encoding, lambda row: "skip"))
    return sum(batch.num_rows for batch in reader)


def whole_reader(module: ModuleType, path: Path) -> tuple[int, int]:
    """Open ``path`` with a reader module and consume every batch: (rows, malformed rows)."""
    ledger = module.open_ledger_file(path)
    rows = sum(batch.table.num_rows for batch in ledger.batches())
    return rows, len(ledger.malformed)


def peak_rss(which: str, path: Path, before_ref: str) -> float:
    """Peak resident memory (MB) of a fresh process that reads ``path`` with one reader."""
    command = [sys.executable, "-m", "tests.benchmarks.reader", "--before", before_ref]
    out = subprocess.run(
        [*command, "--child", which, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out.strip().splitlines()[-1])


def child(which: str, path: Path, before_ref: str) -> None:
    """In a child process: read ``path`` with one reader, print the peak RSS in MB."""
    module = reader_before(before_ref) if which == "before" else None
    if module is None:
        from receivables.ingest import reader as module
    whole_reader(module, path)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork and exec
    status = Path("/proc/self/status").read_text()
    print(int(status.split("VmHWM:")[1].split()[0]) / 1024)


def measure(files: dict[str, Path], before: ModuleType, repeat: int, before_ref: str) -> list[dict]:
    """Every measurement of every variant."""
    from receivables.ingest import reader as after
    from receivables.ingest.csvscan import scan_csv

    results = []
    for name, path in files.items():
        log(f"{name}: {path.stat().st_size / 1e6:.0f} MB")
        scan_seconds, scan = best_of(repeat, lambda path=path: scan_csv(path))
        plain_seconds, plain_rows = best_of(
            repeat, lambda path=path, scan=scan: plain_pyarrow(path, scan.encoding)
        )
        before_seconds, (before_rows, before_malformed) = best_of(
            repeat, lambda path=path: whole_reader(before, path)
        )
        after_seconds, (after_rows, after_malformed) = best_of(
            repeat, lambda path=path: whole_reader(after, path)
        )
        results.append(
            {
                "variant": name,
                "megabytes": path.stat().st_size / 1e6,
                "records": scan.records,
                "encoding": scan.encoding,
                "plain_pyarrow": plain_seconds,
                "plain_rows": plain_rows,
                "scan": scan_seconds,
                "set_aside": len(scan.bad_lines),
                "before": before_seconds,
                "before_rows": before_rows,
                "before_malformed": before_malformed,
                "after": after_seconds,
                "after_rows": after_rows,
                "after_malformed": after_malformed,
                "before_rss": peak_rss("before", path, before_ref),
                "after_rss": peak_rss("after", path, before_ref),
            }
        )
        log(f"{name}: {results[-1]}")
    return results


def render(results: list[dict], before_ref: str, repeat: int, seconds: float) -> str:
    """The Markdown report."""
    import numpy
    import pyarrow

    commit = _git("rev-parse", "--short", before_ref).strip()
    lines = [
        "# CSV reader benchmark",
        "",
        f"Run {time.strftime('%Y-%m-%dT%H:%M:%S%z')} with `python -m tests.benchmarks.reader "
        f"--before {before_ref} --repeat {repeat}` ({seconds:.0f} s in all). Each figure is the "
        f"best of {repeat} runs, in one process, files in the page cache. *Before* is "
        f"`reader.py` of `{before_ref}` (commit `{commit}`); *after* is the working tree.",
        "",
        f"Machine: {platform.processor() or platform.machine()} ({os.cpu_count()} logical "
        f"CPUs; load average {os.getloadavg()[0]:.1f} at the end: other work was running), "
        f"Python {platform.python_version()}, pyarrow {pyarrow.__version__}, "
        f"numpy {numpy.__version__}.",
        "",
        "| file | MB | records | pyarrow plain read | pre-scan (encoding + quotes) "
        "| reader before | reader after | after − before |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r['variant']} ({r['encoding']}) | {r['megabytes']:.0f} | {r['records']:,} "
            f"| {r['plain_pyarrow']:.2f} s | {r['scan']:.2f} s | {r['before']:.2f} s "
            f"| {r['after']:.2f} s | {r['after'] - r['before']:+.2f} s |"
        )
    lines += [
        "",
        "What each reader reported (rows in batches + malformed rows):",
        "",
        "| file | set aside by the scan | before: rows + malformed | after: rows + malformed "
        "| peak RSS before | peak RSS after |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r['variant']} | {r['set_aside']:,} | {r['before_rows']:,} + "
            f"{r['before_malformed']:,} | {r['after_rows']:,} + {r['after_malformed']:,} "
            f"| {r['before_rss']:.0f} MB | {r['after_rss']:.0f} MB |"
        )
    lines += [
        "",
        "*pyarrow plain read* streams the file with the reader's pyarrow options and nothing "
        "else; *reader* is `open_ledger_file` and every batch (normalised text columns and row "
        "numbers), as the ingest consumes it; the reader after the change includes the "
        "pre-scan. Peak RSS is that of a fresh process reading the file with one reader "
        "(batches consumed, not kept).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write ``results-reader.md``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="HEAD", help="git ref of the reader before")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("READER", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], Path(args.child[1]), args.before)
        return 0
    started = time.perf_counter()
    ensure_sample(SIZES["1m"], log=log)
    before = reader_before(args.before)
    files = variants(SIZES["1m"].file("invoices"))
    results = measure(files, before, args.repeat, args.before)
    RESULTS_MD.write_text(
        render(results, args.before, args.repeat, time.perf_counter() - started), "utf-8"
    )
    log(f"wrote {RESULTS_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
