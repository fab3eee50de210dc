"""The model a training run starts from: a Hub-layout FaceTrack-MM folder or repo (`model_name_or_path`), or a tiny
one built once for the run (`tiny_language_model`), loaded with `trust_remote_code` like any Hub repo."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from facetrack.training.config import ModelArguments, TrainingSetupError

logger = logging.getLogger(__name__)


def resolve_model_path(model_args: ModelArguments, output_dir: str) -> str:
    """The Hub-layout folder to start from: `model_name_or_path`, or a tiny model built (once) for this run."""
    if model_args.model_name_or_path is None and model_args.tiny_language_model is None:
        raise TrainingSetupError("set model_name_or_path (a FaceTrack-MM folder or repo) or tiny_language_model")
    if model_args.model_name_or_path is not None:  # wins over a recipe's tiny_language_model
        return model_args.model_name_or_path
    from facetrack.hub.builders import build_tiny_model

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
