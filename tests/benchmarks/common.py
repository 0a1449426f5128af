"""What the parent and the workers share: sizes, paths, the as-of date, PostgreSQL helpers."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parents[1]
DATA_DIR = BENCH_DIR / "data"  # git-ignored: generated ledgers, reused across runs
WORK_DIR = BENCH_DIR / ".work"  # git-ignored: warehouses, inboxes, per-worker JSON
AS_OF = dt.date(2025, 6, 30)
SEED = 42
KINDS = ("collectors", "customers", "invoices", "payments")  # the loading order
ENGINES = ("sqlite", "postgresql")
PG_ADMIN_URL = os.environ.get(
    "RECEIVABLES_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@dataclass(frozen=True)
class Size:
    """A ledger size: its label, and the customers that give about that many invoices."""

    label: str
    customers: int

    @property
    def data_dir(self) -> Path:
        """Where the generated CSV files of this size live."""
        return DATA_DIR / self.label

    def file(self, kind: str) -> Path:
        """The generated CSV file of ``kind``."""
        return self.data_dir / f"{kind}.csv"


# The generator writes ~20 invoices and ~20 payments per customer.
SIZES = {s.label: s for s in (Size("100k", 5_000), Size("1m", 50_000), Size("5m", 250_000))}
#: The tiny ledger ingested first in every worker, so Great Expectations is imported (≈5 s)
#: before anything is timed.
WARMUP = Size("warmup", 20)


def libpq_url(sqlalchemy_url: str, database: str | None = None) -> str:
    """A libpq URI (no ``+driver``), optionally pointing at another database."""
    scheme, rest = sqlalchemy_url.split("://", 1)
    url = scheme.split("+", 1)[0] + "://" + rest
    if database is not None:
        url = url.rsplit("/", 1)[0] + "/" + database
    return url


def recreate_pg_database(name: str) -> str:
    """Drop and create database ``name``; return its SQLAlchemy URL (plain ``postgresql://``)."""
    import psycopg

    with psycopg.connect(libpq_url(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return libpq_url(PG_ADMIN_URL, name)


def drop_pg_database(name: str) -> None:
    """Drop database ``name`` if it exists."""
    import psycopg

    with psycopg.connect(libpq_url(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def warehouse_folder(size: Size, engine_name: str) -> Path:
    """The working folder of one (size, engine): SQLite file, inbox, ``RECEIVABLES_HOME``."""
    return WORK_DIR / f"{size.label}-{engine_name}"


def warehouse_db_name(size: Size) -> str:
    """The PostgreSQL database of one size's warehouse."""
    return f"receivables_bench_{size.label}"


def warehouse_url(size: Size, engine_name: str) -> str:
    """The SQLAlchemy URL of the warehouse the ``engine`` task leaves (with ``--keep``)."""
    if engine_name == "sqlite":
        return f"sqlite:///{warehouse_folder(size, engine_name) / 'warehouse.db'}"
    return libpq_url(PG_ADMIN_URL, warehouse_db_name(size))


def remove_warehouse(size: Size, engine_name: str) -> None:
    """Drop the warehouse of one (size, engine) and its folder (a 5M one is gigabytes)."""
    if engine_name == "postgresql":
        drop_pg_database(warehouse_db_name(size))
    shutil.rmtree(warehouse_folder(size, engine_name), ignore_errors=True)


def fresh_dir(path: Path) -> Path:
    """An empty directory at ``path`` (whatever was there before is removed)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def ensure_sample(size: Size, log=print) -> dict:
    """Generate the ledger of ``size`` unless a complete one is already there; return counts.

    A ``.complete`` stamp written last tells a finished ledger from one cut short.
    """
    import json

    stamp = size.data_dir / ".complete"
    if stamp.exists():
        return json.loads(stamp.read_text())
    from receivables.sample import generate_sample

    log(f"generating the {size.label} ledger ({size.customers:,} customers) in {size.data_dir}")
    fresh_dir(size.data_dir)
    summary = generate_sample(size.data_dir, size.customers, AS_OF, seed=SEED)
    counts = {
        "customers": summary.customers,
        "collectors": summary.collectors,
        "invoices": summary.invoices,
        "payments": summary.payments,
        "bytes": {k: size.file(k).stat().st_size for k in KINDS},
    }
    stamp.write_text(json.dumps(counts))
    return counts


#: What the figures depend on: the package, its SQL, GX suites, templates and migrations.
CODE_PATHS = ("include", "sql")
#: Set for the workers: the snapshot of the code they measure (see :func:`snapshot_code`).
CODE_ENV = "RECEIVABLES_BENCH_CODE"


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""


def fingerprint(root: Path) -> str:
    """A short hash of the code under ``root`` (its ``include/`` and ``sql/``)."""
    digest = hashlib.sha256()
    for top in CODE_PATHS:
        for path in sorted((root / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def code_version(root: Path = REPO) -> dict:
    """The code being measured: git commit, uncommitted changes, and a content fingerprint."""
    # porcelain lines are "XY path": the two status letters may be blanks, so never strip them
    dirty = [line[3:] for line in _git("status", "--porcelain", "--", *CODE_PATHS).splitlines()]
    return {
        "commit": _git("rev-parse", "--short", "HEAD").strip(),
        "dirty": dirty,
        "fingerprint": fingerprint(root),
    }


def snapshot_code(ref: str | None = None) -> tuple[Path, dict]:
    """Copy ``include/`` and ``sql/`` aside; the workers import the package from the copy.

    Others edit the package while a benchmark runs (a full run takes minutes): measuring a
    snapshot taken at the start keeps every figure of one run on the same code. The package
    finds its SQL, templates and suites relative to its own file (``receivables.paths``), so
    the copy is self-contained; ``PYTHONPATH`` puts it before the editable install. With
    ``ref`` (a commit, e.g. ``HEAD``) the copy is that commit's files, uncommitted edits left out.
    """
    import io
    import tarfile

    if ref is None:
        version = code_version()
    else:
        commit = _git("rev-parse", "--short", ref).strip()
        if not commit:
            raise ValueError(f"{ref!r} is not a commit of {REPO}")
        version = {"commit": commit, "dirty": [], "fingerprint": None}
    staging = WORK_DIR / "code" / ".incoming"
    shutil.rmtree(staging, ignore_errors=True)
    if ref is None:
        for top in CODE_PATHS:
            shutil.copytree(
                REPO / top, staging / top, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
    else:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", version["commit"], *CODE_PATHS],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(staging, filter="data")
    # The fingerprint of what was copied (a file edited during the copy is measured as copied).
    version["fingerprint"] = fingerprint(staging)
    root = WORK_DIR / "code" / version["fingerprint"]
    if root.exists():  # the same code, maybe in use by another run: keep it
        shutil.rmtree(staging)
    else:
        staging.rename(root)
    return root, version


def measured_code() -> dict:
    """In a worker: which code it imports (the snapshot when run by ``run``), after import."""
    import receivables

    root = Path(os.environ.get(CODE_ENV) or REPO)
    return {"fingerprint": fingerprint(root), "package": str(Path(receivables.__file__).parent)}


def child_env(code: Path | None = None) -> dict[str, str]:
    """The environment of a measuring child process: the package imported from the snapshot
    ``code`` (see :func:`snapshot_code`) when given, GX analytics off, and none of the caller's
    warehouse, inbox or config settings (each child sets up its own)."""
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "false"}
    if code is not None:
        path = os.pathsep.join(
            p for p in (str(code / "include"), os.environ.get("PYTHONPATH")) if p
        )
        env.update(PYTHONPATH=path, **{CODE_ENV: str(code)})
    for name in ("RECEIVABLES_DB_URL", "RECEIVABLES_INBOX", "RECEIVABLES_CONFIG"):
        env.pop(name, None)
    return env
