"""Nightly runs: one idempotent, incremental `coarchive run` over a data root."""
