"""Decode and sample video frames: decord first, PyAV as the fallback; timestamps in seconds.

`load_video(video, num_frames=32, fps=None, frame_indices=None)` accepts a path (mp4/h264, mov/hevc, any container
FFmpeg reads, variable frame rate included), a list of PIL images / arrays, or a `(T, H, W, 3)` uint8 array, and
returns a `VideoClip`.

Sampling (exactly one rule applies, in this order):
- `frame_indices`: decode exactly these frames (indices into the source video, or into the given frame list).
- `fps`: one frame every `1 / fps` seconds of presentation time (starting at the first frame), each mapped to the
  frame showing at that moment, so variable-frame-rate files sample evenly in time. If `num_frames` is also given it
  caps the count (the fps-sampled indices are uniformly thinned down to `num_frames`).
- `num_frames`: `num_frames` indices spread uniformly from the first to the last frame
  (`round(linspace(0, n - 1, num_frames))`). A clip shorter than `num_frames` repeats frames, so the result always
  has `num_frames` frames (models expect a fixed count).
- `num_frames=None` and `fps=None`: every frame.

Frame indices count the frames a player shows, so decord and PyAV agree on them (and on the pixels and timestamps,
which the tests check): edit-list pre-roll before time 0, which decord lists but never shows, is not counted.
Display rotation (phone videos) is applied by both. Timestamps start at 0 for the first shown frame.

Files are first probed with PyAV (pure Python exceptions, no stderr noise) so that missing, empty, non-video,
still-image and audio-only files give a clear `VideoDecodeError` before decord (which logs to stderr and raises
bare RuntimeErrors on them) is touched. Any decord failure on a file that passed the probe falls back to PyAV.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Demuxers FFmpeg uses for single pictures (jpeg_pipe, png_pipe, ...); an animated GIF is a video if it has frames.
_STILL_IMAGE_FORMATS = ("image2", "_pipe")
_ANIMATABLE_IMAGE_FORMATS = ("gif", "apng")


@dataclass
class VideoClip:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    timestamps: list[float]  # seconds, one per frame
    frame_indices: list[int]  # index of each frame in the source video (or in the given frame list)
    source_fps: float | None
    duration: float | None  # seconds
    source: str | None  # path, or None for in-memory frames

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])


class VideoDecodeError(ValueError):
    """A video could not be read; the message names the file and the problem."""


def _decode_threads() -> int:
    # The decoders default to "all cores"; on small shared machines that oversubscribes. Two threads is the sweet
    # spot for 360p-1080p decoding here.
    return max(1, min(2, os.cpu_count() or 1))


def uniform_indices(total_frames: int, num_frames: int) -> list[int]:
    """`num_frames` indices spread uniformly from the first to the last frame (repeats when the clip is shorter)."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if total_frames < 1:
        raise ValueError("cannot sample from zero frames")
    return [int(i) for i in np.round(np.linspace(0, total_frames - 1, num_frames))]


def fps_indices(frame_times: Sequence[float], fps: float, max_frames: int | None = None) -> list[int]:
    """Indices of the frames shown at t0, t0 + 1/fps, ... (frame_times: sorted start time of every frame)."""
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    times = np.asarray(frame_times, dtype=np.float64)
    last_frame_length = float(times[-1] - times[-2]) if len(times) > 1 else 0.0
    end = times[-1] + last_frame_length
    targets = np.arange(times[0], end - 1e-9, 1.0 / fps) if end > times[0] else np.array([times[0]])
    # The frame showing at time t is the last one that started at or before t.
    indices = np.clip(np.searchsorted(times, targets + 1e-6, side="right") - 1, 0, len(times) - 1)
    indices = [int(i) for i in indices]
    if max_frames is not None and len(indices) > max_frames:
        indices = [indices[i] for i in uniform_indices(len(indices), max_frames)]
    return indices


def _choose_indices(
    frame_times: Sequence[float], num_frames: int | None, fps: float | None, frame_indices: Sequence[int] | None,
    source: str,
) -> list[int]:
    total = len(frame_times)
    if frame_indices is not None:
        chosen = [int(i) for i in frame_indices]
        if not chosen:
            raise ValueError("frame_indices is empty")
        bad = [i for i in chosen if not 0 <= i < total]
        if bad:
            raise ValueError(f"{source}: frame_indices {bad[:5]} out of range (the video has {total} frames)")
        return chosen
    if fps is not None:
        return fps_indices(frame_times, fps, max_frames=num_frames)
    if num_frames is not None:
        return uniform_indices(total, num_frames)
    return list(range(total))


# ----------------------------------------------------------------------------------------------------------- files
def probe_video(path: str | os.PathLike) -> float | None:
    """Check, without decoding, that PyAV sees a video stream with at least one frame in `path`; return its duration
    in seconds from the container header (None when the header has none). Raises `VideoDecodeError` naming the
    file and the problem."""
    import av

    path = Path(path)
    if not path.exists():
        raise VideoDecodeError(f"{path}: file not found")
    if path.is_dir():
        raise VideoDecodeError(f"{path}: is a directory, not a video file")
    if path.stat().st_size == 0:
        raise VideoDecodeError(f"{path}: file is empty (0 bytes)")
    try:
        with av.open(str(path)) as container:
            format_name = container.format.name
            if not container.streams.video:
                raise VideoDecodeError(f"{path}: contains no video stream (format {format_name!r})")
            stream = container.streams.video[0]
            if stream.codec_context is None:
                raise VideoDecodeError(f"{path}: its video codec is unknown to FFmpeg, cannot decode it")
            is_still = any(marker in format_name for marker in _STILL_IMAGE_FORMATS)
            if format_name in _ANIMATABLE_IMAGE_FORMATS:
                packets = 0
                for packet in container.demux(stream):
                    packets += packet.size > 0
                    if packets > 1:
                        break
                is_still = packets <= 1
            if is_still:
                raise VideoDecodeError(
                    f"{path}: is a still image ({stream.codec_context.name}), not a video; pass images as a list of "
                    "PIL images or an array of frames"
                )
            if container.duration:
                return container.duration / 1_000_000  # av.time_base: microseconds
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
            return None
    except VideoDecodeError:
        raise
    except av.error.EOFError as error:
        raise VideoDecodeError(f"{path}: has no video frames (the file ends before the first frame)") from error
    except av.error.FileNotFoundError as error:
        raise VideoDecodeError(f"{path}: file not found") from error
    except av.error.PermissionError as error:
        raise VideoDecodeError(f"{path}: permission denied") from error
    except (av.error.InvalidDataError, av.error.FFmpegError) as error:
        raise VideoDecodeError(f"{path}: not a readable video ({error.strerror or error})") from error
    except (UnicodeDecodeError, ValueError) as error:
        raise VideoDecodeError(f"{path}: not a readable video ({error})") from error


def _import_decord():
    """decord, or None where it is not installed (it has x86_64 wheels only; PyAV reads everything too).

    Imported inside try/except so transformers' remote-code import check does not demand it."""
    try:
        import decord
    except ImportError:
        return None
    return decord


def _load_with_decord(
    path: Path, num_frames: int | None, fps: float | None, frame_indices: Sequence[int] | None
) -> VideoClip:
    decord = _import_decord()
    if decord is None:
        raise ImportError("decord is not installed")
    decord.logging.set_level(decord.logging.QUIET)  # its bundled FFmpeg otherwise prints to stderr on bad files
    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=_decode_threads())
    total = len(reader)
    if total < 1:
        raise VideoDecodeError(f"{path}: the video has zero frames")
    starts_ends = reader.get_frame_timestamp(list(range(total)))  # (total, 2) seconds, presentation order
    # Files with an edit list can carry pre-roll packets before time 0, which the decoder drops. decord still counts
    # them: its timestamp table lists them first, and its last `hidden` frames merely repeat the final picture.
    # Frame k of decord is the k-th shown frame, whose start time is row hidden + k of the table. Dropping the
    # pre-roll keeps frame indices and timestamps identical to PyAV's.
    hidden = int(np.sum(starts_ends[:, 0] < -1e-6)) if starts_ends[-1, 0] >= 0 else 0
    if hidden >= total:
        raise VideoDecodeError(f"{path}: the video has zero frames")
    starts_ends = starts_ends[hidden:]
    frame_times = starts_ends[:, 0] - starts_ends[0, 0]
    indices = _choose_indices(frame_times, num_frames, fps, frame_indices, str(path))
    # decord decodes each distinct frame once; repeats are re-gathered.
    unique = sorted(set(indices))
    batch = reader.get_batch(unique).asnumpy()
    position = {index: i for i, index in enumerate(unique)}
    frames = batch[[position[i] for i in indices]]
    source_fps = float(reader.get_avg_fps()) or None
    duration = float(starts_ends[-1, 1] - starts_ends[0, 0])
    return VideoClip(
        frames=np.ascontiguousarray(frames, dtype=np.uint8),
        timestamps=[round(float(frame_times[i]), 6) for i in indices],
        frame_indices=list(indices),
        source_fps=source_fps,
        duration=duration if duration > 0 else None,
        source=str(path),
    )


def _to_rgb(frame) -> np.ndarray:
    # Phone videos store portrait as landscape + a display rotation; decord applies it, so do we.
    return np.rot90(frame.to_ndarray(format="rgb24"), k=round(frame.rotation / 90) % 4)


def _decode_by_seeking(container, stream, wanted_pts: dict[int, int], keyframes: list[int]) -> dict[int, np.ndarray]:
    """Decode the frames whose pts are in `wanted_pts` (pts -> position), jumping to the keyframe before a wanted
    frame whenever that skips frames (decoding on from where we are is cheaper otherwise). Frames are matched by
    pts; positions that never show up are simply absent from the result."""
    import bisect

    decoded: dict[int, np.ndarray] = {}
    frames = None
    decoder_at: int | None = None  # pts of the last decoded frame
    for target in sorted(wanted_pts):
        if wanted_pts[target] in decoded:
            continue
        before = bisect.bisect_right(keyframes, target) - 1
        keyframe = keyframes[before] if before >= 0 else None
        if frames is None or (keyframe is not None and decoder_at is not None and keyframe > decoder_at):
            container.seek(keyframe if keyframe is not None else target, stream=stream, backward=True)
            frames = container.decode(stream)
        for frame in frames:
            if frame.pts is None:
                return decoded  # no pts to match on: the caller falls back to counting frames
            decoder_at = frame.pts
            if frame.pts in wanted_pts:
                decoded[wanted_pts[frame.pts]] = _to_rgb(frame)
            if frame.pts >= target:
                break
    return decoded


def _decode_by_position(container, stream, wanted: set[int]) -> dict[int, np.ndarray]:
    """Decode from the start, counting frames, and keep the wanted positions."""
    container.seek(0, stream=stream)
    decoded: dict[int, np.ndarray] = {}
    for position, frame in enumerate(container.decode(stream)):
        if position in wanted:
            decoded[position] = _to_rgb(frame)
        if position >= max(wanted):
            break
    return decoded


def _load_with_pyav(
    path: Path, num_frames: int | None, fps: float | None, frame_indices: Sequence[int] | None
) -> VideoClip:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        time_base = float(stream.time_base) if stream.time_base else 0.0
        # Pass 1: demux only (cheap) to learn every frame's presentation time, in presentation order, and where the
        # keyframes are. Packets before the stream's start time are pre-roll that an edit list hides; the decoder
        # drops them.
        start_time = stream.start_time or 0
        pts, keyframes = [], []
        for packet in container.demux(stream):
            if packet.pts is None or packet.size == 0:
                continue
            if packet.is_keyframe:
                keyframes.append(packet.pts)
            if packet.pts >= start_time:
                pts.append(packet.pts)
        pts.sort()
        keyframes.sort()
        if not pts:
            raise VideoDecodeError(f"{path}: the video has zero frames")
        frame_times = [(p - pts[0]) * time_base for p in pts]
        indices = _choose_indices(frame_times, num_frames, fps, frame_indices, str(path))
        wanted = set(indices)
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = _decode_threads()
        # Pass 2: decode only what is needed: jump to the keyframe before a wanted frame when that skips frames.
        # Some files' decoded pts do not match their packets'; then count frames from the start instead.
        decoded = _decode_by_seeking(container, stream, {pts[i]: i for i in wanted}, keyframes)
        if len(decoded) < len(wanted):
            decoded = _decode_by_position(container, stream, wanted)
        average_rate = float(stream.average_rate) if stream.average_rate else None
    missing = sorted(wanted - decoded.keys())
    if missing:
        raise VideoDecodeError(
            f"{path}: could not decode frames {missing[:5]} of {len(pts)}; the file is probably truncated or corrupt"
        )
    last_frame_length = (1.0 / average_rate) if average_rate else 0.0
    duration = frame_times[-1] + last_frame_length
    return VideoClip(
        frames=np.ascontiguousarray(np.stack([decoded[i] for i in indices]), dtype=np.uint8),
        timestamps=[round(float(frame_times[i]), 6) for i in indices],
        frame_indices=list(indices),
        source_fps=average_rate,
        duration=duration if duration > 0 else None,
        source=str(path),
    )


def _load_file(
    path: Path, num_frames: int | None, fps: float | None, frame_indices: Sequence[int] | None
) -> VideoClip:
    import av

    probe_video(path)
    decord_problem = None
    if _import_decord() is not None:
        try:
            return _load_with_decord(path, num_frames, fps, frame_indices)
        except VideoDecodeError as error:
            decord_problem = str(error)
        except ValueError:
            raise  # bad sampling arguments: the same with any decoder
        except Exception as error:  # decord raises bare RuntimeError / DECORDError on files it cannot handle
            # Keep one readable line: drop decord's "[hh:mm:ss] /path/file.cc:123: " log prefixes.
            first_line = re.sub(r"\[\d\d:\d\d:\d\d\] \S+?:\d+: ", "", str(error).strip().splitlines()[0])
            decord_problem = f"{type(error).__name__}: {first_line[:160]}"
    try:
        return _load_with_pyav(path, num_frames, fps, frame_indices)
    except VideoDecodeError:
        raise
    except (av.error.FFmpegError, RuntimeError) as error:  # (PyAV's errors are also ValueErrors: catch them first)
        reason = getattr(error, "strerror", None) or str(error)
        detail = f"; decord: {decord_problem}" if decord_problem else ""
        raise VideoDecodeError(
            f"{path}: the video could not be decoded, the file is probably corrupt or truncated ({reason}){detail}"
        ) from error


# ------------------------------------------------------------------------------------------------------ in memory
def _frames_to_array(video) -> np.ndarray:
    if isinstance(video, np.ndarray):
        frames = video
        if frames.ndim == 3 and frames.shape[-1] == 3:
            frames = frames[None]  # one frame
    else:
        arrays = []
        for i, item in enumerate(video):
            if hasattr(item, "convert"):  # PIL image, any mode
                arrays.append(np.asarray(item.convert("RGB")))
            else:
                array = np.asarray(item)
                if array.ndim != 3 or array.shape[-1] != 3:
                    raise ValueError(f"frame {i} has shape {array.shape}; expected (H, W, 3) RGB")
                arrays.append(array)
        if not arrays:
            raise VideoDecodeError("the frame list is empty: a video needs at least one frame")
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"all frames must have the same size, got {sorted(shapes)}")
        frames = np.stack(arrays)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must have shape (T, H, W, 3), got {frames.shape}")
    if frames.shape[0] == 0:
        raise VideoDecodeError("the frame array is empty: a video needs at least one frame")
    if frames.dtype != np.uint8:
        if np.issubdtype(frames.dtype, np.floating) and frames.size and frames.max() <= 1.0:
            frames = frames * 255.0  # floats in [0, 1]
        frames = np.clip(np.round(frames), 0, 255).astype(np.uint8)
    return frames


def load_video(
    video,
    num_frames: int | None = 32,
    fps: float | None = None,
    frame_indices: Sequence[int] | None = None,
) -> VideoClip:
    """Decode and sample a video (path, list of PIL images/arrays, or (T, H, W, 3) array); see the module docstring.

    In-memory frames have no clock: their timestamps are their positions (frame i at i seconds) and `fps`
    sampling is refused.
    """
    if num_frames is not None and num_frames < 1:
        raise ValueError(f"num_frames must be >= 1 or None, got {num_frames}")
    if isinstance(video, (str, os.PathLike)):
        return _load_file(Path(video), num_frames, fps, frame_indices)
    if isinstance(video, VideoClip):
        video = video.frames
    if isinstance(video, (bytes, bytearray)):
        raise ValueError("load_video takes a path, a list of frames or an array; write bytes to a file first")
    if fps is not None:
        raise ValueError("fps sampling needs a video file (in-memory frames carry no frame rate); use num_frames")
    frames = _frames_to_array(video)
    indices = _choose_indices(list(range(len(frames))), num_frames, None, frame_indices, "frames")
    return VideoClip(
        frames=np.ascontiguousarray(frames[indices]),
        timestamps=[float(i) for i in indices],
        frame_indices=indices,
        source_fps=None,
        duration=None,
        source=None,
    )
