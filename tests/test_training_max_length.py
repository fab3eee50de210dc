"""A prompt that does not fit max_length is a clear error before training starts (naming max_length and the
frames), and the tiny CPU recipe's max_length fits the README's 32-frame dataset build of the shipped clips."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from facetrack.training.collator import FaceTrackDataCollator
from facetrack.training.config import ScriptArguments, TrainingSetupError
from facetrack.training.data import load_training_splits

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_RECIPE = REPO_ROOT / "facetrack" / "training" / "recipes" / "tiny_cpu.yaml"
README_FRAMES = 32  # the README's `facetrack dataset build ... --num-frames 32`
# The two shipped clips with the longest prompts: the longest timestamps ("<t=19.2s>") and a face that disappears.
CLIPS = ("WolfgangLanger_Pexels.mp4", "face_noface.mov")


@pytest.fixture(scope="module")
def readme_dataset(tmp_path_factory, media_dir) -> Path:
    """The README's build (32 frames per clip) of two shipped clips with their shipped captions."""
    from facetrack.data.build import build_dataset

    work = tmp_path_factory.mktemp("readme_build")
    annotations = [item for item in json.loads((media_dir / "annotations.json").read_text()) if item["video"] in CLIPS]
    (work / "train.json").write_text(json.dumps(annotations))
    build_dataset(work / "train.json", media_dir, work / "data", split="train", num_frames=README_FRAMES,
                  expressions=False)
    return work / "data"


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    """The processor of the model the tiny recipe builds (its tokenizer and token layout)."""
    from transformers import AutoProcessor

    from facetrack.hub.builders import build_tiny_model

    recipe = yaml.safe_load(TINY_RECIPE.read_text())
    folder = build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", tokenizer=recipe["tiny_tokenizer"])
    return AutoProcessor.from_pretrained(folder, trust_remote_code=True)


@pytest.fixture(scope="module")
def rows(readme_dataset):
    train, _ = load_training_splits(ScriptArguments(dataset_name=str(readme_dataset)))
    return train


@pytest.mark.parametrize("num_frames", [None, 8])
def test_prompt_length_without_decoding_is_what_the_collator_builds(processor, rows, num_frames):
    collator = FaceTrackDataCollator(processor, num_frames=num_frames)
    for row in rows:
        batch = collator([row])
        prompt_tokens = int(((batch["labels"][0] == -100) & batch["attention_mask"][0].bool()).sum())
        assert collator.prompt_length(row) == prompt_tokens


def test_the_tiny_recipe_fits_the_readme_build(processor, rows):
    max_length = yaml.safe_load(TINY_RECIPE.read_text())["max_length"]
    collator = FaceTrackDataCollator(processor, max_length=max_length)
    collator.check_max_length(rows)  # no error
    longest = max(collator.prompt_length(row) for row in rows)
    assert longest > 512  # the recipe's old value, which the README's build did not fit
    batch = collator(list(rows))
    assert (batch["labels"] != -100).sum(1).min() > 0  # every row keeps (part of) its caption


def test_a_prompt_that_does_not_fit_is_refused_naming_max_length_and_frames(processor, rows):
    longest = max(FaceTrackDataCollator(processor).prompt_length(row) for row in rows)
    with pytest.raises(TrainingSetupError) as error:
        FaceTrackDataCollator(processor, max_length=longest).check_max_length(rows, "data split 'train'")
    message = str(error.value)
    assert f"max_length={longest}" in message and f"{README_FRAMES} frames" in message
    assert f"{longest} tokens" in message and "--max_length" in message and "--num_frames" in message
    # Fewer frames fit the same max_length.
    FaceTrackDataCollator(processor, num_frames=8, max_length=longest).check_max_length(rows)


@pytest.mark.slow
def test_train_sft_refuses_before_training_in_one_line(readme_dataset, tmp_path):
    output_dir = tmp_path / "runs" / "tiny"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "train_sft.py"), "--config", "tiny_cpu", "--dataset_name",
         str(readme_dataset), "--output_dir", str(output_dir), "--max_length", "300", "--max_steps", "2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"},
    )
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("train_sft.py: error:")]
    assert len(errors) == 1 and "max_length=300" in errors[0] and f"{README_FRAMES} frames" in errors[0], errors
    assert "Traceback" not in result.stderr
    assert not any(output_dir.glob("checkpoint-*")) and "'loss'" not in result.stdout
