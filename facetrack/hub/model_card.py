"""The model card (README.md with Hub metadata) of a FaceTrack-MM model repo."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from facetrack import __version__
from facetrack.model.configuration_facetrack import FaceTrackConfig

# For models that show the path from data to generation works, not that they describe faces (tiny, CPU-trained).
DEMONSTRATION_WARNING = (
    "**Warning: a demonstration model, not for describing videos.** {what} Its captions show that the path from data "
    "to generation works; they do not describe the faces in a video. For a usable model, train FaceTrack-MM's "
    "`single_gpu_0p5b` or `paper_7b` recipe on a real dataset."
)

STREAM_MODEL_NOTE = (
    "**What this model is: a small LLM that verbalises measured expression tokens.** {what} It has no image "
    "encoder: per sampled frame it reads {tokens} expression token(s) projected from {reads}, so it describes how "
    "the face changes and cannot see appearance, clothes or the scene. It was trained on weak labels: captions "
    "written by rules from those measurements, for montages of a few clips, and on people it never saw its captions "
    "tell the changes in the right part of the clip more often than not, but miss or invent some and sometimes "
    "repeat a clause: read them beside the measured timeline. For the paper's "
    "model (SigLIP global and face tokens beside the stream, trained on human captions), train FaceTrack-MM's "
    "`single_gpu_0p5b` or `paper_7b` recipe on a GPU."
)

STREAM_READS = {
    "all": "the followed person's measurements by pretrained face models (MediaPipe's 52 blendshapes and head pose, "
           "eye / mouth / brow measures, fer's emotion probabilities, and the rule states and events computed from "
           "them)",
    "rules": "the rule states, events and times computed from the followed person's measurements by pretrained face "
             "models (MediaPipe's blendshapes and head pose, fer's emotions): what the measured caption is written "
             "from, the same on every face; the raw measures themselves it does not read",
}


def portable_path(value: str | os.PathLike) -> str:
    """What a model card may say about a path on the machine that built it: a path under the working folder becomes
    relative to it, any other absolute path just its last name; a relative path or a Hub repo id stays as it is."""
    text = os.fspath(value)
    expanded = os.path.expanduser(text)
    if not os.path.isabs(expanded):
        return Path(text).name if text.startswith("..") else text
    path = Path(os.path.normpath(expanded))
    try:
        relative = path.relative_to(Path.cwd())
    except ValueError:
        return path.name
    return relative.as_posix() if relative.parts else path.name


def without_machine_paths(value: Any) -> Any:
    """`value` (JSON-like: dicts, lists, strings, ...) with every absolute path replaced by `portable_path`'s."""
    if isinstance(value, dict):
        return {key: without_machine_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_machine_paths(item) for item in value]
    if isinstance(value, str) and os.path.isabs(os.path.expanduser(value)):
        return portable_path(value)
    return value


def model_card(
    config: FaceTrackConfig,
    model_name: str = "FaceTrack-MM",
    license: str = "apache-2.0",
    base_models: list[str] | None = None,
    warning: str | None = None,
) -> str:
    """README.md with YAML metadata. `pipeline_tag: video-text-to-text` is the Hub task for video LLMs
    (transformers 5 ships only an `image-text-to-text` pipeline, which passes images, not videos). `warning`, when
    given, is shown first, under the title (e.g. `DEMONSTRATION_WARNING`)."""
    import yaml

    metadata = {
        "library_name": "transformers",
        "pipeline_tag": "video-text-to-text",
        "license": license,
        "language": ["en"],
        "tags": ["facetrack-mm", "video", "facial-expression", "face-tracking", "multimodal", "custom_code"],
    }
    if base_models:
        metadata["base_model"] = list(base_models)
    tokens_per_frame = config.tokens_per_frame()
    order = "after" if config.projector_before_pooling else "before"
    pooling = f"{config.video_pooling} pooling ({order} the projector)"
    newline = "one learned newline token ends each video" if config.video_newline else "no newline token"
    header = yaml.safe_dump(metadata, sort_keys=False).strip()
    notice = f"\n> {warning}\n" if warning else ""
    if config.vision_config is not None:
        vision = (f"- Vision encoder: `{config.vision_config.model_type}` ({config.vision_config.image_size} px,\n"
                  f"  patch {config.vision_config.patch_size}), features from layer {config.vision_feature_layer}.")
    else:
        vision = "- No vision encoder: the model reads the measured expressions only (expression tokens)."
    expressions = ""
    if config.has_expression_stream:
        features = config.expression_features
        expressions = (
            f"\n- Expression stream: {config.expression_tokens_per_frame} expression tokens per frame, projected from "
            f"the feature set `{features['name']}` version {features['version']} ({features['size']} columns per "
            f"frame), which `facetrack-mm {__version__}` computes (`pip install facetrack-mm=={__version__}`); "
            "frames where the face was not measured use a learned \"no expression\" embedding."
        )
    return f"""---
{header}
---

# {model_name}
{notice}
```bash
pip install facetrack-mm   # the processor's face pipeline: decoding, face tracking, expressions
```

A video multimodal LLM that follows the main character's face through a video and describes how their facial
expression changes (an open implementation of FaceTrack-MM, "Facial Dynamics in Video: Instruction Tuning for Improved
Facial Expression Perception and Contextual Awareness", arXiv 2501.07978).

{vision}
- Language model: `{config.text_config.model_type}` (width {config.text_config.hidden_size},
  {config.text_config.num_hidden_layers} layers).
- Per frame: {config.global_tokens_per_frame} global tokens + {config.face_tokens_per_frame} face tokens
  + {config.expression_tokens_per_frame} expression tokens (= {tokens_per_frame}); frames without the main face use a
  learned "no face" embedding: {config.use_no_face_embedding}.
- Frames are pooled to the global grid by {pooling}; {newline}.{expressions}

## Usage

```python
from transformers import AutoModelForImageTextToText, AutoProcessor

model = AutoModelForImageTextToText.from_pretrained("REPO_OR_FOLDER", trust_remote_code=True)
processor = AutoProcessor.from_pretrained("REPO_OR_FOLDER", trust_remote_code=True)
messages = [{{"role": "user", "content": [
    {{"type": "video", "path": "clip.mp4"}},
    {{"type": "text", "text": "Describe how the main character's facial expression changes."}},
]}}]
inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                       processor_kwargs={{"num_frames": 8}})
output = model.generate(**inputs, max_new_tokens=128)
print(processor.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
```
"""
