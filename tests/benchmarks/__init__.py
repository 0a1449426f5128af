"""Benchmark of the ingest and aging stages (``make bench``; results in ``results.md``).

``run`` orchestrates; every measurement runs in a fresh child process (``worker``) so that its
peak memory is its own. See ``run.py`` for what is measured and how.
"""
