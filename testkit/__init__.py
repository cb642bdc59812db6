"""The fakes and harnesses that the tests and the benchmarks share."""
