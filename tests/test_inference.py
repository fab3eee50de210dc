"""facetrack.inference (used by describe, eval, the quickstart and the Space) and `facetrack describe`."""

from __future__ import annotations

import json

import pytest

from facetrack.cli import main
from facetrack.inference import load_captioner


@pytest.fixture(scope="module")
def captioner(tiny_model_dir):
    return load_captioner(str(tiny_model_dir), device="cpu")


def test_batched_captions_equal_one_by_one_captions(captioner, media_dir):
    videos = [str(media_dir / "single_face.mp4"), str(media_dir / "no_face.mp4")]
    batched, tracks = captioner.generate_captions(videos, num_frames=4, max_new_tokens=8)
    single = [captioner.generate_captions([video], num_frames=4, max_new_tokens=8)[0][0] for video in videos]
    assert batched == single  # left padding leaves every row's greedy continuation unchanged
    assert all(batched)
    assert tracks[0]["main_person_id"] is not None and tracks[1]["main_person_id"] is None


def test_streamed_caption_equals_generated_caption_and_reuses_a_given_track(captioner, media_dir):
    video = str(media_dir / "single_face.mp4")
    (caption,), (track,) = captioner.generate_captions([video], num_frames=4, max_new_tokens=8)
    pieces, streamed_track = captioner.stream_caption(video, max_new_tokens=8, face_track=track)
    assert "".join(pieces).strip() == caption
    assert streamed_track == track


def test_stream_hands_generation_errors_to_the_consumer(captioner, media_dir, monkeypatch):
    def broken_generate(**kwargs):
        raise torch_error

    torch_error = RuntimeError("out of memory")
    monkeypatch.setattr(captioner.model, "generate", broken_generate)
    pieces, _ = captioner.stream_caption(str(media_dir / "single_face.mp4"), num_frames=2, max_new_tokens=4)
    with pytest.raises(RuntimeError, match="caption generation failed: RuntimeError: out of memory"):
        list(pieces)


def test_describe_json_reports_caption_track_and_timestamps(tiny_model_dir, media_dir, capsys):
    code = main(["describe", str(media_dir / "single_face.mp4"), "--model", str(tiny_model_dir), "--frames", "4",
                 "--max-new-tokens", "6", "--json", "--device", "cpu"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["caption"] and len(result["timestamps"]) == 4
    assert result["timestamps"] == sorted(result["timestamps"])
    assert sum(frame["box"] is not None for frame in result["face_track"]["frames"]) >= 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["describe", "/no/such/video.mp4", "--model", "MODEL"], "/no/such/video.mp4: file not found"),
        (["describe", "VIDEO", "--model", "/no/such/model"], "cannot load the model"),
        (["describe", "VIDEO", "--model", "MODEL", "--frames", "0"], "--frames must be at least 1"),
    ],
)
def test_describe_bad_input_is_one_line_exit_2(args, message, tiny_model_dir, media_dir, capsys):
    args = [str(tiny_model_dir) if a == "MODEL" else str(media_dir / "single_face.mp4") if a == "VIDEO" else a
            for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
