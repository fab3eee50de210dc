"""Track faces through sampled frames, tell people apart, choose whose face to follow.

Pipeline (`FaceTracker(...).track(clip, target=None)`):
1. Detect faces in every sampled frame (`facetrack.faces.detection`; RetinaFace by default, which looks again at full
   resolution where the downscaled frame shows no face or only tiny ones).
2. Find shot cuts between sampled frames (`facetrack.video.shot_cuts`: a measured colour-histogram rule).
3. Associate faces frame to frame with ByteTrack inside each shot, and cut the tracks into fragments wherever the
   person may have changed: a cut, a sudden change of the face's colours, a gap (`facetrack.faces.fragments`).
4. Join fragments into persons (`facetrack.faces.persons`): by a dlib face embedding, computed once per fragment and only
   for fragments that could be someone seen elsewhere, across gaps, cuts and out of time order; by position only
   where no embedding decides (dlib not installed: then tracking says so once and works as before, cut-aware).
5. The main character is the person with the highest presence x size x centrality (`facetrack.faces.selection`); a `target`
   (a person id, a box at a time, or a photo: `parse_target`) follows someone else instead.
6. Per frame, the followed person's box, detection score and id; frames where they are not visible are missing
   (`box=None`), never filled with another person's box. With `interpolate_max_gap=k > 0`, interior gaps of at most
   k frames inside one shot are filled by linear interpolation and flagged `interpolated=True`.

Repeated frames (clips sampled with repeats) are detected once. The followed face's crops are
`facetrack.video.crops.crop_faces`. The result (`FaceTrackResult`, `PersonTrack`, `TrackedFrame`) and its JSON are
described in `facetrack.faces.track_result`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from facetrack.faces.detection import FaceDetection, FaceDetector, as_face_detector, detect_frames
from facetrack.faces.fragments import make_fragments
from facetrack.faces.identity import (
    DlibFaceEmbedder,
    FaceEmbedder,
    get_face_embedder,
    identity_model_problem,
    warn_identity_off,
)
from facetrack.faces.track_result import FaceTrackResult, PersonTrack, TrackedFrame
from facetrack.faces.persons import (
    IDENTITY_THRESHOLD,
    WEAK_IDENTITY_THRESHOLD,
    embed_fragments,
    first_appearance_key,
    fragments_to_embed,
    group_fragments,
    mean_embedding,
)
from facetrack.faces.selection import choose_main, find_target, parse_target
from facetrack.video.shot_cuts import CUT_THRESHOLD, detect_shot_cuts, shot_ids
from facetrack.video.decode import VideoClip
from facetrack.video.frame_work import once_per_source_frame

class FaceTracker:
    """Detect + track faces in a `VideoClip`, tell the people apart and pick whose face to follow.

    detector: a name for `get_face_detector` or any object with `detect(frame)`.
    identity: "dlib" (default: dlib's ResNet face descriptor, when installed), None (position only), or any object
        with `name` and `embed(frame, box)`.
    Options (defaults tuned for 8-64 frames sampled from a clip):
        lost_track_buffer (int, 10): sampled frames a lost track is kept for re-association by ByteTrack.
        min_iou (float, 0.1), high_confidence (float, 0.6), activation_threshold (float, 0.6): ByteTrack gates.
        gap_split (int, 2): a track that loses its face for this many sampled frames is split for an identity check.
        cut_threshold (float, 0.5): colour-histogram distance that marks a shot cut (`shot_cuts`).
        identity_threshold (float, 0.65), weak_identity_threshold (float, 0.55): largest embedding distance at
            which two fragments are one person (the second when a face is small or cut by the frame border).
        relink_max_gap (int, 16), relink_max_distance (float, 1.5), relink_max_size_ratio (float, 2.0): the position
            re-link used where identity cannot decide (inside one shot only).
        min_main_frames (int | None, None -> 2, or 1 for clips under 4 frames): frames a main character needs.
        interpolate_max_gap (int, 0): fill gaps of the followed face up to this many frames (0 = never).
    """

    def __init__(
        self,
        detector: str | FaceDetector = "retinaface",
        *,
        identity: str | FaceEmbedder | None = "dlib",
        lost_track_buffer: int = 10,
        min_iou: float = 0.1,
        high_confidence: float = 0.6,
        activation_threshold: float = 0.6,
        gap_split: int = 2,
        cut_threshold: float = CUT_THRESHOLD,
        identity_threshold: float = IDENTITY_THRESHOLD,
        weak_identity_threshold: float = WEAK_IDENTITY_THRESHOLD,
        relink_max_gap: int = 16,
        relink_max_distance: float = 1.5,
        relink_max_size_ratio: float = 2.0,
        min_main_frames: int | None = None,
        interpolate_max_gap: int = 0,
    ) -> None:
        self.detector = as_face_detector(detector)
        self.bytetrack_options = {"lost_track_buffer": lost_track_buffer, "min_iou": min_iou,
                                  "high_confidence": high_confidence, "activation_threshold": activation_threshold}
        self.gap_split = gap_split
        self.cut_threshold = cut_threshold
        self.grouping_options = {"identity_threshold": identity_threshold,
                                 "weak_identity_threshold": weak_identity_threshold,
                                 "relink_max_gap": relink_max_gap, "relink_max_distance": relink_max_distance,
                                 "relink_max_size_ratio": relink_max_size_ratio}
        self.min_main_frames = min_main_frames
        self.interpolate_max_gap = interpolate_max_gap
        # The identity model loads on first need (many clips need no embedding at all); a missing one is said now.
        self._embedder: FaceEmbedder | None = None
        self.identity_problem: str | None = None  # why identity is off (None: it is on)
        if isinstance(identity, str):
            if identity != "dlib":
                raise ValueError(f"unknown identity model {identity!r}; choose 'dlib' or None (position only)")
            self.identity_problem = identity_model_problem()
            if self.identity_problem:
                warn_identity_off(self.identity_problem)
        elif identity is None:
            self.identity_problem = "identity=None was asked for"
        elif callable(getattr(identity, "embed", None)):
            self._embedder = identity
        else:
            raise TypeError(f"identity must be 'dlib', None or an object with embed(frame, box); got {type(identity).__name__}")
        self.identity_name = None if self.identity_problem else getattr(self._embedder, "name", DlibFaceEmbedder.name)
        # Wall-clock ms of the last `track` call's steps ({"identity": ms}): kept here, never in the result, so the
        # same clip and settings always give the same result (a dataset release is byte-reproducible).
        self.timings: dict[str, float] = {}

    @property
    def embedder(self) -> FaceEmbedder | None:
        """The identity model (loaded on first use), or None when identity is off."""
        if self._embedder is None and self.identity_problem is None:
            self._embedder = get_face_embedder("dlib")
            if self._embedder is None:
                self.identity_problem, self.identity_name = "the identity model failed to load", None
        return self._embedder

    # -- detection
    def detect(self, frames: np.ndarray, frame_indices: Sequence[int] | None = None) -> list[list[FaceDetection]]:
        """Faces in every frame of a (T, H, W, 3) RGB uint8 array. With `frame_indices` (each frame's source index,
        as `VideoClip.frame_indices`), the detector runs once per distinct source frame: 512 samples of a 240-frame
        clip repeat frames, and a repeat gets the same faces."""
        faces = once_per_source_frame(frames, frame_indices, lambda distinct: detect_frames(self.detector, distinct))
        return [list(frame_faces) for frame_faces in faces]  # a list of its own per frame

    # -- full pipeline
    def track(
        self, clip: VideoClip, target: Any = None, *, detections: list[list[FaceDetection]] | None = None
    ) -> FaceTrackResult:
        """Track the clip's faces and follow the main character, or `target` (see `parse_target`) when given.
        `detections` (one list per frame) skips detection when already computed."""
        if not isinstance(clip, VideoClip):
            raise TypeError(f"track() takes a VideoClip (see load_video), got {type(clip).__name__}")
        target = parse_target(target)  # bad targets fail before any work
        if detections is None:
            detections = self.detect(clip.frames, clip.frame_indices)
        if len(detections) != len(clip.frames):
            raise ValueError(f"got detections for {len(detections)} frames but the clip has {len(clip.frames)}")
        frames = clip.frames
        num_frames = len(frames)
        height, width = frames.shape[1:3]
        cuts = detect_shot_cuts(frames, self.cut_threshold, clip.frame_indices) if num_frames > 1 else []
        shots = shot_ids(num_frames, cuts)
        fragments = make_fragments(detections, frames, shots, gap_split=self.gap_split,
                                   frame_indices=clip.frame_indices, **self.bytetrack_options)
        embedder = self.embedder if fragments_to_embed(fragments) else None  # None: nothing to tell apart
        report = embed_fragments(fragments, frames, embedder, self.grouping_options["identity_threshold"],
                                 self.grouping_options["weak_identity_threshold"])
        groups = group_fragments(fragments, **self.grouping_options)
        persons = self._persons(groups, fragments, clip)
        main_id, reason, selection = choose_main(persons, width, height, num_frames, self.min_main_frames)
        selection["main_reason"] = reason
        note = f"face identity is off ({self.identity_problem}): fragments joined by position only" \
            if self.identity_problem else ""
        identity = {"embedder": self.identity_name, "faces_embedded": report.embedded,
                    "fragments": len(fragments), "note": note}
        self.timings = {"identity": report.milliseconds}
        result = FaceTrackResult(
            frames=[TrackedFrame(float(ts), int(index), None, None, None)
                    for ts, index in zip(clip.timestamps, clip.frame_indices)],
            persons=persons, main_person_id=main_id, person_id=None, reason=reason, width=int(width),
            height=int(height), detector=self.detector.name, selection=selection, identity=identity,
            shot_cuts=[float(clip.timestamps[t]) for t in cuts],
        )
        if main_id is not None:
            result = result.for_person(main_id, reason, self.interpolate_max_gap)
        return self.select(result, clip, target) if target is not None else result

    def select(self, result: FaceTrackResult, clip: VideoClip | None, target: Any) -> FaceTrackResult:
        """Follow `target` in an existing result (a fresh or a precomputed one): ValueError naming the problem when
        there is no such person, no face near that box at that time, or no face in the photo."""
        target = parse_target(target)
        if target is None:
            return result
        frames = None if clip is None else clip.frames
        searched = result
        if target.kind == "box" and clip is not None and clip.source_width and clip.source_height:
            # A box is in the video's own pixels; the clip may have been decoded shrunk (max_side).
            searched = result.scaled_to(clip.source_width, clip.source_height)
        embedder = self.embedder if target.kind == "image" else None
        person_id, how = find_target(searched, target, frames, self.detector, embedder)
        main = result.main_person_id
        reason = how + (f"; the main character is person {main}" if main is not None and main != person_id else "")
        chosen = result.for_person(person_id, reason, self.interpolate_max_gap)
        chosen.selection["target"] = {"kind": target.kind, "query": target.query(), "person": person_id, "how": how}
        return chosen

    # -- helpers
    def _persons(self, groups, fragments, clip: VideoClip) -> dict[int, PersonTrack]:
        by_id = {fragment.fragment_id: fragment for fragment in fragments}
        num_frames = len(clip.frames)
        ordered = sorted(groups, key=lambda group: first_appearance_key(group, by_id))
        persons = {}
        for person_id, group in enumerate(ordered, start=1):
            boxes: list[list[float] | None] = [None] * num_frames
            scores: list[float | None] = [None] * num_frames
            members = sorted((by_id[i] for i in group.members), key=lambda f: f.frames[0])
            for fragment in members:
                for t, detection in fragment.detections.items():
                    boxes[t] = [round(float(v), 2) for v in detection.box]
                    scores[t] = round(float(detection.score), 4)
            described = [{"first": int(clip.frame_indices[f.frames[0]]), "last": int(clip.frame_indices[f.frames[-1]]),
                          "frames": len(f.detections), "shot": f.shot, "joined": group.joins[f.fragment_id],
                          "embedded": [int(clip.frame_indices[t]) for t in f.embedded_at]}
                         for f in members]
            persons[person_id] = PersonTrack(person_id, boxes, scores, described, mean_embedding(group, by_id))
        return persons
