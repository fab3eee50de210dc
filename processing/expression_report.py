"""One call from a decoded clip and its face track to the measured expression report of a person.

    from facetrack.processing.expression_report import analyze_expressions
    report = analyze_expressions(clip, track)          # the main character; track_id=N for anyone else
    report.timeline, report.events, report.caption     # report.to_dict() is versioned JSON

`analyze_expressions` builds an `ExpressionAnalyzer` (loading both models, ~0.1 s) unless one is passed: pass one
to describe several people or clips with the same models.
"""

from __future__ import annotations

from dataclasses import dataclass

from .expression_caption import measured_caption
from .expression_config import ExpressionConfig
from .expression_events import ExpressionEvent, detect_events
from .expressions import ExpressionAnalyzer, ExpressionTimeline
from .face_tracking import FaceTrackResult
from .video_io import VideoClip

REPORT_FORMAT_VERSION = 1


@dataclass
class ExpressionReport:
    """A person's measured expression timeline, its events and the caption written from them.

    `to_dict()`: {"version": 1, "track_id": 1 or null, "config": {...}, "timeline": ExpressionTimeline.to_dict(),
    "events": [ExpressionEvent.to_dict(), ...], "caption": "Measured description ..."}."""

    timeline: ExpressionTimeline
    events: list[ExpressionEvent]
    caption: str
    track_id: int | None = None
    config: ExpressionConfig | None = None

    def to_dict(self) -> dict:
        return {
            "version": REPORT_FORMAT_VERSION,
            "track_id": self.track_id,
            "config": (self.config or ExpressionConfig()).to_dict(),
            "timeline": self.timeline.to_dict(),
            "events": [event.to_dict() for event in self.events],
            "caption": self.caption,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ExpressionReport:
        try:
            if int(data.get("version", 0)) != REPORT_FORMAT_VERSION:
                raise ValueError(f"version {data.get('version')} (this code reads {REPORT_FORMAT_VERSION})")
            return cls(
                timeline=ExpressionTimeline.from_dict(data["timeline"]),
                events=[ExpressionEvent.from_dict(event) for event in data["events"]],
                caption=str(data["caption"]),
                track_id=None if data.get("track_id") is None else int(data["track_id"]),
                config=ExpressionConfig.from_dict(data.get("config") or {}),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a valid expression report: {type(error).__name__}: {error}") from error


def analyze_expressions(
    clip: VideoClip,
    track: FaceTrackResult,
    track_id: int | None = None,
    config: ExpressionConfig | None = None,
    analyzer: ExpressionAnalyzer | None = None,
) -> ExpressionReport:
    """Measure the expressions of the main character (or of `track_id`) of a tracked clip."""
    if not isinstance(clip, VideoClip) or not isinstance(track, FaceTrackResult):
        raise TypeError("analyze_expressions takes a VideoClip (load_video) and its FaceTrackResult "
                        "(FaceTracker.track)")
    if len(track.frames) != len(clip.frames):
        raise ValueError(f"the face track has {len(track.frames)} frames but the clip has {len(clip.frames)}")
    if track_id is None or track_id == track.main_track_id:
        boxes, track_id = track.boxes, track.main_track_id
    elif track_id in track.tracks:
        boxes = track.tracks[track_id]
    else:
        raise ValueError(f"no face track {track_id}; the clip has tracks {sorted(track.tracks)}")
    config = config or (analyzer.config if analyzer is not None else ExpressionConfig())
    owned = analyzer is None
    analyzer = analyzer or ExpressionAnalyzer(config)
    try:
        timeline = analyzer.analyze(clip.frames, boxes, clip.timestamps, clip.frame_indices)
    finally:
        if owned:
            analyzer.close()
    events = detect_events(timeline, config)
    return ExpressionReport(timeline=timeline, events=events, caption=measured_caption(events, timeline, config),
                            track_id=track_id, config=config)
