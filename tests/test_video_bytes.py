"""Videos decoded from memory (a dataset row's embedded bytes, an open binary file): the same clip as from the path,
pixel for pixel, with both decoders; the same errors for bad data; nothing written to disk."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from test_video_io import SHARED_VIDEOS
from video_files import BAD_CASES

from facetrack.video import decode as video_io
from facetrack.video.probe import VideoDecodeError, probe_video
from facetrack.video.decode import load_video

DECODERS = ["decord", "pyav"]


def use_decoder(monkeypatch, decoder: str) -> None:
    if decoder == "pyav":
        monkeypatch.setattr(video_io, "_import_decord", lambda: None)


def assert_same_clip(from_memory, from_path) -> None:
    np.testing.assert_array_equal(from_memory.frames, from_path.frames)
    for field in ("timestamps", "frame_indices", "source_fps", "duration", "source_width", "source_height"):
        assert getattr(from_memory, field) == getattr(from_path, field), field


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("name", sorted(SHARED_VIDEOS))
def test_bytes_and_file_objects_decode_like_the_path(media_dir, monkeypatch, tmp_path, name, decoder):
    use_decoder(monkeypatch, decoder)
    path = media_dir / name
    data = path.read_bytes()
    total = SHARED_VIDEOS[name][0]
    wanted = [0, 5, 5, total // 2, total - 1]  # a precomputed face track's frames: repeats, the last frame
    from_path = load_video(path, frame_indices=wanted)
    from_bytes = load_video(data, frame_indices=wanted)
    assert_same_clip(from_bytes, from_path)
    assert from_bytes.source is None  # bytes have no name
    with open(path, "rb") as file:
        from_file = load_video(file, num_frames=6)
    assert_same_clip(from_file, load_video(path, num_frames=6))
    assert from_file.source == str(path)  # an open file is named by its path
    assert_same_clip(load_video(io.BytesIO(data), fps=2.0), load_video(path, fps=2.0))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("decoder", DECODERS)
def test_shrunk_frames_and_raw_streams_from_bytes(media_dir, tmp_path, monkeypatch, decoder):
    import av

    use_decoder(monkeypatch, decoder)
    # max_side: PyAV's scaler, one full-size frame at a time.
    path = media_dir / "face_noface.mov"
    shrunk = load_video(path.read_bytes(), num_frames=4, max_side=320)
    assert shrunk.frames.shape == (4, 180, 320, 3) and (shrunk.source_width, shrunk.source_height) == (960, 540)
    assert_same_clip(shrunk, load_video(path, num_frames=4, max_side=320))
    # A raw H.264 stream (no container, no timestamps), here single_face.mp4's own packets: found by its content,
    # its frames counted from the start (PyAV) and read again from a fresh in-memory file.
    source = media_dir / "single_face.mp4"
    raw = tmp_path / "clip.h264"
    with av.open(str(source)) as container, av.open(str(raw), "w", format="h264") as target:
        stream = target.add_stream_from_template(container.streams.video[0])
        for packet in container.demux(container.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                target.mux(packet)
    clip = load_video(raw.read_bytes(), num_frames=5)
    assert clip.frame_indices == [0, 18, 36, 53, 71]
    np.testing.assert_array_equal(clip.frames, load_video(source, num_frames=5).frames)
    assert_same_clip(clip, load_video(raw, num_frames=5))


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("case", [case for case in BAD_CASES if case not in ("missing", "directory")])
def test_bad_bytes_give_the_files_error(bad_files, monkeypatch, case, decoder):
    use_decoder(monkeypatch, decoder)
    path, expected = bad_files[case]
    with pytest.raises(VideoDecodeError) as from_path:
        load_video(path, num_frames=8)
    with pytest.raises(VideoDecodeError) as from_bytes:
        load_video(path.read_bytes(), num_frames=8)
    assert type(from_bytes.value) is type(from_path.value)
    assert from_bytes.value.problem == from_path.value.problem and expected in from_bytes.value.problem
    assert "\n" not in str(from_bytes.value)
    named = io.BytesIO(path.read_bytes())
    named.name = "clips/row_7.mp4"  # e.g. the path a dataset row was stored under
    with pytest.raises(VideoDecodeError) as from_named:
        load_video(named, num_frames=8)
    assert str(from_named.value) == f"clips/row_7.mp4: {from_path.value.problem}"


def test_bad_bytes_keep_stderr_clean(bad_files):
    # decord logs its failures from C++; from memory too, the probe refuses bad data before decord sees it.
    paths = [str(path) for case, (path, _) in bad_files.items() if path.is_file()]
    script = (
        "import sys\nfrom pathlib import Path\nfrom facetrack.video.decode import VideoDecodeError, load_video\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n        load_video(Path(path).read_bytes(), num_frames=4)\n        print('decoded')\n"
        "    except VideoDecodeError:\n        print('raised VideoDecodeError')\n"
    )
    process = subprocess.run([sys.executable, "-c", script, *paths], capture_output=True, text=True, timeout=120)
    assert process.returncode == 0 and process.stderr == "", process.stderr[-2000:]
    assert process.stdout.splitlines() == ["raised VideoDecodeError"] * len(paths)


def test_probe_reads_bytes_and_file_objects(media_dir):
    from facetrack.video.probe import VideoTooLargeError

    path = media_dir / "single_face.mp4"
    from_path = probe_video(path, count_frames=True)
    from_bytes = probe_video(path.read_bytes(), count_frames=True)
    assert (from_bytes.width, from_bytes.height, from_bytes.num_frames, from_bytes.frames_read, from_bytes.fps) == (
        from_path.width, from_path.height, from_path.num_frames, from_path.frames_read, from_path.fps)
    assert from_bytes.codec == from_path.codec and from_bytes.duration == from_path.duration
    with pytest.raises(VideoTooLargeError, match="over the limit"):
        probe_video(path.read_bytes(), max_pixels=1000)
    with open(path) as text_file, pytest.raises(ValueError, match="text mode: open it with 'rb'"):
        load_video(text_file)
