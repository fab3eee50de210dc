"""Instruction tuning of FaceTrack-MM with TRL's `SFTTrainer` (run as `python train_sft.py --config recipe.yaml` or
`facetrack train --config recipe.yaml`; any recipe key can also be given or overridden as a `--flag`).

What TRL does not do for video (TRL 1.16 has no video support of its own), this module does:
- the data collator (`FaceTrackDataCollator`): decodes each row's video at the frames of its precomputed face track
  (the dataset's `face_track` column, built by `facetrack dataset build`), lets the FaceTrack processor crop the faces
  and expand the `<video>` placeholder, and masks every label but the assistant's answer with -100; so the trainer
  runs with `remove_unused_columns=False` and `dataset_kwargs={"skip_prepare_dataset": True}`;
- which parts train: the vision tower is frozen by default, projectors train, the LLM trains fully or through LoRA
  (peft `LoraConfig` passed as SFTTrainer's `peft_config`), optionally with its own projector learning rate;
- the final output folder: a Hub-layout model repo (code files, processor, model card with the recipe), written by
  `facetrack.hub`; with LoRA the adapter is saved there and the merged model in `<output_dir>/merged`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

# The arguments, their parsing and the checkpoint choice live in their own modules; they are part of this one's API.
from .checkpoints import checkpoint_problem, resolve_checkpoint  # noqa: F401
from .training_config import (  # noqa: F401
    DEFAULT_LORA_TARGET_REGEX,
    ModelArguments,
    ScriptArguments,
    TrainingSetupError,
    parse_arguments,
    validate_arguments,
)

logger = logging.getLogger(__name__)

# Parameter-name prefixes of FaceTrackForConditionalGeneration's parts (see modeling_facetrack).
VISION_PREFIXES = ("model.vision_tower.",)
PROJECTOR_PREFIXES = (
    "model.video_projector.", "model.face_projector.", "model.no_face_embedding", "model.video_newline_embedding",
)
LANGUAGE_MODEL_PREFIXES = ("model.language_model.", "lm_head.")
PROJECTOR_MODULES = ["video_projector", "face_projector"]

# ---------------------------------------------------------------------------------------------------------------
# Data collator
# ---------------------------------------------------------------------------------------------------------------


class FaceTrackDataCollator:
    """Rows of the built dataset -> model inputs with labels.

    Each row's video (`{"bytes", "path"}`, the `video` column cast to `Video(decode=False)`) is decoded at the frames
    of its precomputed face track, the processor crops the faces at the track's boxes and expands `<video>`. Labels
    are -100 everywhere but on the assistant's answer (the caption and its end-of-turn token): the answer is what the
    chat template appends after the generation prompt, tokenised on its own and checked against the end of each
    sequence, so any chat template that ends the prompt on a token boundary works. Sequences longer than
    `max_length` lose the end of their answer; a prompt (video tokens included) longer than it is an error.
    """

    def __init__(
        self,
        processor,
        num_frames: int | None = None,
        max_length: int | None = None,
        face_source: str = "precomputed",
    ):
        if face_source not in ("precomputed", "detect"):
            raise TrainingSetupError(f"face_source must be 'precomputed' or 'detect', got {face_source!r}")
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.num_frames = num_frames
        self.max_length = max_length
        self.face_source = face_source

    def _texts(self, messages: list[dict]) -> tuple[str, str]:
        """(full conversation text, answer text appended after the generation prompt)."""
        if not messages or messages[-1]["role"] != "assistant":
            raise TrainingSetupError("each row's messages must end with the assistant's answer")
        prompt = self.processor.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
        full = self.processor.apply_chat_template(messages, tokenize=False)
        if not full.startswith(prompt):
            raise TrainingSetupError(
                "the chat template renders the conversation without its generation prompt as a prefix; the answer "
                "tokens cannot be located for label masking"
            )
        return full, full[len(prompt) :]

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        from facetrack.dataset_builder import DatasetBuildError, subsample_track, video_file

        texts, answers, tracks = [], [], []
        for example in examples:
            full, answer = self._texts(example["messages"])
            texts.append(full)
            answers.append(answer)
            # Plain dicts cross into the processor: with trust_remote_code it has its own FaceTrackResult class.
            track = json.loads(example["face_track"])
            if self.num_frames is not None and self.num_frames != len(track["frames"]):
                try:
                    track = subsample_track(track, self.num_frames)
                except DatasetBuildError as error:
                    raise TrainingSetupError(f"row {example.get('id')!r}: {error}") from error
            tracks.append(track)

        with contextlib.ExitStack() as stack:
            # The decoders want a file: embedded bytes go to temporary files for the duration of the call.
            video_paths = [stack.enter_context(video_file(example["video"])) for example in examples]
            if self.face_source == "precomputed":
                batch = self.processor(
                    text=texts, videos=video_paths, face_tracks=tracks, padding=True, padding_side="right"
                )
            else:
                # Detect + track on the fly, at as many uniformly sampled frames as the precomputed track has
                # (the same frames the dataset build sampled), so both modes see the same pixels.
                num_frames = len(tracks[0]["frames"])
                batch = self.processor(
                    text=texts, videos=video_paths, num_frames=num_frames, padding=True, padding_side="right"
                )
        batch["labels"] = self._labels(batch["input_ids"], batch["attention_mask"], answers)
        if self.max_length is not None and batch["input_ids"].shape[1] > self.max_length:
            self._truncate(batch)
        return dict(batch)

    def _labels(self, input_ids, attention_mask, answers: list[str]):
        labels = input_ids.new_full(input_ids.shape, -100)
        for row, answer in enumerate(answers):
            answer_ids = self.tokenizer(answer, add_special_tokens=False)["input_ids"]
            positions = attention_mask[row].nonzero().flatten()  # real tokens, whatever the padding side
            answer_positions = positions[len(positions) - len(answer_ids) :]
            if len(answer_ids) >= len(positions) or input_ids[row, answer_positions].tolist() != answer_ids:
                raise TrainingSetupError(
                    "the answer tokenised alone does not match the end of the tokenised conversation; the chat "
                    "template must end the generation prompt on a token boundary (e.g. a newline or special token)"
                )
            labels[row, answer_positions] = input_ids[row, answer_positions]
        return labels

    def _truncate(self, batch) -> None:
        # Batches are padded on the right (padding_side="right" above), so cutting the end only loses answer tokens.
        prompt_lengths = (batch["labels"] == -100).logical_and(batch["attention_mask"].bool()).sum(1)
        if int(prompt_lengths.max()) >= self.max_length:
            raise TrainingSetupError(
                f"max_length={self.max_length} is shorter than a prompt of {int(prompt_lengths.max())} tokens (video "
                "and face tokens included): raise max_length or lower num_frames"
            )
        for key in ("input_ids", "attention_mask", "labels"):
            batch[key] = batch[key][:, : self.max_length]


# ---------------------------------------------------------------------------------------------------------------
# Model: building/loading, freezing, LoRA, optimizer groups
# ---------------------------------------------------------------------------------------------------------------


def resolve_model_path(model_args: ModelArguments, output_dir: str) -> str:
    """The Hub-layout folder to start from: `model_name_or_path`, or a tiny model built (once) for this run."""
    if model_args.model_name_or_path is None and model_args.tiny_language_model is None:
        raise TrainingSetupError("set model_name_or_path (a FaceTrack-MM folder or repo) or tiny_language_model")
    if model_args.model_name_or_path is not None:  # wins over a recipe's tiny_language_model
        return model_args.model_name_or_path
    from facetrack.hub import build_tiny_model

    tiny_dir = Path(model_args.tiny_model_dir or f"{output_dir.rstrip('/')}-tiny-base")
    if tiny_dir.exists() and not _is_complete_model_folder(tiny_dir):
        # Left by an earlier version that wrote in place and was interrupted: rebuilt from scratch.
        logger.warning("%s is an incomplete model folder (an interrupted build); building it again", tiny_dir)
        shutil.rmtree(tiny_dir)
    if not tiny_dir.exists():  # built once: a resumed run restarts from the same base
        build_kwargs = {}
        if model_args.tiny_tokenizer is not None:
            build_kwargs["tokenizer"] = model_args.tiny_tokenizer
        if model_args.face_tokens_per_frame is not None:
            build_kwargs["face_tokens_per_frame"] = model_args.face_tokens_per_frame
        # Built beside its place and renamed into it when complete, so an interrupted build leaves no half folder.
        for stale in tiny_dir.parent.glob(f".{tiny_dir.name}.partial-*"):
            if not _process_alive(int(stale.name.rsplit("-", 1)[1])):  # left by a killed run
                shutil.rmtree(stale, ignore_errors=True)
        partial = tiny_dir.with_name(f".{tiny_dir.name}.partial-{os.getpid()}")
        build_tiny_model(str(partial), language_model=model_args.tiny_language_model, **build_kwargs)
        try:
            os.rename(partial, tiny_dir)
        except OSError:  # another process (another rank) finished first: its folder is the same model
            shutil.rmtree(partial, ignore_errors=True)
    return str(tiny_dir)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_complete_model_folder(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(
        (folder / name).is_file() for name in ("model.safetensors", "model.safetensors.index.json")
    ) and (folder / "processor_config.json").is_file()


def load_model_and_processor(model_path: str, model_args: ModelArguments):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from facetrack.inference import resolve_dtype

    try:
        dtype = resolve_dtype(model_args.dtype)
    except ValueError as error:
        raise TrainingSetupError(str(error)) from error
    model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=dtype, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(model_path, trust_remote_code=True)
    wanted = model_args.face_tokens_per_frame
    if wanted is not None and wanted != model.config.face_tokens_per_frame:
        raise TrainingSetupError(
            f"face_tokens_per_frame={wanted} but {model_path} was built with {model.config.face_tokens_per_frame}: "
            "the face projector and no-face embedding are sized by it (only a new tiny model can change it)"
        )
    if processor.tokenizer.pad_token is None:
        processor.tokenizer.pad_token = processor.tokenizer.eos_token
    return model, processor


def parameter_part(name: str) -> str:
    """Which part a parameter belongs to: 'vision', 'projector', 'language_model' (names from modeling_facetrack)."""
    for part, prefixes in (
        ("vision", VISION_PREFIXES),
        ("projector", PROJECTOR_PREFIXES),
        ("language_model", LANGUAGE_MODEL_PREFIXES),
    ):
        if name.startswith(prefixes):
            return part
    raise TrainingSetupError(f"parameter {name!r} belongs to no known FaceTrack-MM part")


def set_trainable_parts(model, model_args: ModelArguments) -> dict[str, int]:
    """Freeze / unfreeze the parts; returns trainable parameter counts per part."""
    trains = {
        "vision": model_args.train_vision_tower,
        "projector": model_args.train_projectors,
        # With LoRA the LLM's base weights stay frozen; peft adds and trains the adapters.
        "language_model": model_args.train_language_model and not model_args.use_peft,
    }
    counts = {part: 0 for part in trains}
    for name, parameter in model.named_parameters():
        part = parameter_part(name)
        parameter.requires_grad_(trains[part])
        counts[part] += parameter.numel() if trains[part] else 0
    if not any(trains.values()) and not model_args.use_peft:
        raise TrainingSetupError("nothing to train: every part is frozen and use_peft is off")
    return counts


def lora_config(model_args: ModelArguments):
    """peft `LoraConfig` for the LLM; the projectors train beside it as `modules_to_save` (saved in the adapter)."""
    from peft import LoraConfig

    if model_args.train_vision_tower:
        raise TrainingSetupError("train_vision_tower with use_peft is not supported: LoRA adapts the LLM only")
    return LoraConfig(
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules=model_args.lora_target_modules,
        modules_to_save=list(PROJECTOR_MODULES) if model_args.train_projectors else None,
        task_type="CAUSAL_LM",
    )


def _sft_trainer_class():
    from trl import SFTTrainer

    class FaceTrackSFTTrainer(SFTTrainer):
        """SFTTrainer with an optional learning rate of its own for the projectors."""

        projector_lr: float | None = None

        def create_optimizer(self, model=None):
            if self.projector_lr is None or self.optimizer is not None:
                return super().create_optimizer(model)
            opt_model = self.model if model is None else model
            decay = set(self.get_decay_parameter_names(opt_model))
            groups: dict[tuple[bool, bool], list] = {}
            for name, parameter in opt_model.named_parameters():
                if parameter.requires_grad:
                    is_projector = any(
                        module in name for module in (*PROJECTOR_MODULES, "no_face_embedding", "video_newline_embedding")
                    )
                    groups.setdefault((is_projector, name in decay), []).append(parameter)
            param_groups = [
                {
                    "params": params,
                    "weight_decay": self.args.weight_decay if with_decay else 0.0,
                    **({"lr": self.projector_lr} if is_projector else {}),
                }
                for (is_projector, with_decay), params in groups.items()
            ]
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            self.optimizer = optimizer_cls(param_groups, **optimizer_kwargs)
            return self.optimizer

    return FaceTrackSFTTrainer


# ---------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------


def load_training_splits(script_args: ScriptArguments):
    """(train, eval or None) with the video column as bytes (decoded by the collator with decord/PyAV)."""
    from datasets import Video, load_dataset
    from datasets.exceptions import DataFilesNotFoundError, DatasetNotFoundError

    if script_args.dataset_name is None:
        raise TrainingSetupError("dataset_name is required: a folder built by `facetrack dataset build` or a repo id")
    try:
        dataset_dict = load_dataset(script_args.dataset_name)
    except (FileNotFoundError, DatasetNotFoundError, DataFilesNotFoundError) as error:
        raise TrainingSetupError(f"cannot load dataset {script_args.dataset_name!r}: {error}") from error
    required = {"video", "messages", "face_track"}

    def pick(split: str, limit: int | None):
        if split not in dataset_dict:
            raise TrainingSetupError(f"{script_args.dataset_name} has no split {split!r} (has {list(dataset_dict)})")
        dataset = dataset_dict[split]
        missing = required - set(dataset.column_names)
        if missing:
            raise TrainingSetupError(
                f"{script_args.dataset_name} split {split!r} lacks column(s) {sorted(missing)}: build it with "
                "`facetrack dataset build`"
            )
        dataset = dataset.cast_column("video", Video(decode=False))
        dataset = dataset.select(range(min(limit, len(dataset)))) if limit is not None else dataset
        check_rows(dataset, f"{script_args.dataset_name} split {split!r}", script_args.num_frames)
        return dataset

    train = pick(script_args.dataset_train_split, script_args.max_train_samples)
    evaluation = (
        pick(script_args.dataset_eval_split, script_args.max_eval_samples) if script_args.dataset_eval_split else None
    )
    return train, evaluation


def check_rows(dataset, where: str, num_frames: int | None = None) -> None:
    """Every row's face track and messages, checked before the model loads (the collator would fail on the first
    bad row only after the model and trainer were set up). Reads the small columns only, never the videos."""
    problems = []
    columns = dataset.select_columns(["face_track", "messages"] + (["id"] if "id" in dataset.column_names else []))
    for index, row in enumerate(columns):
        name = f"row {index}" + (f" (id {row['id']!r})" if row.get("id") is not None else "")
        try:
            track = json.loads(row["face_track"]) if isinstance(row["face_track"], str) else None
        except ValueError as error:
            problems.append(f"{name}: face_track is not JSON ({error})")
            continue
        frames = track.get("frames") if isinstance(track, dict) else None
        if not isinstance(frames, list) or not frames or not isinstance(track.get("tracks"), dict) or any(
            not isinstance(frame, dict) or not isinstance(frame.get("frame_index"), int) for frame in frames
        ):
            problems.append(f"{name}: face_track is not a face track (FaceTrackResult.to_dict(): frames, tracks)")
        elif num_frames is not None and num_frames > len(frames):
            problems.append(f"{name}: num_frames={num_frames} but its face track has {len(frames)} frames")
        messages = row["messages"]
        if not messages or messages[-1].get("role") != "assistant":
            problems.append(f"{name}: messages must end with the assistant's answer")
        if len(problems) >= 5:
            break
    if problems:
        raise TrainingSetupError(
            f"{where}: {'; '.join(problems[:5])}{' (and more)' if len(problems) >= 5 else ''}; rebuild it with "
            "`facetrack dataset build`"
        )


# ---------------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------------


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

    from facetrack.hub import model_card

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

    from facetrack.hub import save_hub_folder

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


def run_training(script_args: ScriptArguments, model_args: ModelArguments, training_args) -> dict[str, Any]:
    """Train and export; returns {"trainer", "train_result", "final_dir"} (for scripts and benchmarks)."""
    if script_args.cpu_threads is not None:
        import torch

        torch.set_num_threads(script_args.cpu_threads)
    checkpoint = resolve_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    train_dataset, eval_dataset = load_training_splits(script_args)

    model_path = resolve_model_path(model_args, training_args.output_dir)
    model, processor = load_model_and_processor(model_path, model_args)
    counts = set_trainable_parts(model, model_args)
    logger.info("trainable parameters per part (before LoRA): %s", counts)

    collator = FaceTrackDataCollator(
        processor,
        num_frames=script_args.num_frames,
        max_length=training_args.max_length,
        face_source=script_args.face_source,
    )
    trainer_class = _sft_trainer_class()
    trainer = trainer_class(
        model=model,
        args=training_args,
        data_collator=collator,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=processor,
        peft_config=lora_config(model_args) if model_args.use_peft else None,
    )
    trainer.projector_lr = model_args.projector_lr
    train_result = trainer.train(resume_from_checkpoint=checkpoint)

    recipe = recipe_record(script_args, model_args, training_args)
    final_dir = export_final_model(trainer, processor, model_args, recipe, model_path, training_args.output_dir)
    logger.info("final model written to %s", final_dir)
    return {"trainer": trainer, "train_result": train_result, "final_dir": final_dir}


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
