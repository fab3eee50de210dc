"""Build a Hub-ready `datasets` release of FDA/DFEC-format annotations, with the main character's face track
precomputed per clip.

(Over 400 lines on purpose: the build is one sequence - read and check the annotations, keep paths inside the root,
track in workers, write, swap in - whose steps share one report; the dataset card, the crash-safe release swap and
reading rows back are their own modules: card.py, release.py, schema.py, and facetrack/training/data.py.)

Input: the published format, a JSON list of `{"id", "video", "caption"}` with `video` relative to a video root.

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
- Reproducible: the same input and settings give byte-identical parquet shards (no wall-clock time is stored).
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import multiprocessing
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facetrack.data.card import write_dataset_card
from facetrack.data.schema import build_messages, dataset_features, instruction_for

logger = logging.getLogger(__name__)

TRACKING_MAX_SIDE = 1920  # frames are decoded with their longer side at most this for face tracking


class DatasetBuildError(ValueError):
    """Bad input to the dataset build: the message names the file, the item and the problem."""


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
    num_input: int
    num_written: int = 0
    dropped: list[dict[str, str]] = field(default_factory=list)  # {"id", "video", "status", "reason"}
    no_face: list[dict[str, str]] = field(default_factory=list)  # kept, with an empty main track
    shards: list[str] = field(default_factory=list)
    expressions: str = ""  # whether the face tracks hold the main character's measured expressions, and why not

    def to_dict(self) -> dict[str, Any]:
        return {
            "num_input": self.num_input,
            "num_written": self.num_written,
            "num_dropped": len(self.dropped),
            "num_no_face": len(self.no_face),
            "dropped": self.dropped,
            "no_face": self.no_face,
            "expressions": self.expressions,
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


def _text_problem(value: str) -> str | None:
    """Why a string is not text a release can store (Arrow writes UTF-8), or None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        return (f"is not valid text: {value[error.start:error.end].encode('unicode_escape').decode()} at character "
                f"{error.start} (a lone surrogate) cannot be written as UTF-8")
    return None


def _shown(value: Any) -> str:
    """A value as the report and messages can show it (lone surrogates escaped, long values cut)."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


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


def _check_build_arguments(video_root: Path, split: str, num_frames: int, num_proc: int) -> None:
    if not video_root.is_dir():
        raise DatasetBuildError(f"video root does not exist or is not a folder: {video_root}")
    if not split or not split.replace("_", "").replace("-", "").isalnum():
        raise DatasetBuildError(f"split name must be letters, digits, '-' or '_', got {split!r}")
    if num_frames < 1:
        raise DatasetBuildError(f"--num-frames must be at least 1, got {num_frames}")
    if num_proc < 1:
        raise DatasetBuildError(f"--num-proc must be at least 1, got {num_proc}")


# ---------------------------------------------------------------------------------------------------------------
# Face tracking, one item at a time, in worker processes when num_proc > 1
# ---------------------------------------------------------------------------------------------------------------

_WORKER_TRACKER = None  # one FaceTracker per process: the detector session is built once, not per clip
_WORKER_ANALYZER = None  # and one ExpressionAnalyzer, when expressions are stored


def _init_worker(detector: str, expressions: bool = False) -> None:
    global _WORKER_TRACKER, _WORKER_ANALYZER
    from facetrack.faces.tracking import FaceTracker

    _WORKER_TRACKER = FaceTracker(detector=detector)
    if _WORKER_ANALYZER is not None:  # a previous build in this process (num_proc=1 runs here)
        _WORKER_ANALYZER.close()
    _WORKER_ANALYZER = None
    if expressions:
        from facetrack.expressions.measure import ExpressionAnalyzer

        _WORKER_ANALYZER = ExpressionAnalyzer()


class _ItemProblem(Exception):
    """One item cannot be read: its report status and reason (relative paths only)."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def _real_path_of(descriptor: int, path: Path) -> Path | None:
    """The path of the file an open descriptor reads: /proc's link where there is one, else `path` resolved when it
    still names that same file; None when it cannot be told."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{descriptor}"))
    except OSError:
        pass
    try:
        real = Path(os.path.realpath(path))
        opened, named = os.fstat(descriptor), os.stat(real)
    except (OSError, ValueError):
        return None
    return real if (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino) else None


def read_inside(video_root: Path, video_file: Path, shown: str) -> bytes:
    """The bytes of `video_file` (a path `resolve_video_path` gave), read only when the file opened there is a
    regular file inside the (resolved) video root: the check is made on the open file, where the bytes are read, so
    a clip swapped for a symbolic link (or a folder on its way swapped for one) after the path check is never read.
    Raises `_ItemProblem` naming `shown` (the annotation's relative path), never an absolute path."""
    root = Path(video_root).resolve()
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(video_file, flags)
    except FileNotFoundError:
        raise _ItemProblem("missing", f"video file not found: {shown}") from None
    except OSError as error:
        if error.errno == errno.ELOOP:  # the file itself is now a symbolic link
            raise _ItemProblem("outside_root", f"{shown}: became a symbolic link after its path was checked; "
                                               "not read") from None
        raise _ItemProblem("unreadable", f"{shown}: {error.strerror or type(error).__name__}") from None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise _ItemProblem("unreadable", f"{shown}: not a regular file")
        real = _real_path_of(descriptor, video_file)
        if real is None or (real != root and root not in real.parents):
            raise _ItemProblem("outside_root", f"{shown}: leaves the video root (a folder on its path was swapped "
                                               "for a symbolic link after the check); not read")
        with os.fdopen(descriptor, "rb", closefd=False) as file:
            return file.read()
    except OSError as error:
        raise _ItemProblem("unreadable", f"{shown}: {error.strerror or type(error).__name__}") from None
    finally:
        os.close(descriptor)


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

    try:
        analysis = analyze_video(video, num_frames=num_frames, max_side=TRACKING_MAX_SIDE,
                                 tracker=_WORKER_TRACKER, expressions=_WORKER_ANALYZER is not None,
                                 analyzer=_WORKER_ANALYZER, progress=progress)
    except VideoDecodeError as error:  # the problem alone: the message's path is a local absolute one
        return TrackOutcome(status="unreadable", reason=f"{relative_path}: {error.problem}")
    except Exception as error:  # noqa: BLE001 - one clip's failure must not stop a 5,000-clip build
        if not decoded and isinstance(error, (OSError, RuntimeError)):
            return TrackOutcome(status="unreadable", reason=f"{relative_path}: {type(error).__name__}: "
                                f"{str(error).replace(video_path, relative_path)}")
        return TrackOutcome(status="error", reason=f"face tracking failed: {type(error).__name__}: {error}")
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


def _track_all(
    video_paths: list[tuple[str, str]], num_frames: int, num_proc: int, detector: str, expressions: bool = False,
    video_root: str | None = None,
) -> list[TrackOutcome]:
    """Track (absolute path, annotation path) pairs (and measure the main character's expressions); each file is
    read only if it is inside `video_root` when it is read."""
    from tqdm.auto import tqdm

    tasks = [(path, relative, num_frames, video_root) for path, relative in video_paths]
    progress = dict(total=len(tasks), desc="Tracking faces" + (" + expressions" if expressions else ""), unit="clip")
    if num_proc == 1:
        _init_worker(detector, expressions)
        return [_track_one(task) for task in tqdm(tasks, **progress)]
    # "spawn": onnxruntime and torch thread pools are not fork-safe once initialised in the parent.
    context = multiprocessing.get_context("spawn")
    with context.Pool(num_proc, initializer=_init_worker, initargs=(detector, expressions)) as pool:
        return list(tqdm(pool.imap(_track_one, tasks, chunksize=1), **progress))


def _is_absolute(video: str) -> bool:
    from pathlib import PureWindowsPath

    return os.path.isabs(video) or bool(PureWindowsPath(video).drive) or video.startswith(("\\", "~"))


def _resolve_item(video_root: Path, video: str) -> tuple[Path | None, str, str]:
    """(the file an annotation's `video` names, "", "") or (None, report status, why not): a path that is absolute,
    leaves the root, holds a NUL byte or cannot be resolved (a symbolic link loop) is never opened. The reason never
    repeats an absolute path (it goes into the release's report)."""
    if "\x00" in video:
        return None, "invalid_path", f"{_shown(video)!r}: the path holds a NUL byte; not read"
    if _is_absolute(video):
        return None, "outside_root", (f".../{Path(video).name}: an absolute path; video paths must be relative to "
                                      "the video root")
    root = video_root.resolve()
    try:
        resolved = (root / video).resolve()  # follows symlinks, so a link out of the root is caught too
    except RuntimeError:  # Python < 3.13: "Symlink loop from '<absolute path>'"
        return None, "unreadable", f"{video}: a symbolic link loop; not read"
    except (OSError, ValueError) as error:  # the message would name the absolute path: only its kind is kept
        if getattr(error, "errno", None) == errno.ELOOP:
            return None, "unreadable", f"{video}: a symbolic link loop; not read"
        why = getattr(error, "strerror", None) or type(error).__name__
        return None, "unreadable", f"{video}: the path cannot be resolved ({why}); not read"
    if resolved != root and root not in resolved.parents:
        return None, "outside_root", f"{video}: leaves the video root (via '..' or a symbolic link); not read"
    return resolved, "", ""


def resolve_video_path(video_root: Path, video: str) -> tuple[Path | None, str]:
    """The file an annotation's `video` names, or (None, why not) when it is absolute, leaves the root, holds a NUL
    byte or cannot be resolved. The reason never repeats an absolute path (it goes into the release's report): only
    its file name."""
    resolved, _status, reason = _resolve_item(video_root, video)
    return resolved, reason


def build_dataset(
    annotations_path: str | os.PathLike,
    video_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    split: str = "train",
    num_frames: int = 32,
    num_proc: int = 1,
    detector: str = "retinaface",
    license: str = "other",
    max_shard_size: str | int = "500MB",
    expressions: bool = True,
    overwrite: bool = False,
) -> BuildReport:
    """Build (or rebuild) one split of the dataset folder. Returns the split's report, also saved in
    `out_dir/build_report.json` beside the other splits' reports. Safe to interrupt: see `facetrack.data.release`.
    `expressions`: store the main character's measured expressions in every face track (when the optional
    packages are installed; the report says which).

    Never deletes or replaces a file it did not write: a README.md or build_report.json in out_dir that facetrack
    did not write (or that was changed since) is refused by name before any tracking, unless `overwrite`
    (`--overwrite`) allows replacing it; other files (another tool's parquet files in data/) are never touched.
    Building a split next to facetrack's other splits keeps them, and their rows, in the card."""
    from datasets.utils.py_utils import convert_file_size_to_int

    from facetrack.data import release as dataset_release

    video_root = Path(video_root)
    out_dir = Path(out_dir)
    _check_build_arguments(video_root, split, num_frames, num_proc)
    skipped: list[dict[str, str]] = []
    items = read_annotations(annotations_path, skipped=skipped)
    max_shard_bytes = convert_file_size_to_int(max_shard_size)

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

    created = not out_dir.exists()
    try:
        if out_dir.is_dir() and not (out_dir / dataset_release.STAGING_DIRNAME).exists():
            dataset_release.refuse_foreign_files(out_dir, overwrite)  # refused as it is, with nothing written
        out_dir.mkdir(parents=True, exist_ok=True)
        with dataset_release.release_lock(out_dir):  # held from before tracking to the commit
            for line in dataset_release.recover(out_dir):
                logger.info("%s: %s", out_dir, line)
            dataset_release.refuse_foreign_files(out_dir, overwrite)  # before any heavy work
            _build_split(report, items, to_track, annotations_path, video_root, out_dir, split, num_frames,
                         num_proc, detector, license, max_shard_bytes, expressions, overwrite)
    except (dataset_release.ReleaseLockedError, dataset_release.ForeignFileError) as error:
        raise DatasetBuildError(str(error)) from error
    finally:
        if created and not (out_dir / dataset_release.CARD_FILENAME).exists():  # nothing built: leave nothing
            (out_dir / dataset_release.LOCK_FILENAME).unlink(missing_ok=True)
            if out_dir.is_dir() and not any(out_dir.iterdir()):
                out_dir.rmdir()
    return report


def _build_split(report: BuildReport, items, to_track, annotations_path, video_root: Path, out_dir: Path,
                 split: str, num_frames: int, num_proc: int, detector: str, license: str, max_shard_bytes: int,
                 expressions: bool, overwrite: bool) -> None:
    """Track, write and commit one split (build_dataset holds the folder's lock)."""
    from facetrack.data import release as dataset_release

    measure, report.expressions = expressions_available(expressions)
    outcomes = _track_all([(str(path), item.video) for item, path in to_track], num_frames=num_frames,
                          num_proc=num_proc, detector=detector, expressions=measure,
                          video_root=str(video_root.resolve()))

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
    order = {item.id: index for index, item in enumerate(items)}
    report.dropped.sort(key=lambda entry: order.get(entry["id"], -1))
    if not report.shards:
        dataset_release.discard_build(out_dir, split, build_id)
        raise DatasetBuildError(f"none of the {report.num_input} items of {annotations_path} could be released "
                                f"(first problem: {report.dropped[0]['reason']})")
    entry = {**report.to_dict(), "build_id": build_id}
    dataset_release.commit_split(
        out_dir, split, build_id, report.shards, entry,
        write_card=lambda path, files: write_dataset_card(out_dir, license=license, files=files, card_path=path),
        overwrite=overwrite,
    )


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
