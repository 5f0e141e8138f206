"""Benchmarks of sk-adam against its peers; run with ``python -m benchmarks``."""
