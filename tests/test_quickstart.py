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
    assert "TEM:" in first.stdout and "tem=" in first.stdout
    for name in STAGES:
        assert (out_dir / "stages" / f"{name}.json").is_file(), name

    # The model folder is a complete Hub repo, and the caption came from a fresh process that loaded it.
    model_dir = out_dir / "model"
    config = json.loads((model_dir / "config.json").read_text())
    assert "AutoModelForImageTextToText" in config["auto_map"]
    assert (model_dir / "modeling_facetrack.py").is_file() and (model_dir / "README.md").is_file()
    caption = json.loads((out_dir / "stages" / "caption.json").read_text())
    assert caption["caption"] and "describe" in caption["command"] and str(model_dir) in caption["command"]
    assert caption["main_face_frames"] >= caption["frames"] - 1  # the astronaut's face is in every frame
    score = json.loads((out_dir / "stages" / "score.json").read_text())
    assert 0.0 <= score["scores"]["tem"] <= 1.0
    # The measured caption (same frames, no language model) is in the report beside the model's, each with its TEM.
    if missing_expression_dependencies():
        assert "measured:     not available" in first.stdout and "pip install" in first.stdout
    else:
        assert caption["measured_caption"].startswith("Measured description")
        assert 0.0 <= score["measured_scores"]["tem"] <= 1.0
        report = first.stdout[first.stdout.index("FaceTrack-MM quickstart report"):]
        assert f"measured:     {caption['measured_caption']}" in report
        assert "not by a language model" in report
        assert report.count("TEM:          ") == 2
        assert f"tem={score['measured_scores']['tem']:.3f}" in report.split("measured:     ")[1]

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
    assert calls == ["clips", "annotations", "dataset", "dataset", "train", "caption", "score"]
    assert set(records) == set(STAGES)


def test_report_shows_both_captions_with_their_tem(tmp_path):
    """The report's lines for a recorded run: the model's caption and TEM, then the measured caption, labelled as
    measured, and its own TEM; a run without the expression packages says why the measured one is missing."""
    def scores(tem: float, event: str) -> dict:
        row = {"prediction_phase": 0, "prediction_event": event, "reference_phase": 0, "reference_event": event,
               "relation": "entailment", "in_order": True}
        return {"tem": tem, "content_f1": tem, "events": [{"table": [row]}]}

    records = {
        "clips": {"captions": {"a.mp4": "x"}, "video_root": "videos", "real_media": None},
        "annotations": {"train": "train.json", "held_back": "held.json"},
        "dataset": {"dataset_dir": "dataset"},
        "train": {"model_dir": "model", "first_loss": 2.0, "last_loss": 1.0},
        "caption": {"video": "a.mp4", "reference": "REF", "caption": "MODEL TEXT", "main_face_frames": 8, "frames": 8,
                    "measured_caption": "Measured description (...). At the beginning, the person smiles."},
        "score": {"scores": scores(0.125, "the person frowns"), "measured_scores": scores(0.5, "the person smiles")},
    }
    report = format_report(records, tmp_path)
    model_part, measured_part = report.split("measured:     ")
    assert "caption:      MODEL TEXT" in model_part and "tem=0.125" in model_part and "the person frowns" in model_part
    assert measured_part.startswith("Measured description (...)") and "not by a language model" in measured_part
    assert "tem=0.500" in measured_part and "the person smiles" in measured_part
    records["caption"].update(measured_caption=None, measured_note="note: no measured caption: pip install X")
    records["score"]["measured_scores"] = None
    assert "measured:     not available (note: no measured caption: pip install X)" in format_report(records, tmp_path)


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
