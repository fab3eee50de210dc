"""Captions from models other than FaceTrack-MM, so FEC-Bench scores any model side by side with ours.

- `TransformersVideoCaptioner`: any transformers video chat model (LLaVA-OneVision, Qwen2-VL, LLaVA-NeXT-Video ...),
  loaded with its own Auto class, tokenizer and chat template. Frames are sampled uniformly by
  `facetrack.video.decode` and given to the model's own processor (`processor(text=..., videos=[frames])`).
  Where that processor cannot load (transformers' video processors need torchvision), a documented fallback builds
  the inputs the processor would (`FALLBACKS`; LLaVA-OneVision: each frame resized to the checkpoint's video size
  with bicubic resampling, rescaled by 1/255 and normalised with its mean / std, and the `<video>` token repeated
  frames x ceil(patches / 2)^2 + 1 times), and says so in `notes` (printed under the table).
- `OpenAIVideoCaptioner`: any OpenAI-compatible chat endpoint, frames sent as base64 JPEG images after the prompt,
  the way GPT-4o is evaluated on video benchmarks.
- `build_tiny_llava_onevision`: the tiny random LLaVA-OneVision the tests (and quick checks) use.
All captioners share `generate_captions(videos, prompt, num_frames=, max_new_tokens=) -> (captions, info)`, the
interface `facetrack.evaluation.generation.generate_predictions` drives.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
from pathlib import Path
from typing import Any

from facetrack.data.schema import FEC_BENCH_PROMPT
from facetrack.inference.llm import post_chat_completion


class EndpointError(OSError):
    """The chat endpoint could not be reached or answered an error: it stops the run (it is not one bad video, which
    generation skips and counts), hence an OSError rather than a bad-input error."""


DEFAULT_NUM_FRAMES = 8  # frames per video for other models (the FEC-Bench authors' next model used 8 by default)
OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def model_type_of(model_name_or_path: str) -> str:
    """config.json's model_type of a local folder or a Hub id in the local cache."""
    from transformers import PretrainedConfig

    try:
        config, _ = PretrainedConfig.get_config_dict(model_name_or_path)
    except OSError as error:
        raise ValueError(f"cannot read the model config of {model_name_or_path!r}: {error}") from error
    return str(config.get("model_type", ""))


def sample_frames(video, num_frames: int):
    from facetrack.video.decode import load_video

    return load_video(video, num_frames=num_frames).frames  # (T, H, W, 3) uint8


# ------------------------------------------------------------------------------------------------ transformers
def _read_json(folder: Path, name: str) -> dict:
    path = folder / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _folder_chat_template(folder: Path) -> str | None:
    if (folder / "chat_template.jinja").is_file():
        return (folder / "chat_template.jinja").read_text(encoding="utf-8")
    return _read_json(folder, "chat_template.json").get("chat_template")


class LlavaOnevisionFallback:
    """LLaVA-OneVision inputs without its video processor (which needs torchvision): the same resize (bicubic, to
    the video processor's size), rescale (1/255) and normalisation (its mean / std) per frame, and the `<video>`
    placeholder repeated as LlavaOnevisionProcessor does."""

    name = "llava_onevision"

    def __init__(self, folder: Path, model, tokenizer):
        settings = _read_json(folder, "video_preprocessor_config.json") or _read_json(folder, "preprocessor_config.json")
        processor = _read_json(folder, "processor_config.json")
        vision = model.config.vision_config
        size = settings.get("size") or {"height": vision.image_size, "width": vision.image_size}
        self.height = size.get("height", size.get("shortest_edge", vision.image_size))
        self.width = size.get("width", size.get("shortest_edge", vision.image_size))
        self.mean = settings.get("image_mean", OPENAI_CLIP_MEAN)
        self.std = settings.get("image_std", OPENAI_CLIP_STD)
        self.video_token = processor.get("video_token", "<video>")
        patches = (vision.image_size // vision.patch_size) ** 2
        self.tokens_per_frame = math.ceil(math.isqrt(patches) / 2) ** 2
        self.tokenizer = tokenizer
        self.note = (f"{folder.name}: the LLaVA-OneVision video processor needs torchvision, which does not import "
                     f"here; frames were resized to {self.height}x{self.width} (bicubic), rescaled and normalised by "
                     "facetrack's own preprocessing, as that processor does")

    def inputs(self, text: str, frames, model) -> dict:
        import numpy as np
        import torch
        from PIL import Image

        resized = [np.asarray(Image.fromarray(frame).resize((self.width, self.height), Image.BICUBIC), np.float32)
                   for frame in frames]
        pixels = (np.stack(resized) / 255.0 - np.array(self.mean, np.float32)) / np.array(self.std, np.float32)
        pixel_values = torch.from_numpy(pixels).permute(0, 3, 1, 2)[None]  # (1, T, 3, H, W)
        expanded = text.replace(self.video_token, self.video_token * (len(frames) * self.tokens_per_frame + 1))
        encoded = self.tokenizer(expanded, return_tensors="pt")
        return {**encoded, "pixel_values_videos": pixel_values.to(model.device, model.dtype)}


FALLBACKS = {"llava_onevision": LlavaOnevisionFallback}


class TransformersVideoCaptioner:
    """A transformers video chat model of another architecture (see the module docstring)."""

    def __init__(self, model, tokenizer, chat_template: str | None, processor=None, fallback=None,
                 default_num_frames: int = DEFAULT_NUM_FRAMES, name: str = ""):
        self.model = model
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        self.processor = processor
        self.fallback = fallback
        self.default_num_frames = default_num_frames
        self.name = name
        self.notes = [fallback.note] if fallback is not None else []

    @classmethod
    def load(cls, model_name_or_path: str, device: str | None = None, dtype: str = "auto",
             default_num_frames: int = DEFAULT_NUM_FRAMES) -> "TransformersVideoCaptioner":
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

        from facetrack.inference.captioner import resolve_dtype

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = resolve_dtype(dtype)
        if torch_dtype == "auto" and device.startswith("cuda"):
            torch_dtype = torch.bfloat16
        model = AutoModelForImageTextToText.from_pretrained(model_name_or_path, dtype=torch_dtype)
        model.to(device).eval()
        try:
            processor = AutoProcessor.from_pretrained(model_name_or_path)
            return cls(model, processor.tokenizer, getattr(processor, "chat_template", None), processor=processor,
                       default_num_frames=default_num_frames, name=model_name_or_path)
        except (ImportError, AttributeError, ValueError, TypeError, OSError) as error:
            model_type = model.config.model_type
            if model_type not in FALLBACKS:
                raise ValueError(
                    f"the processor of {model_name_or_path!r} does not load ({type(error).__name__}: "
                    f"{str(error).splitlines()[0][:200]}) and facetrack has no fallback for model type {model_type!r} "
                    f"(it has one for {sorted(FALLBACKS)}); install a torchvision that matches torch"
                ) from error
        folder = Path(model_name_or_path)
        if not folder.is_dir():
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(model_name_or_path, local_files_only=True))
        tokenizer = AutoTokenizer.from_pretrained(folder)
        fallback = FALLBACKS[model.config.model_type](folder, model, tokenizer)
        template = _folder_chat_template(folder) or tokenizer.chat_template
        return cls(model, tokenizer, template, fallback=fallback, default_num_frames=default_num_frames,
                   name=model_name_or_path)

    def _prompt_text(self, prompt: str) -> str:
        messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt}]}]
        if self.processor is not None:
            return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self.tokenizer.apply_chat_template(messages, chat_template=self.chat_template, tokenize=False,
                                                  add_generation_prompt=True)

    def build_inputs(self, video, prompt: str = FEC_BENCH_PROMPT, num_frames: int | None = None) -> dict:
        frames = sample_frames(video, num_frames or self.default_num_frames)
        text = self._prompt_text(prompt)
        if self.fallback is not None:
            return self.fallback.inputs(text, frames, self.model)
        inputs = self.processor(text=[text], videos=[list(frames)], return_tensors="pt")
        return {key: value.to(self.model.device, self.model.dtype) if value.is_floating_point()
                else value.to(self.model.device) for key, value in inputs.items()}

    def generate_captions(self, videos, prompt: str = FEC_BENCH_PROMPT, num_frames: int | None = None,
                          max_new_tokens: int = 256) -> tuple[list[str], list[dict]]:
        """Greedy captions, one video at a time (prompt lengths differ per video for some architectures)."""
        import torch

        captions = []
        for video in videos:
            inputs = self.build_inputs(video, prompt, num_frames)
            with torch.inference_mode():
                output = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
            new_tokens = output[0, inputs["input_ids"].shape[1]:]
            captions.append(self.tokenizer.decode(new_tokens, skip_special_tokens=True).strip())
        return captions, [{} for _ in videos]


# ------------------------------------------------------------------------------------------------ endpoint
def jpeg_data_url(frame, max_side: int = 768, quality: int = 90) -> str:
    from PIL import Image

    image = Image.fromarray(frame)
    image.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class OpenAIVideoCaptioner:
    """An OpenAI-compatible chat endpoint: the prompt, then the sampled frames as base64 JPEG `image_url` parts (in
    time order), greedy (temperature 0)."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None,
                 default_num_frames: int = DEFAULT_NUM_FRAMES, image_detail: str = "auto", max_side: int = 768,
                 timeout: float = 300):
        self.base_url = base_url.rstrip("/")
        self.model_name = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.default_num_frames = default_num_frames
        self.image_detail = image_detail
        self.max_side = max_side
        self.timeout = timeout
        self.notes = [f"captions from {model} at {self.base_url}: frames sent as {image_detail}-detail JPEG images "
                      f"(longest side {max_side} px) after the prompt"]

    def messages(self, frames, prompt: str) -> list[dict[str, Any]]:
        images = [{"type": "image_url", "image_url": {"url": jpeg_data_url(f, self.max_side), "detail": self.image_detail}}
                  for f in frames]
        return [{"role": "user", "content": [{"type": "text", "text": prompt}, *images]}]

    def caption(self, video, prompt: str, num_frames: int | None, max_new_tokens: int) -> str:
        frames = sample_frames(video, num_frames or self.default_num_frames)
        body = {"model": self.model_name, "messages": self.messages(frames, prompt), "temperature": 0,
                "max_tokens": max_new_tokens}
        return post_chat_completion(self.base_url, body, self.api_key, self.timeout, EndpointError,
                                    endpoint="chat endpoint").strip()

    def generate_captions(self, videos, prompt: str = FEC_BENCH_PROMPT, num_frames: int | None = None,
                          max_new_tokens: int = 256) -> tuple[list[str], list[dict]]:
        return [self.caption(video, prompt, num_frames, max_new_tokens) for video in videos], [{} for _ in videos]


# ------------------------------------------------------------------------------------------------ tiny model
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>{% elif part['type'] == 'video' %}<video>{% elif part['type'] == 'text' %}"
    "{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_llava_onevision(out_dir: str | os.PathLike, image_size: int = 32, patch_size: int = 8,
                               seed: int = 0) -> Path:
    """A tiny random LLaVA-OneVision (SigLIP 2 layers + Qwen2 2 layers, a locally trained tokenizer) saved the way
    the Hub's llava-onevision checkpoints are: model, tokenizer, chat_template.jinja, processor_config.json,
    preprocessor_config.json and video_preprocessor_config.json. Loads with AutoProcessor where torchvision imports,
    else through the fallback."""
    import torch
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration, Qwen2Config, SiglipVisionConfig

    from facetrack.hub.tokenizers import train_tiny_tokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer = train_tiny_tokenizer()
    tokenizer.add_tokens(["<image>", "<video>"], special_tokens=True)
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                image_size=image_size, patch_size=patch_size)
    text = Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096)
    pinpoints = [[image_size, image_size], [image_size, 2 * image_size], [2 * image_size, image_size]]
    config = LlavaOnevisionConfig(
        vision_config=vision, text_config=text, image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        video_token_id=tokenizer.convert_tokens_to_ids("<video>"), vision_feature_layer=-1,
        vision_feature_select_strategy="full", image_grid_pinpoints=pinpoints,
    )
    model = LlavaOnevisionForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "chat_template.jinja").write_text(TINY_CHAT_TEMPLATE, encoding="utf-8")
    size = {"height": image_size, "width": image_size}
    common = {"image_mean": OPENAI_CLIP_MEAN, "image_std": OPENAI_CLIP_STD, "do_resize": True, "do_rescale": True,
              "do_normalize": True, "do_convert_rgb": True, "rescale_factor": 1 / 255, "resample": 3, "size": size}
    (out_dir / "preprocessor_config.json").write_text(json.dumps({
        **common, "image_processor_type": "LlavaOnevisionImageProcessor", "image_grid_pinpoints": pinpoints,
        "do_pad": True, "processor_class": "LlavaOnevisionProcessor"}, indent=2))
    (out_dir / "video_preprocessor_config.json").write_text(json.dumps({
        **common, "video_processor_type": "LlavaOnevisionVideoProcessor", "do_sample_frames": False,
        "processor_class": "LlavaOnevisionProcessor"}, indent=2))
    (out_dir / "processor_config.json").write_text(json.dumps({
        "processor_class": "LlavaOnevisionProcessor", "num_image_tokens": (image_size // patch_size) ** 2,
        "vision_feature_select_strategy": "full", "vision_aspect_ratio": "anyres_max_9", "image_token": "<image>",
        "video_token": "<video>"}, indent=2))
    return out_dir
