"""The TEM metric of FEC-Bench (the `evaluate` module in `evaluate_metric/tem/`, shipped inside the package), loaded one
way by the benchmark, the judge, the quickstart and the Space; and the metric's own scoring UI, which the Space's TEM
tab shares."""

from __future__ import annotations

import functools
import importlib.util
from types import ModuleType

from .resources import tem_metric_dir


def load_tem_metric(location: str | None = None, **options):
    """The TEM `evaluate` module at `location` (a folder or Hub id; default: the one shipped with facetrack, which
    works offline); options go to its backends."""
    import evaluate

    return evaluate.load(location or str(tem_metric_dir()), **options)


@functools.cache
def tem_scoring_ui() -> ModuleType:
    """The metric folder's app.py (its Gradio scoring UI). By file path: the folder is not a regular package (it must
    stay a flat `evaluate` module folder), and evaluate's cached copy of it holds only the files tem.py imports."""
    spec = importlib.util.spec_from_file_location("facetrack_tem_app", tem_metric_dir() / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
