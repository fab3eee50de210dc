"""Test videos built on the fly: an H.264 writer with exact timestamps, a phone video with a display rotation, and
one file of every kind of broken input (shared by the decoder, byte-input and CLI tests)."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_video(path: Path, frames: np.ndarray, times: list[float] | None = None, fps: int = 10) -> Path:
    """H.264 mp4; `times` (seconds) sets each frame's presentation time, for variable frame rate."""
    time_base = Fraction(1, 1000)
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:  # moov atom first
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = round((times[i] if times is not None else i / fps) * 1000)
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def encode_video(
    path: Path, frames: np.ndarray, codec: str = "libx264", fps: int = 10, container_format: str | None = None,
    codec_options: dict[str, str] | None = None,
) -> Path:
    """`frames` (T, H, W, 3) uint8 RGB encoded with `codec` at the encoder's own timestamps (constant `fps`), in the
    container `path`'s suffix names (or `container_format`, e.g. "h264" for a raw elementary stream)."""
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=fps, options=codec_options or {})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def ffmpeg_encode(path: Path, frames: np.ndarray, rate: str, *options: str) -> Path:
    """`frames` (T, H, W, 3) uint8 RGB encoded by the ffmpeg command line (piped in as raw video) at `rate` frames
    per second ("1", "1/2", ...): H.264 without B-frames unless `options` say otherwise, in the container `path`'s
    suffix names. As users make files (`ffmpeg -i in.mp4 -r 1 -bf 0 out.mkv`), not through PyAV's muxer."""
    import shutil
    import subprocess

    if shutil.which("ffmpeg") is None:
        import pytest

        pytest.skip("the ffmpeg command line is not installed")
    height, width = frames.shape[1:3]
    command = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
               "-r", rate, "-i", "-", "-c:v", "libx264", "-bf", "0", "-pix_fmt", "yuv420p", *options, str(path)]
    subprocess.run(command, input=np.ascontiguousarray(frames, dtype=np.uint8).tobytes(), check=True, timeout=60)
    return path


def write_rotated_phone_video(folder: Path) -> Path:
    """A 64 x 32 landscape clip of 3 frames with a white stripe on the left, stored with a 90 degree display matrix
    as phones store portrait video: shown upright it is 32 x 64 with the stripe on top."""
    frames = np.zeros((3, 32, 64, 3), dtype=np.uint8)
    frames[:, :, :16] = 255
    data = write_video(folder / "landscape.mp4", frames).read_bytes()
    identity = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    rotated = struct.pack(">9I", 0, 0x10000, 0, 0xFFFF0000, 0, 0, 0, 0, 0x40000000)
    at = data.index(identity, data.index(b"tkhd"))
    path = folder / "portrait.mp4"
    path.write_bytes(data[:at] + rotated + data[at + len(identity):])
    return path


BAD_CASES = ["missing", "zero_bytes", "text_renamed", "truncated", "truncated_data", "corrupt",
             "still_image_renamed", "still_image", "zero_frames", "audio_only", "unknown_codec", "directory"]


def make_bad_files(folder: Path, media_dir: Path) -> dict[str, tuple[Path, str]]:
    """One file per case of BAD_CASES, in `folder`: name -> (path, a word the error message must contain)."""
    files: dict[str, tuple[Path, str]] = {}
    files["missing"] = (folder / "does_not_exist.mp4", "not found")
    (folder / "empty.mp4").write_bytes(b"")
    files["zero_bytes"] = (folder / "empty.mp4", "empty")
    (folder / "notes.mp4").write_text("this is a text file, not a video\n" * 20)
    files["text_renamed"] = (folder / "notes.mp4", "not a readable video")
    source = (media_dir / "single_face.mp4").read_bytes()
    (folder / "head_only.mp4").write_bytes(source[: len(source) // 3])  # moov atom (at the end) is lost
    files["truncated"] = (folder / "head_only.mp4", "not a readable video")
    # moov first, then cut in the middle of the frame data: opens, then fails while decoding.
    noise = np.random.default_rng(0).integers(0, 255, (30, 64, 96, 3), dtype=np.uint8)
    faststart = write_video(folder / "faststart.mp4", noise)
    data = faststart.read_bytes()
    (folder / "cut.mp4").write_bytes(data[: int(len(data) * 0.6)])
    files["truncated_data"] = (folder / "cut.mp4", "truncated")
    garbled = bytearray(source)
    for i in range(5000, len(garbled) - 5000, 7):
        garbled[i] = (garbled[i] * 31 + 7) % 256
    (folder / "corrupt.mp4").write_bytes(bytes(garbled))
    files["corrupt"] = (folder / "corrupt.mp4", "could not be decoded")
    (folder / "photo.mp4").write_bytes((media_dir / "single_face.jpg").read_bytes())
    files["still_image_renamed"] = (folder / "photo.mp4", "still image")
    files["still_image"] = (media_dir / "single_face.jpg", "still image")
    with av.open(str(folder / "zero.mkv"), "w") as container:  # a video stream without a single frame
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()
    files["zero_frames"] = (folder / "zero.mkv", "no video frames")
    with av.open(str(folder / "sound.m4a"), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    files["audio_only"] = (folder / "sound.m4a", "no video stream")
    (folder / "codec.mp4").write_bytes(faststart.read_bytes().replace(b"avc1", b"zzzz"))  # unknown fourcc
    files["unknown_codec"] = (folder / "codec.mp4", "codec")
    files["directory"] = (folder, "directory")
    return files
