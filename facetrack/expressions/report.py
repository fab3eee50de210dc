"""One call from a decoded clip and its face track to the measured expression report of a person.

    from facetrack.expressions.report import analyze_expressions
    report = analyze_expressions(clip, track)          # the followed person; person_id=N for anyone else
    report.timeline, report.events, report.caption     # report.to_dict() is versioned JSON
    report.to_pandas()                                 # one row per sampled frame: the measurements as a table

The followed person is `track.person_id`: the main character, or the person a target asked for. Most callers use
`video_analysis.analyze_video`, which runs this after tracking and stores the report in the track
(`FaceTrackResult.expressions`). `analyze_expressions` builds an `ExpressionAnalyzer` (loading both models,
~0.1 s) unless one is passed: pass one to describe several people or clips with the same models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facetrack.expressions.caption import measured_caption
from facetrack.expressions.config import ExpressionConfig
from facetrack.expressions.events import ExpressionEvent, detect_events, dominant_emotions, grimace_samples
from facetrack.expressions.measure import MEASURES, ExpressionAnalyzer, ExpressionTimeline
from facetrack.faces.track_result import FaceTrackResult
from facetrack.video.decode import VideoClip

REPORT_FORMAT_VERSION = 2  # version 1 called the person "track_id"


@dataclass
class ExpressionReport:
    """A person's measured expression timeline, its events and the caption written from them (labelled as
    measured in its first sentence).

    `to_dict()`: {"version": 2, "person_id": 1 or null, "config": {...}, "timeline": ExpressionTimeline.to_dict(),
    "events": [ExpressionEvent.to_dict(), ...], "caption": "Measured description ..."}."""

    timeline: ExpressionTimeline
    events: list[ExpressionEvent]
    caption: str
    person_id: int | None = None
    config: ExpressionConfig | None = None

    def to_dict(self) -> dict:
        return {
            "version": REPORT_FORMAT_VERSION,
            "person_id": self.person_id,
            "config": (self.config or ExpressionConfig()).to_dict(),
            "timeline": self.timeline.to_dict(),
            "events": [event.to_dict() for event in self.events],
            "caption": self.caption,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ExpressionReport:
        try:
            version = int(data.get("version", 0))
            if version not in (1, REPORT_FORMAT_VERSION):
                raise ValueError(f"version {data.get('version')} (this code reads 1 and {REPORT_FORMAT_VERSION})")
            person = data.get("track_id" if version == 1 else "person_id")
            return cls(
                timeline=ExpressionTimeline.from_dict(data["timeline"]),
                events=[ExpressionEvent.from_dict(event) for event in data["events"]],
                caption=str(data["caption"]),
                person_id=None if person is None else int(person),
                config=ExpressionConfig.from_dict(data.get("config") or {}),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a valid expression report: {type(error).__name__}: {error}") from error

    def __repr__(self) -> str:
        measured = int(self.timeline.measured.sum())
        kinds: dict[str, int] = {}
        for event in self.events:
            kinds[event.kind] = kinds.get(event.kind, 0) + 1
        events = ", ".join(f"{kind} x{count}" if count > 1 else kind for kind, count in kinds.items())
        caption = self.caption if len(self.caption) <= 160 else self.caption[:157] + "..."
        return (f"ExpressionReport(person {self.person_id}: measured in {measured}/{len(self.timeline)} frames, "
                f"{len(self.events)} event(s){': ' + events if events else ''})\n  caption: {caption!r}")

    def to_pandas(self):
        """The timeline as a pandas DataFrame, one row per sampled frame. Columns, in order:

        - `person_id`, `time` (seconds), `frame_index` (in the source video);
        - `box_x1`, `box_y1`, `box_x2`, `box_y2`: the face box measured in (pixels), `face_found`: the landmarker
          found the face in it;
        - the 52 blendshape scores (0..1) by MediaPipe's names: `mouthSmileLeft`, `eyeBlinkRight`, `browInnerUp`...;
        - `yaw`, `pitch`, `roll` (degrees; yaw > 0: turned to the person's left, pitch > 0: chin up);
        - `eye_open_left`, `eye_open_right`, `mouth_open`, `lip_corner_width`, `brow_height`, `brow_gap`;
        - `emotion_angry`, `emotion_disgust`, `emotion_fear`, `emotion_happy`, `emotion_sad`, `emotion_surprise`,
          `emotion_neutral`: fer's probabilities as measured;
        - what the caption and the plot go by (the disagreement rule, docs/expressions.md): `grimace`, True where
          the face reads as a smile or as "happy" but the rule does not believe it (crying, pain: `grimace_samples`),
          and `emotion`, the top emotion after the rule (averaged over 1 s; None where none reaches 0.4).

        NaN (<NA> in `grimace`) where nothing was measured: the face was not in that frame, or the landmarker did not
        find it in its box."""
        import pandas as pd

        timeline, frames = self.timeline, self.timeline.frames
        measured = timeline.measured | np.array([frame.emotions is not None for frame in frames], dtype=bool)
        config = self.config or ExpressionConfig()

        def values(attribute: str, index: int | None = None) -> list[float]:
            out = []
            for frame in frames:
                value = getattr(frame, attribute)
                if index is not None and value is not None:
                    value = value[index]
                out.append(np.nan if value is None else float(value))
            return out

        columns: dict[str, object] = {
            "person_id": pd.array([self.person_id] * len(frames), dtype="Int64"),
            "time": [frame.timestamp for frame in frames],
            "frame_index": pd.array([frame.frame_index for frame in frames], dtype="Int64"),
        }
        for index, name in enumerate(("box_x1", "box_y1", "box_x2", "box_y2")):
            columns[name] = values("box", index)
        columns["face_found"] = [frame.face_found for frame in frames]
        for index, name in enumerate(timeline.blendshape_names):
            columns[name] = values("blendshapes", index)
        for name in ("yaw", "pitch", "roll", *MEASURES):
            columns[name] = values(name)
        for index, label in enumerate(timeline.emotion_labels):
            columns[f"emotion_{label}"] = values("emotions", index)
        grimace = grimace_samples(timeline, config)
        columns["grimace"] = pd.array([bool(g) if m else None for g, m in zip(grimace, measured)], dtype="boolean")
        columns["emotion"] = dominant_emotions(timeline, config) if frames else []
        return pd.DataFrame(columns)

    def select_frames(self, positions: Sequence[int]) -> ExpressionReport:
        """The report of the frames at `positions` only: their measurements, and the events and caption those
        give (as if only they had been sampled)."""
        return report_from_timeline(self.timeline.select_frames(positions), self.person_id, self.config)

    def scaled(self, scale_x: float, scale_y: float) -> ExpressionReport:
        """The same report with its face boxes in other pixels."""
        return ExpressionReport(timeline=self.timeline.scaled(scale_x, scale_y), events=list(self.events),
                                caption=self.caption, person_id=self.person_id, config=self.config)


def report_from_timeline(
    timeline: ExpressionTimeline, person_id: int | None, config: ExpressionConfig | None = None
) -> ExpressionReport:
    """Events and the measured caption of a timeline (no model runs)."""
    config = config or ExpressionConfig()
    events = detect_events(timeline, config)
    return ExpressionReport(timeline=timeline, events=events, caption=measured_caption(events, timeline, config),
                            person_id=person_id, config=config)


def analyze_expressions(
    clip: VideoClip,
    track: FaceTrackResult,
    person_id: int | None = None,
    config: ExpressionConfig | None = None,
    analyzer: ExpressionAnalyzer | None = None,
) -> ExpressionReport:
    """Measure the expressions of the followed person of a tracked clip (`track.person_id`: the main character or
    the target), or of `person_id`. The track's boxes must be in the clip's pixels."""
    if not isinstance(clip, VideoClip) or not isinstance(track, FaceTrackResult):
        raise TypeError("analyze_expressions takes a VideoClip (load_video) and its FaceTrackResult "
                        "(FaceTracker.track)")
    if len(track.frames) != len(clip.frames):
        raise ValueError(f"the face track has {len(track.frames)} frames but the clip has {len(clip.frames)}")
    if (track.width, track.height) != (clip.width, clip.height):
        raise ValueError(f"the face track's boxes are in {track.width}x{track.height} pixels but the clip's frames "
                         f"are {clip.width}x{clip.height} (use track.scaled_to(clip.width, clip.height))")
    if person_id is None or person_id == track.person_id:
        boxes, person_id = track.boxes, track.person_id  # the followed person's (gaps interpolated if asked for)
    elif person_id in track.persons:
        boxes = track.for_person(person_id).boxes
    else:
        raise ValueError(f"no person {person_id}; the clip's persons are {sorted(track.persons) or 'none'}")
    config = config or (analyzer.config if analyzer is not None else ExpressionConfig())
    owned = analyzer is None
    analyzer = analyzer or ExpressionAnalyzer(config)
    try:
        timeline = analyzer.analyze(clip.frames, boxes, clip.timestamps, clip.frame_indices)
    finally:
        if owned:
            analyzer.close()
    return report_from_timeline(timeline, person_id, config)
