"""One call from a decoded clip and its face track to the measured expression report of a person.

    from facetrack.expressions.report import analyze_expressions
    report = analyze_expressions(clip, track)          # the followed person; person_id=N for anyone else
    report.timeline, report.events, report.caption     # report.to_dict() is versioned JSON

The followed person is `track.person_id`: the main character, or the person a target asked for. Most callers use
`video_analysis.analyze_video`, which runs this after tracking and stores the report in the track
(`FaceTrackResult.expressions`). `analyze_expressions` builds an `ExpressionAnalyzer` (loading both models,
~0.1 s) unless one is passed: pass one to describe several people or clips with the same models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from facetrack.expressions.caption import measured_caption
from facetrack.expressions.config import ExpressionConfig
from facetrack.expressions.events import ExpressionEvent, detect_events
from facetrack.expressions.measure import ExpressionAnalyzer, ExpressionTimeline
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
