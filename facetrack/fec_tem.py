"""The TEM metric of FEC-Bench, loaded one way by the benchmark, the judge, the quickstart and the Space, and its
scoring UI, which the Space's TEM tab shares (both in `facetrack.evaluation.tem`)."""

from __future__ import annotations

from types import ModuleType

from .evaluation.tem.metric import load_tem_metric  # noqa: F401


def tem_scoring_ui() -> ModuleType:
    from .evaluation.tem import scoring_ui

    return scoring_ui
