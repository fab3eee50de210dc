"""Clips cut from unlabelled videos, each captioned by its own measured expressions (`facetrack dataset build
--videos DIR`).

One task is one clip: (video, clip number). `ClipWorker(task)` does all of it where the task runs (a local process
or a Ray actor), with its models built once per process:

1. Read the video's bytes inside the video root (`sources.read_inside`) and find its frames: count and rate.
2. Windows (`plan_windows`): up to `clips_per_video` windows of `clip_seconds`, as many as fit without overlapping,
   spread evenly over the video (one window: the middle of it). A video shorter than `clip_seconds` gives one
   window, the whole video, when it is at least half as long; else no clip (`too_short`).
3. Shot cuts (`cut_free_span`): the window's frames are decoded and compared eight times a second with the shot-cut
   rule of `facetrack.video.shot_cuts` (colour histograms); a window holding a cut keeps its longest stretch without
   one when that is at least half of `clip_seconds` (`shot_cut` otherwise). So a clip never spans a cut.
4. `analyze_video` on the clip's frames (the same pipeline as everywhere), sampled as `load_video` would sample
   the stored clip (`num_frames` spread over it): the face track and the main character's measured expressions,
   measured on the decoded frames the clip is then encoded from (no second decoding; the stored track names the
   clip's own frames and pixels). Each clip gets an expression analyzer of its own (30 ms to make): MediaPipe's
   landmarker in video mode carries state from one clip to the next, so a shared one would make a clip's measures
   depend on which clips its worker saw before. A clip whose main face is visible in fewer than `min_face_share`
   of the sampled frames is skipped (`no_face` when no face at all, `few_faces` otherwise), and so is one where
   the tracker still sees a shot cut (`shot_cut`).
5. Caption: the expression report's measured caption without its "Measured description (...)." label, since the
   `caption_source` column ("measured") now says where it comes from, and a model trained on the label would learn
   to claim it; the report's events are the facts it is written from. With a rewriter, the caption is its rewrite
   of those events (`caption_source` "rewritten"); a rewrite that fails skips the clip (`rewrite_failed`).
6. A clip that is kept is stored as its own video: its frames re-encoded as H.264 (.mp4, CRF 23, each frame at its
   own time from the clip's start, so a variable frame rate stays), at most `max_side` pixels on its longer side
   (even sizes), without sound. So `load_dataset(...)[i]["video"]` is the clip itself. The same frames give the
   same bytes on one kind of CPU: x264 runs on one thread, and without its AVX-512 routines, which gave different
   bytes for the same frames from one run to the next here (`x264_params`); a machine with other instruction sets
   may encode a clip slightly differently.

The result is a one-row Parquet table (`part_schema`: the release's columns, plus the outcome), which the driver
keeps as the clip's part (`facetrack.data.parts`). Problems with the video itself (missing, unreadable, outside the
root, too short) are reported by the task of clip 0 only; the other clips of that video say `unused`, as do clip
numbers beyond the windows a video holds.
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from facetrack.data.schema import build_messages, dataset_features, instruction_for
from facetrack.data.sources import DatasetBuildError, _ItemProblem, _resolve_item, _shown, read_inside
from facetrack.expressions.caption import measured_caption_text

CLIP_MAX_SIDE = 1280  # stored clips: longer side at most this (training looks at 384-pixel frames and face crops)
CLIP_ENCODING = {"codec": "libx264", "pix_fmt": "yuv420p", "crf": "23", "preset": "veryfast", "threads": "1"}
CUT_CHECKS_PER_SECOND = 8  # frames compared per second of a window for shot cuts
VIDEO_PROBLEMS = ("missing", "unreadable", "outside_root", "invalid_path", "too_short")  # reported by clip 0 only


@dataclass(frozen=True)
class ClipSettings:
    """How clips are cut and measured (recorded in the dataset card; a resumed build reuses only clips made with the
    same settings)."""

    clip_seconds: float = 4.0
    clips_per_video: int = 4
    num_frames: int = 32  # frames sampled per clip for the face track and the expressions
    min_face_share: float = 0.75  # of the sampled frames, where the main face must be visible
    detector: str = "retinaface"
    max_side: int = CLIP_MAX_SIDE

    def check(self) -> None:
        """DatasetBuildError naming the first bad setting."""
        if not (isinstance(self.clip_seconds, (int, float)) and math.isfinite(self.clip_seconds)
                and 0.1 <= self.clip_seconds <= 60):
            raise DatasetBuildError(f"--clip-seconds must be a number of seconds from 0.1 to 60, got "
                                    f"{self.clip_seconds!r}")
        for name, value in (("--clips-per-video", self.clips_per_video), ("--num-frames", self.num_frames)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DatasetBuildError(f"{name} must be a whole number >= 1, got {value!r}")
        if not (isinstance(self.min_face_share, (int, float)) and 0.0 <= self.min_face_share <= 1.0):
            raise DatasetBuildError(f"--min-face-share must be a fraction from 0 to 1, got {self.min_face_share!r}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "clip_encoding": {**CLIP_ENCODING, "x264_params": x264_params()}}


def clip_id(video: str, clip: int) -> str:
    """A clip's row id: its video's relative path and its number in that video."""
    return f"{video}#{clip}"


def clip_path(video: str, clip: int) -> str:
    """The `path` of a clip's embedded video (a name only: the bytes are in the row)."""
    return f"{PurePosixPath(video).with_suffix('')}.clip{clip}.mp4"


# ------------------------------------------------------------------------------------------------- windows
def plan_windows(total_frames: int, fps: float, clip_seconds: float, clips_per_video: int) -> list[tuple[int, int]]:
    """The video's windows, as [start, end) frame indices (see the module docstring, step 2)."""
    length = max(1, round(clip_seconds * fps))
    if total_frames < length:
        return [(0, total_frames)] if total_frames >= min_clip_frames(length) else []
    count = min(clips_per_video, total_frames // length)
    if count == 1:
        start = (total_frames - length) // 2
        return [(start, start + length)]
    # Integer steps of at least `length` (count <= total // length): windows never overlap.
    starts = [index * (total_frames - length) // (count - 1) for index in range(count)]
    return [(start, start + length) for start in starts]


def min_clip_frames(window_frames: int) -> int:
    """The fewest frames a clip may keep of a full window (half of it, and never a single frame)."""
    return max(2, math.ceil(window_frames / 2))


def cut_free_span(frames: np.ndarray, fps: float) -> tuple[int, int]:
    """[start, end) of the longest stretch of `frames` (consecutive frames of one video) without a shot cut: frames
    are compared `CUT_CHECKS_PER_SECOND` times a second with `shot_cuts`' rule; the frames between two compared
    frames that straddle a cut belong to neither side."""
    from facetrack.video.shot_cuts import CUT_THRESHOLD, cut_scores

    step = max(1, round(fps / CUT_CHECKS_PER_SECOND))
    positions = list(range(0, len(frames), step))
    if positions[-1] != len(frames) - 1:
        positions.append(len(frames) - 1)
    if len(positions) < 2:
        return 0, len(frames)
    spans, first = [], 0
    for index, score in enumerate(cut_scores(frames[positions])):  # between positions[index] and the next one
        if score > CUT_THRESHOLD:
            spans.append((positions[first], positions[index] + 1))
            first = index + 1
    spans.append((positions[first], positions[-1] + 1))
    return max(spans, key=lambda span: (span[1] - span[0], -span[0]))


# /proc/cpuinfo's name of each instruction set x264 uses on x86, and x264's (its --asm names), AVX-512 left out.
_X264_INSTRUCTION_SETS = (("sse", "MMX2"), ("sse", "SSE"), ("sse2", "SSE2"), ("pni", "SSE3"), ("ssse3", "SSSE3"),
                          ("sse4_1", "SSE4.1"), ("sse4_2", "SSE4.2"), ("avx", "AVX"), ("xop", "XOP"), ("fma4", "FMA4"),
                          ("fma", "FMA3"), ("bmi1", "BMI1"), ("bmi2", "BMI2"), ("avx2", "AVX2"), ("abm", "LZCNT"))


@lru_cache(maxsize=1)
def x264_params() -> str:
    """x264's `asm=` list: the instruction sets this CPU has, without AVX-512, where it has AVX-512 ("" elsewhere:
    x264's own choice). Measured here: with AVX-512, encoding the same 53 frames eight times gave up to five
    different files; without it, the same file every time, at the same speed."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            flags = set(next((line.split(":", 1)[1].split() for line in file if line.startswith("flags")), []))
    except OSError:
        return ""
    if "avx512f" not in flags:
        return ""
    return "asm=" + ",".join(x264 for cpu, x264 in _X264_INSTRUCTION_SETS if cpu in flags)


CLIP_TIME_BASE = Fraction(1, 90000)


def frame_length(timestamps: list[float], fps: float) -> float:
    """The seconds one frame of these (consecutive) frames lasts: their mean spacing, or 1 / fps for one frame."""
    return (timestamps[-1] - timestamps[0]) / (len(timestamps) - 1) if len(timestamps) > 1 else 1.0 / fps


def encode_clip(frames: np.ndarray, timestamps: list[float], fps: float) -> bytes:
    """RGB frames as an H.264 .mp4 in memory (`CLIP_ENCODING`; an odd width or height loses its last pixel row),
    each shown at its own time (`timestamps`, seconds, from the clip's first frame): a variable frame rate stays."""
    import av

    height, width = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
    rate = Fraction(1.0 / frame_length(timestamps, fps)).limit_denominator(1001)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream(CLIP_ENCODING["codec"], rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, CLIP_ENCODING["pix_fmt"]
        stream.codec_context.time_base = CLIP_TIME_BASE
        stream.options = {key: CLIP_ENCODING[key] for key in ("crf", "preset", "threads")}
        if x264_params():
            stream.options = {**stream.options, "x264-params": x264_params()}
        for image, seconds in zip(frames, timestamps):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:height, :width]), format="rgb24")
            frame.pts, frame.time_base = round((seconds - timestamps[0]) / CLIP_TIME_BASE), CLIP_TIME_BASE
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------------- parts
def part_schema():
    """The Arrow schema of a clip's part: the release's columns, then the outcome (`status`, `reason`) and the size
    of the clip's video (to cut shards without reading the bytes)."""
    import pyarrow as pa

    schema = dataset_features().arrow_schema
    for name, kind in (("status", pa.string()), ("reason", pa.string()), ("video_size", pa.int64())):
        schema = schema.append(pa.field(name, kind))
    return schema.remove_metadata()


def part_bytes(record: dict[str, Any]) -> bytes:
    """One outcome as a one-row Parquet file (every column not given is null)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = part_schema()
    table = pa.Table.from_pylist([{name: record.get(name) for name in schema.names}], schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------------- worker
class ClipWorker:
    """`worker(task) -> {"key", "part", "cpu_seconds"}` for a task `{"key", "video", "clip"}` (see the module
    docstring). Picklable: the face tracker and expression analyzer are built on the first call, in the process
    that runs it. `rewriter`: an object with `rewrite(report) -> str` (facetrack.inference.caption_rewriter), or None.
    `cpu_seconds`: this process's CPU time per stage of this clip (never stored in the release)."""

    def __init__(self, video_root: str, settings: ClipSettings, rewriter: Any = None):
        self.video_root = str(video_root)
        self.settings = settings
        self.rewriter = rewriter
        self._tracker = None
        self._clock = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_tracker": None, "_clock": None}

    def _face_tracker(self, clock: _StageClock):
        """This process's face tracker, its detection timed on `clock` (the "detect" stage)."""
        self._clock = clock
        if self._tracker is None:
            from facetrack.faces.tracking import FaceTracker

            self._tracker = FaceTracker(detector=self.settings.detector)
            detect = self._tracker.detect

            def timed_detect(frames, frame_indices=None):
                faces = detect(frames, frame_indices)
                self._clock.lap("detect")
                return faces

            self._tracker.detect = timed_detect
        return self._tracker

    def __call__(self, task: dict[str, Any]) -> dict[str, Any]:
        clock = _StageClock()
        video, clip = task["video"], int(task["clip"])
        record: dict[str, Any] = {"id": clip_id(video, clip), "source_video": video}
        try:
            record.update(self._make_clip(video, clip, clock))
        except _ItemProblem as problem:
            report_it = clip == 0 or problem.status not in VIDEO_PROBLEMS
            record.update(status=problem.status if report_it else "unused", reason=problem.reason)
        except Exception as error:  # noqa: BLE001 - one clip's failure must not stop a 100,000-clip build
            record.update(status="error", reason=f"{type(error).__name__}: {str(error).splitlines()[0][:300]}")
        try:
            part = part_bytes(record)
        except (ValueError, TypeError) as error:  # Arrow could not store a value: the clip is reported instead
            part = part_bytes({"id": _shown(record["id"]), "source_video": _shown(video), "status": "error",
                               "reason": _shown(f"{type(error).__name__}: {error}")})
        return {"key": task["key"], "part": part, "cpu_seconds": clock.seconds}

    def _make_clip(self, video: str, clip: int, clock: _StageClock) -> dict[str, Any]:
        from facetrack.analysis.video_analysis import analyze_video
        from facetrack.expressions.measure import ExpressionAnalyzer
        from facetrack.video.decode import VideoClip, load_video, uniform_indices
        from facetrack.video.probe import VideoDecodeError

        settings, shown = self.settings, clip_id(video, clip)
        path, status, reason = _resolve_item(Path(self.video_root), video)
        if path is None:
            raise _ItemProblem(status, reason)
        data = read_inside(Path(self.video_root), path, video)
        try:
            # Two frames (the first and the last, shrunk) give the frame count, the rate and the duration.
            ends = load_video(data, num_frames=2, max_side=64)
            total = ends.frame_indices[-1] + 1
            fps = ends.source_fps or ((total - 1) / ends.timestamps[-1] if ends.timestamps[-1] > 0 else 25.0)
            min_frames = min_clip_frames(round(settings.clip_seconds * fps))
            windows = plan_windows(total, fps, settings.clip_seconds, settings.clips_per_video)
            if not windows:
                raise _ItemProblem("too_short", f"{video}: {total / fps:.2f} s long; a clip needs at least "
                                                f"{min_frames / fps:.2f} s")
            if clip >= len(windows):
                raise _ItemProblem("unused", f"{video} holds {len(windows)} clip(s)")
            start, end = windows[clip]
            window = load_video(data, frame_indices=range(start, end), max_side=settings.max_side)
        except VideoDecodeError as error:
            raise _ItemProblem("unreadable", f"{video}: {error.problem}") from None
        del data
        first, stop = cut_free_span(window.frames, fps)
        if stop - first < min_frames:
            raise _ItemProblem("shot_cut", f"{shown}: a shot cut leaves no stretch of at least half of "
                                           f"{settings.clip_seconds:g} s")
        # The clip: the stretch's frames (even sizes, as H.264 wants), timed from its first frame.
        height, width = window.height // 2 * 2, window.width // 2 * 2
        frames = np.ascontiguousarray(window.frames[first:stop, :height, :width])
        source_times = window.timestamps[first:stop]
        times = [round(t - source_times[0], 6) for t in source_times]
        clip_start = round(source_times[0], 3)
        clip_end = round(source_times[-1] + frame_length(source_times, fps), 3)
        del window
        clock.lap("decode")

        # Measured on the frames the clip is encoded from (step 5), sampled as load_video samples the clip.
        positions = uniform_indices(len(frames), settings.num_frames)
        sampled = VideoClip(frames=frames[positions], timestamps=[times[p] for p in positions],
                            frame_indices=positions, source_fps=1.0 / frame_length(times, fps),
                            duration=clip_end - clip_start, source=clip_path(video, clip),
                            source_width=width, source_height=height)
        with ExpressionAnalyzer() as analyzer:  # the clip's own (step 5)
            analysis = analyze_video(sampled, tracker=self._face_tracker(clock), expressions=True,
                                     analyzer=analyzer, progress=clock.analysis_progress)
        clock.lap("expressions" if clock.measuring else "track")
        track = analysis.track
        if track.shot_cuts:
            raise _ItemProblem("shot_cut", f"{shown}: the face tracker sees a shot cut at "
                                           f"{', '.join(f'{t:.2f}' for t in track.shot_cuts)} s")
        visible = int(track.present.sum()) if track.person_id is not None else 0
        if visible == 0:
            raise _ItemProblem("no_face", f"{shown}: no face found")
        if visible < settings.min_face_share * len(track.frames):
            raise _ItemProblem("few_faces", f"{shown}: the main face is visible in {visible} of {len(track.frames)} "
                                            f"sampled frames (at least {settings.min_face_share:g} of them needed)")
        report = analysis.expressions
        if report is None:
            raise _ItemProblem("error", f"{shown}: expressions not measured: {analysis.expression_problem}")
        caption, source = measured_caption_text(report.caption), "measured"
        if self.rewriter is not None:
            try:
                caption, source = self.rewriter.rewrite(report), "rewritten"
            except Exception as error:  # noqa: BLE001 - an unreachable endpoint or a bad answer skips the clip
                raise _ItemProblem("rewrite_failed", f"{shown}: {type(error).__name__}: "
                                                     f"{str(error).splitlines()[0][:300]}") from None
            clock.lap("rewrite")

        clip_bytes = encode_clip(frames, times, fps)  # only for a clip that is kept
        clock.lap("encode")
        instruction = instruction_for(shown)
        return {
            "status": "ok", "reason": "",
            "video": {"bytes": clip_bytes, "path": clip_path(video, clip)}, "video_size": len(clip_bytes),
            "caption": caption, "caption_source": source, "instruction": instruction,
            "messages": build_messages(instruction, caption),
            "face_track": json.dumps(analysis.source_track().to_dict()), "has_face": True,
            "clip_start": clip_start, "clip_end": clip_end,
        }


class _StageClock:
    """This process's CPU seconds per stage of one clip (all its threads)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.measuring = False
        self._last = time.process_time()

    def lap(self, stage: str) -> None:
        now = time.process_time()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._last
        self._last = now

    def analysis_progress(self, fraction: float, message: str) -> None:
        """analyze_video's progress: at 0.7 the expressions start (detection and tracking are done)."""
        if fraction == 0.7 and not self.measuring:
            self.lap("track")
            self.measuring = True
