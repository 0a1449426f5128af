"""Ledger ingest: read inbox files, check every row, stage, validate with GX, load atomically."""
