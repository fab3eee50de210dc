"""FaceTrackProcessor on real videos: frame preprocessing, face tracking, precomputed tracks, chat template,
save/load, the expression stream (measured, or read from a stored track; nothing decoded for a model without
pixels), and the errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from expression_tracks import measured_track

from facetrack.analysis.video_analysis import read_face_track
from facetrack.model.processing_facetrack import FaceTrackProcessor
from facetrack.model.video_processing_facetrack import FaceTrackProcessorError, preprocess_frames
from facetrack.video.probe import VideoDecodeError


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    return FaceTrackProcessor.from_pretrained(tiny_model_dir)


def user_video_message(path, text="Describe the facial expression changes."):
    return [{"role": "user", "content": [{"type": "video", "path": str(path)}, {"type": "text", "text": text}]}]


def test_preprocess_frames_resizes_and_normalises_like_siglip():
    frames = np.zeros((2, 40, 60, 3), dtype=np.uint8)
    frames[1] = 255
    pixels = preprocess_frames(frames, 32)
    assert pixels.shape == (2, 3, 32, 32) and pixels.dtype == torch.float32
    assert torch.allclose(pixels[0], torch.full_like(pixels[0], -1.0))
    assert torch.allclose(pixels[1], torch.full_like(pixels[1], 1.0))


def test_real_video_with_a_face(processor, media_dir):
    inputs = processor.apply_chat_template(
        user_video_message(media_dir / "single_face.mp4"),
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        processor_kwargs={"num_frames": 6, "return_face_tracks": True},
    )
    assert inputs["pixel_values_videos"].shape == (6, 3, 32, 32)
    assert inputs["pixel_values_faces"].shape == (6, 3, 32, 32)
    assert inputs["video_num_frames"].tolist() == [6]
    assert inputs["face_mask"].sum() >= 5, "the one person in single_face.mp4 should be found in most frames"
    ids = inputs["input_ids"][0]
    assert int((ids == processor.video_token_id).sum()) == 6 * processor.global_tokens_per_frame
    assert int((ids == processor.face_token_id).sum()) == 6 * processor.face_tokens_per_frame
    text = processor.decode(ids)
    assert text.startswith("<|im_start|>user\n<t=0.0s><video>")
    assert text.endswith("Describe the facial expression changes.<|im_end|>\n<|im_start|>assistant\n")
    # Frames differ from face crops: the crops are zoomed on the face, not the whole frame.
    assert not torch.allclose(inputs["pixel_values_videos"], inputs["pixel_values_faces"])
    assert len(inputs["face_tracks"]) == 1 and inputs["face_tracks"][0]["main_person_id"] is not None


def test_video_without_faces_has_an_all_false_face_mask(processor, media_dir):
    inputs = processor(text="<video> What happens?", videos=str(media_dir / "no_face.mp4"), num_frames=4)
    assert inputs["face_mask"].tolist() == [False] * 4
    assert torch.all(inputs["pixel_values_faces"] == -1.0), "missing faces are all-zero crops (normalised to -1)"
    ids = inputs["input_ids"][0]
    assert int((ids == processor.face_token_id).sum()) == 4 * processor.face_tokens_per_frame


def test_precomputed_face_tracks_decode_exactly_their_frames_without_detection(processor, tiny_model_dir, media_dir):
    video = str(media_dir / "face_noface.mov")
    first = processor(text="<video>", videos=[video], num_frames=6, return_face_tracks=True)
    track = first["face_tracks"][0]
    assert 0 < sum(first["face_mask"].tolist()) < 6, "face_noface.mov cuts from a face to a title card"

    class NoDetection:
        def track(self, clip):
            raise AssertionError("a precomputed face track must not run the detector")

    processor_without_detector = FaceTrackProcessor.from_pretrained(tiny_model_dir)
    processor_without_detector._face_tracker = NoDetection()
    again = processor_without_detector(text="<video>", videos=[video], face_tracks=[track])
    assert torch.equal(again["input_ids"], first["input_ids"])
    assert torch.equal(again["face_mask"], first["face_mask"])
    assert torch.allclose(again["pixel_values_videos"], first["pixel_values_videos"])
    assert torch.allclose(again["pixel_values_faces"], first["pixel_values_faces"])
    # A FaceTrackResult works as well as its dict; and the frames decoded are exactly the track's frames.
    result = read_face_track(track)
    subset = result.select_frames(range(3))
    short = processor_without_detector(text="<video>", videos=[video], face_tracks=[subset])
    assert short["video_num_frames"].tolist() == [3]
    assert torch.allclose(short["pixel_values_videos"], first["pixel_values_videos"][:3])
    assert processor_without_detector(text="<video>", videos=[video], face_tracks=[result])["face_mask"].shape == (6,)


def test_batch_of_prompts_with_different_videos(processor, media_dir):
    conversations = [
        user_video_message(media_dir / "single_face.mp4"),
        user_video_message(media_dir / "no_face.mp4", text="And this one?"),
    ]
    inputs = processor.apply_chat_template(
        conversations, add_generation_prompt=True, tokenize=True, return_dict=True, processor_kwargs={"num_frames": 4}
    )
    assert inputs["input_ids"].shape[0] == 2
    assert inputs["video_num_frames"].tolist() == [4, 4]
    assert inputs["face_mask"][4:].tolist() == [False] * 4
    assert (inputs["attention_mask"][:, 0] == 0).any() or inputs["attention_mask"].all()
    assert inputs["attention_mask"][:, -1].all(), "left padding: every prompt ends at the last position"


def test_save_and_load_round_trip(processor, tmp_path, media_dir):
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "processor_config.json").is_file()
    assert (tmp_path / "chat_template.jinja").read_text() == processor.chat_template
    reloaded = FaceTrackProcessor.from_pretrained(tmp_path)
    for name in ("image_size", "num_frames", "global_tokens_per_frame", "face_tokens_per_frame", "timestamp_template",
                 "video_token_id", "face_token_id", "use_no_face_embedding", "video_newline"):
        assert getattr(reloaded, name) == getattr(processor, name), name
    assert reloaded.tokenizer.padding_side == processor.tokenizer.padding_side == "left"
    frames = np.random.default_rng(0).integers(0, 256, size=(3, 48, 64, 3), dtype=np.uint8)
    a = processor(text="<video> hi", videos=[frames])
    b = reloaded(text="<video> hi", videos=[frames])
    assert torch.equal(a["input_ids"], b["input_ids"])
    assert torch.equal(a["pixel_values_videos"], b["pixel_values_videos"])


def test_undecodable_video_is_a_clear_error(processor, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"this is not a video")
    with pytest.raises(VideoDecodeError, match="broken.mp4"):
        processor(text="<video>", videos=[str(broken)])
    with pytest.raises(VideoDecodeError, match="missing.mp4: file not found"):
        processor.apply_chat_template(user_video_message(tmp_path / "missing.mp4"), tokenize=True, return_dict=True)


def test_empty_message_list_is_a_clear_error(processor):
    with pytest.raises(FaceTrackProcessorError, match="message list is empty"):
        processor.apply_chat_template([], tokenize=True, return_dict=True)
    with pytest.raises(FaceTrackProcessorError, match="conversation 1 of the batch has no messages"):
        processor.apply_chat_template([user_video_message("x.mp4"), []])


def test_placeholder_count_must_match_the_videos(processor):
    frames = np.zeros((2, 16, 16, 3), dtype=np.uint8)
    with pytest.raises(FaceTrackProcessorError, match=r"2 <video> placeholder\(s\) but 1 video\(s\)"):
        processor(text="<video> and <video>", videos=[frames])
    with pytest.raises(FaceTrackProcessorError, match=r"0 <video> placeholder\(s\) but 1 video\(s\)"):
        processor(text="no placeholder", videos=[frames])
    with pytest.raises(FaceTrackProcessorError, match=r"1 <video> placeholder\(s\) but 0 video\(s\)"):
        processor(text="<video>")
    with pytest.raises(FaceTrackProcessorError, match="reserved for face tokens"):
        processor(text="<video><face>", videos=[frames])
    with pytest.raises(FaceTrackProcessorError, match="1 face track\\(s\\) for 2 video\\(s\\)"):
        processor(text=["<video>", "<video>"], videos=[frames, frames], face_tracks=[None])


def test_text_only_prompts_need_no_video(processor):
    inputs = processor(text=["Hello there", "Hi"])
    assert set(inputs) == {"input_ids", "attention_mask"}
    rendered = processor.apply_chat_template(user_video_message("clip.mp4"), add_generation_prompt=True)
    assert rendered == (
        "<|im_start|>user\n<video>\nDescribe the facial expression changes.<|im_end|>\n<|im_start|>assistant\n"
    )


def test_assistant_tokens_mask_survives_placeholder_expansion(processor):
    frames = np.random.default_rng(1).integers(0, 256, size=(3, 48, 64, 3), dtype=np.uint8)
    conversations = [
        [{"role": "user", "content": [{"type": "video", "video": frames}, {"type": "text", "text": "Describe."}]},
         {"role": "assistant", "content": [{"type": "text", "text": "He frowns, then smiles."}]}],
        [{"role": "user", "content": [{"type": "video", "video": frames}, {"type": "text", "text": "And?"}]},
         {"role": "assistant", "content": "No."}],
    ]
    inputs = processor.apply_chat_template(
        conversations, tokenize=True, return_dict=True, return_assistant_tokens_mask=True,
        processor_kwargs={"num_frames": 3},
    )
    answers = [
        processor.decode(ids[torch.as_tensor(mask, dtype=torch.bool)])
        for ids, mask in zip(inputs["input_ids"], inputs["assistant_masks"])
    ]
    assert answers == ["He frowns, then smiles.<|im_end|>", "No.<|im_end|>"]


def test_unknown_arguments_are_named(processor):
    with pytest.raises(FaceTrackProcessorError, match="unexpected argument\\(s\\): fsp"):
        processor(text="hello", fsp=2)


# ------------------------------------------------------------------------------------------ call options (kwargs)
def synthetic_frames(num_frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(num_frames, 48, 64, 3), dtype=np.uint8)


def test_structured_and_flat_options_give_the_same_inputs(processor):
    videos = [synthetic_frames(5, seed) for seed in range(2)]
    texts = ["<video> Describe.", "A longer prompt <video> please."]
    flat = processor(text=texts, videos=videos, num_frames=3, padding_side="right", return_face_tracks=True)
    structured = processor(text=texts, videos=videos, videos_kwargs={"num_frames": 3, "return_face_tracks": True},
                           text_kwargs={"padding_side": "right"})
    assert flat["video_num_frames"].tolist() == structured["video_num_frames"].tolist() == [3, 3]
    assert flat["attention_mask"][:, 0].all() and not flat["attention_mask"][:, -1].all(), "padded on the right"
    for key in ("input_ids", "attention_mask", "pixel_values_videos", "pixel_values_faces", "face_mask"):
        assert torch.equal(flat[key], structured[key]), key
    assert flat["face_tracks"] == structured["face_tracks"] and len(flat["face_tracks"]) == 2
    # Defaults: the processor's num_frames, left padding (the tokenizer's), torch tensors.
    default = processor(text=texts, videos=videos)
    assert default["video_num_frames"].tolist() == [processor.num_frames] * 2
    assert default["attention_mask"][:, -1].all() and isinstance(default["input_ids"], torch.Tensor)
    as_numpy = processor(text=texts, videos=videos, num_frames=2, return_tensors="np")
    assert isinstance(as_numpy["input_ids"], np.ndarray) and isinstance(as_numpy["pixel_values_videos"], np.ndarray)


def test_call_signature_keeps_only_runtime_inputs_explicit(processor):
    import inspect

    parameters = inspect.signature(FaceTrackProcessor.__call__).parameters
    explicit = [name for name, parameter in parameters.items() if parameter.kind is parameter.POSITIONAL_OR_KEYWORD]
    assert explicit == ["self", "text", "videos"]
    assert all(parameters[name].default is None for name in explicit[1:])
    assert FaceTrackProcessor.valid_processor_kwargs.__name__ == "FaceTrackProcessorKwargs"
    # Precomputed tracks are per-video data given at call time, as transformers' `video_metadata` is.
    assert "face_tracks" in FaceTrackProcessor.valid_processor_kwargs.__annotations__["videos_kwargs"].__annotations__


def test_bad_options_are_named(processor):
    frames = synthetic_frames(3)
    with pytest.raises(FaceTrackProcessorError, match=r"videos_kwargs\['fsp'\]"):
        processor(text="<video>", videos=[frames], videos_kwargs={"fsp": 2})
    with pytest.raises(FaceTrackProcessorError, match="cannot honour do_center_crop=True"):
        processor(text="<video>", videos=[frames], do_center_crop=True)
    with pytest.raises(ValueError, match="num_frames was passed two times"):
        processor(text="<video>", videos=[frames], num_frames=2, videos_kwargs={"num_frames": 3})
    with pytest.raises(FaceTrackProcessorError, match="takes videos, not images"):
        processor(text="<video>", videos=[frames], images=[frames[0]])
    with pytest.raises(FaceTrackProcessorError, match="for a video file give num_frames or fps"):
        processor(text="<video>", videos=["clip.mp4"], do_sample_frames=False)


def test_channels_first_arrays_and_tensors_and_every_frame(processor):
    frames = synthetic_frames(5, seed=3)
    reference = processor(text="<video>", videos=[frames], do_sample_frames=False)
    assert reference["video_num_frames"].tolist() == [5], "do_sample_frames=False keeps every frame"
    for video in (frames.transpose(0, 3, 1, 2), torch.from_numpy(frames), torch.from_numpy(frames).permute(0, 3, 1, 2)):
        again = processor(text="<video>", videos=[video], do_sample_frames=False)
        assert torch.equal(again["input_ids"], reference["input_ids"])
        assert torch.equal(again["pixel_values_videos"], reference["pixel_values_videos"])


def test_llava_onevision_layout_newline_no_faces_no_timestamps(tiny_model_dir):
    processor = FaceTrackProcessor.from_pretrained(tiny_model_dir, face_tokens_per_frame=0, video_newline=True,
                                                   timestamp_template=None)

    class NoDetection:
        def track(self, clip):
            raise AssertionError("without face tokens nothing is detected")

    processor._face_tracker = NoDetection()
    inputs = processor(text=["<video> a", "<video><video> b"], videos=[synthetic_frames(n, n) for n in (2, 3, 4)],
                       do_sample_frames=False)
    assert set(inputs) == set(processor.model_input_names) == {
        "input_ids", "attention_mask", "pixel_values_videos", "video_num_frames"}
    counts = (inputs["input_ids"] == processor.video_token_id).sum(-1).tolist()
    assert counts == [2 * 4 + 1, (3 + 4) * 4 + 2], "G tokens per frame and one newline per video"
    assert not (inputs["input_ids"] == processor.face_token_id).any()
    assert "<t=" not in processor.decode(inputs["input_ids"][1])
    assert processor.video_prompt([0.0, 1.0], [True, False]) == "<video>" * 9


def test_old_processor_config_with_padding_side_still_loads(tiny_model_dir, tmp_path):
    import json
    import shutil

    folder = tmp_path / "old"
    shutil.copytree(tiny_model_dir, folder)
    # How folders were saved before the kwargs rework: the padding side in processor_config.json, none in the
    # tokenizer's config, no video_newline.
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    assert tokenizer_config.pop("padding_side") == "left"
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    settings = json.loads((folder / "processor_config.json").read_text())
    settings.pop("video_newline")
    settings["padding_side"] = "left"
    (folder / "processor_config.json").write_text(json.dumps(settings))
    old = FaceTrackProcessor.from_pretrained(folder)
    assert old.tokenizer.padding_side == "left" and old.video_newline is False
    inputs = old(text=["<video> a", "<video> a much longer prompt"], videos=[synthetic_frames(2)] * 2, num_frames=2)
    assert inputs["attention_mask"][:, -1].all() and not inputs["attention_mask"][:, 0].all()


# ------------------------------------------------------------------------------------------------ expressions
def test_expressions_are_off_by_default_and_returned_when_asked(processor, media_dir, monkeypatch):
    from facetrack.expressions import measure as expressions
    from facetrack.expressions.models import missing_expression_dependencies

    video = str(media_dir / "single_face.mp4")
    original_init = expressions.ExpressionAnalyzer.__init__
    loads = []

    def counted_init(self, *args, **kwargs):
        loads.append(1)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(expressions.ExpressionAnalyzer, "__init__", counted_init)
    plain = processor(text="<video>", videos=[video], num_frames=4, return_face_tracks=True)
    assert loads == [] and "expressions" not in plain and plain["face_tracks"][0]["expressions"] == {}
    if missing_expression_dependencies():
        with pytest.raises(ImportError, match="pip install"):
            processor(text="<video>", videos=[video], num_frames=4, return_expressions=True)
        return
    asked = processor(text="<video>", videos=[video], num_frames=4, return_expressions=True, return_face_tracks=True)
    (report,) = asked["expressions"]
    assert loads == [1] and report["version"] == 2 and report["person_id"] == 1
    assert len(report["timeline"]["frames"]) == 4 and report["caption"].startswith("Measured description")
    assert asked["face_tracks"][0]["expressions"]["1"] == report
    assert torch.equal(asked["input_ids"], plain["input_ids"])  # the model inputs do not change
    # A precomputed track that holds them is not measured again (structured kwargs work too).
    again = processor(text="<video>", videos=[video], face_tracks=[asked["face_tracks"][0]],
                      videos_kwargs={"return_expressions": True})
    assert loads == [1] and again["expressions"] == [report]


def test_a_remote_code_processor_takes_this_packages_clip_and_track(tiny_model_dir, media_dir):
    """A processor loaded with trust_remote_code has its own copies of VideoClip and FaceTrackResult; the installed
    package's objects (what the CLI and the Space hand on) are taken as they are, without decoding again."""
    from transformers import AutoProcessor

    from facetrack.analysis.video_analysis import analyze_video

    remote = AutoProcessor.from_pretrained(tiny_model_dir, trust_remote_code=True)
    assert type(remote).__module__.startswith("transformers_modules")
    video = str(media_dir / "single_face.mp4")
    analysis = analyze_video(video, num_frames=4, expressions=False)
    handed = remote(text="<video>", videos=[analysis.clip], face_tracks=[analysis.track], return_face_tracks=True)
    from_file = remote(text="<video>", videos=[video], num_frames=4, return_face_tracks=True)
    for key in ("input_ids", "face_mask", "pixel_values_videos", "pixel_values_faces"):
        assert torch.equal(handed[key], from_file[key]), key
    assert handed["face_tracks"][0]["frames"] == from_file["face_tracks"][0]["frames"]


# ------------------------------------------------------------------------------------------------ video processor
def test_the_processor_is_composed_of_a_tokenizer_and_a_video_processor(processor, media_dir):
    """The video processor's pixels are the ones the processor computed itself before it had one: frames and face
    crops (crop_faces around the track's boxes) resized and normalised by `preprocess_frames`."""
    from facetrack.video.crops import crop_faces
    from facetrack.model.video_processing_facetrack import FaceTrackVideoProcessor

    assert FaceTrackProcessor.get_attributes() == ["tokenizer", "video_processor"]
    video_processor = processor.video_processor
    assert isinstance(video_processor, FaceTrackVideoProcessor)
    assert (processor.image_size, processor.num_frames) == (video_processor.image_size, video_processor.num_frames)
    inputs = processor(text="<video>", videos=[str(media_dir / "single_face.mp4")], num_frames=4,
                       return_face_tracks=True)
    analysis = processor.analyze(str(media_dir / "single_face.mp4"), num_frames=4)
    clip, track = analysis.clip, analysis.track
    boxes = track.boxes
    assert torch.equal(inputs["pixel_values_videos"], preprocess_frames(clip.frames, 32))
    crops = crop_faces(clip.frames, boxes, size=32, margin=video_processor.face_crop_margin)
    assert torch.equal(inputs["pixel_values_faces"], preprocess_frames(crops, 32))
    alone = video_processor(clip.frames, face_boxes=[boxes], do_sample_frames=False)
    assert torch.equal(alone["pixel_values_videos"], inputs["pixel_values_videos"])
    assert torch.equal(alone["pixel_values_faces"], inputs["pixel_values_faces"])


def test_folder_saved_before_the_video_processor_loads_with_the_same_outputs(processor, tmp_path, media_dir):
    """Folders written before the video processor existed hold its settings flat in processor_config.json."""
    import json

    processor.save_pretrained(tmp_path / "new")
    settings = json.loads((tmp_path / "new" / "processor_config.json").read_text())
    nested = settings.pop("video_processor")
    assert nested["video_processor_type"] == "FaceTrackVideoProcessor" and nested["image_size"] == 32
    assert "image_size" not in settings, "each setting is saved once, in the video processor's part"
    nested.pop("video_processor_type")
    nested.pop("auto_map", None)
    processor.save_pretrained(tmp_path / "old")
    (tmp_path / "old" / "processor_config.json").write_text(json.dumps({**settings, **nested}))
    old = FaceTrackProcessor.from_pretrained(tmp_path / "old")
    new = FaceTrackProcessor.from_pretrained(tmp_path / "new")
    for name in nested:
        assert getattr(old.video_processor, name) == getattr(new.video_processor, name), name
    video = [str(media_dir / "face_noface.mov")]
    a, b = processor(text="<video>", videos=video, num_frames=4), old(text="<video>", videos=video, num_frames=4)
    for key in ("input_ids", "pixel_values_videos", "pixel_values_faces", "face_mask"):
        assert torch.equal(a[key], b[key]), key
    assert FaceTrackProcessor.from_pretrained(tmp_path / "old", num_frames=3).num_frames == 3


def test_video_processor_settings_go_to_one_place(processor):
    from facetrack.model.video_processing_facetrack import FaceTrackVideoProcessor

    with pytest.raises(FaceTrackProcessorError, match="give image_size to the video processor, not beside it"):
        FaceTrackProcessor(processor.tokenizer, FaceTrackVideoProcessor(), image_size=64)
    with pytest.raises(TypeError, match="video_processor must be a FaceTrackVideoProcessor"):
        FaceTrackProcessor(processor.tokenizer, video_processor={"image_size": 64})


def test_a_decoded_video_in_a_chat_message_is_one_video(processor):
    """Frames given in the message (an array, channels first as transformers' tests give them, or a tensor) are one
    video: one placeholder expanded, `video_num_frames` = [its frame count], its frames back to back."""
    frames = synthetic_frames(4, seed=5)
    for video in (frames, frames.transpose(0, 3, 1, 2), torch.from_numpy(frames)):
        message = [{"role": "user", "content": [{"type": "video", "video": video}, {"type": "text", "text": "Hi"}]}]
        inputs = processor.apply_chat_template(message, add_generation_prompt=True, tokenize=True, return_dict=True,
                                               processor_kwargs={"num_frames": 2})
        assert inputs["video_num_frames"].tolist() == [2]
        assert inputs["pixel_values_videos"].shape[0] == 2
        assert int((inputs["input_ids"] == processor.video_token_id).sum()) == 2 * processor.global_tokens_per_frame


def test_standard_video_options_are_applied(processor):
    """The standard `VideosKwargs` reach the pixels: rescaling, normalisation and size as transformers defines them."""
    frames = synthetic_frames(2, seed=6)
    plain = processor(text="<video>", videos=[frames], do_sample_frames=False, do_normalize=False)
    assert 0.0 <= float(plain["pixel_values_videos"].min()) and float(plain["pixel_values_videos"].max()) <= 1.0
    raw = processor(text="<video>", videos=[frames], do_sample_frames=False, do_rescale=False, do_normalize=False,
                    do_resize=False)
    assert torch.equal(raw["pixel_values_videos"], torch.from_numpy(frames).permute(0, 3, 1, 2).float())
    negative = processor(text="<video>", videos=[frames], do_sample_frames=False, rescale_factor=-1.0)
    assert float(negative["pixel_values_videos"].max()) < 0
    resized = processor.video_processor(frames, size={"height": 16, "width": 16}, do_sample_frames=False)
    assert resized["pixel_values_videos"].shape == (2, 3, 16, 16) and resized["video_num_frames"].tolist() == [2]
    with pytest.raises(FaceTrackProcessorError, match="cannot honour data_format='channels_last'"):
        processor.video_processor(frames, data_format="channels_last")
    assert '"image_size": 32' in processor.video_processor.to_json_string()


# ------------------------------------------------------------------------------------------------ expression stream
def needs_expression_models() -> None:
    from facetrack.expressions.models import missing_expression_dependencies

    if missing_expression_dependencies():
        pytest.skip(f"the expression models are not installed: {missing_expression_dependencies()}")


@pytest.fixture(scope="module")
def stream_processor(tiny_stream_model_dir):
    """Global + face + 2 expression tokens per frame."""
    return FaceTrackProcessor.from_pretrained(tiny_stream_model_dir)


@pytest.fixture(scope="module")
def expression_processor(tiny_expression_model_dir):
    """2 expression tokens per frame and nothing else (the model has no vision tower)."""
    return FaceTrackProcessor.from_pretrained(tiny_expression_model_dir)


@pytest.fixture(scope="module")
def measured_clip(stream_processor, media_dir):
    """face_noface.mov (a man talking, then a cut to a title card) through the stream processor: its inputs, and its
    face track with the measured expressions as a dataset stores it (JSON)."""
    import json

    needs_expression_models()
    inputs = stream_processor(text="<video>", videos=[str(media_dir / "face_noface.mov")], num_frames=6,
                              return_face_tracks=True)
    return inputs, json.loads(json.dumps(inputs["face_tracks"][0]))


def forbid_decoding_and_measuring(monkeypatch) -> None:
    """Make every decoder and the expression analyzer fail the test if called."""
    from facetrack.analysis import video_analysis
    from facetrack.expressions import measure
    from facetrack.model import video_processing_facetrack
    from facetrack.video import decode

    def refuse(*args, **kwargs):
        raise AssertionError("nothing may be decoded or measured here")

    for module in (decode, video_analysis, video_processing_facetrack):
        monkeypatch.setattr(module, "load_video", refuse)
    monkeypatch.setattr(measure.ExpressionAnalyzer, "__init__", refuse)


def test_expression_features_from_a_real_clip(stream_processor, measured_clip, media_dir):
    from facetrack.analysis.video_analysis import analyze_video
    from facetrack.expressions.features import EXPRESSION_FEATURES, expression_features

    inputs, track = measured_clip
    size = EXPRESSION_FEATURES["size"]
    assert inputs["expression_features"].shape == (6, size) and inputs["expression_features"].dtype == torch.float32
    measured = inputs["expression_mask"]
    assert measured.dtype == torch.bool and 0 < int(measured.sum()) < 6, "a face first, then the title card"
    assert measured.tolist() == (inputs["face_mask"] & measured).tolist(), "nothing is measured without a face"
    assert (inputs["expression_features"][~measured] == 0).all()
    ids = inputs["input_ids"][0]
    assert int((ids == stream_processor.expression_token_id).sum()) == 6 * 2
    assert stream_processor.decode(ids).startswith("<t=0.0s>" + "<video>" * 4 + "<face>" * 4 + "<expression>" * 2)
    # The features are those of the one pipeline's measurement of the same frames.
    analysis = analyze_video(str(media_dir / "face_noface.mov"), num_frames=6, expressions=True)
    features, present = expression_features(analysis.expressions)
    assert torch.equal(inputs["expression_features"], torch.from_numpy(features))
    assert measured.tolist() == present.tolist()


def test_expression_features_from_a_precomputed_dataset_track(stream_processor, expression_processor, measured_clip,
                                                             media_dir, monkeypatch):
    """A stored track brings its measured timeline: nothing is measured again; a model without pixels has nothing
    decoded either (the video may even be missing)."""
    from facetrack.expressions import measure

    inputs, track = measured_clip

    class NoDetection:
        def track(self, clip):
            raise AssertionError("a precomputed face track must not run the detector")

    def refuse(*args, **kwargs):
        raise AssertionError("a stored timeline must not be measured again")

    monkeypatch.setattr(stream_processor, "_face_tracker", NoDetection())
    monkeypatch.setattr(measure.ExpressionAnalyzer, "__init__", refuse)
    again = stream_processor(text="<video>", videos=[str(media_dir / "face_noface.mov")], face_tracks=[track])
    for key in ("input_ids", "expression_features", "expression_mask", "face_mask"):
        assert torch.equal(again[key], inputs[key]), key
    forbid_decoding_and_measuring(monkeypatch)
    alone = expression_processor(text="<video>", videos=["nowhere/missing.mp4"], face_tracks=[track])
    assert set(alone) == {"input_ids", "attention_mask", "expression_features", "expression_mask", "video_num_frames"}
    assert torch.equal(alone["expression_features"], inputs["expression_features"])
    assert torch.equal(alone["expression_mask"], inputs["expression_mask"])
    assert expression_processor.decode(alone["input_ids"][0]) == expression_processor.video_prompt(
        [frame["timestamp"] for frame in track["frames"]], [False] * 6)


def test_the_stream_alone_with_stored_tracks_decodes_nothing(expression_processor, monkeypatch):
    """What training with a stream-only model does: the collator hands the rows' stored tracks (and their bytes,
    never decoded) to the processor."""
    import io

    from facetrack.expressions.features import expression_features

    forbid_decoding_and_measuring(monkeypatch)
    tracks = [measured_track([[6.0, 5.0, 40.0, 38.0] if i != 1 else None for i in range(n)], seed=n) for n in (3, 5)]
    inputs = expression_processor(text=["<video> a", "b <video>"], face_tracks=tracks,
                                  videos=[io.BytesIO(b"not even a video"), "nowhere/missing.mp4"])
    assert inputs["video_num_frames"].tolist() == [3, 5]
    expected = [expression_features(track.expression_report) for track in tracks]
    assert torch.equal(inputs["expression_features"], torch.from_numpy(np.concatenate([f for f, _ in expected])))
    assert inputs["expression_mask"].tolist() == np.concatenate([m for _, m in expected]).tolist()
    assert (inputs["input_ids"] == expression_processor.expression_token_id).sum(-1).tolist() == [3 * 2, 5 * 2]
    assert "<t=0.5s><expression><expression><t=1.0s>" in expression_processor.decode(inputs["input_ids"][0])
    # Nobody followed (no face anywhere): every frame unmeasured, which is not an error.
    nobody = measured_track([None, None])
    empty = expression_processor(text="<video>", videos=["nowhere.mp4"], face_tracks=[nobody])
    assert empty["expression_mask"].tolist() == [False, False] and (empty["expression_features"] == 0).all()


def test_phase_labels_put_each_phase_of_the_measured_time_before_its_frames(tiny_expression_model_dir, tmp_path,
                                                                          monkeypatch):
    """phase_labels: the caption's phase words before the first frame of each phase, the phases cut from the first
    to the last *measured* frame as the measured caption cuts them (frames before or after belong to the first or
    the last phase); it survives save and load, and a processor without the stream refuses it."""
    import io

    from facetrack.expressions.caption import PHASES
    from facetrack.model.video_processing_facetrack import FaceTrackProcessorError

    forbid_decoding_and_measuring(monkeypatch)
    processor = FaceTrackProcessor.from_pretrained(tiny_expression_model_dir, phase_labels=True)
    processor.timestamp_template = None
    tokens = "<expression>" * 2
    # 10 frames every 0.5 s; measured on frames 2-9 (1.0 - 4.5 s: phases of 0.875 s).
    track = measured_track([None, None] + [[6.0, 5.0, 40.0, 38.0]] * 8, seed=3)
    inputs = processor(text="<video>", videos=[io.BytesIO(b"never decoded")], face_tracks=[track])
    assert inputs["expression_mask"].tolist() == [False] * 2 + [True] * 8
    # Frames at 0.0 - 1.5 s: phase 1 (the unmeasured two and 1.0, 1.5); 2.0, 2.5: phase 2; 3.0, 3.5: phase 3 (3.0 -
    # 1.0 = 2.0 >= 1.75); 4.0, 4.5: phase 4.
    expected = (f"{PHASES[0]}: " + tokens * 4 + f"\n{PHASES[1]}: " + tokens * 2 + f"\n{PHASES[2]}: " + tokens * 2
                + f"\n{PHASES[3]}: " + tokens * 2)
    assert processor.decode(inputs["input_ids"][0]) == expected
    # Nobody measured: the phases cut all the frames.
    nobody = processor(text="<video>", videos=["nowhere.mp4"], face_tracks=[measured_track([None] * 4)])
    assert processor.decode(nobody["input_ids"][0]) == "".join(
        ("\n" if index else "") + f"{PHASES[index]}: " + tokens for index in range(4))
    processor.save_pretrained(tmp_path)
    assert FaceTrackProcessor.from_pretrained(tmp_path).phase_labels is True
    assert FaceTrackProcessor.from_pretrained(tiny_expression_model_dir).phase_labels is False
    with pytest.raises(FaceTrackProcessorError, match="phase_labels .* needs expression_tokens_per_frame > 0"):
        FaceTrackProcessor(tokenizer=processor.tokenizer, phase_labels=True)


def test_the_stream_alone_decodes_tracks_and_measures_a_new_video(expression_processor, stream_processor,
                                                                 measured_clip, media_dir):
    """Captioning a new video with a stream-only model: decoded, tracked and measured, no pixel tensors built."""
    inputs, _ = measured_clip
    alone = expression_processor(text="<video>", videos=[str(media_dir / "face_noface.mov")], num_frames=6)
    assert not any(key.startswith(("pixel_values", "face_mask")) for key in alone)
    assert torch.equal(alone["expression_features"], inputs["expression_features"])
    assert torch.equal(alone["expression_mask"], inputs["expression_mask"])


def test_missing_expression_packages_are_one_line(expression_processor, monkeypatch):
    from facetrack.analysis import video_analysis
    from facetrack.expressions.models import ExpressionDependencyError

    def missing(*args, **kwargs):
        raise ExpressionDependencyError("the expression models are missing: pip install facetrack-mm[expressions]")

    monkeypatch.setattr(video_analysis, "check_expression_dependencies", missing)
    with pytest.raises(ExpressionDependencyError, match=r"^the expression models are missing: pip install"):
        expression_processor(text="<video>", videos=[synthetic_frames(3)], do_sample_frames=False)


def test_a_track_without_measured_expressions_is_a_clear_error(expression_processor, stream_processor):
    from facetrack.faces.track_result import FaceTrackResult

    bare = FaceTrackResult.from_boxes([[6.0, 5.0, 40.0, 38.0]] * 3, width=64, height=48)
    for processor in (expression_processor, stream_processor):
        with pytest.raises(FaceTrackProcessorError,
                           match="holds no measured expressions of person 1.*--no-expressions"):
            processor(text="<video>", videos=[synthetic_frames(3)], face_tracks=[bare])


def test_another_feature_set_is_refused_in_one_line(tiny_stream_model_dir, stream_processor, tmp_path):
    import json
    import shutil

    from facetrack.expressions.features import EXPRESSION_FEATURES

    folder = tmp_path / "other-features"
    shutil.copytree(tiny_stream_model_dir, folder)
    settings = json.loads((folder / "processor_config.json").read_text())
    assert settings["expression_features"] == EXPRESSION_FEATURES and settings["expression_tokens_per_frame"] == 2
    settings["expression_features"] = dict(EXPRESSION_FEATURES, version=EXPRESSION_FEATURES["version"] + 1)
    (folder / "processor_config.json").write_text(json.dumps(settings))
    with pytest.raises(FaceTrackProcessorError) as refused:
        FaceTrackProcessor.from_pretrained(folder)
    message = str(refused.value)
    assert "\n" not in message and f"version {EXPRESSION_FEATURES['version'] + 1}" in message
    assert f"version {EXPRESSION_FEATURES['version']}" in message and "install the facetrack-mm version" in message
    with pytest.raises(FaceTrackProcessorError, match="needs expression_features"):
        FaceTrackProcessor(stream_processor.tokenizer, expression_tokens_per_frame=2)
    with pytest.raises(FaceTrackProcessorError, match="reserved for expression tokens"):
        stream_processor(text="<video><expression>", videos=[synthetic_frames(2)])


def test_stream_settings_are_saved_and_a_processor_without_it_saves_none(stream_processor, processor, tmp_path):
    import json

    stream_processor.save_pretrained(tmp_path / "stream")
    saved = json.loads((tmp_path / "stream" / "processor_config.json").read_text())
    assert (saved["expression_tokens_per_frame"], saved["expression_token"]) == (2, "<expression>")
    reloaded = FaceTrackProcessor.from_pretrained(tmp_path / "stream")
    for name in ("expression_tokens_per_frame", "expression_token", "expression_token_id", "expression_features"):
        assert getattr(reloaded, name) == getattr(stream_processor, name), name
    processor.save_pretrained(tmp_path / "plain")
    plain = json.loads((tmp_path / "plain" / "processor_config.json").read_text())
    assert not any(key.startswith("expression") for key in plain)
    assert FaceTrackProcessor.from_pretrained(tmp_path / "plain").expression_tokens_per_frame == 0
