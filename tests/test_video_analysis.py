"""The one analysis pipeline (processing/video_analysis.py) and the face-track format that carries expressions
(version 3): real clips, the real detector and expression models; pixels of shrunk decodes; who calls what."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

import facetrack.analysis.video_analysis as video_analysis
from facetrack.analysis.video_analysis import read_face_track
from facetrack.expressions.models import missing_expression_dependencies
from facetrack.faces.tracking import FaceTracker
from facetrack.analysis.video_analysis import analyze_video
from facetrack.video.decode import load_video

needs_models = pytest.mark.skipif(bool(missing_expression_dependencies()),
                                  reason=f"expression models not installed: {missing_expression_dependencies()}")


@pytest.fixture(scope="module")
def tracker():
    return FaceTracker()


@pytest.fixture(scope="module")
def single(media_dir, tracker):
    """single_face.mp4, 8 frames, tracked and measured once for the module."""
    return analyze_video(media_dir / "single_face.mp4", num_frames=8, tracker=tracker)


def count_calls(monkeypatch, module, name: str) -> list:
    """Wrap `module.name` so that every call is recorded (and still made)."""
    calls, original = [], getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


# ------------------------------------------------------------------------------------------------- the pipeline
@needs_models
def test_one_pass_decodes_once_tracks_and_measures_the_followed_person(media_dir, tracker, monkeypatch):
    decodes = count_calls(monkeypatch, video_analysis, "load_video")
    steps = []
    analysis = analyze_video(media_dir / "single_face.mp4", num_frames=8, tracker=tracker,
                             progress=lambda fraction, message: steps.append((fraction, message)))
    assert len(decodes) == 1
    fractions = [fraction for fraction, _ in steps]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert [message.split()[0] for _, message in steps] == ["Decoding", "Detecting", "Measuring", "Done"]
    track, report = analysis.track, analysis.expressions
    assert track.person_id == track.main_person_id == 1 and int(track.present.sum()) >= 7
    assert report.person_id == 1 and len(report.timeline) == 8 and report.timeline.measured.sum() >= 7
    assert [frame.box for frame in report.timeline.frames] == track.boxes  # measured in the followed boxes
    assert analysis.measured_caption == report.caption and report.caption.startswith("Measured description")
    assert set(analysis.timings) == {"decode", "track", "identity", "expressions"}
    assert "ms" not in track.identity  # wall-clock times live in the timings only: the track is reproducible
    crops = analysis.crops(64)
    assert crops.shape == (8, 64, 64, 3) and crops[track.present].any()
    assert analysis.source_track() is track  # 640 x 360 decoded at full size: already the video's pixels


def test_expressions_off_never_load_the_models(media_dir, tracker, monkeypatch):
    """Callers that do not ask (training, the processor by default, render_overlay) pay nothing."""
    import facetrack.expressions.measure as expressions

    def no_models(*args, **kwargs):
        raise AssertionError("the expression models were loaded although nobody asked for expressions")

    monkeypatch.setattr(expressions.ExpressionAnalyzer, "__init__", no_models)
    analysis = analyze_video(media_dir / "single_face.mp4", num_frames=4, tracker=tracker, expressions=False)
    assert analysis.expressions is None and analysis.track.expressions == {} and analysis.measured_caption is None
    assert analysis.source_track().to_dict()["expressions"] == {}


@needs_models
def test_a_video_without_a_face_has_no_report_and_says_so(media_dir, tracker):
    analysis = analyze_video(media_dir / "no_face.mp4", num_frames=4, tracker=tracker)
    assert analysis.person_id is None and analysis.expressions is None and analysis.expression_problem is None
    assert analysis.measured_caption.startswith("Measured description") and "No face was measured" in \
        analysis.measured_caption


@needs_models
def test_each_person_and_for_person_measure_each_person_once(person_clips, tracker, monkeypatch):
    from facetrack.expressions import report as expression_report

    built = person_clips["side_by_side_swap"]
    measured = count_calls(monkeypatch, video_analysis, "analyze_expressions")
    analysis = analyze_video(built.path, num_frames=12, tracker=tracker)
    assert len(measured) == 1 and analysis.expressions.person_id == 1
    decodes = count_calls(monkeypatch, video_analysis, "load_video")
    people = analysis.each_person(0.25)
    assert [person.person_id for person in people] == [1, 2] and len(measured) == 2  # only person 2 is new
    for person in people:
        report = person.expressions
        assert report.person_id == person.person_id
        assert [frame.box for frame in report.timeline.frames] == person.track.persons[person.person_id].boxes
        assert person.clip is analysis.clip
    second = analysis.for_person(2)
    assert len(measured) == 3 and second.expressions.to_dict() == people[1].expressions.to_dict()
    assert "asked for by id; the main character is person 1" in second.track.reason
    assert second.for_person(1).expressions is analysis.expressions and len(measured) == 3  # person 1 kept
    assert decodes == []
    # The person's own measurement, equal to measuring them directly.
    direct = expression_report.analyze_expressions(analysis.clip, analysis.track, person_id=2)
    assert direct.to_dict() == people[1].expressions.to_dict()
    with pytest.raises(ValueError, match=r"no person with id 9; the persons are \[1, 2\]"):
        analysis.for_person(9)


def test_a_box_target_is_read_in_the_videos_pixels_when_decoded_shrunk(person_clips, tracker):
    """--person-box X1,Y1,X2,Y2@T is in the video's own pixels; the clip is decoded at half size (max_side)."""
    from person_clips import person_in_box

    built = person_clips["side_by_side_swap"]  # 384 x 216: A on the left, B on the right, then swapped
    clip = load_video(built.path, num_frames=12, max_side=192)
    assert (clip.width, clip.source_width) == (192, 384)
    index, time = clip.frame_indices[2], clip.timestamps[2]
    x1, y1, x2, y2 = built.truth[index]["B"]
    target = f"{x1:.0f},{y1:.0f},{x2:.0f},{y2:.0f}@{time:.3f}"
    analysis = analyze_video(built.path, num_frames=12, max_side=192, tracker=tracker, target=target,
                             expressions=False)
    assert analysis.person_id == 2 and analysis.track.main_person_id == 1
    assert f"box {x1:.0f},{y1:.0f},{x2:.0f},{y2:.0f} at" in analysis.track.reason  # said in the user's pixels
    source = analysis.source_track()
    assert (source.width, source.height) == (384, 216)
    on = [person_in_box(frame.box, people) for frame, people in zip(source.frames, built.truth_at(source.frame_indices))
          if frame.box is not None]
    assert len(on) >= 8 and set(on) == {"B"}
    # Read in the decoded frames' pixels instead (a clip that forgot its source size), the same box misses.
    with pytest.raises(ValueError, match="no face near box"):
        tracker.track(replace(clip, source_width=None, source_height=None), target)


def test_a_precomputed_track_reuses_the_clip_and_its_boxes(media_dir, tracker, single, monkeypatch):
    decodes = count_calls(monkeypatch, video_analysis, "load_video")
    detections = count_calls(monkeypatch, tracker, "detect")
    again = analyze_video(single.clip, face_track=single.track, tracker=tracker, expressions=False)
    assert again.clip is single.clip and again.track.boxes == single.track.boxes and decodes == []
    # A track in the video's pixels (as JSON files hold them) on a clip decoded at half size: boxes scaled to it.
    half = load_video(media_dir / "single_face.mp4", num_frames=8, max_side=320)
    on_half = analyze_video(half, face_track=single.track.to_dict(), expressions=False)
    assert (on_half.track.width, on_half.track.height) == (320, 180)
    box, half_box = single.track.boxes[0], on_half.track.boxes[0]
    assert np.allclose(half_box, np.array(box) / 2, atol=0.01)
    # A subset of the frames picks them from the clip, and a track of frames the clip lacks is refused.
    subset = analyze_video(single.clip, face_track=single.track.select_frames([1, 5]), expressions=False)
    assert subset.clip.frame_indices == [single.clip.frame_indices[i] for i in (1, 5)]
    assert np.array_equal(subset.clip.frames[1], single.clip.frames[5])
    other = load_video(media_dir / "single_face.mp4", num_frames=3)
    with pytest.raises(ValueError, match="does not hold"):
        analyze_video(other, face_track=single.track, expressions=False)
    assert detections == []


# ----------------------------------------------------------------------------------- the format: version 3
@needs_models
def test_version_3_round_trips_with_expressions_and_versions_1_and_2_still_load(single):
    data = json.loads(json.dumps(single.track.to_dict()))
    assert data["version"] == 3 and list(data["expressions"]) == ["1"]
    assert data["expressions"]["1"]["person_id"] == 1 and len(data["expressions"]["1"]["timeline"]["frames"]) == 8
    loaded = read_face_track(data)
    assert loaded.to_dict() == data and loaded.expression_report.caption == single.expressions.caption
    # Version 2 (before expressions) and version 1 (one id per position-only track) read as before.
    version_2 = {key: value for key, value in data.items() if key != "expressions"} | {"version": 2}
    old = read_face_track(version_2)
    assert old.expressions == {} and old.boxes == loaded.boxes and old.to_dict()["version"] == 3
    version_1 = {"version": 1, "width": 640, "height": 360, "main_track_id": 1, "tracks": {"1": loaded.boxes},
                 "frames": [{"timestamp": f.timestamp, "frame_index": f.frame_index, "box": f.box, "score": f.score,
                             "track_id": f.person_id} for f in loaded.frames]}
    assert read_face_track(version_1).boxes == loaded.boxes
    with pytest.raises(ValueError, match=r"unknown format version 4 \(this code reads 1, 2, 3\)"):
        read_face_track(data | {"version": 4})
    cut = json.loads(json.dumps(data))
    cut["expressions"]["1"]["timeline"]["frames"] = cut["expressions"]["1"]["timeline"]["frames"][:5]
    with pytest.raises(ValueError, match="person 1's expression timeline has 5 frames, the track 8"):
        read_face_track(cut)


@needs_models
def test_scaled_to_maps_every_box_and_select_frames_keeps_the_timeline(single):
    track = single.track
    double = track.scaled_to(1280, 720)
    assert (double.width, double.height) == (1280, 720)
    for small, big in zip(track.boxes, double.boxes):
        assert (small is None) == (big is None) and (small is None or np.allclose(big, np.array(small) * 2))
    assert double.persons[1].boxes == double.boxes
    report, big_report = track.expression_report, double.expression_report
    assert [f.box for f in big_report.timeline.frames] == double.boxes  # the timeline's boxes too
    np.testing.assert_array_equal(big_report.timeline.signal("smile"), report.timeline.signal("smile"))
    assert big_report.caption == report.caption and double.scaled_to(640, 360).to_dict() == track.to_dict()
    assert track.scaled_to(640, 360) is track
    kept = track.select_frames([0, 3, 7])
    assert len(kept.expression_report.timeline) == 3
    assert [f.box for f in kept.expression_report.timeline.frames] == kept.boxes
    assert read_face_track(kept.to_dict()).to_dict() == kept.to_dict()


# ------------------------------------------------------------------------------------------------ still images
def test_a_photo_is_one_frame_with_every_face_and_the_main_character(media_dir, tracker, tmp_path):
    """A group photo as a file, a PIL image or an (H, W, 3) array: one frame, every face a person, the main
    character chosen by the video rule; a JPEG's EXIF orientation is applied as a photo viewer does."""
    from PIL import Image

    path = media_dir / "multi_face.jpg"
    photo = Image.open(path)
    results = [analyze_video(video, tracker=tracker, expressions=False)
               for video in (path, str(path), photo, np.asarray(photo.convert("RGB")))]
    for analysis in results:
        assert analysis.clip.still_image and len(analysis.clip) == 1 and analysis.clip.timestamps == [0.0]
        assert (analysis.clip.width, analysis.clip.height) == photo.size
        assert len(analysis.track.persons) == 5 and analysis.track.present.all()
        assert analysis.track.to_dict()["tracks"] == results[0].track.to_dict()["tracks"]
        assert analysis.person_id == analysis.track.main_person_id == results[0].person_id
    # max_side shrinks the photo; the stored track is in the photo's own pixels, and reading it back decodes the
    # photo again without detecting anything.
    small = analyze_video(path, max_side=500, tracker=tracker, expressions=False)
    assert small.clip.width == 500 and small.clip.source_width == photo.size[0]
    source = small.source_track()
    assert (source.width, source.height) == photo.size and len(source.persons) == 5
    again = analyze_video(path, face_track=source.to_dict(), expressions=False)
    assert again.clip.still_image and again.track.to_dict()["tracks"] == source.to_dict()["tracks"]
    # A phone photo stored sideways with an EXIF "rotate 90" tag is read upright: the face is found.
    upright = Image.open(media_dir / "single_face.jpg").convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the stored pixels must be turned 90 degrees clockwise to be shown
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "sideways.jpg", exif=exif)
    turned = analyze_video(tmp_path / "sideways.jpg", tracker=tracker, expressions=False)
    assert (turned.clip.width, turned.clip.height) == upright.size and len(turned.track.persons) == 1


def test_only_the_analysis_entry_point_takes_photos(media_dir, tmp_path):
    """load_video (and the video-only callers on it: the dataset builder, describe) still refuses a photo, named
    as one; a photo named .mp4 is still a photo for analyze_video."""
    from facetrack.video.decode import load_image
    from facetrack.video.probe import VideoDecodeError

    with pytest.raises(VideoDecodeError, match="is a still image"):
        load_video(media_dir / "single_face.jpg", num_frames=4)
    with pytest.raises(VideoDecodeError, match="is a video, not a still image"):
        load_image(media_dir / "single_face.mp4")
    renamed = tmp_path / "photo.mp4"
    renamed.write_bytes((media_dir / "single_face.jpg").read_bytes())
    analysis = analyze_video(renamed, expressions=False)
    assert analysis.clip.still_image and len(analysis.track.persons) == 1
    with pytest.raises(ValueError, match=r"an image must be an \(H, W, 3\) RGB array"):
        load_image(np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(VideoDecodeError, match="over the limit"):
        analyze_video(media_dir / "multi_face.jpg", max_pixels=1000, expressions=False)


@needs_models
def test_a_photo_measures_the_main_face_and_each_person_every_face(media_dir, tracker):
    analysis = analyze_video(media_dir / "multi_face.jpg", tracker=tracker)
    report = analysis.expressions
    assert report.person_id == analysis.person_id and len(report.timeline) == 1 and report.timeline.measured.all()
    assert report.events == []  # nothing changes in one frame
    assert report.caption.startswith("Measured description") and "This image shows the facial expression" in \
        report.caption and "At the beginning" not in report.caption
    people = analysis.each_person()
    assert [person.person_id for person in people] == sorted(analysis.track.persons)
    table = people[0].to_pandas()
    assert sorted(table["person_id"]) == sorted(analysis.track.persons) and (table["time"] == 0.0).all()
    assert table["face_found"].all() and table["mouthSmileLeft"].notna().all()


# ----------------------------------------------------------------------------------- the per-frame table, reprs
@needs_models
def test_to_pandas_has_one_row_per_sampled_frame_in_the_videos_pixels(media_dir, tracker):
    analysis = analyze_video(media_dir / "single_face.mp4", num_frames=8, max_side=320, tracker=tracker)
    table = analysis.to_pandas()
    report = analysis.source_track().expression_report  # boxes in the video's 640 x 360
    timeline = report.timeline
    assert len(table) == 8 and (table["person_id"] == 1).all()
    assert list(table["time"]) == list(analysis.clip.timestamps)
    assert list(table["frame_index"]) == analysis.clip.frame_indices
    for name in ("mouthSmileLeft", "mouthSmileRight", "yaw", "pitch", "roll", "eye_open_left", "brow_gap"):
        column = "blendshape:" + name if name.startswith("mouth") else name
        np.testing.assert_array_equal(table[name].to_numpy(dtype=float), timeline.signal(column))
    for label in timeline.emotion_labels:
        np.testing.assert_array_equal(table[f"emotion_{label}"].to_numpy(dtype=float),
                                      timeline.signal(f"emotion:{label}"))
    present = [frame.box is not None for frame in timeline.frames]
    boxes = table[["box_x1", "box_y1", "box_x2", "box_y2"]].to_numpy()[present]
    np.testing.assert_allclose(boxes, [frame.box for frame in timeline.frames if frame.box is not None])
    assert boxes[:, 2].max() > 320  # the video's pixels, not the 320 px the frames were decoded at
    from facetrack.expressions.events import dominant_emotions

    assert list(table["emotion"]) == dominant_emotions(timeline, report.config)
    assert table.columns[:3].tolist() == ["person_id", "time", "frame_index"] and table.shape[1] == 3 + 5 + 52 + 3 \
        + 6 + 7 + 2
    # No face: the same columns, no rows; expressions not measured: said, not an empty table.
    empty = analyze_video(media_dir / "no_face.mp4", num_frames=4, tracker=tracker).to_pandas()
    assert len(empty) == 0 and list(empty.columns) == list(table.columns)
    with pytest.raises(ValueError, match="expressions=False"):
        analyze_video(media_dir / "single_face.mp4", num_frames=2, tracker=tracker, expressions=False).to_pandas()


@needs_models
def test_printing_an_analysis_shows_a_few_readable_lines(single):
    """A notebook printed 33,000 characters for one analysis (every pixel, box and blendshape)."""
    texts = {
        "analysis": repr(single),
        "track": repr(single.track),
        "report": repr(single.expressions),
        "timeline": repr(single.expressions.timeline),
        "clip": repr(single.clip),
    }
    for name, text in texts.items():
        assert len(text) < 700 and len(text.splitlines()) <= 6, f"{name}: {text}"
    assert "single_face.mp4" in texts["analysis"] and "8 frames" in texts["analysis"]
    assert "persons: 1 (main, " in texts["analysis"] and "followed: person 1 (the main character)" in texts["analysis"]
    assert f"{len(single.expressions.events)} event(s)" in texts["analysis"]
    assert "8 frame(s) of 640x360" in texts["track"] and "expressions measured for: person 1" in texts["track"]
    assert texts["report"].startswith("ExpressionReport(person 1: measured in ") and "caption:" in texts["report"]
    assert texts["timeline"].startswith("ExpressionTimeline(8 frames")
    assert texts["clip"].startswith("VideoClip(8 frames, 640x360")
