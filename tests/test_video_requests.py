"""What load_video is asked for (issue 23): low-frame-rate files decord cannot time, the frame and memory limits checked
before decoding, fps and limit arguments, streams whose frame size changes, non-finite in-memory pixels."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from video_files import encode_video, ffmpeg_encode

from facetrack.video import decode as video_io
from facetrack.video import probe as video_probe
from facetrack.video.probe import VideoDecodeError, VideoRequestTooLargeError, VideoTruncatedError, probe_video
from facetrack.video.decode import load_video

SINGLE_FACE = ("single_face.mp4", 72, 640, 360)  # name, frames, width, height (30 fps, 2.4 s)


def numbered_frames(count: int, height: int = 64, width: int = 96, first: int = 0) -> np.ndarray:
    """Frame i is filled with grey level 10 * (first + i), so a decoded frame tells which source frame it is."""
    return np.stack([np.full((height, width, 3), 10 * (first + i), dtype=np.uint8) for i in range(count)])


def frame_number(frame: np.ndarray) -> int:
    return int(round(float(frame.mean()) / 10))


def use_decoder(monkeypatch, decoder: str) -> None:
    if decoder == "pyav":
        monkeypatch.setattr(video_io, "_import_decord", lambda: None)


def no_decoding(monkeypatch) -> None:
    """Fail the test if any frame is decoded (reading timestamps and headers is allowed)."""

    def decoded(*args, **kwargs):
        raise AssertionError("a frame was decoded before the request was checked")

    for name in ("_decode_into_array", "_decode_by_seeking", "_decode_by_position"):
        monkeypatch.setattr(video_io, name, decoded)


# ------------------------------------------------------------------------------------ low frame rates (item 4)
@pytest.mark.parametrize("decoder", ["decord", "pyav"])
@pytest.mark.parametrize("rate,suffix", [("1", "mkv"), ("1/2", "mkv"), ("1/4", "mkv"), ("1", "mp4"), ("1/2", "mp4"),
                                         ("1", "mov")])
def test_low_frame_rate_files_without_b_frames_are_read_whole(tmp_path, monkeypatch, decoder, rate, suffix):
    # `ffmpeg -r 1 -bf 0 out.mkv`: decord lists every frame at FFmpeg's "no timestamp", which read as a 0-second
    # file ("truncated: its header says 10.00 s but the data ends after 0.00 s"); PyAV reads it.
    path = ffmpeg_encode(tmp_path / f"low.{suffix}", numbered_frames(6), rate)
    seconds_per_frame = 1 / float(eval(rate))  # "1/4" -> 4 s
    use_decoder(monkeypatch, decoder)
    every = load_video(path, num_frames=None)
    assert [frame_number(f) for f in every.frames] == list(range(6))
    np.testing.assert_allclose(every.timestamps, [i * seconds_per_frame for i in range(6)], atol=1e-3)
    assert every.duration == pytest.approx(6 * seconds_per_frame, abs=1e-3)
    assert probe_video(path, count_frames=True).frames_read == 6  # the upload check agrees
    clip = load_video(path, num_frames=3)
    assert clip.frame_indices == [0, 2, 5] and [frame_number(f) for f in clip.frames] == [0, 2, 5]
    # Sampled by rate: one frame every 2 frame lengths.
    assert load_video(path, num_frames=None, fps=0.5 / seconds_per_frame).frame_indices == [0, 2, 4]


def test_pyav_written_mkv_at_2_fps_is_read_by_both_decoders(tmp_path, monkeypatch):
    path = encode_video(tmp_path / "two_fps.mkv", numbered_frames(5), fps=2, codec_options={"bf": "0"})
    with_decord = load_video(path, num_frames=None)
    assert with_decord.timestamps == [0.0, 0.5, 1.0, 1.5, 2.0] and with_decord.duration == pytest.approx(2.5)
    monkeypatch.setattr(video_io, "_import_decord", lambda: None)
    with_pyav = load_video(path, num_frames=None)
    assert with_pyav.timestamps == with_decord.timestamps
    np.testing.assert_array_equal(with_pyav.frames, with_decord.frames)


@pytest.mark.parametrize("decoder", ["decord", "pyav"])
@pytest.mark.parametrize("packets_kept", [3, 7])
def test_a_truncated_low_frame_rate_mkv_is_still_refused(tmp_path, monkeypatch, decoder, packets_kept):
    path = ffmpeg_encode(tmp_path / "low.mkv", numbered_frames(10), "1")
    with av.open(str(path)) as container:
        ends = [p.pos + p.size for p in container.demux(container.streams.video[0]) if p.size]
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(path.read_bytes()[: ends[packets_kept - 1]])
    use_decoder(monkeypatch, decoder)
    with pytest.raises(VideoTruncatedError, match=r"its header says 10\.00 s but the data ends after"):
        load_video(cut, num_frames=4)
    with pytest.raises(VideoTruncatedError):
        probe_video(cut, count_frames=True)


# ---------------------------------------------------------------------------------- fps sampling (items 5, 9)
@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_fps_above_the_source_rate_gives_every_frame_once(media_dir, monkeypatch, decoder):
    name, total, _, _ = SINGLE_FACE
    use_decoder(monkeypatch, decoder)
    for fps in (30.0, 60.0, 1e9, 1e300):  # 1e9 over 2.4 s was 2.4e9 sample times (23.5 GB, killed)
        assert load_video(media_dir / name, num_frames=None, fps=fps).frame_indices == list(range(total))
    capped = load_video(media_dir / name, num_frames=8, fps=1e9)  # --frames caps --fps
    assert capped.frame_indices == video_io.uniform_indices(total, 8) and len(capped.frames) == 8
    assert len(load_video(media_dir / name, num_frames=None, fps=10.0)) == 24  # below the source rate: by time


@pytest.mark.parametrize("fps", [0, -1.0, float("nan"), float("inf"), float("-inf"), "2"])
def test_bad_fps_is_one_clear_error_before_anything_is_read(media_dir, monkeypatch, fps):
    monkeypatch.setattr(video_io, "probe_video", lambda *a, **k: pytest.fail("the file was read"))
    with pytest.raises(ValueError, match="fps must be a finite number of frames per second > 0") as caught:
        load_video(media_dir / SINGLE_FACE[0], fps=fps)
    assert not isinstance(caught.value, VideoDecodeError)  # the argument's fault, not the file's


# ------------------------------------------------------------------------------ frame and byte limits (item 5)
@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_too_many_frames_are_refused_before_decoding(media_dir, monkeypatch, decoder):
    name, total, width, height = SINGLE_FACE
    path = media_dir / name
    use_decoder(monkeypatch, decoder)
    no_decoding(monkeypatch)
    for num_frames in (6000, 100000):  # 6000 took 4.2 GB; 100000 ended in a numpy traceback
        with pytest.raises(VideoRequestTooLargeError) as caught:
            load_video(path, num_frames=num_frames)
        message = str(caught.value)
        assert message == (f"{path}: {num_frames} frames asked for, over the limit of 4096 decoded frames; ask for "
                           "fewer (num_frames / --frames, or a lower fps), or raise the limit with "
                           "FACETRACK_MAX_VIDEO_FRAMES / max_frames (0 = no limit)")
    # Whatever chooses the frames: every frame, by rate, by index.
    with pytest.raises(VideoRequestTooLargeError, match="72 frames asked for, over the limit of 50"):
        load_video(path, num_frames=None, max_frames=50)
    with pytest.raises(VideoRequestTooLargeError, match="60 frames asked for, over the limit of 50"):
        load_video(path, num_frames=None, fps=25.0, max_frames=50)
    with pytest.raises(VideoRequestTooLargeError, match="51 frames asked for"):
        load_video(path, frame_indices=[0] * 51, max_frames=50)
    # Decoded bytes: frames x height x width x 3 at the size decoded (after max_side).
    frame_bytes = width * height * 3
    with pytest.raises(VideoRequestTooLargeError) as caught:
        load_video(path, num_frames=5, max_bytes=4 * frame_bytes)
    assert (f"5 frames of {width}x{height} take 3.3 MiB decoded, over the limit of 2.6 MiB ({4 * frame_bytes} bytes)"
            in str(caught.value))
    assert "FACETRACK_MAX_VIDEO_BYTES / max_bytes" in str(caught.value)
    monkeypatch.undo()
    use_decoder(monkeypatch, decoder)
    assert len(load_video(path, num_frames=4, max_bytes=4 * frame_bytes)) == 4
    assert load_video(path, num_frames=16, max_side=320, max_bytes=4 * frame_bytes).frames.shape == (16, 180, 320, 3)


def test_the_limits_come_from_the_environment_and_0_lifts_them(media_dir, monkeypatch):
    path = media_dir / SINGLE_FACE[0]
    monkeypatch.setenv("FACETRACK_MAX_VIDEO_FRAMES", "5")
    with pytest.raises(VideoRequestTooLargeError, match="over the limit of 5 decoded frames"):
        load_video(path, num_frames=6)
    assert len(load_video(path, num_frames=6, max_frames=0)) == 6
    assert len(load_video(path, num_frames=6, max_frames=6)) == 6
    monkeypatch.setenv("FACETRACK_MAX_VIDEO_FRAMES", "0")
    monkeypatch.setenv("FACETRACK_MAX_VIDEO_BYTES", str(640 * 360 * 3))
    with pytest.raises(VideoRequestTooLargeError, match=r"over the limit of 0\.7 MiB \(691200 bytes\)"):
        load_video(path, num_frames=2)
    assert len(load_video(path, num_frames=1)) == 1
    # Defaults: room for the most the models and benchmarks ask for (512 frames of 720p), not for 6000 frames.
    assert video_probe.DEFAULT_MAX_FRAMES >= 512 and video_probe.DEFAULT_MAX_BYTES >= 512 * 1280 * 720 * 3
    assert video_probe.DEFAULT_MAX_FRAMES < 6000


def test_in_memory_frames_have_the_same_limits(monkeypatch):
    frames = numbered_frames(10)
    with pytest.raises(VideoRequestTooLargeError, match="20 frames asked for, over the limit of 16"):
        load_video(frames, num_frames=20, max_frames=16)
    with pytest.raises(VideoRequestTooLargeError, match="10 frames of 96x64"):
        load_video(frames, num_frames=None, max_bytes=9 * 96 * 64 * 3)
    assert len(load_video(frames, num_frames=None, max_bytes=10 * 96 * 64 * 3)) == 10


@pytest.mark.parametrize("argument,value,expected", [
    ("max_frames", -1, "max_frames must be >= 0"), ("max_frames", 1.5, "max_frames must be a whole number"),
    ("max_bytes", -2, "max_bytes must be >= 0"), ("max_pixels", -5, "max_pixels must be >= 0"),
    ("max_pixels", "lots", "max_pixels must be a whole number"), ("num_frames", 2.5, "num_frames must be a whole"),
    ("max_side", float("nan"), "max_side must be a number of pixels"),
])
def test_bad_limit_arguments_are_named_not_blamed_on_the_file(media_dir, argument, value, expected):
    # max_pixels=-5 was reported as "not a readable video".
    with pytest.raises(ValueError, match=expected) as caught:
        load_video(media_dir / SINGLE_FACE[0], **{argument: value})
    assert not isinstance(caught.value, VideoDecodeError)
    if argument == "max_pixels":
        with pytest.raises(ValueError, match=expected) as caught:
            probe_video(media_dir / SINGLE_FACE[0], max_pixels=value)
        assert not isinstance(caught.value, VideoDecodeError)


def test_a_bad_limit_in_the_environment_is_named(media_dir, monkeypatch):
    for name in ("FACETRACK_MAX_VIDEO_FRAMES", "FACETRACK_MAX_VIDEO_BYTES"):
        monkeypatch.setenv(name, "lots")
        with pytest.raises(ValueError, match=f"{name}='lots' is not a whole number"):
            load_video(media_dir / SINGLE_FACE[0], num_frames=2)
        monkeypatch.setenv(name, "-3")
        with pytest.raises(ValueError, match=f"{name}='-3' must be >= 0"):
            load_video(media_dir / SINGLE_FACE[0], num_frames=2)
        monkeypatch.delenv(name)


# --------------------------------------------------------------------- frame size changing midway (item 9)
@pytest.fixture(scope="module")
def mixed_size_videos(tmp_path_factory) -> dict[str, Path]:
    """Two clips of different sizes joined: 5 frames of 96x64 (grey 0-40), then 5 of 48x32 (grey 50-90). As a raw
    H.264 stream (`cat a.h264 b.h264`), and remuxed from it into mkv and mp4 by the ffmpeg command line."""
    folder = tmp_path_factory.mktemp("mixed_size")
    big = encode_video(folder / "big.h264", numbered_frames(5), container_format="h264", codec_options={"bf": "0"})
    small = encode_video(folder / "small.h264", numbered_frames(5, 32, 48, first=5), container_format="h264",
                         codec_options={"bf": "0"})
    raw = folder / "mixed.h264"
    raw.write_bytes(big.read_bytes() + small.read_bytes())
    videos = {"h264": raw}
    for suffix in ("mkv", "mp4"):
        videos[suffix] = folder / f"mixed.{suffix}"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-fflags", "+genpts", "-r", "10", "-i", str(raw), "-c", "copy",
                        str(videos[suffix])], check=True, timeout=60)
    return videos


@pytest.mark.parametrize("decoder", ["decord", "pyav"])
@pytest.mark.parametrize("suffix", ["h264", "mkv", "mp4"])
def test_a_stream_whose_frame_size_changes_is_read_at_one_size(mixed_size_videos, monkeypatch, decoder, suffix):
    # PyAV stacked frames of two sizes: "all input arrays must have the same shape", naming no file. Every frame
    # comes at the stream's size as its header gives it (FFmpeg read these short streams to their end to fill the
    # header, so for some that is the second clip's), as decord gives them.
    path = mixed_size_videos[suffix]
    info = probe_video(path)
    assert (info.width, info.height) in {(96, 64), (48, 32)}
    use_decoder(monkeypatch, decoder)
    clip = load_video(path, num_frames=None)
    assert clip.frames.shape == (10, info.height, info.width, 3)
    assert (clip.source_width, clip.source_height) == (info.width, info.height)
    assert [frame_number(f) for f in clip.frames] == list(range(10))
    np.testing.assert_allclose(clip.timestamps, [i / 10 for i in range(10)], atol=1e-3)
    picked = load_video(path, frame_indices=[7, 2])
    assert [frame_number(f) for f in picked.frames] == [7, 2] and picked.frames.shape[1:3] == clip.frames.shape[1:3]
    assert load_video(path, num_frames=4, max_side=24).frames.shape[1:3] == (16, 24)


# -------------------------------------------------------------------------------- in-memory pixels (item 9)
def test_non_finite_float_frames_are_refused_not_turned_black():
    nan = np.full((3, 8, 8, 3), np.nan, dtype=np.float32)
    with pytest.raises(VideoDecodeError, match=r"non-finite pixel values \(NaN or infinity\) in 576 of 576"):
        load_video(nan, num_frames=None)
    partly = np.full((2, 8, 8, 3), 0.5, dtype=np.float64)
    partly[1, 0, 0, 0] = np.inf
    with pytest.raises(VideoDecodeError, match="non-finite pixel values"):
        load_video([frame for frame in partly], num_frames=None)
    assert load_video(np.full((2, 8, 8, 3), 0.5, dtype=np.float32), num_frames=None).frames.max() == 128  # [0, 1]
