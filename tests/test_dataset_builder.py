"""The `datasets` release: build from real clips + a generated one + a missing and a corrupt one, read it back with
`load_dataset`, check the card, the report, the precomputed face tracks, bad input and the (monkeypatched) upload.

(One file for the release because its fixtures - a built dataset from real clips - take most of a minute to
build and are shared by every test here.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from facetrack.analysis.video_analysis import read_face_track
from facetrack.data import build as dataset_builder
from facetrack.data.build import DatasetBuildError, build_dataset, read_annotations
from facetrack.data.sample_media import write_astronaut_clip
from facetrack.data.schema import (
    FEC_BENCH_PROMPT,
    INSTRUCTION_TEMPLATES,
    instruction_for,
)
from facetrack.expressions.models import missing_expression_dependencies
from facetrack.training.data import load_built_dataset, load_example_video

NUM_FRAMES = 4  # frames tracked per clip: small keeps the test fast


def write_zoom_clip(path: Path, num_frames: int = 20, size: int = 256) -> Path:
    """A synthetic clip: the astronaut photo (one face) with a slow zoom."""
    return write_astronaut_clip(path, motion="zoom_in", num_frames=num_frames, fps=10, width=size, height=size)


def make_video_root(media_dir: Path, root: Path) -> list[dict]:
    """A video root shaped like the real one (sub-folders per source dataset) and its annotations."""
    (root / "pexels").mkdir(parents=True)
    (root / "synthetic").mkdir()
    shutil.copy(media_dir / "single_face.mp4", root / "pexels" / "single_face.mp4")
    shutil.copy(media_dir / "WolfgangLanger_Pexels.mp4", root / "pexels" / "WolfgangLanger_Pexels.mp4")
    shutil.copy(media_dir / "no_face.mp4", root / "pexels" / "no_face.mp4")
    write_zoom_clip(root / "synthetic" / "astronaut_zoom.mp4")
    (root / "synthetic" / "corrupt.mp4").write_bytes(b"this is not a video" * 100)
    return [
        {"id": 0, "video": "pexels/single_face.mp4", "caption": "A man looks at the camera and smiles slightly."},
        {"id": 1, "video": "pexels/WolfgangLanger_Pexels.mp4", "caption": "A woman frowns, then laughs."},
        {"id": 2, "video": "pexels/no_face.mp4", "caption": "There is no person in this clip."},
        {"id": 3, "video": "synthetic/astronaut_zoom.mp4", "caption": "An astronaut smiles as the camera zooms in."},
        {"id": 4, "video": "missing/gone.mp4", "caption": "This video was never downloaded."},
        {"id": 5, "video": "synthetic/corrupt.mp4", "caption": "This file is broken."},
    ]


@pytest.fixture(scope="module")
def built(media_dir, tmp_path_factory):
    """One build shared by the read-back tests (the face tracking is the slow part)."""
    work = tmp_path_factory.mktemp("dataset")
    annotations = make_video_root(media_dir, work / "videos")
    annotations_path = work / "train.json"
    annotations_path.write_text(json.dumps(annotations))
    out_dir = work / "built"
    report = build_dataset(annotations_path, work / "videos", out_dir, split="train", num_frames=NUM_FRAMES)
    return {"work": work, "annotations": annotations, "out_dir": out_dir, "report": report}


def test_build_report_lists_dropped_and_faceless_items(built):
    report = json.loads((built["out_dir"] / "build_report.json").read_text())["train"]
    assert report["num_input"] == 6
    assert report["num_written"] == 4
    dropped = {entry["id"]: entry for entry in report["dropped"]}
    assert set(dropped) == {"4", "5"}
    assert dropped["4"]["status"] == "missing" and "gone.mp4" in dropped["4"]["reason"]
    assert dropped["5"]["status"] == "unreadable"
    assert [entry["id"] for entry in report["no_face"]] == ["2"]


def test_load_dataset_reads_back_rows_tracks_and_videos(built):
    from datasets import Video, load_dataset

    from facetrack.video.decode import load_video

    dataset_dict = load_dataset(str(built["out_dir"]))
    assert list(dataset_dict) == ["train"]
    dataset = dataset_dict["train"]
    assert isinstance(dataset.features["video"], Video)
    dataset = dataset.cast_column("video", Video(decode=False))

    with_expressions = not missing_expression_dependencies()
    report = json.loads((built["out_dir"] / "build_report.json").read_text())["train"]
    assert report["expressions"].startswith("the main character's" if with_expressions else "not measured")
    kept = [item for item in built["annotations"] if item["id"] in (0, 1, 2, 3)]
    assert dataset["id"] == [str(item["id"]) for item in kept]
    assert dataset["caption"] == [item["caption"] for item in kept]
    assert dataset["has_face"] == [True, True, False, True]

    video_root = built["work"] / "videos"
    for row, item in zip(dataset, kept):
        # The embedded bytes are the source file, byte for byte.
        assert row["video"]["path"] == item["video"]
        assert row["video"]["bytes"] == (video_root / item["video"]).read_bytes()
        assert row["instruction"] == instruction_for(row["id"])
        assert row["messages"][0]["role"] == "user"
        assert [part["type"] for part in row["messages"][0]["content"]] == ["video", "text"]
        assert row["messages"][0]["content"][1]["text"] == row["instruction"]
        assert row["messages"][1] == {"role": "assistant", "content": [{"type": "text", "text": item["caption"]}]}
        # An annotation's caption is a human one, for the whole video.
        assert (row["caption_source"], row["source_video"], row["clip_start"], row["clip_end"]) == (
            "human", item["video"], None, None)

        track = read_face_track(json.loads(row["face_track"]))
        assert len(track.frames) == NUM_FRAMES
        assert bool(track.present.any()) == row["has_face"]

        # Decoding the embedded video at the track's frames gives the same pixels as the source file.
        clip, loaded_track = load_example_video(row["video"], row["face_track"])
        expected = load_video(str(video_root / item["video"]), frame_indices=[f.frame_index for f in track.frames])
        assert clip.frames.shape == expected.frames.shape
        assert np.array_equal(clip.frames, expected.frames)
        assert [f.box for f in loaded_track.frames] == [f.box for f in track.frames]

        # The main character's measured expressions are stored with the track: analysis never reruns the models.
        if with_expressions and row["has_face"]:
            report = track.expression_report
            assert report.person_id == track.person_id == track.main_person_id
            assert len(report.timeline) == NUM_FRAMES and report.caption.startswith("Measured description")
            assert [frame.box for frame in report.timeline.frames] == track.boxes
        elif not row["has_face"]:
            assert track.expressions == {}

    # Fewer frames than tracked: a uniform subset of the track; more: a clear error.
    row = dataset[0]
    clip, track = load_example_video(row["video"], row["face_track"], num_frames=2)
    assert len(clip.frames) == len(track.frames) == 2
    if with_expressions:  # the kept frames' measurements (events and caption re-derived from them)
        assert [frame.frame_index for frame in track.expression_report.timeline.frames] == track.frame_indices
    with pytest.raises(DatasetBuildError, match="rebuild"):
        load_example_video(row["video"], row["face_track"], num_frames=NUM_FRAMES + 1)


def test_main_face_is_on_the_face(built):
    """The single-face clip's main track covers most frames with boxes inside the image."""

    rows = load_built_dataset(built["out_dir"], split="train")
    track = read_face_track(json.loads(rows[0]["face_track"]))
    boxes = [frame.box for frame in track.frames if frame.box is not None]
    assert len(boxes) >= NUM_FRAMES - 1
    for x1, y1, x2, y2 in boxes:
        assert 0 <= x1 < x2 <= track.width and 0 <= y1 < y2 <= track.height


def test_dataset_card_yaml(built):
    import yaml

    text = (built["out_dir"] / "README.md").read_text()
    assert text.startswith("---\n")
    metadata = yaml.safe_load(text.split("---\n")[1])
    assert metadata["license"] == "other"
    # The exact shard files of the live build, which build_report.json names too.
    shards = json.loads((built["out_dir"] / "build_report.json").read_text())["train"]["shards"]
    assert metadata["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": shards}]}]
    assert len(shards) == 1 and shards[0].startswith("data/train-") and shards[0].endswith("-00000-of-00001.parquet")
    feature_names = [feature["name"] for feature in metadata["dataset_info"]["features"]]
    assert feature_names == ["id", "video", "caption", "instruction", "messages", "face_track", "has_face",
                             "caption_source", "source_video", "clip_start", "clip_end"]
    video_feature = metadata["dataset_info"]["features"][1]
    assert video_feature["dtype"] == "video"
    [split_info] = metadata["dataset_info"]["splits"]
    assert split_info["name"] == "train" and split_info["num_examples"] == 4 and split_info["num_bytes"] > 0
    assert FEC_BENCH_PROMPT in text


def test_second_split_is_added_beside_the_first(built, tmp_path):
    """Building another split into the same folder keeps the first and lists both in the card."""
    from datasets import load_dataset

    out_dir = tmp_path / "two_splits"
    shutil.copytree(built["out_dir"], out_dir)
    test_annotations = tmp_path / "test.json"
    test_annotations.write_text(
        json.dumps([{"id": "t0", "video": "synthetic/astronaut_zoom.mp4", "caption": "Held-out caption."}])
    )
    build_dataset(test_annotations, built["work"] / "videos", out_dir, split="test", num_frames=2)
    dataset_dict = load_dataset(str(out_dir))
    assert sorted(dataset_dict) == ["test", "train"]
    assert dataset_dict["test"]["id"] == ["t0"] and dataset_dict["train"].num_rows == 4
    assert sorted(json.loads((out_dir / "build_report.json").read_text())) == ["test", "train"]


def test_instruction_prompts_are_deterministic_and_varied():
    assert INSTRUCTION_TEMPLATES[0] == FEC_BENCH_PROMPT
    ids = [str(i) for i in range(200)]
    assert [instruction_for(i) for i in ids] == [instruction_for(i) for i in ids]
    used = {instruction_for(i) for i in ids}
    assert used == set(INSTRUCTION_TEMPLATES)  # 200 ids reach every template


# ------------------------------------------------------------------------------------------------------ bad input
@pytest.fixture
def no_tracking(monkeypatch):
    """Bad input must fail before any decoding or detection starts."""

    def fail(*args, **kwargs):
        raise AssertionError("face tracking started on bad input")

    monkeypatch.setattr(dataset_builder, "_track_all", fail)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"id": 0, "video": "a.mp4", "caption": "x"}, "must hold a JSON list"),
        ([{"id": 0, "video": "a.mp4"}], "caption"),
        ([{"id": 0, "caption": "x"}], "video"),
        ([{"id": 0, "video": "a.mp4", "caption": "x"}, {"id": 0, "video": "b.mp4", "caption": "y"}], "repeats id"),
        ([], "empty list"),
        (["a.mp4"], "not an object"),
    ],
)
def test_bad_annotations_fail_before_tracking(tmp_path, no_tracking, content, message):
    annotations_path = tmp_path / "annotations.json"
    annotations_path.write_text(json.dumps(content))
    with pytest.raises(DatasetBuildError, match=message):
        build_dataset(annotations_path, tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_paths_fail_before_tracking(tmp_path, no_tracking):
    annotations_path = tmp_path / "annotations.json"
    annotations_path.write_text(json.dumps([{"id": 0, "video": "a.mp4", "caption": "x"}]))
    with pytest.raises(DatasetBuildError, match="video root does not exist"):
        build_dataset(annotations_path, tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(DatasetBuildError, match="annotation file not found"):
        build_dataset(tmp_path / "nothing.json", tmp_path, tmp_path / "out")
    (tmp_path / "broken.json").write_text("[{")
    with pytest.raises(DatasetBuildError, match="not valid JSON"):
        build_dataset(tmp_path / "broken.json", tmp_path, tmp_path / "out")


def test_fec_bench_annotations_validate(fec_bench_annotations):
    items = read_annotations(fec_bench_annotations)
    raw = json.loads(fec_bench_annotations.read_text())
    assert len(items) == len(raw) >= 8  # (800 in the real FEC-Bench file)
    assert len({item.id for item in items}) == len(raw)
    assert all(item.caption == entry["caption"].strip() for item, entry in zip(items, raw))


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys, no_tracking):
    from facetrack.commands.cli import main

    annotations_path = tmp_path / "annotations.json"
    annotations_path.write_text(json.dumps({"not": "a list"}))
    code = main(
        ["dataset", "build", str(annotations_path), "--video-root", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert code == 2
    error_lines = capsys.readouterr().err.strip().splitlines()
    assert len(error_lines) == 1 and "must hold a JSON list" in error_lines[0]


def test_cli_build_then_push(tmp_path, capsys, monkeypatch):
    """`facetrack dataset build ... --push REPO` builds, prints a summary and uploads (upload monkeypatched)."""
    from facetrack.commands.cli import main

    (tmp_path / "videos").mkdir()
    write_zoom_clip(tmp_path / "videos" / "zoom.mp4", num_frames=6)
    (tmp_path / "a.json").write_text(json.dumps([
        {"id": "z", "video": "zoom.mp4", "caption": "An astronaut smiles."},
        {"id": "m", "video": "missing.mp4", "caption": "Gone."},
    ]))
    pushed = []

    def fake_push(out_dir, repo_id, private=False):
        pushed.append((out_dir, repo_id, private))
        return f"https://huggingface.co/datasets/{repo_id}"

    monkeypatch.setattr(dataset_builder, "push_dataset", fake_push)
    code = main(["dataset", "build", str(tmp_path / "a.json"), "--video-root", str(tmp_path / "videos"),
                 "--out", str(tmp_path / "out"), "--num-frames", "2", "--split", "test", "--push", "me/faces",
                 "--no-expressions"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "test: 1/2 rows written" in printed and "expressions: not measured (--no-expressions)" in printed
    row = load_built_dataset(tmp_path / "out", split="test")[0]
    assert json.loads(row["face_track"])["expressions"] == {}
    assert pushed == [(str(tmp_path / "out"), "me/faces", False)]
    assert len(list((tmp_path / "out" / "data").glob("test-*-00000-of-00001.parquet"))) == 1


def test_push_uploads_the_folder(built, monkeypatch):
    import huggingface_hub

    calls = []

    class RecordingApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs))

    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    url = dataset_builder.push_dataset(built["out_dir"], "someone/fda-faces", private=True)
    assert url == "https://huggingface.co/datasets/someone/fda-faces"
    assert calls[1] == ("create_repo", "someone/fda-faces", {"repo_type": "dataset", "private": True, "exist_ok": True})
    upload = calls[2][1]
    assert upload["repo_type"] == "dataset" and upload["folder_path"] == str(built["out_dir"])
    report = json.loads((built["out_dir"] / "build_report.json").read_text())
    assert upload["allow_patterns"] == ["README.md", "build_report.json", *report["train"]["shards"]]
    assert upload["delete_patterns"] == ["data/*.parquet"]  # earlier builds' shards leave the Hub repo


def test_push_refuses_a_folder_that_was_not_built(tmp_path):
    with pytest.raises(DatasetBuildError, match="not a built dataset folder"):
        dataset_builder.push_dataset(tmp_path, "someone/x")


# ------------------------------------------------------------------------------------------------- video root
def test_videos_outside_the_root_are_never_read_nor_released(tmp_path, media_dir, monkeypatch):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "clips").mkdir(parents=True)
    outside.mkdir()
    write_zoom_clip(root / "clips" / "inside.mp4", num_frames=6, size=128)
    shutil.copy(media_dir / "single_face.mp4", outside / "x.mp4")
    (root / "clips" / "link_out.mp4").symlink_to(outside / "x.mp4")  # a symlink leaving the root
    (root / "clips" / "link_in.mp4").symlink_to(root / "clips" / "inside.mp4")  # one staying inside: fine
    annotations = [
        {"id": "in", "video": "clips/inside.mp4", "caption": "Inside."},
        {"id": "dotdot", "video": "../outside/x.mp4", "caption": "Escapes with '..'."},
        {"id": "abs", "video": str(outside / "x.mp4"), "caption": "Absolute."},
        {"id": "passwd", "video": "/etc/passwd", "caption": "A system file."},
        {"id": "link", "video": "clips/link_out.mp4", "caption": "A symlink out."},
        {"id": "inner_link", "video": "clips/link_in.mp4", "caption": "A symlink inside."},
        {"id": "deep", "video": "clips/../clips/../../outside/x.mp4", "caption": "Climbs out."},
    ]
    (tmp_path / "a.json").write_text(json.dumps(annotations))
    opened = []
    original = dataset_builder._track_all

    def recording(video_paths, **kwargs):
        opened.extend(path for path, _ in video_paths)
        return original(video_paths, **kwargs)

    monkeypatch.setattr(dataset_builder, "_track_all", recording)
    out_dir = tmp_path / "release"
    report = build_dataset(tmp_path / "a.json", root, out_dir, num_frames=2)

    assert sorted(opened) == sorted([str((root / "clips" / "inside.mp4").resolve())] * 2)  # nothing else opened
    dropped = {entry["id"]: entry for entry in report.dropped}
    assert set(dropped) == {"dotdot", "abs", "passwd", "link", "deep"}
    assert {entry["status"] for entry in dropped.values()} == {"outside_root"}
    assert "absolute path" in dropped["abs"]["reason"] and "leaves the video root" in dropped["link"]["reason"]
    # No absolute local path anywhere in the release: not in a shard, the card or the report.
    for file in out_dir.rglob("*"):
        if file.is_file():
            data = file.read_bytes()
            assert str(tmp_path).encode() not in data and b"/etc/passwd" not in data, file
    from datasets import Video, load_dataset

    rows = load_dataset(str(out_dir), split="train").cast_column("video", Video(decode=False))
    assert rows["id"] == ["in", "inner_link"]
    assert [row["video"]["path"] for row in rows] == ["clips/inside.mp4", "clips/link_in.mp4"]
    assert rows[0]["video"]["bytes"] == (root / "clips" / "inside.mp4").read_bytes()


def test_unreadable_and_truncated_videos_are_dropped_with_their_relative_path_only(tmp_path, media_dir):
    import av

    root = tmp_path / "videos"
    root.mkdir()
    write_zoom_clip(root / "ok.mp4", num_frames=6, size=128)
    (root / "broken.mp4").write_bytes(b"not a video" * 50)
    # A download cut short: the index (moov, written first) lists 72 frames, the data holds 5.
    with av.open(str(media_dir / "single_face.mp4")) as source, \
            av.open(str(tmp_path / "faststart.mp4"), "w", options={"movflags": "+faststart"}) as target:
        stream = target.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                target.mux(packet)
    with av.open(str(tmp_path / "faststart.mp4")) as container:
        ends = [p.pos + p.size for p in container.demux(container.streams.video[0]) if p.size]
    (root / "cut.mp4").write_bytes((tmp_path / "faststart.mp4").read_bytes()[: ends[4]])
    (tmp_path / "a.json").write_text(json.dumps([
        {"id": "ok", "video": "ok.mp4", "caption": "Fine."},
        {"id": "bad", "video": "broken.mp4", "caption": "Broken."},
        {"id": "gone", "video": "sub/gone.mp4", "caption": "Missing."},
        {"id": "cut", "video": "cut.mp4", "caption": "Cut short."},
    ]))
    report = build_dataset(tmp_path / "a.json", root, tmp_path / "out", num_frames=2)
    reasons = {entry["id"]: entry["reason"] for entry in report.dropped}
    assert {entry["id"]: entry["status"] for entry in report.dropped} == {
        "bad": "unreadable", "gone": "missing", "cut": "unreadable"}
    assert reasons["bad"].startswith("broken.mp4: not a readable video") and str(tmp_path) not in reasons["bad"]
    assert reasons["gone"] == "video file not found: sub/gone.mp4"
    assert reasons["cut"].startswith("cut.mp4: the file is truncated: its header lists 72 frames but the data ends "
                                     "after 5")


def test_large_videos_are_tracked_shrunk_and_boxes_stored_in_their_own_pixels(tmp_path):
    """A 2560 x 1440 clip is decoded at 1920 x 1080 for tracking; the stored track is in 2560 x 1440 pixels and its
    face box is where a full-size tracking run puts it."""
    from facetrack.faces.tracking import FaceTracker
    from facetrack.video.decode import load_video

    root = tmp_path / "videos"
    root.mkdir()
    write_astronaut_clip(root / "big.mp4", motion="zoom_in", num_frames=4, fps=4, width=2560, height=1440)
    (tmp_path / "a.json").write_text(json.dumps([{"id": "big", "video": "big.mp4", "caption": "Large."}]))
    build_dataset(tmp_path / "a.json", root, tmp_path / "out", num_frames=2)
    row = load_built_dataset(tmp_path / "out", split="train")[0]
    track = json.loads(row["face_track"])
    assert (track["width"], track["height"]) == (2560, 1440)
    full = FaceTracker().track(load_video(root / "big.mp4", num_frames=2)).to_dict()
    for stored, reference in zip(track["frames"], full["frames"]):
        assert stored["box"] is not None and reference["box"] is not None
        assert np.abs(np.array(stored["box"]) - np.array(reference["box"])).max() < 20  # pixels of 2560 x 1440
    for report in track["expressions"].values():  # the expression timeline's boxes are in those pixels too
        assert [frame["box"] for frame in report["timeline"]["frames"]] == [frame["box"] for frame in track["frames"]]
    assert len(track["expressions"]) == (0 if missing_expression_dependencies() else 1)


# --------------------------------------------------------------------------------------------- crash recovery
KILL_SCRIPT = r"""
import json, os, signal, sys
from pathlib import Path
stage, annotations, root, out_dir = sys.argv[1:5]
from facetrack.data import build as dataset_builder, release as dataset_release

def die():
    os.kill(os.getpid(), signal.SIGKILL)

calls = {"n": 0}
if stage == "tracking":  # while tracking the second clip
    track_one = dataset_builder._track_one
    def killing(task):
        calls["n"] += 1
        if calls["n"] == 2:
            die()
        return track_one(task)
    dataset_builder._track_one = killing
elif stage == "shard":  # in the middle of writing the second shard file
    from datasets import Dataset
    to_parquet = Dataset.to_parquet
    def killing(self, path, *args, **kwargs):
        calls["n"] += 1
        result = to_parquet(self, path, *args, **kwargs)
        if calls["n"] == 2:
            data = Path(path).read_bytes()
            Path(path).write_bytes(data[: len(data) // 2])
            die()
        return result
    Dataset.to_parquet = killing
elif stage in ("staged", "card_swapped"):  # just before the README / the report is moved into place
    replace = os.replace
    target = "README.md" if stage == "staged" else "build_report.json"
    def killing(source, destination, *args, **kwargs):
        if Path(destination) == Path(out_dir) / target:
            die()
        return replace(source, destination, *args, **kwargs)
    os.replace = killing
elif stage == "report_swapped":  # both moved, the old shards not yet deleted
    remove = dataset_release._remove_unreferenced_shards
    def killing(folder):
        if any((Path(folder) / dataset_release.STAGING_DIRNAME).glob("*")):
            die()
        return remove(folder)
    dataset_release._remove_unreferenced_shards = killing
dataset_builder.build_dataset(annotations, root, out_dir, split="train", num_frames=2, max_shard_size="1KB")
print("NOT KILLED")
"""


def _release_state(out_dir: Path) -> dict:
    """Everything a release holds, with the build's own ids and file names taken out."""
    from datasets import Video, load_dataset

    from facetrack.data.release import split_files

    rows = load_dataset(str(out_dir), split="train").cast_column("video", Video(decode=False)).to_list()
    report = json.loads((out_dir / "build_report.json").read_text())["train"]
    files = split_files(out_dir)["train"]
    assert report["shards"] == files  # the report and the card describe the same build
    report = {key: value for key, value in report.items() if key not in ("shards", "build_id")}
    card = (out_dir / "README.md").read_text()
    for name in files:
        card = card.replace(name, "SHARD")
    leftovers = sorted(p.name for p in out_dir.rglob("*") if ".facetrack-staging" in str(p)) + sorted(
        p.name for p in (out_dir / "data").glob("*.parquet") if f"data/{p.name}" not in files)
    return {"rows": rows, "report": report, "card": card, "num_shards": len(files), "leftovers": leftovers}


@pytest.fixture(scope="module")
def crash_work(tmp_path_factory):
    """Three small clips; annotations v1 (two rows) and v2 (three rows, new captions); v2 built uninterrupted."""
    work = tmp_path_factory.mktemp("crash")
    (work / "videos").mkdir()
    for name, motion in (("a", "zoom_in"), ("b", "pan_left"), ("c", "zoom_out")):
        write_astronaut_clip(work / "videos" / f"{name}.mp4", motion=motion, num_frames=4, fps=4, width=96,
                             height=96)
    v1 = [{"id": n, "video": f"{n}.mp4", "caption": f"Version one of {n}."} for n in ("a", "b")]
    v2 = [{"id": n, "video": f"{n}.mp4", "caption": f"Version two of {n}."} for n in ("a", "b", "c")]
    (work / "v1.json").write_text(json.dumps(v1))
    (work / "v2.json").write_text(json.dumps(v2))
    build_dataset(work / "v1.json", work / "videos", work / "v1", num_frames=2, max_shard_size="1KB")
    build_dataset(work / "v2.json", work / "videos", work / "v2", num_frames=2, max_shard_size="1KB")
    return {"work": work, "v1": _release_state(work / "v1"), "v2": _release_state(work / "v2")}


@pytest.mark.parametrize(
    ("stage", "live_after_kill"),
    [("tracking", "v1"), ("shard", "v1"), ("staged", "v1"), ("card_swapped", "v2"), ("report_swapped", "v2")],
)
def test_kill_9_at_each_stage_of_a_rebuild_then_rerun(crash_work, tmp_path, monkeypatch, stage, live_after_kill):
    import subprocess
    import sys

    from datasets import load_dataset

    work = crash_work["work"]
    out_dir = tmp_path / "release"
    shutil.copytree(work / "v1", out_dir)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    assert load_dataset(str(out_dir), split="train")["caption"][0] == "Version one of a."  # a warm cache of v1

    process = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, stage, str(work / "v2.json"), str(work / "videos"), str(out_dir)],
        capture_output=True, text=True, timeout=300,
    )
    assert process.returncode == -9, process.stdout + process.stderr[-3000:]

    # Right after the kill, load_dataset (warm cache and all) sees one whole build: the old one, or the new one
    # once its card is in place. Never a few rows, never stale ones.
    expected = crash_work[live_after_kill]
    live = load_dataset(str(out_dir), split="train")
    assert live["caption"] == [row["caption"] for row in expected["rows"]]
    if stage != "card_swapped":  # killed between the two moves, the report lags until the next build
        assert _release_state(out_dir)["rows"] == expected["rows"]

    # The same build again: the result is the uninterrupted build's, with nothing left behind.
    build_dataset(work / "v2.json", work / "videos", out_dir, num_frames=2, max_shard_size="1KB")
    state = _release_state(out_dir)
    assert state == crash_work["v2"] and state["leftovers"] == [] and state["num_shards"] == 3
    assert load_dataset(str(out_dir), split="train")["caption"] == [f"Version two of {n}." for n in "abc"]


def test_a_second_build_into_the_same_folder_is_refused_while_one_runs(tmp_path):
    from facetrack.data.release import release_lock

    root = tmp_path / "videos"
    root.mkdir()
    write_zoom_clip(root / "a.mp4", num_frames=4, size=96)
    (tmp_path / "a.json").write_text(json.dumps([{"id": "a", "video": "a.mp4", "caption": "A."}]))
    with release_lock(tmp_path / "out"):
        with pytest.raises(DatasetBuildError, match="another `facetrack dataset build` is writing"):
            build_dataset(tmp_path / "a.json", root, tmp_path / "out", num_frames=2)
    build_dataset(tmp_path / "a.json", root, tmp_path / "out", num_frames=2)  # free again


# ------------------------------------------------------------------------------------------- load_dataset users
def test_load_dataset_first_row_video_decodes(built):
    """The first line a `load_dataset` user runs: the Video column decodes (torchcodec + the system FFmpeg that
    scripts/setup.sh installs), to the same frames as the source file."""
    import importlib.util

    from datasets import load_dataset

    from facetrack.video.decode import load_video

    assert importlib.util.find_spec("torchcodec"), "torchcodec is a dependency (pyproject.toml): reinstall"
    try:
        import torchcodec.decoders  # noqa: F401  (loads the FFmpeg libraries)
    except (RuntimeError, OSError) as error:
        pytest.skip(f"torchcodec cannot load FFmpeg here ({str(error).splitlines()[0][:120]}): run scripts/setup.sh "
                    "as root to install Debian's ffmpeg")
    video = load_dataset(str(built["out_dir"]))["train"][0]["video"]

    source = built["work"] / "videos" / "pexels" / "single_face.mp4"
    assert len(video) == 72 and video.metadata.width == 640 and video.metadata.height == 360
    frames = video.get_frames_at([0, 35, 71])
    assert tuple(frames.data.shape) == (3, 3, 360, 640)
    np.testing.assert_allclose(frames.pts_seconds.numpy(), [0.0, 35 / 30, 71 / 30], atol=1e-3)
    expected = load_video(source, frame_indices=[0, 35, 71]).frames
    decoded = frames.data.permute(0, 2, 3, 1).numpy()
    assert np.abs(decoded.astype(int) - expected.astype(int)).mean() < 2  # same pictures (decoders round apart)


def test_without_the_expression_packages_tracks_are_stored_and_one_line_says_why(tmp_path):
    import subprocess
    import sys

    (tmp_path / "videos").mkdir()
    write_zoom_clip(tmp_path / "videos" / "zoom.mp4", num_frames=6)
    (tmp_path / "a.json").write_text(json.dumps([{"id": "z", "video": "zoom.mp4", "caption": "A smile."}]))
    script = ("import sys\nsys.modules['mediapipe'] = None\nsys.modules['ai_edge_litert'] = None\n"
              "from facetrack.commands.cli import main\nraise SystemExit(main(sys.argv[1:]))\n")
    done = subprocess.run([sys.executable, "-c", script, "dataset", "build", str(tmp_path / "a.json"),
                           "--video-root", str(tmp_path / "videos"), "--out", str(tmp_path / "out"),
                           "--num-frames", "2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    notes = [line for line in (done.stdout + done.stderr).splitlines() if "pip install" in line]
    assert len(notes) == 1 and notes[0].startswith("expressions: not measured: the expression timeline needs")
    row = load_built_dataset(tmp_path / "out", split="train")[0]
    track = json.loads(row["face_track"])
    assert track["expressions"] == {} and row["has_face"]
    report = json.loads((tmp_path / "out" / "build_report.json").read_text())["train"]
    assert report["expressions"] == notes[0].removeprefix("expressions: ")


# ------------------------------------------------------------------------- nothing lost, nothing let in (issue 23)
def _tiny_root(tmp_path: Path, names=("a",)) -> Path:
    root = tmp_path / "videos"
    root.mkdir()
    for name in names:
        write_zoom_clip(root / f"{name}.mp4", num_frames=4, size=96)
    return root


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_build_never_replaces_or_deletes_what_it_did_not_write(tmp_path, monkeypatch, capsys):
    """A user's own card and train split (another tool's) are refused by name before any tracking; `--overwrite`
    replaces the card only and every file facetrack did not write stays, byte for byte."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import load_dataset

    from facetrack.commands.cli import main

    root = _tiny_root(tmp_path)
    (tmp_path / "a.json").write_text(json.dumps([{"id": "a", "video": "a.mp4", "caption": "A smile."}]))
    out_dir = tmp_path / "theirs"
    (out_dir / "data").mkdir(parents=True)
    pq.write_table(pa.table({"text": ["their row"]}), out_dir / "data" / "train-00000-of-00001.parquet")
    (out_dir / "README.md").write_text("---\nlicense: mit\n---\n# Their own dataset card\n")
    before = _folder_bytes(out_dir)

    tracked = []
    original = dataset_builder._track_all
    monkeypatch.setattr(dataset_builder, "_track_all", lambda *a, **k: tracked.append(1) or original(*a, **k))
    with pytest.raises(DatasetBuildError, match=r"theirs/README.md was not written by `facetrack dataset build`.*"
                                                r"--overwrite"):
        build_dataset(tmp_path / "a.json", root, out_dir, split="test", num_frames=2, expressions=False)
    assert _folder_bytes(out_dir) == before and not tracked  # refused before any work, nothing touched

    argv = ["dataset", "build", str(tmp_path / "a.json"), "--video-root", str(root), "--out", str(out_dir),
            "--split", "test", "--num-frames", "2", "--no-expressions"]
    assert main(argv) == 2
    error_lines = capsys.readouterr().err.strip().splitlines()
    assert len(error_lines) == 1 and "README.md" in error_lines[0] and "--overwrite" in error_lines[0]
    assert _folder_bytes(out_dir) == before

    assert main(argv + ["--overwrite"]) == 0
    after = _folder_bytes(out_dir)
    assert after["data/train-00000-of-00001.parquet"] == before["data/train-00000-of-00001.parquet"]  # kept
    assert after["README.md"] != before["README.md"]
    assert load_dataset(str(out_dir), split="test")["id"] == ["a"]

    # A facetrack card edited by hand afterwards is the user's too: refused again.
    (out_dir / "README.md").write_text((out_dir / "README.md").read_text() + "\nMy own notes.\n")
    with pytest.raises(DatasetBuildError, match="README.md was not written by .*or was changed since"):
        build_dataset(tmp_path / "a.json", root, out_dir, split="test", num_frames=2, expressions=False)
    assert "My own notes." in (out_dir / "README.md").read_text()


def test_another_tools_files_are_kept_and_facetrack_splits_stay_beside_a_new_one(tmp_path):
    from datasets import load_dataset

    root = _tiny_root(tmp_path, ("a", "b"))
    (tmp_path / "train.json").write_text(json.dumps([{"id": "a", "video": "a.mp4", "caption": "Train."}]))
    (tmp_path / "test.json").write_text(json.dumps([{"id": "b", "video": "b.mp4", "caption": "Test."}]))
    out_dir = tmp_path / "release"
    (out_dir / "data").mkdir(parents=True)
    (out_dir / "data" / "notes.parquet").write_bytes(b"another tool's file")
    (out_dir / "keep.txt").write_text("mine")
    build_dataset(tmp_path / "train.json", root, out_dir, split="train", num_frames=2, expressions=False)
    build_dataset(tmp_path / "test.json", root, out_dir, split="test", num_frames=2, expressions=False)
    build_dataset(tmp_path / "train.json", root, out_dir, split="train", num_frames=2, expressions=False)  # again
    assert (out_dir / "data" / "notes.parquet").read_bytes() == b"another tool's file"
    assert (out_dir / "keep.txt").read_text() == "mine"
    dataset_dict = load_dataset(str(out_dir))
    assert dataset_dict["train"]["id"] == ["a"] and dataset_dict["test"]["id"] == ["b"]
    # Only the live shards of facetrack's two splits are left of what it wrote.
    shards = sorted(p.name for p in (out_dir / "data").glob("*.parquet") if p.name != "notes.parquet")
    assert len(shards) == 2 and shards[0].startswith("test-") and shards[1].startswith("train-")

    # A release of a facetrack from before the record (.facetrack-release.json) is adopted: its card lists exactly
    # the shards its report says facetrack wrote.
    (out_dir / ".facetrack-release.json").unlink()
    build_dataset(tmp_path / "train.json", root, out_dir, split="train", num_frames=2, expressions=False)
    assert sorted(p.name for p in (out_dir / "data").glob("*.parquet") if p.name != "notes.parquet")[0] == shards[0]
    assert len(list((out_dir / "data").glob("train-*.parquet"))) == 1
    assert load_dataset(str(out_dir))["test"]["id"] == ["b"]


def test_a_clip_swapped_for_a_symlink_out_of_the_root_during_the_build_is_never_released(tmp_path, monkeypatch):
    """The path is checked first, the bytes are read later: a clip (or a folder on its path) swapped for a symbolic
    link to a file outside the root in between is caught where the bytes are read; a clip rewritten after it was
    tracked is not released either."""
    root = _tiny_root(tmp_path, ("keep", "swap", "changed"))
    (root / "sub").mkdir()
    write_zoom_clip(root / "sub" / "inner.mp4", num_frames=4, size=96)
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    secret = outside / "secret.mp4"
    write_astronaut_clip(secret, motion="pan_left", num_frames=5, fps=5, width=80, height=80)
    shutil.copy(secret, outside / "sub" / "inner.mp4")
    (tmp_path / "a.json").write_text(json.dumps([
        {"id": "keep", "video": "keep.mp4", "caption": "Kept."},
        {"id": "swap", "video": "swap.mp4", "caption": "Swapped for a link."},
        {"id": "dir", "video": "sub/inner.mp4", "caption": "Its folder swapped for a link."},
        {"id": "changed", "video": "changed.mp4", "caption": "Rewritten."},
    ]))
    original = dataset_builder._track_all

    def track_then_swap(*args, **kwargs):  # between the check (and the tracking) and the shard writing
        outcomes = original(*args, **kwargs)
        (root / "swap.mp4").unlink()
        (root / "swap.mp4").symlink_to(secret)
        shutil.rmtree(root / "sub")
        (root / "sub").symlink_to(outside / "sub")
        write_zoom_clip(root / "changed.mp4", num_frames=5, size=96)
        return outcomes

    monkeypatch.setattr(dataset_builder, "_track_all", track_then_swap)
    out_dir = tmp_path / "out"
    report = build_dataset(tmp_path / "a.json", root, out_dir, num_frames=2, expressions=False)
    dropped = {entry["id"]: entry for entry in report.dropped}
    assert {key: entry["status"] for key, entry in dropped.items()} == {
        "swap": "outside_root", "dir": "outside_root", "changed": "changed"}
    assert report.num_written == 1
    secret_bytes = secret.read_bytes()
    for file in out_dir.rglob("*"):
        if file.is_file():
            assert secret_bytes not in file.read_bytes() and str(tmp_path).encode() not in file.read_bytes(), file
    rows = load_built_dataset(out_dir, split="train")
    assert rows["id"] == ["keep"] and rows[0]["video"]["bytes"] == (root / "keep.mp4").read_bytes()
    saved = json.loads((out_dir / "build_report.json").read_text())["train"]
    assert saved["num_written"] == 1 and {entry["id"] for entry in saved["dropped"]} == {"swap", "dir", "changed"}


def test_a_symlink_loop_or_a_nul_byte_in_one_path_is_reported_and_skipped(tmp_path):
    root = _tiny_root(tmp_path)
    (root / "loop.mp4").symlink_to(root / "loop.mp4")
    (root / "ping.mp4").symlink_to(root / "pong.mp4")
    (root / "pong.mp4").symlink_to(root / "ping.mp4")
    (tmp_path / "a.json").write_text(json.dumps([
        {"id": "a", "video": "a.mp4", "caption": "Fine."},
        {"id": "loop", "video": "loop.mp4", "caption": "A link to itself."},
        {"id": "pingpong", "video": "ping.mp4", "caption": "Two links to each other."},
        {"id": "nul", "video": "a.mp4\u0000.txt", "caption": "A NUL byte."},
    ]))
    report = build_dataset(tmp_path / "a.json", root, tmp_path / "out", num_frames=2, expressions=False)
    assert report.num_written == 1
    saved = json.loads((tmp_path / "out" / "build_report.json").read_text())["train"]
    dropped = {entry["id"]: entry for entry in saved["dropped"]}
    assert {key: entry["status"] for key, entry in dropped.items()} == {
        "loop": "unreadable", "pingpong": "unreadable", "nul": "invalid_path"}
    assert "symbolic link loop" in dropped["loop"]["reason"] and "NUL byte" in dropped["nul"]["reason"]
    assert all(str(tmp_path) not in entry["reason"] for entry in saved["dropped"])


def test_text_that_cannot_be_stored_is_reported_by_id_before_any_tracking(tmp_path, monkeypatch):
    root = _tiny_root(tmp_path, ("a", "b"))
    # Valid JSON, but a lone surrogate cannot be written as UTF-8 (Arrow, parquet).
    (tmp_path / "a.json").write_text(
        '[{"id": "a", "video": "a.mp4", "caption": "Fine."},'
        ' {"id": "bad", "video": "b.mp4", "caption": "A lone \\ud800 surrogate."},'
        ' {"id": "bad\\udfff", "video": "b.mp4", "caption": "In the id."}]'
    )
    tracked = []
    original = dataset_builder._track_all

    def recording(video_paths, **kwargs):
        tracked.extend(relative for _, relative in video_paths)
        return original(video_paths, **kwargs)

    monkeypatch.setattr(dataset_builder, "_track_all", recording)
    report = build_dataset(tmp_path / "a.json", root, tmp_path / "out", num_frames=2, expressions=False)
    assert tracked == ["a.mp4"]  # the bad items never reached the tracker
    assert report.num_input == 3 and report.num_written == 1
    saved = json.loads((tmp_path / "out" / "build_report.json").read_text())["train"]
    dropped = {entry["id"]: entry for entry in saved["dropped"]}
    assert set(dropped) == {"bad", "bad\\udfff"} and {e["status"] for e in dropped.values()} == {"invalid_text"}
    assert "its caption is not valid text" in dropped["bad"]["reason"] and "\\ud800" in dropped["bad"]["reason"]
    with pytest.raises(DatasetBuildError, match=r"item 1 \(id 'bad'\): its caption is not valid text"):
        read_annotations(tmp_path / "a.json")  # without a list to report them in, such items are refused


def test_deeply_nested_json_and_huge_ids_are_one_line_errors_naming_file_and_item(tmp_path, no_tracking, capsys):
    from facetrack.commands.cli import main

    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DatasetBuildError, match=r"nested.json is nested too deeply"):
        build_dataset(nested, tmp_path, tmp_path / "out")
    huge = tmp_path / "huge.json"
    huge.write_text('[{"id": 1, "video": "a.mp4", "caption": "x"}, {"id": ' + "7" * 5000
                    + ', "video": "b.mp4", "caption": "y"}]')
    with pytest.raises(DatasetBuildError, match=r"huge.json: 1 invalid item\(s\): item 1 has an id of 5000 digits"):
        build_dataset(huge, tmp_path, tmp_path / "out")
    (tmp_path / "odd.json").write_text(json.dumps([{"id": [1], "video": "a.mp4", "caption": "x"},
                                                   {"id": "x" * 300, "video": "b.mp4", "caption": "y"},
                                                   {"id": True, "video": "c.mp4", "caption": "z"}]))
    with pytest.raises(DatasetBuildError, match=r"item 0 has an id of type list.*item 1 has an id of 300 characters"
                                                r".*item 2 has an id of type bool"):
        build_dataset(tmp_path / "odd.json", tmp_path, tmp_path / "out")
    for path in (nested, huge):
        assert main(["dataset", "build", str(path), "--video-root", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and path.name in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "o").exists()


def test_the_same_input_and_settings_give_byte_identical_shards(tmp_path, monkeypatch):
    """No wall-clock time inside a stored face track: two builds (here the face embeddings take a different time
    each run, as they do) write the same parquet bytes."""
    from facetrack.faces import tracking as face_tracking

    root = _tiny_root(tmp_path, ("a", "b"))
    (tmp_path / "a.json").write_text(json.dumps([{"id": n, "video": f"{n}.mp4", "caption": n} for n in "ab"]))
    calls = []
    embed = face_tracking.embed_fragments

    def slower_each_run(*args, **kwargs):
        report = embed(*args, **kwargs)
        calls.append(1)
        report.milliseconds += 100.0 * len(calls)
        return report

    monkeypatch.setattr(face_tracking, "embed_fragments", slower_each_run)
    shards = []
    for name in ("one", "two"):
        build_dataset(tmp_path / "a.json", root, tmp_path / name, num_frames=2)
        (shard,) = (tmp_path / name / "data").glob("*.parquet")
        shards.append(shard.read_bytes())
    assert len(calls) == 4
    assert shards[0] == shards[1]
