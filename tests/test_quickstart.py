"""The quickstart end to end (tiny random LLM, synthetic clips), its report, and its stage reuse after interruption."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from facetrack.expressions.models import missing_expression_dependencies
from facetrack.quickstart import STAGES, Quickstart, format_report


def run_quickstart(out_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "facetrack", "quickstart", "--out", str(out_dir), "--llm", "random",
               "--max-steps", "6", "--synthetic-only", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_quickstart_end_to_end_then_reuses_finished_stages(tmp_path):
    out_dir = tmp_path / "qs"
    first = run_quickstart(out_dir)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "FaceTrack-MM quickstart report" in first.stdout
    for name in STAGES:
        assert (out_dir / "stages" / f"{name}.json").is_file(), name

    # The model folder is a complete Hub repo reading the expression stream alone.
    train = json.loads((out_dir / "stages" / "train.json").read_text())
    model_dir = Path(train["model_dir"])
    config = json.loads((model_dir / "config.json").read_text())
    assert "AutoModelForImageTextToText" in config["auto_map"]
    assert (config["expression_tokens_per_frame"], config["global_tokens_per_frame"], config["face_tokens_per_frame"]
            ) == (1, 0, 0)
    assert (model_dir / "modeling_facetrack.py").is_file()
    assert "What this model is: a small LLM that verbalises measured expression tokens" in (
        model_dir / "README.md").read_text()
    # No training example comes from the held-out clips (synthetic only: the astronaut panning right, and its
    # reversed and mirrored edits, written by the quickstart).
    clips = json.loads((out_dir / "stages" / "clips.json").read_text())
    assert clips["held_out"] == ["astronaut_pan_right.mp4", "astronaut_pan_right_reversed.mp4",
                                 "astronaut_pan_right_mirrored.mp4"]
    assert not set(clips["train"]) & set(clips["held_out"])
    assert [row["video"] for row in json.loads((out_dir / "annotations_train.json").read_text())] == clips["train"]
    # Every held-out clip was captioned by a fresh process that loaded the folder, and scored against every clip's
    # measured caption.
    caption = json.loads((out_dir / "stages" / "caption.json").read_text())
    assert " eval " in caption["command"] and str(model_dir) in caption["command"]
    held_out = json.loads((out_dir / "annotations_held_out.json").read_text())
    assert sorted(caption["predictions"]) == sorted(item["id"] for item in held_out)
    if not missing_expression_dependencies():
        assert all(item["caption_source"] == "measured" and not item["caption"].startswith("Measured description")
                   for item in held_out)
    follows = json.loads((out_dir / "stages" / "score.json").read_text())["follows_clip"]
    assert [clip["name"] for clip in follows["clips"]] == clips["held_out"]
    assert 0.0 <= follows["mean_own"] <= 1.0 and len(follows["matrix"]) == 3
    report = first.stdout[first.stdout.index("FaceTrack-MM quickstart report"):]
    for clip in follows["clips"]:
        assert f"{clip['name']}  (TEM of the model's caption against the measured one: {clip['own']:.3f})" in report
    assert "verbalises measured expression tokens" in report and "Does each caption follow its own clip?" in report

    # Run again: every stage is reused, nothing is recomputed.
    dataset_record = (out_dir / "stages" / "dataset.json").stat().st_mtime_ns
    second = run_quickstart(out_dir)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("done before, reusing") == len(STAGES)
    assert (out_dir / "stages" / "dataset.json").stat().st_mtime_ns == dataset_record


def test_interrupted_quickstart_resumes_without_redoing_finished_stages(tmp_path, monkeypatch):
    out_dir = tmp_path / "qs"
    calls: list[str] = []

    def fake_stage(name):
        def stage(self, records):
            calls.append(name)
            if name == "dataset" and calls.count("dataset") == 1:
                raise KeyboardInterrupt  # the user presses Ctrl-C during the dataset build
            return {"name": name}

        return stage

    for name in STAGES:
        monkeypatch.setattr(Quickstart, f"stage_{name}", fake_stage(name))
    quickstart = Quickstart(out_dir, None, "random", 1, log=lambda line: None)
    with pytest.raises(KeyboardInterrupt):
        quickstart.run()
    assert calls == ["clips", "annotations", "dataset"]
    assert not (out_dir / "stages" / "dataset.json").exists()  # an interrupted stage leaves no record

    records = quickstart.run()
    assert calls == ["clips", "annotations", "dataset", "dataset", "held_out", "train", "caption", "score"]
    assert set(records) == set(STAGES)


def test_report_shows_each_held_out_caption_beside_its_measured_caption(tmp_path):
    """The report for a recorded run: per held-out clip the model's caption, the measured one and the TEM between
    them; then the table of own against other clips' TEM and the reversed-order check."""
    from facetrack.evaluation.follows_clip import caption_follows_clip

    predictions = ["At the beginning, the person starts to smile.", "At the beginning, the person frowns.",
                   "Towards the end, the person frowns."]
    references = ["At the beginning, the person starts to smile.", "At the beginning, the person closes their eyes.",
                  "Towards the end, the person frowns."]
    names = ["a.mp4", "b.mp4", "a_reversed.mp4"]
    follows = caption_follows_clip(predictions, references, names, reversed_pairs=[("a.mp4", "a_reversed.mp4")])
    records = {
        "clips": {"train": ["t.mp4"], "held_out": names, "real_media": "media", "video_root": "videos"},
        "dataset": {"dataset_dir": "dataset"},
        "held_out": {"annotations": "held.json"},
        "train": {"model_dir": "model/merged", "first_loss": 2.0, "last_loss": 0.5, "steps": 140},
        "score": {"follows_clip": follows, "against_hand_written": [{"video": "a.mp4", "model": 0.25,
                                                                   "measured": 0.5}]},
    }
    report = format_report(records, tmp_path)
    assert "a.mp4  (TEM of the model's caption against the measured one: 1.000)" in report
    assert "  model:    At the beginning, the person frowns.\n  measured: At the beginning, the person closes" in report
    assert "against the hand-written caption of a.mp4: TEM model 0.250, measured 0.500" in report
    assert f"own beats other in {follows['wins']}/{follows['pairs']} pairs" in report
    assert "reversed a_reversed.mp4" in report and "FACETRACK_MODEL=model/merged make demo" in report


def test_quickstart_rejects_bad_arguments(tmp_path):
    missing = subprocess.run(
        [sys.executable, "-m", "facetrack", "quickstart", "--out", str(tmp_path), "--shared-media", "/no/such/dir"],
        capture_output=True, text=True,
    )
    assert missing.returncode == 2
    assert "/no/such/dir: no such folder" in missing.stderr and "Traceback" not in missing.stderr
    steps = subprocess.run(
        [sys.executable, "-m", "facetrack", "quickstart", "--out", str(tmp_path), "--max-steps", "0"],
        capture_output=True, text=True,
    )
    assert steps.returncode == 2 and "--max-steps must be at least 1" in steps.stderr


def test_quickstart_refuses_to_mix_runs_made_with_other_options(tmp_path, monkeypatch):
    for name in STAGES:
        monkeypatch.setattr(Quickstart, f"stage_{name}", lambda self, records: {})
    Quickstart(tmp_path, None, "random", 5, log=lambda line: None).run()
    with pytest.raises(ValueError, match="pass --fresh to start over"):
        Quickstart(tmp_path, None, "smollm2", 5, log=lambda line: None).run()


def test_fresh_deletes_only_a_quickstart_run(tmp_path):
    """`--fresh` removes an earlier quickstart run; a folder of the user's that --out names is refused and kept."""
    users = tmp_path / "mine"
    users.mkdir()
    (users / "thesis.tex").write_text("months of work")
    refused = subprocess.run([sys.executable, "-m", "facetrack", "quickstart", "--out", str(users), "--fresh"],
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "holds no quickstart run" in refused.stderr
    assert (users / "thesis.tex").read_text() == "months of work"


def test_real_training_videos_are_copied_into_the_run_and_every_training_clip_reaches_the_dataset(tmp_path,
                                                                                                   monkeypatch):
    """The real sample videos are copied (not linked) into the run's video folder, which the dataset build reads
    from (it refuses links that leave its root); and a build that leaves a training clip out stops the quickstart
    with the clip named, instead of training on the rest."""
    media = Path(__file__).parent / "media"
    quickstart = Quickstart(tmp_path / "qs", media, "random", 1, log=lambda line: None)
    clips = quickstart.stage_clips({})
    assert "WolfgangLanger_Pexels.mp4" in clips["train"] and clips["real_media"]
    for name in clips["train"] + clips["held_out"]:
        path = Path(clips["video_root"]) / name
        assert path.is_file() and not path.is_symlink(), name
    assert (Path(clips["video_root"]) / "single_face.mp4").read_bytes() == (media / "single_face.mp4").read_bytes()

    from facetrack.data import build

    class Dropped:
        def to_dict(self):
            return {"dropped": [{"video": "WolfgangLanger_Pexels.mp4", "reason": "unreadable"}], "no_face": []}

    monkeypatch.setattr(build, "build_dataset", lambda *args, **kwargs: Dropped())
    with pytest.raises(RuntimeError, match="left out training clips: WolfgangLanger_Pexels.mp4: unreadable"):
        quickstart.stage_dataset({"annotations": {"train": "unused.json"}, "clips": clips})
