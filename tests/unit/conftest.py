"""Fixtures of the unit tier."""

from __future__ import annotations

import pytest

from tests.helpers import INGEST_AS_OF


@pytest.fixture
def ingest(home, engine):
    """The per-file ingest of a fresh warehouse (both engines) for 2024-03-01."""
    from receivables.config import Settings
    from receivables.ingest.pipeline import FileIngest

    return FileIngest(engine, Settings.from_env(), INGEST_AS_OF, "test-run")
