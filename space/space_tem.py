"""The Space's TEM tab: the TEM metric's own scoring UI (`facetrack.evaluation.tem.scoring_ui`, one UI for the metric's demo
and this tab), scoring with the metric at $FACETRACK_TEM_METRIC (a folder or Hub id) or the one facetrack ships."""

from __future__ import annotations

import functools
import os

import gradio as gr

from facetrack.evaluation.tem.metric import load_tem_metric
from facetrack.evaluation.tem.scoring_ui import build_scoring_ui


@functools.cache
def tem_metric():
    """The TEM `evaluate` module, loaded once, on the first score (its sentence encoder loads on the first compute)."""
    return load_tem_metric(os.environ.get("FACETRACK_TEM_METRIC") or None)


def build_tem_tab(caption_sources: list[tuple[str, gr.components.Component, str]] = ()) -> None:
    """The TEM tab's contents. `caption_sources`: (button label, component holding a caption, button elem_id): each
    button copies that caption (the measured one, the model's) into the box to score."""
    build_scoring_ui(tem_metric, caption_sources)
