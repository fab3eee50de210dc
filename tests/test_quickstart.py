"""The quickstart end to end (tiny random LLM, synthetic clips), its report, and its stage reuse after interruption."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from facetrack.quickstart import STAGES, Quickstart


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
    score = json.loads((out_dir / "stages" / "score.json").read_text())["scores"]
    assert 0.0 <= score["tem"] <= 1.0

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
