"""The model a training run starts from: a Hub-layout FaceTrack-MM folder or repo (`model_name_or_path`), or a tiny
one built once for the run (`tiny_language_model`), loaded with `trust_remote_code` like any Hub repo."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from facetrack.training.config import ModelArguments, TrainingSetupError

logger = logging.getLogger(__name__)


PARTIAL_MARKER = ".facetrack-partial-tiny-model"  # first file of a tiny model folder being built


def tiny_model_dir(model_args: ModelArguments, output_dir: str) -> Path | None:
    """Where this run's tiny model is (built), or None when the run starts from `model_name_or_path`. Raises
    TrainingSetupError when that place holds something that is not a complete model folder: facetrack never deletes
    what it did not write, so it is not built over (checked before any data or model loads)."""
    if model_args.model_name_or_path is not None or model_args.tiny_language_model is None:
        return None
    tiny_dir = Path(model_args.tiny_model_dir or f"{output_dir.rstrip('/')}-tiny-base")
    if tiny_dir.is_symlink() or tiny_dir.exists():
        if tiny_dir.is_dir() and not tiny_dir.is_symlink() and not any(tiny_dir.iterdir()):
            return tiny_dir  # an empty folder: built into
        if not _is_complete_model_folder(tiny_dir):
            raise TrainingSetupError(
                f"tiny_model_dir {tiny_dir} exists but is not a complete model folder (config.json, model.safetensors "
                "and processor_config.json): facetrack does not delete or build over files it did not write; move "
                "it away or set --tiny_model_dir to a new or empty folder"
            )
    return tiny_dir


def resolve_model_path(model_args: ModelArguments, output_dir: str) -> str:
    """The Hub-layout folder to start from: `model_name_or_path`, or a tiny model built (once) for this run."""
    if model_args.model_name_or_path is None and model_args.tiny_language_model is None:
        raise TrainingSetupError("set model_name_or_path (a FaceTrack-MM folder or repo) or tiny_language_model")
    if model_args.model_name_or_path is not None:  # wins over a recipe's tiny_language_model
        return model_args.model_name_or_path
    from facetrack.hub.builders import build_tiny_model

    tiny_dir = tiny_model_dir(model_args, output_dir)
    if not _is_complete_model_folder(tiny_dir):  # built once: a resumed run restarts from the same base
        build_kwargs = {}
        if model_args.tiny_tokenizer is not None:
            build_kwargs["tokenizer"] = model_args.tiny_tokenizer
        for name in ("face_tokens_per_frame", "global_tokens_per_frame", "expression_tokens_per_frame"):
            if getattr(model_args, name) is not None:
                build_kwargs[name] = getattr(model_args, name)
        if not model_args.timestamps:
            build_kwargs["timestamps"] = False
        if model_args.phase_labels:
            build_kwargs["phase_labels"] = True
        if model_args.expression_columns != "all":
            build_kwargs["expression_columns"] = model_args.expression_columns
        # Built beside its place and renamed into it when complete, so an interrupted build leaves no half folder.
        # A partial folder is deleted only when facetrack made it (its marker file) and the run that made it is gone.
        for stale in tiny_dir.parent.glob(f".{tiny_dir.name}.partial-*"):
            pid = stale.name.rsplit("-", 1)[1]
            if pid.isdigit() and (stale / PARTIAL_MARKER).is_file() and not stale.is_symlink() \
                    and not _process_alive(int(pid)):  # left by a killed run
                shutil.rmtree(stale, ignore_errors=True)
        partial = tiny_dir.with_name(f".{tiny_dir.name}.partial-{os.getpid()}")
        if partial.exists() and not (partial / PARTIAL_MARKER).is_file():
            raise TrainingSetupError(f"{partial} exists and was not made by facetrack: move it away")
        partial.mkdir(parents=True, exist_ok=True)
        (partial / PARTIAL_MARKER).write_text("a tiny FaceTrack-MM model being built by facetrack train\n")
        build_tiny_model(str(partial), language_model=model_args.tiny_language_model, **build_kwargs)
        (partial / PARTIAL_MARKER).unlink()
        if tiny_dir.is_dir() and not any(tiny_dir.iterdir()):
            tiny_dir.rmdir()  # an empty folder given as the place: the complete one takes it
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
    """(model, processor) from the folder, in `model_args.dtype`; the processor pads with EOS when it has no pad."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from facetrack.inference.captioner import resolve_dtype

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
