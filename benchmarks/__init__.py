"""Benchmarks and tuning scripts; each module runs as ``python benchmarks/<name>.py`` and prints
a table. A package so the tests can import their helpers by name (``from benchmarks import
bench_decoder``); it is not shipped in the wheel."""
