"""Model cards hold no path of the machine that built them, and say plainly when a model is a tiny demonstration
(tests/test_readme_commands.py checks the card of a model trained by the README's tiny CPU command, end to end)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from facetrack.hub.model_card import portable_path, without_machine_paths
from facetrack.training.config import parse_arguments
from facetrack.training.export import model_card_with_recipe, recipe_record, trained_from_tiny_model


def test_portable_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert portable_path(tmp_path / "runs" / "tiny") == "runs/tiny"  # under the working folder: relative
    assert portable_path("/data/alice/fda") == "fda"  # elsewhere: its name only
    assert portable_path("~/models/facetrack-7b") == "facetrack-7b"
    assert portable_path("../secret/fda") == "fda"
    assert portable_path("data/fda") == "data/fda"  # relative: nothing of the machine
    assert portable_path("llava-hf/llava-onevision-qwen2-7b-ov-hf") == "llava-hf/llava-onevision-qwen2-7b-ov-hf"
    assert without_machine_paths({"a": ["/x/y/z", 3, "text"], "b": {"c": str(tmp_path / "d")}}) == {
        "a": ["z", 3, "text"], "b": {"c": "d"}}


@pytest.fixture
def tiny_run_arguments(tmp_path):
    """The tiny CPU recipe with every path absolute, and outside the working folder."""
    elsewhere = tmp_path / "home" / "alice"
    return parse_arguments([
        "--config", "tiny_cpu", "--dataset_name", str(elsewhere / "data" / "fda"),
        "--output_dir", str(elsewhere / "runs" / "tiny"), "--tiny_model_dir", str(elsewhere / "runs" / "base"),
        "--max_steps", "7",
    ]), elsewhere


def test_the_recipe_record_and_card_hold_no_path_of_the_machine(tiny_run_arguments, tiny_model_dir, monkeypatch):
    from transformers import AutoConfig

    (script_args, model_args, training_args), elsewhere = tiny_run_arguments
    monkeypatch.chdir(tiny_model_dir)  # another folder than the one the paths are in
    recipe = recipe_record(script_args, model_args, training_args)
    config = AutoConfig.from_pretrained(tiny_model_dir, trust_remote_code=True)
    card = model_card_with_recipe(config, recipe, str(elsewhere / "runs" / "base"),
                                  demonstration=trained_from_tiny_model(model_args))
    for text in (card, json.dumps(recipe)):
        assert str(elsewhere) not in text and str(Path.home()) + os.sep not in text and "/tmp" not in text
    assert recipe["data"]["dataset_name"] == "fda" and recipe["model"]["tiny_model_dir"] == "base"
    assert "Warning: a demonstration model" in card and "for 7 steps" in card
    # The warning comes before everything else the card says.
    assert card.index("Warning") < card.index("pip install facetrack-mm")


def test_no_warning_for_a_model_trained_from_a_real_start(tiny_run_arguments, tiny_model_dir):
    from transformers import AutoConfig

    (script_args, model_args, training_args), _ = tiny_run_arguments
    model_args.model_name_or_path = "models/facetrack-llava-ov-0.5b"
    assert not trained_from_tiny_model(model_args)
    config = AutoConfig.from_pretrained(tiny_model_dir, trust_remote_code=True)
    card = model_card_with_recipe(config, recipe_record(script_args, model_args, training_args),
                                  model_args.model_name_or_path, demonstration=trained_from_tiny_model(model_args))
    assert "Warning" not in card and "from `models/facetrack-llava-ov-0.5b`" in card


def test_a_tiny_model_folder_says_it_is_for_tests(tiny_model_dir):
    card = (Path(tiny_model_dir) / "README.md").read_text()
    assert "Warning: a demonstration model" in card and "built for tests" in card
    assert str(tiny_model_dir) not in card
