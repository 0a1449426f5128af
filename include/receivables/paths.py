"""Where the project's non-Python parts live: SQL files, templates, GX suites, DAGs, plugins.

The package is installed editable from the checkout (``make install``), so these folders are
found next to it in the repository, as docs/design.md lays them out.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
INCLUDE_DIR = PACKAGE_DIR.parent
REPO_ROOT = INCLUDE_DIR.parent

SQL_DIR = REPO_ROOT / "sql"
TEMPLATES_DIR = INCLUDE_DIR / "templates"
GX_SUITES_DIR = INCLUDE_DIR / "gx" / "expectations"
DAGS_DIR = REPO_ROOT / "dags"
PLUGINS_DIR = REPO_ROOT / "plugins"
MIGRATIONS_DIR = PACKAGE_DIR / "warehouse" / "migrations"
