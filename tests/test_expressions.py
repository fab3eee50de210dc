"""The expression timeline, its events and the measured caption, on the real clips in tests/media.

Event accuracy is checked against hand labels (tests/data/expression_labels.json, made by looking at the frames)
on timelines sampled at every frame: blinks last 1-3 frames at 24-30 fps, so any sparser sampling misses some of
them. The 32-frame sampling the product uses by default is checked for what it can see (no smile in the crying,
the caption's order, TEM).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from facetrack.expressions.config import ExpressionConfig
from facetrack.expressions.events import ExpressionEvent, detect_events
from facetrack.expressions.models import missing_expression_dependencies
from facetrack.expressions.measure import (
    BLENDSHAPE_NAMES, ExpressionTimeline, FrameExpression, head_pose_degrees,
)
from facetrack.faces.tracking import FaceTracker
from facetrack.video.decode import load_video

LABELS = json.loads((Path(__file__).parent / "data" / "expression_labels.json").read_text())
CLIPS = list(LABELS["clips"])

needs_models = pytest.mark.skipif(bool(missing_expression_dependencies()),
                                  reason=f"expression models not installed: {missing_expression_dependencies()}")


@pytest.fixture(scope="module")
def analyzer():
    if missing_expression_dependencies():
        pytest.skip(f"expression models not installed: {missing_expression_dependencies()}")
    from facetrack.expressions.measure import ExpressionAnalyzer

    with ExpressionAnalyzer() as expression_analyzer:
        yield expression_analyzer


@pytest.fixture(scope="module")
def tracker():
    return FaceTracker()


def _report(media_dir, analyzer, tracker, name, num_frames):
    from facetrack.expressions.report import analyze_expressions

    clip = load_video(media_dir / name, num_frames=num_frames)
    return clip, analyze_expressions(clip, tracker.track(clip), analyzer=analyzer)


@pytest.fixture(scope="module")
def every_frame(media_dir, analyzer, tracker):
    return {name: _report(media_dir, analyzer, tracker, name, None) for name in CLIPS}


@pytest.fixture(scope="module")
def sparse(media_dir, analyzer, tracker):
    return {name: _report(media_dir, analyzer, tracker, name, 32) for name in CLIPS}


def match_events(events: list[ExpressionEvent], labels: list[dict], tolerance: float) -> list[tuple[int, int]]:
    """One-to-one (event, label) matches of the same kind (and emotions) within `tolerance` s of the label's time
    or window, closest pairs first."""
    pairs = []
    for i, event in enumerate(events):
        for j, label in enumerate(labels):
            if event.kind != label["kind"]:
                continue
            if event.kind == "emotion_shift" and (event.details.get("from"), event.details.get("to")) != (
                label["from"], label["to"]
            ):
                continue
            low, high = label.get("window", [label["time"], label["time"]])
            distance = max(low - event.time, event.time - high, 0.0)
            if distance <= tolerance:
                pairs.append((distance, i, j))
    matched_events, matched_labels, matches = set(), set(), []
    for _, i, j in sorted(pairs):
        if i not in matched_events and j not in matched_labels:
            matched_events.add(i)
            matched_labels.add(j)
            matches.append((i, j))
    return matches


# ------------------------------------------------------------------------------------------- accuracy (real clips)
@needs_models
@pytest.mark.slow
@pytest.mark.parametrize("name", CLIPS)
def test_events_match_hand_labels(every_frame, name):
    _, report = every_frame[name]
    labels = LABELS["clips"][name]["events"]
    matches = match_events(report.events, labels, LABELS["tolerance_seconds"])
    precision = len(matches) / max(len(report.events), 1)
    recall = len(matches) / len(labels)
    found = [(round(e.time, 2), e.kind) for e in report.events]
    assert precision >= 0.8 and recall >= 0.8, f"{name}: precision {precision:.2f}, recall {recall:.2f}; {found}"


@needs_models
@pytest.mark.slow
def test_crying_is_not_a_smile(every_frame, sparse):
    """The blendshapes read WolfgangLanger's crying grimace as a smile (and fer calls part of it happy)."""
    name = "WolfgangLanger_Pexels.mp4"
    (start, end), = LABELS["clips"][name]["not_smiling"]
    for sampling, (_, report) in (("every frame", every_frame[name]), ("32 frames", sparse[name])):
        smile = report.timeline.signal("smile")
        crying = (report.timeline.timestamps >= start) & (report.timeline.timestamps <= end - 3.5)
        assert np.nanmax(smile[crying]) > 0.8, "the trap is gone: the blendshapes no longer read the grimace as a smile"
        # (an event's `end` is its first sample in the new state: at 32 frames the real smile starts between samples
        # 8.9 s and 9.5 s)
        smiles = [e for e in report.events if e.kind == "smile_start" and e.end < end - 0.2]
        assert not smiles, f"{sampling}: crying reported as a smile: {smiles}"
        happy = [e for e in report.events if e.kind == "emotion_shift" and e.end < end - 0.5
                 and "happy" in (e.details["from"], e.details["to"])]
        assert not happy, f"{sampling}: crying read as happy: {happy}"
        assert any(e.kind == "smile_start" and e.time > end - 0.5 for e in report.events), sampling


@needs_models
def test_the_plot_draws_what_the_caption_says_about_the_crying(sparse):
    """The Space's plot drew the raw smile (0.9) and "happy" (0.87) while she cries, which the caption rightly
    does not call a smile: the disagreement rule's stretches are shaded, and the smile and happy curves are drawn
    solid only where they are believed."""
    from facetrack.expressions.plot import GRIMACE_LABEL, expression_figure

    name = "WolfgangLanger_Pexels.mp4"
    (start, end), = LABELS["clips"][name]["not_smiling"]
    _, report = sparse[name]
    timeline = report.timeline
    t = timeline.timestamps
    crying = (t >= start) & (t <= end - 3.5)
    smile, happy = timeline.signal("smile"), timeline.signal("emotion:happy")
    assert np.nanmax(smile[crying]) > 0.8 and np.nanmax(happy[crying]) > 0.5  # the raw readings the plot showed
    figure = expression_figure(report)
    _, face, _, emotions = figure.axes

    def solid(axis, label):
        line = next(line for line in axis.get_lines() if line.get_label() == label)
        assert line.get_linestyle() == "-"
        return np.asarray(line.get_ydata(), dtype=float)

    drawn_smile, drawn_happy = solid(face, "smile"), solid(emotions, "happy")
    assert np.isnan(drawn_smile[crying & (smile > 0.5)]).all()
    assert np.isnan(drawn_happy[crying & (happy > 0.5)]).all()
    later = t > end  # the real smile at the end is drawn, and believed
    assert np.nanmax(drawn_smile[later]) > 0.7 and np.nanmax(drawn_happy[later]) > 0.9
    # Every smiling or happy-looking moment of the crying lies in a shaded stretch, named in the legend.
    spans = [patch.get_extents() for patch in face.patches]
    shaded = [(face.transData.inverted().transform([[box.x0, 0]])[0][0],
               face.transData.inverted().transform([[box.x1, 0]])[0][0]) for box in spans]
    for time in t[crying & ((smile > 0.5) | (happy > 0.5))]:
        assert any(low - 1e-6 <= time <= high + 1e-6 for low, high in shaded), time
    assert not any(low > end for low, _ in shaded)
    for axis in (face, emotions):
        assert GRIMACE_LABEL in [text.get_text() for text in axis.get_legend().get_texts()]
    # The caption agrees: no smile, no happy while she cries; the per-frame table says the same.
    assert not [e for e in report.events if e.kind == "smile_start" and e.end < end - 0.2]
    table = report.to_pandas()
    assert table.loc[crying & (smile > 0.5), "grimace"].all() and not table.loc[later, "grimace"].any()
    assert "happy" not in set(table.loc[crying, "emotion"].dropna())


@needs_models
def test_sixteen_frames_of_a_twenty_second_clip_still_give_events(media_dir, analyzer, tracker):
    """The Space samples 16 frames on CPU: 1.3 s apart on WolfgangLanger, more than max_gap_seconds (1 s), so every
    sample was a stretch of its own and the caption said nothing happened."""
    name = "WolfgangLanger_Pexels.mp4"
    (_, end), = LABELS["clips"][name]["not_smiling"]
    _, report = _report(media_dir, analyzer, tracker, name, 16)
    kinds = {event.kind for event in report.events}
    assert {"smile_start", "eyes_open", "emotion_shift"} <= kinds, kinds
    assert all(e.end > end - 1.5 for e in report.events if e.kind == "smile_start")  # not in the crying
    assert "breaks into a wide smile" in report.caption or "starts to smile" in report.caption


def test_a_face_missing_from_a_sparse_sample_still_cuts_the_stretch():
    """Sampled sparser than max_gap_seconds, neighbouring samples are one stretch; a missing sample between two
    is still a gap."""
    smiling = lambda t: 0.9 if t >= 6.0 else 0.0  # noqa: E731
    timeline = _timeline(12.0, 1 / 1.3, smile=smiling, happy=smiling)
    assert [e.kind for e in detect_events(timeline) if e.kind.startswith("smile")] == ["smile_start"]
    missing = next(i for i, frame in enumerate(timeline.frames) if frame.timestamp >= 6.0) - 1
    frame = timeline.frames[missing]  # the last sample before the smile: the face was not found
    for key in ("box", "blendshapes", "emotions", "eye_open_left", "eye_open_right", "yaw", "pitch", "roll"):
        setattr(frame, key, None)
    frame.face_found = False
    assert not [e for e in detect_events(timeline) if e.kind.startswith("smile")]  # smiling when the face returns


def test_one_frame_gets_a_one_sentence_caption():
    from facetrack.expressions.caption import measured_caption

    photo = _timeline(1.0, 1.0, smile=lambda t: 0.9, happy=lambda t: 0.9)
    assert len(photo) == 1
    caption = measured_caption(detect_events(photo), photo)
    assert caption.endswith("This image shows the facial expression of the person: the person is smiling and "
                            "looks happy.")
    nobody = ExpressionTimeline(frames=[FrameExpression(timestamp=0.0)])
    assert "No face was measured in this image" in measured_caption([], nobody)


@needs_models
def test_no_face_gives_an_empty_timeline(media_dir, analyzer, tracker):
    _, report = _report(media_dir, analyzer, tracker, "no_face.mp4", 32)
    assert len(report.timeline) == 32 and report.timeline.is_empty
    assert all(value is None for frame in report.timeline.frames
               for key, value in vars(frame).items() if key not in ("timestamp", "frame_index", "face_found"))
    assert report.events == []
    assert "No face was measured" in report.caption


@needs_models
def test_a_clip_measures_the_same_whatever_was_measured_before(media_dir, analyzer, tracker):
    """MediaPipe's video mode tracks a face from one call to the next: one analyzer measuring another clip first
    must not change what it measures on this one (a worker's history, a long-lived Space, a dataset build)."""
    names = ("single_face.mp4", "WolfgangLanger_Pexels.mp4")
    clips = {name: load_video(media_dir / name, num_frames=8) for name in names}
    tracks = {name: tracker.track(clip) for name, clip in clips.items()}

    def measure(name):
        clip, track = clips[name], tracks[name]
        return analyzer.analyze(clip.frames, track.boxes, clip.timestamps, clip.frame_indices).to_dict()

    first = measure("single_face.mp4")
    measure("WolfgangLanger_Pexels.mp4")
    assert measure("single_face.mp4") == first


@needs_models
def test_frames_without_the_face_have_no_measurement(media_dir, analyzer, tracker):
    # face_noface.mov cuts from a man to a cartoon title: no box there, so no values (never a neighbour's).
    clip, report = _report(media_dir, analyzer, tracker, "face_noface.mov", 32)
    boxes = tracker.track(clip).boxes
    assert any(b is None for b in boxes) and any(b is not None for b in boxes)
    for box, frame in zip(boxes, report.timeline.frames):
        if box is None:
            assert frame.box is None and frame.blendshapes is None and frame.emotions is None
            assert frame.eye_open_left is None and frame.yaw is None and not frame.face_found
        else:
            assert frame.face_found and frame.emotions is not None and len(frame.blendshapes) == 52
    # The same with holes punched into a clip where the face is everywhere.
    clip = load_video(media_dir / "single_face.mp4", num_frames=8)
    boxes = tracker.track(clip).boxes
    holed = [None if t in (2, 3, 6) else box for t, box in enumerate(boxes)]
    timeline = analyzer.analyze(clip.frames, holed, clip.timestamps, clip.frame_indices)
    assert [f.face_found for f in timeline.frames] == [box is not None for box in holed]
    assert np.isnan(timeline.signal("eye_open")[[2, 3, 6]]).all()
    assert np.isfinite(timeline.signal("eye_open")[[0, 1, 4, 5, 7]]).all()


# ------------------------------------------------------------------------------------------------------- caption
EXPECTED_ORDER = {  # phrases of real events, in the order they happen in the clip
    "single_face.mp4": ["face is neutral", "breaks into a wide smile", "blinks", "smile fades"],
    "WolfgangLanger_Pexels.mp4": ["knits their eyebrows", "opens their eyes", "raises their head and looks up",
                                  "breaks into a wide smile", "tilts their head to their right", "closes their eyes",
                                  "tilts their head to their left"],
}


@needs_models
@pytest.mark.slow
@pytest.mark.parametrize("name", CLIPS)
def test_measured_caption_tells_the_real_events_in_order(every_frame, sparse, name):
    for sampling in (every_frame, sparse):
        caption = sampling[name][1].caption
        assert caption.startswith("Measured description") and "not generated by a language model" in caption
        markers = [caption.index(m) for m in ("At the beginning", "As the video progresses", "In the middle",
                                              "Towards the end")]
        assert markers == sorted(markers)
        # At 32 frames (0.6 s apart) a blink falls between samples, and WolfgangLanger's eyes open and head rise
        # (0.2 s apart) land in the same sampling step, in either order.
        expected = EXPECTED_ORDER[name] if sampling is every_frame else [
            p for p in EXPECTED_ORDER[name] if p not in ("blinks", "raises their head and looks up")]
        positions = [caption.find(phrase) for phrase in expected]
        assert -1 not in positions and positions == sorted(positions), caption
    assert "smile" not in every_frame["WolfgangLanger_Pexels.mp4"][1].caption.split("As the video progresses")[0]


@needs_models
@pytest.mark.slow
def test_measured_caption_scores_higher_tem_against_its_own_reference(every_frame, sparse):
    from facetrack.evaluation.tem.metric import load_tem_metric
    from facetrack.quickstart import CAPTIONS

    tem = load_tem_metric()
    for sampling in (every_frame, sparse):
        for name, other in (CLIPS, CLIPS[::-1]):
            caption = sampling[name][1].caption
            own = tem.compute(predictions=[caption], references=[CAPTIONS[name]])["tem"]
            wrong = tem.compute(predictions=[caption], references=[CAPTIONS[other]])["tem"]
            assert own > wrong, f"{name}: TEM {own:.3f} against its own reference, {wrong:.3f} against {other}'s"


# ---------------------------------------------------------------------------------------------- JSON and the API
@needs_models
def test_report_round_trips_through_json(media_dir, analyzer, tracker):
    from facetrack.expressions.report import ExpressionReport, analyze_expressions

    clip, report = _report(media_dir, analyzer, tracker, "single_face.mp4", 16)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["version"] == 2 and data["timeline"]["version"] == 1 and len(data["timeline"]["frames"]) == 16
    again = ExpressionReport.from_dict(data)
    assert again.to_dict() == report.to_dict()
    # A version-1 report (the person was "track_id") still loads.
    version_1 = {key: value for key, value in data.items() if key != "person_id"} | {"version": 1, "track_id": 1}
    assert ExpressionReport.from_dict(version_1).person_id == 1
    assert ExpressionTimeline.from_dict(data["timeline"]).to_dict() == report.timeline.to_dict()
    with pytest.raises(ValueError, match="version"):
        ExpressionTimeline.from_dict({**data["timeline"], "version": 99})
    broken = json.loads(json.dumps(data["timeline"]))
    broken["frames"][0]["blendshapes"] = broken["frames"][0]["blendshapes"][:10]
    with pytest.raises(ValueError, match="frame 0 has 10 blendshapes, expected 52"):
        ExpressionTimeline.from_dict(broken)
    assert "mediapipe 1.2.3" in data["timeline"]["models"]["landmarker"]
    with pytest.raises(ValueError, match="unknown event kind"):
        ExpressionEvent.from_dict({"kind": "sneeze", "start": 0, "end": 1})
    with pytest.raises(ValueError, match=r"no person 7; the clip's persons are \[1\]"):
        analyze_expressions(clip, tracker.track(clip), person_id=7, analyzer=analyzer)
    # Any person's boxes, not only the main character's (here the one person, by id).
    track = tracker.track(clip)
    by_id = analyze_expressions(clip, track, person_id=track.person_id, analyzer=analyzer)
    assert by_id.person_id == track.person_id == 1 and by_id.timeline.measured.all()
    # Boxes in other pixels than the frames are refused, never measured in the wrong place.
    with pytest.raises(ValueError, match="scaled_to"):
        analyze_expressions(clip, track.scaled_to(1280, 720), analyzer=analyzer)


@needs_models
def test_every_person_of_a_group_photo_is_measured_in_their_own_box(media_dir, analyzer, tracker):
    from PIL import Image

    from facetrack.expressions.report import analyze_expressions

    photo = np.asarray(Image.open(media_dir / "multi_face.jpg").convert("RGB"))
    clip = load_video([photo] * 3, num_frames=None)
    track = tracker.track(clip)
    assert len(track.persons) == 5
    shapes = []
    for person_id, person in sorted(track.persons.items()):
        report = analyze_expressions(clip, track, person_id=person_id, analyzer=analyzer)
        assert report.person_id == person_id and report.timeline.measured.all()
        assert [frame.box for frame in report.timeline.frames] == [[round(v, 2) for v in b] for b in person.boxes]
        shapes.append(np.array(report.timeline.frames[0].blendshapes))
    assert min(np.abs(a - b).sum() for i, a in enumerate(shapes) for b in shapes[i + 1:]) > 0.5  # five faces
    # Without person_id: the followed person, which is the target when one was given (not the main character).
    chosen = tracker.select(track, clip, 3)
    report = analyze_expressions(clip, chosen, analyzer=analyzer)
    assert chosen.main_person_id != 3 and report.person_id == 3
    assert [frame.box for frame in report.timeline.frames] == track.persons[3].boxes


@needs_models
def test_one_analyzer_measures_several_people_and_clips(media_dir, analyzer, tracker):
    clip = load_video(media_dir / "single_face.mp4", num_frames=12)
    boxes = tracker.track(clip).boxes
    first = analyzer.analyze(clip.frames, boxes, clip.timestamps)
    second = analyzer.analyze(clip.frames, boxes, clip.timestamps)  # its clock goes on: no timestamp error
    assert first.measured.all() and second.measured.all()
    np.testing.assert_allclose(first.signal("smile"), second.signal("smile"), atol=0.1)
    with pytest.raises(ValueError, match="boxes"):
        analyzer.analyze(clip.frames, boxes[:3], clip.timestamps)
    with pytest.raises(ValueError, match="must not decrease"):
        analyzer.analyze(clip.frames, boxes, clip.timestamps[::-1])
    with pytest.raises(ValueError, match="x2 > x1"):
        analyzer.analyze(clip.frames[:1], [[10, 10, 5, 20]], [0.0])


# ------------------------------------------------------------------------------------- rules on made-up timelines
def _timeline(seconds: float, fps: float, **signals) -> ExpressionTimeline:
    """A timeline whose signals are given as functions of time: smile, eye_open, sad, happy, pitch."""
    frames = []
    for t in np.arange(0.0, seconds, 1.0 / fps):
        shapes = [0.0] * len(BLENDSHAPE_NAMES)
        for side in ("mouthSmileLeft", "mouthSmileRight"):
            shapes[BLENDSHAPE_NAMES.index(side)] = signals.get("smile", lambda t: 0.0)(t)
        happy, sad = signals.get("happy", lambda t: 0.0)(t), signals.get("sad", lambda t: 0.0)(t)
        emotions = [0.0, 0.0, 0.0, happy, sad, 0.0, max(0.0, 1.0 - happy - sad)]
        eyes = signals.get("eye_open", lambda t: 0.3)(t)
        frames.append(FrameExpression(
            timestamp=float(t), box=[0, 0, 10, 10], face_found=True, blendshapes=shapes, emotions=emotions,
            yaw=0.0, pitch=signals.get("pitch", lambda t: 0.0)(t), roll=0.0, eye_open_left=eyes,
            eye_open_right=eyes, mouth_open=0.05, lip_corner_width=1.0, brow_height=0.43, brow_gap=0.48))
    return ExpressionTimeline(frames=frames)


def test_disagreement_rule_smile_while_the_emotion_model_says_sad():
    smiling = lambda t: 0.9 if 2.0 <= t < 5.0 else 0.0  # noqa: E731
    sad_during = lambda t: 0.8 if 2.0 <= t < 5.0 else 0.0  # noqa: E731
    happy_during = lambda t: 0.9 if 2.0 <= t < 5.0 else 0.0  # noqa: E731
    grimace = detect_events(_timeline(7.0, 10.0, smile=smiling, sad=sad_during))
    assert not [e for e in grimace if e.kind.startswith("smile")]
    smile = detect_events(_timeline(7.0, 10.0, smile=smiling, happy=happy_during))
    assert [(e.kind, round(e.time, 1)) for e in smile if e.kind.startswith("smile")] == [
        ("smile_start", 2.0), ("smile_end", 5.0)]
    shifts = [e.details for e in smile if e.kind == "emotion_shift"]
    assert shifts == [{"from": "neutral", "to": "happy"}, {"from": "happy", "to": "neutral"}]
    # One happy-looking moment inside a longer grimace does not make it a smile either.
    brief = lambda t: 0.9 if 3.0 <= t < 3.6 else 0.0  # noqa: E731
    sad_rest = lambda t: 0.8 if 2.0 <= t < 5.0 and not 3.0 <= t < 3.6 else 0.0  # noqa: E731
    mixed = detect_events(_timeline(7.0, 10.0, smile=smiling, sad=sad_rest, happy=brief))
    assert not [e for e in mixed if e.kind.startswith("smile")]


def test_blinks_eyes_closing_and_nods_by_their_length():
    eyes = lambda t: 0.05 if 1.0 <= t < 1.2 or 3.0 <= t < 4.5 else 0.3  # noqa: E731
    nod = lambda t: -20.0 * np.sin(np.pi * (t - 5.5) / 0.6) if 5.5 <= t < 6.1 else 0.0  # noqa: E731
    events = detect_events(_timeline(7.0, 25.0, eye_open=eyes, pitch=nod))
    kinds = [(e.kind, round(e.time, 1)) for e in events]
    assert ("blink", 1.1) in kinds and ("eyes_close", 3.0) in kinds and ("eyes_open", 4.5) in kinds
    assert [k for k, _ in kinds if k in ("nod", "look_up", "look_down")] == ["nod"]
    # At sparse sampling a single closed sample is a blink, never "eyes closed for 0.6 s".
    sparse = detect_events(_timeline(7.0, 1 / 0.6, eye_open=lambda t: 0.05 if 1.1 <= t < 1.3 else 0.3))
    assert [e.kind for e in sparse] == ["blink"]


def test_gaps_split_states_and_empty_timelines():
    timeline = _timeline(6.0, 10.0, smile=lambda t: 0.9 if t >= 1.0 else 0.0, happy=lambda t: 0.9 if t >= 1.0 else 0.0)
    for frame in timeline.frames[20:45]:  # the face is missing from 2.0 to 4.5 s
        for key in ("box", "blendshapes", "emotions", "eye_open_left", "eye_open_right", "yaw", "pitch", "roll"):
            setattr(frame, key, None)
        frame.face_found = False
    starts = [e for e in detect_events(timeline) if e.kind == "smile_start"]
    assert [round(e.time, 2) for e in starts] == [0.95]  # smiling when the face comes back is no new event
    empty = ExpressionTimeline(frames=[FrameExpression(timestamp=float(t)) for t in range(5)])
    assert empty.is_empty and detect_events(empty) == []


def test_head_pose_angles_and_signs():
    def rotation(yaw=0.0, pitch_down=0.0, roll=0.0):
        y, x, z = np.radians([yaw, pitch_down, roll])
        ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
        rx = np.array([[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]])
        rz = np.array([[np.cos(z), -np.sin(z), 0], [np.sin(z), np.cos(z), 0], [0, 0, 1]])
        matrix = np.eye(4)
        matrix[:3, :3] = 3.0 * ry @ rx @ rz  # a scaled pose, as the landmarker may give
        return matrix

    np.testing.assert_allclose(head_pose_degrees(rotation(yaw=30)), (30, 0, 0), atol=1e-6)
    np.testing.assert_allclose(head_pose_degrees(rotation(pitch_down=20)), (0, -20, 0), atol=1e-6)
    np.testing.assert_allclose(head_pose_degrees(rotation(yaw=-10, pitch_down=-15, roll=25)), (-10, 15, 25), atol=1e-6)


def test_face_crops_match_the_trackers_square_and_pad_with_zeros():
    from facetrack.expressions.measure import expression_model_crops
    from facetrack.video.crops import crop_faces

    rng = np.random.default_rng(0)
    frame = (rng.random((360, 640, 3)) * 255).astype(np.uint8)
    frame = np.ascontiguousarray(np.repeat(np.repeat(frame[::8, ::8], 8, axis=0), 8, axis=1))  # 8 px blocks
    box = [300.0, 100.0, 420.0, 240.0]
    crop, gray = expression_model_crops(frame, box, 256, 0.25, 0.08)
    reference = crop_faces(frame[None], [box], size=256, margin=0.25)[0]
    assert crop.shape == (256, 256, 3) and gray.shape == (64, 64) and gray.dtype == np.uint8
    assert np.abs(crop.astype(int) - reference.astype(int)).mean() < 12  # same square, bilinear vs area resampling
    edge, _ = expression_model_crops(frame, [0.0, 0.0, 100.0, 100.0], 256, 0.25, 0.08)
    assert (edge[:40, :40] == 0).all() and edge[200:, 200:].any()  # outside the frame: zeros, as crop_faces


def test_config_checks_its_values():
    assert ExpressionConfig.from_dict(ExpressionConfig().to_dict()) == ExpressionConfig()
    with pytest.raises(ValueError, match="unknown expression setting"):
        ExpressionConfig.from_dict({"smile_onn": 0.5})
    with pytest.raises(ValueError, match="smile_off must be <= smile_on"):
        ExpressionConfig(smile_on=0.2, smile_off=0.5)
    with pytest.raises(ValueError, match=">= 0"):
        ExpressionConfig(turn_degrees=-1.0)


def test_without_the_optional_packages_one_line_says_what_to_install(tmp_path):
    """Blocks mediapipe and ai_edge_litert in a fresh interpreter: everything else still imports and tracks."""
    script = textwrap.dedent("""
        import sys
        sys.modules["mediapipe"] = None
        sys.modules["ai_edge_litert"] = None
        import numpy as np
        from facetrack.expressions.report import analyze_expressions
        from facetrack.expressions.measure import ExpressionAnalyzer
        from facetrack.expressions.models import ExpressionDependencyError
        from facetrack.faces.tracking import FaceTracker
        from facetrack.video.decode import load_video
        clip = load_video(np.zeros((2, 64, 64, 3), dtype=np.uint8), num_frames=None)
        FaceTracker().track(clip)
        try:
            ExpressionAnalyzer()
        except ExpressionDependencyError as error:
            print(error)
        else:
            raise SystemExit("no error")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    assert "mediapipe==1.2.3" in lines[0] and "ai-edge-litert==2.3.0" in lines[0] and "pip install" in lines[0]
