"""Benchmarks: ``python -m bench.run`` (``make bench``) runs them and writes bench/results.json and
BENCHMARKS.md. Each benchmark module has ``run(quick: bool, run_dir: Path | None) -> list[dict]``."""
