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
    """The recipe as it ran, for the model card (only values that differ from the defaults, plus key ones)."""
    from trl import SFTConfig

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
    return json.loads(json.dumps(recipe, default=str))  # plain YAML/JSON types only (enums, paths -> strings)


def model_card_with_recipe(config, recipe: dict[str, Any], model_path: str) -> str:
    """facetrack.hub's model card plus the training recipe as it ran (YAML), so the run can be reproduced."""
    import yaml

    from facetrack.hub.model_card import model_card

    card = model_card(config, model_name="FaceTrack-MM (instruction-tuned)")
    recipe_yaml = yaml.safe_dump(recipe, sort_keys=False, default_flow_style=False)
    return (
        f"{card}\n## Training\n\nInstruction-tuned from `{model_path}` with TRL's `SFTTrainer` "
        "(`python train_sft.py --config recipe.yaml`, FaceTrack-MM's facetrack/training.py). The recipe as it ran:\n\n"
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
    card = model_card_with_recipe(model.config, recipe, model_path)
    save_hub_folder(model, processor, output_dir, card=card)
    (Path(output_dir) / "training_recipe.json").write_text(json.dumps(recipe, indent=2))
    return output_dir
