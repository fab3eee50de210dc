"""Write a FaceTrack-MM model + processor as a complete Hub model repo (loadable with `trust_remote_code=True`):
safetensors weights, config.json and processor_config.json with `auto_map`, the code files copied flat, tokenizer
files, chat_template.jinja and a model card."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from facetrack.hub.model_card import model_card
from facetrack.model.modeling_facetrack import FaceTrackForConditionalGeneration
from facetrack.model.processing_facetrack import FaceTrackProcessor

# The files a Hub model folder carries: the model's and the HF processor's (the face pipeline the processor uses is
# the installed facetrack-mm package, which the model card's first lines name).
MODEL_CODE_DIR = Path(__file__).resolve().parents[1] / "model"

MODEL_AUTO_MAP = {
    "AutoConfig": "configuration_facetrack.FaceTrackConfig",
    "AutoModel": "modeling_facetrack.FaceTrackModel",
    "AutoModelForImageTextToText": "modeling_facetrack.FaceTrackForConditionalGeneration",
}
PROCESSOR_AUTO_MAP = {"AutoProcessor": "processing_facetrack.FaceTrackProcessor"}
# Saved inside processor_config.json's "video_processor", so AutoVideoProcessor (trust_remote_code; it needs torchvision)
# can load the video processor alone.
VIDEO_PROCESSOR_AUTO_MAP = {"AutoVideoProcessor": "video_processing_facetrack.FaceTrackVideoProcessor"}


def code_files() -> list[Path]:
    """The Python files a Hub repo needs, copied flat: `facetrack/model/*.py` (config, model, processor)."""
    return sorted(path for path in MODEL_CODE_DIR.glob("*.py") if path.name != "__init__.py")


def save_hub_folder(
    model: FaceTrackForConditionalGeneration,
    processor: FaceTrackProcessor,
    out_dir: str | os.PathLike,
    card: str | None = None,
    license: str = "apache-2.0",
    base_models: list[str] | None = None,
    model_name: str = "FaceTrack-MM",
) -> Path:
    """Write a complete Hub model repo to `out_dir` and return it: safetensors weights, config.json and
    processor_config.json with `auto_map`, tokenizer files, chat_template.jinja, the code files (flat), README.md."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.config.auto_map = dict(MODEL_AUTO_MAP)
    model.config.architectures = ["FaceTrackForConditionalGeneration"]
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    processor_config_path = out_dir / "processor_config.json"
    processor_config = json.loads(processor_config_path.read_text())
    processor_config["auto_map"] = dict(PROCESSOR_AUTO_MAP)
    processor_config["video_processor"]["auto_map"] = dict(VIDEO_PROCESSOR_AUTO_MAP)
    processor_config_path.write_text(json.dumps(processor_config, indent=2, sort_keys=True) + "\n")
    for path in code_files():
        shutil.copyfile(path, out_dir / path.name)
    card_text = card if card is not None else model_card(model.config, model_name, license, base_models)
    (out_dir / "README.md").write_text(card_text)
    return out_dir
