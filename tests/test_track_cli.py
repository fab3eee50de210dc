"""`facetrack track`: outputs on a real clip, and one clear line + exit code 2 for every kind of bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from facetrack.analysis.video_analysis import read_face_track
from facetrack.commands.cli import main
from facetrack.expressions.models import missing_expression_dependencies
from video_files import encode_video


@pytest.mark.parametrize(
    "case", ["missing", "zero_bytes", "text_renamed", "truncated", "corrupt", "zero_frames", "unknown_codec"]
)
def test_bad_video_exits_2_with_one_line(bad_files, case, capsys):
    path, expected = bad_files[case]
    assert main(["track", str(path), "--frames", "4"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("facetrack track: error: ") and str(path) in lines[0] and expected in lines[0]
    assert "Traceback" not in captured.err + captured.out


def test_bad_arguments_exit_2(media_dir, capsys):
    assert main(["track", str(media_dir / "single_face.mp4"), "--frames", "0"]) == 2
    assert "--frames" in capsys.readouterr().err
    assert main(["track", str(media_dir / "single_face.mp4"), "--interpolate-gap", "-1"]) == 2
    assert "--interpolate-gap" in capsys.readouterr().err
    assert main(["track", str(media_dir / "single_face.mp4"), "--detector", "nope"]) == 2
    assert "unknown face detector" in capsys.readouterr().err


def test_corrupt_file_in_a_real_process_prints_one_line(bad_files):
    # Also catches noise that decord's bundled FFmpeg writes straight to the stderr file descriptor.
    path, _ = bad_files["corrupt"]
    process = subprocess.run([sys.executable, "-m", "facetrack", "track", str(path)], capture_output=True,
                             text=True, timeout=120)
    assert process.returncode == 2
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0], process.stderr


def test_track_writes_json_overlay_and_crops(media_dir, tmp_path, capsys):
    out, render, crops = tmp_path / "track.json", tmp_path / "overlay.mp4", tmp_path / "crops"
    code = main(["track", str(media_dir / "single_face.mp4"), "--frames", "8", "--out", str(out),
                 "--render", str(render), "--crops", str(crops), "--crop-size", "64"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "main character: person" in printed
    result = read_face_track(json.loads(out.read_text()))
    strip = "".join("M" if present else "." for present in result.present)
    assert f"main face per frame: {strip}" in printed
    assert len(result.frames) == 8 and result.present.sum() >= 7
    with av.open(str(render)) as container:  # H.264 / yuv420p in mp4: what browsers play
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    assert len(frames) == 8 and frames[0].shape == (360, 640, 3)
    # The main box is drawn in green on the overlay, around the tracked face.
    x1, y1, x2, y2 = (int(v) for v in result.frames[0].box)
    edge = frames[0][y1 + 1 : y2 - 1, x1 - 1 : x1 + 2].reshape(-1, 3).astype(int)
    assert (edge[:, 1] > edge[:, 0] + 60).mean() > 0.8
    written = sorted(crops.glob("*.png"))
    assert len(written) == int(result.present.sum())
    # The expressions of the followed person are measured by default and stored in the JSON (format version 3).
    data = json.loads(out.read_text())
    assert data["version"] == 3
    if not missing_expression_dependencies():
        report = result.expression_report
        assert report.person_id == result.person_id and len(report.timeline) == 8
        assert [frame.box for frame in report.timeline.frames] == result.boxes
        assert f"expressions of person {result.person_id}: measured in {int(report.timeline.measured.sum())}/8" in printed
        assert report.caption in printed and report.caption.startswith("Measured description")


def test_no_expressions_skips_them(media_dir, tmp_path, capsys, monkeypatch):
    import facetrack.expressions.measure as expressions

    def no_models(*args, **kwargs):
        raise AssertionError("--no-expressions loaded the expression models")

    monkeypatch.setattr(expressions.ExpressionAnalyzer, "__init__", no_models)
    out = tmp_path / "track.json"
    assert main(["track", str(media_dir / "single_face.mp4"), "--frames", "4", "--no-expressions",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Measured description" not in printed and "expressions of person" not in printed
    assert json.loads(out.read_text())["expressions"] == {}


BLOCK_EXPRESSION_PACKAGES = """
import sys
sys.modules["mediapipe"] = None      # as on a machine without the optional expression packages
sys.modules["ai_edge_litert"] = None
from facetrack.commands.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def run_without_expression_packages(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_EXPRESSION_PACKAGES, *argv], capture_output=True, text=True,
                          timeout=180)


def test_without_the_expression_packages_track_works_and_says_what_to_install(media_dir, tmp_path):
    out = tmp_path / "track.json"
    done = run_without_expression_packages("track", str(media_dir / "single_face.mp4"), "--frames", "4",
                                           "--out", str(out))
    assert done.returncode == 0, done.stderr
    notes = [line for line in (done.stdout + done.stderr).splitlines() if "install" in line]
    assert len(notes) == 1 and notes[0].startswith("note: expressions skipped: the expression timeline needs")
    assert "mediapipe==1.2.3" in notes[0] and "pip install" in notes[0]
    assert "Traceback" not in done.stderr
    track = json.loads(out.read_text())
    assert track["expressions"] == {} and sum(frame["box"] is not None for frame in track["frames"]) >= 3
    # describe without --model has nothing else to give: one error line naming the install step, exit code 2.
    described = run_without_expression_packages("describe", str(media_dir / "single_face.mp4"))
    assert described.returncode == 2 and described.stdout == ""
    lines = described.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facetrack describe: error: the expression timeline needs")
    assert "pip install" in lines[0]


def test_video_without_faces_is_a_normal_result(media_dir, tmp_path, capsys):
    assert main(["track", str(media_dir / "no_face.mp4"), "--frames", "4", "--out", str(tmp_path / "t.json")]) == 0
    assert "no main character" in capsys.readouterr().out
    assert json.loads((tmp_path / "t.json").read_text())["main_person_id"] is None


def test_render_overlay_for_the_demo(media_dir, tmp_path):
    from facetrack.analysis.overlay import annotate_frames, render_overlay

    result, path = render_overlay(media_dir / "single_face.mp4", tmp_path / "demo.mp4", num_frames=4)
    assert path.exists() and result.main_person_id is not None
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 4
    frames = np.zeros((4, 360, 640, 3), dtype=np.uint8)
    annotated = annotate_frames(frames, result)
    assert annotated.shape == frames.shape and annotated.any() and not frames.any()  # drawn on copies
    with pytest.raises(ValueError):
        annotate_frames(frames[:2], result)


def test_write_video_pads_odd_sizes_for_h264(tmp_path):
    from facetrack.analysis.overlay import write_video

    frames = np.full((3, 33, 47, 3), 200, dtype=np.uint8)
    path = write_video(frames, tmp_path / "odd.mp4", fps=5)
    with av.open(str(path)) as container:
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(decoded) == 3 and decoded[0].shape == (34, 48, 3)
    assert abs(float(decoded[0][:33, :47].mean()) - 200) < 3


# ------------------------------------------------------------------ inputs users really send (issue 14)
@pytest.fixture(scope="module")
def unusual_inputs(tmp_path_factory, media_dir, huge_video) -> dict[str, tuple[Path, str]]:
    """name: (path, words the one-line error must contain)."""
    import os

    folder = tmp_path_factory.mktemp("unusual")
    os.mkfifo(folder / "pipe.mp4")
    (folder / "a_folder.mp4").mkdir()
    with av.open(str(media_dir / "single_face.mp4")) as source, \
            av.open(str(folder / "faststart.mp4"), "w", options={"movflags": "+faststart"}) as target:
        stream = target.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                target.mux(packet)
    with av.open(str(folder / "faststart.mp4")) as container:
        ends = [p.pos + p.size for p in container.demux(container.streams.video[0]) if p.size]
    (folder / "cut.mp4").write_bytes((folder / "faststart.mp4").read_bytes()[: ends[6]])  # 7 of 72 frames
    return {
        "fifo": (folder / "pipe.mp4", "named pipe"),
        "directory": (folder / "a_folder.mp4", "is a directory"),
        "truncated_faststart": (folder / "cut.mp4", "truncated: its header lists 72 frames but the data ends after 7"),
        "huge_frames": (huge_video, "8192x8192 (67.1 megapixels), over the limit"),
        "missing": (folder / "nothing.mp4", "file not found"),
    }


@pytest.mark.parametrize("case", ["fifo", "directory", "truncated_faststart", "huge_frames", "missing"])
def test_track_refuses_unusual_inputs_in_one_line(unusual_inputs, case, capsys):
    path, expected = unusual_inputs[case]
    assert main(["track", str(path), "--frames", "4"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and expected in lines[0], lines


@pytest.mark.parametrize("case", ["fifo", "directory", "truncated_faststart", "huge_frames", "missing"])
def test_describe_checks_the_video_before_loading_the_model(unusual_inputs, case, capsys, monkeypatch):
    import facetrack.inference.captioner

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the video was checked")

    monkeypatch.setattr(facetrack.inference.captioner, "load_captioner", no_model)
    path, expected = unusual_inputs[case]
    assert main(["describe", str(path), "--model", "some/model"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facetrack describe: error: ") and expected in lines[0], lines


def test_track_reads_a_raw_h264_stream(tmp_path, capsys):
    path = tmp_path / "camera.h264"
    encode_video(path, np.zeros((12, 64, 64, 3), np.uint8), container_format="h264")
    assert main(["track", str(path), "--frames", "4"]) == 0
    assert f"{path}: 4 frames sampled (64x64, 1.2 s" in capsys.readouterr().out


def test_large_video_is_tracked_shrunk_and_reported_in_its_own_pixels(tmp_path, capsys):
    """Frames over 1920 px are decoded shrunk; the JSON's boxes, width and height are in the video's pixels."""
    from facetrack.data.sample_media import write_astronaut_clip

    path = write_astronaut_clip(tmp_path / "wide.mp4", motion="zoom_in", num_frames=3, fps=3, width=2560,
                                height=1440)
    assert main(["track", str(path), "--frames", "3", "--out", str(tmp_path / "t.json"),
                 "--render", str(tmp_path / "overlay.mp4")]) == 0
    assert "3 frames sampled (2560x1440" in capsys.readouterr().out
    track = json.loads((tmp_path / "t.json").read_text())
    assert (track["width"], track["height"]) == (2560, 1440)
    boxes = [frame["box"] for frame in track["frames"]]
    assert all(box is not None for box in boxes)
    # The astronaut's face is left of centre, in the upper half, and large in 2560 x 1440 pixels.
    x1, y1, x2, y2 = boxes[-1]
    assert 600 < (x1 + x2) / 2 < 1800 and 100 < (y1 + y2) / 2 < 900 and x2 - x1 > 300
    with av.open(str(tmp_path / "overlay.mp4")) as container:
        assert container.streams.video[0].width == 1920  # drawn on the shrunk frames
    # The measured expressions' boxes are in the video's pixels too.
    for report in track["expressions"].values():
        assert [frame["box"] for frame in report["timeline"]["frames"]] == boxes
    # A --person-box is read in the video's own pixels as well: the face's box found in the JSON picks it exactly.
    time = track["frames"][-1]["timestamp"]
    assert main(["track", str(path), "--frames", "3", "--no-expressions",
                 "--person-box", f"{x1:g},{y1:g},{x2:g},{y2:g}@{time:g}"]) == 0
    reason = capsys.readouterr().out
    assert f"person 1 is the face at box {x1:g},{y1:g},{x2:g},{y2:g} at {time:g} s" in reason
    assert "IoU 1.00" in reason


# ------------------------------------------------------------------------- what is asked for (issue 23)
@pytest.mark.parametrize("arguments,expected", [
    (["--fps", "inf"], "--fps must be a finite number of frames per second > 0, got inf"),
    (["--fps", "nan"], "--fps must be a finite number of frames per second > 0, got nan"),
    (["--fps", "0"], "--fps must be a finite number"),
    (["--fps", "-2"], "--fps must be a finite number"),
    (["--frames", "-3"], "--frames must be at least 1, got -3"),
    (["--frames", "100000"], "100000 frames asked for, over the limit of 4096 decoded frames"),
    (["--frames", "6000"], "raise the limit with FACETRACK_MAX_VIDEO_FRAMES"),
])
def test_numbers_out_of_bounds_exit_2_with_one_line(media_dir, capsys, arguments, expected):
    # --fps inf was "Maximum allowed size exceeded"; --frames 100000 a numpy traceback; 6000 took 4.2 GB.
    assert main(["track", str(media_dir / "single_face.mp4"), *arguments]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facetrack track: error: ") and expected in lines[0], lines
    assert "Traceback" not in captured.err + captured.out


def test_fps_above_the_source_rate_is_capped_by_frames(media_dir, capsys):
    # --fps 1e9 --frames 8 on a 2.4 s clip was killed at 23.5 GB.
    assert main(["track", str(media_dir / "single_face.mp4"), "--fps", "1e9", "--frames", "8",
                 "--no-expressions"]) == 0
    assert "8 frames sampled (640x360, 2.4 s" in capsys.readouterr().out


def test_track_reads_an_mkv_at_one_frame_per_second(tmp_path, capsys):
    # H.264 in mkv at 1 fps without B-frames was "truncated: its header says 10.00 s but the data ends after 0.00 s".
    from video_files import ffmpeg_encode

    path = ffmpeg_encode(tmp_path / "slow.mkv", np.zeros((10, 64, 64, 3), np.uint8), "1")
    assert main(["track", str(path), "--frames", "4", "--no-expressions"]) == 0
    assert f"{path}: 4 frames sampled (64x64, 10.0 s" in capsys.readouterr().out


def test_describe_refuses_a_token_budget_below_1(media_dir, capsys):
    assert main(["describe", str(media_dir / "single_face.mp4"), "--max-new-tokens", "0"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["facetrack describe: error: --max-new-tokens must be at least 1, got 0"]


# ------------------------------------------------------------- what users of py-feat expect (issue 24)
needs_models = pytest.mark.skipif(bool(missing_expression_dependencies()),
                                  reason=f"expression models not installed: {missing_expression_dependencies()}")


def test_track_a_group_photo_finds_its_five_people(media_dir, tmp_path, capsys):
    out = tmp_path / "photo.json"
    assert main(["track", str(media_dir / "multi_face.jpg"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "multi_face.jpg: a still image (1000x667" in printed and "5 person(s) in 1 frames" in printed
    track = read_face_track(json.loads(out.read_text()))
    assert len(track.frames) == 1 and len(track.persons) == 5 and track.main_person_id is not None
    faces = next(line for line in printed.splitlines() if line.startswith("faces: "))
    assert faces.count("person ") == 5 and f"person {track.main_person_id} (main) at " in faces
    assert "face per frame" not in printed  # a strip of one character says nothing
    if not missing_expression_dependencies():
        assert f"expressions of person {track.main_person_id}: measured in 1/1 frames" in printed
        assert "This image shows the facial expression of the person:" in printed


@needs_models
def test_each_person_of_a_photo_goes_into_one_table(media_dir, tmp_path, capsys):
    table_path = tmp_path / "faces.parquet"
    assert main(["track", str(media_dir / "multi_face.jpg"), "--each-person", "--csv", str(table_path)]) == 0
    printed = capsys.readouterr().out
    assert sum(line.startswith("expressions of person ") for line in printed.splitlines()) == 5
    import pandas as pd

    table = pd.read_parquet(table_path)
    assert sorted(table["person_id"]) == [1, 2, 3, 4, 5] and table["face_found"].all()
    assert f"wrote {table_path} (5 rows" in printed


@needs_models
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_csv_has_one_row_per_sampled_frame(media_dir, tmp_path, capsys, suffix):
    import pandas as pd

    table_path, out = tmp_path / f"t{suffix}", tmp_path / "t.json"
    assert main(["track", str(media_dir / "WolfgangLanger_Pexels.mp4"), "--frames", "16", "--csv", str(table_path),
                 "--out", str(out)]) == 0
    assert f"wrote {table_path} (16 rows" in capsys.readouterr().out
    table = pd.read_csv(table_path) if suffix == ".csv" else pd.read_parquet(table_path)
    assert len(table) == 16
    for column in ("time", "frame_index", "mouthSmileLeft", "mouthSmileRight", "yaw", "emotion_happy",
                   "emotion_sad", "grimace", "emotion"):
        assert column in table.columns, column
    timeline = read_face_track(json.loads(out.read_text())).expression_report.timeline
    np.testing.assert_allclose(table["time"], timeline.timestamps)
    np.testing.assert_allclose(table["mouthSmileLeft"], timeline.signal("blendshape:mouthSmileLeft"))
    np.testing.assert_allclose(table["yaw"], timeline.signal("yaw"))
    assert table.loc[table["time"] < 5, "grimace"].astype(bool).any()  # the crying reads as a smile: not believed
    assert "happy" not in set(table.loc[table["time"] < 5, "emotion"].dropna())
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]  # no staging file left


@pytest.mark.parametrize("arguments,expected", [
    (["--csv", "table.xlsx"], "--csv table.xlsx: the file name must end in .csv or .parquet"),
    (["--csv", "t.csv", "--no-expressions"], "--csv writes the measured expressions: it cannot be combined"),
    (["--each-person", "--person", "1"], "--each-person measures everyone"),
    (["--each-person", "--min-share", "2"], "--min-share must be between 0 and 1, got 2.0"),
])
def test_table_options_refused_in_one_line(media_dir, capsys, arguments, expected):
    assert main(["track", str(media_dir / "single_face.mp4"), *arguments]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines


def test_the_strip_of_a_chosen_person_is_not_called_main(media_dir, tmp_path, capsys):
    """The per-frame strip printed M (main) for a chosen person who is not the main character."""
    from PIL import Image

    photo = np.asarray(Image.open(media_dir / "multi_face.jpg").convert("RGB"))[:666, :1000]
    path = encode_video(tmp_path / "group.mp4", np.stack([photo] * 4))
    assert main(["track", str(path), "--frames", "4", "--no-expressions"]) == 0
    printed = capsys.readouterr().out
    assert "main face per frame: MMMM" in printed
    main_id = int(printed.split("main character: person ")[1].split(",")[0])
    other = 1 if main_id != 1 else 2
    assert main(["track", str(path), "--frames", "4", "--no-expressions", "--person", str(other)]) == 0
    printed = capsys.readouterr().out
    assert f"chosen (person {other}) face per frame: CCCC" in printed and "MMMM" not in printed


@pytest.mark.parametrize("argv, expected", [
    (["track", "clip.mp4", "--frames", "abc"], "facetrack track: error: argument --frames: invalid int value: 'abc'"),
    (["dataset", "build", "--videos", "v"], "facetrack dataset build: error: the following arguments are required: "
                                             "--out"),
    (["nosuch"], "facetrack: error: argument COMMAND: invalid choice: 'nosuch'"),
])
def test_a_bad_argument_is_one_line_not_the_whole_usage(argv, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and err[0].startswith(expected), err
    assert err[0].endswith("--help`)")
