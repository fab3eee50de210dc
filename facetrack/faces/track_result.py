"""The result of tracking one video: every person (identity) found, who the main character is and why, the
followed person's box in every sampled frame, and the measured expressions of the persons they were measured for.
JSON format version 3; version-2 files (no expressions) and version-1 files (one id per position-only track) still
load.

`FaceTrackResult.to_dict()`:

    {"version": 3, "width": 640, "height": 360, "detector": "retinaface",
     "main_person_id": 1,            # the main character by the presence x size x centrality rule (null: none)
     "person_id": 1,                 # whose boxes "frames" holds: the chosen person when a target was given, else main
     "reason": "person 1 is the main character: ...",
     "selection": {"rule": "presence x size x centrality", "main": 1, "runner_up": 2, "min_frames": 2,
                   "factors": {"1": {"frames": 19, "presence": 0.59, "size": 1.0, "centrality": 0.97, "score": 0.576},
                               ...},
                   "target": null or {"kind": "person" | "box" | "image", "query": "...", "person": 2, "how": "..."}},
     "identity": {"embedder": "dlib-resnet-v1" or null, "faces_embedded": 5, "fragments": 7, "note": ""},
     "shot_cuts": [1.52, 3.04],       # time (s) of the first sampled frame of every new shot
     "frames": [{"timestamp": 0.0, "frame_index": 0, "box": [x1, y1, x2, y2] or null, "score": 0.99 or null,
                 "person_id": 1 or null, "interpolated": false}, ...],
     "tracks": {"1": [box or null per frame], ...},          # every person's box per frame (as in version 1)
     "track_scores": {"1": [score or null per frame], ...},  # and detection score
     "persons": {"1": {"fragments": [{"first": 0, "last": 57, "frames": 19, "shot": 0, "joined": "first",
                                      "embedded": [30]},
                                     {"first": 120, ..., "joined": "identity 0.21", "embedded": [141]}]}, ...},
     "expressions": {"1": ExpressionReport.to_dict(), ...}}  # persons whose expressions were measured ({}: none);
                                                             # the timeline's boxes are in this result's pixels

A fragment's "first"/"last" are source frame indices, "embedded" the source frames whose face was run through the
identity model (empty when none was needed, or when it shared a look-alike set's embedding); "joined" says how it
joined its person: "first" (the person's first fragment), "identity D" (mean embedding distance D), "look-alike
(identity checked)" (same colours in the same shot, checked with embeddings), "tracker" (ByteTrack kept following
it; identity could not compare) or "position D" (re-linked by position inside a shot, D face sides away).

Version 3 added "expressions": the measured `facetrack.expressions.report.ExpressionReport` per person. Tracking
sits below the expression code and never imports it: a result holds reports as objects (`to_dict`,
`select_frames`, `scaled`), and JSON that holds them is read with `facetrack.analysis.video_analysis.read_face_track`
(which hands `from_dict` the report reader). `scaled_to(width, height)` maps every box (the persons', the followed
person's and the expression timelines') to another frame size: a clip decoded shrunk gives its boxes in the
video's own pixels that way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

RESULT_FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)


@dataclass
class TrackedFrame:  # the followed person in one sampled frame
    timestamp: float
    frame_index: int
    box: list[float] | None  # x1, y1, x2, y2; None = the person is not visible in this frame
    score: float | None
    person_id: int | None
    interpolated: bool = False


@dataclass
class PersonTrack:
    """One identity: its face box and detection score in every sampled frame (None where absent), and the
    tracker fragments it was joined from."""

    person_id: int
    boxes: list[list[float] | None]
    scores: list[float | None]
    fragments: list[dict] = field(default_factory=list)
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)  # mean identity embedding

    @property
    def present(self) -> np.ndarray:
        return np.array([box is not None for box in self.boxes], dtype=bool)

    @property
    def num_frames(self) -> int:
        return int(self.present.sum())


@dataclass
class FaceTrackResult:
    """Every person of one video, the main character, and the followed person's box per sampled frame."""

    frames: list[TrackedFrame]
    persons: dict[int, PersonTrack]
    main_person_id: int | None
    person_id: int | None  # whose boxes `frames` holds
    reason: str  # why this person is followed (main character, or how the target was found), or why nobody is
    width: int
    height: int
    detector: str | None = None
    selection: dict = field(default_factory=dict)
    identity: dict = field(default_factory=dict)
    shot_cuts: list[float] = field(default_factory=list)
    # The measured expressions of the persons they were measured for (person id -> report); empty unless asked for.
    expressions: dict[int, Any] = field(default_factory=dict)

    # -- views
    @property
    def present(self) -> np.ndarray:
        """(T,) bool: True where the followed face has a box (detected or interpolated)."""
        return np.array([frame.box is not None for frame in self.frames], dtype=bool)

    @property
    def boxes(self) -> list[list[float] | None]:
        """The followed face's box per frame (None where missing), ready for `crop_faces`."""
        return [frame.box for frame in self.frames]

    @property
    def timestamps(self) -> list[float]:
        return [frame.timestamp for frame in self.frames]

    @property
    def frame_indices(self) -> list[int]:
        return [frame.frame_index for frame in self.frames]

    @property
    def main_track_id(self) -> int | None:
        """Version-1 name of `main_person_id`."""
        return self.main_person_id

    @property
    def tracks(self) -> dict[int, list[list[float] | None]]:
        """Every person's box per frame (the version-1 view)."""
        return {person_id: person.boxes for person_id, person in self.persons.items()}

    @property
    def expression_report(self) -> Any | None:
        """The followed person's measured expressions (None: not measured, or nobody is followed)."""
        return None if self.person_id is None else self.expressions.get(self.person_id)

    def persons_present(self, min_share: float = 0.0) -> list[int]:
        """Ids of the persons visible in at least `min_share` of the sampled frames (all with 0), by id."""
        total = max(len(self.frames), 1)
        return [pid for pid, person in sorted(self.persons.items()) if person.num_frames / total >= min_share]

    def persons_line(self) -> str:
        """"persons: 1 (main, 19/32 frames), 2 (13/32 frames); shot cuts at 1.6, 3.1 s"."""
        total = len(self.frames)
        parts = [f"{pid} ({'main, ' if pid == self.main_person_id else ''}{person.num_frames}/{total} frames)"
                 for pid, person in sorted(self.persons.items())]
        line = "persons: " + (", ".join(parts) if parts else "none")
        if self.shot_cuts:
            line += "; shot cuts at " + ", ".join(f"{t:.1f}" for t in self.shot_cuts) + " s"
        return line

    def followed_line(self) -> str:
        """"followed: person 2 (chosen), present in 30/32 frames", or "followed: nobody (why)"."""
        if self.person_id is None:
            return f"followed: nobody ({self.reason})"
        role = "the main character" if self.person_id == self.main_person_id else "chosen"
        present = f"{int(self.present.sum())}/{len(self.frames)}"
        return f"followed: person {self.person_id} ({role}), present in {present} frames"

    def __repr__(self) -> str:
        # Every person's box in every frame, and the expression timelines, would print pages: a notebook gets this.
        measured = ", ".join(f"person {pid}" for pid in sorted(self.expressions)) or "nobody"
        return (f"FaceTrackResult: {len(self.frames)} frame(s) of {self.width}x{self.height}, detector "
                f"{self.detector}\n  {self.persons_line()}\n  {self.followed_line()}\n"
                f"  expressions measured for: {measured}")

    def summary(self) -> str:
        total = len(self.frames)
        head = f"{len(self.persons)} person(s) in {total} frames"
        if self.person_id is None:
            return f"{head}; no main character ({self.reason})"
        role = "main character" if self.person_id == self.main_person_id else "chosen person"
        return f"{head}; {role}: person {self.person_id}, present in {int(self.present.sum())}/{total} frames. {self.reason}"

    # -- choosing whose boxes the frames hold
    def for_person(self, person_id: int, reason: str | None = None, interpolate_max_gap: int = 0) -> FaceTrackResult:
        """A copy whose frames follow `person_id` (frames where they are absent stay missing)."""
        if person_id not in self.persons:
            raise ValueError(f"no person with id {person_id}; the persons are {self.persons_present() or 'none'}")
        person = self.persons[person_id]
        frames = [
            TrackedFrame(
                timestamp=frame.timestamp, frame_index=frame.frame_index,
                box=None if box is None else list(box), score=score, person_id=None if box is None else person_id,
            )
            for frame, box, score in zip(self.frames, person.boxes, person.scores)
        ]
        if interpolate_max_gap > 0:
            interpolate_gaps(frames, person_id, interpolate_max_gap, self.shot_cuts)
        return replace(self, frames=frames, person_id=person_id, reason=reason or self.reason,
                       selection=dict(self.selection), identity=dict(self.identity), shot_cuts=list(self.shot_cuts),
                       expressions=dict(self.expressions))

    def each_person(self, min_share: float = 0.25) -> list[FaceTrackResult]:
        """One result per person visible in at least `min_share` of the frames, each following that person."""
        total = max(len(self.frames), 1)
        results = []
        for person_id in self.persons_present(min_share):
            share = self.persons[person_id].num_frames / total
            role = "the main character" if person_id == self.main_person_id else "not the main character"
            results.append(self.for_person(person_id, f"person {person_id}, {role}, visible in {share:.0%} of the frames"))
        return results

    def select_frames(self, positions) -> FaceTrackResult:
        """A copy holding only the frames at `positions` (and every person's data there); shot cuts between kept
        frames stay. Expression reports keep the timeline of those frames, their events and caption re-derived."""
        keep = [int(t) for t in positions]
        persons = {pid: PersonTrack(pid, [p.boxes[t] for t in keep], [p.scores[t] for t in keep], list(p.fragments),
                                    p.embedding) for pid, p in self.persons.items()}
        frames = [TrackedFrame(**asdict(self.frames[t])) for t in keep]
        return replace(self, frames=frames, persons=persons, selection=dict(self.selection),
                       identity=dict(self.identity), shot_cuts=list(self.shot_cuts),
                       expressions={pid: report.select_frames(keep) for pid, report in self.expressions.items()})

    def scaled_to(self, width: int, height: int) -> FaceTrackResult:
        """A copy with every box (persons', followed person's, expression timelines') mapped from this result's
        `width` x `height` pixels to `width` x `height` (itself when the sizes agree)."""
        width, height = int(width), int(height)
        if (width, height) == (self.width, self.height):
            return self
        if width < 1 or height < 1:
            raise ValueError(f"cannot scale a face track to {width}x{height} pixels")
        scale_x, scale_y = width / self.width, height / self.height
        persons = {pid: replace(p, boxes=[scale_box(box, scale_x, scale_y) for box in p.boxes])
                   for pid, p in self.persons.items()}
        frames = [replace(frame, box=scale_box(frame.box, scale_x, scale_y)) for frame in self.frames]
        return replace(self, frames=frames, persons=persons, width=width, height=height,
                       selection=dict(self.selection), identity=dict(self.identity), shot_cuts=list(self.shot_cuts),
                       expressions={pid: report.scaled(scale_x, scale_y) for pid, report in self.expressions.items()})

    @classmethod
    def from_boxes(
        cls,
        boxes: list[list[float] | None],
        width: int,
        height: int,
        timestamps: list[float] | None = None,
        frame_indices: list[int] | None = None,
        score: float = 1.0,
        reason: str = "the face boxes were given",
    ) -> FaceTrackResult:
        """One person (id 1) with the given per-frame boxes (None where absent), followed and main: for callers
        that already know where the face is. Timestamps and frame indices default to 0, 1, 2, ..."""
        num_frames = len(boxes)
        timestamps = list(range(num_frames)) if timestamps is None else timestamps
        frame_indices = list(range(num_frames)) if frame_indices is None else frame_indices
        if not len(timestamps) == len(frame_indices) == num_frames:
            raise ValueError(f"got {num_frames} boxes, {len(timestamps)} timestamps and {len(frame_indices)} frame indices")
        boxes = [None if box is None else [float(v) for v in box] for box in boxes]
        scores = [None if box is None else float(score) for box in boxes]
        main = 1 if any(box is not None for box in boxes) else None
        frames = [
            TrackedFrame(float(t), int(index), box, box_score, main if box is not None else None)
            for t, index, box, box_score in zip(timestamps, frame_indices, boxes, scores)
        ]
        persons = {1: PersonTrack(1, boxes, scores)} if main else {}
        return cls(frames=frames, persons=persons, main_person_id=main, person_id=main, reason=reason,
                   width=int(width), height=int(height))

    # -- JSON
    def to_dict(self) -> dict:
        """JSON-serialisable (person ids become string keys, as JSON requires)."""
        return {
            "version": RESULT_FORMAT_VERSION,
            "width": self.width,
            "height": self.height,
            "detector": self.detector,
            "main_person_id": self.main_person_id,
            "person_id": self.person_id,
            "reason": self.reason,
            "selection": self.selection,
            "identity": self.identity,
            "shot_cuts": self.shot_cuts,
            "frames": [asdict(frame) for frame in self.frames],
            "tracks": {str(pid): person.boxes for pid, person in self.persons.items()},
            "track_scores": {str(pid): person.scores for pid, person in self.persons.items()},
            "persons": {str(pid): {"fragments": person.fragments} for pid, person in self.persons.items()},
            "expressions": {str(pid): report.to_dict() for pid, report in sorted(self.expressions.items())},
        }

    @classmethod
    def from_dict(cls, data: dict, read_report: Callable[[dict], Any] | None = None) -> FaceTrackResult:
        """Reads version 3, version 2 (no expressions) and version 1 (where ids were position-only tracks and frames
        said `track_id`). Measured expressions are read with `read_report` (`ExpressionReport.from_dict`; what
        `facetrack.analysis.video_analysis.read_face_track` passes); without it, data that holds them is refused
        rather than read without them."""
        try:
            version = int(data.get("version", 1))
            if version not in READABLE_VERSIONS:
                raise ValueError(f"unknown format version {version} (this code reads {', '.join(map(str, READABLE_VERSIONS))})")
            id_key = "track_id" if version == 1 else "person_id"
            frames = [
                TrackedFrame(
                    timestamp=float(frame["timestamp"]),
                    frame_index=int(frame["frame_index"]),
                    box=None if frame["box"] is None else [float(v) for v in frame["box"]],
                    score=None if frame.get("score") is None else float(frame["score"]),
                    person_id=None if frame.get(id_key) is None else int(frame[id_key]),
                    interpolated=bool(frame.get("interpolated", False)),
                )
                for frame in data["frames"]
            ]
            scores = data.get("track_scores", {})
            details = data.get("persons", {})
            persons = {}
            for key, boxes in data.get("tracks", {}).items():
                pid = int(key)
                boxes = [None if box is None else [float(v) for v in box] for box in boxes]
                if key in scores:
                    person_scores = [None if s is None else float(s) for s in scores[key]]
                else:  # version 1 kept only the main track's scores (in the frames)
                    person_scores = [f.score if f.person_id == pid and not f.interpolated else None for f in frames]
                if len(boxes) != len(frames) or len(person_scores) != len(frames):
                    raise ValueError(f"person {pid} has {len(boxes)} boxes / {len(person_scores)} scores for "
                                     f"{len(frames)} frames (to keep some frames, cut 'tracks' and 'track_scores' "
                                     f"alike, or use FaceTrackResult.select_frames)")
                fragments = list(details.get(key, {}).get("fragments", []))
                persons[pid] = PersonTrack(pid, boxes, person_scores, fragments)
            main = data.get("main_track_id") if version == 1 else data.get("main_person_id")
            followed = main if version == 1 else data.get("person_id")
            identity = data.get("identity") or ({"embedder": None, "note": "version-1 result"} if version == 1 else {})
            expressions = _read_expressions(data.get("expressions") or {}, len(frames), read_report) if version >= 3 else {}
            return cls(
                frames=frames,
                persons=persons,
                main_person_id=None if main is None else int(main),
                person_id=None if followed is None else int(followed),
                reason=str(data.get("reason", "")),
                width=int(data["width"]),
                height=int(data["height"]),
                detector=data.get("detector"),
                selection=dict(data.get("selection") or {}),
                identity=dict(identity),
                shot_cuts=[float(t) for t in data.get("shot_cuts", [])],
                expressions=expressions,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a valid face-track result: {type(error).__name__}: {error}") from error


def _read_expressions(data: dict, num_frames: int, read_report: Callable[[dict], Any] | None) -> dict:
    if not data:
        return {}
    if read_report is None:
        raise ValueError("it holds measured expressions: read it with "
                         "facetrack.analysis.video_analysis.read_face_track(data)")
    reports = {}
    for key, report_data in data.items():
        report = read_report(report_data)
        if len(report.timeline) != num_frames:
            raise ValueError(f"person {key}'s expression timeline has {len(report.timeline)} frames, the track "
                             f"{num_frames} (to keep some frames, use FaceTrackResult.select_frames)")
        reports[int(key)] = report
    return reports


def scale_box(box: list[float] | None, scale_x: float, scale_y: float) -> list[float] | None:
    """An (x1, y1, x2, y2) box in other pixels (None stays None), to 0.01 px."""
    if box is None:
        return None
    return [round(box[0] * scale_x, 2), round(box[1] * scale_y, 2), round(box[2] * scale_x, 2),
            round(box[3] * scale_y, 2)]


def interpolate_gaps(frames: list[TrackedFrame], person_id: int, max_gap: int, shot_cuts: list[float]) -> None:
    """Fill interior gaps of at most `max_gap` frames by linear interpolation, within a shot only (a gap that spans
    a cut may hold another shot's people)."""
    present = [t for t, frame in enumerate(frames) if frame.box is not None]
    cut_times = sorted(shot_cuts)
    for before, after in zip(present, present[1:]):
        gap = after - before - 1
        spans_cut = any(frames[before].timestamp < cut <= frames[after].timestamp for cut in cut_times)
        if not 0 < gap <= max_gap or spans_cut:
            continue
        start, end = np.array(frames[before].box), np.array(frames[after].box)
        for t in range(before + 1, after):
            weight = (t - before) / (after - before)
            frames[t].box = [round(float(v), 2) for v in (1 - weight) * start + weight * end]
            frames[t].person_id = person_id
            frames[t].interpolated = True
