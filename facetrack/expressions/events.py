"""Events from an expression timeline: blinks, eyes closing/opening, smiles, mouth, lips, brows, head movements and
emotion shifts, each with a start, an end and a strength.

`detect_events(timeline, config) -> list[ExpressionEvent]`, sorted by time. Every event is a *change* seen in the
measurement; `start`..`end` is the span of the change (for a blink: its first to its last closed sample; for a
state such as a smile starting: the last sample before it and the first sample in it, so at dense sampling the
span is one frame and at sparse sampling it says how uncertain the moment is). `time` is the span's midpoint.

Rules (thresholds: `ExpressionConfig`; docs/expressions.md explains each):
- Measured samples are cut into stretches wherever two consecutive ones are more than `max_gap_seconds` apart
  (or 1.5 sampling steps, when the samples are sparser than that: the face was missing in between): states and
  movements never bridge a gap, and a state already holding at the start of a stretch is its initial state, not an
  event.
- Eyes (unsmoothed mean openness, hysteresis): a closure lasting at most `blink_max_seconds` is a `blink`; a
  longer one gives `eyes_close` at its start and `eyes_open` at its end (when those lie inside the stretch).
- Smile, open mouth, pressed lips, raised / furrowed brows: smoothed signals with on/off hysteresis; states shorter
  than `min_state_seconds` are dropped, pauses shorter than `merge_gap_seconds` are closed; their starts and
  ends are events (`smile_start` / `smile_end`, `mouth_open` / `mouth_close`, `lips_press` / `lips_release`,
  `brow_raise` / `brow_lower`, `brow_furrow` / `brow_relax`).
- Disagreement rule: a smile sample only counts where the emotion model's smoothed negative emotions (sad + fear
  + angry + disgust) are at most `max_negative_for_happy`; the same rule turns a "happy" top emotion into the
  top negative one. A crying grimace that reads as a smile is therefore not reported as one.
- Head: the smoothed yaw / roll / pitch is split at its turning points (reversals of at least the movement's
  threshold); each leg of at least `turn_degrees` / `tilt_degrees` / `look_degrees` that takes at most
  `max_move_seconds` (20% to 80% of it) is a movement: `head_turn_left` / `head_turn_right`, `head_tilt_left` /
  `head_tilt_right`, `look_up` / `look_down`; a down leg followed by an up leg within `nod_max_seconds` is a `nod`.
- Emotions: the top of the smoothed probabilities (after the disagreement rule), where it reaches
  `emotion_min_probability`; a new top emotion that holds for `emotion_min_seconds` is an `emotion_shift`
  (details: "from", "to").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facetrack.expressions.config import ExpressionConfig
from facetrack.expressions.measure import ExpressionTimeline

EVENT_KINDS = (
    "blink", "eyes_close", "eyes_open", "smile_start", "smile_end", "mouth_open", "mouth_close", "lips_press",
    "lips_release", "brow_raise", "brow_lower", "brow_furrow", "brow_relax", "head_turn_left", "head_turn_right",
    "head_tilt_left", "head_tilt_right", "look_up", "look_down", "nod", "emotion_shift",
)
NEGATIVE_EMOTIONS = ("sad", "fear", "angry", "disgust")


@dataclass
class ExpressionEvent:
    kind: str  # one of EVENT_KINDS
    start: float  # seconds
    end: float
    strength: float  # 0..1: how pronounced (see docs/expressions.md for each kind)
    details: dict = field(default_factory=dict)

    @property
    def time(self) -> float:
        return (self.start + self.end) / 2.0

    def to_dict(self) -> dict:
        return {"kind": self.kind, "start": round(self.start, 3), "end": round(self.end, 3),
                "strength": round(float(self.strength), 3), "details": dict(self.details)}

    @classmethod
    def from_dict(cls, data: dict) -> ExpressionEvent:
        try:
            kind = str(data["kind"])
            if kind not in EVENT_KINDS:
                raise ValueError(f"unknown event kind {kind!r}")
            return cls(kind=kind, start=float(data["start"]), end=float(data["end"]),
                       strength=float(data.get("strength", 0.0)), details=dict(data.get("details") or {}))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a valid expression event: {type(error).__name__}: {error}") from error


# ------------------------------------------------------------------------------------------------------- helpers
def _running(t: np.ndarray, x: np.ndarray, seconds: float, reduce) -> np.ndarray:
    """Centred running `reduce` (np.median / np.mean over axis 0) within +-seconds/2; rows of NaN stay NaN."""
    if seconds <= 0 or len(t) < 2:
        return x.copy()
    out = np.full(x.shape, np.nan, dtype=np.float64)
    valid = ~np.isnan(x) if x.ndim == 1 else ~np.isnan(x).any(axis=1)
    # The window shrinks symmetrically near the ends, so the first and last samples keep their own values (a
    # one-sided window would carry a smile past the moment it ends in the last frames of a clip).
    half = np.minimum(seconds / 2.0, np.minimum(t - t[0], t[-1] - t)) + 1e-9
    lows = np.searchsorted(t, t - half, side="left")
    highs = np.searchsorted(t, t + half, side="right")
    for i in np.flatnonzero(valid):
        window = x[lows[i]:highs[i]][valid[lows[i]:highs[i]]]
        out[i] = reduce(window, axis=0)
    return out


def _stretches(t: np.ndarray, valid: np.ndarray, max_gap: float) -> list[np.ndarray]:
    """Index arrays of consecutive valid samples, cut where two of them are more than `max_gap` s apart, or more
    than 1.5 sampling steps where the samples themselves lie further apart than that."""
    indices = np.flatnonzero(valid)
    if len(indices) == 0:
        return []
    # 16 frames of a 20 s clip are 1.3 s apart: neighbouring samples are not a gap, a missing sample between is.
    max_gap = max(max_gap, 1.5 * _spacing(t))
    cuts = np.flatnonzero(np.diff(t[indices]) > max_gap) + 1
    return [part for part in np.split(indices, cuts) if len(part)]


def _spacing(t: np.ndarray) -> float:
    steps = np.diff(t)
    steps = steps[steps > 0]
    return float(np.median(steps)) if len(steps) else 0.0


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) positions of each run of True."""
    runs, start = [], None
    for i, on in enumerate(mask):
        if on and start is None:
            start = i
        elif not on and start is not None:
            runs.append((start, i - 1))
            start = None
    if start is not None:
        runs.append((start, len(mask) - 1))
    return runs


def _hysteresis(values: np.ndarray, on: float, off: float, above: bool = True) -> np.ndarray:
    state, out = False, np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values):
        if above:
            state = value >= on if not state else value >= off
        else:
            state = value <= on if not state else value <= off
        out[i] = state
    return out


def _clean_runs(ts: np.ndarray, mask: np.ndarray, config: ExpressionConfig) -> list[tuple[int, int]]:
    """Runs of a state within one stretch: pauses shorter than merge_gap closed, states shorter than
    min_state dropped (each sample stands for one sampling step, so one sample at sparse sampling is a state)."""
    step = _spacing(ts)
    merged: list[tuple[int, int]] = []
    for first, last in _runs(mask):
        if merged and ts[first] - ts[merged[-1][1]] - step < config.merge_gap_seconds:
            merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return [(a, b) for a, b in merged if ts[b] - ts[a] + step >= config.min_state_seconds]


def _state_events(
    ts: np.ndarray, runs: list[tuple[int, int]], kinds: tuple[str, str], strengths: list[float]
) -> list[ExpressionEvent]:
    """A start event before each run that does not begin the stretch, an end event after each that does not end it."""
    events = []
    for (first, last), strength in zip(runs, strengths):
        if first > 0:
            events.append(ExpressionEvent(kinds[0], float(ts[first - 1]), float(ts[first]), strength))
        if last < len(ts) - 1:
            events.append(ExpressionEvent(kinds[1], float(ts[last]), float(ts[last + 1]), strength))
    return events


def _crossing(ts: np.ndarray, xs: np.ndarray, level: float, rising: bool) -> float:
    """First time the series passes `level` (linear interpolation between samples)."""
    for i in range(1, len(xs)):
        a, b = xs[i - 1], xs[i]
        if (rising and a < level <= b) or (not rising and a > level >= b):
            return float(ts[i - 1] + (ts[i] - ts[i - 1]) * (level - a) / (b - a))
    return float(ts[0])


def _turning_points(xs: np.ndarray, threshold: float) -> list[int]:
    """Positions of the turning points of a zigzag that ignores reversals smaller than `threshold`."""
    if len(xs) < 2:
        return []
    high = low = 0
    direction = 0
    points: list[int] = []
    extreme = 0
    for i in range(1, len(xs)):
        if direction == 0:
            high = i if xs[i] > xs[high] else high
            low = i if xs[i] < xs[low] else low
            if xs[high] - xs[low] >= threshold:
                direction = 1 if high > low else -1
                points = [low if direction > 0 else high]
                extreme = high if direction > 0 else low
        elif direction > 0:
            if xs[i] > xs[extreme]:
                extreme = i
            elif xs[extreme] - xs[i] >= threshold:
                points.append(extreme)
                direction, extreme = -1, i
        else:
            if xs[i] < xs[extreme]:
                extreme = i
            elif xs[i] - xs[extreme] >= threshold:
                points.append(extreme)
                direction, extreme = 1, i
    if direction != 0:
        points.append(extreme)
    return points


# ----------------------------------------------------------------------------------------------------- detectors
def _eye_events(t, eyes, stretch, config) -> list[ExpressionEvent]:
    ts, xs = t[stretch], eyes[stretch]
    closed = _hysteresis(xs, config.eyes_closed_below, config.eyes_open_above, above=False)
    events = []
    for first, last in _runs(closed):
        depth = float(np.clip(1.0 - xs[first:last + 1].min() / max(config.eyes_open_above, 1e-6), 0.0, 1.0))
        inside = first > 0 and last < len(ts) - 1
        if inside and ts[last] - ts[first] <= config.blink_max_seconds:
            events.append(ExpressionEvent("blink", float(ts[first]), float(ts[last]), depth))
            continue
        if first > 0:
            events.append(ExpressionEvent("eyes_close", float(ts[first - 1]), float(ts[first]), depth))
        if last < len(ts) - 1:
            events.append(ExpressionEvent("eyes_open", float(ts[last]), float(ts[last + 1]), depth,
                                          {"closed_seconds": round(float(ts[last] - ts[first]), 3)}))
    return events


def _level_events(t, values, stretch, on, off, kinds, config, veto=None, scale=1.0) -> list[ExpressionEvent]:
    ts, xs = t[stretch], values[stretch]
    mask = _hysteresis(xs, on, off)
    if veto is not None:
        mask &= ~veto[stretch]
    runs = _clean_runs(ts, mask, config)
    strengths = [float(np.clip(xs[a:b + 1].max() / max(scale, 1e-6), 0.0, 1.0)) for a, b in runs]
    return _state_events(ts, runs, kinds, strengths)


def _fastest_changes(ts, xs, first, last, sign, threshold, max_seconds) -> list[tuple[int, int]]:
    """(i, j) pairs inside [first, last]: the largest change in direction `sign` that takes at most `max_seconds`,
    then recursively the same before i and after j, while changes of at least `threshold` remain."""
    best = None
    for i in range(first, last):
        stop = min(int(np.searchsorted(ts, ts[i] + max_seconds + 1e-9, side="right")), last + 1)
        if stop <= i + 1:
            continue
        j = i + 1 + int(np.argmax(sign * xs[i + 1:stop]))
        gain = float(sign * (xs[j] - xs[i]))
        if best is None or gain > best[0]:
            best = (gain, i, j)
    if best is None or best[0] < threshold:
        return []
    _, i, j = best
    return (_fastest_changes(ts, xs, first, i, sign, threshold, max_seconds) + [(i, j)]
            + _fastest_changes(ts, xs, j, last, sign, threshold, max_seconds))


def _movement_events(t, angle, stretch, threshold, kinds, config, nods=False) -> list[ExpressionEvent]:
    ts, xs = t[stretch], angle[stretch]
    points = _turning_points(xs, threshold)
    legs = []
    for a, b in zip(points, points[1:]):
        sign = 1.0 if xs[b] > xs[a] else -1.0
        # A leg between turning points can hold a slow drift and a quick movement: keep the quick part(s).
        for i, j in _fastest_changes(ts, xs, a, b, sign, threshold, config.max_move_seconds):
            change = float(xs[j] - xs[i])
            segment_t, segment_x = ts[i:j + 1], xs[i:j + 1]
            start = _crossing(segment_t, segment_x, xs[i] + 0.2 * change, change > 0)
            end = _crossing(segment_t, segment_x, xs[i] + 0.8 * change, change > 0)
            legs.append((start, end, change, float(xs[i]), float(xs[j])))
    legs.sort()
    events, skip = [], False
    for index, (start, end, change, before, after) in enumerate(legs):
        if skip:
            skip = False
            continue
        if nods and change < 0 and index + 1 < len(legs):
            next_start, next_end, next_change, _, _ = legs[index + 1]
            if next_change > 0 and next_end - start <= config.nod_max_seconds:
                strength = float(np.clip(min(-change, next_change) / 30.0, 0.0, 1.0))
                events.append(ExpressionEvent("nod", start, next_end, strength, {"degrees": round(-change, 1)}))
                skip = True
                continue
        kind = kinds[0] if change > 0 else kinds[1]
        events.append(ExpressionEvent(kind, start, end, float(np.clip(abs(change) / 45.0, 0.0, 1.0)),
                                      {"degrees": round(abs(change), 1), "from": round(before, 1),
                                       "to": round(after, 1)}))
    return events


def _brow_evidence(timeline: ExpressionTimeline, config: ExpressionConfig) -> tuple[np.ndarray, np.ndarray]:
    """(raise, furrow) evidence per sample in units of their thresholds: >= 1 starts a state, < brow_hysteresis
    ends it."""
    t = timeline.timestamps
    brows = lambda values: _running(t, values, config.brow_smoothing_seconds, np.median)  # noqa: E731
    height, gap = brows(timeline.signal("brow_height")), brows(timeline.signal("brow_gap"))
    if not np.isfinite(height).any():
        empty = np.full(len(t), np.nan)
        return empty, empty
    height_baseline, gap_baseline = np.nanmedian(height), np.nanmedian(gap)
    inner_up = brows(timeline.signal("blendshape:browInnerUp"))
    brow_down = brows((timeline.signal("blendshape:browDownLeft") + timeline.signal("blendshape:browDownRight")) / 2)
    raise_evidence = np.fmax((height - height_baseline) / config.brow_raise_delta, inner_up / config.brow_inner_up_on)
    furrow_evidence = np.fmax.reduce([(height_baseline - height) / config.brow_furrow_delta,
                                      (gap_baseline - gap) / config.brow_knit_delta, brow_down / config.brow_down_on])
    return raise_evidence, furrow_evidence


def grimace_mask(timeline: ExpressionTimeline, config: ExpressionConfig | None = None) -> np.ndarray:
    """(T,) bool, the disagreement rule: True where a smile or a "happy" reading is not believed, because the
    emotion model's smoothed negative emotions exceed `max_negative_for_happy` or the brows are knitted (a smile
    with a frown is a grimace: crying, pain), or because the sample lies in a smile episode of which less than
    `smile_min_believed` is believed. Unmeasured samples are True."""
    config = config or ExpressionConfig()
    labels = list(timeline.emotion_labels)
    emotions = _running(timeline.timestamps, timeline.emotion_matrix(), config.emotion_smoothing_seconds, np.mean)
    negative = emotions[:, [labels.index(n) for n in NEGATIVE_EMOTIONS if n in labels]].sum(axis=1)
    _, furrow = _brow_evidence(timeline, config)
    disbelieved = ~(negative <= config.max_negative_for_happy) | (furrow >= 1.0)
    # A smile reading is one episode (on/off hysteresis); where most of it is disbelieved, all of it is: a crying
    # face can look happy to both models for a moment (WolfgangLanger 0.7-1.5 s) in the middle of a grimace.
    smile = _running(timeline.timestamps, timeline.signal("smile"), config.smoothing_seconds, np.median)
    for first, last in _runs(_hysteresis(np.nan_to_num(smile), config.smile_on, config.smile_off)):
        if disbelieved[first:last + 1].mean() > 1.0 - config.smile_min_believed:
            disbelieved[first:last + 1] = True
    return disbelieved


def grimace_samples(timeline: ExpressionTimeline, config: ExpressionConfig | None = None) -> np.ndarray:
    """(T,) bool: the samples that read as a smile or as "happy" (the smoothed mean smile blendshape at least
    `smile_off`, or "happy" the top raw emotion) and that the disagreement rule does not believe (`grimace_mask`):
    a crying or pained grimace. What the expression plot marks and the per-frame table's `grimace` column holds."""
    config = config or ExpressionConfig()
    if not timeline.frames:
        return np.zeros(0, dtype=bool)
    t = timeline.timestamps
    smile = _running(t, timeline.signal("smile"), config.smoothing_seconds, np.median)
    probabilities = timeline.emotion_matrix()
    labels = list(timeline.emotion_labels)
    happy_top = np.zeros(len(t), dtype=bool)
    if "happy" in labels:
        rows = ~np.isnan(probabilities).any(axis=1)
        happy_top[rows] = np.argmax(probabilities[rows], axis=1) == labels.index("happy")
    reads_happy = (np.nan_to_num(smile) >= config.smile_off) | happy_top
    return grimace_mask(timeline, config) & reads_happy


def dominant_emotions(timeline: ExpressionTimeline, config: ExpressionConfig | None = None) -> list[str | None]:
    """Per sample, the top smoothed emotion after the disagreement rule (a disbelieved "happy" gives way to the top
    negative emotion), or None where not measured or no emotion reaches `emotion_min_probability`."""
    config = config or ExpressionConfig()
    labels = list(timeline.emotion_labels)
    probabilities = _running(timeline.timestamps, timeline.emotion_matrix(), config.emotion_smoothing_seconds, np.mean)
    negative = [labels.index(name) for name in NEGATIVE_EMOTIONS if name in labels]
    happy = labels.index("happy") if "happy" in labels else None
    grimace = grimace_mask(timeline, config)
    result: list[str | None] = []
    for row, disbelieved in zip(probabilities, grimace):
        if np.isnan(row).any():
            result.append(None)
            continue
        top = int(np.argmax(row))
        if top == happy and disbelieved:
            top = negative[int(np.argmax(row[negative]))]
        result.append(labels[top] if row[top] >= config.emotion_min_probability else None)
    return result


def _emotion_events(t, dominant, probabilities, labels, stretch, config) -> list[ExpressionEvent]:
    ts = t[stretch]
    names = [dominant[i] for i in stretch]
    step = _spacing(ts)
    held: list[tuple[str, int, int]] = []  # (emotion, first, last) of runs that hold long enough
    first = 0
    for i in range(1, len(names) + 1):
        if i == len(names) or names[i] != names[first]:
            # The first run of a stretch began before we saw it: half the hold time is enough for it.
            needed = config.emotion_min_seconds / (2.0 if first == 0 else 1.0)
            if names[first] is not None and ts[i - 1] - ts[first] + step >= needed:
                if held and held[-1][0] == names[first]:
                    held[-1] = (names[first], held[-1][1], i - 1)
                else:
                    held.append((names[first], first, i - 1))
            first = i
    events = []
    for (before, _, before_last), (after, after_first, _) in zip(held, held[1:]):
        strength = float(probabilities[stretch[after_first], labels.index(after)])  # the new emotion's probability
        events.append(ExpressionEvent("emotion_shift", float(ts[before_last]), float(ts[after_first]), strength,
                                      {"from": before, "to": after}))
    return events


def detect_events(timeline: ExpressionTimeline, config: ExpressionConfig | None = None) -> list[ExpressionEvent]:
    """All events of one face's timeline, sorted by time (rules in the module docstring)."""
    config = config or ExpressionConfig()
    if timeline.is_empty:
        return []
    t = timeline.timestamps
    valid = timeline.measured
    smooth = lambda name: _running(t, timeline.signal(name), config.smoothing_seconds, np.median)  # noqa: E731
    pose = lambda name: _running(t, timeline.signal(name), config.pose_smoothing_seconds, np.median)  # noqa: E731
    eyes = timeline.signal("eye_open")
    smile = smooth("smile")
    mouth = smooth("mouth_open")
    press = _running(t, (timeline.signal("blendshape:mouthPressLeft") + timeline.signal("blendshape:mouthPressRight"))
                     / 2.0, config.smoothing_seconds, np.median)
    raise_evidence, furrow_evidence = _brow_evidence(timeline, config)
    grimace = grimace_mask(timeline, config)
    dominant = dominant_emotions(timeline, config)
    emotions = _running(t, timeline.emotion_matrix(), config.emotion_smoothing_seconds, np.mean)

    events: list[ExpressionEvent] = []
    for stretch in _stretches(t, valid, config.max_gap_seconds):
        events += _eye_events(t, eyes, stretch, config)
        events += _level_events(t, smile, stretch, config.smile_on, config.smile_off, ("smile_start", "smile_end"),
                                config, veto=grimace)
        events += _level_events(t, mouth, stretch, config.mouth_open_on, config.mouth_open_off,
                                ("mouth_open", "mouth_close"), config, scale=2 * config.mouth_open_on)
        events += _level_events(t, press, stretch, config.lips_press_on, config.lips_press_off,
                                ("lips_press", "lips_release"), config)
        events += _level_events(t, raise_evidence, stretch, 1.0, config.brow_hysteresis, ("brow_raise", "brow_lower"),
                                config, scale=2.0)
        events += _level_events(t, furrow_evidence, stretch, 1.0, config.brow_hysteresis,
                                ("brow_furrow", "brow_relax"), config, scale=2.0)
        events += _movement_events(t, pose("yaw"), stretch, config.turn_degrees,
                                   ("head_turn_left", "head_turn_right"), config)
        events += _movement_events(t, pose("roll"), stretch, config.tilt_degrees,
                                   ("head_tilt_right", "head_tilt_left"), config)
        events += _movement_events(t, pose("pitch"), stretch, config.look_degrees, ("look_up", "look_down"), config,
                                   nods=True)
        events += _emotion_events(t, dominant, emotions, list(timeline.emotion_labels), stretch, config)
    return sorted(events, key=lambda event: (event.time, EVENT_KINDS.index(event.kind)))
