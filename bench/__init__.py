"""Benchmarks: a load generator, baseline apps and the foundation benchmark."""
