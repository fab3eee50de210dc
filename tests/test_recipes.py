"""The recipes that start from a converted LLaVA-OneVision (recipes paper_7b, single_gpu_0p5b):
they parse, their max_length holds the converted token layout, and training really starts from a converted
checkpoint (the single-GPU recipe, shrunk to CPU, on a tiny converted LLaVA-OneVision and real clips)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from facetrack.hub.convert_llava_onevision import convert_llava_onevision
from facetrack.training import run as training
from facetrack.training.config import parse_arguments
from facetrack.training.parts import lora_config

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPES = {name: REPO_ROOT / "facetrack" / "training" / "recipes" / f"{name}.yaml" for name in ("paper_7b", "single_gpu_0p5b")}
CAPTION_TOKENS = 200  # FEC-Bench captions average ~119 words


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_parses_and_its_max_length_holds_the_converted_layout(name):
    script_args, model_args, training_args = parse_arguments(["--config", str(RECIPES[name]), "--bf16",
                                                                       "false"])
    assert model_args.model_name_or_path.startswith("models/facetrack-llava-ov-")
    assert not model_args.train_vision_tower and training_args.activation_checkpointing
    # The converted layout: 196 global + 16 face + 1 expression tokens per frame, one newline per video.
    prompt_tokens = script_args.num_frames * (196 + 16 + 1) + 1 + 40
    assert prompt_tokens + CAPTION_TOKENS <= training_args.max_length
    assert "facetrack convert llava-onevision llava-hf/" in RECIPES[name].read_text()
    assert "--expression-tokens 1" in RECIPES[name].read_text()


def test_single_gpu_recipe_full_and_lora():
    script_args, model_args, training_args = parse_arguments(
        ["--config", str(RECIPES["single_gpu_0p5b"]), "--bf16", "false"])
    assert (script_args.num_frames, training_args.per_device_train_batch_size) == (16, 1)
    assert model_args.dtype == "float32" and not model_args.use_peft
    _, lora_args, lora_training = parse_arguments(
        ["--config", str(RECIPES["single_gpu_0p5b"]), "--bf16", "false", "--use_peft", "true", "--dtype",
         "bfloat16", "--learning_rate", "2e-4", "--projector_lr", "2e-5"])
    assert lora_args.use_peft and lora_args.dtype == "bfloat16" and lora_training.learning_rate == 2e-4
    assert lora_config(lora_args).r == 16


def test_training_starts_from_a_converted_llava_onevision(tiny_llava_onevision_dir, media_dir, tmp_path):
    from facetrack.data.build import build_dataset
    from facetrack.expressions.models import missing_expression_dependencies

    # The recipes' conversion: 4 face tokens here, and 1 expression token per frame where the expression models are
    # installed (the dataset then stores the measured timelines the stream reads).
    expression_tokens = 0 if missing_expression_dependencies() else 1
    model_dir = convert_llava_onevision(tiny_llava_onevision_dir, tmp_path / "models" / "facetrack-llava-ov-tiny",
                                        face_tokens_per_frame=4, expression_tokens_per_frame=expression_tokens)
    annotations = [
        {"id": "face", "video": "single_face.mp4", "caption": "At the beginning, he smiles. Towards the end, he nods."},
        {"id": "noface", "video": "no_face.mp4", "caption": "No face is visible in this video."},
    ]
    (tmp_path / "train.json").write_text(json.dumps(annotations))
    build_dataset(tmp_path / "train.json", media_dir, tmp_path / "data", split="train", num_frames=4)

    script_args, model_args, training_args = parse_arguments([
        "--config", str(RECIPES["single_gpu_0p5b"]), "--model_name_or_path", str(model_dir),
        "--dataset_name", str(tmp_path / "data"), "--dataset_eval_split", "", "--output_dir", str(tmp_path / "run"),
        "--num_frames", "2", "--max_length", "512", "--max_steps", "2", "--gradient_accumulation_steps", "1",
        "--learning_rate", "1e-3", "--bf16", "false", "--use_cpu", "true", "--eval_strategy", "no",
        "--save_strategy", "no", "--report_to", "none", "--dataloader_num_workers", "0", "--logging_steps", "1",
        "--per_device_train_batch_size", "2",
    ])
    result = training.run_training(script_args, model_args, training_args)
    losses = [entry["loss"] for entry in result["trainer"].state.log_history if "loss" in entry]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(float(loss))) for loss in losses)

    from transformers import AutoModelForImageTextToText

    start = AutoModelForImageTextToText.from_pretrained(model_dir, trust_remote_code=True)
    trained = AutoModelForImageTextToText.from_pretrained(result["final_dir"], trust_remote_code=True)
    assert trained.config.video_newline and trained.config.face_tokens_per_frame == 4
    assert trained.config.expression_tokens_per_frame == expression_tokens
    before, after = start.state_dict(), trained.state_dict()
    assert all(torch.equal(after[name], before[name]) for name in after if "vision_tower" in name), "vision frozen"
    stream_parts = ("model.expression_projector.linear_1.weight", "model.no_expression_embedding") \
        if expression_tokens else ()
    for trained_part in ("model.face_projector.linear_1.weight", "model.video_projector.linear_2.weight",
                         "model.video_newline_embedding", "model.language_model.layers.0.mlp.up_proj.weight",
                         *stream_parts):
        assert not torch.equal(after[trained_part], before[trained_part]), trained_part
