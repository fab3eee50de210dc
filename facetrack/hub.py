"""FaceTrack-MM and the Hub: one import point for the pieces, each in a module of its own job.

- `facetrack.hub_tokenizers`: FaceTrack's special tokens, SmolLM2's tokenizer, a tiny locally trained BPE.
- `facetrack.model_builders`: `build_from_pretrained_parts`, `build_tiny_model`, `assemble_model`,
  `register_auto_classes`.
- `facetrack.convert_llava_onevision`: `convert_llava_onevision` (start from an aligned video LLM).
- `facetrack.model_card`: `model_card`.
- `facetrack.hub_folder`: `save_hub_folder`, `code_files` (a complete Hub model repo).
- `facetrack.hub_upload`: `upload_to_hub`, `push_hub_folder`, `HubUploadError`.

Importing this module has no side effects (`register_auto_classes()` is explicit).
"""

from __future__ import annotations

from .hub_folder import MODEL_AUTO_MAP, PROCESSOR_AUTO_MAP, code_files, save_hub_folder
from .hub_tokenizers import (
    CHAT_TOKENS,
    FACE_TOKEN,
    SMOLLM2_GGUF_FILE,
    VIDEO_TOKEN,
    add_facetrack_tokens,
    load_smollm2_tokenizer,
    smollm2_gguf_path,
    train_tiny_tokenizer,
)
from .hub_upload import HubUploadError, push_hub_folder, upload_to_hub
from .model_builders import (
    assemble_model,
    build_from_pretrained_parts,
    build_tiny_model,
    register_auto_classes,
    tiny_vision_model,
)
from .model_card import model_card

__all__ = [
    "CHAT_TOKENS",
    "FACE_TOKEN",
    "MODEL_AUTO_MAP",
    "PROCESSOR_AUTO_MAP",
    "SMOLLM2_GGUF_FILE",
    "VIDEO_TOKEN",
    "HubUploadError",
    "add_facetrack_tokens",
    "assemble_model",
    "build_from_pretrained_parts",
    "build_tiny_model",
    "code_files",
    "load_smollm2_tokenizer",
    "model_card",
    "push_hub_folder",
    "register_auto_classes",
    "save_hub_folder",
    "smollm2_gguf_path",
    "tiny_vision_model",
    "train_tiny_tokenizer",
    "upload_to_hub",
]
