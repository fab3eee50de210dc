"""The errors of the FEC-Bench evaluation room (fec_bench.py, fec_generation.py, fec_judge.py, caption_metrics.py,
video_chat_models.py), in a module of their own so every part can raise them without importing the others."""

from __future__ import annotations


class BenchmarkError(ValueError):
    """Bad annotations, predictions, settings or judge answers for the FEC-Bench evaluation; the message names the
    problem (the CLI prints it as one line)."""


class EndpointError(OSError):
    """The chat endpoint could not be reached or answered an error: it stops the run (it is not one bad video, which
    generation skips and counts), hence an OSError rather than a BenchmarkError."""
