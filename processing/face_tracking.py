"""Track faces through sampled frames, choose the main character, crop their face per frame, serialise the result.

Pipeline (`FaceTracker.track(clip)`):
1. Detect faces in every sampled frame (`face_detection`, default RetinaFace-MobileNet0.25).
2. Associate detections across frames with roboflow `trackers` ByteTrack. Sampled frames can be far apart in time
   (32 frames of a 20 s clip are 0.6 s apart), so the tracker runs in fixed-step mode (one Kalman step per sampled
   frame, no timestamps), a lost track is kept for `lost_track_buffer` sampled frames, the IoU gate is low
   (`min_iou=0.1`) and a track is confirmed on its first match (`minimum_consecutive_frames=1`). Detections whose
   score is below `high_confidence` (0.6) only extend existing tracks (ByteTrack's second stage); new tracks start
   from detections scoring at least `activation_threshold` (0.6).
3. Re-link fragments: when the tracker gives a person a new id after a gap (occlusion, a missed detection, a jump),
   track B is merged into an earlier track A if B starts after A ends, within `relink_max_gap` sampled frames, and
   B's first box continues A's last box: centre distance <= `relink_max_distance` x the mean face side and face-side
   ratio <= `relink_max_size_ratio`. Closest pairs merge first; the merged track keeps A's id.
4. Main character: every track seen in at least `min_main_frames` frames (2, or 1 for clips under 4 frames) gets

       score = presence x size x centrality
       presence   = frames where the track is detected / sampled frames                          (0..1]
       size       = track's mean face side / largest mean face side among all tracks               (0..1]
                    (face side = sqrt(box width x box height))
       centrality = 0.5 + 0.5 x (1 - mean distance of the box centre from the frame centre / half the frame diagonal)
                                                                                                   [0.5..1]

   (all three weights are 1; centrality can at most halve a score, so a big, always-present face at the edge still
   beats a small face in the middle). The highest score wins; ties go to the lower id. `reason` states the winner's
   factors and the runner-up. No track qualifies -> `main_track_id = None` ("no main character"): a normal result.
5. Per frame, the main track's box, detection score and id; frames where its face was not detected are missing
   (`box=None`), never filled with another person's box. With `interpolate_max_gap=k > 0`, interior gaps of at most
   k frames are filled by linear interpolation between the neighbouring boxes and flagged `interpolated=True`.

`crop_faces(frames, boxes, size, margin)` cuts square face crops: side = max(w, h) x (1 + 2 x margin), centred on
the box, zero-padded where the square leaves the frame, resized to `size`; zeros where the box is None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .face_detection import FaceDetection, FaceDetector, as_face_detector
from .video_io import VideoClip, load_video

RESULT_FORMAT_VERSION = 1


@dataclass
class TrackedFrame:  # the main character in one sampled frame
    timestamp: float
    frame_index: int
    box: list[float] | None  # x1, y1, x2, y2; None = main face missing in this frame
    score: float | None
    track_id: int | None
    interpolated: bool = False


@dataclass
class FaceTrackResult:
    """Every sampled frame's main face, every track's boxes, and why the main track was chosen.

    `to_dict()` gives JSON like {"version": 1, "width": 640, "height": 360, "detector": "retinaface",
    "main_track_id": 1, "reason": "track 1 has the highest score ...", "frames": [{"timestamp": 0.0,
    "frame_index": 0, "box": [x1, y1, x2, y2] or null, "score": 0.99 or null, "track_id": 1 or null,
    "interpolated": false}, ...], "tracks": {"1": [[x1, y1, x2, y2] or null, ...], ...}}.
    """

    frames: list[TrackedFrame]
    main_track_id: int | None
    reason: str  # why this track is main, or why there is none
    tracks: dict[int, list[list[float] | None]]  # every track: per-frame box or None
    width: int
    height: int
    detector: str | None = field(default=None)

    def to_dict(self) -> dict:
        """JSON-serialisable (track ids become string keys, as JSON requires)."""
        return {
            "version": RESULT_FORMAT_VERSION,
            "width": self.width,
            "height": self.height,
            "detector": self.detector,
            "main_track_id": self.main_track_id,
            "reason": self.reason,
            "frames": [asdict(frame) for frame in self.frames],
            "tracks": {str(track_id): boxes for track_id, boxes in self.tracks.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> FaceTrackResult:
        try:
            frames = [
                TrackedFrame(
                    timestamp=float(frame["timestamp"]),
                    frame_index=int(frame["frame_index"]),
                    box=None if frame["box"] is None else [float(v) for v in frame["box"]],
                    score=None if frame.get("score") is None else float(frame["score"]),
                    track_id=None if frame.get("track_id") is None else int(frame["track_id"]),
                    interpolated=bool(frame.get("interpolated", False)),
                )
                for frame in data["frames"]
            ]
            tracks = {
                int(track_id): [None if box is None else [float(v) for v in box] for box in boxes]
                for track_id, boxes in data.get("tracks", {}).items()
            }
            main = data.get("main_track_id")
            return cls(
                frames=frames,
                main_track_id=None if main is None else int(main),
                reason=str(data.get("reason", "")),
                tracks=tracks,
                width=int(data["width"]),
                height=int(data["height"]),
                detector=data.get("detector"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a valid face-track result: {type(error).__name__}: {error}") from error

    @property
    def present(self) -> np.ndarray:
        """(T,) bool: True where the main face has a box (detected or interpolated)."""
        return np.array([frame.box is not None for frame in self.frames], dtype=bool)

    @property
    def boxes(self) -> list[list[float] | None]:
        """The main face's box per frame (None where missing), ready for `crop_faces`."""
        return [frame.box for frame in self.frames]

    @property
    def timestamps(self) -> list[float]:
        return [frame.timestamp for frame in self.frames]

    @property
    def frame_indices(self) -> list[int]:
        return [frame.frame_index for frame in self.frames]

    def summary(self) -> str:
        present = int(self.present.sum())
        total = len(self.frames)
        if self.main_track_id is None:
            return f"{len(self.tracks)} face track(s) in {total} frames; no main character ({self.reason})"
        return (
            f"{len(self.tracks)} face track(s) in {total} frames; main character: track {self.main_track_id}, "
            f"present in {present}/{total} frames. {self.reason}"
        )


# ------------------------------------------------------------------------------------------------------ helpers
def _side(box: Sequence[float]) -> float:
    return math.sqrt(max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0))


def _center(box: Sequence[float]) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)


def _present_indices(boxes: Sequence[Sequence[float] | None]) -> list[int]:
    return [t for t, box in enumerate(boxes) if box is not None]


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class _Track:
    boxes: list[list[float] | None]
    scores: list[float | None]

    @property
    def present(self) -> list[int]:
        return _present_indices(self.boxes)


# --------------------------------------------------------------------------------------------------------- tracker
class FaceTracker:
    """Detect + track faces in a `VideoClip` and pick the main character (rule in the module docstring).

    detector: a name for `get_face_detector` or any object with `detect(frame)`.
    Options (defaults tuned for 8-64 frames sampled from a clip):
        lost_track_buffer (int, 10): sampled frames a lost track is kept for re-association by the tracker.
        min_iou (float, 0.1), high_confidence (float, 0.6), activation_threshold (float, 0.6): ByteTrack gates.
        relink_max_gap (int, 16), relink_max_distance (float, 1.5), relink_max_size_ratio (float, 2.0): re-linking.
        min_main_frames (int | None, None -> 2, or 1 for clips under 4 frames): frames a main track needs.
        interpolate_max_gap (int, 0): fill interior gaps up to this many frames (0 = never).
    """

    def __init__(
        self,
        detector: str | FaceDetector = "retinaface",
        *,
        lost_track_buffer: int = 10,
        min_iou: float = 0.1,
        high_confidence: float = 0.6,
        activation_threshold: float = 0.6,
        relink_max_gap: int = 16,
        relink_max_distance: float = 1.5,
        relink_max_size_ratio: float = 2.0,
        min_main_frames: int | None = None,
        interpolate_max_gap: int = 0,
    ) -> None:
        self.detector = as_face_detector(detector)
        self.lost_track_buffer = lost_track_buffer
        self.min_iou = min_iou
        self.high_confidence = high_confidence
        self.activation_threshold = activation_threshold
        self.relink_max_gap = relink_max_gap
        self.relink_max_distance = relink_max_distance
        self.relink_max_size_ratio = relink_max_size_ratio
        self.min_main_frames = min_main_frames
        self.interpolate_max_gap = interpolate_max_gap

    # -- detection
    def detect(self, frames: np.ndarray) -> list[list[FaceDetection]]:
        """Faces in every frame of a (T, H, W, 3) RGB uint8 array."""
        return [self.detector.detect(frame) for frame in frames]

    # -- full pipeline
    def track(self, clip: VideoClip, detections: list[list[FaceDetection]] | None = None) -> FaceTrackResult:
        """Track the clip's faces; `detections` (one list per frame) skips detection when already computed."""
        if not isinstance(clip, VideoClip):
            raise TypeError(f"track() takes a VideoClip (see load_video), got {type(clip).__name__}")
        if detections is None:
            detections = self.detect(clip.frames)
        if len(detections) != len(clip.frames):
            raise ValueError(f"got detections for {len(detections)} frames but the clip has {len(clip.frames)}")
        height, width = clip.frames.shape[1:3]
        tracks = self._associate(detections)
        tracks = self._relink(tracks)
        # Stable, readable ids: 1, 2, ... in order of first appearance.
        ordered = sorted(tracks.values(), key=lambda track: (track.present[0], _center(track.boxes[track.present[0]])))
        tracks = {new_id: track for new_id, track in enumerate(ordered, start=1)}
        main_id, reason = self._choose_main(tracks, width, height, len(clip.frames))
        frames = self._main_frames(clip, tracks.get(main_id) if main_id is not None else None, main_id)
        return FaceTrackResult(
            frames=frames,
            main_track_id=main_id,
            reason=reason,
            tracks={track_id: [None if b is None else [round(v, 2) for v in b] for b in t.boxes]
                    for track_id, t in tracks.items()},
            width=int(width),
            height=int(height),
            detector=self.detector.name,
        )

    # -- step 2: ByteTrack
    def _associate(self, detections: list[list[FaceDetection]]) -> dict[int, _Track]:
        try:
            import supervision as sv
            from trackers import ByteTrackTracker
        except ImportError as error:
            raise ImportError(
                f"face tracking needs roboflow trackers and supervision "
                f"(pip install supervision; pip install --no-deps trackers==2.6.1): {error}"
            ) from error

        num_frames = len(detections)
        tracker = ByteTrackTracker(
            lost_track_buffer=self.lost_track_buffer,  # frame_rate 30 -> the buffer counts sampled frames
            frame_rate=30.0,
            track_activation_threshold=self.activation_threshold,
            minimum_consecutive_frames=1,
            minimum_iou_threshold=self.min_iou,
            high_conf_det_threshold=self.high_confidence,
        )
        tracks: dict[int, _Track] = {}
        # ByteTrack returns id -1 for the detection that *starts* a track (the id comes at its first match), so we
        # remember which tracklet each new detection started and give it that frame once the id is known.
        starts: dict[int, tuple[object, int, FaceDetection]] = {}

        def add(track_id: int, t: int, detection: FaceDetection) -> None:
            track = tracks.setdefault(track_id, _Track([None] * num_frames, [None] * num_frames))
            track.boxes[t] = [float(v) for v in detection.box]
            track.scores[t] = float(detection.score)

        for t, frame_detections in enumerate(detections):
            if frame_detections:
                inputs = sv.Detections(
                    xyxy=np.array([d.box for d in frame_detections], dtype=np.float64).reshape(-1, 4),
                    confidence=np.array([d.score for d in frame_detections], dtype=np.float64),
                    data={"index": np.arange(len(frame_detections))},
                )
            else:
                inputs = sv.Detections.empty()
            previous = list(tracker.tracks)  # held so no tracklet freed during update can lend its id() to a new one
            known = {id(tracklet) for tracklet in previous}
            outputs = tracker.update(inputs)
            unassigned = []
            for index, track_id in zip(outputs.data.get("index", []), outputs.tracker_id):
                if track_id >= 0:
                    add(int(track_id), t, frame_detections[int(index)])
                else:
                    unassigned.append(frame_detections[int(index)])
            for tracklet in tracker.tracks:
                if id(tracklet) not in known and unassigned:
                    state = tracklet.get_state_bbox()
                    started_by = max(unassigned, key=lambda d: _iou(d.box, state))
                    starts[id(tracklet)] = (tracklet, t, started_by)
            for key, (tracklet, start_t, detection) in list(starts.items()):
                if tracklet.tracker_id >= 0:
                    add(int(tracklet.tracker_id), start_t, detection)
                    del starts[key]
        # Tracks started but never matched again (seen in one frame only) still become (short) tracks.
        next_id = max(tracks, default=0) + 1
        for _tracklet, start_t, detection in starts.values():
            add(next_id, start_t, detection)
            next_id += 1
        return tracks

    # -- step 3: re-link fragments of one person
    def _relink(self, tracks: dict[int, _Track]) -> dict[int, _Track]:
        tracks = dict(tracks)
        while True:
            best: tuple[float, int, int] | None = None
            for a_id, a in tracks.items():
                a_last = a.present[-1]
                for b_id, b in tracks.items():
                    b_first = b.present[0]
                    if b_id == a_id or b_first <= a_last or b_first - a_last > self.relink_max_gap:
                        continue
                    a_box, b_box = a.boxes[a_last], b.boxes[b_first]
                    side_a, side_b = _side(a_box), _side(b_box)
                    if min(side_a, side_b) <= 0:
                        continue
                    if max(side_a, side_b) / min(side_a, side_b) > self.relink_max_size_ratio:
                        continue
                    (ax, ay), (bx, by) = _center(a_box), _center(b_box)
                    distance = math.hypot(ax - bx, ay - by) / ((side_a + side_b) / 2.0)
                    if distance <= self.relink_max_distance and (best is None or distance < best[0]):
                        best = (distance, a_id, b_id)
            if best is None:
                return tracks
            _, a_id, b_id = best
            a, b = tracks[a_id], tracks.pop(b_id)
            for t in b.present:
                a.boxes[t], a.scores[t] = b.boxes[t], b.scores[t]

    # -- step 4: main character
    def _choose_main(
        self, tracks: dict[int, _Track], width: int, height: int, num_frames: int
    ) -> tuple[int | None, str]:
        if not tracks:
            return None, "no face was detected in any sampled frame"
        min_frames = self.min_main_frames or (2 if num_frames >= 4 else 1)
        half_diagonal = math.hypot(width, height) / 2.0
        mean_sides = {tid: float(np.mean([_side(t.boxes[i]) for i in t.present])) for tid, t in tracks.items()}
        largest_side = max(mean_sides.values())
        factors: dict[int, tuple[float, float, float, float]] = {}
        for track_id, track in tracks.items():
            if len(track.present) < min_frames:
                continue
            presence = len(track.present) / num_frames
            size = mean_sides[track_id] / largest_side
            centers = [_center(track.boxes[i]) for i in track.present]
            offsets = [math.hypot(x - width / 2.0, y - height / 2.0) for x, y in centers]
            centrality = 0.5 + 0.5 * (1.0 - min(1.0, float(np.mean(offsets)) / half_diagonal))
            factors[track_id] = (presence * size * centrality, presence, size, centrality)
        if not factors:
            return None, (
                f"no face track was seen in at least {min_frames} of {num_frames} sampled frames "
                f"({len(tracks)} short track(s) ignored)"
            )
        ranking = sorted(factors, key=lambda tid: (-factors[tid][0], tid))
        main = ranking[0]
        score, presence, size, centrality = factors[main]
        reason = (
            f"track {main} has the highest score presence x size x centrality = "
            f"{presence:.2f} x {size:.2f} x {centrality:.2f} = {score:.3f}"
        )
        if len(ranking) > 1:
            runner_up = ranking[1]
            reason += f" (runner-up: track {runner_up}, {factors[runner_up][0]:.3f})"
        else:
            reason += " (the only track)"
        return main, reason

    # -- step 5: per-frame main face
    def _main_frames(self, clip: VideoClip, track: _Track | None, track_id: int | None) -> list[TrackedFrame]:
        frames = [
            TrackedFrame(timestamp=float(timestamp), frame_index=int(index), box=None, score=None, track_id=None)
            for timestamp, index in zip(clip.timestamps, clip.frame_indices)
        ]
        if track is None:
            return frames
        for t in track.present:
            frames[t].box = [round(v, 2) for v in track.boxes[t]]
            frames[t].score = round(float(track.scores[t]), 4)
            frames[t].track_id = track_id
        if self.interpolate_max_gap > 0:
            present = track.present
            for before, after in zip(present, present[1:]):
                gap = after - before - 1
                if 0 < gap <= self.interpolate_max_gap:
                    start, end = np.array(track.boxes[before]), np.array(track.boxes[after])
                    for t in range(before + 1, after):
                        weight = (t - before) / (after - before)
                        frames[t].box = [round(float(v), 2) for v in (1 - weight) * start + weight * end]
                        frames[t].track_id = track_id
                        frames[t].interpolated = True
        return frames


def track_video(
    video, num_frames: int | None = 32, fps: float | None = None, detector: str | FaceDetector = "retinaface",
    **options,
) -> tuple[VideoClip, FaceTrackResult]:
    """Load (see `load_video`) and track a video in one call."""
    clip = load_video(video, num_frames=num_frames, fps=fps)
    return clip, FaceTracker(detector, **options).track(clip)


# ------------------------------------------------------------------------------------------------------------ crops
def square_crop_box(box: Sequence[float], margin: float = 0.25) -> tuple[int, int, int]:
    """(x0, y0, side) of the square crop around `box`: side = max(w, h) x (1 + 2 x margin), same centre."""
    cx, cy = _center(box)
    side = max(box[2] - box[0], box[3] - box[1]) * (1.0 + 2.0 * margin)
    side = max(1, int(round(side)))
    return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side


def crop_faces(
    frames: np.ndarray, boxes: Sequence[Sequence[float] | None], size: int = 384, margin: float = 0.25
) -> np.ndarray:
    """(T, size, size, 3) uint8 square face crops (zero-padded outside the frame); zeros where the box is None."""
    import cv2

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must have shape (T, H, W, 3), got {frames.shape}")
    if len(boxes) != len(frames):
        raise ValueError(f"got {len(boxes)} boxes for {len(frames)} frames")
    if size < 1 or margin < 0:
        raise ValueError(f"size must be >= 1 and margin >= 0, got size={size}, margin={margin}")
    height, width = frames.shape[1:3]
    crops = np.zeros((len(frames), size, size, 3), dtype=np.uint8)
    for t, (frame, box) in enumerate(zip(frames, boxes)):
        if box is None:
            continue
        x0, y0, side = square_crop_box(box, margin)
        # The part of the square that lies inside the frame.
        fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + side, width), min(y0 + side, height)
        if (fx0, fy0, fx1, fy1) == (x0, y0, x0 + side, y0 + side):
            square = frame[fy0:fy1, fx0:fx1]  # fully inside: no copy needed
        else:
            square = np.zeros((side, side, 3), dtype=np.uint8)  # zero padding where the square leaves the frame
            if fx1 > fx0 and fy1 > fy0:
                square[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0] = frame[fy0:fy1, fx0:fx1]
        interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
        crops[t] = cv2.resize(square, (size, size), interpolation=interpolation)
    return crops
