"""The expression timeline as a picture: the key measures, the head pose and the 7 emotion probabilities over time,
with a marker at every measured event (the Space shows it under the crop strip).

`expression_figure(report)` returns a matplotlib `Figure` (made without pyplot's global state, so it is safe in a
server thread); `EVENT_LABELS` are the short names written at the markers.
"""

from __future__ import annotations

import numpy as np

# The face measures drawn in the top panel: (signal name, legend label). All lie roughly in 0..1.
FACE_SIGNALS = (
    ("eye_open", "eye openness"),
    ("smile", "smile"),
    ("mouth_open", "mouth opening"),
    ("brow_height", "brow height"),
)
HEAD_SIGNALS = (("yaw", "yaw (turn)"), ("pitch", "pitch (up/down)"), ("roll", "roll (tilt)"))
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


def expression_figure(report, title: str | None = None, width_inches: float = 11.0):
    """Three stacked panels over the clip's time: face measures, head pose (degrees), emotion probabilities; a
    dashed line at each event's time (labelled in the top panel). Frames without a measurement are gaps."""
    from matplotlib.figure import Figure

    timeline = report.timeline
    t = timeline.timestamps
    figure = Figure(figsize=(width_inches, 7.4), layout="constrained")
    events, face, head, emotions = figure.subplots(4, 1, sharex=True, height_ratios=(0.55, 1.2, 0.8, 1.0))
    for name, label in FACE_SIGNALS:
        face.plot(t, timeline.signal(name), marker=".", linewidth=1.6, label=label)
    face.set_ylim(0.0, 1.0)
    face.set_ylabel("face (0-1)")
    for name, label in HEAD_SIGNALS:
        head.plot(t, timeline.signal(name), marker=".", linewidth=1.2, label=label)
    head.axhline(0.0, color="0.7", linewidth=0.8)
    head.set_ylabel("head (degrees)")
    probabilities = timeline.emotion_matrix()
    for index, label in enumerate(timeline.emotion_labels):
        emotions.plot(t, probabilities[:, index], linewidth=1.4, label=label)
    emotions.set_ylim(0.0, 1.0)
    emotions.set_ylabel("emotion probability")
    emotions.set_xlabel("time (s)")
    for axis in (face, head, emotions):
        axis.grid(True, alpha=0.3)
        axis.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
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
        face.set_xlim(float(np.min(t)) - 0.05, float(np.max(t)) + 0.05)
    who = "" if report.person_id is None else f" of person {report.person_id}"
    figure.suptitle(title or f"Measured expression timeline{who} ({len(report.events)} events; dashed lines)",
                    fontsize=11)
    return figure
