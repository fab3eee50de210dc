"""Sample clips that need no download: a real face photo shipped by a pip dependency (`skimage.data.astronaut()`,
public domain, NASA) turned into short videos with a slow camera move. Used by the quickstart, the Space's bundled
example and the tests."""

from __future__ import annotations

import os
from collections.abc import Sequence
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


def write_edited_clip(
    source: str | os.PathLike,
    path: str | os.PathLike,
    reverse: bool = False,
    mirror: bool = False,
    speed: float = 1.0,
) -> Path:
    """An edited copy of a video, every frame kept, as ffmpeg would make it: played backwards (`reverse`), flipped
    left to right (`hflip`) and/or played `speed` times as fast (`setpts=PTS/speed`; 0.5 is slowed down twice).
    Clips that no model trained on (the quickstart's held-out set, benchmarks/bench_expression_stream.py) and whose
    measured events are the source's, edited."""
    from facetrack.data.clips import encode_clip
    from facetrack.video.decode import load_video

    if not speed > 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    clip = load_video(source, num_frames=None)
    frames, times = clip.frames, np.asarray(clip.timestamps, dtype=np.float64)
    times = (times - times[0]) / speed
    if reverse:
        frames = frames[::-1]
    if mirror:
        frames = frames[:, :, ::-1]
    fps = (clip.source_fps or 25.0) * speed
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_clip(np.ascontiguousarray(frames), [float(t) for t in times], fps))
    return path


def write_face_photo_clips(
    photo: str | os.PathLike, out_dir: str | os.PathLike, prefix: str = "photo_person", num_frames: int = 36,
    fps: float = 12.0, size: int = 256, person_ids: Sequence[int] | None = None,
) -> list[Path]:
    """One short clip per face of a photo (e.g. a group photo; `person_ids`: only those of the detector's person
    ids, default all): a square window around the face (2.5x its box), seen through a slow zoom-in, as H.264 .mp4
    files `<prefix>_<n>.mp4` in `out_dir` (n = the person id). More people for a quickstart that has few: each
    face's expression is the photo's, still."""
    import cv2

    from facetrack.analysis.overlay import write_video
    from facetrack.analysis.video_analysis import analyze_video
    from facetrack.video.decode import load_image

    image = load_image(photo).frames[0]
    height, width = image.shape[:2]
    analysis = analyze_video(photo, expressions=False)
    paths = []
    for person_id, person in sorted(analysis.track.persons.items()):
        if person_ids is not None and person_id not in person_ids:
            continue
        box = next(box for box in person.boxes if box is not None)
        center_x, center_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = min(2.5 * max(box[2] - box[0], box[3] - box[1]), width, height)
        frames = []
        for step in np.linspace(0.0, 1.0, num_frames):
            window = side * (1.0 - 0.15 * step)
            x1 = int(np.clip(center_x - window / 2, 0, width - window))
            y1 = int(np.clip(center_y - window / 2, 0, height - window))
            crop = image[y1:y1 + int(window), x1:x1 + int(window)]
            frames.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
        paths.append(write_video(np.stack(frames), Path(out_dir) / f"{prefix}_{person_id}.mp4", fps))
    return paths
