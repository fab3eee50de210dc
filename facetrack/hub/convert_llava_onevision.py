"""Start FaceTrack-MM from LLaVA-OneVision: an aligned video LLM with exactly FaceTrack-MM's parts.

`convert_llava_onevision(source, out_dir)` reads a transformers-format LLaVA-OneVision checkpoint (a Hub id such as
`llava-hf/llava-onevision-qwen2-0.5b-ov-hf`, `llava-hf/llava-onevision-qwen2-7b-ov-hf`,
`llava-hf/LLaVA-Video-7B-Qwen2-hf`, or a local folder) and writes a Hub-layout FaceTrack-MM folder:

- vision tower, LLM and LM head: LLaVA-OneVision's, unchanged;
- `video_projector` = its `multi_modal_projector`; `face_projector` = a copy of it (the face path starts from the
  aligned projector, not from noise); `video_newline_embedding` = its `image_newline`;
- the global path reproduces LLaVA-OneVision's video path exactly (`LlavaOnevisionModel.get_video_features`): the
  same hidden state of the vision tower, the projector applied to every patch, then bilinear interpolation of the
  grid to ceil(side / 2) x ceil(side / 2) (196 tokens per frame for SigLIP-384), one newline embedding after each
  video, no timestamps. `global_tokens_per_frame` smaller than that interpolates to a smaller grid instead;
- `face_tokens_per_frame` face tokens per frame (0: none, and the model computes what LLaVA-OneVision computes),
  with a fresh "no face" embedding;
- `expression_tokens_per_frame` expression tokens per frame (0: none), from a fresh expression projector over the
  feature set the installed facetrack-mm computes (`EXPRESSION_FEATURES`, recorded in the config), with a fresh
  "no expression" embedding and `<expression>` added to the tokenizer;
- the tokenizer with `<face>` added (LLaVA-OneVision's `<video>` is FaceTrack's video placeholder), and FaceTrack's
  ChatML chat template (the same prompt format LLaVA-OneVision's Qwen2 was tuned on; see `chat_template`).

Only the model class, its config, the tokenizer and the preprocessor JSON files are read: LLaVA-OneVision's own
processor (whose video processor needs torchvision) is never instantiated.
"""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path

import torch

from facetrack.hub.folder import save_hub_folder
from facetrack.hub.sources import check_model_source
from facetrack.hub.tokenizers import CHAT_TOKENS, FACE_TOKEN, VIDEO_TOKEN, add_facetrack_tokens
from facetrack.hub.builders import (
    expression_stream_settings,
    finish_model,
    fresh_visual_parts,
    lexical_expression_init,
    model_from_parts,
    processor_for,
)
from facetrack.model.configuration_facetrack import FaceTrackConfig
from facetrack.model.processing_facetrack import DEFAULT_CHAT_TEMPLATE

PREPROCESSOR_FILES = ("video_preprocessor_config.json", "preprocessor_config.json")
CHAT_TEMPLATE_CHOICES = ("facetrack", "source")
TIMESTAMP_TEMPLATE = "<t={:.1f}s>"


class ConversionError(ValueError):
    """A checkpoint that cannot become FaceTrack-MM as asked (the message names the value and why)."""


def llava_onevision_global_tokens(vision_config) -> int:
    """Tokens per frame of LLaVA-OneVision's video path: the patch grid bilinearly halved, rounded up."""
    side = vision_config.image_size // vision_config.patch_size
    return math.ceil(side / 2) ** 2


def facetrack_config_for(llava_config, face_token_id: int, face_tokens_per_frame: int,
                         global_tokens_per_frame: int | None, video_pooling: str, **stream_settings) -> FaceTrackConfig:
    """The FaceTrack-MM config whose global path is LLaVA-OneVision's video path (checks what cannot be)."""
    if llava_config.vision_config.model_type != "siglip_vision_model":
        raise ConversionError(f"the vision tower is {llava_config.vision_config.model_type!r}; only SigLIP is supported")
    if not isinstance(llava_config.vision_feature_layer, int):
        raise ConversionError(
            f"vision_feature_layer={llava_config.vision_feature_layer} concatenates several layers; FaceTrack-MM "
            "reads one layer"
        )
    if llava_config.vision_feature_select_strategy != "full":
        raise ConversionError(
            f"vision_feature_select_strategy={llava_config.vision_feature_select_strategy!r}: LLaVA-OneVision's video "
            "path reshapes all patches into a grid, so only 'full' (SigLIP has no CLS token) can be reproduced"
        )
    if global_tokens_per_frame is None:
        global_tokens_per_frame = llava_onevision_global_tokens(llava_config.vision_config)
    return FaceTrackConfig(
        vision_config=copy.deepcopy(llava_config.vision_config),
        text_config=copy.deepcopy(llava_config.text_config),
        global_tokens_per_frame=global_tokens_per_frame,
        face_tokens_per_frame=face_tokens_per_frame,
        video_pooling=video_pooling,
        projector_before_pooling=True,
        video_newline=True,
        projector_type="mlp2x_gelu",
        projector_hidden_act=llava_config.projector_hidden_act,
        projector_bias=llava_config.multimodal_projector_bias,
        vision_feature_layer=llava_config.vision_feature_layer,
        video_token_id=llava_config.video_token_id,
        face_token_id=face_token_id,
        tie_word_embeddings=llava_config.tie_word_embeddings,
        **stream_settings,
    )


def read_source_json(source: str | os.PathLike, filename: str, **hub_kwargs) -> dict | None:
    """A JSON file of the checkpoint (local folder or Hub id), or None where it has none."""
    from transformers.utils import cached_file

    path = cached_file(str(source), filename, _raise_exceptions_for_missing_entries=False, **hub_kwargs)
    return json.loads(Path(path).read_text()) if path else None


def source_normalisation(source: str | os.PathLike, **hub_kwargs) -> dict:
    """image_mean / image_std of LLaVA-OneVision's (video) preprocessor, read from its JSON (no torchvision)."""
    for filename in PREPROCESSOR_FILES:
        settings = read_source_json(source, filename, **hub_kwargs)
        if settings and "image_mean" in settings and "image_std" in settings:
            return {"image_mean": list(settings["image_mean"]), "image_std": list(settings["image_std"])}
    return {}


def source_chat_template(source: str | os.PathLike, tokenizer, **hub_kwargs) -> str:
    from transformers.utils import cached_file

    path = cached_file(str(source), "chat_template.jinja", _raise_exceptions_for_missing_entries=False, **hub_kwargs)
    if path:
        return Path(path).read_text()
    for filename in ("chat_template.json", "processor_config.json"):
        settings = read_source_json(source, filename, **hub_kwargs)
        if settings and settings.get("chat_template"):
            return settings["chat_template"]
    if tokenizer.chat_template:
        return tokenizer.chat_template
    raise ConversionError(f"{source} has no chat template; use chat_template='facetrack'")


def convert_llava_onevision(
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    face_tokens_per_frame: int = 16,
    global_tokens_per_frame: int | None = None,
    video_pooling: str = "bilinear",
    timestamps: bool = False,
    num_frames: int = 32,
    dtype: str | torch.dtype | None = "auto",
    chat_template: str = "facetrack",
    seed: int = 0,
    expression_tokens_per_frame: int = 0,
    **hub_kwargs,
) -> Path:
    """Convert a LLaVA-OneVision checkpoint into a FaceTrack-MM Hub folder at `out_dir`; returns the folder.

    face_tokens_per_frame: face tokens per frame (a perfect square; 0 = no face path, LLaVA-OneVision exactly).
    global_tokens_per_frame: default LLaVA-OneVision's ceil(side / 2)^2 (196 for SigLIP-384); fewer (e.g. 81)
        pools each frame to a smaller grid, with `video_pooling` ("bilinear" as LLaVA-OneVision, or "average").
    timestamps: render `<t=1.5s>` before each frame (LLaVA-OneVision never saw them; off reproduces it).
    num_frames: the processor's default frames per video (LLaVA-OneVision was tuned on 32).
    dtype: weights dtype ("auto": as saved, e.g. bfloat16 for the llava-hf checkpoints).
    chat_template: "facetrack" (ChatML with `{% generation %}` marks, what the training collator needs) or
        "source" (the checkpoint's own).
    seed: seeds the fresh "no face" embedding (and the expression stream's parts).
    expression_tokens_per_frame: expression tokens per frame (0: no expression stream). hub_kwargs (e.g. `revision`, `token`) go to `from_pretrained`.
    """
    from transformers import AutoTokenizer, LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

    if chat_template not in CHAT_TEMPLATE_CHOICES:
        raise ConversionError(f"chat_template must be one of {CHAT_TEMPLATE_CHOICES}, got {chat_template!r}")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ConversionError(f"{out_dir} exists and is not empty: give a new folder")
    # A folder that does not exist, or a Hub id while the Hub cannot be reached: one line now, not retries.
    hub_kwargs = {**check_model_source(source, "source checkpoint", revision=hub_kwargs.get("revision")), **hub_kwargs}
    # The model type first, from the JSON: AutoConfig would want to run the code of a custom-code checkpoint.
    source_config = read_source_json(source, "config.json", **hub_kwargs)
    if source_config is None:
        raise ConversionError(f"{source} has no config.json: not a transformers-format checkpoint (LLaVA-OneVision's "
                              "are the llava-hf/*-hf repos)")
    model_type = source_config.get("model_type")
    if model_type != "llava_onevision":
        raise ConversionError(
            f"{source} is a {model_type!r} checkpoint, not LLaVA-OneVision (model_type 'llava_onevision')"
        )
    llava_config = LlavaOnevisionConfig.from_pretrained(str(source), **hub_kwargs)
    tokenizer = AutoTokenizer.from_pretrained(str(source), **hub_kwargs)
    if tokenizer.convert_tokens_to_ids(VIDEO_TOKEN) != llava_config.video_token_id:
        raise ConversionError(
            f"the tokenizer's {VIDEO_TOKEN} is id {tokenizer.convert_tokens_to_ids(VIDEO_TOKEN)} but the model's "
            f"video_token_id is {llava_config.video_token_id}"
        )
    missing = [token for token in CHAT_TOKENS if token not in tokenizer.get_vocab()]
    if missing and chat_template == "facetrack":
        raise ConversionError(f"the tokenizer has no {missing} tokens: the ChatML template needs them")
    template = DEFAULT_CHAT_TEMPLATE if chat_template == "facetrack" else source_chat_template(
        source, tokenizer, **hub_kwargs
    )
    _, face_token_id = add_facetrack_tokens(tokenizer)
    stream = expression_stream_settings(tokenizer, expression_tokens_per_frame)
    config = facetrack_config_for(llava_config, tokenizer.convert_tokens_to_ids(FACE_TOKEN), face_tokens_per_frame,
                                  global_tokens_per_frame, video_pooling, **stream)

    llava = LlavaOnevisionForConditionalGeneration.from_pretrained(str(source), dtype=dtype, **hub_kwargs)
    parts = fresh_visual_parts(config, llava.lm_head.weight.dtype, seed=seed)
    parts["video_projector"].load_state_dict(llava.model.multi_modal_projector.state_dict())
    if config.has_face_path:
        parts["face_projector"].load_state_dict(llava.model.multi_modal_projector.state_dict())
    parts["video_newline_embedding"] = torch.nn.Parameter(llava.model.image_newline.detach().clone())
    model = model_from_parts(config, llava.model.vision_tower, llava.model.language_model, llava.lm_head, parts)
    finish_model(model, tokenizer, llava.generation_config, exact_vocab=False)
    if config.has_expression_stream:  # the new projector starts out as the caption's words (see the function)
        lexical_expression_init(model, tokenizer)
    if getattr(llava_config, "image_token_id", None) is not None:  # FaceTrack-MM takes no images
        model.generation_config.suppress_tokens = [*model.generation_config.suppress_tokens, llava_config.image_token_id]

    processor = processor_for(
        config,
        tokenizer,
        chat_template=template,
        num_frames=num_frames,
        timestamp_template=TIMESTAMP_TEMPLATE if timestamps else None,
        **source_normalisation(source, **hub_kwargs),
    )
    is_local = Path(source).exists()
    source_name = Path(source).name if is_local else str(source)
    return save_hub_folder(
        model, processor, out_dir, base_models=None if is_local else [source_name],
        model_name=f"FaceTrack-MM (from {source_name})",
    )


__all__ = ["ConversionError", "convert_llava_onevision", "llava_onevision_global_tokens"]
