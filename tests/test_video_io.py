"""Video decoding and sampling: real shared clips (h264 mp4, hevc mov), VFR, in-memory frames, fallback, bad input."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from facetrack.processing import video_io
from facetrack.processing.video_io import VideoClip, VideoDecodeError, load_video

SHARED_VIDEOS = {  # name: (frames, width, height)
    "single_face.mp4": (72, 640, 360),
    "WolfgangLanger_Pexels.mp4": (472, 640, 360),
    "face_noface.mov": (169, 960, 540),
    "noface_face.mov": (169, 960, 540),
    "no_face.mp4": (95, 960, 540),  # 98 packets, of which 3 are edit-list pre-roll that is never shown
}


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


def numbered_frames(count: int, height: int = 64, width: int = 96) -> np.ndarray:
    """Frame i is filled with grey level 10 * i, so a decoded frame tells which source frame it is."""
    return np.stack([np.full((height, width, 3), 10 * i, dtype=np.uint8) for i in range(count)])


def frame_number(frame: np.ndarray) -> int:
    return int(round(float(frame.mean()) / 10))


# ------------------------------------------------------------------------------------------------- shared videos
@pytest.mark.parametrize("name", sorted(SHARED_VIDEOS))
def test_shared_video_uniform_32(media_dir, name):
    total, width, height = SHARED_VIDEOS[name]
    clip = load_video(media_dir / name, num_frames=32)
    assert isinstance(clip, VideoClip)
    assert clip.frames.shape == (32, height, width, 3) and clip.frames.dtype == np.uint8
    assert clip.frame_indices[0] == 0 and clip.frame_indices[-1] == total - 1
    assert clip.frame_indices == sorted(clip.frame_indices)
    assert np.all(np.diff(clip.timestamps) > 0)
    assert clip.timestamps[0] == pytest.approx(0.0, abs=0.2)
    assert clip.duration == pytest.approx(clip.timestamps[-1], abs=0.3)
    assert clip.source == str(media_dir / name) and clip.source_fps > 1
    assert clip.frames.mean() > 5  # real pictures, not black buffers


def test_frame_indices_decodes_exactly_those_frames(media_dir):
    path = media_dir / "single_face.mp4"
    every = load_video(path, num_frames=None)
    assert len(every) == 72
    wanted = [40, 3, 3, 71]
    clip = load_video(path, frame_indices=wanted)
    assert clip.frame_indices == wanted
    np.testing.assert_array_equal(clip.frames, every.frames[wanted])
    assert clip.timestamps == [every.timestamps[i] for i in wanted]
    with pytest.raises(ValueError, match="out of range"):
        load_video(path, frame_indices=[0, 72])


@pytest.mark.parametrize("name", ["face_noface.mov", "no_face.mp4", "WolfgangLanger_Pexels.mp4"])
def test_pyav_fallback_gives_the_same_frames(media_dir, monkeypatch, name):
    # HEVC; H.264 with an edit list (pre-roll); H.264 with 7 keyframes (PyAV seeks between them).
    path = media_dir / name
    with_decord = load_video(path, num_frames=8)

    def broken_decord(*args, **kwargs):
        raise RuntimeError("decord cannot read this file")

    monkeypatch.setattr(video_io, "_load_with_decord", broken_decord)
    with_pyav = load_video(path, num_frames=8)
    assert with_pyav.frame_indices == with_decord.frame_indices
    np.testing.assert_allclose(with_pyav.timestamps, with_decord.timestamps, atol=1e-3)
    np.testing.assert_array_equal(with_pyav.frames, with_decord.frames)


def test_pyav_jumps_between_keyframes_and_decodes_the_right_frames(tmp_path, monkeypatch):
    # Keyframe every 5 frames, with B-frames: sampled frames are reached by seeking, matched by their pts.
    path = tmp_path / "short_gop.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10, options={"g": "5", "keyint_min": "5", "bf": "2"})
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for image in numbered_frames(25):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)

    def no_counting(*args, **kwargs):
        raise AssertionError("fell back to decoding from the start")

    monkeypatch.setattr(video_io, "_decode_by_position", no_counting)
    monkeypatch.setattr(video_io, "_import_decord", lambda: None)
    wanted = [3, 17, 24, 8, 8, 0, 12]
    clip = load_video(path, frame_indices=wanted)
    assert [frame_number(f) for f in clip.frames] == wanted
    np.testing.assert_allclose(clip.timestamps, [i / 10 for i in wanted], atol=1e-3)


def test_works_without_decord_installed(media_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "decord", None)  # import decord -> ImportError
    clip = load_video(media_dir / "single_face.mp4", num_frames=4)
    assert clip.frames.shape == (4, 360, 640, 3)


def test_fps_sampling_follows_time(media_dir):
    clip = load_video(media_dir / "WolfgangLanger_Pexels.mp4", num_frames=None, fps=2.0)
    assert len(clip) == 40  # 19.7 s at 2 fps
    gaps = np.diff(clip.timestamps)
    assert np.all(np.abs(gaps - 0.5) < 1 / 23.976 + 1e-6)
    capped = load_video(media_dir / "WolfgangLanger_Pexels.mp4", num_frames=10, fps=2.0)
    assert len(capped) == 10 and set(capped.frame_indices) <= set(clip.frame_indices)


# ----------------------------------------------------------------------------------------- synthetic files & arrays
def test_variable_frame_rate_timestamps_and_fps_sampling(tmp_path):
    times = [0.0, 0.1, 0.2, 1.0, 1.05, 1.1, 2.5, 3.0]  # irregular gaps
    path = write_video(tmp_path / "vfr.mp4", numbered_frames(len(times)), times=times)
    clip = load_video(path, num_frames=None)
    np.testing.assert_allclose(clip.timestamps, times, atol=0.002)
    assert [frame_number(f) for f in clip.frames] == list(range(len(times)))
    # One frame per second shows the frame on screen at 0 s, 1 s, 2 s, 3 s.
    per_second = load_video(path, num_frames=None, fps=1.0)
    assert per_second.frame_indices == [0, 3, 5, 7]
    assert [frame_number(f) for f in per_second.frames] == [0, 3, 5, 7]


def test_rotated_phone_video_is_upright_with_both_decoders(tmp_path, monkeypatch):
    import struct

    frames = np.zeros((3, 32, 64, 3), dtype=np.uint8)
    frames[:, :, :16] = 255  # white stripe on the left
    data = write_video(tmp_path / "landscape.mp4", frames).read_bytes()
    # Give the track a 90 degree display matrix, as phones do for portrait video.
    identity = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    rotated = struct.pack(">9I", 0, 0x10000, 0, 0xFFFF0000, 0, 0, 0, 0, 0x40000000)
    at = data.index(identity, data.index(b"tkhd"))
    path = tmp_path / "portrait.mp4"
    path.write_bytes(data[:at] + rotated + data[at + len(identity):])

    with_decord = load_video(path, num_frames=None)
    monkeypatch.setattr(video_io, "_import_decord", lambda: None)
    with_pyav = load_video(path, num_frames=None)
    for clip in (with_decord, with_pyav):
        assert clip.frames.shape == (3, 64, 32, 3)
        assert clip.frames[0, :12].min() > 200 and clip.frames[0, 20:].max() < 50  # the stripe is now on top
    np.testing.assert_array_equal(with_decord.frames, with_pyav.frames)


def test_animated_gif_is_a_video_but_a_one_frame_gif_is_a_still_image(tmp_path):
    images = [Image.fromarray(frame) for frame in numbered_frames(4)]
    images[0].save(tmp_path / "anim.gif", save_all=True, append_images=images[1:], duration=100, loop=0)
    clip = load_video(tmp_path / "anim.gif", num_frames=None)
    assert len(clip) == 4 and [frame_number(f) for f in clip.frames] == [0, 1, 2, 3]
    images[1].save(tmp_path / "still.gif")
    with pytest.raises(VideoDecodeError, match="still image"):
        load_video(tmp_path / "still.gif")


@pytest.mark.parametrize("suffix,codec", [("webm", "libvpx-vp9"), ("mkv", "libx264"), ("avi", "mpeg4"),
                                          ("mov", "libx264")])
def test_other_containers_and_codecs(tmp_path, monkeypatch, suffix, codec):
    path = tmp_path / f"clip.{suffix}"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for image in numbered_frames(6):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    clip = load_video(path, num_frames=None)
    assert [frame_number(f) for f in clip.frames] == list(range(6))
    np.testing.assert_allclose(clip.timestamps, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], atol=1e-3)
    monkeypatch.setattr(video_io, "_import_decord", lambda: None)
    np.testing.assert_array_equal(load_video(path, num_frames=None).frames, clip.frames)


@pytest.mark.parametrize("height,width", [(90, 160), (160, 90), (2, 2)])
def test_any_resolution(tmp_path, height, width):
    path = write_video(tmp_path / "small.mp4", numbered_frames(5, height, width))
    clip = load_video(path, num_frames=3)
    assert clip.frames.shape == (3, height, width, 3)
    assert clip.frame_indices == [0, 2, 4]


def test_short_clip_repeats_frames_to_reach_num_frames(tmp_path):
    path = write_video(tmp_path / "three.mp4", numbered_frames(3))
    clip = load_video(path, num_frames=6)
    assert clip.frame_indices == [0, 0, 1, 1, 2, 2]
    assert [frame_number(f) for f in clip.frames] == [0, 0, 1, 1, 2, 2]


def test_in_memory_frames():
    frames = numbered_frames(10)
    clip = load_video(frames, num_frames=4)
    assert clip.frame_indices == [0, 3, 6, 9] and clip.source is None and clip.source_fps is None
    np.testing.assert_array_equal(clip.frames, frames[[0, 3, 6, 9]])
    assert clip.timestamps == [0.0, 3.0, 6.0, 9.0]

    images = [Image.fromarray(f).convert("L") for f in frames[:3]]  # grayscale PIL is converted to RGB
    clip = load_video(images, num_frames=None)
    assert clip.frames.shape == (3, 64, 96, 3)
    assert [frame_number(f) for f in clip.frames] == [0, 1, 2]

    assert load_video(frames[0], num_frames=None).frames.shape == (1, 64, 96, 3)  # one (H, W, 3) frame
    assert load_video(frames, frame_indices=[9, 1]).frame_indices == [9, 1]
    with pytest.raises(ValueError, match="fps"):
        load_video(frames, fps=2.0)
    with pytest.raises(ValueError, match="same size"):
        load_video([frames[0], frames[0][:10]])
    with pytest.raises(VideoDecodeError, match="empty"):
        load_video([])


# --------------------------------------------------------------------------------------------------------- bad input
def _bad_files(tmp_path: Path, media_dir: Path) -> dict[str, tuple[Path, str]]:
    """name: (path, a word the error message must contain)."""
    files: dict[str, tuple[Path, str]] = {}
    files["missing"] = (tmp_path / "does_not_exist.mp4", "not found")
    (tmp_path / "empty.mp4").write_bytes(b"")
    files["zero_bytes"] = (tmp_path / "empty.mp4", "empty")
    (tmp_path / "notes.mp4").write_text("this is a text file, not a video\n" * 20)
    files["text_renamed"] = (tmp_path / "notes.mp4", "not a readable video")
    source = (media_dir / "single_face.mp4").read_bytes()
    (tmp_path / "head_only.mp4").write_bytes(source[: len(source) // 3])  # moov atom (at the end) is lost
    files["truncated"] = (tmp_path / "head_only.mp4", "not a readable video")
    # moov first, then cut in the middle of the frame data: opens, then fails while decoding.
    noise = np.random.default_rng(0).integers(0, 255, (30, 64, 96, 3), dtype=np.uint8)
    faststart = write_video(tmp_path / "faststart.mp4", noise)
    data = faststart.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: int(len(data) * 0.6)])
    files["truncated_data"] = (tmp_path / "cut.mp4", "could not")
    garbled = bytearray(source)
    for i in range(5000, len(garbled) - 5000, 7):
        garbled[i] = (garbled[i] * 31 + 7) % 256
    (tmp_path / "corrupt.mp4").write_bytes(bytes(garbled))
    files["corrupt"] = (tmp_path / "corrupt.mp4", "could not be decoded")
    (tmp_path / "photo.mp4").write_bytes((media_dir / "single_face.jpg").read_bytes())
    files["still_image_renamed"] = (tmp_path / "photo.mp4", "still image")
    files["still_image"] = (media_dir / "single_face.jpg", "still image")
    with av.open(str(tmp_path / "zero.mkv"), "w") as container:  # a video stream without a single frame
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()
    files["zero_frames"] = (tmp_path / "zero.mkv", "no video frames")
    with av.open(str(tmp_path / "sound.m4a"), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    files["audio_only"] = (tmp_path / "sound.m4a", "no video stream")
    (tmp_path / "codec.mp4").write_bytes(faststart.read_bytes().replace(b"avc1", b"zzzz"))  # unknown fourcc
    files["unknown_codec"] = (tmp_path / "codec.mp4", "codec")
    files["directory"] = (tmp_path, "directory")
    return files


BAD_CASES = ["missing", "zero_bytes", "text_renamed", "truncated", "truncated_data", "corrupt",
             "still_image_renamed", "still_image", "zero_frames", "audio_only", "unknown_codec", "directory"]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, media_dir):
    return _bad_files(tmp_path_factory.mktemp("bad"), media_dir)


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_file_gives_clear_video_decode_error(bad_files, case):
    path, expected = bad_files[case]
    with pytest.raises(VideoDecodeError) as caught:
        load_video(path, num_frames=8)
    message = str(caught.value)
    assert str(path) in message, message
    assert expected in message, message
    assert "\n" not in message
    assert isinstance(caught.value, ValueError)


def test_bad_sampling_arguments(media_dir):
    with pytest.raises(ValueError, match="num_frames"):
        load_video(media_dir / "single_face.mp4", num_frames=0)
    with pytest.raises(ValueError, match="fps"):
        load_video(media_dir / "single_face.mp4", fps=-1.0)


def _run_on_each(function: str, paths: list[str]):
    import subprocess

    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from facetrack.processing.video_io import _load_with_decord, load_video\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        f"        {function}\n"
        "        print('decoded', path)\n"
        "    except Exception as error:\n"
        "        print('raised', type(error).__name__, path)\n"
    )
    return subprocess.run([sys.executable, "-c", script, *paths], capture_output=True, text=True, timeout=120)


def test_decord_does_not_abort_on_bad_files_and_load_video_keeps_stderr_clean(bad_files):
    # decord gets every bad file directly, in a child process: its failures must be catchable exceptions, never an
    # abort. (It logs them to stderr from C++, which is why load_video probes files with PyAV first.)
    paths = [str(path) for path, _ in bad_files.values()]
    process = _run_on_each("_load_with_decord(Path(path), 4, None, None)", paths)
    assert process.returncode == 0, process.stderr[-2000:]
    outcomes = process.stdout.splitlines()
    assert len(outcomes) == len(paths) and all(line.startswith("raised") for line in outcomes), outcomes
    # Through load_video, the same files raise VideoDecodeError and nothing reaches stderr.
    process = _run_on_each("load_video(path, num_frames=4)", paths)
    assert process.returncode == 0 and process.stderr == "", process.stderr[-2000:]
    assert process.stdout.splitlines() == [f"raised VideoDecodeError {path}" for path in paths]
