"""The expression stream's per-frame features and the timeline variants (edits of a measured clip without measuring
again): on made-up timelines for the rules, and against the real pipeline on a really flipped and reversed clip."""

from __future__ import annotations

import numpy as np
import pytest

from facetrack.expressions.caption import PHASES, measured_caption
from facetrack.expressions.config import ExpressionConfig
from facetrack.expressions.events import ExpressionEvent, detect_events
from facetrack.expressions.features import EXPRESSION_FEATURES, check_feature_set, expression_features
from facetrack.expressions.measure import BLENDSHAPE_NAMES, ExpressionTimeline, FrameExpression
from facetrack.expressions.models import missing_expression_dependencies
from facetrack.expressions.report import report_from_timeline
from facetrack.expressions.variants import (
    TimelineVariant, concatenate, mirror, random_variant, resample, retime, reverse, window,
)
from facetrack.video.decode import load_video

COLUMNS = EXPRESSION_FEATURES["columns"]


def column(name: str) -> int:
    return COLUMNS.index(name)


def made_up_timeline(seconds: float, fps: float, **signals) -> ExpressionTimeline:
    """A timeline whose signals are functions of time: smile, happy, sad, eye_open, yaw, roll, blink_left (the
    eyeBlinkLeft blendshape alone), missing (True where the face is missing)."""
    get = lambda name, default: signals.get(name, lambda t: default)  # noqa: E731
    frames = []
    for index, t in enumerate(np.arange(0.0, seconds, 1.0 / fps)):
        t = round(float(t), 6)
        if get("missing", False)(t):
            frames.append(FrameExpression(timestamp=t, frame_index=index))
            continue
        shapes = [0.0] * len(BLENDSHAPE_NAMES)
        for side in ("mouthSmileLeft", "mouthSmileRight"):
            shapes[BLENDSHAPE_NAMES.index(side)] = get("smile", 0.0)(t)
        shapes[BLENDSHAPE_NAMES.index("eyeBlinkLeft")] = get("blink_left", 0.0)(t)
        happy, sad = get("happy", 0.0)(t), get("sad", 0.0)(t)
        eyes = get("eye_open", 0.3)(t)
        frames.append(FrameExpression(
            timestamp=t, frame_index=index, box=[100.0, 20.0, 180.0, 120.0], face_found=True, blendshapes=shapes,
            emotions=[0.0, 0.0, 0.0, happy, sad, 0.0, max(0.0, 1.0 - happy - sad)], yaw=get("yaw", 0.0)(t),
            pitch=0.0, roll=get("roll", 0.0)(t), eye_open_left=eyes, eye_open_right=eyes * 0.9, mouth_open=0.05,
            lip_corner_width=1.0, brow_height=0.43, brow_gap=0.48))
    return ExpressionTimeline(frames=frames)


def kinds(events) -> list[str]:
    return [event.kind for event in events]


# ---------------------------------------------------------------------------------------------------- features
def test_features_describe_each_frame_and_zero_the_missing_ones():
    timeline = made_up_timeline(6.0, 10.0, smile=lambda t: 0.9 if 2.0 <= t < 4.0 else 0.0,
                                happy=lambda t: 0.9 if 2.0 <= t < 4.0 else 0.0, yaw=lambda t: 30.0 if t >= 5.0 else 0.0,
                                missing=lambda t: 4.5 <= t < 4.8)
    features, present = expression_features(timeline)
    assert features.dtype == np.float32 and features.shape == (60, EXPRESSION_FEATURES["size"]) == (60, len(COLUMNS))
    assert present.dtype == bool and present.sum() == 57 and not present[45:48].any()
    assert (features[~present] == 0).all() and np.isfinite(features).all()
    assert np.abs(features).max() <= 3.0  # scaled to about [-1, 1]
    smile = features[:, column("blendshape:mouthSmileLeft")]
    assert smile[25] == pytest.approx(0.9) and smile[10] == 0.0
    assert features[55, column("yaw")] == pytest.approx(30 / 45)
    assert features[5, column("time:position")] == pytest.approx(0.5 / 5.9, abs=1e-6)
    assert features[-1, column("time:position")] == pytest.approx(1.0)
    assert features[30, column("time:seconds")] == pytest.approx(0.3)
    # The caption phase, one-hot, on measured frames: the quarter of the measured time (0 - 5.9 s) each is in.
    phases = features[:, [column(f"time:phase_{index + 1}") for index in range(len(PHASES))]]
    assert (phases[present].sum(1) == 1).all() and (phases[~present] == 0).all()
    assert phases[present].argmax(1).tolist() == [min(3, int(t / 5.9 * 4)) for t in timeline.timestamps[present]]
    # The report gives the same features as its timeline; an empty timeline gives no rows.
    assert np.array_equal(expression_features(report_from_timeline(timeline, 1))[0], features)
    empty_features, empty_present = expression_features(ExpressionTimeline(frames=[]))
    assert empty_features.shape == (0, len(COLUMNS)) and empty_present.shape == (0,)
    with pytest.raises(TypeError, match="ExpressionTimeline or an ExpressionReport"):
        expression_features({"frames": []})


def test_states_change_exactly_where_the_measured_events_are():
    smiling = lambda t: 0.9 if 2.0 <= t < 4.0 else 0.0  # noqa: E731
    timeline = made_up_timeline(7.0, 10.0, smile=smiling, happy=smiling,
                                eye_open=lambda t: 0.05 if 5.0 <= t < 6.0 else 0.3,
                                yaw=lambda t: float(np.clip((t - 0.5) * 40.0, 0.0, 30.0)))
    features, _ = expression_features(timeline)
    t = timeline.timestamps
    events = {event.kind: event for event in detect_events(timeline)}
    assert {"smile_start", "smile_end", "eyes_close", "eyes_open", "head_turn_left"} <= set(events)
    on = features[:, column("state:smiling")] > 0
    assert t[on].min() == pytest.approx(events["smile_start"].end) and t[on].max() == pytest.approx(
        events["smile_end"].start)
    closed = features[:, column("state:eyes_closed")] > 0
    assert t[closed].min() == pytest.approx(events["eyes_close"].end)
    happy = features[:, column("state:emotion:happy")] > 0  # the emotions are averaged over 1 s: edges blur
    assert happy[25:35].all() and not happy[:15].any() and features[0, column("state:emotion:neutral")] == 1
    assert features[0, column("state:yaw_change")] == 0 and features[-1, column("state:yaw_change")] == pytest.approx(
        30 / 45)


def test_a_grimace_is_no_smiling_state():
    """The disagreement rule: smile blendshapes while the emotion model says sad give no smiling state."""
    smiling = lambda t: 0.9 if 2.0 <= t < 5.0 else 0.0  # noqa: E731
    features, _ = expression_features(made_up_timeline(7.0, 10.0, smile=smiling, sad=smiling))
    assert features[:, column("blendshape:mouthSmileLeft")].max() == pytest.approx(0.9)
    assert features[:, column("state:smiling")].max() == 0
    assert features[:, column("state:emotion:sad")].max() == 1 and features[:, column("state:emotion:happy")].max() == 0


def test_each_event_is_in_a_measured_frame_of_the_caption_phase_that_holds_it():
    """Frames every 0.5 s, the face measured until 3.0 s (four phases of 0.75 s): a smile start at 1.45 s is nearest
    the frame at 1.5 s, which lies in the next phase, and a blink at 3.3 s nearest a frame without the face. The
    stream counts each on the nearest measured frame of the phase the measured caption tells it in."""
    timeline = made_up_timeline(4.0, 2.0, missing=lambda t: t > 3.2)
    report = report_from_timeline(timeline, None)
    report.events = [ExpressionEvent("smile_start", 1.4, 1.5, 0.5), ExpressionEvent("blink", 3.2, 3.4, 1.0)]
    features, present = expression_features(report)
    smile_frames = np.flatnonzero(features[:, column("event:smile_start")])
    blink_frames = np.flatnonzero(features[:, column("event:blink")])
    assert timeline.timestamps[smile_frames].tolist() == [1.0] and timeline.timestamps[blink_frames].tolist() == [3.0]
    assert present[blink_frames].all()
    position = features[:, column("time:position")]
    phase = lambda frame: min(len(PHASES) - 1, int(position[frame] * len(PHASES)))  # noqa: E731
    assert phase(smile_frames[0]) == 1 and phase(blink_frames[0]) == 3
    assert features[smile_frames[0], column("time:phase_2")] == 1 and features[blink_frames[0], column("time:phase_4")] == 1
    caption = measured_caption(report.events, timeline)
    assert "As the video progresses, the person starts to smile" in caption
    assert "Towards the end, the person blinks" in caption


def test_a_model_config_records_the_feature_set_and_other_sets_are_refused():
    check_feature_set(dict(EXPRESSION_FEATURES))
    assert EXPRESSION_FEATURES["size"] == len(set(COLUMNS)) == 52 + 9 + 7 + 16 + 28 + 2 + 4
    with pytest.raises(ValueError, match="version 1 with 118 columns.*version 4.*differs in version"):
        check_feature_set({**EXPRESSION_FEATURES, "version": 1})
    with pytest.raises(ValueError, match="differs in size"):
        check_feature_set({**EXPRESSION_FEATURES, "size": 68, "columns": COLUMNS[:68]})
    swapped = list(COLUMNS)
    swapped[1], swapped[2] = swapped[2], swapped[1]
    with pytest.raises(ValueError, match="columns differ.*1: 'blendshape:browDownRight'"):
        check_feature_set({**EXPRESSION_FEATURES, "columns": swapped})
    with pytest.raises(ValueError, match="is a dict"):
        check_feature_set("facetrack-expression-features")


# ---------------------------------------------------------------------------------------------------- variants
def test_reversing_tells_the_events_backwards_with_movements_turned_around():
    timeline = made_up_timeline(7.0, 10.0, eye_open=lambda t: 0.05 if 1.0 <= t < 1.2 else 0.3,
                                yaw=lambda t: float(np.clip((t - 4.0) * 40.0, 0.0, 30.0)))
    forward = detect_events(timeline)
    assert kinds(forward) == ["blink", "head_turn_left"]
    backward = reverse(timeline)
    assert backward.timestamps[0] == 0 and backward.timestamps[-1] == pytest.approx(6.9)
    assert [frame.frame_index for frame in backward.frames] == list(range(70))
    events = detect_events(backward)
    assert kinds(events) == ["head_turn_right", "blink"]  # a turn to the left played backwards turns right
    assert events[1].time == pytest.approx(6.9 - forward[0].time)
    assert reverse(backward).to_dict() == timeline.to_dict()


def test_mirroring_swaps_sides_and_negates_turns_and_tilts():
    timeline = made_up_timeline(3.0, 10.0, yaw=lambda t: 20.0, roll=lambda t: -5.0, blink_left=lambda t: 0.7)
    flipped = mirror(timeline, frame_width=640)
    frame, original = flipped.frames[0], timeline.frames[0]
    assert (frame.yaw, frame.roll, frame.pitch) == (-20.0, 5.0, original.pitch)
    assert (frame.eye_open_left, frame.eye_open_right) == (original.eye_open_right, original.eye_open_left)
    assert frame.blendshapes[BLENDSHAPE_NAMES.index("eyeBlinkRight")] == 0.7
    assert frame.blendshapes[BLENDSHAPE_NAMES.index("eyeBlinkLeft")] == 0.0
    assert frame.box == [460.0, 20.0, 540.0, 120.0]
    assert mirror(flipped, frame_width=640).to_dict() == timeline.to_dict()
    with pytest.raises(ValueError, match="frame width"):
        TimelineVariant(mirror=True).apply(timeline)


def test_windows_retiming_and_resampling():
    timeline = made_up_timeline(10.0, 10.0, eye_open=lambda t: 0.05 if 3.0 <= t < 3.35 else 0.3)
    part = window(timeline, 2.0, 3.0)
    assert len(part) == 30 and part.timestamps[0] == 0 and part.frames[0].eye_open_left == timeline.frames[20].eye_open_left
    with pytest.raises(ValueError, match="no frame in the window"):
        window(timeline, 20.0, 1.0)
    # A 0.3 s closure is a blink; slowed down twice it lasts 0.6 s: the eyes close and open (as a slowed video reads).
    assert kinds(detect_events(part)) == ["blink"]
    slowed = retime(part, 0.5)
    assert slowed.timestamps[-1] == pytest.approx(5.8)
    assert kinds(detect_events(slowed)) == ["eyes_close", "eyes_open"]
    # Resampling picks the frames load_video(num_frames=...) picks from a file of those frames.
    frames = np.zeros((len(part), 8, 8, 3), dtype=np.uint8)
    for count in (7, 16, 45):
        sampled = resample(part, count)
        assert [f.frame_index for f in sampled.frames] == load_video(frames, num_frames=count).frame_indices
    with pytest.raises(ValueError, match="num_frames"):
        resample(part, 0)


def test_a_variant_re_derives_its_measured_caption_and_random_ones_vary():
    timeline = made_up_timeline(8.0, 10.0, smile=lambda t: 0.9 if t >= 1.0 else 0.0,
                                happy=lambda t: 0.9 if t >= 1.0 else 0.0)
    source = report_from_timeline(timeline, 1, ExpressionConfig())
    variant = TimelineVariant(start=0.5, seconds=6.0, speed=2.0, reverse=True, mirror=True, num_frames=16)
    report = variant.report(source, frame_width=640)
    assert len(report.timeline) == 16 and report.person_id == 1
    assert report.timeline.timestamps[-1] == pytest.approx(2.95)
    assert "smile fades" in report.caption and "starts to smile" not in report.caption  # reversed: the smile ends
    assert TimelineVariant(**variant.to_dict()) == variant
    rng = np.random.default_rng(0)
    drawn = [random_variant(timeline, rng) for _ in range(50)]
    assert len(set(drawn)) == 50 and {v.reverse for v in drawn} == {True, False}
    assert {v.num_frames for v in drawn} == {8, 12, 16, 24, 32}
    for v in drawn:
        assert v.seconds is None or (1.5 <= v.seconds and v.start + v.seconds <= 8.0 + 1e-6)
        assert 0.5 <= v.speed <= 2.0 and len(v.apply(timeline, frame_width=640)) == v.num_frames


def test_a_montage_tells_its_pieces_events_in_the_order_they_are_cut_together():
    timeline = made_up_timeline(6.0, 10.0, smile=lambda t: 0.9 if t >= 3.0 else 0.0,
                                happy=lambda t: 0.9 if t >= 3.0 else 0.0)
    source = report_from_timeline(timeline, 1, ExpressionConfig())
    assert kinds(source.events) == ["smile_start", "emotion_shift"]
    # The smile's end (the clip reversed), then its start: two smiles, in that order, one after the other.
    montage = concatenate([reverse(timeline), window(timeline, 1.0, 4.0)])
    assert len(montage) == 60 + 40 and list(montage.timestamps) == sorted(montage.timestamps)
    assert montage.timestamps[60] == pytest.approx(6.0) and montage.timestamps[-1] == pytest.approx(9.9)
    assert [frame.frame_index for frame in montage.frames] == list(range(100))
    smiles = [event for event in report_from_timeline(montage, 1).events if event.kind.startswith("smile")]
    assert kinds(smiles) == ["smile_end", "smile_start"] and smiles[0].time < 6.0 < smiles[1].time
    with pytest.raises(ValueError, match="nothing to concatenate"):
        concatenate([])
    # Short windows on demand.
    rng = np.random.default_rng(0)
    drawn = [random_variant(timeline, rng, max_seconds=2.0, whole_probability=0.0) for _ in range(30)]
    assert all(1.5 <= variant.seconds <= 2.0 for variant in drawn)


# ------------------------------------------------------------------------------------- against real edited videos
@pytest.mark.skipif(bool(missing_expression_dependencies()), reason="expression models not installed")
def test_a_flipped_and_reversed_real_clip_reads_as_its_variant(media_dir, tmp_path):
    from video_files import write_video

    from facetrack.analysis.video_analysis import analyze_video
    from facetrack.expressions.measure import ExpressionAnalyzer

    clip = load_video(media_dir / "single_face.mp4", num_frames=None)
    edited = write_video(tmp_path / "reversed_flipped.mp4", np.ascontiguousarray(clip.frames[::-1, :, ::-1]),
                         times=list(clip.timestamps), fps=30)
    with ExpressionAnalyzer() as analyzer:
        source = analyze_video(media_dir / "single_face.mp4", num_frames=None, analyzer=analyzer).expressions
        real = analyze_video(edited, num_frames=None, analyzer=analyzer).expressions
    derived = TimelineVariant(reverse=True, mirror=True).report(source, frame_width=clip.width)
    assert len(derived.timeline) == len(real.timeline) == 72
    np.testing.assert_allclose(derived.timeline.timestamps, real.timeline.timestamps, atol=0.002)
    for name, tolerance in (("yaw", 1.5), ("roll", 1.0), ("eye_open_left", 0.03), ("eye_open_right", 0.03),
                            ("smile", 0.06)):
        difference = np.nanmean(np.abs(derived.timeline.signal(name) - real.timeline.signal(name)))
        assert difference < tolerance, f"{name}: {difference:.3f}"
    # Unflipped, the person's left eye would be compared with their right one: the swap is what makes them agree.
    source_left = source.timeline.signal("blendshape:eyeBlinkLeft")[::-1]
    real_right = real.timeline.signal("blendshape:eyeBlinkRight")
    real_left = real.timeline.signal("blendshape:eyeBlinkLeft")
    assert np.mean(np.abs(source_left - real_right)) < np.mean(np.abs(source_left - real_left))
    assert kinds(derived.events) == kinds(real.events)
    derived_features, derived_present = expression_features(derived)
    real_features, real_present = expression_features(real)
    assert derived_present.all() and real_present.all()
    states = [column(f"state:{name}") for name in ("eyes_closed", "smiling", "mouth_open")]
    assert (derived_features[:, states] == real_features[:, states]).mean() > 0.95
