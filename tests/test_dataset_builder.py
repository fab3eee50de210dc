"""The `datasets` release: build from real clips + a generated one + a missing and a corrupt one, read it back with
`load_dataset`, check the card, the report, the precomputed face tracks, bad input and the (monkeypatched) upload."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from facetrack import dataset_builder
from facetrack.dataset_builder import (
    EVALUATION_PROMPT,
    INSTRUCTION_TEMPLATES,
    DatasetBuildError,
    build_dataset,
    instruction_for,
    read_annotations,
)

from facetrack.sample_media import write_astronaut_clip

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

    from facetrack.processing.face_tracking import FaceTrackResult
    from facetrack.processing.video_io import load_video

    dataset_dict = load_dataset(str(built["out_dir"]))
    assert list(dataset_dict) == ["train"]
    dataset = dataset_dict["train"]
    assert isinstance(dataset.features["video"], Video)
    dataset = dataset.cast_column("video", Video(decode=False))

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

        track = FaceTrackResult.from_dict(json.loads(row["face_track"]))
        assert len(track.frames) == NUM_FRAMES
        assert bool(track.present.any()) == row["has_face"]

        # Decoding the embedded video at the track's frames gives the same pixels as the source file.
        clip, loaded_track = dataset_builder.load_example_video(row["video"], row["face_track"])
        expected = load_video(str(video_root / item["video"]), frame_indices=[f.frame_index for f in track.frames])
        assert clip.frames.shape == expected.frames.shape
        assert np.array_equal(clip.frames, expected.frames)
        assert [f.box for f in loaded_track.frames] == [f.box for f in track.frames]

    # Fewer frames than tracked: a uniform subset of the track; more: a clear error.
    row = dataset[0]
    clip, track = dataset_builder.load_example_video(row["video"], row["face_track"], num_frames=2)
    assert len(clip.frames) == len(track.frames) == 2
    with pytest.raises(DatasetBuildError, match="rebuild"):
        dataset_builder.load_example_video(row["video"], row["face_track"], num_frames=NUM_FRAMES + 1)


def test_main_face_is_on_the_face(built):
    """The single-face clip's main track covers most frames with boxes inside the image."""
    from facetrack.processing.face_tracking import FaceTrackResult

    rows = dataset_builder.load_built_dataset(built["out_dir"], split="train")
    track = FaceTrackResult.from_dict(json.loads(rows[0]["face_track"]))
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
    assert metadata["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}
    ]
    feature_names = [feature["name"] for feature in metadata["dataset_info"]["features"]]
    assert feature_names == ["id", "video", "caption", "instruction", "messages", "face_track", "has_face"]
    video_feature = metadata["dataset_info"]["features"][1]
    assert video_feature["dtype"] == "video"
    [split_info] = metadata["dataset_info"]["splits"]
    assert split_info["name"] == "train" and split_info["num_examples"] == 4 and split_info["num_bytes"] > 0
    assert EVALUATION_PROMPT in text


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
    assert INSTRUCTION_TEMPLATES[0] == EVALUATION_PROMPT
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


def test_real_fec_bench_annotations_validate(shared_dir):
    items = read_annotations(shared_dir / "data" / "dfec_test.json")
    assert len(items) == 800
    assert len({item.id for item in items}) == 800


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys, no_tracking):
    from facetrack.cli import main

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
    from facetrack.cli import main

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
                 "--out", str(tmp_path / "out"), "--num-frames", "2", "--split", "test", "--push", "me/faces"])
    assert code == 0
    assert "test: 1/2 rows written" in capsys.readouterr().out
    assert pushed == [(str(tmp_path / "out"), "me/faces", False)]
    assert (tmp_path / "out" / "data" / "test-00000-of-00001.parquet").is_file()


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
    assert "data/*.parquet" in upload["allow_patterns"] and "README.md" in upload["allow_patterns"]


def test_push_refuses_a_folder_that_was_not_built(tmp_path):
    with pytest.raises(DatasetBuildError, match="not a built dataset folder"):
        dataset_builder.push_dataset(tmp_path, "someone/x")
