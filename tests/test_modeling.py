"""FaceTrack-MM model: token budget, placeholder/feature agreement, "no face" embedding, generate with and without
cache, gradients, dtypes, bad configs; the expression stream (off: nothing of it; alone: no vision tower; the "no
expression" embedding; gradients; errors). Uses a tiny random model (SigLIP 32 px / 8 px patches, Qwen2 width 64) with the
real SmolLM2 tokenizer, and synthetic frames with precomputed face tracks (no detector in the loop)."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import torch
from expression_tracks import measured_track

from facetrack.expressions.features import EXPRESSION_FEATURES
from facetrack.model.configuration_facetrack import FaceTrackConfig, FaceTrackConfigError
from facetrack.model.modeling_facetrack import FaceTrackForConditionalGeneration
from facetrack.model.generation_facetrack import FaceTrackInputError
from facetrack.faces.track_result import FaceTrackResult
from facetrack.model.processing_facetrack import FaceTrackProcessor


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return FaceTrackForConditionalGeneration.from_pretrained(tiny_model_dir).eval()


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    return FaceTrackProcessor.from_pretrained(tiny_model_dir)


def synthetic_video(num_frames: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(num_frames, 48, 64, 3), dtype=np.uint8)


def synthetic_track(present: list[bool]) -> FaceTrackResult:
    boxes = [[10.0 + index % 3, 8.0, 40.0, 38.0] if is_present else None for index, is_present in enumerate(present)]
    return FaceTrackResult.from_boxes(boxes, width=64, height=48, score=0.9, reason="synthetic")


FACE_PATTERNS = {
    "all": lambda n: [True] * n,
    "some": lambda n: [i % 3 != 1 for i in range(n)],
    "none": lambda n: [False] * n,
}


def make_batch(processor, num_videos: int, num_frames: int, pattern: str, seed: int = 0):
    """`num_videos` prompts, each with one video; video i has `num_frames + i` frames (different lengths)."""
    videos, tracks, texts = [], [], []
    for index in range(num_videos):
        frames = num_frames + index
        videos.append(synthetic_video(frames, seed + index))
        tracks.append(synthetic_track(FACE_PATTERNS[pattern](frames)))
        texts.append(f"<|im_start|>user\n<video>\nDescribe clip {index}.<|im_end|>\n<|im_start|>assistant\n")
    return processor(text=texts, videos=videos, face_tracks=tracks)


@pytest.mark.parametrize("pattern", ["all", "some", "none"])
@pytest.mark.parametrize("num_frames", [8, 16])
@pytest.mark.parametrize("num_videos", [1, 3])
def test_placeholder_count_equals_feature_count(model, processor, num_videos, num_frames, pattern):
    config = model.config
    inputs = make_batch(processor, num_videos, num_frames, pattern)
    total_frames = sum(num_frames + i for i in range(num_videos))
    assert inputs["pixel_values_videos"].shape == (total_frames, 3, 32, 32)
    assert inputs["video_num_frames"].tolist() == [num_frames + i for i in range(num_videos)]
    expected_present = sum(sum(FACE_PATTERNS[pattern](num_frames + i)) for i in range(num_videos))
    assert int(inputs["face_mask"].sum()) == expected_present

    ids = inputs["input_ids"]
    for row, frames in enumerate(num_frames + i for i in range(num_videos)):
        assert int((ids[row] == config.video_token_id).sum()) == frames * config.global_tokens_per_frame
        assert int((ids[row] == config.face_token_id).sum()) == frames * config.face_tokens_per_frame

    with torch.no_grad():
        output = model.model(**inputs)  # the inner model: what TRL's loss path calls (no 49k-wide LM head here)
    assert output.video_hidden_states.shape == (total_frames, config.global_tokens_per_frame, 64)
    assert output.face_hidden_states.shape == (total_frames, config.face_tokens_per_frame, 64)
    assert output.last_hidden_state.shape == (*ids.shape, 64)
    assert torch.isfinite(output.last_hidden_state).all()


def test_token_budget_is_what_the_config_says(model, processor):
    config = model.config
    assert (config.global_tokens_per_frame, config.face_tokens_per_frame) == (4, 4)
    assert (processor.global_tokens_per_frame, processor.face_tokens_per_frame) == (4, 4)
    prompt = processor.video_prompt([0.0, 0.5], [True, False])
    assert prompt == "<t=0.0s>" + "<video>" * 4 + "<face>" * 4 + "<t=0.5s>" + "<video>" * 4 + "<face>" * 4
    # Pooling really produces the configured grid from the 4 x 4 patch grid.
    patches = torch.arange(2 * 4 * 4 * 3, dtype=torch.float32).view(2, 4, 4, 3)
    pooled = model.model.pool_patches(patches, 4)
    assert pooled.shape == (2, 4, 3)
    assert torch.allclose(pooled[0, 0], patches[0, :2, :2].reshape(-1, 3).mean(0))


def test_missing_faces_get_the_no_face_embedding_never_crop_features(model, processor):
    inputs = make_batch(processor, 1, 8, "some")
    missing = ~inputs["face_mask"]
    assert missing.any()
    with torch.no_grad():
        output = model(**inputs)
        expected = model.model.no_face_embedding.expand(int(missing.sum()), -1, -1)
        assert torch.equal(output.face_hidden_states[missing], expected)
        assert not torch.allclose(output.face_hidden_states[~missing][0], model.model.no_face_embedding)
        # Whatever the crop of a missing face holds, the model's output does not change.
        noisy = dict(inputs)
        noisy["pixel_values_faces"] = inputs["pixel_values_faces"].clone()
        noisy["pixel_values_faces"][missing] = torch.randn_like(noisy["pixel_values_faces"][missing])
        assert torch.equal(model(**noisy).logits, output.logits)
        # ...but a present face's crop does.
        changed = dict(inputs)
        changed["pixel_values_faces"] = inputs["pixel_values_faces"].clone()
        changed["pixel_values_faces"][~missing] = torch.randn_like(changed["pixel_values_faces"][~missing])
        assert not torch.allclose(model(**changed).logits, output.logits)


def test_without_no_face_embedding_missing_frames_have_no_face_tokens(model, processor):
    config = copy.deepcopy(model.config)
    config.use_no_face_embedding = False
    torch.manual_seed(0)
    dropping_model = FaceTrackForConditionalGeneration(config).eval()
    dropping_processor = copy.copy(processor)
    dropping_processor.use_no_face_embedding = False
    inputs = make_batch(dropping_processor, 3, 8, "some")
    present = int(inputs["face_mask"].sum())
    assert int((inputs["input_ids"] == config.face_token_id).sum()) == present * config.face_tokens_per_frame
    with torch.no_grad():
        output = dropping_model(**inputs)
    assert output.face_hidden_states.shape[0] == present
    # The model with the "no face" embedding refuses this prompt, naming the counts.
    with pytest.raises(FaceTrackInputError, match="<face> placeholder"):
        model(**inputs)


def test_generate_with_and_without_cache_gives_the_same_greedy_tokens(model, processor):
    inputs = make_batch(processor, 2, 4, "some")
    assert (inputs["attention_mask"] == 0).any(), "prompts of different lengths should be left-padded"
    with torch.no_grad():
        cached = model.generate(**inputs, max_new_tokens=5, min_new_tokens=5, do_sample=False, use_cache=True)
        uncached = model.generate(**inputs, max_new_tokens=5, min_new_tokens=5, do_sample=False, use_cache=False)
    assert cached.shape[1] > inputs["input_ids"].shape[1]
    assert torch.equal(cached, uncached)
    placeholders = torch.tensor([model.config.video_token_id, model.config.face_token_id])
    assert not torch.isin(cached[:, inputs["input_ids"].shape[1]:], placeholders).any()


def test_visual_inputs_reach_the_model_only_at_prefill(model, processor):
    inputs = make_batch(processor, 1, 8, "all")
    seen = []
    hook = model.model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs.get("pixel_values_faces") is not None), with_kwargs=True
    )
    try:
        with torch.no_grad():
            model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    finally:
        hook.remove()
    assert seen == [True, False, False, False]


def test_loss_backward_reaches_every_trainable_parameter(model, processor):
    train_model = copy.deepcopy(model).train()
    inputs = make_batch(processor, 2, 4, "some")
    labels = inputs["input_ids"].clone()
    labels[inputs["attention_mask"] == 0] = -100
    output = train_model(**inputs, labels=labels)
    assert torch.isfinite(output.loss)
    output.loss.backward()
    # Hidden states after `vision_feature_layer` (-2) are not used: the last vision layer and post-layernorm.
    last_layer = train_model.config.vision_config.num_hidden_layers - 1
    unused = re.compile(rf"^model\.vision_tower\.(vision_model\.)?(encoder\.layers\.{last_layer}\.|post_layernorm\.)")
    without_grad = [
        name
        for name, parameter in train_model.named_parameters()
        if parameter.requires_grad
        and not unused.match(name)
        and (parameter.grad is None or not torch.any(parameter.grad != 0))
    ]
    assert without_grad == []
    for name in ("model.no_face_embedding", "model.face_projector.linear_1.weight",
                 "model.video_projector.linear_2.weight"):
        assert train_model.get_parameter(name).grad.abs().sum() > 0


def test_gradient_checkpointing_gives_the_same_gradients(model, processor):
    inputs = make_batch(processor, 1, 4, "some")
    gradients = []
    for checkpointing in (False, True):
        train_model = copy.deepcopy(model).train()
        if checkpointing:
            train_model.activation_checkpointing_enable()
            assert train_model.is_activation_checkpointing
        train_model(**inputs, labels=inputs["input_ids"]).loss.backward()
        gradients.append(train_model.model.video_projector.linear_1.weight.grad)
    assert torch.allclose(gradients[0], gradients[1], atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_runs_in_float32_and_bfloat16_on_cpu(tiny_model_dir, processor, dtype):
    typed_model = FaceTrackForConditionalGeneration.from_pretrained(tiny_model_dir, dtype=dtype).eval()
    assert typed_model.dtype == dtype
    inputs = make_batch(processor, 1, 8, "some")
    with torch.no_grad():
        output = typed_model(**inputs)
        generated = typed_model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert output.logits.dtype == dtype
    assert torch.isfinite(output.logits.float()).all()
    assert generated.shape[1] == inputs["input_ids"].shape[1] + 3


def test_placeholder_mismatch_is_a_clear_error(model, processor):
    inputs = make_batch(processor, 1, 8, "all")
    too_few = dict(inputs)
    too_few["pixel_values_videos"] = inputs["pixel_values_videos"][:7]
    too_few["pixel_values_faces"] = inputs["pixel_values_faces"][:7]
    too_few["face_mask"] = inputs["face_mask"][:7]
    too_few["video_num_frames"] = torch.tensor([7])
    with pytest.raises(FaceTrackInputError, match="32 <video> placeholder tokens but the visual inputs give 28"):
        model(**too_few)
    with pytest.raises(FaceTrackInputError, match="video_num_frames sums to 9"):
        model(**{**inputs, "video_num_frames": torch.tensor([9])})
    without_pixels = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}
    with pytest.raises(FaceTrackInputError, match="no pixel_values_videos"):
        model(**without_pixels)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"face_tokens_per_frame": 5}, r"face_tokens_per_frame=5 is not a positive perfect square"),
        ({"face_tokens_per_frame": 25}, r"face_tokens_per_frame=25 \(5 x 5\) does not fit .* 4 x 4 = 16 patches"),
        ({"global_tokens_per_frame": 36}, r"global_tokens_per_frame=36 \(6 x 6\) does not fit"),
        ({"projector_type": "qformer"}, r"projector_type='qformer' is not supported"),
        ({"vision_feature_layer": -9}, r"vision_feature_layer=-9 is out of range"),
        ({"video_pooling": "max"}, r"video_pooling='max' is not supported; choose one of \('average', 'bilinear'\)"),
        ({"face_tokens_per_frame": -4}, r"face_tokens_per_frame=-4 is not a positive perfect square"),
    ],
)
def test_bad_config_is_a_clear_error(model, overrides, message):
    settings = model.config.to_dict()
    settings.update(overrides)
    with pytest.raises(FaceTrackConfigError, match=message):
        FaceTrackConfig(**settings)


def test_default_config_is_paper_scale():
    config = FaceTrackConfig()
    assert config.vision_config.model_type == "siglip_vision_model"
    assert config.patch_grid_side == 27  # SigLIP so400m-patch14-384: 729 patches
    assert config.text_config.model_type == "qwen2"
    assert config.text_config.hidden_size == 3584
    assert (config.global_tokens_per_frame, config.face_tokens_per_frame) == (81, 16)
    assert config.vision_feature_layer == -2 and config.projector_type == "mlp2x_gelu"


def test_configs_saved_before_the_llava_onevision_options_load_and_behave_the_same(model, processor, tiny_model_dir,
                                                                                    tmp_path):
    import json
    import shutil

    from torch.nn import functional as F

    folder = tmp_path / "old"
    shutil.copytree(tiny_model_dir, folder)
    settings = json.loads((folder / "config.json").read_text())
    for key in ("video_pooling", "projector_before_pooling", "video_newline", "projector_bias"):
        settings.pop(key)
    (folder / "config.json").write_text(json.dumps(settings))
    old = FaceTrackForConditionalGeneration.from_pretrained(folder).eval()
    config = old.config
    assert (config.video_pooling, config.projector_before_pooling, config.video_newline) == ("average", False, False)
    assert config.projector_bias and config.has_face_path
    assert set(old.state_dict()) == set(model.state_dict())
    assert not any("newline" in name for name in old.state_dict()), "no parameter the old layout lacks"

    inputs = make_batch(processor, 2, 4, "some")
    with torch.no_grad():
        output = old(**inputs)
        assert torch.equal(output.logits, model(**inputs).logits)
        # The global path as it always was: average-pool hidden state -2 to a k x k grid, then project.
        hidden = old.model.vision_tower(inputs["pixel_values_videos"], output_hidden_states=True).hidden_states[-2]
        side = config.patch_grid_side
        grid = hidden.view(-1, side, side, hidden.shape[-1]).permute(0, 3, 1, 2)
        pooled = F.adaptive_avg_pool2d(grid, 2).flatten(2).transpose(1, 2)
        assert torch.allclose(output.video_hidden_states, old.model.video_projector(pooled), atol=1e-6)


def test_without_a_face_path_there_are_no_face_parameters_and_face_tokens_are_refused(model, processor):
    config = copy.deepcopy(model.config)
    config.face_tokens_per_frame = 0
    torch.manual_seed(0)
    plain = FaceTrackForConditionalGeneration(config).eval()
    assert plain.model.face_projector is None and plain.model.no_face_embedding is None
    assert not any("face" in name for name in plain.state_dict())
    face_inputs = make_batch(processor, 1, 3, "all")  # the processor still writes <face> tokens
    with pytest.raises(FaceTrackInputError, match="<face> placeholder tokens but the model has no face path"):
        plain(**face_inputs)
    plain_processor = copy.copy(processor)
    plain_processor.face_tokens_per_frame = 0
    inputs = make_batch(plain_processor, 2, 3, "all")
    assert "pixel_values_faces" not in inputs
    with torch.no_grad():
        assert plain(**inputs).face_hidden_states is None


# ------------------------------------------------------------------------------------------------ expression stream
@pytest.fixture(scope="module")
def stream_model_and_processor(tiny_stream_model_dir):
    """The expression stream beside global and face tokens (4 + 4 + 2 tokens per frame)."""
    return (FaceTrackForConditionalGeneration.from_pretrained(tiny_stream_model_dir).eval(),
            FaceTrackProcessor.from_pretrained(tiny_stream_model_dir))


@pytest.fixture(scope="module")
def expression_model_and_processor(tiny_expression_model_dir):
    """The expression stream alone: no vision tower (2 expression tokens per frame)."""
    return (FaceTrackForConditionalGeneration.from_pretrained(tiny_expression_model_dir).eval(),
            FaceTrackProcessor.from_pretrained(tiny_expression_model_dir))


def make_stream_batch(processor, num_videos: int, num_frames: int, seed: int = 0):
    """Like `make_batch`, with tracks that hold a measured expression timeline: frames 1, 4, 7, ... have no face
    (unmeasured) and frame 2 a box where the landmarker found no face (unmeasured too)."""
    videos, tracks, texts = [], [], []
    for index in range(num_videos):
        frames = num_frames + index
        boxes = [[10.0 + i % 3, 8.0, 40.0, 38.0] if i % 3 != 1 else None for i in range(frames)]
        videos.append(synthetic_video(frames, seed + index))
        tracks.append(measured_track(boxes, seed=seed + index, not_found=[2]))
        texts.append(f"<|im_start|>user\n<video>\nDescribe clip {index}.<|im_end|>\n<|im_start|>assistant\n")
    return processor(text=texts, videos=videos, face_tracks=tracks)


def test_without_the_stream_config_weights_and_prompts_are_as_before(model, processor, tiny_model_dir):
    """Stream off (the default): nothing of it is saved, built or written into a prompt. (That such a folder gives
    exactly the logits and tokens of the code before the stream is checked against the 0.1 release's code in
    tests/test_hub_loading.py.)"""
    import json

    config = json.loads((tiny_model_dir / "config.json").read_text())
    processor_config = json.loads((tiny_model_dir / "processor_config.json").read_text())
    assert not any(key.startswith("expression") for key in [*config, *processor_config])
    assert model.config.expression_tokens_per_frame == 0 and not model.config.has_expression_stream
    assert model.model.expression_projector is None and model.model.no_expression_embedding is None
    assert not any("expression" in name for name in model.state_dict())
    assert "<expression>" not in processor.tokenizer.get_vocab()
    inputs = make_batch(processor, 1, 3, "some")
    assert not any(key.startswith("expression") for key in inputs)
    assert "<expression>" not in processor.decode(inputs["input_ids"][0])
    with torch.no_grad():
        assert model(**inputs).expression_hidden_states is None
    with pytest.raises(FaceTrackInputError, match="no expression stream"):
        model(**inputs, expression_features=torch.zeros(3, EXPRESSION_FEATURES["size"]),
              expression_mask=torch.ones(3, dtype=torch.bool))


def test_the_stream_alone_has_no_vision_tower(expression_model_and_processor, tiny_expression_model_dir):
    import json

    model, processor = expression_model_and_processor
    config = model.config
    assert config.vision_config is None and not config.has_vision_path and config.has_expression_stream
    assert json.loads((tiny_expression_model_dir / "config.json").read_text())["vision_config"] is None
    assert model.model.vision_tower is None and model.model.video_projector is None
    assert not any(name.startswith(("model.vision_tower", "model.video_projector", "model.face_projector"))
                   for name in model.state_dict())
    assert {name for name in model.state_dict() if not name.startswith(("model.language_model", "lm_head"))} == {
        "model.expression_projector.linear_1.weight", "model.expression_projector.linear_1.bias",
        "model.expression_projector.linear_2.weight", "model.expression_projector.linear_2.bias",
        "model.no_expression_embedding"}
    assert processor.model_input_names == ["input_ids", "attention_mask", "expression_features", "expression_mask",
                                           "video_num_frames"]
    inputs = make_stream_batch(processor, 2, 4)
    assert not any(key.startswith("pixel_values") for key in inputs)
    ids = inputs["input_ids"]
    assert int((ids == config.expression_token_id).sum()) == (4 + 5) * config.expression_tokens_per_frame
    assert not (ids == config.video_token_id).any() and not (ids == config.face_token_id).any()
    with torch.no_grad():
        output = model(**inputs)
    assert output.expression_hidden_states.shape == (9, 2, 64) and torch.isfinite(output.logits).all()
    with pytest.raises(FaceTrackInputError, match="no vision tower"):
        model(**inputs, pixel_values_videos=torch.zeros(9, 3, 32, 32))
    with pytest.raises(FaceTrackInputError, match="<expression> placeholder tokens but no expression_features"):
        model(input_ids=ids, attention_mask=inputs["attention_mask"])


@pytest.mark.parametrize("which", ["beside_vision", "alone"])
def test_unmeasured_frames_get_the_no_expression_embedding(stream_model_and_processor,
                                                          expression_model_and_processor, which):
    model, processor = stream_model_and_processor if which == "beside_vision" else expression_model_and_processor
    inputs = make_stream_batch(processor, 1, 8)
    unmeasured = ~inputs["expression_mask"]
    assert unmeasured.tolist() == [False, True, True, False, True, False, False, True]
    assert (inputs["expression_features"][unmeasured] == 0).all()
    with torch.no_grad():
        output = model(**inputs)
        tokens = output.expression_hidden_states
        assert torch.equal(tokens[unmeasured], model.model.no_expression_embedding.expand(4, -1, -1))
        assert not torch.allclose(tokens[~unmeasured][0], model.model.no_expression_embedding)
        # Whatever an unmeasured frame's features hold, the output does not change...
        noisy = dict(inputs, expression_features=inputs["expression_features"].clone())
        noisy["expression_features"][unmeasured] = torch.randn(4, noisy["expression_features"].shape[1])
        assert torch.equal(model(**noisy).logits, output.logits)
        # ...but a measured frame's features do: the caption depends on the measured expressions.
        changed = dict(inputs, expression_features=inputs["expression_features"].clone())
        changed["expression_features"][~unmeasured] += 1.0
        assert not torch.allclose(model(**changed).logits, output.logits)


@pytest.mark.parametrize("tokens_per_frame", [1, 3])
def test_a_new_projector_starts_out_as_the_captions_words(tokens_per_frame):
    """lexical_expression_init: a frame's tokens start as the caption's words for what is on in it (events, states)
    and for the caption phase it is in (`time:phase_N`), each word told apart from the others (orthogonal) and
    nearest to its own phrase; with 3 tokens per frame each of the three in its own token, with 1 all summed; and
    no frame's token grows with its time (the steep phase units of version 3 did, once trained)."""
    from facetrack.expressions.caption import PHASES, feature_phrases
    from facetrack.hub.builders import lexical_expression_init
    from facetrack.hub.tokenizers import add_facetrack_tokens, load_smollm2_tokenizer

    tokenizer = load_smollm2_tokenizer()
    add_facetrack_tokens(tokenizer, expression_token=True)
    config = FaceTrackConfig(vision_config=None, global_tokens_per_frame=0, face_tokens_per_frame=0,
                             expression_tokens_per_frame=tokens_per_frame, expression_features=EXPRESSION_FEATURES,
                             text_config={"model_type": "qwen2", "vocab_size": len(tokenizer), "hidden_size": 96,
                                          "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                                          "num_key_value_heads": 1})
    torch.manual_seed(0)
    model = FaceTrackForConditionalGeneration(config).eval()
    given = lexical_expression_init(model, tokenizer)
    phrases = feature_phrases()
    assert set(given) == set(phrases)
    assert [phrases[f"time:phase_{index + 1}"] for index in range(4)] == list(PHASES)
    embeddings = model.get_input_embeddings().weight.detach()

    def mean_embedding(text):
        return embeddings[tokenizer(" " + text, add_special_tokens=False)["input_ids"]].mean(0)

    columns = EXPRESSION_FEATURES["columns"]
    projector = model.model.expression_projector
    texts = [phrases[column] for column in phrases]
    means = torch.nn.functional.normalize(torch.stack([mean_embedding(text) for text in texts]), dim=1)

    def read(features_row):  # the frame's tokens, (tokens_per_frame, width)
        with torch.no_grad():
            return projector(features_row[None])[0]

    # Each phrase column alone: its token minus the empty frame's is a word nearest its own phrase, orthogonal to
    # every other column's.
    at_start = read(torch.zeros(len(columns))).sum(0)
    words = []
    for column in phrases:
        row = torch.zeros(len(columns))
        row[columns.index(column)] = 1.0
        words.append(read(row).sum(0) - at_start)
    words = torch.stack(words)
    cosines = torch.nn.functional.normalize(words, dim=1) @ means.T
    assert cosines.argmax(1).tolist() == list(range(len(phrases)))
    between = torch.nn.functional.normalize(words, dim=1) @ torch.nn.functional.normalize(words, dim=1).T
    worst = int((between - torch.eye(len(words))).abs().argmax())
    assert (between - torch.eye(len(words))).abs().max() < 1e-3, [list(phrases)[worst // len(words)], list(phrases)[worst % len(words)]]

    # The phase: a frame in phase N (its time:position and time:seconds as they come) reads as phase N's words in
    # the phase slot, and its tokens are as large at the end of a long clip as at its start.
    phase_slot = 2 % tokens_per_frame
    phase_rows = [columns.index(f"time:phase_{index + 1}") for index in range(4)]
    norms = []
    for position in [0.0, 0.3, 0.6, 1.0]:
        row = torch.zeros(len(columns))
        row[columns.index("time:position")] = position
        row[columns.index("time:seconds")] = 3.0 * position
        row[columns.index(f"time:phase_{min(3, int(position * 4)) + 1}")] = 1.0
        tokens = read(row)
        phase_token = torch.nn.functional.normalize(tokens[phase_slot], dim=0)
        assert int((means[[list(phrases).index(columns[index]) for index in phase_rows]] @ phase_token).argmax()) \
            == min(3, int(position * 4))
        norms.append(float(tokens.norm()))
    assert max(norms) < 1.5 * min(norms)

    # Slots: with 3 tokens, an event and a state frame write into tokens 0 and 1 only (the phase into token 2).
    if tokens_per_frame == 3:
        row = torch.zeros(len(columns))
        row[columns.index("event:blink")] = 1.0
        assert torch.equal(read(row)[1:], read(torch.zeros(len(columns)))[1:])
        row = torch.zeros(len(columns))
        row[columns.index("state:smiling")] = 1.0
        assert torch.equal(read(row)[[0, 2]], read(torch.zeros(len(columns)))[[0, 2]])
    missing = model.model.no_expression_embedding.detach().reshape(tokens_per_frame, -1)
    torch.testing.assert_close(missing, mean_embedding("no face is visible").expand(tokens_per_frame, -1),
                               atol=1e-6, rtol=0)


def test_a_projector_that_reads_the_rule_columns_ignores_the_raw_measures(tmp_path):
    """expression_columns="rules": the projector reads the state, event and time columns only (its input is that
    wide), so a face's raw blendshapes, pose and emotion scores change nothing and its rule columns do; the choice
    survives save and load, and the lexical start gives every phrase column its words as before."""
    from facetrack.expressions.caption import feature_phrases
    from facetrack.expressions.features import RULE_COLUMN_PREFIXES, input_columns
    from facetrack.hub.builders import expression_stream_settings, lexical_expression_init
    from facetrack.hub.tokenizers import load_smollm2_tokenizer

    tokenizer = load_smollm2_tokenizer()
    stream = expression_stream_settings(tokenizer, 1, "rules")
    rules = input_columns("rules")
    assert stream["expression_columns"] == rules and all(name.startswith(RULE_COLUMN_PREFIXES) for name in rules)
    config = FaceTrackConfig(vision_config=None, global_tokens_per_frame=0, face_tokens_per_frame=0, **stream,
                             text_config={"model_type": "qwen2", "vocab_size": len(tokenizer), "hidden_size": 96,
                                          "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                                          "num_key_value_heads": 1})
    torch.manual_seed(0)
    model = FaceTrackForConditionalGeneration(config).eval()
    projector = model.model.expression_projector
    assert projector.linear_1.in_features == len(rules) < EXPRESSION_FEATURES["size"]
    assert set(lexical_expression_init(model, tokenizer)) == set(feature_phrases())
    columns = EXPRESSION_FEATURES["columns"]
    raw = torch.tensor([not name.startswith(RULE_COLUMN_PREFIXES) for name in columns])
    features = torch.rand(5, len(columns))
    with torch.no_grad():
        tokens = model.model.get_expression_features(features)
        other_face = torch.where(raw, torch.rand(5, len(columns)) * 3, features)
        assert torch.equal(model.model.get_expression_features(other_face), tokens)
        other_states = features.clone()
        other_states[:, columns.index("state:smiling")] += 1.0
        assert not torch.allclose(model.model.get_expression_features(other_states), tokens)
    model.save_pretrained(tmp_path)
    again = FaceTrackForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert again.config.expression_columns == rules
    with torch.no_grad():
        torch.testing.assert_close(again.model.get_expression_features(features), tokens)
    with pytest.raises(ValueError, match="expression columns must be one of all, rules, got 'raw'"):
        expression_stream_settings(tokenizer, 1, "raw")


@pytest.mark.parametrize("columns, message", [
    (["state:smiling", "nope"], r"expression_columns names columns the feature set .* does not have: \['nope'\]"),
    (["time:position", "state:smiling"], r"each column once, in the feature set's order"),
    ([], r"a non-empty list of column names"),
])
def test_impossible_expression_columns_are_clear_errors(columns, message):
    with pytest.raises(FaceTrackConfigError, match=message):
        FaceTrackConfig(vision_config=None, global_tokens_per_frame=0, face_tokens_per_frame=0,
                        expression_tokens_per_frame=1, expression_features=EXPRESSION_FEATURES,
                        expression_columns=columns)


@pytest.mark.parametrize("which", ["beside_vision", "alone"])
def test_gradients_reach_the_expression_projector(stream_model_and_processor, expression_model_and_processor, which):
    model, processor = stream_model_and_processor if which == "beside_vision" else expression_model_and_processor
    train_model = copy.deepcopy(model).train()
    inputs = make_stream_batch(processor, 2, 4)
    labels = inputs["input_ids"].clone()
    labels[inputs["attention_mask"] == 0] = -100
    train_model(**inputs, labels=labels).loss.backward()
    for name in ("model.expression_projector.linear_1.weight", "model.expression_projector.linear_2.weight",
                 "model.expression_projector.linear_2.bias", "model.no_expression_embedding"):
        assert train_model.get_parameter(name).grad.abs().sum() > 0, name
    if which == "beside_vision":
        assert train_model.get_parameter("model.face_projector.linear_1.weight").grad.abs().sum() > 0


def test_expression_inputs_that_do_not_fit_are_clear_errors(stream_model_and_processor):
    model, processor = stream_model_and_processor
    inputs = make_stream_batch(processor, 1, 4)
    size = model.config.expression_features["size"]
    with pytest.raises(FaceTrackInputError, match=rf"expression_features must be \(total_frames, {size}\)"):
        model(**dict(inputs, expression_features=inputs["expression_features"][:, :-1]))
    with pytest.raises(FaceTrackInputError, match="expression_mask has 3 entries but expression_features has 4"):
        model(**dict(inputs, expression_mask=inputs["expression_mask"][:3]))
    with pytest.raises(FaceTrackInputError, match="expression_features has 3 rows but pixel_values_videos has 4"):
        model(**dict(inputs, expression_features=inputs["expression_features"][:3],
                     expression_mask=inputs["expression_mask"][:3]))
    without = {key: value for key, value in inputs.items() if not key.startswith("expression")}
    with pytest.raises(FaceTrackInputError, match="8 <expression> placeholder tokens but no expression_features"):
        model(**without)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_stream_alone_runs_in_the_models_dtype(tiny_expression_model_dir, expression_model_and_processor, dtype):
    typed_model = FaceTrackForConditionalGeneration.from_pretrained(tiny_expression_model_dir, dtype=dtype).eval()
    inputs = make_stream_batch(expression_model_and_processor[1], 1, 4)
    assert inputs["expression_features"].dtype == torch.float32
    with torch.no_grad():
        output = typed_model(**inputs)
        generated = typed_model.generate(**inputs, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert output.expression_hidden_states.dtype == output.logits.dtype == dtype
    assert generated.shape[1] == inputs["input_ids"].shape[1] + 3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"expression_tokens_per_frame": 2}, r"expression_tokens_per_frame=2 needs expression_features"),
        ({"expression_tokens_per_frame": -1}, r"expression_tokens_per_frame=-1 must be a whole number >= 0"),
        ({"expression_tokens_per_frame": 2, "expression_features": {"name": "x", "version": 1, "size": 3,
                                                                    "columns": ["a", "b"]}},
         r"expression_features lists 2 columns but says size=3"),
        ({"global_tokens_per_frame": 0, "face_tokens_per_frame": 0},
         r"a frame would have no tokens at all"),
        ({"global_tokens_per_frame": 0, "expression_tokens_per_frame": 1, "expression_features": EXPRESSION_FEATURES},
         r"global_tokens_per_frame=0 with face_tokens_per_frame=4: a model with a vision tower needs global tokens"),
        ({"global_tokens_per_frame": 0, "face_tokens_per_frame": 0, "expression_tokens_per_frame": 1,
          "expression_features": EXPRESSION_FEATURES}, r"no vision tower, so vision_config must be None"),
        ({"global_tokens_per_frame": 0, "face_tokens_per_frame": 0, "expression_tokens_per_frame": 1,
          "expression_features": EXPRESSION_FEATURES, "vision_config": None, "video_newline": True},
         r"video_newline=True needs global tokens"),
        ({"expression_tokens_per_frame": 1, "expression_features": EXPRESSION_FEATURES,
          "expression_token_id": 7, "face_token_id": 7}, r"expression_token_id and face_token_id must differ"),
    ],
)
def test_impossible_stream_configs_are_clear_errors(model, overrides, message):
    settings = model.config.to_dict()
    settings.update(overrides)
    with pytest.raises(FaceTrackConfigError, match=message):
        FaceTrackConfig(**settings)


def test_stream_configs_round_trip_and_the_default_keeps_its_vision_tower(expression_model_and_processor):
    config = expression_model_and_processor[0].config
    again = FaceTrackConfig.from_dict(config.to_dict())
    assert again.vision_config is None and again.expression_features == config.expression_features
    assert again.tokens_per_frame() == 2
    assert FaceTrackConfig(expression_tokens_per_frame=4, expression_features=EXPRESSION_FEATURES).vision_config \
        .model_type == "siglip_vision_model"
