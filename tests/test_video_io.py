"""Video decoding and sampling: real shared clips (h264 mp4, hevc mov), VFR, in-memory frames, fallback, bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from video_files import BAD_CASES, encode_video, write_rotated_phone_video, write_video

from facetrack.video import decode as video_io
from facetrack.video.decode import VideoClip, load_video
from facetrack.video.probe import VideoDecodeError

SHARED_VIDEOS = {  # name: (frames, width, height)
    "single_face.mp4": (72, 640, 360),
    "WolfgangLanger_Pexels.mp4": (472, 640, 360),
    "face_noface.mov": (169, 960, 540),
    "noface_face.mov": (169, 960, 540),
    "no_face.mp4": (95, 960, 540),  # 98 packets, of which 3 are edit-list pre-roll that is never shown
}


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
    encode_video(path, numbered_frames(25), codec_options={"g": "5", "keyint_min": "5", "bf": "2"})

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
    path = write_rotated_phone_video(tmp_path)
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
    encode_video(path, numbered_frames(6), codec=codec)
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
        "from facetrack.video.decode import VideoDecodeError, VideoInfo, _load_with_decord, load_video\n"
        "unknown = VideoInfo('', '', '', 0, 0, None, None, None)  # decord gets no header facts\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        f"        {function}\n"
        "        print('decoded', path)\n"
        "    except VideoDecodeError as error:\n"
        "        print('raised VideoDecodeError', path)\n"
        "    except Exception as error:\n"
        "        print('raised', type(error).__name__, path)\n"
    )
    return subprocess.run([sys.executable, "-c", script, *paths], capture_output=True, text=True, timeout=120)


def test_decord_does_not_abort_on_bad_files_and_load_video_keeps_stderr_clean(bad_files):
    # decord gets every bad file directly, in a child process: its failures must be catchable exceptions, never an
    # abort. (It logs them to stderr from C++, which is why load_video probes files with PyAV first.)
    paths = [str(path) for path, _ in bad_files.values()]
    process = _run_on_each("_load_with_decord(Path(path), unknown, 4, None, None, None)", paths)
    assert process.returncode == 0, process.stderr[-2000:]
    outcomes = process.stdout.splitlines()
    assert len(outcomes) == len(paths) and all(line.startswith("raised") for line in outcomes), outcomes
    assert not any(line.startswith("raised TypeError") for line in outcomes), outcomes
    # Through load_video, the same files raise VideoDecodeError and nothing reaches stderr.
    process = _run_on_each("load_video(path, num_frames=4)", paths)
    assert process.returncode == 0 and process.stderr == "", process.stderr[-2000:]
    assert process.stdout.splitlines() == [f"raised VideoDecodeError {path}" for path in paths]


# ---------------------------------------------------------------------------------- size limits, truncation, raw
def test_huge_frames_are_refused_from_the_header_before_decoding(huge_video, monkeypatch):
    from facetrack.video.probe import VideoTooLargeError, probe_video

    def no_decoding(*args, **kwargs):
        raise AssertionError("a decoder was started on a file over the pixel limit")

    monkeypatch.setattr(video_io, "_load_with_decord", no_decoding)
    monkeypatch.setattr(video_io, "_load_with_pyav", no_decoding)
    with pytest.raises(VideoTooLargeError, match=r"8192x8192 \(67\.1 megapixels\), over the limit of 8\.8 megapixels"):
        load_video(huge_video, num_frames=32)  # (benchmarks/bench_large_video.py times it and measures memory)
    with pytest.raises(VideoTooLargeError):
        probe_video(huge_video)
    # The limit is configurable: an argument, or the environment for every caller at once.
    assert probe_video(huge_video, max_pixels=0).width == 8192
    monkeypatch.setenv("FACETRACK_MAX_VIDEO_PIXELS", str(8192 * 8192))
    assert probe_video(huge_video).pixels == 8192 * 8192
    monkeypatch.setenv("FACETRACK_MAX_VIDEO_PIXELS", "lots")
    with pytest.raises(ValueError, match="FACETRACK_MAX_VIDEO_PIXELS"):
        probe_video(huge_video)


def test_pixel_limit_default_covers_4k_and_applies_to_small_limits(tmp_path):
    from facetrack.video.probe import DEFAULT_MAX_PIXELS, VideoTooLargeError

    assert DEFAULT_MAX_PIXELS >= 3840 * 2160 and DEFAULT_MAX_PIXELS >= 4096 * 2160
    path = write_video(tmp_path / "small.mp4", numbered_frames(3))  # 96 x 64 = 6144 pixels
    assert len(load_video(path, num_frames=None, max_pixels=6144)) == 3
    with pytest.raises(VideoTooLargeError, match="96x64"):
        load_video(path, num_frames=None, max_pixels=6143)


def test_a_probe_already_made_is_used_and_the_pixel_limit_still_holds(media_dir, monkeypatch):
    path = media_dir / "single_face.mp4"
    info = video_io.probe_video(path)
    expected = load_video(path, num_frames=4)
    monkeypatch.setattr(video_io, "probe_video", lambda *args, **kwargs: pytest.fail("probed again"))
    clip = load_video(path, num_frames=4, video_info=info)
    np.testing.assert_array_equal(clip.frames, expected.frames)
    assert clip.timestamps == expected.timestamps
    with pytest.raises(video_io.VideoTooLargeError, match="over the limit"):
        load_video(path, num_frames=4, video_info=info, max_pixels=1000)
    with pytest.raises(ValueError, match="video_info .* file path only"):
        load_video(expected.frames, num_frames=2, video_info=info)


def test_max_side_decodes_shrunk_frames_and_keeps_the_source_size(media_dir):
    path = media_dir / "WolfgangLanger_Pexels.mp4"  # 640 x 360
    full = load_video(path, num_frames=6)
    small = load_video(path, num_frames=6, max_side=320)
    assert small.frames.shape == (6, 180, 320, 3)
    assert (small.source_width, small.source_height) == (640, 360) == (full.source_width, full.source_height)
    assert small.frame_indices == full.frame_indices
    np.testing.assert_allclose(small.timestamps, full.timestamps, atol=1e-5)
    # The same pictures, only smaller: compare with the full frames shrunk the same way.
    import cv2

    expected = np.stack([cv2.resize(frame, (320, 180), interpolation=cv2.INTER_AREA) for frame in full.frames])
    assert np.abs(small.frames.astype(int) - expected.astype(int)).mean() < 4
    # Frames already within the bound are decoded as they are.
    assert load_video(path, num_frames=2, max_side=640).frames.shape == (2, 360, 640, 3)


def test_max_side_on_a_rotated_video_keeps_it_upright(tmp_path, monkeypatch):
    path = write_rotated_phone_video(tmp_path)
    clips = [load_video(path, num_frames=None, max_side=32)]
    monkeypatch.setattr(video_io, "_import_decord", lambda: None)
    clips.append(load_video(path, num_frames=None, max_side=32))
    for clip in clips:
        assert clip.frames.shape == (3, 32, 16, 3)
        assert (clip.source_width, clip.source_height) == (32, 64)
        assert clip.frames[0, :6].min() > 200 and clip.frames[0, 10:].max() < 60  # the stripe is on top


def _cut_after_packet(source: Path, target: Path, packets_kept: int) -> Path:
    """Keep the bytes up to the end of packet `packets_kept - 1`: the header (moov first) still lists every frame."""
    with av.open(str(source)) as container:
        ends = [p.pos + p.size for p in container.demux(container.streams.video[0]) if p.size]
    target.write_bytes(source.read_bytes()[: ends[packets_kept - 1]])
    return target


@pytest.fixture(scope="module")
def faststart_clip(tmp_path_factory, media_dir) -> Path:
    """single_face.mp4 (72 frames) remuxed with its index (moov) first, as web videos are."""
    path = tmp_path_factory.mktemp("faststart") / "faststart.mp4"
    with av.open(str(media_dir / "single_face.mp4")) as source, \
            av.open(str(path), "w", options={"movflags": "+faststart"}) as target:
        stream = target.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                target.mux(packet)
    return path


@pytest.mark.parametrize("decoder", ["decord", "pyav"])
@pytest.mark.parametrize("packets_kept", [3, 40, 69])
def test_truncated_faststart_file_is_refused_not_shortened(faststart_clip, tmp_path, monkeypatch, decoder,
                                                           packets_kept):
    # Cut at a packet boundary: the demuxer ends cleanly, and before this check both decoders returned a
    # 0.1 s clip of frames [0, 1, 1, 2] for 4 frames asked.
    from facetrack.video.probe import VideoTruncatedError, probe_video

    path = _cut_after_packet(faststart_clip, tmp_path / f"cut{packets_kept}.mp4", packets_kept)
    if decoder == "pyav":
        monkeypatch.setattr(video_io, "_import_decord", lambda: None)
    with pytest.raises(VideoTruncatedError) as caught:
        load_video(path, num_frames=4)
    assert f"header lists 72 frames but the data ends after {packets_kept}" in str(caught.value)
    assert str(caught.value).startswith(f"{path}: the file is truncated")
    assert caught.value.problem.startswith("the file is truncated")  # the message without the path
    # The probe finds it without decoding when asked to read the packets.
    with pytest.raises(VideoTruncatedError, match="72 frames"):
        probe_video(path, count_frames=True)
    assert probe_video(path).num_frames == 72  # the header alone cannot tell


def test_complete_files_pass_the_truncation_check(media_dir, faststart_clip):
    from facetrack.video.probe import probe_video

    for name, (total, width, height) in SHARED_VIDEOS.items():
        info = probe_video(media_dir / name, count_frames=True)
        assert (info.width, info.height) == (width, height)
        assert info.frames_read == info.num_frames  # pre-roll packets are counted on both sides
    assert probe_video(faststart_clip, count_frames=True).frames_read == 72


@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_raw_h264_elementary_stream_is_read(tmp_path, monkeypatch, decoder):
    # No container, no timestamps: FFmpeg reads it by parsing the bitstream. decord cannot; PyAV counts the frames.
    path = tmp_path / "clip.h264"
    encode_video(path, numbered_frames(25), container_format="h264", codec_options={"bf": "2", "g": "12"})
    if decoder == "pyav":
        monkeypatch.setattr(video_io, "_import_decord", lambda: None)
    every = load_video(path, num_frames=None)
    assert [frame_number(f) for f in every.frames] == list(range(25))
    clip = load_video(path, num_frames=5)
    assert clip.frame_indices == [0, 6, 12, 18, 24]
    assert [frame_number(f) for f in clip.frames] == [0, 6, 12, 18, 24]
    np.testing.assert_allclose(clip.timestamps, [0.0, 0.6, 1.2, 1.8, 2.4], atol=1e-6)  # at the stream's 10 fps
    assert clip.duration == pytest.approx(2.5)


def test_not_a_regular_file_is_named_for_what_it_is(tmp_path):
    import os

    from facetrack.video.probe import probe_video

    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    with pytest.raises(VideoDecodeError, match="named pipe"):  # and never blocks reading it
        load_video(fifo)
    with pytest.raises(VideoDecodeError, match="is a directory"):
        probe_video(tmp_path)
    with pytest.raises(VideoDecodeError, match="not a regular file"):
        probe_video("/dev/zero")
    link = tmp_path / "dangling.mp4"
    link.symlink_to(tmp_path / "gone.mp4")
    with pytest.raises(VideoDecodeError, match="file not found") as caught:
        probe_video(link)
    assert caught.value.path == str(link) and caught.value.problem == "file not found"


def test_decode_errors_survive_pickling_for_worker_processes(tmp_path):
    import pickle

    from facetrack.video.probe import VideoTruncatedError

    error = pickle.loads(pickle.dumps(VideoTruncatedError("the file is truncated: ...", tmp_path / "a.mp4")))
    assert isinstance(error, VideoTruncatedError) and error.path == str(tmp_path / "a.mp4")
    assert str(error) == f"{tmp_path / 'a.mp4'}: the file is truncated: ..."
    from facetrack.video.probe import VideoTooLargeError

    error = pickle.loads(pickle.dumps(VideoTooLargeError("too large", "b.mp4", width=8192, height=8192, limit=5)))
    assert (error.width, error.height, error.limit, str(error)) == (8192, 8192, 5, "b.mp4: too large")
