"""Decode and sample video frames: decord first, PyAV as the fallback; timestamps in seconds.

`load_video(video, num_frames=32, fps=None, frame_indices=None, max_side=None, max_pixels=None)` accepts a path
(mp4/h264, mov/hevc, any container FFmpeg reads, variable frame rate and raw elementary streams included), the file's
bytes or a binary file object (decoded from memory exactly as the file would be: same frames, same errors; a
dataset's embedded videos need no temporary file), a list of PIL images / arrays, or a `(T, H, W, 3)` uint8 array,
and returns a `VideoClip`. Still images are not videos: `load_video` refuses a picture file ("is a still image"),
and `load_image(photo)` reads one (a path, a PIL image or an (H, W, 3) array) as a one-frame clip; only the
analysis entry point (`analyze_video`) takes both.

Sampling (exactly one rule applies, in this order):
- `frame_indices`: decode exactly these frames (indices into the source video, or into the given frame list).
- `fps`: one frame every `1 / fps` seconds of presentation time (starting at the first frame), each mapped to the
  frame showing at that moment, so variable-frame-rate files sample evenly in time. Never more frames than the video
  has: a rate above the video's own (more sample times than frames) gives every frame once. If `num_frames` is also
  given it caps the count (the fps-sampled indices are uniformly thinned down to `num_frames`). `fps` must be a
  finite number > 0.
- `num_frames`: `num_frames` indices spread uniformly from the first to the last frame
  (`round(linspace(0, n - 1, num_frames))`). A clip shorter than `num_frames` repeats frames, so the result always
  has `num_frames` frames (models expect a fixed count).
- `num_frames=None` and `fps=None`: every frame.

Frame indices count the frames a player shows, so decord and PyAV agree on them (and on the pixels and timestamps,
which the tests check): edit-list pre-roll before time 0, which decord lists but never shows, is not counted.
Display rotation (phone videos) is applied by both. Timestamps start at 0 for the first shown frame. A raw
elementary stream (.h264, .hevc) has no timestamps: its frames are counted and timed at the stream's frame rate.

Size: files are probed first (`video_probe.probe_video`, the header only), and frames larger than the pixel limit
(`max_pixels`, default 4096 x 2160, `$FACETRACK_MAX_VIDEO_PIXELS`) are refused before anything is decoded.
`max_side` decodes frames shrunk so their longer side is at most that many pixels (aspect kept, never enlarged):
enough for face detection, which runs downscaled anyway, at a fraction of the memory; `VideoClip.source_width` /
`source_height` keep the file's own size, to map boxes back. A stream whose frame size changes midway (clips of two
sizes joined) is read with every frame scaled to the stream's size as its header gives it (`probe_video`'s; decord
scales to the same).

Memory: a request decodes at most `max_frames` frames (default 4096, `$FACETRACK_MAX_VIDEO_FRAMES`) and
`max_bytes` bytes of frames (frames x height x width x 3 after `max_side`; default 4 GiB,
`$FACETRACK_MAX_VIDEO_BYTES`); both are checked once the frames to decode are chosen (timestamps are read without
decoding) and before any is decoded, for files and in-memory frames alike: `VideoRequestTooLargeError` names the
limit and how to raise it.

Bad files: the probe turns missing, empty, non-regular (FIFO, directory), non-video, still-image, audio-only and
oversized files into a clear `VideoDecodeError` before decord (which logs to stderr and raises bare RuntimeErrors
on them) is touched. Any decord failure on a file that passed the probe falls back to PyAV. A file that holds fewer
frames than its header lists is truncated: `VideoTruncatedError`, from either decoder (rule in `video_probe`). Where
decord gives no usable timestamps (H.264 in Matroska at a low frame rate without B-frames: every one is FFmpeg's
"no timestamp"), PyAV reads the file. In-memory float frames with NaN or infinite values are refused (they would turn black).

(Over 400 lines on purpose: the two decoders must agree frame for frame, index for index and second for second,
so they stay side by side with the sampling rules they share; the header checks are `video_probe`'s.)
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetrack.video.frame_work import first_positions
from facetrack.video.probe import (
    DecodeLimits,
    VideoBytes,
    VideoDecodeError,
    VideoInfo,
    VideoRequestTooLargeError,
    VideoTooLargeError,
    VideoTruncatedError,
    check_complete,
    check_pixels,
    decode_limits,
    max_pixels_limit,
    open_source,
    probe_video,
    video_source,
)

logger = logging.getLogger(__name__)
FrameCallback = Callable[[int, np.ndarray], None]  # (source index, frame): see load_video's on_frame


@dataclass
class VideoClip:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    timestamps: list[float]  # seconds, one per frame
    frame_indices: list[int]  # index of each frame in the source video (or in the given frame list)
    source_fps: float | None
    duration: float | None  # seconds
    source: str | None  # path (a file object's name), or None for in-memory frames and bytes
    source_width: int | None = None  # the file's frame size; differs from the frames' with max_side
    source_height: int | None = None
    still_image: bool = False  # one photo (`load_image`), not frames of a video

    def __len__(self) -> int:
        return len(self.frames)

    def __repr__(self) -> str:
        # The frames are megabytes of pixels: a notebook shows what they are, not the numbers.
        what = "still image" if self.still_image else f"{len(self)} frames"
        size = f"{self.width}x{self.height}"
        if self.source_width and (self.source_width, self.source_height) != (self.width, self.height):
            size += f" (source {self.source_width}x{self.source_height})"
        timing = ""
        if not self.still_image and self.timestamps:
            timing = f", {self.timestamps[0]:.2f}-{self.timestamps[-1]:.2f} s"
            timing += f" of {self.duration:.2f} s" if self.duration else ""
            timing += f" at {self.source_fps:g} fps" if self.source_fps else ""
        return f"VideoClip({what}, {size}{timing}, source={self.source!r})"

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])


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


def check_fps(fps) -> float:
    """`fps` as a float, or a ValueError: it must be a finite number > 0."""
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not math.isfinite(fps) or not fps > 0:
        raise ValueError(f"fps must be a finite number of frames per second > 0, got {fps!r}")
    return float(fps)


def fps_indices(frame_times: Sequence[float], fps: float, max_frames: int | None = None) -> list[int]:
    """Indices of the frames shown at t0, t0 + 1/fps, ... (frame_times: sorted start time of every frame); every
    frame once when that would be more samples than frames."""
    fps = check_fps(fps)
    times = np.asarray(frame_times, dtype=np.float64)
    last_frame_length = float(times[-1] - times[-2]) if len(times) > 1 else 0.0
    end = times[-1] + last_frame_length
    span = end - 1e-9 - times[0]
    if span > 0 and span * fps > len(times):
        # More sample times than frames (a rate above the video's own): each frame once, never a frame per sample
        # time (fps=1e9 over 2.4 s would be 2.4e9 indices).
        indices = list(range(len(times)))
    else:
        targets = np.arange(times[0], end - 1e-9, 1.0 / fps) if span > 0 else np.array([times[0]])
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
def _import_decord():
    """decord, or None where it is not installed (it has x86_64 wheels only; PyAV reads everything too).

    Imported inside try/except so transformers' remote-code import check does not demand it."""
    try:
        import decord
    except ImportError:
        return None
    return decord


def decode_size(info: VideoInfo, max_side: int | None) -> tuple[int, int] | None:
    """(width, height) to decode at so the longer side is at most `max_side` (even sizes, aspect kept); None when
    the frames are small enough already (or max_side is None)."""
    if max_side is None or not info.width or not info.height or max(info.width, info.height) <= max_side:
        return None
    if max_side < 2:
        raise ValueError(f"max_side must be at least 2 pixels, got {max_side}")
    scale = max_side / max(info.width, info.height)
    return max(2, round(info.width * scale / 2) * 2), max(2, round(info.height * scale / 2) * 2)


def _usable_timestamps(starts_ends: np.ndarray) -> bool:
    """Whether decord's (start, end) table holds real times: finite, within a year of 0 (FFmpeg's "no timestamp"
    comes out as ~9.2e15 s) and, for more than one frame, not all at the same instant."""
    starts_ends = np.asarray(starts_ends, dtype=np.float64)
    if starts_ends.size == 0 or not np.all(np.isfinite(starts_ends)) or np.abs(starts_ends).max() > 86400 * 365:
        return False
    return len(starts_ends) < 2 or bool(np.ptp(starts_ends[:, 0]) > 0)


def _load_with_decord(
    path: Path, info: VideoInfo, num_frames: int | None, fps: float | None, frame_indices: Sequence[int] | None,
    size: tuple[int, int] | None, on_frame: FrameCallback | None = None, limits: DecodeLimits | None = None,
) -> VideoClip:
    limits = limits or decode_limits()
    decord = _import_decord()
    if decord is None:
        raise ImportError("decord is not installed")
    decord.logging.set_level(decord.logging.QUIET)  # its bundled FFmpeg otherwise prints to stderr on bad files
    width, height = size or (-1, -1)  # decord scales while decoding: full-size frames are never held
    reader = decord.VideoReader(open_source(path), ctx=decord.cpu(0), num_threads=_decode_threads(), width=width,
                                height=height)
    total = len(reader)
    if total < 1:
        raise VideoDecodeError("the video has zero frames", path)
    starts_ends = reader.get_frame_timestamp(list(range(total)))  # (total, 2) seconds, presentation order
    if not _usable_timestamps(starts_ends):
        # H.264 in Matroska at a low frame rate without B-frames (`ffmpeg -r 1 -bf 0 out.mkv`): decord lists every
        # frame at FFmpeg's "no timestamp" (2^63 time base units), which would read as a 0-second, truncated file.
        # PyAV reads the packets' own times.
        raise VideoDecodeError("decord read no usable timestamps", path)
    check_complete(info, total, float(starts_ends[-1, 1] - starts_ends[0, 0]))
    # Files with an edit list can carry pre-roll packets before time 0, which the decoder drops. decord still counts
    # them: its timestamp table lists them first, and its last `hidden` frames merely repeat the final picture.
    # Frame k of decord is the k-th shown frame, whose start time is row hidden + k of the table. Dropping the
    # pre-roll keeps frame indices and timestamps identical to PyAV's.
    hidden = int(np.sum(starts_ends[:, 0] < -1e-6)) if starts_ends[-1, 0] >= 0 else 0
    if hidden >= total:
        raise VideoDecodeError("the video has zero frames", path)
    starts_ends = starts_ends[hidden:]
    frame_times = starts_ends[:, 0] - starts_ends[0, 0]
    indices = _choose_indices(frame_times, num_frames, fps, frame_indices, str(path))
    limits.check(len(indices), info.width, info.height, path)  # decord decodes at the file's own size here
    frames = _decode_into_array(reader, indices, on_frame)
    source_fps = float(reader.get_avg_fps()) or None
    duration = float(starts_ends[-1, 1] - starts_ends[0, 0])
    return VideoClip(
        frames=frames,
        timestamps=[round(float(frame_times[i]), 6) for i in indices],
        frame_indices=list(indices),
        source_fps=source_fps,
        duration=duration if duration > 0 else None,
        source=str(path),
    )


def _decode_into_array(reader, indices: Sequence[int], on_frame: FrameCallback | None = None) -> np.ndarray:
    """The frames at `indices` as one (T, H, W, 3) array: each distinct frame decoded once, in file order, and
    written straight into its rows, then handed to `on_frame` before the next one is decoded. decord's `get_batch`
    of all frames at once would hold a second full-size copy of the whole batch (at 512 frames of 720p that copy
    cost more than the decoding); one frame at a time it makes the same decoder calls, so the same pixels."""
    rows: dict[int, list[int]] = {}
    for row, index in enumerate(indices):
        rows.setdefault(int(index), []).append(row)
    frames = None
    for index in sorted(rows):
        frame = reader.get_batch([index]).asnumpy()[0]
        if frames is None:
            frames = np.empty((len(indices), *frame.shape), dtype=np.uint8)
        frames[rows[index]] = frame
        if on_frame is not None:
            on_frame(index, frames[rows[index][0]])
    return frames


def _to_rgb(frame, size: tuple[int, int] | None = None) -> np.ndarray:
    """An RGB array of `frame`, upright, at `size` (width, height in coded orientation; None: as it is)."""
    # Phone videos store portrait as landscape + a display rotation; decord applies it, so do we.
    turns = round(frame.rotation / 90) % 4
    if size is not None and (frame.width, frame.height) != tuple(size):
        # Shrink (max_side), or bring a frame of a stream whose size changes midway to the stream's size, in
        # FFmpeg's scaler (coded orientation), then convert to RGB.
        frame = frame.reformat(width=size[0], height=size[1], interpolation="AREA")
    return np.rot90(frame.to_ndarray(format="rgb24"), k=turns)


def _decode_by_seeking(
    container, stream, wanted_pts: dict[int, int], keyframes: list[int], size: tuple[int, int] | None
) -> dict[int, np.ndarray]:
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
                decoded[wanted_pts[frame.pts]] = _to_rgb(frame, size)
            if frame.pts >= target:
                break
    return decoded


def _decode_by_position(path: Path, wanted: set[int], size: tuple[int, int] | None) -> dict[int, np.ndarray]:
    """Decode from the start, counting frames, and keep the wanted positions. The file is opened afresh: raw
    streams cannot seek back to their start."""
    import av

    decoded: dict[int, np.ndarray] = {}
    with av.open(open_source(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = _decode_threads()
        for position, frame in enumerate(container.decode(stream)):
            if position in wanted:
                decoded[position] = _to_rgb(frame, size)
            if position >= max(wanted):
                break
    return decoded


def _read_packet_times(path: Path, info: VideoInfo, container, stream) -> tuple[list[int | None], list[int]]:
    """Pass 1 of PyAV decoding, demuxing only: the pts of every shown frame (sorted; None for each frame of a raw
    stream without timestamps) and the keyframes' pts. Refuses a truncated file (rule in `video_probe`)."""
    import av

    # Packets before the stream's start time are pre-roll that an edit list hides; the decoder drops them.
    start_time = stream.start_time or 0
    pts, keyframes, packets = [], [], 0
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            packets += 1
            if packet.pts is None:
                pts.append(None)
                continue
            if packet.is_keyframe:
                keyframes.append(packet.pts)
            if packet.pts >= start_time:
                pts.append(packet.pts)
    except av.error.FFmpegError as error:  # the data stops in the middle of a packet
        check_complete(info, packets, None)
        raise VideoDecodeError(
            f"not a readable video: the data is corrupt after {packets} frames ({error.strerror or error})", path
        ) from error
    timed = [p for p in pts if p is not None]
    if timed and len(timed) < len(pts):
        pts = timed  # a few packets without pts (parameter sets, ...): the timed ones are the frames
    if not pts:
        raise VideoDecodeError("the video has zero frames", path)
    if pts[0] is not None:
        pts.sort()
        frame_length = 1.0 / info.fps if info.fps else 0.0
        check_complete(info, packets, float((pts[-1] - pts[0]) * stream.time_base) + frame_length)
    else:
        check_complete(info, packets, None)
    return pts, sorted(keyframes)


def _load_with_pyav(
    path: Path, info: VideoInfo, num_frames: int | None, fps: float | None, frame_indices: Sequence[int] | None,
    size: tuple[int, int] | None, limits: DecodeLimits | None = None,
) -> VideoClip:
    import av

    limits = limits or decode_limits()
    if size is None and info.width and info.height:
        size = (info.width, info.height)  # every frame at the header's size (a stream may change size midway)
    with av.open(open_source(path)) as container:
        stream = container.streams.video[0]
        time_base = float(stream.time_base) if stream.time_base else 0.0
        pts, keyframes = _read_packet_times(path, info, container, stream)
        rate = stream.average_rate or stream.guessed_rate
        if pts[0] is None:
            # A raw stream: frames are timed by their position at the bitstream's own frame rate (its timing info,
            # which FFmpeg's guessed rate reads; its average rate is a 25 fps placeholder).
            rate = stream.guessed_rate or stream.average_rate
        average_rate = float(rate) if rate else None
        if pts[0] is None:
            frame_times = [i / (average_rate or 25.0) for i in range(len(pts))]
        else:
            frame_times = [(p - pts[0]) * time_base for p in pts]
        indices = _choose_indices(frame_times, num_frames, fps, frame_indices, str(path))
        limits.check(len(indices), *(size or (None, None)), path)
        wanted = set(indices)
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = _decode_threads()
        # Pass 2: decode only what is needed: jump to the keyframe before a wanted frame when that skips frames.
        # Some files' decoded pts do not match their packets' (and raw streams have none); then count frames from
        # the start instead.
        decoded = {}
        if pts[0] is not None:
            decoded = _decode_by_seeking(container, stream, {pts[i]: i for i in wanted}, keyframes, size)
        if len(decoded) < len(wanted):
            decoded = _decode_by_position(path, wanted, size)
    missing = sorted(wanted - decoded.keys())
    if missing:
        raise VideoDecodeError(
            f"could not decode frames {missing[:5]} of {len(pts)}; the file is probably truncated or corrupt", path
        )
    sizes = sorted({decoded[i].shape[:2] for i in wanted})
    if len(sizes) > 1:  # only where the header gives no size to scale every frame to
        raise VideoDecodeError(f"its frame size changes midway ({', '.join(f'{w}x{h}' for h, w in sizes)}) and "
                               "its header gives no size to bring the frames to", path)
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
    path: Path | VideoBytes, num_frames: int | None, fps: float | None, frame_indices: Sequence[int] | None,
    max_side: int | None, max_pixels: int | None, info: VideoInfo | None = None, on_frame: FrameCallback | None = None,
    limits: DecodeLimits | None = None,
) -> VideoClip:
    import av

    if info is None:
        info = probe_video(path, max_pixels=max_pixels)  # refuses bad and oversized files before any decoding
    else:
        check_pixels(info, max_pixels)  # the caller probed it, perhaps with another limit
    if info.still_image:  # probed with still_images=True by a caller that reads photos: not a video for us
        raise VideoDecodeError("is a still image, not a video: read it with load_image", path)
    size = decode_size(info, max_side)
    clip = None
    # Shrunk frames come from PyAV, one full-size frame in memory at a time: decord can decode resized, but with a
    # display rotation its resized output is garbled, and elsewhere it was no faster (benchmarks/README.md).
    if size is None and _import_decord() is not None:
        try:
            clip = _load_with_decord(path, info, num_frames, fps, frame_indices, size, on_frame, limits)
        except (VideoTruncatedError, VideoTooLargeError, VideoRequestTooLargeError):
            raise  # PyAV would read the same file the same way
        except VideoDecodeError as error:
            logger.debug("decord: %s; trying PyAV", error)
        except ValueError:
            raise  # bad sampling arguments: the same with any decoder
        except Exception as error:  # decord raises bare RuntimeError / DECORDError on files it cannot handle
            # Kept out of the error message (users need the problem, not decord's C++ log line); logged instead.
            first_line = (str(error).strip().splitlines() or [""])[0]
            first_line = re.sub(r"\[\d\d:\d\d:\d\d\] \S+?:\d+: ", "", first_line)  # decord's log prefix
            logger.debug("decord could not read %s (%s: %s); trying PyAV", path, type(error).__name__, first_line)
    if clip is None:
        try:
            clip = _load_with_pyav(path, info, num_frames, fps, frame_indices, size, limits)
        except VideoDecodeError:
            raise
        except (av.error.FFmpegError, RuntimeError) as error:  # (PyAV's errors are also ValueErrors: catch first)
            reason = getattr(error, "strerror", None) or str(error)
            raise VideoDecodeError(
                f"the video could not be decoded, the file is probably corrupt or truncated ({reason})", path
            ) from error
    clip.source_width, clip.source_height = info.width, info.height
    if (info.width >= info.height) != (clip.width >= clip.height):
        # A display rotation turned the frames: the source size as displayed is the coded one turned too.
        clip.source_width, clip.source_height = info.height, info.width
    return clip


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
        if np.issubdtype(frames.dtype, np.floating) and not np.isfinite(frames).all():
            bad = int(np.count_nonzero(~np.isfinite(frames)))
            raise VideoDecodeError(f"the frames hold non-finite pixel values (NaN or infinity) in {bad} of "
                                   f"{frames.size} values: pixels must be finite numbers")
        if np.issubdtype(frames.dtype, np.floating) and frames.size and frames.max() <= 1.0:
            frames = frames * 255.0  # floats in [0, 1]
        frames = np.clip(np.round(frames), 0, 255).astype(np.uint8)
    return frames


def load_video(
    video,
    num_frames: int | None = 32,
    fps: float | None = None,
    frame_indices: Sequence[int] | None = None,
    max_side: int | None = None,
    max_pixels: int | None = None,
    video_info: VideoInfo | None = None,
    on_frame: FrameCallback | None = None,
    max_frames: int | None = None,
    max_bytes: int | None = None,
) -> VideoClip:
    """Decode and sample a video (path, bytes or binary file object, list of PIL images/arrays, or (T, H, W, 3)
    array); see the module docstring.

    max_side: decode files with their longer side shrunk to at most this (None: full size). max_pixels: refuse files
    whose frames have more pixels (None: $FACETRACK_MAX_VIDEO_PIXELS or 4096 x 2160; 0: no limit).
    video_info: the file's `probe_video` result when the caller has already probed it (e.g. to check an upload):
    the header is then not read again. Only with a file path.
    on_frame: `on_frame(source_index, frame)` is called once for each distinct frame of the clip, with its final
    pixels (a read-only view into the clip): as it is decoded where frames are decoded one by one (decord), so work
    on it (face detection) runs while decoding goes on; else once the clip is complete. A frame handed over by
    decord before a failure that PyAV then reads is not handed over again (the two decoders give the same pixels).
    In-memory frames have no clock: their timestamps are their positions (frame i at i seconds) and `fps`
    sampling is refused.
    max_frames / max_bytes: the most frames, and bytes of decoded frames (frames x height x width x 3), this call may
    produce, checked before anything is decoded (None: $FACETRACK_MAX_VIDEO_FRAMES / $FACETRACK_MAX_VIDEO_BYTES, else
    4096 frames / 4 GiB; 0: no limit); over either, `VideoRequestTooLargeError`.
    """
    if num_frames is not None and (isinstance(num_frames, bool) or not isinstance(num_frames, numbers.Integral)
                                   or num_frames < 1):
        raise ValueError(f"num_frames must be a whole number >= 1 or None, got {num_frames!r}")
    if fps is not None:
        fps = check_fps(fps)
    if max_side is not None and (isinstance(max_side, bool) or not isinstance(max_side, numbers.Real)
                                 or not math.isfinite(max_side) or max_side < 2):
        raise ValueError(f"max_side must be a number of pixels >= 2 or None, got {max_side!r}")
    max_pixels_limit(max_pixels)  # a bad limit is the caller's error, never reported as the file's
    limits = decode_limits(max_frames, max_bytes)
    source = str(video) if isinstance(video, (str, os.PathLike)) else None
    if frame_indices is not None:
        limits.check(len(frame_indices), source=source)
    elif fps is None and num_frames is not None:
        limits.check(num_frames, source=source)  # before any index list of that length is made
    if video_info is not None and not isinstance(video, (str, os.PathLike)):
        raise ValueError("video_info (a probe_video result) goes with a video file path only")
    handed_over: set[int] = set()

    def hand_over(index: int, frame: np.ndarray) -> None:
        if index not in handed_over:
            handed_over.add(index)
            view = frame.view()
            view.flags.writeable = False
            on_frame(index, view)

    clip = _load(video, num_frames, fps, frame_indices, max_side, max_pixels, video_info,
                 hand_over if on_frame is not None else None, limits)
    if on_frame is not None:
        for index, position in first_positions(clip.frame_indices).items():
            hand_over(index, clip.frames[position])
    return clip


def is_image(video) -> bool:
    """Whether `video` is one picture in memory: a PIL image or an (H, W, 3) array (files: `probe_video`'s
    `still_images=True`)."""
    is_pil_image = hasattr(video, "convert") and hasattr(video, "size")
    return is_pil_image or (isinstance(video, np.ndarray) and video.ndim == 3 and video.shape[-1] == 3)


def load_image(
    image, max_side: int | None = None, max_pixels: int | None = None, video_info: VideoInfo | None = None
) -> VideoClip:
    """One still image as a one-frame `VideoClip` (`still_image=True`, time 0, frame index 0): a path (any picture
    Pillow reads; the EXIF orientation is applied, as a photo viewer shows it), a PIL image or an (H, W, 3) array.

    max_side / max_pixels as for `load_video` (frames over the pixel limit are refused before decoding);
    video_info: the file's `probe_video(..., still_images=True)` result, when the caller has it. A picture is never
    repeated to make up a frame count: callers that need one (models) sample from the clip themselves."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    source = None
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        info = video_info or probe_video(path, max_pixels=max_pixels, still_images=True)
        if not info.still_image:
            raise VideoDecodeError("is a video, not a still image: read it with load_video", path)
        try:
            with Image.open(path) as opened:
                picture = ImageOps.exif_transpose(opened).convert("RGB")
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError) as error:
            raise VideoDecodeError(f"not a readable image ({error})", path) from error
        source = str(path)
    elif hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image, any mode
        picture = image.convert("RGB")
    else:
        array = np.asarray(image)
        if array.ndim != 3 or array.shape[-1] != 3:
            raise ValueError(f"an image must be an (H, W, 3) RGB array, got shape {array.shape}")
        picture = Image.fromarray(_frames_to_array(array[None])[0])
    width, height = picture.size
    check_pixels(VideoInfo(source, "image", "image", width, height, None, 1, None), max_pixels)
    decode_limits().check(1, width, height, source=source)
    if max_side is not None and max(width, height) > max_side:
        scale = max_side / max(width, height)
        new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        picture = picture.resize(new_size, Image.Resampling.BICUBIC, reducing_gap=2.0)
    frame = np.ascontiguousarray(np.asarray(picture, dtype=np.uint8))
    return VideoClip(frames=frame[None], timestamps=[0.0], frame_indices=[0], source_fps=None, duration=None,
                     source=source, source_width=width, source_height=height, still_image=True)


def _load(video, num_frames, fps, frame_indices, max_side, max_pixels, video_info, on_frame,
          limits: DecodeLimits) -> VideoClip:
    if isinstance(video, (str, os.PathLike)):
        return _load_file(Path(video), num_frames, fps, frame_indices, max_side, max_pixels, video_info,
                          on_frame, limits)
    if isinstance(video, (bytes, bytearray, memoryview)) or hasattr(video, "read"):  # a file in memory
        in_memory = video_source(video)
        clip = _load_file(in_memory, num_frames, fps, frame_indices, max_side, max_pixels, on_frame=on_frame,
                          limits=limits)
        clip.source = in_memory.name
        return clip
    if isinstance(video, VideoClip):
        video = video.frames
    if fps is not None:
        raise ValueError("fps sampling needs a video file (in-memory frames carry no frame rate); use num_frames")
    frames = _frames_to_array(video)
    indices = _choose_indices(list(range(len(frames))), num_frames, None, frame_indices, "frames")
    limits.check(len(indices), frames.shape[2], frames.shape[1])
    return VideoClip(
        frames=np.ascontiguousarray(frames[indices]),
        timestamps=[float(i) for i in indices],
        frame_indices=indices,
        source_fps=None,
        duration=None,
        source=None,
    )
