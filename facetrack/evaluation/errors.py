"""The error of the FEC-Bench evaluation room (fec_bench.py, generation.py, judge.py, caption_metrics.py), in a module
of its own so every part can raise it without importing the others."""

from __future__ import annotations


class BenchmarkError(ValueError):
    """Bad annotations, predictions, settings or judge answers for the FEC-Bench evaluation; the message names the
    problem (the CLI prints it as one line)."""
