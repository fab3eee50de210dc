"""Check a video file before decoding it: what FFmpeg's demuxer (through PyAV) says about it, with limits applied.

`probe_video(video, max_pixels=None, count_frames=False)` returns a `VideoInfo` read from the container header (no
decoding), or raises a `VideoDecodeError` that names the file and the problem (`error.path`, `error.problem`).
`video` is a path, or the file's bytes / a binary file object (a dataset row's embedded video, an upload): read
from memory, with the same checks and errors (named by the file object's `name`, if it has one):

- not a regular file: missing, a directory, a named pipe (FIFO), a device; empty;
- not a video: no video stream, unknown codec, a still image (with `still_images=True`, which only the one analysis
  entry point passes, a still image is accepted and its `VideoInfo.still_image` is True: it is read with
  `decode.load_image`);
- `VideoTooLargeError`: the header's frame size is over the pixel limit. Decoding one 8192x8192 frame takes ~200 MB
  and a 2-second clip of them fits in 200 KB, so the size is checked before anything is decoded. The limit is
  `max_pixels`, else `$FACETRACK_MAX_VIDEO_PIXELS`, else `DEFAULT_MAX_PIXELS` = 4096 x 2160 (DCI 4K, which covers
  UHD 3840 x 2160 in either orientation); 0 turns it off.
- `max_pixels` itself must be a whole number >= 0 (0 = no limit): a bad value is a `ValueError` naming the argument,
  raised before the file is opened (never reported as a problem of the file).
- `VideoTruncatedError` (with `count_frames=True`, which reads every packet without decoding any): the data ends
  before the frames the header lists. `check_complete` applies the same rule to what a decoder read, so every
  reader of a file (track, describe, the Space, the dataset builder, the processor) refuses a truncated file the same
  way, with the same message.

Truncation rule: where the header counts the frames (mp4/mov sample tables), more than `max(1, 1 %)` of them
missing is truncation; where it only gives a duration (mkv/webm), a readable span shorter than the header's by more
than `max(0.5 s, 10 %)`. A raw elementary stream (.h264) has no header to compare with.

Decoding limits (`decode_limits`, applied by `video_io.load_video` once it knows how many frames a request decodes
and at what size, before decoding any): at most `max_frames` frames (default 4096, `$FACETRACK_MAX_VIDEO_FRAMES`)
and `max_bytes` bytes of decoded RGB frames, frames x height x width x 3 (default 4 GiB,
`$FACETRACK_MAX_VIDEO_BYTES`); 0 turns a limit off. Over either: `VideoRequestTooLargeError`, naming the limit and
how to change it.
"""

from __future__ import annotations

import io
import numbers
import os
import stat
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_PIXELS = 4096 * 2160
MAX_PIXELS_ENV = "FACETRACK_MAX_VIDEO_PIXELS"
DEFAULT_MAX_FRAMES = 4096  # decoded frames per request (512 frames is the most the benchmarks and models use)
MAX_FRAMES_ENV = "FACETRACK_MAX_VIDEO_FRAMES"
DEFAULT_MAX_BYTES = 4 * 1024**3  # decoded RGB bytes per request (512 frames of 720p: 1.4 GB)
MAX_BYTES_ENV = "FACETRACK_MAX_VIDEO_BYTES"

# Demuxers FFmpeg uses for single pictures (jpeg_pipe, png_pipe, ...); an animated GIF is a video if it has frames.
_STILL_IMAGE_FORMATS = ("image2", "_pipe")
_ANIMATABLE_IMAGE_FORMATS = ("gif", "apng")


class VideoDecodeError(ValueError):
    """A video could not be read. `str(error)` is "<path>: <problem>"; `problem` alone suits users who never saw the
    path (an upload's server-side location, say)."""

    def __init__(self, problem: str, path: str | os.PathLike | None = None):
        self.problem = problem
        self.path = None if path is None else str(path)
        super().__init__(problem if path is None else f"{path}: {problem}")

    def __reduce__(self):  # picklable across the dataset builder's worker processes
        return (type(self), (self.problem, self.path))


class VideoTooLargeError(VideoDecodeError):
    """The frames are larger than the pixel limit (checked on the header, before decoding)."""

    def __init__(self, problem: str, path=None, width: int = 0, height: int = 0, limit: int = 0):
        super().__init__(problem, path)
        self.width, self.height, self.limit = width, height, limit

    def __reduce__(self):
        return (type(self), (self.problem, self.path, self.width, self.height, self.limit))


class VideoTruncatedError(VideoDecodeError):
    """The file holds fewer frames than its header lists: it was cut short (an interrupted download or copy)."""


class VideoRequestTooLargeError(VideoDecodeError):
    """More frames, or more decoded bytes, asked for than the decoding limits allow (checked before decoding)."""


@dataclass
class VideoInfo:
    """What the container header says about the first video stream."""

    path: str
    format_name: str
    codec: str
    width: int  # coded frame size (a phone video's display rotation is applied when frames are decoded)
    height: int
    duration: float | None  # seconds (the video stream's, else the container's); None when the header has none
    num_frames: int | None  # from the header; None when it does not count them (mkv, webm, raw streams)
    fps: float | None
    frames_read: int | None = None  # packets read with count_frames=True
    still_image: bool = False  # a single picture (JPEG, PNG, ...): only probe_video(still_images=True) says so

    @property
    def pixels(self) -> int:
        return self.width * self.height


class VideoBytes:
    """A video file held in memory, given to the decoders instead of a path. `name` (the file object's, if any)
    names it in messages."""

    def __init__(self, data: bytes, name: str | None = None):
        self.data = data
        self.name = name

    def __str__(self) -> str:
        return self.name or f"<{len(self.data)} bytes of video>"


def video_source(video) -> Path | VideoBytes:
    """A path as a `Path`; bytes or a binary file object (read from where it stands) as `VideoBytes`."""
    if isinstance(video, VideoBytes):
        return video
    if isinstance(video, (bytes, bytearray, memoryview)):
        return VideoBytes(bytes(video))
    if hasattr(video, "read"):
        data = None if isinstance(video, io.TextIOBase) else video.read()
        if not isinstance(data, (bytes, bytearray)):
            raise ValueError(f"{getattr(video, 'name', 'the file object')} is open in text mode: open it with 'rb'")
        name = getattr(video, "name", None)
        return VideoBytes(bytes(data), name if isinstance(name, str) else None)
    return Path(video)


def open_source(source: Path | VideoBytes):
    """What `av.open` and decord's `VideoReader` read: the path as a string, or a fresh in-memory file per call."""
    return io.BytesIO(source.data) if isinstance(source, VideoBytes) else str(source)


def _limit(value, argument: str, env: str, default: int, unit: str) -> int | None:
    """A limit in force: `value`, else $`env`, else `default`; None = off (0). A bad value is a ValueError naming the
    argument or the environment variable."""
    if value is None:
        raw = os.environ.get(env, "").strip()
        try:
            value = int(raw) if raw else default
        except ValueError:
            raise ValueError(f"{env}={raw!r} is not a whole number of {unit} (0 = no limit)") from None
        if value < 0:
            raise ValueError(f"{env}={raw!r} must be >= 0 {unit} (0 = no limit)")
        return value or None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{argument} must be a whole number of {unit} (0 = no limit), got {value!r}")
    if value < 0:
        raise ValueError(f"{argument} must be >= 0 (0 = no limit), got {value}")
    return int(value) or None


def max_pixels_limit(max_pixels: int | None = None) -> int | None:
    """The pixel limit in force: `max_pixels`, else $FACETRACK_MAX_VIDEO_PIXELS, else DEFAULT_MAX_PIXELS; None = off."""
    return _limit(max_pixels, "max_pixels", MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS, "pixels")


def _size_text(num_bytes: float) -> str:
    return f"{num_bytes / 1024**3:.2f} GiB" if num_bytes >= 1024**3 else f"{num_bytes / 1024**2:.1f} MiB"


@dataclass(frozen=True)
class DecodeLimits:
    """How much one decoding request may produce (module docstring); None = no limit."""

    max_frames: int | None
    max_bytes: int | None

    def check(self, count: int, width: int | None = None, height: int | None = None, source=None) -> None:
        """Raise `VideoRequestTooLargeError` when `count` frames (of `width` x `height` RGB, when known) are over a
        limit."""
        if self.max_frames is not None and count > self.max_frames:
            raise VideoRequestTooLargeError(
                f"{count} frames asked for, over the limit of {self.max_frames} decoded frames; ask for fewer "
                f"(num_frames / --frames, or a lower fps), or raise the limit with {MAX_FRAMES_ENV} / max_frames "
                "(0 = no limit)",
                source,
            )
        if self.max_bytes is not None and width and height:
            needed = count * int(width) * int(height) * 3
            if needed > self.max_bytes:
                raise VideoRequestTooLargeError(
                    f"{count} frames of {width}x{height} take {_size_text(needed)} decoded, over the limit of "
                    f"{_size_text(self.max_bytes)} ({self.max_bytes} bytes); ask for fewer or smaller frames "
                    f"(num_frames / --frames, max_side), or raise the limit with {MAX_BYTES_ENV} / max_bytes "
                    "(0 = no limit)",
                    source,
                )


def decode_limits(max_frames: int | None = None, max_bytes: int | None = None) -> DecodeLimits:
    """The decoding limits in force: the arguments, else $FACETRACK_MAX_VIDEO_FRAMES / $FACETRACK_MAX_VIDEO_BYTES,
    else DEFAULT_MAX_FRAMES / DEFAULT_MAX_BYTES; 0 turns one off."""
    return DecodeLimits(_limit(max_frames, "max_frames", MAX_FRAMES_ENV, DEFAULT_MAX_FRAMES, "frames"),
                        _limit(max_bytes, "max_bytes", MAX_BYTES_ENV, DEFAULT_MAX_BYTES, "bytes"))


def check_regular_file(path: Path) -> None:
    """Refuse what is not a non-empty regular file, before any library opens it (a FIFO would block a reader)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise VideoDecodeError("file not found", path) from None
    except PermissionError:
        raise VideoDecodeError("permission denied", path) from None
    except OSError as error:
        raise VideoDecodeError(f"cannot be read ({error.strerror or error})", path) from error
    if stat.S_ISDIR(mode):
        raise VideoDecodeError("is a directory, not a video file", path)
    if stat.S_ISFIFO(mode):
        raise VideoDecodeError("is a named pipe (FIFO), not a regular file: save the video to a file first", path)
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
        raise VideoDecodeError("is a device or socket, not a regular file", path)
    if os.stat(path).st_size == 0:
        raise VideoDecodeError("file is empty (0 bytes)", path)


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} megapixels"


def check_pixels(info: VideoInfo, max_pixels: int | None) -> None:
    limit = max_pixels_limit(max_pixels)
    if limit is not None and info.pixels > limit:
        which = " (4096x2160, DCI 4K)" if limit == DEFAULT_MAX_PIXELS else ""
        raise VideoTooLargeError(
            f"its frames are {info.width}x{info.height} ({_megapixels(info.pixels)}), over the limit of "
            f"{_megapixels(limit)}{which}; downscale it, or raise the limit with {MAX_PIXELS_ENV} / max_pixels",
            info.path,
            width=info.width,
            height=info.height,
            limit=limit,
        )


def check_complete(info: VideoInfo, frames_read: int, span_read: float | None) -> None:
    """Raise `VideoTruncatedError` when the frames (or seconds) read fall short of the header (module docstring)."""
    if info.num_frames:
        if info.num_frames - frames_read > max(1, info.num_frames // 100):
            seconds = f" ({span_read:.2f} of {info.duration:.2f} s)" if span_read is not None and info.duration else ""
            raise VideoTruncatedError(
                f"the file is truncated: its header lists {info.num_frames} frames but the data ends after "
                f"{frames_read}{seconds}",
                info.path,
            )
    elif info.duration and span_read is not None:
        if info.duration - span_read > max(0.5, 0.1 * info.duration):
            raise VideoTruncatedError(
                f"the file is truncated: its header says {info.duration:.2f} s but the data ends after "
                f"{span_read:.2f} s ({frames_read} frames)",
                info.path,
            )


def _header_info(path: Path, container) -> VideoInfo:
    stream = container.streams.video[0]
    codec_context = stream.codec_context
    width, height = int(codec_context.width or 0), int(codec_context.height or 0)
    duration = None
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / 1_000_000  # av.time_base: microseconds
    # A raw stream's average rate is FFmpeg's 25 fps placeholder; its guessed rate reads the bitstream's timing.
    rate = (stream.average_rate or stream.guessed_rate) if duration else (stream.guessed_rate or stream.average_rate)
    return VideoInfo(
        path=str(path),
        format_name=container.format.name,
        codec=codec_context.name,
        width=width,
        height=height,
        duration=duration if duration and duration > 0 else None,
        num_frames=int(stream.frames) if stream.frames else None,
        fps=float(rate) if rate else None,
    )


def _count_packets(path: Path, container, info: VideoInfo) -> None:
    """Read every packet of the video stream (no decoding): set `frames_read`, refuse a truncated file."""
    import av

    stream = container.streams.video[0]
    count, first, last = 0, None, None
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            count += 1
            if packet.pts is not None:
                first = packet.pts if first is None else min(first, packet.pts)
                last = packet.pts if last is None else max(last, packet.pts)
    except av.error.FFmpegError as error:  # the data stops in the middle of a packet
        check_complete(info, count, None)
        raise VideoDecodeError(
            f"not a readable video: the data is corrupt after {count} frames ({error.strerror or error})", path
        ) from error
    info.frames_read = count
    span = None
    if first is not None and stream.time_base:
        frame_length = 1.0 / info.fps if info.fps else 0.0
        span = float((last - first) * stream.time_base) + frame_length
    check_complete(info, count, span)


def probe_video(
    video: str | os.PathLike | bytes | io.BufferedIOBase, max_pixels: int | None = None, count_frames: bool = False,
    still_images: bool = False,
) -> VideoInfo:
    """Check, without decoding, that `video` (a path, bytes or a binary file object) holds a readable video within
    the pixel limit; see the module docstring. Raises `VideoDecodeError` (or its `VideoTooLargeError` /
    `VideoTruncatedError`) naming the file and the problem. `still_images=True` accepts a still image too (within
    the same pixel limit), flagged `still_image`: for callers that read photos themselves (`analyze_video`)."""
    import av

    max_pixels_limit(max_pixels)  # a bad limit is the caller's error, not the file's: raised before the file is read
    path = video_source(video)
    if isinstance(path, VideoBytes):
        if not path.data:
            raise VideoDecodeError("file is empty (0 bytes)", path)
    else:
        check_regular_file(path)
    try:
        with av.open(open_source(path)) as container:
            format_name = container.format.name
            if not container.streams.video:
                raise VideoDecodeError(f"contains no video stream (format {format_name!r})", path)
            stream = container.streams.video[0]
            if stream.codec_context is None:
                raise VideoDecodeError("its video codec is unknown to FFmpeg, cannot decode it", path)
            is_still = any(marker in format_name for marker in _STILL_IMAGE_FORMATS)
            if format_name in _ANIMATABLE_IMAGE_FORMATS:
                packets = 0
                for packet in container.demux(stream):
                    packets += packet.size > 0
                    if packets > 1:
                        break
                is_still = packets <= 1
                container.seek(0)
            if is_still and still_images:
                info = _header_info(path, container)
                info.still_image, info.num_frames, info.duration, info.fps = True, 1, None, None
                check_pixels(info, max_pixels)
                return info
            if is_still:
                raise VideoDecodeError(
                    f"is a still image ({stream.codec_context.name}), not a video; pass images as a list of PIL "
                    "images or an array of frames (`facetrack track` and analyze_video take a photo as it is)",
                    path,
                )
            info = _header_info(path, container)
            check_pixels(info, max_pixels)
            if count_frames:
                _count_packets(path, container, info)
            return info
    except VideoDecodeError:
        raise
    except av.error.EOFError as error:
        raise VideoDecodeError("has no video frames (the file ends before the first frame)", path) from error
    except av.error.FileNotFoundError as error:
        raise VideoDecodeError("file not found", path) from error
    except av.error.PermissionError as error:
        raise VideoDecodeError("permission denied", path) from error
    except (av.error.InvalidDataError, av.error.FFmpegError) as error:
        raise VideoDecodeError(f"not a readable video ({error.strerror or error})", path) from error
    except (UnicodeDecodeError, ValueError) as error:
        raise VideoDecodeError(f"not a readable video ({error})", path) from error
