"""End-to-end tests of the production topology, started natively (no containers)."""
