"""The expression stream's per-frame feature vectors: what the model's expression tokens are projected from.

    from facetrack.expressions.features import EXPRESSION_FEATURES, expression_features, check_feature_set

    features, present = expression_features(report)   # or a timeline; (T, N) float32, (T,) bool
    config.expression_features = EXPRESSION_FEATURES   # a model config records the set it was trained on ...
    check_feature_set(config.expression_features)      # ... and a processor refuses any other set

One row per sampled frame of the followed person's measured timeline (`ExpressionTimeline`), all values roughly in
[-1, 1] (0..1 for scores and states), in `EXPRESSION_FEATURES["columns"]` order:

- `blendshape:NAME` (52): MediaPipe's blendshape scores as measured (0..1);
- `yaw`, `pitch`, `roll`: the head pose in degrees / 45, clipped to [-2, 2] (signs as in `measure.py`);
- `eye_open_left`, `eye_open_right` (lid gap / eye width) / 0.3: open eyes ~1, shut ~0.2-0.4;
  `mouth_open` / 0.4; `lip_corner_width` - 1 (mouth-corner distance / eye distance, ~1 on a relaxed face);
  `brow_height_change`, `brow_gap_change`: brow height and gap minus their median over the clip's measured
  frames, / 0.1 (brows sit differently on every face: the brow rules compare with the clip's median too);
- `emotion:LABEL` (7): fer's probabilities;
- `state:*` (16): the states the event rules see, computed by the same rules and thresholds (`ExpressionConfig`)
  that write the measured caption, so an event is where a state changes: `state:eyes_closed`, `state:smiling`
  (after the disagreement rule: a crying grimace is no smile), `state:mouth_open`, `state:lips_pressed`,
  `state:brows_raised`, `state:brows_furrowed` (0 or 1: on/off hysteresis, short states dropped and short
  pauses closed, as the events are), `state:yaw_change`, `state:pitch_change`, `state:roll_change` (the smoothed
  angle minus its value at the first measured frame, degrees / 45, clipped to [-2, 2]), and
  `state:emotion:LABEL` (7, one-hot: the dominant emotion after the disagreement rule; all 0 where none
  reaches `emotion_min_probability`);
- `event:*` (28): the measured events (`detect_events`; a report's own events), each at the measured frame
  nearest its time within the caption phase that holds it (so the frame's `time:position` puts it where the
  measured caption tells it): `event:KIND` for every kind but emotion shifts (its count there: a frame can hold
  two blinks), `event:wide_smile` (a smile start of strength >= 0.8, which the caption calls "breaks into a wide
  smile") and `event:emotion_to:LABEL` (7: an emotion shift to that emotion). These are the caption's clauses,
  frame by frame;
- `time:position` (0 at the first measured frame, 1 at the last: where the caption's four phases lie),
  `time:seconds` (seconds since the first measured frame / 10, clipped to [0, 3]: how long things take) and
  `time:phase_1` ... `time:phase_4` (one-hot: the caption phase the frame is told in, "At the beginning" ...
  "Towards the end", by `caption.frame_phases`). Why the phase as its own columns (version 4): a projector that
  had to cut `time:position` into phases itself used steep units whose cancelling pairs drift apart in training,
  and then the frame's token grew with its position (a trained CPU model's tokens went from norm 14 on the first
  frame to 1056 on the last, against ~3 for a word), drowning what the later frames carry.

Frames where the landmarker did not measure the face (no box, or no face found in it) are rows of zeros with
`present` False; the model gives them its own learned embedding. Everything comes from the stored timeline (a
dataset's face track holds each followed person's full report), so training never measures again. The set is
versioned: a change of any column, scale or rule bumps `version`, and `check_feature_set` refuses a set that
differs from this one in name, version, size or columns.
"""

from __future__ import annotations

import numpy as np

from facetrack.expressions.caption import PHASES, WIDE_SMILE_STRENGTH, caption_phase, frame_phases, measured_span
from facetrack.expressions.config import ExpressionConfig
from facetrack.expressions.events import (
    EVENT_KINDS,
    _brow_evidence,
    _clean_runs,
    _hysteresis,
    _running,
    _stretches,
    dominant_emotions,
    grimace_mask,
)
from facetrack.expressions.measure import BLENDSHAPE_NAMES, ExpressionTimeline
from facetrack.expressions.models import EMOTION_LABELS

POSE_SCALE_DEGREES = 45.0
EYE_OPEN_SCALE = 0.3
MOUTH_OPEN_SCALE = 0.4
BROW_SCALE = 0.1
SECONDS_SCALE = 10.0
LEVEL_STATES = ("eyes_closed", "smiling", "mouth_open", "lips_pressed", "brows_raised", "brows_furrowed")

_COLUMNS = (
    [f"blendshape:{name}" for name in BLENDSHAPE_NAMES]
    + ["yaw", "pitch", "roll", "eye_open_left", "eye_open_right", "mouth_open", "lip_corner_width",
       "brow_height_change", "brow_gap_change"]
    + [f"emotion:{label}" for label in EMOTION_LABELS]
    + [f"state:{name}" for name in LEVEL_STATES]
    + ["state:yaw_change", "state:pitch_change", "state:roll_change"]
    + [f"state:emotion:{label}" for label in EMOTION_LABELS]
    + [f"event:{kind}" for kind in EVENT_KINDS if kind != "emotion_shift"]
    + ["event:wide_smile"]
    + [f"event:emotion_to:{label}" for label in EMOTION_LABELS]
    + ["time:position", "time:seconds"]
    + [f"time:phase_{index + 1}" for index in range(len(PHASES))]
)
RULE_COLUMN_PREFIXES = ("state:", "event:", "time:")
# What a model's projector may read (`FaceTrackConfig.expression_columns`): every column, or the rule columns only
# (the states, events and times the measured caption is written from: the same on every face, where blendshape
# levels, pose and emotion scores differ from face to face).
EXPRESSION_COLUMN_CHOICES = ("all", "rules")
EXPRESSION_FEATURES = {
    "name": "facetrack-expression-features",
    "version": 4,  # 3: events on measured frames of their caption phase; 4: the caption phase one-hot
    "size": len(_COLUMNS),
    "columns": list(_COLUMNS),
}


def input_columns(choice: str) -> list[str] | None:
    """The `expression_columns` of a model config for a choice of `EXPRESSION_COLUMN_CHOICES` (None: all)."""
    if choice not in EXPRESSION_COLUMN_CHOICES:
        raise ValueError(f"expression columns must be one of {', '.join(EXPRESSION_COLUMN_CHOICES)}, got {choice!r}")
    if choice == "all":
        return None
    return [name for name in EXPRESSION_FEATURES["columns"] if name.startswith(RULE_COLUMN_PREFIXES)]


def check_feature_set(description: dict) -> None:
    """Raise ValueError unless `description` (a model config's record of the features it was trained on) is the set
    `expression_features` computes."""
    if not isinstance(description, dict):
        raise ValueError(f"an expression feature set is a dict like EXPRESSION_FEATURES, got {type(description).__name__}")
    ours = EXPRESSION_FEATURES
    for key in ("name", "version", "size"):
        if description.get(key) != ours[key]:
            raise ValueError(
                f"the model expects expression features {description.get('name')!r} version "
                f"{description.get('version')} with {description.get('size')} columns, but this code computes "
                f"{ours['name']!r} version {ours['version']} with {ours['size']} columns (differs in {key}); "
                "install the facetrack-mm version the model was trained with")
    if "columns" in description and list(description["columns"]) != ours["columns"]:
        differing = [f"{i}: {a!r} != {b!r}" for i, (a, b) in enumerate(zip(description["columns"], ours["columns"]))
                     if a != b][:3]
        raise ValueError(f"expression feature columns differ from {ours['name']!r} version {ours['version']}: "
                         + "; ".join(differing))


def _as_timeline(source) -> tuple[ExpressionTimeline, ExpressionConfig | None]:
    if isinstance(source, ExpressionTimeline):
        return source, None
    timeline = getattr(source, "timeline", None)
    if isinstance(timeline, ExpressionTimeline):  # an ExpressionReport
        return timeline, getattr(source, "config", None)
    raise TypeError(f"expression_features takes an ExpressionTimeline or an ExpressionReport, got "
                    f"{type(source).__name__}")


def level_states(timeline: ExpressionTimeline, config: ExpressionConfig | None = None) -> dict[str, np.ndarray]:
    """(T,) bool per state of `LEVEL_STATES`, as `detect_events` sees them within each stretch of measured frames
    (its smoothing, hysteresis, disagreement rule, dropped short states and closed short pauses): each event of
    those kinds is a change of one of these states. False where the face was not measured."""
    config = config or ExpressionConfig()
    t = timeline.timestamps
    states = {name: np.zeros(len(t), dtype=bool) for name in LEVEL_STATES}
    if timeline.is_empty or not timeline.measured.any():
        return states
    smooth = lambda values: _running(t, values, config.smoothing_seconds, np.median)  # noqa: E731
    smile = smooth(timeline.signal("smile"))
    mouth = smooth(timeline.signal("mouth_open"))
    press = smooth((timeline.signal("blendshape:mouthPressLeft") + timeline.signal("blendshape:mouthPressRight"))
                   / 2.0)
    raise_evidence, furrow_evidence = _brow_evidence(timeline, config)
    grimace = grimace_mask(timeline, config)
    eyes = timeline.signal("eye_open")
    levels = {  # name: (values, on, off, veto)
        "smiling": (smile, config.smile_on, config.smile_off, grimace),
        "mouth_open": (mouth, config.mouth_open_on, config.mouth_open_off, None),
        "lips_pressed": (press, config.lips_press_on, config.lips_press_off, None),
        "brows_raised": (raise_evidence, 1.0, config.brow_hysteresis, None),
        "brows_furrowed": (furrow_evidence, 1.0, config.brow_hysteresis, None),
    }
    for stretch in _stretches(t, timeline.measured, config.max_gap_seconds):
        ts = t[stretch]
        states["eyes_closed"][stretch] = _hysteresis(eyes[stretch], config.eyes_closed_below, config.eyes_open_above,
                                                     above=False)
        for name, (values, on, off, veto) in levels.items():
            mask = _hysteresis(values[stretch], on, off)
            if veto is not None:
                mask &= ~veto[stretch]
            for first, last in _clean_runs(ts, mask, config):
                states[name][stretch[first:last + 1]] = True
    return states


def event_columns(events, t: np.ndarray, present: np.ndarray, phases: np.ndarray) -> list[np.ndarray]:
    """The `event:*` columns: each event counted at the measured frame nearest its time among those in the caption
    phase that holds its time (any measured frame where that phase has none). Why: the nearest frame can lie in
    the next phase (an event between two sampled frames) or have no face (its row is zeroed), and then the stream
    would tell the event elsewhere than the measured caption does, or not at all. `phases`: each frame's caption
    phase (`frame_phases`)."""
    kinds = [kind for kind in EVENT_KINDS if kind != "emotion_shift"]
    names = [f"event:{kind}" for kind in kinds] + ["event:wide_smile"] + [f"event:emotion_to:{label}"
                                                                          for label in EMOTION_LABELS]
    values = {name: np.zeros(len(t)) for name in names}
    measured = np.flatnonzero(present)
    start, length = measured_span(t, present)
    for event in events:
        in_phase = measured[phases[measured] == caption_phase(event.time, start, length)]
        candidates = in_phase if len(in_phase) else measured
        frame = int(candidates[np.argmin(np.abs(t[candidates] - event.time))])
        if event.kind == "emotion_shift":
            name = f"event:emotion_to:{event.details.get('to')}"
            if name in values:
                values[name][frame] += 1.0
            continue
        values[f"event:{event.kind}"][frame] += 1.0
        if event.kind == "smile_start" and event.strength >= WIDE_SMILE_STRENGTH:
            values["event:wide_smile"][frame] += 1.0
    return [values[name] for name in names]


def expression_features(source, config: ExpressionConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(features (T, N) float32, present (T,) bool) of a timeline or an `ExpressionReport` (see the module docstring;
    N = EXPRESSION_FEATURES["size"]). `config`: the rules' thresholds for the states (default: the report's own,
    else `ExpressionConfig()`)."""
    timeline, report_config = _as_timeline(source)
    config = config or report_config or ExpressionConfig()
    events = getattr(source, "events", None)
    if events is None:
        from facetrack.expressions.events import detect_events

        events = detect_events(timeline, config)
    if list(timeline.blendshape_names) != list(BLENDSHAPE_NAMES) or list(timeline.emotion_labels) != list(
            EMOTION_LABELS):
        raise ValueError("the timeline's blendshape names or emotion labels are not the ones this feature set "
                         f"({EXPRESSION_FEATURES['name']} version {EXPRESSION_FEATURES['version']}) was defined on")
    size = EXPRESSION_FEATURES["size"]
    present = timeline.measured.copy()
    features = np.zeros((len(timeline), size), dtype=np.float32)
    if not present.any():
        return features, present
    t = timeline.timestamps
    columns: list[np.ndarray] = []
    columns += [timeline.signal(f"blendshape:{name}") for name in BLENDSHAPE_NAMES]
    columns += [np.clip(timeline.signal(name) / POSE_SCALE_DEGREES, -2.0, 2.0) for name in ("yaw", "pitch", "roll")]
    columns += [timeline.signal("eye_open_left") / EYE_OPEN_SCALE, timeline.signal("eye_open_right") / EYE_OPEN_SCALE,
                timeline.signal("mouth_open") / MOUTH_OPEN_SCALE, timeline.signal("lip_corner_width") - 1.0]
    for name in ("brow_height", "brow_gap"):
        values = timeline.signal(name)
        columns.append((values - np.nanmedian(values[present])) / BROW_SCALE)
    columns += [timeline.signal(f"emotion:{label}") for label in EMOTION_LABELS]

    states = level_states(timeline, config)
    columns += [states[name].astype(np.float64) for name in LEVEL_STATES]
    first = int(np.flatnonzero(present)[0])
    for name in ("yaw", "pitch", "roll"):
        angle = _running(t, timeline.signal(name), config.pose_smoothing_seconds, np.median)
        columns.append(np.clip((angle - angle[first]) / POSE_SCALE_DEGREES, -2.0, 2.0))
    dominant = dominant_emotions(timeline, config)
    columns += [np.array([value == label for value in dominant], dtype=np.float64) for label in EMOTION_LABELS]
    start, length = measured_span(t, present)  # the caption's span: first to last of the `present` frames
    phases = np.array(frame_phases(t, present))
    columns += event_columns(events, t, present, phases)
    columns.append(np.clip((t - start) / length, 0.0, 1.0) if present.sum() > 1 else np.zeros(len(t)))
    columns.append(np.clip((t - start) / SECONDS_SCALE, 0.0, 3.0))
    columns += [(phases == index).astype(np.float64) for index in range(len(PHASES))]

    stacked = np.stack(columns, axis=1)
    if stacked.shape[1] != size:  # the column list and the code above must agree
        raise AssertionError(f"computed {stacked.shape[1]} feature columns, the set declares {size}")
    stacked[~present] = 0.0
    if not np.isfinite(stacked[present]).all():
        bad = sorted({EXPRESSION_FEATURES["columns"][j] for j in np.argwhere(~np.isfinite(stacked[present]))[:, 1]})
        raise ValueError(f"measured frames have missing values in {bad[:5]} (a timeline with landmarks but no "
                         "blendshapes, pose or emotions is not a valid measurement)")
    features[:] = stacked
    return features, present
