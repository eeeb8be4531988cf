"""Benchmarks (`python -m bench`, see bench/README.md) and the tools that put load on the system."""
