"""Build a Hub-ready `datasets` release of captioned face videos, with the main character's face track precomputed
per clip: from FDA/DFEC-format annotations (human captions), or from any folder of unlabelled videos, cut into clips
captioned by their measured expressions.

    build_dataset("fda_train.json", video_root="/data/fda", out_dir="data/fda")               # human captions
    build_dataset(videos="/data/raw_videos", out_dir="data/auto", clip_seconds=4, clips_per_video=4,
                  engine="ray", num_proc=64)                                                   # measured captions

(Over 400 lines on purpose: the build is one sequence - read and check the input, keep paths inside the root,
track in workers, write, swap in - whose steps share one report; the dataset card, the crash-safe release swap,
where bytes are read, cutting clips, the engines, resumable parts and reading rows back are their own modules:
card.py, release.py, sources.py, clips.py, engine.py, parts.py, schema.py, and facetrack/training/data.py.)

Input, one of:
- annotations: the published format, a JSON list of `{"id", "video", "caption"}` with `video` relative to a video
  root. One row per item, the whole video, `caption_source` "human".
- videos (`--videos`): a folder (searched recursively by file extension) or a text file listing videos. Each video
  is cut into clips that never span a shot cut, each captioned by its measured expressions (`caption_source`
  "measured", or "rewritten" by a language model): see `facetrack.data.clips`. Clips finish into resumable parts
  (`facetrack.data.parts`), so an interrupted build goes on where it stopped.

Engines (`facetrack.data.engine`): `local` (this process, or `num_proc` worker processes) or `ray` (Ray Data actors
on a local or running cluster; the driver collects the results and writes the release). Both give the same rows.

Output folder (what `load_dataset(out_dir)` reads and what `--push` uploads as is):

    README.md                            dataset card: YAML `license`, `configs`, `dataset_info` + documentation
    build_report.json                    per split: items dropped (missing / unreadable video) and items without a face
    data/{split}-00000-of-0000N.parquet  the rows, video files embedded

Design choices:
- Videos are embedded in the parquet shards (the `video` column is a `datasets.Video` feature whose storage is
  `{"bytes", "path"}`). The folder is then self-contained: `load_dataset(out_dir)` and `load_dataset("user/repo")`
  read the same files with no relative-path resolution, the Hub's dataset viewer reads the parquet files as they are
  (no conversion job), and `push_to_hub` would embed the bytes anyway (separate files would need a `videofolder`
  metadata layout instead). Clips are short (a few MB), so shards are cut at `max_shard_size` like `push_to_hub` does.
  datasets 5 decodes `Video` only with torchcodec; cast the column to `Video(decode=False)` and decode the bytes with
  `load_example_video` (decord/PyAV through `facetrack.video.decode`, from memory). Reading rows back lives in
  `facetrack.training.data` (`load_built_dataset`, `load_example_video`, `subsample_track`).
- The face track is a JSON string (`FaceTrackResult.to_dict()`), not an Arrow struct: its `tracks` field is a dict
  keyed by track id, which varies per clip and has no fixed Arrow schema, and a string round-trips exactly through
  `read_face_track` whatever the tracker adds later. A flat `has_face` bool sits beside it for filtering.
- Items whose video is missing or cannot be decoded are dropped and listed with the reason in `build_report.json`;
  items where no face is found are kept (their track has no main face, `has_face=False`) and listed too. One bad item
  never stops the build. A truncated video (fewer frames than its header lists) is unreadable.
- Nothing outside `--video-root` is read: an absolute video path, or one that leaves the root (`..`, or a symlink
  pointing out of it), is dropped as `outside_root` without being opened. No absolute local path is written into the
  release: the `video.path` column and every reason in the report use the annotation's relative path.
- Frames are decoded with their longer side at most `TRACKING_MAX_SIDE` (1920) pixels: the detector works on
  640-pixel frames anyway, and a 4K clip then takes a quarter of the memory. The face track's boxes, `width` and
  `height` are stored in the video's own pixels.
- Decoding, tracking and expressions are `video_analysis.analyze_video`, as everywhere else. By default the face
  track also holds the main character's measured expressions (timeline, events, measured caption: format version
  3), so analysis never reruns the models; training ignores them. Without the optional expression packages the
  build stores tracks without them and its report says so in one line naming the install step (`build_report.json`,
  and the CLI's summary); `expressions=False` (`--no-expressions`) skips them.
- Crash safety: a split is written under new file names and swapped in by replacing the dataset card in one rename
  (`facetrack.data.release`), so an interrupted build leaves the previous split whole, and a rerun gives the same
  result as an uninterrupted build.
- Nothing lost: a build deletes or replaces only what facetrack wrote (the release's record,
  `.facetrack-release.json`); a README.md or build_report.json it did not write is refused by name before any
  tracking unless `--overwrite`, and other files in the folder are kept.
- Nothing let in: a clip's bytes are read once, inside the video root (checked on the open file, not only on its
  path), then decoded and tracked; the shard embeds the file only if it is still inside the root with those same
  bytes (SHA-256), else the item is dropped (`outside_root` / `changed`). One bad item (a NUL byte in its path, a
  symbolic link loop, text that cannot be stored such as a lone surrogate) is reported and skipped, never the end
  of the build; text is checked before any tracking.
- Reproducible: the same input and settings give byte-identical parquet shards (no wall-clock time is stored),
  with either engine and however many workers.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facetrack import __version__
from facetrack.data import release as dataset_release
from facetrack.data.card import write_dataset_card
from facetrack.data.clips import VIDEO_PROBLEMS, ClipSettings, ClipWorker
from facetrack.data.engine import EngineError, check_engine, run_tasks
from facetrack.data.parts import PartStore, remove_work, task_key, write_clip_shards
from facetrack.data.schema import build_messages, dataset_features, instruction_for
from facetrack.data.sources import (  # noqa: F401  (resolve_video_path, _is_absolute: read by training's row reader)
    DatasetBuildError,
    _is_absolute,
    _ItemProblem,
    _resolve_item,
    _shown,
    _text_problem,
    list_videos,
    read_inside,
    resolve_video_path,
)

logger = logging.getLogger(__name__)

TRACKING_MAX_SIDE = 1920  # frames are decoded with their longer side at most this for face tracking


@dataclass
class AnnotationItem:
    id: str
    video: str  # relative to the video root
    caption: str


@dataclass
class TrackOutcome:
    """What happened to one item during face tracking (picklable: it crosses process boundaries)."""

    status: str  # "ok", "no_face", "missing", "unreadable", "outside_root", "error"
    reason: str = ""
    face_track: dict[str, Any] | None = None
    sha256: str = ""  # of the bytes analysed: the release embeds exactly these bytes, or leaves the item out
    size: int = 0


@dataclass
class BuildReport:
    split: str
    num_input: int  # annotation items, or videos listed
    num_written: int = 0  # rows
    dropped: list[dict[str, str]] = field(default_factory=list)  # {"id", "video", "status", "reason"}
    no_face: list[dict[str, str]] = field(default_factory=list)  # kept, with an empty main track (annotations)
    shards: list[str] = field(default_factory=list)
    expressions: str = ""  # whether the face tracks hold the main character's measured expressions, and why not
    input: str = "annotations"  # or "videos"
    caption_sources: dict[str, int] = field(default_factory=dict)  # rows per caption_source
    skipped: dict[str, int] = field(default_factory=dict)  # videos: clips (and videos) left out, per reason
    settings: dict[str, Any] = field(default_factory=dict)  # what shaped the rows (the card shows it)
    # Not saved (they differ from run to run): clips taken from an interrupted build's parts, and CPU seconds
    # per stage summed over the workers (decode, encode, detect, track, expressions, rewrite; write: this process).
    reused: int = 0
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    # time.perf_counter() in this process as each clip's result arrived: start-up (until the first) and the steady
    # rate (between the first and the last) apart.
    result_times: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "num_input": self.num_input,
            "num_written": self.num_written,
            "num_dropped": len(self.dropped),
            "num_no_face": len(self.no_face),
            "caption_sources": self.caption_sources,
            "skipped": self.skipped,
            "dropped": self.dropped,
            "no_face": self.no_face,
            "expressions": self.expressions,
            "settings": self.settings,
            "shards": self.shards,
        }


# ---------------------------------------------------------------------------------------------------------------
# Input validation (cheap, before any decoding or detection)
# ---------------------------------------------------------------------------------------------------------------


MAX_ID_CHARS = 256  # an id is a short string or integer: it names the row, the report entry and the prompt


class _LongNumber:
    """A JSON integer too long to be an id, kept as its digits: never converted, so Python's limit on int digits
    never fires while the file is read."""

    def __init__(self, digits: str):
        self.digits = digits.lstrip("-")

    def __repr__(self) -> str:
        return f"<a {len(self.digits)}-digit number>"


def _parse_int(digits: str):
    return int(digits) if len(digits.lstrip("-")) <= MAX_ID_CHARS else _LongNumber(digits)



def read_annotations(annotations_path: str | os.PathLike,
                     skipped: list[dict[str, str]] | None = None) -> list[AnnotationItem]:
    """Read and validate a JSON list of `{"id", "video", "caption"}`. Raises `DatasetBuildError` naming every
    offending item (up to 10) so a bad file fails before any heavy work.

    skipped: when a list is given, an item whose text cannot be stored (a lone surrogate, valid JSON `\ud800`,
    cannot be written as UTF-8) is left out and appended to it as `{"id", "video", "status": "invalid_text",
    "reason"}` (one bad item never stops a build); without it, such items are refused with the others."""
    path = Path(annotations_path)
    if not path.is_file():
        raise DatasetBuildError(f"annotation file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_int=_parse_int)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetBuildError(f"annotation file {path} is not valid JSON: {error}") from error
    except RecursionError:
        raise DatasetBuildError(
            f"annotation file {path} is nested too deeply to read: it must be a flat JSON list of "
            '{"id", "video", "caption"} items'
        ) from None
    if not isinstance(data, list):
        raise DatasetBuildError(
            f"annotation file {path} must hold a JSON list of {{\"id\", \"video\", \"caption\"}} items, "
            f"got a JSON {type(data).__name__}"
        )
    if not data:
        raise DatasetBuildError(
            f"annotation file {path} holds an empty list: it must be a non-empty JSON list of "
            '{"id", "video", "caption"} items'
        )

    problems: list[str] = []
    items: list[AnnotationItem] = []
    seen_ids: set[str] = set()
    for index, raw in enumerate(data):
        if not isinstance(raw, dict):
            problems.append(f"item {index} is a {type(raw).__name__}, not an object")
            continue
        raw_id = raw.get("id")
        if isinstance(raw_id, _LongNumber):
            problems.append(f"item {index} has an id of {len(raw_id.digits)} digits: ids must be strings or "
                            f"integers of at most {MAX_ID_CHARS} characters")
            continue
        if raw_id is not None and (isinstance(raw_id, bool) or not isinstance(raw_id, (str, int))):
            problems.append(f"item {index} has an id of type {type(raw_id).__name__} ({_shown(raw_id)}): ids must be "
                            "strings or integers")
            continue
        if isinstance(raw_id, str) and not 0 < len(raw_id) <= MAX_ID_CHARS:
            problems.append(f"item {index} has an id of {len(raw_id)} characters ({_shown(raw_id)}): ids must be "
                            f"1 to {MAX_ID_CHARS} characters")
            continue
        missing = [key for key in ("video", "caption") if not isinstance(raw.get(key), str) or not raw[key].strip()]
        if missing:
            problems.append(f"item {index} (id={raw_id!r}) has no non-empty string {' / '.join(missing)}")
            continue
        # The published files carry an id; fall back to the video path so every row stays addressable.
        item_id = str(raw_id) if raw_id is not None else raw["video"]
        bad_text = [f"its {key} {problem}" for key, value in (("id", item_id), ("video", raw["video"]),
                                                              ("caption", raw["caption"]))
                    if (problem := _text_problem(value))]
        if bad_text:
            if skipped is None:
                problems.append(f"item {index} (id {_shown(item_id)!r}): {bad_text[0]}")
            else:
                skipped.append({"id": _shown(item_id), "video": _shown(raw["video"]), "status": "invalid_text",
                                "reason": f"item {index}: {bad_text[0]}; left out"})
            continue
        if item_id in seen_ids:
            problems.append(f"item {index} repeats id {_shown(item_id)!r}")
            continue
        seen_ids.add(item_id)
        items.append(AnnotationItem(id=item_id, video=raw["video"], caption=raw["caption"].strip()))
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise DatasetBuildError(f"annotation file {path}: {len(problems)} invalid item(s): {shown}")
    return items


def _check_build_arguments(video_root: Path, split: str, num_frames: int, num_proc: int | None,
                           engine: str = "local") -> None:
    if not video_root.is_dir():
        raise DatasetBuildError(f"video root does not exist or is not a folder: {video_root}")
    _check_split_and_engine(split, num_proc, engine)
    if num_frames < 1:
        raise DatasetBuildError(f"--num-frames must be at least 1, got {num_frames}")


def _check_split_and_engine(split: str, num_proc: int | None, engine: str) -> None:
    if not split or not split.replace("_", "").replace("-", "").isalnum():
        raise DatasetBuildError(f"split name must be letters, digits, '-' or '_', got {split!r}")
    if num_proc is not None and (isinstance(num_proc, bool) or not isinstance(num_proc, int) or num_proc < 1):
        raise DatasetBuildError(f"--num-proc must be at least 1, got {num_proc}")
    try:
        check_engine(engine, num_proc)
    except (ValueError, EngineError) as error:
        raise DatasetBuildError(str(error)) from None


# ---------------------------------------------------------------------------------------------------------------
# Face tracking, one item at a time, in worker processes when num_proc > 1
# ---------------------------------------------------------------------------------------------------------------

_WORKER_TRACKER = None  # one FaceTracker per process: the detector session is built once, not per clip
# Whether expressions are measured. Each clip gets an ExpressionAnalyzer of its own (30 ms to make): MediaPipe's
# landmarker in video mode carries state from one clip to the next, so a shared one would make a clip's measures
# depend on the clips its process saw before (and a release on how many workers built it).
_WORKER_EXPRESSIONS = False


def _init_worker(detector: str, expressions: bool = False) -> None:
    global _WORKER_TRACKER, _WORKER_EXPRESSIONS
    from facetrack.faces.tracking import FaceTracker

    _WORKER_TRACKER = FaceTracker(detector=detector)
    _WORKER_EXPRESSIONS = expressions


def _track_one(task: tuple) -> TrackOutcome:
    """Read one clip's bytes (inside the video root: `read_inside`), then decode, track and (when the worker has an
    analyzer) measure the main character's expressions of those bytes: `video_analysis.analyze_video`; the stored
    track is in the video's own pixels, and the outcome carries the bytes' SHA-256 (what the release must embed)."""
    video_path, relative_path, num_frames = task[:3]
    video_root = Path(task[3]) if len(task) > 3 and task[3] else Path(video_path).parent
    from facetrack.analysis.video_analysis import analyze_video
    from facetrack.video.probe import VideoDecodeError

    try:
        data = read_inside(video_root, Path(video_path), relative_path)
    except _ItemProblem as problem:
        return TrackOutcome(status=problem.status, reason=problem.reason)
    video = io.BytesIO(data)
    video.name = relative_path  # decoding errors name the clip by its relative path
    digest, size = hashlib.sha256(data).hexdigest(), len(data)
    del data
    decoded = []  # filled once decoding is done: a failure after it is the tracker's, not the file's

    def progress(fraction: float, message: str) -> None:
        if fraction > 0 and not decoded:
            decoded.append(True)

    analyzer = None
    if _WORKER_EXPRESSIONS:  # the clip's own (see _WORKER_EXPRESSIONS)
        from facetrack.expressions.measure import ExpressionAnalyzer

        analyzer = ExpressionAnalyzer()
    try:
        analysis = analyze_video(video, num_frames=num_frames, max_side=TRACKING_MAX_SIDE,
                                 tracker=_WORKER_TRACKER, expressions=_WORKER_EXPRESSIONS,
                                 analyzer=analyzer, progress=progress)
    except VideoDecodeError as error:  # the problem alone: the message's path is a local absolute one
        return TrackOutcome(status="unreadable", reason=f"{relative_path}: {error.problem}")
    except Exception as error:  # noqa: BLE001 - one clip's failure must not stop a 5,000-clip build
        if not decoded and isinstance(error, (OSError, RuntimeError)):
            return TrackOutcome(status="unreadable", reason=f"{relative_path}: {type(error).__name__}: "
                                f"{str(error).replace(video_path, relative_path)}")
        return TrackOutcome(status="error", reason=f"face tracking failed: {type(error).__name__}: {error}")
    finally:
        if analyzer is not None:
            analyzer.close()
    result = analysis.track
    track = analysis.source_track().to_dict()
    if result.main_person_id is None or not bool(result.present.any()):
        return TrackOutcome(status="no_face", reason=result.reason or "no face found", face_track=track,
                            sha256=digest, size=size)
    return TrackOutcome(status="ok", face_track=track, sha256=digest, size=size)


def track_in_source_pixels(track: dict[str, Any], width: int | None, height: int | None) -> dict[str, Any]:
    """A face track dict (`FaceTrackResult.to_dict()`) with every box mapped to `width` x `height` pixels
    (`FaceTrackResult.scaled_to`; unchanged when the sizes already agree or are unknown)."""
    from facetrack.analysis.video_analysis import read_face_track

    if not width or not height or (width, height) == (track["width"], track["height"]):
        return track
    return read_face_track(track).scaled_to(width, height).to_dict()


def expressions_available(wanted: bool) -> tuple[bool, str]:
    """(measure expressions?, what the build report says about them): off when not wanted, or when the optional
    packages are missing (the report's line then names the install step; the build goes on without)."""
    if not wanted:
        return False, "not measured (--no-expressions)"
    from facetrack.expressions.models import ExpressionDependencyError, check_expression_dependencies

    try:
        check_expression_dependencies()
    except ExpressionDependencyError as error:
        return False, f"not measured: {error}"
    return True, "the main character's, in every face_track (FaceTrackResult version 3 'expressions')"


class _TrackWorker:
    """`_track_one` in whichever process the engine runs it, with that process's tracker (and analyzer) built on
    its first task (picklable: only the settings travel)."""

    def __init__(self, detector: str, expressions: bool):
        self.detector, self.expressions = detector, expressions
        self.ready = False

    def __getstate__(self) -> dict:
        return {**self.__dict__, "ready": False}

    def __call__(self, task: tuple) -> TrackOutcome:
        if not self.ready:
            _init_worker(self.detector, self.expressions)
            self.ready = True
        return _track_one(task)


def _track_all(
    video_paths: list[tuple[str, str]], num_frames: int, num_proc: int | None, detector: str,
    expressions: bool = False, video_root: str | None = None, engine: str = "local", ray_address: str | None = None,
) -> list[TrackOutcome]:
    """Track (absolute path, annotation path) pairs (and measure the main character's expressions) on the engine;
    each file is read only if it is inside `video_root` when it is read."""
    from tqdm.auto import tqdm

    tasks = [(path, relative, num_frames, video_root) for path, relative in video_paths]
    progress = dict(total=len(tasks), desc="Tracking faces" + (" + expressions" if expressions else ""), unit="clip")
    outcomes: list[TrackOutcome | None] = [None] * len(tasks)
    try:
        for position, outcome in tqdm(run_tasks(tasks, _TrackWorker(detector, expressions), engine, num_proc,
                                                ray_address), **progress):
            outcomes[position] = outcome
    except EngineError as error:
        raise DatasetBuildError(str(error)) from None
    return outcomes


def build_dataset(
    annotations_path: str | os.PathLike | None = None,
    video_root: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    split: str = "train",
    num_frames: int = 32,
    num_proc: int | None = None,
    detector: str = "retinaface",
    license: str = "other",
    max_shard_size: str | int = "500MB",
    expressions: bool = True,
    overwrite: bool = False,
    *,
    videos: str | os.PathLike | None = None,
    clip_seconds: float = 4.0,
    clips_per_video: int = 4,
    min_face_share: float = 0.75,
    rewriter: Any = None,
    engine: str = "local",
    ray_address: str | None = None,
) -> BuildReport:
    """Build (or rebuild) one split of the dataset folder `out_dir`. Returns the split's report, also saved in
    `out_dir/build_report.json` beside the other splits' reports. Safe to interrupt: see `facetrack.data.release`
    (and, for videos, `facetrack.data.parts`: a rerun goes on from the clips already finished).

    Input, one of: `annotations_path` (a JSON list of {id, video, caption}, video paths relative to `video_root`:
    one row per item, its human caption), or `videos` (a folder of unlabelled videos, or a text file listing them,
    relative to `video_root`, default the list's folder): up to `clips_per_video` clips of `clip_seconds` per
    video, each captioned by its measured expressions (`min_face_share`: the share of sampled frames the main face
    must be seen in; `rewriter`: an object with `rewrite(report) -> str` and `describe() -> dict`, such as
    `facetrack.inference.caption_rewriter.CaptionRewriter`, to rewrite each caption). See `facetrack.data.clips`.
    `expressions`: store the main character's measured expressions in every face track (annotations: when the
    optional packages are installed, the report says which; videos need them for their captions).
    `engine`: "local" (`num_proc` processes, default 1) or "ray" (`num_proc` actors, default one per CPU of the
    cluster at `ray_address`, or of a local cluster started for the build).

    Never deletes or replaces a file it did not write: a README.md or build_report.json in out_dir that facetrack
    did not write (or that was changed since) is refused by name before any tracking, unless `overwrite`
    (`--overwrite`) allows replacing it; other files (another tool's parquet files in data/) are never touched.
    Building a split next to facetrack's other splits keeps them, and their rows, in the card."""
    from datasets.utils.py_utils import convert_file_size_to_int

    if out_dir is None:
        raise DatasetBuildError("out_dir is required: the folder the release is written to")
    if (annotations_path is None) == (videos is None):
        raise DatasetBuildError("give either an annotation file (human captions) or videos (a folder of unlabelled "
                                "videos, or a text file listing them)" + (", not both" if videos else ""))
    out_dir = Path(out_dir)
    max_shard_bytes = convert_file_size_to_int(max_shard_size)
    if videos is not None:
        settings = ClipSettings(clip_seconds=clip_seconds, clips_per_video=clips_per_video, num_frames=num_frames,
                                min_face_share=min_face_share, detector=detector)
        return _build_from_videos(videos, video_root, out_dir, split, settings, num_proc, license, max_shard_bytes,
                                  expressions, overwrite, rewriter, engine, ray_address)
    if video_root is None:
        raise DatasetBuildError("an annotation file needs --video-root: the folder its video paths are relative to")
    if rewriter is not None:
        raise DatasetBuildError("rewriting captions is for videos without captions (--videos); an annotation file's "
                                "captions are human captions and are kept as they are")

    video_root = Path(video_root)
    _check_build_arguments(video_root, split, num_frames, num_proc, engine)
    skipped: list[dict[str, str]] = []
    items = read_annotations(annotations_path, skipped=skipped)

    report = BuildReport(split=split, num_input=len(items) + len(skipped))
    report.dropped.extend(skipped)  # items whose text cannot be stored: left out before any work
    to_track: list[tuple[AnnotationItem, Path]] = []
    for item in items:
        video_file, status, problem = _resolve_item(video_root, item.video)
        if video_file is None:
            shown = f".../{Path(item.video).name}" if status == "outside_root" and _is_absolute(item.video) \
                else item.video
            report.dropped.append({"id": item.id, "video": shown, "status": status, "reason": problem})
        else:
            to_track.append((item, video_file))
    if not to_track:
        raise DatasetBuildError(
            f"none of the {report.num_input} items of {annotations_path} has a readable video under {video_root} "
            f"(first problem: {report.dropped[0]['reason']})"
        )
    with _writing(out_dir, overwrite, split):  # the folder's lock, held from before tracking to the commit
        _build_split(report, items, to_track, annotations_path, video_root, out_dir, split, num_frames,
                     num_proc, detector, license, max_shard_bytes, expressions, overwrite, engine, ray_address)
    return report


@contextmanager
def _writing(out_dir: Path, overwrite: bool, split: str):
    """Hold out_dir's build lock with the folder recovered from any interrupted build and checked (files facetrack
    did not write, other splits of an older layout) before any heavy work; a folder this build created is removed
    again when nothing was built in it."""
    created = not out_dir.exists()
    try:
        if out_dir.is_dir() and not (out_dir / dataset_release.STAGING_DIRNAME).exists():
            dataset_release.refuse_foreign_files(out_dir, overwrite)  # refused as it is, with nothing written
        out_dir.mkdir(parents=True, exist_ok=True)
        with dataset_release.release_lock(out_dir):
            for line in dataset_release.recover(out_dir):
                logger.info("%s: %s", out_dir, line)
            dataset_release.refuse_foreign_files(out_dir, overwrite)
            _refuse_older_splits(out_dir, split)
            yield
    except (dataset_release.ReleaseLockedError, dataset_release.ForeignFileError) as error:
        raise DatasetBuildError(str(error)) from error
    finally:
        if created and not (out_dir / dataset_release.CARD_FILENAME).exists():  # nothing built: leave nothing
            (out_dir / dataset_release.LOCK_FILENAME).unlink(missing_ok=True)
            if out_dir.is_dir() and not any(out_dir.iterdir()):
                out_dir.rmdir()


def _refuse_older_splits(out_dir: Path, split: str) -> None:
    """One card describes every split's columns: a split of facetrack's built with other columns (by an earlier
    version) would no longer load beside this one, so it is named before any work."""
    import pyarrow.parquet as pq

    expected = list(dataset_features())
    for name, shards in (dataset_release.read_record(out_dir) or {}).get("splits", {}).items():
        if name == split or not shards or not (out_dir / shards[0]).is_file():
            continue
        columns = pq.read_schema(out_dir / shards[0]).names
        if columns != expected:
            raise DatasetBuildError(
                f"split {name!r} in {out_dir} was built by an earlier facetrack with other columns "
                f"({', '.join(sorted(set(expected) - set(columns))) or 'in another order'} missing): rebuild it too, "
                "or build into a new folder"
            )


def _build_split(report: BuildReport, items, to_track, annotations_path, video_root: Path, out_dir: Path,
                 split: str, num_frames: int, num_proc: int | None, detector: str, license: str,
                 max_shard_bytes: int, expressions: bool, overwrite: bool, engine: str = "local",
                 ray_address: str | None = None) -> None:
    """Track, write and commit one split (build_dataset holds the folder's lock)."""
    measure, report.expressions = expressions_available(expressions)
    report.settings = {"input": "annotations", "num_frames": num_frames, "detector": detector,
                       "expressions": measure, "facetrack": __version__}
    outcomes = _track_all([(str(path), item.video) for item, path in to_track], num_frames=num_frames,
                          num_proc=num_proc, detector=detector, expressions=measure,
                          video_root=str(video_root.resolve()), engine=engine, ray_address=ray_address)

    rows = []
    for (item, video_file), outcome in zip(to_track, outcomes):
        entry = {"id": item.id, "video": item.video, "status": outcome.status, "reason": outcome.reason}
        if outcome.face_track is None:  # missing, unreadable or tracker error: nothing to train on
            report.dropped.append(entry)
            continue
        if outcome.status == "no_face":
            report.no_face.append(entry)
        instruction = instruction_for(item.id)
        rows.append(
            {
                "id": item.id,
                "video": item.video,
                "video_file": str(video_file),
                "video_size": outcome.size,
                "video_sha256": outcome.sha256,
                "caption": item.caption,
                "instruction": instruction,
                "messages": build_messages(instruction, item.caption),
                "face_track": json.dumps(outcome.face_track),
                "has_face": outcome.status == "ok",
                "caption_source": "human",
                "source_video": item.video,
                "clip_start": None,  # the whole video
                "clip_end": None,
            }
        )
    if not rows:
        raise DatasetBuildError(
            f"none of the {report.num_input} items of {annotations_path} has a readable video under {video_root} "
            f"(first problem: {report.dropped[0]['reason']})"
        )

    left_out: list[str] = []  # ids of rows dropped while their shard was written

    def read_video(row: dict[str, Any]) -> bytes | None:
        """The bytes that were tracked, read again inside the root (`read_inside`); None (and the item dropped)
        when the file left the root or changed since it was tracked."""
        try:
            data = read_inside(video_root, Path(row["video_file"]), row["video"])
            if hashlib.sha256(data).hexdigest() != row["video_sha256"]:
                raise _ItemProblem("changed", f"{row['video']}: the file changed after it was tracked; not released")
        except _ItemProblem as problem:
            report.dropped.append({"id": row["id"], "video": row["video"], "status": problem.status,
                                   "reason": problem.reason})
            report.no_face[:] = [entry for entry in report.no_face if entry["id"] != row["id"]]
            left_out.append(row["id"])
            return None
        return data

    build_id = dataset_release.new_build_id()
    dataset_release.begin_build(out_dir, split, build_id)
    report.shards = dataset_release.write_shards(
        rows, out_dir, split, build_id, max_shard_bytes, dataset_features(), read_video=read_video
    )
    report.num_written = len(rows) - len(left_out)
    report.caption_sources = {"human": report.num_written}
    order = {item.id: index for index, item in enumerate(items)}
    report.dropped.sort(key=lambda entry: order.get(entry["id"], -1))
    if not report.shards:
        dataset_release.discard_build(out_dir, split, build_id)
        raise DatasetBuildError(f"none of the {report.num_input} items of {annotations_path} could be released "
                                f"(first problem: {report.dropped[0]['reason']})")
    entry = {**report.to_dict(), "build_id": build_id}
    dataset_release.commit_split(
        out_dir, split, build_id, report.shards, entry,
        write_card=lambda path, files, reports: write_dataset_card(out_dir, license=license, files=files,
                                                                   card_path=path, reports=reports),
        overwrite=overwrite,
    )


def _build_from_videos(videos, video_root, out_dir: Path, split: str, settings: ClipSettings, num_proc: int | None,
                       license: str, max_shard_bytes: int, expressions: bool, overwrite: bool, rewriter: Any,
                       engine: str, ray_address: str | None) -> BuildReport:
    """Check the settings and list the videos (before any heavy work), then cut, analyse, write and commit one
    split of clips (see `facetrack.data.clips` and `facetrack.data.parts`)."""
    _check_split_and_engine(split, num_proc, engine)
    settings.check()
    if not expressions:
        raise DatasetBuildError("videos without captions are captioned by their measured expressions: --videos "
                                "cannot be built with --no-expressions")
    measure, expressions_line = expressions_available(True)
    if not measure:
        raise DatasetBuildError(f"videos without captions are captioned by their measured expressions, which are "
                                f"{expressions_line}")
    if rewriter is not None and not (callable(getattr(rewriter, "rewrite", None))
                                     and callable(getattr(rewriter, "describe", None))):
        raise DatasetBuildError(f"a rewriter needs rewrite(report) and describe() methods, got "
                                f"{type(rewriter).__name__}")
    root, listed, left_out = list_videos(videos, video_root, exclude=out_dir)
    report = BuildReport(split=split, num_input=len(listed) + len(left_out), input="videos",
                         expressions=expressions_line)
    report.dropped.extend(left_out)
    report.settings = {"input": "videos", **settings.to_dict(), "facetrack": __version__,
                       "rewriter": rewriter.describe() if rewriter is not None else None}
    if not listed:
        raise DatasetBuildError(f"none of the videos listed in {videos} can be read "
                                f"(first problem: {left_out[0]['reason']})")
    with _writing(out_dir, overwrite, split):
        _build_clip_split(report, root, listed, out_dir, split, settings, num_proc, license, max_shard_bytes,
                          overwrite, rewriter, engine, ray_address)
    return report


def _build_clip_split(report: BuildReport, root: Path, listed: list[str], out_dir: Path, split: str,
                      settings: ClipSettings, num_proc: int | None, license: str, max_shard_bytes: int,
                      overwrite: bool, rewriter: Any, engine: str, ray_address: str | None) -> None:
    """Run the clips not finished yet, then write the split from every clip's part and commit it (the caller holds
    the folder's lock)."""
    from tqdm.auto import tqdm

    root = root.resolve()
    store = PartStore(out_dir, split, {**report.settings, "video_root": str(root)})
    tasks = []
    for video in listed:
        try:  # the file's identity when listed: a part made from another version of it is not reused
            status = os.stat(root / video)
            identity = (status.st_size, status.st_mtime_ns)
        except (OSError, ValueError):  # the task reports why it cannot be read
            identity = (-1, -1)
        tasks += [{"key": task_key(video, clip, *identity), "video": video, "clip": clip}
                  for clip in range(settings.clips_per_video)]
    todo = [task for task in tasks if not store.has(task["key"])]
    report.reused = len(tasks) - len(todo)
    if report.reused:
        logger.info("%s: %d clip(s) finished by an interrupted build are reused", out_dir, report.reused)

    cpu = Counter()
    worker = ClipWorker(str(root), settings, rewriter)
    try:
        for _, result in tqdm(run_tasks(todo, worker, engine, num_proc, ray_address), total=len(todo),
                              desc="Cutting clips, tracking faces + expressions", unit="clip"):
            report.result_times.append(time.perf_counter())
            started = time.process_time()
            store.save(result["key"], result["part"])
            cpu.update(result["cpu_seconds"])
            cpu["write"] += time.process_time() - started
    except EngineError as error:
        raise DatasetBuildError(str(error)) from None

    outcomes = store.read([task["key"] for task in tasks],
                          columns=["id", "status", "reason", "caption_source", "video_size"]).to_pylist()
    written: list[tuple[str, int]] = []
    for task, outcome in zip(tasks, outcomes):
        status = outcome["status"]
        if status == "ok":
            written.append((task["key"], outcome["video_size"]))
            report.caption_sources[outcome["caption_source"]] = report.caption_sources.get(
                outcome["caption_source"], 0) + 1
        elif status != "unused":
            shown = task["video"] if status in VIDEO_PROBLEMS else outcome["id"]
            report.dropped.append({"id": shown, "video": task["video"], "status": status,
                                   "reason": outcome["reason"]})
            report.skipped[status] = report.skipped.get(status, 0) + 1
    if not written:
        raise DatasetBuildError(f"none of the {len(listed)} videos under {root} gave a clip (first problem: "
                                f"{report.dropped[0]['reason'] if report.dropped else 'none reported'})")

    started = time.process_time()
    build_id = dataset_release.new_build_id()
    dataset_release.begin_build(out_dir, split, build_id)
    report.shards = write_clip_shards(store, [key for key, _ in written], [size for _, size in written], out_dir,
                                      split, build_id, max_shard_bytes, dataset_features())
    report.num_written = len(written)
    dataset_release.commit_split(
        out_dir, split, build_id, report.shards, {**report.to_dict(), "build_id": build_id},
        write_card=lambda path, files, reports: write_dataset_card(out_dir, license=license, files=files,
                                                                   card_path=path, reports=reports),
        overwrite=overwrite,
    )
    remove_work(out_dir, split)
    cpu["write"] += time.process_time() - started
    report.cpu_seconds = dict(cpu)


def push_dataset(out_dir: str | os.PathLike, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Upload the built folder as a dataset repo (parquet shards, README.md, build_report.json). Returns the URL."""
    from facetrack.hub.upload import upload_to_hub

    from facetrack.data.release import ReleaseLockedError, recover, release_files, release_lock, split_files

    out_dir = Path(out_dir)
    if (out_dir / "README.md").is_file():
        try:  # an interrupted build is finished or discarded first: never upload a half-committed folder
            with release_lock(out_dir):
                recover(out_dir)
        except ReleaseLockedError as error:
            raise DatasetBuildError(str(error)) from error
    if not (out_dir / "README.md").is_file() or not any(split_files(out_dir).values()):
        raise DatasetBuildError(f"{out_dir} is not a built dataset folder (no README.md listing data/*.parquet)")
    commit = upload_to_hub(
        out_dir,
        repo_id,
        "dataset",
        private=private,
        commit_message="Upload dataset built with facetrack dataset build",
        # Exactly the live release: never a shard a build left behind. Shards of earlier builds on the Hub go.
        allow_patterns=release_files(out_dir),
        delete_patterns=["data/*.parquet"],
        token=token,
    )
    return str(getattr(commit, "repo_url", None) or f"https://huggingface.co/datasets/{repo_id}")
