"""Benchmarks: each prints its figure and its ratio to a baseline measured in the same run."""
