"""Per-frame work on a few threads at once: the per-frame steps (detection, shot-cut histograms, face crops) spend
their time in onnxruntime, OpenCV and NumPy, which release the GIL, so frames run side by side on the cores."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def map_in_threads(function: Callable[[Item], Result], items: Sequence[Item], threads: int) -> list[Result]:
    """[function(item) for item in items], in order, on up to `threads` threads (one: in this thread)."""
    if threads < 2 or len(items) < 2:
        return [function(item) for item in items]
    with ThreadPoolExecutor(min(threads, len(items)), thread_name_prefix="facetrack-frames") as pool:
        return list(pool.map(function, items))
