"""Where a run's checkpoints go, and which one it resumes from.

Checkpoints are written beside the final model folder, never inside it: `<output_dir>-checkpoints/checkpoint-N`
(as the tiny base model is built in `<output_dir>-tiny-base`), so `output_dir` is the model folder TRL users load
(`from_pretrained(output_dir)`) and holds nothing else.

Which checkpoint a run resumes from. Trainer's own `resume_from_checkpoint=True` takes the highest
`checkpoint-N` folder, complete or not; a run killed while saving leaves one that is not (issue 14: `checkpoint-8`
holding only `config.json`). Here the last *complete* one is chosen and the incomplete ones are named and moved
aside."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

from facetrack.training.config import TrainingSetupError

logger = logging.getLogger(__name__)

def checkpoints_dir(output_dir: str) -> str:
    """The folder beside `output_dir` where Trainer writes the run's `checkpoint-N` folders (and resumes from)."""
    return f"{str(output_dir).rstrip('/')}-checkpoints"


CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")  # transformers' PREFIX_CHECKPOINT_DIR folders
WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin", "adapter_model.bin")


def _safetensors_problem(path: Path) -> str | None:
    """None when the file's header parses and the file is as long as the header says."""
    try:
        with open(path, "rb") as file:
            header_length = int.from_bytes(file.read(8), "little")
            header = json.loads(file.read(header_length))
    except (OSError, ValueError) as error:
        return f"{path.name} is unreadable ({type(error).__name__})"
    end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
    if path.stat().st_size < 8 + header_length + end:
        return f"{path.name} is cut short ({path.stat().st_size} of {8 + header_length + end} bytes)"
    return None


def checkpoint_problem(folder: str | os.PathLike) -> str | None:
    """Why a `checkpoint-N` folder cannot be resumed from, or None when it is complete.

    Trainer writes a checkpoint's weights, optimizer, scheduler and RNG state first and `trainer_state.json` last,
    so a complete checkpoint has a trainer state that parses and names step N, and weights that are whole (a
    DeepSpeed / FSDP checkpoint keeps them in its own sub-folders instead)."""
    folder = Path(folder)
    state_path = folder / "trainer_state.json"
    if not state_path.is_file():
        return "no trainer_state.json (the run was stopped while saving it)"
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        return "trainer_state.json is cut short (the run was stopped while saving it)"
    match = CHECKPOINT_NAME.match(folder.name)
    if match and state.get("global_step") != int(match.group(1)):
        return f"trainer_state.json is for step {state.get('global_step')}, not {match.group(1)}"
    sharded = any(folder.glob("global_step*")) or any(folder.glob("pytorch_model_fsdp_*"))
    weights = [folder / name for name in WEIGHT_FILES if (folder / name).is_file()]
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError):
            return "model.safetensors.index.json is unreadable"
        missing = [name for name in shards if not (folder / name).is_file()]
        if missing:
            return f"weight shard {missing[0]} is missing"
        weights += [folder / name for name in shards]
    if not weights and not sharded:
        return "no model weights"
    for path in weights:
        problem = _safetensors_problem(path) if path.suffix == ".safetensors" else None
        if problem:
            return problem
    return None


def resolve_checkpoint(resume_from_checkpoint: str | bool | None, output_dir: str) -> str | None:
    """The checkpoint to resume from: a given folder (which must be complete), or for 'true'/'last' the last
    complete `checkpoint-N` in output_dir. Incomplete newer ones (a run killed while saving) are said so and moved
    aside to `incomplete-checkpoint-N`, out of the way of Trainer's rotation; None to start fresh."""
    if resume_from_checkpoint in (None, False, "", "false", "False"):
        return None
    if resume_from_checkpoint not in (True, "true", "True", "last"):
        if not os.path.isdir(resume_from_checkpoint):
            raise TrainingSetupError(f"resume_from_checkpoint: {resume_from_checkpoint} is not a folder")
        problem = checkpoint_problem(resume_from_checkpoint)
        if problem:
            raise TrainingSetupError(f"resume_from_checkpoint: {resume_from_checkpoint} is incomplete: {problem}")
        return str(resume_from_checkpoint)
    folders = sorted(
        (int(CHECKPOINT_NAME.match(entry.name).group(1)), entry)
        for entry in (Path(output_dir).iterdir() if os.path.isdir(output_dir) else [])
        if entry.is_dir() and CHECKPOINT_NAME.match(entry.name)
    )
    skipped = []
    for _, folder in reversed(folders):
        problem = checkpoint_problem(folder)
        if problem is None:
            reason = f" ({'; '.join(skipped)})" if skipped else ""
            logger.warning("resuming from %s, the last complete checkpoint%s", folder, reason)
            return str(folder)
        if int(os.environ.get("RANK", "0")) != 0:  # under accelerate/torchrun, only the main process moves files
            skipped.append(f"{folder.name} is incomplete: {problem}")
            continue
        aside = folder.with_name(f"incomplete-{folder.name}")
        suffix = 1
        while aside.exists():
            aside, suffix = folder.with_name(f"incomplete-{folder.name}-{suffix}"), suffix + 1
        folder.rename(aside)
        skipped.append(f"{folder.name} is incomplete: {problem}; moved to {aside.name}")
    if skipped:
        raise TrainingSetupError(
            f"resume_from_checkpoint: no complete checkpoint in {output_dir} ({'; '.join(skipped)}); run without "
            "--resume_from_checkpoint to start over"
        )
    raise TrainingSetupError(f"resume_from_checkpoint: no checkpoint-* folder in {output_dir}")
