"""Draw face tracks on frames and write a browser-playable overlay video (H.264 / yuv420p in .mp4 via PyAV).

`annotate_frames(frames, result)` returns annotated copies as a (T, H, W, 3) uint8 array (for the demo);
`write_overlay_video(frames, result, path)` encodes them; `render_overlay(video, path)` samples, tracks and writes
in one call. Every person gets a thin box in their own colour labelled
"person N"; the followed person gets a thick green box labelled "MAIN person N" (the main character) or "CHOSEN
person N" (a target), with " (interp.)" where the box is interpolated; frames where they are not visible say so in red,
and a frame right after a shot cut is marked "cut".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facetrack.faces.track_result import FaceTrackResult

MAIN_COLOR = (40, 220, 60)  # RGB
MISSING_COLOR = (235, 50, 50)
# Distinct, colour-blind-friendly-ish colours for the other tracks (RGB).
TRACK_COLORS = [(0, 114, 178), (230, 159, 0), (204, 121, 167), (86, 180, 233), (213, 94, 0), (240, 228, 66)]


def _label(image: np.ndarray, text: str, x: int, y: int, color: tuple[int, int, int], scale: float) -> None:
    import cv2

    thickness = max(1, int(round(scale * 2)))
    (text_width, text_height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    y = max(y, text_height + baseline + 2)
    x = max(0, min(x, image.shape[1] - text_width - 4))  # keep the whole label inside the picture
    cv2.rectangle(image, (x, y - text_height - baseline - 2), (x + text_width + 4, y), color, -1)
    cv2.putText(image, text, (x + 2, y - baseline), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness, cv2.LINE_AA)


def annotate_frames(frames: np.ndarray, result: FaceTrackResult) -> np.ndarray:
    """Copies of `frames` (T, H, W, 3 RGB uint8) with every person's box + id and the followed person marked."""
    import cv2

    frames = np.asarray(frames)
    if frames.ndim != 4 or len(frames) != len(result.frames):
        raise ValueError(f"got {len(frames)} frames for a result with {len(result.frames)} frames")
    annotated = np.ascontiguousarray(frames.copy())
    height, width = frames.shape[1:3]
    scale = max(0.5, min(width, height) / 480.0)  # text and lines grow with the picture
    thin, thick = max(1, int(round(2 * scale))), max(2, int(round(5 * scale)))
    followed = result.person_id
    role = "MAIN" if followed == result.main_person_id else "CHOSEN"
    cut_times = set(result.shot_cuts)
    for t, image in enumerate(annotated):
        for person_id, person in sorted(result.persons.items()):
            box = person.boxes[t] if t < len(person.boxes) else None
            if box is None or person_id == followed:
                continue
            color = TRACK_COLORS[(person_id - 1) % len(TRACK_COLORS)]
            x1, y1, x2, y2 = (int(round(v)) for v in box)
            cv2.rectangle(image, (x1, y1), (x2, y2), color, thin)
            _label(image, f"person {person_id}", x1, y1 - 2, color, 0.6 * scale)
        frame = result.frames[t]
        if frame.box is not None:
            x1, y1, x2, y2 = (int(round(v)) for v in frame.box)
            cv2.rectangle(image, (x1, y1), (x2, y2), MAIN_COLOR, thick)
            text = f"{role} person {frame.person_id}" + (" (interp.)" if frame.interpolated else "")
            _label(image, text, x1, y1 - thick, MAIN_COLOR, 0.7 * scale)
        elif followed is not None:
            missing = "main face missing" if role == "MAIN" else f"person {followed} not visible"
            _label(image, missing, 8, int(40 * scale), MISSING_COLOR, 0.8 * scale)
        else:
            _label(image, "no main character", 8, int(40 * scale), MISSING_COLOR, 0.8 * scale)
        stamp = f"t={frame.timestamp:.2f}s" + (" cut" if frame.timestamp in cut_times else "")
        _label(image, stamp, 8, height - 8, (255, 255, 255), 0.6 * scale)
    return annotated


def playback_fps(result: FaceTrackResult, default: float = 4.0) -> float:
    """Sampled frames play at their real rate (frames / time spanned), kept within 1..30 fps."""
    timestamps = result.timestamps
    if len(timestamps) > 1 and timestamps[-1] > timestamps[0]:
        return float(min(30.0, max(1.0, (len(timestamps) - 1) / (timestamps[-1] - timestamps[0]))))
    return default


def write_video(frames: np.ndarray, path: str | Path, fps: float = 4.0) -> Path:
    """Encode RGB frames as H.264 (libx264, yuv420p, +faststart) in .mp4, which browsers play."""
    import av
    from fractions import Fraction

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.asarray(frames)
    # yuv420p needs even width and height: pad one black row/column when odd.
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))
    rate = Fraction(fps).limit_denominator(1000)
    with av.open(str(path), mode="w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_overlay_video(
    frames: np.ndarray, result: FaceTrackResult, path: str | Path, fps: float | None = None
) -> Path:
    """Annotate `frames` with `result` and write them to `path` as a browser-playable H.264 .mp4."""
    return write_video(annotate_frames(frames, result), path, fps=fps or playback_fps(result))


def render_overlay(
    video, out_path: str | Path, num_frames: int | None = 32, fps: float | None = None, detector: str = "retinaface",
    target=None,
) -> tuple[FaceTrackResult, Path]:
    """Sample + track `video` (following `target` when given; `video_analysis.analyze_video` without expressions)
    and write its overlay .mp4 in one call; returns the result and path."""
    from facetrack.analysis.video_analysis import analyze_video

    analysis = analyze_video(video, num_frames=num_frames, fps=fps, tracker=detector, target=target,
                             expressions=False)
    return analysis.track, write_overlay_video(analysis.clip.frames, analysis.track, out_path)
