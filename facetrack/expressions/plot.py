"""The expression timeline as a picture: the key measures, the head pose and the 7 emotion probabilities over time,
with a marker at every measured event. The one drawing code: the Space shows it under the crop strip, and in a
notebook

    from facetrack.expressions.plot import expression_figure
    expression_figure(analysis.expressions)            # displays inline; .savefig("timeline.png") to keep it

`expression_figure(report)` returns a matplotlib `Figure` (made without pyplot's global state, so it is safe in a
server thread); `EVENT_LABELS` are the short names written at the markers.

It draws what the caption says: where the disagreement rule does not believe a smile or a "happy" reading
(`events.grimace_samples`: a crying grimace reads as a smile to the blendshapes, and partly as happy to the
emotion model), those stretches are shaded, and the smile and happy curves there are dotted and faded, with a
legend entry saying so.
"""

from __future__ import annotations

import numpy as np

from facetrack.expressions.events import grimace_samples

# The face measures drawn in the top panel: (signal name, legend label). All lie roughly in 0..1.
FACE_SIGNALS = (
    ("eye_open", "eye openness"),
    ("smile", "smile"),
    ("mouth_open", "mouth opening"),
    ("brow_height", "brow height"),
)
HEAD_SIGNALS = (("yaw", "yaw (turn)"), ("pitch", "pitch (up/down)"), ("roll", "roll (tilt)"))
GRIMACE_LABEL = "grimace: smile / happy\nnot believed (dotted),\nas in the caption"
GRIMACE_COLOR = "#f3c9c9"
EVENT_LABELS = {
    "blink": "blink", "eyes_close": "eyes close", "eyes_open": "eyes open", "smile_start": "smile",
    "smile_end": "smile ends", "mouth_open": "mouth opens", "mouth_close": "mouth closes", "lips_press": "lips press",
    "lips_release": "lips relax", "brow_raise": "brows up", "brow_lower": "brows down", "brow_furrow": "frown",
    "brow_relax": "brows relax", "head_turn_left": "turns left", "head_turn_right": "turns right",
    "head_tilt_left": "tilts left", "head_tilt_right": "tilts right", "look_up": "looks up", "look_down": "looks down",
    "nod": "nod", "emotion_shift": "emotion",
}


def event_label(event) -> str:
    if event.kind == "emotion_shift":
        return f"{event.details.get('from', '?')} -> {event.details.get('to', '?')}"
    return EVENT_LABELS.get(event.kind, event.kind)


def _believed_and_not(values: np.ndarray, disbelieved: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`values` split into the believed samples (NaN elsewhere) and the disbelieved ones with their neighbours (so
    the dotted stretch meets the solid line on both sides)."""
    believed = np.where(disbelieved, np.nan, values)
    near = disbelieved.copy()
    near[1:] |= disbelieved[:-1]
    near[:-1] |= disbelieved[1:]
    return believed, np.where(near, values, np.nan)


def _grimace_spans(t: np.ndarray, disbelieved: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) seconds of each run of disbelieved samples, reaching halfway to the neighbouring samples."""
    spans, first = [], None
    for i, flag in enumerate(list(disbelieved) + [False]):
        if flag and first is None:
            first = i
        elif not flag and first is not None:
            last = i - 1
            start = t[first] - (t[first] - t[first - 1]) / 2 if first > 0 else t[first]
            end = t[last] + (t[last + 1] - t[last]) / 2 if last + 1 < len(t) else t[last]
            spans.append((float(start), float(end)))
            first = None
    return spans


def expression_figure(report, title: str | None = None, width_inches: float = 11.0):
    """Three stacked panels over the clip's time under an event strip: face measures, head pose (degrees), emotion
    probabilities; a dashed line at each event's time (labelled in the strip). Frames without a measurement are
    gaps. Stretches where the disagreement rule disbelieves a smile / "happy" reading are shaded, and the smile and
    happy curves are dotted there (module docstring)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    timeline = report.timeline
    t = timeline.timestamps
    disbelieved = grimace_samples(timeline, report.config)
    spans = _grimace_spans(t, disbelieved)
    figure = Figure(figsize=(width_inches, 7.4), layout="constrained")
    events, face, head, emotions = figure.subplots(4, 1, sharex=True, height_ratios=(0.55, 1.2, 0.8, 1.0))

    def draw(axis, values, label, marker, linewidth, judged):
        if not judged:
            axis.plot(t, values, marker=marker, linewidth=linewidth, label=label)
            return
        believed, doubted = _believed_and_not(values, disbelieved)
        line, = axis.plot(t, believed, marker=marker, linewidth=linewidth, label=label)
        axis.plot(t, doubted, color=line.get_color(), linestyle=":", marker=marker, linewidth=linewidth,
                  alpha=0.45)

    for name, label in FACE_SIGNALS:
        draw(face, timeline.signal(name), label, ".", 1.6, name == "smile")
    face.set_ylim(0.0, 1.0)
    face.set_ylabel("face (0-1)")
    for name, label in HEAD_SIGNALS:
        head.plot(t, timeline.signal(name), marker=".", linewidth=1.2, label=label)
    head.axhline(0.0, color="0.7", linewidth=0.8)
    head.set_ylabel("head (degrees)")
    probabilities = timeline.emotion_matrix()
    for index, label in enumerate(timeline.emotion_labels):
        draw(emotions, probabilities[:, index], label, None, 1.4, label == "happy")
    emotions.set_ylim(0.0, 1.0)
    emotions.set_ylabel("emotion probability")
    emotions.set_xlabel("time (s)")
    emotions.xaxis.set_major_locator(MaxNLocator(nbins=12, min_n_ticks=2))  # never so many that labels collide
    for axis in (face, emotions):
        for start, end in spans:
            axis.axvspan(start, end, color=GRIMACE_COLOR, alpha=0.6, linewidth=0, zorder=0)
    for axis in (face, head, emotions):
        axis.grid(True, alpha=0.3)
        handles, labels = axis.get_legend_handles_labels()
        if spans and axis is not head:
            handles.append(Patch(color=GRIMACE_COLOR, alpha=0.6))
            labels.append(GRIMACE_LABEL)
        axis.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    # The event strip: one marker per event, its name written upwards from it; the same time dashed below.
    events.set_ylim(0.0, 1.0)
    events.set_yticks([])
    events.set_ylabel("events")
    span = float(np.ptp(t)) if len(t) > 1 else 1.0
    min_gap, label_x = span / 70.0, -np.inf  # labels of events closer than this are pushed right, with a leader
    for event in sorted(report.events, key=lambda event: event.time):
        label_x = max(event.time, label_x + min_gap)
        events.plot([event.time], [0.08], marker="v", color="0.2", markersize=5)
        events.plot([event.time, label_x], [0.1, 0.2], color="0.5", linewidth=0.6)
        events.text(label_x, 0.22, event_label(event), rotation=90, fontsize=7.5, ha="center", va="bottom")
        for axis in (face, head, emotions):
            axis.axvline(event.time, color="0.35", linestyle="--", linewidth=0.9)
    if len(t):
        pad = 0.05 if len(t) > 1 else 0.5  # a photo: one sample in the middle
        face.set_xlim(float(np.min(t)) - pad, float(np.max(t)) + pad)
    who = "" if report.person_id is None else f" of person {report.person_id}"
    figure.suptitle(title or f"Measured expression timeline{who} ({len(report.events)} events; dashed lines)",
                    fontsize=11)
    return figure
