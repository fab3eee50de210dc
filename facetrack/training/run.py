"""Instruction tuning of FaceTrack-MM with TRL's `SFTTrainer`: `python train_sft.py --config recipe.yaml` or
`facetrack train --config recipe.yaml` (any recipe key can also be given or overridden as a `--flag`).

The run reads top to bottom like TRL's `examples/scripts/sft_vlm.py`: parse, data, model, trainer, train, save. The
data comes before the model so that a bad row is reported before anything heavy loads. Each step's own module:

- `training_config`: the recipe's arguments (`ScriptArguments`, `ModelArguments`, TRL's `SFTConfig`), parsed by
  `TrlParser` and checked;
- `checkpoints`: where checkpoints go (`<output_dir>-checkpoints`, beside the final model folder, never inside it)
  and the last *complete* one to resume from (Trainer's own choice takes the last one, complete or not);
- `training_data`: the dataset's splits, every row checked and its face track parsed once;
- `training_model`: the model folder to start from (or a tiny one built for the run), loaded with its processor;
- `training_parts`: which parts train (vision tower frozen by default, projectors, the LLM fully or through LoRA)
  and the projectors' own learning rate;
- `training_collator`: each row's video decoded from its bytes at its face track's frames, label masking;
- `training_export`: the final Hub-layout folder with the recipe in its model card.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from facetrack.training.checkpoints import checkpoints_dir, resolve_checkpoint
from facetrack.training.collator import FaceTrackDataCollator, TimelineVariants
from facetrack.training.config import (
    ModelArguments,
    ScriptArguments,
    TrainingSetupError,
    parse_arguments,
    parse_counts,
)
from facetrack.training.data import load_training_splits
from facetrack.training.export import export_final_model, recipe_record
from facetrack.training.model import load_model_and_processor, resolve_model_path, tiny_model_dir
from facetrack.training.parts import FaceTrackSFTTrainer, lora_config, set_trainable_parts

logger = logging.getLogger(__name__)


def run_training(script_args: ScriptArguments, model_args: ModelArguments, training_args) -> dict[str, Any]:
    """Train and export; returns {"trainer", "train_result", "final_dir"} (for scripts and benchmarks).

    The final model is written to `output_dir`; Trainer's checkpoints go beside it, to `<output_dir>-checkpoints`."""
    if script_args.cpu_threads is not None:
        import torch

        torch.set_num_threads(script_args.cpu_threads)
    output_dir = training_args.output_dir
    recipe = recipe_record(script_args, model_args, training_args)  # as given: output_dir is the model folder
    training_args.output_dir = checkpoints_dir(output_dir)  # where Trainer saves (and rotates) checkpoint-N
    checkpoint = resolve_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    tiny_model_dir(model_args, output_dir)  # a place that holds others' files is refused before work

    ################
    # Data
    ################
    train_dataset, eval_dataset = load_training_splits(script_args)

    ################
    # Model
    ################
    model_path = resolve_model_path(model_args, output_dir)
    model, processor = load_model_and_processor(model_path, model_args)
    counts = set_trainable_parts(model, model_args)
    logger.info("trainable parameters per part (before LoRA): %s", counts)

    ################
    # Training
    ################
    variants = None
    data_seed = training_args.data_seed if training_args.data_seed is not None else training_args.seed
    if script_args.timeline_variants:
        variants = TimelineVariants(seed=data_seed,
                                    frame_counts=tuple(parse_counts(script_args.variant_frame_counts)),
                                    part_counts=tuple(parse_counts(script_args.variant_part_counts)),
                                    max_seconds=script_args.variant_max_seconds,
                                    other_clip_share=script_args.variant_other_clip_share,
                                    no_face_share=script_args.variant_no_face_share,
                                    script_share=script_args.variant_script_share)
        train_dataset = repeated_rows(train_dataset, training_args)
    collator = FaceTrackDataCollator(
        processor,
        num_frames=script_args.num_frames,
        max_length=training_args.max_length,
        face_source=script_args.face_source,
        timeline_variants=variants,
        measure_jitter=script_args.measure_jitter,
        seed=data_seed,
    )
    # A prompt that leaves no room for its caption is refused now, not at the step that reaches its row.
    collator.check_max_length(train_dataset, f"{script_args.dataset_name} split {script_args.dataset_train_split!r}")
    if eval_dataset is not None:
        collator.check_max_length(eval_dataset, f"{script_args.dataset_name} split {script_args.dataset_eval_split!r}")
    trainer = FaceTrackSFTTrainer(
        model=model,
        args=training_args,
        data_collator=collator,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=processor,
        peft_config=lora_config(model_args) if model_args.use_peft else None,
        projector_lr=model_args.projector_lr,
    )
    train_result = trainer.train(resume_from_checkpoint=checkpoint)

    ################
    # Save
    ################
    final_dir = export_final_model(trainer, processor, model_args, recipe, model_path, output_dir)
    logger.info("final model written to %s", final_dir)
    return {"trainer": trainer, "train_result": train_result, "final_dir": final_dir}


def repeated_rows(dataset, training_args):
    """With timeline variants each visit of a row is a new example: repeat a small split's rows so that every batch
    is full and one pass covers the run's steps (a split of 2 rows and batches of 4 would otherwise give batches of
    2)."""
    batch = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps \
        * max(training_args.world_size, 1)
    wanted = batch * (training_args.max_steps if training_args.max_steps > 0 else 1)
    if len(dataset) >= wanted:
        return dataset
    repeats = -(-wanted // len(dataset))
    return dataset.select([index for _ in range(repeats) for index in range(len(dataset))])


def main(argv: list[str] | None = None) -> int:
    script_args, model_args, training_args = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    run_training(script_args, model_args, training_args)
    return 0


def cli_main(argv: list[str] | None = None) -> int:
    """`python train_sft.py ...`: setup errors print as one line (exit 2), no traceback."""
    try:
        return main(argv)
    except TrainingSetupError as error:
        print(f"train_sft.py: error: {error}", file=sys.stderr)
        return 2
