"""The one analysis pipeline: video -> decode -> detect + track -> the followed person -> crops -> expressions.

    from facetrack.analysis.video_analysis import analyze_video

    analysis = analyze_video("video.mp4", num_frames=32, max_side=1920)   # or a target= / face_track= / progress=
    analysis.clip            # the VideoClip: frames decoded once, shrunk to max_side
    analysis.track           # FaceTrackResult in the clip's pixels; track.expressions: {person id: ExpressionReport}
    analysis.expressions     # the followed person's ExpressionReport (None: not asked for, nobody followed, or the
                             # optional packages are missing: then analysis.expression_problem says what to install)
    analysis.crops(384)      # the followed face per frame
    analysis.to_pandas()     # the measured expressions, one row per sampled frame (py-feat's Fex-like table)
    analysis.source_track()  # the track in the video's own pixels: what JSON files and datasets hold
    analysis.for_person(2)   # follow someone else: no decoding, no detection; their expressions measured once
    analysis.each_person()   # one analysis per person seen in >= 25% of the frames, each with their expressions

Every caller runs this: `facetrack track` / `describe`, the Space, the dataset builder, the processor and
`face_tracking.track_video` / `overlay.render_overlay`. Decoding and detection overlap: each decoded frame goes to
the detector (`face_detection.DetectionStream`, on its own threads) while the next one decodes. Pixels: `max_side`
decodes frames shrunk (the detector works at 640 px anyway); the pipeline then works in the clip's pixels, and a
person-box target, which is given in the video's own pixels, is compared in those (`FaceTracker.select`).
`face_track` skips detection: exactly its frames are decoded (from a file, or picked from a given `VideoClip`) and
its boxes are scaled to them.

Expressions (`expressions=True`) need the optional packages of `expression_models`; where they are missing the
track is still made and `expression_problem` holds the one-line install message (callers decide whether that is
an error). `progress(fraction, message)` is called as each stage starts.

Photos: a picture file (JPEG, PNG, ...; found by probing the file, whatever its name), a PIL image or an (H, W, 3)
array is one frame (`VideoClip.still_image`): every face is found, the main character is chosen by the same rule,
their expressions are measured in that frame (no events: nothing changes in one frame). Only this entry point
takes photos; `load_video` and its video-only callers (the dataset builder) refuse them.

Stored tracks (JSON, dataset rows) are read back with `read_face_track`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from facetrack.expressions.caption import MEASURED_LABEL
from facetrack.expressions.config import ExpressionConfig
from facetrack.expressions.models import ExpressionDependencyError, check_expression_dependencies
from facetrack.expressions.measure import ExpressionTimeline
from facetrack.expressions.report import ExpressionReport, analyze_expressions
from facetrack.faces.detection import DetectionStream
from facetrack.faces.tracking import FaceTracker
from facetrack.faces.track_result import FaceTrackResult
from facetrack.video.crops import crop_faces
from facetrack.faces.selection import parse_target
from facetrack.video.decode import VideoClip, is_image, load_image, load_video
from facetrack.video.probe import probe_video

ProgressCallback = Callable[[float, str], None]
NO_FACE_CAPTION = f"{MEASURED_LABEL} No face was measured in this video, so no facial expression is described."
NO_FACE_IN_IMAGE_CAPTION = f"{MEASURED_LABEL} No face was measured in this image, so no facial expression is described."


def _no_progress(fraction: float, message: str) -> None:
    pass


@dataclass
class VideoAnalysis:
    """What `analyze_video` found in one video (see the module docstring). `track` is in the clip's pixels."""

    clip: VideoClip
    track: FaceTrackResult
    expressions_requested: bool = False  # then `for_person` / `each_person` measure the persons they follow too
    expression_problem: str | None = None  # the one-line install message when the expression packages are missing
    expression_config: ExpressionConfig | None = None
    # Milliseconds per stage: decode (from a file, faces are detected while it decodes), track (the rest of
    # detection, then tracking; identity: its face embeddings' share), expressions. The only wall-clock times of
    # an analysis: the track holds none, so the same clip and settings give the same stored track.
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def person_id(self) -> int | None:
        return self.track.person_id

    @property
    def expressions(self) -> ExpressionReport | None:
        """The followed person's measured expressions."""
        return self.track.expression_report

    @property
    def measured_caption(self) -> str | None:
        """The followed person's measured caption (labelled as measured); when nobody is followed, the measured
        caption of a video without a face. None when expressions were not measured."""
        if self.expressions is not None:
            return self.expressions.caption
        if self.expressions_requested and self.expression_problem is None and self.person_id is None:
            return NO_FACE_IN_IMAGE_CAPTION if self.clip.still_image else NO_FACE_CAPTION
        return None

    def __repr__(self) -> str:
        # The default dataclass repr prints every pixel, box and blendshape (33,000 characters for 8 frames).
        clip, track = self.clip, self.track
        name = f"{clip.source}: " if clip.source else ""
        width, height = clip.source_width or clip.width, clip.source_height or clip.height
        what = "a still image" if clip.still_image else f"{len(clip)} frames"
        length = f", {clip.duration:.2f} s" if clip.duration else ""
        lines = [f"VideoAnalysis of {name}{what}, {width}x{height}{length}", f"  {track.persons_line()}",
                 f"  {track.followed_line()}"]
        report = self.expressions
        if report is not None:
            lines.append(f"  expressions: measured in {int(report.timeline.measured.sum())}/{len(report.timeline)} "
                         f"frames, {len(report.events)} event(s); .expressions.caption, .to_pandas()")
        elif self.expression_problem:
            lines.append(f"  expressions: not measured ({self.expression_problem})")
        elif not self.expressions_requested:
            lines.append("  expressions: not asked for")
        elif track.person_id is None:
            lines.append("  expressions: no face to measure")
        return "\n".join(lines)

    def to_pandas(self):
        """The measured expressions as a pandas DataFrame: one row per sampled frame of each person whose
        expressions were measured (the followed person; others once followed with `for_person` / `each_person`),
        by person id then time; boxes in the video's own pixels. Columns: `ExpressionReport.to_pandas`. No rows
        when there is nobody to measure (no face); a ValueError when expressions were not measured at all."""
        if not self.expressions_requested:
            raise ValueError("expressions were not measured (analyze_video(..., expressions=False)): there is no "
                             "expression table; analyse with expressions=True")
        if self.expression_problem:
            raise ValueError(f"expressions were not measured: {self.expression_problem}")
        import pandas as pd

        reports = self.source_track().expressions
        if not reports:  # nobody to measure: the table's columns, no rows
            return ExpressionReport(ExpressionTimeline(frames=[]), [], "").to_pandas()
        return pd.concat([reports[pid].to_pandas() for pid in sorted(reports)], ignore_index=True)

    def crops(self, size: int = 384, margin: float = 0.25) -> np.ndarray:
        """(T, size, size, 3) uint8: the followed face per sampled frame (zeros where missing)."""
        return crop_faces(self.clip.frames, self.track.boxes, size=size, margin=margin,
                          frame_indices=self.clip.frame_indices)

    def source_track(self) -> FaceTrackResult:
        """The track with every box in the video's own pixels (the clip's when it has no file size)."""
        return self.track.scaled_to(self.clip.source_width or self.clip.width,
                                    self.clip.source_height or self.clip.height)

    def for_person(
        self, person_id: int, reason: str | None = None, analyzer=None, progress: ProgressCallback | None = None
    ) -> VideoAnalysis:
        """Follow `person_id` instead, on the same frames and boxes (no decoding, no detection); their expressions
        are measured if expressions were asked for and they were not measured before."""
        track = self.track
        if person_id not in track.persons:
            raise ValueError(f"no person with id {person_id}; the persons are {sorted(track.persons) or 'none'}")
        main = track.main_person_id
        if person_id == main:
            chosen = track.for_person(person_id, reason or track.selection.get("main_reason"))
            chosen.selection["target"] = None
        else:
            how = reason or f"person {person_id} was asked for by id"
            chosen = track.for_person(person_id, how + (f"; the main character is person {main}" if main else ""))
            chosen.selection["target"] = {"kind": "person", "query": f"person {person_id}", "person": person_id,
                                          "how": how}
        analysis = replace(self, track=chosen, timings={})
        analysis._measure([person_id], analyzer, progress or _no_progress)
        return analysis

    def each_person(self, min_share: float = 0.25, analyzer=None) -> list[VideoAnalysis]:
        """One analysis per person visible in at least `min_share` of the sampled frames (by id), each following
        that person, with their expressions when expressions were asked for (one analyzer for all)."""
        if not 0.0 <= min_share <= 1.0:
            raise ValueError(f"min_share must be between 0 and 1, got {min_share}")
        people = self.track.each_person(min_share)
        measured = replace(self, track=replace(self.track, expressions=dict(self.track.expressions)), timings={})
        measured._measure([person.person_id for person in people], analyzer, _no_progress)
        return [replace(measured, track=replace(person, expressions=measured.track.expressions), timings={})
                for person in people]

    def _measure(self, person_ids: list[int], analyzer, progress: ProgressCallback) -> None:
        """Measure the expressions of those of `person_ids` not measured yet (in place; the track's `expressions`
        dict is this analysis's own copy)."""
        if not self.expressions_requested or self.expression_problem:
            return
        config = self.expression_config or (analyzer.config if analyzer is not None else ExpressionConfig())
        owned = analyzer is None
        if owned:  # said even when nobody needs measuring (a video without a face): the packages are missing anyway
            try:
                check_expression_dependencies(config.landmarker_model_path, config.emotion_model_path)
            except ExpressionDependencyError as error:
                self.expression_problem = str(error)
                return
        wanted = [pid for pid in person_ids if pid is not None and pid not in self.track.expressions]
        if not wanted:
            return
        started = time.perf_counter()
        if owned:
            from facetrack.expressions.measure import ExpressionAnalyzer

            try:
                analyzer = ExpressionAnalyzer(config)
            except ExpressionDependencyError as error:  # e.g. mediapipe is there but does not import
                self.expression_problem = str(error)
                return
        try:
            reports = dict(self.track.expressions)
            for pid in wanted:
                progress(0.7, f"Measuring the facial expressions of person {pid}")
                reports[pid] = analyze_expressions(self.clip, self.track, pid, config, analyzer)
            self.track.expressions = reports
        finally:
            if owned:
                analyzer.close()
        self.timings["expressions"] = self.timings.get("expressions", 0.0) + (time.perf_counter() - started) * 1000


def analyze_video(
    video: Any,
    *,
    num_frames: int | None = 32,
    fps: float | None = None,
    max_side: int | None = None,
    max_pixels: int | None = None,
    video_info: Any = None,
    tracker: Any = None,
    target: Any = None,
    face_track: FaceTrackResult | dict | None = None,
    expressions: bool = True,
    expression_config: ExpressionConfig | None = None,
    analyzer: Any = None,
    progress: ProgressCallback | None = None,
) -> VideoAnalysis:
    """Decode, track and measure one video (see the module docstring).

    video: a path, a list of PIL images / arrays, a (T, H, W, 3) array, or a decoded `VideoClip` (used as it is);
        or one photo: a picture file, a PIL image or an (H, W, 3) array, analysed as a one-frame clip (`load_image`;
        num_frames and fps do not apply): every face found, the main character chosen by the same rule.
    num_frames / fps / max_side / max_pixels / video_info: sampling, size and an earlier `probe_video` of the file, as
        `load_video` takes them.
    tracker: a `FaceTracker`, or a detector name / object for a new one (None: the default tracker); built only when
        detection or a target needs it.
    target: whose face to follow instead of the main character (`person_selection.parse_target`).
    face_track: a precomputed track (object or dict, any pixels): its frames are decoded and no detection runs.
    expressions: measure the followed person's expressions (`analyzer`: an `ExpressionAnalyzer` to reuse).
    progress: `progress(fraction, message)` as each stage starts.
    """
    report = progress or _no_progress
    started = time.perf_counter()
    precomputed = None if face_track is None else read_face_track(face_track)
    if isinstance(video, (str, os.PathLike)) and video_info is None:
        # The header, read once (the decoder gets it); a photo is accepted here, and only here: one frame.
        video_info = probe_video(video, max_pixels=max_pixels, still_images=True)
    still_image = is_image(video) or bool(getattr(video_info, "still_image", False))
    if precomputed is not None:
        report(0.0, f"Decoding the {len(precomputed.frames)} frames of the face track")
        clip = _decode_track_frames(video, precomputed, max_side, max_pixels, video_info, still_image)
        decoded = time.perf_counter()
        track = precomputed.scaled_to(clip.width, clip.height)
        if target is not None:
            track = _as_tracker(tracker).select(track, clip, target)
    elif isinstance(video, VideoClip):
        clip = video
        decoded = time.perf_counter()
        report(0.25, f"Detecting and tracking faces in {len(clip)} frames")
        tracker = _as_tracker(tracker)
        track = tracker.track(clip, target)
    elif still_image:
        tracker = _as_tracker(tracker)
        target = parse_target(target)  # a bad target fails before the image is read
        report(0.0, "Reading the image")
        clip = load_image(video, max_side=max_side, max_pixels=max_pixels, video_info=video_info)
        decoded = time.perf_counter()
        report(0.25, "Detecting faces in the image")
        track = tracker.track(clip, target)
    else:
        tracker = _as_tracker(tracker)
        target = parse_target(target)  # a bad target fails before any decoding
        report(0.0, f"Decoding {num_frames or 'every'} frame(s) and detecting faces" if fps is None
               else f"Decoding frames at {fps:g} fps and detecting faces")
        with DetectionStream(tracker.detector) as stream:  # each frame's faces are sought while the next decodes
            clip = load_video(video, num_frames=num_frames, fps=fps, max_side=max_side, max_pixels=max_pixels,
                              video_info=video_info, on_frame=stream.submit)
            decoded = time.perf_counter()
            report(0.25, f"Detecting and tracking faces in {len(clip)} frames")
            detections = stream.detections(clip.frame_indices)
        track = tracker.track(clip, target, detections=detections)
    tracked = time.perf_counter()
    timings = {"decode": (decoded - started) * 1000, "track": (tracked - decoded) * 1000}
    if precomputed is None:  # the face embeddings' share of "track" (never stored in the track itself)
        timings["identity"] = getattr(tracker, "timings", {}).get("identity", 0.0)

    analysis = VideoAnalysis(clip=clip, track=replace(track, expressions=dict(track.expressions)),
                             expressions_requested=bool(expressions), expression_config=expression_config,
                             timings=timings)
    analysis._measure([track.person_id], analyzer, report)
    report(1.0, "Done")
    return analysis


def read_face_track(face_track: FaceTrackResult | dict) -> FaceTrackResult:
    """A face track from its JSON (`FaceTrackResult.to_dict()`, any format version, with the measured expressions
    it holds), or the result itself. The one reader of stored tracks: files, dataset rows, the processor's input."""
    if isinstance(face_track, FaceTrackResult):
        return face_track
    if isinstance(face_track, dict):
        return FaceTrackResult.from_dict(face_track, read_report=ExpressionReport.from_dict)
    raise TypeError(f"a face track must be a FaceTrackResult or its to_dict() dict, got {type(face_track).__name__}")


def _as_tracker(tracker: Any):
    if tracker is None:
        return FaceTracker()
    if isinstance(tracker, str) or (callable(getattr(tracker, "detect", None)) and not hasattr(tracker, "track")):
        return FaceTracker(tracker)  # a detector name or object
    return tracker


def _decode_track_frames(video: Any, track: FaceTrackResult, max_side: int | None, max_pixels: int | None,
                         video_info: Any, still_image: bool) -> VideoClip:
    """Exactly the frames a precomputed track was made on: decoded from a file, or picked from a decoded clip (the
    track's frame indices refer to the source video, as the clip's do); a photo's track has its one frame."""
    if not track.frames:
        raise ValueError("the precomputed face track has no frames")
    wanted = track.frame_indices
    if still_image:
        if wanted != [0]:
            raise ValueError(f"the face track has {len(wanted)} frames (indices {wanted[:5]}) but a still image has "
                             "one: it was made on a video")
        return load_image(video, max_side=max_side, max_pixels=max_pixels, video_info=video_info)
    if not isinstance(video, VideoClip):
        return load_video(video, num_frames=None, frame_indices=wanted, max_side=max_side, max_pixels=max_pixels,
                          video_info=video_info)
    if wanted == video.frame_indices:
        return video  # the clip the track was made on: nothing to decode or copy
    missing = sorted(set(wanted) - set(video.frame_indices))
    if missing:
        raise ValueError(f"the face track needs source frames {missing[:5]} that the given VideoClip does not hold")
    positions = [video.frame_indices.index(index) for index in wanted]
    return replace(video, frames=np.ascontiguousarray(video.frames[positions]),
                   timestamps=[video.timestamps[p] for p in positions], frame_indices=list(wanted))
