"""Sample clips that need no download: a real face photo shipped by a pip dependency (`skimage.data.astronaut()`,
public domain, NASA) turned into short videos with a slow camera move. Used by the quickstart, the Space's bundled
example and the tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

MOTIONS = ("zoom_in", "zoom_out", "pan_left", "pan_right")


def astronaut_frames(
    num_frames: int = 36, motion: str = "zoom_in", width: int = 320, height: int = 320
) -> np.ndarray:
    """`(num_frames, height, width, 3)` uint8 RGB: the astronaut photo seen through a slowly moving virtual camera.

    motion: "zoom_in" / "zoom_out" (the window shrinks / grows around the face) or "pan_left" / "pan_right"
    (the window slides sideways, keeping the face in view)."""
    import cv2
    from skimage import data

    if motion not in MOTIONS:
        raise ValueError(f"motion must be one of {MOTIONS}, got {motion!r}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    image = data.astronaut()  # 512 x 512, the face around (x=220, y=130)
    face_x, face_y = 220.0, 150.0
    aspect = width / height
    frames = []
    for step in np.linspace(0.0, 1.0, num_frames):
        if motion in ("zoom_in", "zoom_out"):
            progress = step if motion == "zoom_in" else 1.0 - step
            window_h = 420.0 - 200.0 * progress
            center_x = face_x
        else:
            window_h = 320.0
            shift = 50.0 * (step - 0.5)
            center_x = face_x + (shift if motion == "pan_right" else -shift)
        window_w = min(window_h * aspect, 512.0)
        x1 = float(np.clip(center_x - window_w / 2, 0, 512 - window_w))
        y1 = float(np.clip(face_y - window_h / 2, 0, 512 - window_h))
        crop = image[int(y1) : int(y1 + window_h), int(x1) : int(x1 + window_w)]
        frames.append(cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA))
    return np.stack(frames)


def write_astronaut_clip(
    path: str | os.PathLike,
    motion: str = "zoom_in",
    num_frames: int = 36,
    fps: float = 12.0,
    width: int = 320,
    height: int = 320,
) -> Path:
    """A short H.264 .mp4 of the astronaut photo with a slow camera move (see `astronaut_frames`)."""
    from facetrack.analysis.overlay import write_video

    return write_video(astronaut_frames(num_frames, motion, width, height), path, fps)
