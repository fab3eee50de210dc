"""Square face crops cut from frames: the one cropper of the project (the model's face pixels, the Space's strip,
`facetrack track --crops`); the expression models cut their own inputs around the same square (`square_crop_box`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facetrack.video.frame_work import map_on_threads


def square_crop_box(box: Sequence[float], margin: float = 0.25) -> tuple[int, int, int]:
    """(x0, y0, side) of the square crop around `box`: side = max(w, h) x (1 + 2 x margin), same centre."""
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    side = max(box[2] - box[0], box[3] - box[1]) * (1.0 + 2.0 * margin)
    side = max(1, int(round(side)))
    return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side


def _square_crop(frame: np.ndarray, box: Sequence[float], size: int, margin: float) -> np.ndarray:
    """One (size, size, 3) crop: see `crop_faces`."""
    import cv2

    height, width = frame.shape[:2]
    x0, y0, side = square_crop_box(box, margin)
    # The part of the square that lies inside the frame.
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + side, width), min(y0 + side, height)
    if (fx0, fy0, fx1, fy1) == (x0, y0, x0 + side, y0 + side):
        square = frame[fy0:fy1, fx0:fx1]  # fully inside: no copy needed
    else:
        square = np.zeros((side, side, 3), dtype=np.uint8)  # zero padding where the square leaves the frame
        if fx1 > fx0 and fy1 > fy0:
            square[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0] = frame[fy0:fy1, fx0:fx1]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation)


def crop_faces(
    frames: np.ndarray, boxes: Sequence[Sequence[float] | None], size: int = 384, margin: float = 0.25,
    frame_indices: Sequence[int] | None = None,
) -> np.ndarray:
    """(T, size, size, 3) uint8 square face crops (zero-padded outside the frame); zeros where the box is None.

    A repeated frame with the same box gets the same crop, cut once: with `frame_indices` (each frame's source index,
    as `VideoClip.frame_indices`) any repeat of a (source frame, box) pair, else a frame equal to the one before.
    Crops are cut on a few threads (`map_on_threads`)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must have shape (T, H, W, 3), got {frames.shape}")
    if len(boxes) != len(frames):
        raise ValueError(f"got {len(boxes)} boxes for {len(frames)} frames")
    if frame_indices is not None and len(frame_indices) != len(frames):
        raise ValueError(f"got {len(frame_indices)} frame indices for {len(frames)} frames")
    if size < 1 or margin < 0:
        raise ValueError(f"size must be >= 1 and margin >= 0, got size={size}, margin={margin}")
    # The position whose crop each position gets (itself, or the first that shows the same frame and box).
    source_of: dict[int, int] = {}
    first_of: dict[tuple, int] = {}
    for t, box in enumerate(boxes):
        if box is None:
            continue
        if frame_indices is not None:
            source_of[t] = first_of.setdefault((int(frame_indices[t]), tuple(box)), t)
        elif t - 1 in source_of and tuple(box) == tuple(boxes[t - 1]) and np.array_equal(frames[t], frames[t - 1]):
            source_of[t] = source_of[t - 1]
        else:
            source_of[t] = t
    cut_at: dict[int, list[int]] = {}
    for t, first in source_of.items():
        cut_at.setdefault(first, []).append(t)
    crops = np.zeros((len(frames), size, size, 3), dtype=np.uint8)

    def cut(position: int) -> None:
        crops[cut_at[position]] = _square_crop(frames[position], boxes[position], size, margin)

    map_on_threads(cut, list(cut_at))
    return crops
