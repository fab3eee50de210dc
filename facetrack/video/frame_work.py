"""Per-frame work done once per distinct source frame, a few frames at a time on threads.

A clip sampled with repeats (32 samples of a 2 s clip) shows some source frames more than once: detection, shot-cut
histograms and face crops look at each distinct frame once (`once_per_source_frame`). OpenCV's per-frame work
releases the GIL, so a few threads run frames side by side (`map_on_threads`), bounded by `default_num_threads()`
(`FACETRACK_NUM_THREADS`), which also bounds the detector's inference threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np


def default_num_threads() -> int:
    """Threads for inference and per-frame work (`map_on_threads`): never more than the machine has (onnxruntime's
    default is one per core, which oversubscribes when several processes share a small machine);
    FACETRACK_NUM_THREADS overrides."""
    configured = os.environ.get("FACETRACK_NUM_THREADS")
    if configured:
        return max(1, int(configured))
    return max(1, min(4, os.cpu_count() or 1))


def map_on_threads(function: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """`[function(item) for item in items]` on `default_num_threads()` threads: for per-frame OpenCV work (an area
    resize runs on one core and releases the GIL). Fewer than 4 items run in this thread (a pool would cost more)."""
    if len(items) < 4:
        return [function(item) for item in items]
    with ThreadPoolExecutor(default_num_threads(), thread_name_prefix="frames") as pool:
        return list(pool.map(function, items))


def first_positions(frame_indices: Sequence[int]) -> dict[int, int]:
    """Each distinct source index of a sampled clip -> the first position that shows it (in order of appearance):
    the frames a per-frame step needs to look at once when sampling repeated frames."""
    first: dict[int, int] = {}
    for position, index in enumerate(frame_indices):
        first.setdefault(int(index), position)
    return first


def once_per_source_frame(
    frames: np.ndarray, frame_indices: Sequence[int] | None, compute: Callable[[list[np.ndarray]], Sequence[Any]]
) -> list[Any]:
    """`compute(distinct frames) -> one result per frame given`, run on each distinct source frame once and handed
    back for every frame that shows it (`frame_indices`: each frame's source index, as `VideoClip.frame_indices`;
    None: every frame distinct). 512 samples of a 240-frame clip repeat frames, and a repeat gets the same result."""
    sources = [int(i) for i in (range(len(frames)) if frame_indices is None else frame_indices)]
    if len(sources) != len(frames):
        raise ValueError(f"got {len(sources)} frame indices for {len(frames)} frames")
    first = first_positions(sources)
    results = dict(zip(first, compute([frames[position] for position in first.values()])))
    return [results[source] for source in sources]
