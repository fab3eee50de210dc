"""The end of a training run: the final output folder, a Hub-layout model repo (code files, processor, model card
with the recipe as it ran), written by `facetrack.hub`; with LoRA the adapter is saved there and the merged model
in `<output_dir>/merged`."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any


def recipe_record(script_args, model_args, training_args) -> dict[str, Any]:
    """The recipe as it ran, for the model card (only values that differ from the defaults, plus key ones). Paths on
    this machine are written relative to the working folder, or as their last name (`portable_path`): a card holds
    nothing of the machine that built it."""
    from trl import SFTConfig

    from facetrack.hub.model_card import without_machine_paths

    defaults = SFTConfig(output_dir=training_args.output_dir, bf16=False).to_dict()
    trainer_values = {
        key: value
        for key, value in training_args.to_dict().items()
        if key in defaults and value != defaults[key] and "token" not in key
    }
    for key in ("learning_rate", "lr_scheduler_type", "warmup_steps", "num_train_epochs", "max_steps",
                "per_device_train_batch_size", "gradient_accumulation_steps", "bf16", "seed"):
        trainer_values.setdefault(key, training_args.to_dict().get(key))
    recipe = {"data": asdict(script_args), "model": asdict(model_args), "training": trainer_values}
    # Plain YAML/JSON types only (enums, paths -> strings), then no absolute path.
    return without_machine_paths(json.loads(json.dumps(recipe, default=str)))


def trained_from_tiny_model(model_args) -> bool:
    """The run started from a tiny random model built for it (the tiny_cpu recipe, the quickstart): a demonstration."""
    return model_args.model_name_or_path is None and model_args.tiny_language_model is not None


def model_card_with_recipe(config, recipe: dict[str, Any], model_path: str, demonstration: bool = False) -> str:
    """facetrack.hub's model card plus the training recipe as it ran (YAML), so the run can be reproduced; with
    `demonstration`, a warning first that the model only demonstrates the pipeline."""
    import yaml

    from facetrack.hub.model_card import (
        DEMONSTRATION_WARNING,
        STREAM_MODEL_NOTE,
        STREAM_READS,
        model_card,
        portable_path,
    )

    steps = recipe.get("training", {}).get("max_steps")
    steps = steps if steps and steps > 0 else "a few"
    stream_only = config.has_expression_stream and not config.has_vision_path and not config.has_face_path
    if demonstration and stream_only:
        reads = STREAM_READS["all" if config.expression_columns is None else "rules"]
        warning = STREAM_MODEL_NOTE.format(tokens=config.expression_tokens_per_frame, reads=reads, what=(
            f"A {config.text_config.num_hidden_layers}-layer LLM ({config.text_config.hidden_size} wide) built for the "
            f"run and trained for {steps} steps (FaceTrack-MM's `cpu_expression_stream` recipe, as in `facetrack "
            "quickstart`)."))
    elif demonstration:
        warning = DEMONSTRATION_WARNING.format(what=(
            "It was trained from a tiny model with a random vision encoder, built for the run (FaceTrack-MM's "
            f"`tiny_cpu` recipe), for {steps} steps on a handful of clips."))
    else:
        warning = None
    card = model_card(config, model_name="FaceTrack-MM (instruction-tuned)", warning=warning)
    recipe_yaml = yaml.safe_dump(recipe, sort_keys=False, default_flow_style=False)
    start = (f"a tiny model built for the run (`{portable_path(model_path)}`)" if demonstration
             else f"`{portable_path(model_path)}`")
    return (
        f"{card}\n## Training\n\nInstruction-tuned from {start} with TRL's `SFTTrainer` (`python train_sft.py "
        "--config recipe.yaml`, FaceTrack-MM's facetrack/training/run.py). The recipe as it ran:\n\n"
        f"```yaml\n{recipe_yaml}```\n"
    )


def export_final_model(trainer, processor, model_args, recipe: dict[str, Any], model_path: str, output_dir: str) -> str:
    """Write the final Hub-layout folder; returns the folder holding the full model. With LoRA the adapter stays in
    output_dir and the merged model goes to output_dir/merged (with merge_lora).

    `trainer.save_model` writes first: it gathers the weights that DeepSpeed ZeRO-3 or FSDP shard across processes.
    The main process then writes the Hub folder from an unsharded model: the trainer's own one on a single process,
    else one reloaded from what was just saved."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    from facetrack.hub.folder import save_hub_folder

    trainer.save_model(output_dir)  # full weights, or only the adapter (+ the trained projector copies) with LoRA
    if not trainer.is_world_process_zero():
        return output_dir
    sharded = is_deepspeed_zero3_enabled() or trainer.is_fsdp_enabled
    if model_args.use_peft:
        processor.save_pretrained(output_dir)  # beside the adapter, so the adapter folder is usable on its own
        if not model_args.merge_lora:
            return output_dir
        if sharded:
            from peft import PeftModel
            from transformers import AutoModelForImageTextToText

            base = AutoModelForImageTextToText.from_pretrained(model_path, dtype="auto", trust_remote_code=True)
            model = PeftModel.from_pretrained(base, output_dir).merge_and_unload()
        else:
            model = trainer.model.merge_and_unload()
        output_dir = os.path.join(output_dir, "merged")
    elif sharded:
        from transformers import AutoModelForImageTextToText

        model = AutoModelForImageTextToText.from_pretrained(output_dir, dtype="auto", trust_remote_code=True)
    else:
        model = trainer.model
    demonstration = trained_from_tiny_model(model_args)
    card = model_card_with_recipe(model.config, recipe, model_path, demonstration=demonstration)
    save_hub_folder(model, processor, output_dir, card=card)
    (Path(output_dir) / "training_recipe.json").write_text(json.dumps(recipe, indent=2))
    return output_dir
