"""Benchmarks run by `make bench`: each runs both sides in one process run and prints ratios."""
