"""The Space's settings (environment variables, see app.py), its limits and the checks every upload passes before
anything is decoded; the example clips."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

try:  # ZeroGPU: `spaces.GPU` borrows a GPU per call; elsewhere the package is absent and this is a no-op.
    import spaces

    gpu_task = spaces.GPU
except ImportError:

    def gpu_task(function):
        return function


SPACE_DIR = Path(__file__).resolve().parent
# Real example clips: beside a developer checkout (../shared/media), else the test clips of a checkout
# (tests/media, shipped with the repo); a Space built from space/ alone has neither and shows the synthetic one.
SHARED_MEDIA_DIR = Path(os.environ.get("FACETRACK_SHARED_DIR", SPACE_DIR.parent.parent / "shared")) / "media"
EXAMPLE_MEDIA_DIRS = (SHARED_MEDIA_DIR, SPACE_DIR.parent / "tests" / "media")
SHARED_EXAMPLES = {  # file name -> label
    "single_face.mp4": "one person",
    "WolfgangLanger_Pexels.mp4": "changing expressions",
    "face_noface.mov": "a face, then a cut to a title",
}
VIDEO_EXTENSIONS = {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ogv", ".3gp"}
CROP_SIZE = 128
DECODE_MAX_SIDE = 1920  # frames are decoded shrunk to this for tracking and the overlay (the detector uses 640)
OLD_OUTPUT_SECONDS = 3600  # per-request output folders older than this are removed


class VideoRejected(ValueError):
    """An upload the demo refuses (not a video, too long, too large); the message is shown to the user."""


def _env_number(name: str, default: float, kind: type = float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError as error:
        raise ValueError(f"environment variable {name}={raw!r} is not a {kind.__name__}") from error


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


@dataclass
class DemoConfig:
    model_path: str | None = None
    num_frames: int = 16
    max_duration_s: float = 120.0
    max_file_mb: float = 100.0
    concurrency_limit: int = 1
    max_new_tokens: int = 256
    max_pixels: int | None = None  # None: $FACETRACK_MAX_VIDEO_PIXELS, else 4096 x 2160 (video_io's default)
    detector: str = "retinaface"
    work_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="facetrack-space-")))

    @classmethod
    def from_env(cls, **overrides) -> "DemoConfig":
        values = {
            "model_path": os.environ.get("FACETRACK_MODEL") or None,
            "num_frames": _env_number("FACETRACK_SPACE_NUM_FRAMES", 32 if _cuda_available() else 16, int),
            "max_duration_s": _env_number("FACETRACK_SPACE_MAX_SECONDS", 120.0),
            "max_file_mb": _env_number("FACETRACK_SPACE_MAX_MB", 100.0),
            "concurrency_limit": _env_number("FACETRACK_SPACE_CONCURRENCY", 1, int),
            "max_new_tokens": _env_number("FACETRACK_SPACE_MAX_NEW_TOKENS", 256, int),
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        config = cls(**values)
        if config.num_frames < 1 or config.max_duration_s <= 0 or config.max_file_mb <= 0:
            raise ValueError(f"num_frames, max_duration_s and max_file_mb must be positive, got {config}")
        return config


# ------------------------------------------------------------------------------------------------ files and checks
def new_output_dir(config: DemoConfig) -> Path:
    """A fresh folder for one request's files, inside the app's own temp folder (old ones are pruned)."""
    now = time.time()
    for old in config.work_dir.glob("request-*"):
        if now - old.stat().st_mtime > OLD_OUTPUT_SECONDS:
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix="request-", dir=config.work_dir))


def user_message(error: BaseException, path: str | Path) -> str:
    """An error's message as the user may see it: the upload's server-side location becomes its file name."""
    path = Path(path)
    message = str(error)
    for server_side in (str(path.resolve()), str(path)):
        message = message.replace(server_side, path.name)
    return message


def check_upload(path: str | Path, config: DemoConfig):
    """Refuse non-videos, files over the size limit, frames over the pixel limit, truncated files and videos over
    the duration limit (header and packets only: nothing is decoded); return the file's `VideoInfo` (handed on to
    decoding, which then does not read the header again) and its duration. Messages name the file by its name
    only, never where the server keeps it."""
    from facetrack.video.probe import VideoDecodeError, VideoTooLargeError, probe_video

    path = Path(path)
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise VideoRejected(
            f"'{path.name}' is not a video file: expected one of {', '.join(sorted(VIDEO_EXTENSIONS))}."
        )
    try:
        size_mb = path.stat().st_size / 1e6
    except OSError:
        raise VideoRejected(f"'{path.name}' could not be found on the server; upload it again.") from None
    if size_mb > config.max_file_mb:
        raise VideoRejected(f"'{path.name}' is {size_mb:.1f} MB; this demo accepts videos up to {config.max_file_mb:g} MB.")
    try:
        info = probe_video(path, max_pixels=config.max_pixels, count_frames=True)  # no frame is decoded
    except VideoTooLargeError as error:
        raise VideoRejected(
            f"'{path.name}' has {error.width}x{error.height} frames; this demo accepts frames of up to "
            f"{error.limit / 1e6:.1f} megapixels (4K: 3840x2160 or 4096x2160). Downscale it and try again."
        ) from error
    except VideoDecodeError as error:
        raise VideoRejected(f"'{path.name}' is not a readable video file: {error.problem}") from error
    duration = info.duration
    if duration is None and info.frames_read and info.fps:  # a raw stream: no header duration, count its frames
        duration = info.frames_read / info.fps
    if duration is not None and duration > config.max_duration_s:
        raise VideoRejected(
            f"'{path.name}' is {duration:.1f} s long; this demo accepts videos up to {config.max_duration_s:g} s. "
            "Trim it and try again."
        )
    return info, duration


def example_videos(config: DemoConfig) -> tuple[list[str], list[str]]:
    """The bundled examples and their labels: the shared real clips where present, plus the synthesised astronaut."""
    media = next((folder for folder in EXAMPLE_MEDIA_DIRS if (folder / next(iter(SHARED_EXAMPLES))).is_file()), None)
    examples = [
        (str(media / name), label) for name, label in SHARED_EXAMPLES.items() if media and (media / name).is_file()
    ]
    from facetrack.data.sample_media import write_astronaut_clip

    astronaut = write_astronaut_clip(config.work_dir / "astronaut.mp4", motion="zoom_in")
    examples.append((str(astronaut), "astronaut (synthetic zoom)"))
    return [path for path, _ in examples], [label for _, label in examples]
