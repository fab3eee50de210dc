"""Every decoding mode gives the greedy result on batches of videos with different frame counts: beam search and
`num_return_sequences` (the batch expansion must copy each row's whole block of frames), prompt lookup and assisted
decoding with the model as its own assistant (transformers allows these only for one prompt: it holds three videos).
Also the `get_video_features` contract (transformers 5: an output object with `pooler_output`), the visual inputs
reaching the model only at prefill, and the tied head's tensor-parallel entry. Four layouts run: FaceTrack's
(timestamps, face tokens, some faces missing), LLaVA-OneVision's (bilinear pooling after the projector, one newline
token per video), FaceTrack's with the expression stream beside them (2 `<expression>` tokens per frame, unmeasured
where the face is missing), and the expression stream alone (no vision tower, no pixels: the stored timelines of
the tracks are the only visual input)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from expression_tracks import measured_track

from facetrack.model.generation_facetrack import PER_FRAME_INPUT_NAMES, VISUAL_INPUT_NAMES, FaceTrackInputError
from facetrack.model.modeling_facetrack import FaceTrackForConditionalGeneration
from facetrack.faces.track_result import FaceTrackResult
from facetrack.model.processing_facetrack import FaceTrackProcessor

FRAME_COUNTS = (2, 3, 4)
NEW_TOKENS = 6


def video(num_frames: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(num_frames, 48, 64, 3), dtype=np.uint8)


def track(num_frames: int) -> FaceTrackResult:
    """Some faces missing; the present ones with a stored (made-up) measured expression timeline."""
    boxes = [[6.0 + i, 5.0, 40.0, 38.0] if i % 3 != 1 else None for i in range(num_frames)]
    return measured_track(boxes, seed=num_frames)


def prompt(num_videos: int, index: int) -> str:
    return f"<|im_start|>user\n{'<video>' * num_videos}\nDescribe clip {index}.<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module",
                params=["facetrack", "llava_onevision_layout", "facetrack_with_expressions", "expressions_alone"])
def model_and_processor(request, tiny_model_dir):
    folder = {"facetrack_with_expressions": "tiny_stream_model_dir",
              "expressions_alone": "tiny_expression_model_dir"}.get(request.param)
    if folder is not None:
        tiny_model_dir = request.getfixturevalue(folder)
    model = FaceTrackForConditionalGeneration.from_pretrained(tiny_model_dir).eval()
    processor = FaceTrackProcessor.from_pretrained(tiny_model_dir)
    if request.param == "llava_onevision_layout":
        config = copy.deepcopy(model.config)
        config.update({"video_pooling": "bilinear", "projector_before_pooling": True, "video_newline": True})
        torch.manual_seed(1)
        model = FaceTrackForConditionalGeneration(config).eval()
        model.generation_config = FaceTrackForConditionalGeneration.from_pretrained(tiny_model_dir).generation_config
        processor = copy.copy(processor)
        processor.video_newline, processor.timestamp_template = True, None
    return model, processor


@pytest.fixture(scope="module")
def batch_of_three(model_and_processor):
    """Three prompts, one video each, of 2, 3 and 4 frames (so rows are left-padded differently)."""
    _, processor = model_and_processor
    return processor(text=[prompt(1, i) for i in range(3)], videos=[video(n, n) for n in FRAME_COUNTS],
                     face_tracks=[track(n) for n in FRAME_COUNTS])


@pytest.fixture(scope="module")
def one_prompt_three_videos(model_and_processor):
    _, processor = model_and_processor
    return processor(text=prompt(3, 0), videos=[video(n, 10 + n) for n in FRAME_COUNTS],
                     face_tracks=[track(n) for n in FRAME_COUNTS])


def generate(model, inputs, **settings):
    with torch.no_grad():
        return model.generate(**inputs, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                              return_dict_in_generate=True, output_logits=True, **settings)


@pytest.mark.parametrize("inputs_name", ["batch_of_three", "one_prompt_three_videos"])
def test_beams_and_returned_sequences_start_from_greedys_scores(model_and_processor, inputs_name, request):
    model, _ = model_and_processor
    inputs = request.getfixturevalue(inputs_name)
    rows = inputs["input_ids"].shape[0]
    greedy = generate(model, inputs, do_sample=False)

    beams = generate(model, inputs, do_sample=False, num_beams=2)
    first_step = beams.logits[0].view(rows, 2, -1)
    for beam in range(2):
        assert (first_step[:, beam] - greedy.logits[0]).abs().max() < 1e-5, "every beam must see its own row's video"

    sampled = generate(model, inputs, do_sample=True, top_k=1, num_return_sequences=2)
    assert torch.equal(sampled.sequences, greedy.sequences.repeat_interleave(2, dim=0))


def test_prompt_lookup_and_assisted_decoding_give_the_greedy_tokens(model_and_processor, one_prompt_three_videos):
    model, _ = model_and_processor
    greedy = generate(model, one_prompt_three_videos, do_sample=False).sequences
    lookup = generate(model, one_prompt_three_videos, do_sample=False, prompt_lookup_num_tokens=3).sequences
    assisted = generate(model, one_prompt_three_videos, do_sample=False, assistant_model=model).sequences
    assert torch.equal(lookup, greedy)
    assert torch.equal(assisted, greedy)


def test_batch_expansion_copies_each_rows_block_of_frames(model_and_processor, batch_of_three):
    model, _ = model_and_processor
    kwargs = {key: value for key, value in batch_of_three.items() if key != "input_ids"}
    input_ids, expanded = model._expand_inputs_for_generation(2, input_ids=batch_of_three["input_ids"], **kwargs)
    assert expanded["video_num_frames"].tolist() == [2, 2, 3, 3, 4, 4]
    starts = np.cumsum([0, *FRAME_COUNTS])
    per_frame = [name for name in PER_FRAME_INPUT_NAMES if name in batch_of_three]
    assert set(per_frame) >= ({"expression_features", "expression_mask"} if model.config.has_expression_stream
                              else {"pixel_values_videos", "face_mask"})
    for name in per_frame:
        blocks = [batch_of_three[name][starts[i]:starts[i + 1]] for i in range(3)]
        assert torch.equal(expanded[name], torch.cat([block for block in blocks for _ in range(2)])), name
    assert torch.equal(input_ids, batch_of_three["input_ids"].repeat_interleave(2, dim=0))
    # Frames that do not add up to the rows' placeholders are named, not silently regrouped.
    wrong = dict(kwargs, video_num_frames=torch.tensor([3, 2, 4]))
    with pytest.raises(FaceTrackInputError, match="do not match whole videos"):
        model._expand_inputs_for_generation(2, input_ids=batch_of_three["input_ids"], **wrong)


def test_visual_inputs_reach_the_model_only_at_prefill(model_and_processor, batch_of_three):
    model, _ = model_and_processor
    seen = []
    hook = model.model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(sorted(name for name in VISUAL_INPUT_NAMES
                                                        if kwargs.get(name) is not None)), with_kwargs=True)
    try:
        generate(model, batch_of_three, do_sample=False, num_beams=2)
    finally:
        hook.remove()
    assert seen[0] == sorted(name for name in VISUAL_INPUT_NAMES if name in batch_of_three)
    assert seen[1:] == [[]] * (NEW_TOKENS - 1)


def test_get_video_features_returns_transformers_output_object(model_and_processor, batch_of_three):
    model, _ = model_and_processor
    config = model.config
    frame_inputs = {key: batch_of_three[key] for key in VISUAL_INPUT_NAMES if key in batch_of_three}
    total_frames = sum(FRAME_COUNTS)
    if not config.has_vision_path:  # the stream alone: what fills each video's <expression> tokens, in frame order
        with torch.no_grad():
            output = model.get_video_features(**frame_inputs)
        tokens = config.expression_tokens_per_frame
        assert output.last_hidden_state is None and output.frame_features is None
        assert output.expression_features.shape == (total_frames, tokens, config.text_config.hidden_size)
        assert [tuple(video.shape) for video in output.pooler_output] == [
            (frames * tokens, config.text_config.hidden_size) for frames in FRAME_COUNTS]
        assert torch.equal(torch.cat(output.pooler_output), output.expression_features.flatten(0, 1))
        return
    with torch.no_grad():
        output = model.get_video_features(**frame_inputs)
        as_tuple = model.get_video_features(**frame_inputs, return_dict=False)
        with_states = model.get_video_features(**frame_inputs, output_hidden_states=True)
    newline = int(config.video_newline)
    assert [tuple(video.shape) for video in output.pooler_output] == [
        (frames * config.global_tokens_per_frame + newline, config.text_config.hidden_size) for frames in FRAME_COUNTS
    ]
    assert output.last_hidden_state.shape[:2] == (total_frames, config.patch_grid_side ** 2)
    assert output.frame_features.shape == (total_frames, config.global_tokens_per_frame, config.text_config.hidden_size)
    assert output.face_features.shape == (total_frames, config.face_tokens_per_frame, config.text_config.hidden_size)
    if config.has_expression_stream:
        assert output.expression_features.shape == (total_frames, config.expression_tokens_per_frame,
                                                    config.text_config.hidden_size)
    else:
        assert output.expression_features is None
    assert output.hidden_states is None
    assert isinstance(as_tuple, tuple) and torch.equal(as_tuple[0], output.last_hidden_state)
    assert len(with_states.hidden_states) == config.vision_config.num_hidden_layers + 1
    assert all(state.shape[0] == total_frames for state in with_states.hidden_states)
    for ours, theirs in zip(with_states.pooler_output, output.pooler_output):
        assert torch.equal(ours, theirs), "asking for hidden states must not change the features"


def test_tied_head_has_a_tensor_parallel_entry(model_and_processor):
    model, _ = model_and_processor
    config = copy.deepcopy(model.config)
    config.tie_word_embeddings = True
    tied = FaceTrackForConditionalGeneration(config)
    assert tied.lm_head.weight is tied.get_input_embeddings().weight
    assert tied.tp_plan.get("lm_head") == "colwise_gather_output"
    assert tied.tp_plan.get("model.language_model.embed_tokens") == "embedding_rowwise"
