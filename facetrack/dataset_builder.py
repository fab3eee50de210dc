"""Build a Hub-ready `datasets` release of FDA/DFEC-format annotations, with the main character's face track
precomputed per clip.

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
  `load_example_video` (decord/PyAV through `facetrack.processing.video_io`).
- The face track is a JSON string (`FaceTrackResult.to_dict()`), not an Arrow struct: its `tracks` field is a dict
  keyed by track id, which varies per clip and has no fixed Arrow schema, and a string round-trips exactly through
  `FaceTrackResult.from_dict` whatever the tracker adds later. A flat `has_face` bool sits beside it for filtering.
- Items whose video is missing or cannot be decoded are dropped and listed with the reason in `build_report.json`;
  items where no face is found are kept (their track has no main face, `has_face=False`) and listed too. One bad item
  never stops the build.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Instruction prompts, one picked per item by a hash of its id (deterministic, reproducible across builds).
# The first one is the evaluation prompt used on FEC-Bench (see PAPER.md).
EVALUATION_PROMPT = (
    "Please provide a detailed description of the facial appearance attributes and expression changes of the "
    "character in the video"
)
INSTRUCTION_TEMPLATES: tuple[str, ...] = (
    EVALUATION_PROMPT,
    "Describe how the facial expression of the main character changes over the course of the video.",
    "Watch the main character's face and describe, in order, how their expression evolves from beginning to end.",
    "What does the person in the video look like, and how do their eyebrows, eyes and mouth move over time?",
    "Give a detailed account of the main character's facial appearance and of every change in their expression.",
    "Describe the facial dynamics of the person in this video: appearance first, then the expression changes in "
    "temporal order.",
    "Explain how the main character's face moves throughout the clip, including head movements, blinks and mouth "
    "movements.",
    "Summarize the appearance of the central character and narrate the changes in their facial expression.",
)

SHARD_PATTERN = "data/{split}-*.parquet"
REPORT_FILENAME = "build_report.json"


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

    status: str  # "ok", "no_face", "missing", "unreadable", "error"
    reason: str = ""
    face_track: dict[str, Any] | None = None


@dataclass
class BuildReport:
    split: str
    num_input: int
    num_written: int = 0
    dropped: list[dict[str, str]] = field(default_factory=list)  # {"id", "video", "status", "reason"}
    no_face: list[dict[str, str]] = field(default_factory=list)  # kept, with an empty main track
    shards: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "num_input": self.num_input,
            "num_written": self.num_written,
            "num_dropped": len(self.dropped),
            "num_no_face": len(self.no_face),
            "dropped": self.dropped,
            "no_face": self.no_face,
            "shards": self.shards,
        }


def instruction_for(item_id: str) -> str:
    """The instruction prompt of one item: a template chosen by a stable hash of its id."""
    digest = hashlib.sha256(str(item_id).encode("utf-8")).digest()
    return INSTRUCTION_TEMPLATES[int.from_bytes(digest[:8], "big") % len(INSTRUCTION_TEMPLATES)]


def build_messages(instruction: str, caption: str) -> list[dict[str, Any]]:
    """Chat-format conversation: the user sends the video and the instruction, the assistant answers the caption.
    Every content part has both `type` and `text` keys so the column has one Arrow schema (`text` is None for video)."""
    return [
        {"role": "user", "content": [{"type": "video", "text": None}, {"type": "text", "text": instruction}]},
        {"role": "assistant", "content": [{"type": "text", "text": caption}]},
    ]


def dataset_features():
    """The `datasets.Features` of every split."""
    from datasets import Features, List, Value, Video

    content_part = {"type": Value("string"), "text": Value("string")}
    return Features(
        {
            "id": Value("string"),
            "video": Video(),
            "caption": Value("string"),
            "instruction": Value("string"),
            "messages": List({"role": Value("string"), "content": List(content_part)}),
            "face_track": Value("string"),
            "has_face": Value("bool"),
        }
    )


# ---------------------------------------------------------------------------------------------------------------
# Input validation (cheap, before any decoding or detection)
# ---------------------------------------------------------------------------------------------------------------


def read_annotations(annotations_path: str | os.PathLike) -> list[AnnotationItem]:
    """Read and validate a JSON list of `{"id", "video", "caption"}`. Raises `DatasetBuildError` naming every
    offending item (up to 10) so a bad file fails before any heavy work."""
    path = Path(annotations_path)
    if not path.is_file():
        raise DatasetBuildError(f"annotation file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetBuildError(f"annotation file {path} is not valid JSON: {error}") from error
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
        missing = [key for key in ("video", "caption") if not isinstance(raw.get(key), str) or not raw[key].strip()]
        if missing:
            problems.append(f"item {index} (id={raw.get('id')!r}) has no non-empty string {' / '.join(missing)}")
            continue
        # The published files carry an id; fall back to the video path so every row stays addressable.
        item_id = str(raw["id"]) if raw.get("id") is not None else raw["video"]
        if item_id in seen_ids:
            problems.append(f"item {index} repeats id {item_id!r}")
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


def _init_worker(detector: str) -> None:
    global _WORKER_TRACKER
    from facetrack.processing.face_tracking import FaceTracker

    _WORKER_TRACKER = FaceTracker(detector=detector)


def _track_one(task: tuple[str, int]) -> TrackOutcome:
    video_path, num_frames = task
    from facetrack.processing.video_io import VideoDecodeError, load_video

    if not os.path.isfile(video_path):
        return TrackOutcome(status="missing", reason=f"video file not found: {video_path}")
    try:
        clip = load_video(video_path, num_frames=num_frames)
    except (VideoDecodeError, OSError, RuntimeError) as error:
        return TrackOutcome(status="unreadable", reason=f"{type(error).__name__}: {error}")
    try:
        result = _WORKER_TRACKER.track(clip)
    except Exception as error:  # noqa: BLE001 - one clip's detector failure must not stop a 5,000-clip build
        return TrackOutcome(status="error", reason=f"face tracking failed: {type(error).__name__}: {error}")
    if result.main_track_id is None or not bool(result.present.any()):
        return TrackOutcome(status="no_face", reason=result.reason or "no face found", face_track=result.to_dict())
    return TrackOutcome(status="ok", face_track=result.to_dict())


def _track_all(video_paths: list[str], num_frames: int, num_proc: int, detector: str) -> list[TrackOutcome]:
    from tqdm.auto import tqdm

    tasks = [(path, num_frames) for path in video_paths]
    progress = dict(total=len(tasks), desc="Tracking faces", unit="clip")
    if num_proc == 1:
        _init_worker(detector)
        return [_track_one(task) for task in tqdm(tasks, **progress)]
    # "spawn": onnxruntime and torch thread pools are not fork-safe once initialised in the parent.
    context = multiprocessing.get_context("spawn")
    with context.Pool(num_proc, initializer=_init_worker, initargs=(detector,)) as pool:
        return list(tqdm(pool.imap(_track_one, tasks, chunksize=1), **progress))


# ---------------------------------------------------------------------------------------------------------------
# Writing: parquet shards with embedded videos, the dataset card, the report
# ---------------------------------------------------------------------------------------------------------------


def _write_shards(rows: list[dict[str, Any]], out_dir: Path, split: str, max_shard_bytes: int) -> list[str]:
    """Write rows to `data/{split}-XXXXX-of-YYYYY.parquet`, reading each video's bytes only when its shard is written
    so memory holds one shard at a time."""
    import pyarrow as pa
    from datasets import Dataset
    from datasets.table import InMemoryTable

    features = dataset_features()
    data_dir = out_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    for old_shard in data_dir.glob(f"{split}-*.parquet"):
        old_shard.unlink()  # a rebuild of this split replaces it entirely

    # Group rows into shards by video file size.
    shard_groups: list[list[dict[str, Any]]] = [[]]
    shard_bytes = 0
    for row in rows:
        size = os.path.getsize(row["video_file"])
        if shard_groups[-1] and shard_bytes + size > max_shard_bytes:
            shard_groups.append([])
            shard_bytes = 0
        shard_groups[-1].append(row)
        shard_bytes += size

    shard_names = []
    for index, group in enumerate(shard_groups):
        records = []
        for row in group:
            record = {key: value for key, value in row.items() if key != "video_file"}
            # Bytes embedded, path kept as the annotation's relative path (tells decoders the container format).
            record["video"] = {"bytes": Path(row["video_file"]).read_bytes(), "path": row["video"]}
            records.append(record)
        # Built straight from Arrow: `Features.encode_example` would drop the bytes of a path that exists locally.
        table = pa.Table.from_pylist(records, schema=features.arrow_schema)
        name = f"data/{split}-{index:05d}-of-{len(shard_groups):05d}.parquet"
        Dataset(InMemoryTable(table)).to_parquet(str(out_dir / name))
        shard_names.append(name)
    return shard_names


def _split_sizes(out_dir: Path) -> dict[str, dict[str, int]]:
    """Per split present in the folder: rows, uncompressed bytes and file bytes, read from the parquet footers."""
    import pyarrow.parquet as pq

    sizes: dict[str, dict[str, int]] = {}
    for shard in sorted((out_dir / "data").glob("*.parquet")):
        metadata = pq.ParquetFile(shard).metadata
        split = sizes.setdefault(shard.name.split("-")[0], {"num_examples": 0, "num_bytes": 0, "file_bytes": 0})
        split["num_examples"] += metadata.num_rows
        split["num_bytes"] += sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
        split["file_bytes"] += shard.stat().st_size
    return sizes


def write_dataset_card(out_dir: str | os.PathLike, license: str = "other", pretty_name: str = "FDA (DFEC)") -> Path:
    """Write README.md with the YAML the Hub and `load_dataset` read (`license`, `configs`, `dataset_info`) and the
    documentation of columns, prompts and face tracks. Covers every split present in `out_dir/data`."""
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard, DatasetCardData

    out_dir = Path(out_dir)
    split_sizes = _split_sizes(out_dir)
    card_data = DatasetCardData(
        license=license,
        pretty_name=pretty_name,
        task_categories=["video-text-to-text"],
        language=["en"],
        tags=["facial-expression", "video-captioning", "face-tracking", "instruction-tuning"],
    )
    info = DatasetInfo(
        features=dataset_features(),
        download_size=sum(size["file_bytes"] for size in split_sizes.values()),
        dataset_size=sum(size["num_bytes"] for size in split_sizes.values()),
    )
    info.splits = SplitDict(
        {
            name: SplitInfo(name=name, num_examples=size["num_examples"], num_bytes=size["num_bytes"])
            for name, size in split_sizes.items()
        }
    )
    DatasetInfosDict({"default": info}).to_dataset_card_data(card_data)
    data_files = [{"split": name, "path": SHARD_PATTERN.format(split=name)} for name in split_sizes]
    MetadataConfigs({"default": {"data_files": data_files}}).to_dataset_card_data(card_data)

    prompts = "\n".join(f"{index}. {prompt}" for index, prompt in enumerate(INSTRUCTION_TEMPLATES))
    splits = "\n".join(f"| {name} | {size['num_examples']} |" for name, size in split_sizes.items())
    body = f"""
# {pretty_name}: dynamic facial expression captions with precomputed face tracks

Video clips with a caption of how the main character's facial expression changes over time, in the format of
FDA/DFEC ("Facial Dynamics in Video: Instruction Tuning for Improved Facial Expression Perception and Contextual
Awareness", arXiv 2501.07978), built by `facetrack dataset build` (FaceTrack-MM).

| split | rows |
|---|---|
{splits}

## Columns
- `id` (string): the annotation id.
- `video` (Video): the clip, embedded (`{{"bytes", "path"}}`; `path` is the path in the source annotation file).
  datasets 5 decodes `Video` with torchcodec; without it, use `ds.cast_column("video", Video(decode=False))` and
  `facetrack.dataset_builder.load_example_video(row["video"], row["face_track"])`.
- `caption` (string): the reference description.
- `instruction` (string): the user prompt of this row.
- `messages` (list): the chat-format conversation for instruction tuning: user = video + instruction,
  assistant = caption.
- `face_track` (string): JSON of `FaceTrackResult.to_dict()`: the sampled frame indices and timestamps, the main
  character's box per frame (`null` where the face is missing), every track's boxes, and why the main track was
  chosen. Training decodes exactly these frames and crops these boxes instead of running face detection.
- `has_face` (bool): False when no face was found; such rows are kept with an empty main track.

## Instruction prompts
One template per row, chosen by a SHA-256 hash of the id (deterministic). Template 0 is the evaluation prompt
used on FEC-Bench.

{prompts}

## Build report
`build_report.json` lists, per split, the rows dropped because their video was missing or could not be decoded,
and the rows kept without a face.

## License
The captions follow the license of the annotation source; the videos come from their source datasets (CAER,
RAVDESS, DFEW, MER24, MAFW, AFEW-VA, FERV39k), each under its own, often research-only, terms. Check them before
redistribution.
"""
    card = DatasetCard.from_template(card_data, template_str="---\n{{ card_data }}\n---\n" + body)
    card_path = out_dir / "README.md"
    card.save(card_path)
    return card_path


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
) -> BuildReport:
    """Build (or rebuild) one split of the dataset folder. Returns the split's report, also saved in
    `out_dir/build_report.json` beside the other splits' reports."""
    from datasets.utils.py_utils import convert_file_size_to_int

    video_root = Path(video_root)
    out_dir = Path(out_dir)
    _check_build_arguments(video_root, split, num_frames, num_proc)
    items = read_annotations(annotations_path)
    max_shard_bytes = convert_file_size_to_int(max_shard_size)

    video_files = [str(video_root / item.video) for item in items]
    outcomes = _track_all(video_files, num_frames=num_frames, num_proc=num_proc, detector=detector)

    report = BuildReport(split=split, num_input=len(items))
    rows = []
    for item, video_file, outcome in zip(items, video_files, outcomes):
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
                "video_file": video_file,
                "caption": item.caption,
                "instruction": instruction,
                "messages": build_messages(instruction, item.caption),
                "face_track": json.dumps(outcome.face_track),
                "has_face": outcome.status == "ok",
            }
        )
    if not rows:
        raise DatasetBuildError(
            f"none of the {len(items)} items of {annotations_path} has a readable video under {video_root} "
            f"(first problem: {report.dropped[0]['reason']})"
        )

    out_dir.mkdir(parents=True, exist_ok=True)
    report.shards = _write_shards(rows, out_dir, split, max_shard_bytes)
    report.num_written = len(rows)

    report_path = out_dir / REPORT_FILENAME
    all_reports = json.loads(report_path.read_text()) if report_path.is_file() else {}
    all_reports[split] = report.to_dict()
    report_path.write_text(json.dumps(all_reports, indent=2))
    write_dataset_card(out_dir, license=license)
    return report


def push_dataset(out_dir: str | os.PathLike, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Upload the built folder as a dataset repo (parquet shards, README.md, build_report.json). Returns the URL."""
    from .hub import upload_to_hub

    out_dir = Path(out_dir)
    if not (out_dir / "README.md").is_file() or not list((out_dir / "data").glob("*.parquet")):
        raise DatasetBuildError(f"{out_dir} is not a built dataset folder (no README.md or data/*.parquet)")
    commit = upload_to_hub(
        out_dir,
        repo_id,
        "dataset",
        private=private,
        commit_message="Upload dataset built with facetrack dataset build",
        allow_patterns=["README.md", REPORT_FILENAME, "data/*.parquet"],
        token=token,
    )
    return str(getattr(commit, "repo_url", None) or f"https://huggingface.co/datasets/{repo_id}")


# ---------------------------------------------------------------------------------------------------------------
# Reading rows back (training, evaluation)
# ---------------------------------------------------------------------------------------------------------------


def load_example_video(
    video: dict[str, Any] | str, face_track: str | dict | None = None, num_frames: int | None = None
):
    """Decode one row's video into a `VideoClip` and its `FaceTrackResult`.

    `video` is the row's `{"bytes", "path"}` (the column cast to `Video(decode=False)`) or a file path. With a face
    track, exactly its frames are decoded (the boxes refer to them); `num_frames` then picks that many of them
    uniformly and must not exceed the number tracked. Without one, `num_frames` frames are sampled uniformly and the
    returned track is None.
    """
    from facetrack.processing.face_tracking import FaceTrackResult
    from facetrack.processing.video_io import load_video

    track = None
    if face_track is not None:
        track_dict = json.loads(face_track) if isinstance(face_track, str) else face_track
        if num_frames is not None and num_frames != len(track_dict["frames"]):
            track_dict = subsample_track(track_dict, num_frames)
        track = FaceTrackResult.from_dict(track_dict)

    with video_file(video) as video_path:
        if track is not None:
            clip = load_video(video_path, num_frames=None, frame_indices=[frame.frame_index for frame in track.frames])
        else:
            clip = load_video(video_path, num_frames=num_frames or 32)
    return clip, track


def subsample_track(track: dict[str, Any], num_frames: int) -> dict[str, Any]:
    """A face track (`FaceTrackResult.to_dict()`) restricted to `num_frames` of its frames, picked uniformly."""
    total = len(track["frames"])
    if num_frames > total:
        raise DatasetBuildError(
            f"{num_frames} frames requested but the precomputed face track has {total}; rebuild the dataset with "
            f"--num-frames {num_frames}"
        )
    keep = [round(i * (total - 1) / max(num_frames - 1, 1)) for i in range(num_frames)]
    subset = dict(track)
    subset["frames"] = [track["frames"][i] for i in keep]
    for key in ("tracks", "track_scores"):  # per person, one value per frame (track_scores: format version 2)
        if key in track:
            subset[key] = {person: [values[i] for i in keep] for person, values in track[key].items()}
    return subset


class video_file:
    """Context manager giving a file path for a video given as a path or as `{"bytes", "path"}` (bytes go to a
    temporary file, since the decoders want a path)."""

    def __init__(self, video: dict[str, Any] | str):
        self.video = video
        self.temp_path: str | None = None

    def __enter__(self) -> str:
        if isinstance(self.video, (str, os.PathLike)):
            return str(self.video)
        if not isinstance(self.video, dict) or (self.video.get("bytes") is None and self.video.get("path") is None):
            raise DatasetBuildError(f"expected a video path or a {{'bytes', 'path'}} dict, got {type(self.video)}")
        if self.video.get("bytes") is None:
            return self.video["path"]
        suffix = Path(self.video.get("path") or "video.mp4").suffix or ".mp4"
        handle, self.temp_path = tempfile.mkstemp(suffix=suffix, prefix="facetrack-")
        with os.fdopen(handle, "wb") as file:
            file.write(self.video["bytes"])
        return self.temp_path

    def __exit__(self, *exc_info) -> None:
        if self.temp_path is not None:
            os.unlink(self.temp_path)


def load_built_dataset(path: str | os.PathLike, split: str | None = None):
    """`load_dataset(path)` with the video column cast to `Video(decode=False)` (bytes for decord/PyAV)."""
    from datasets import Video, load_dataset

    dataset = load_dataset(str(path), split=split)
    return dataset.cast_column("video", Video(decode=False))


__all__ = [
    "EVALUATION_PROMPT",
    "INSTRUCTION_TEMPLATES",
    "AnnotationItem",
    "BuildReport",
    "DatasetBuildError",
    "build_dataset",
    "build_messages",
    "dataset_features",
    "instruction_for",
    "load_built_dataset",
    "load_example_video",
    "push_dataset",
    "read_annotations",
    "subsample_track",
    "video_file",
    "write_dataset_card",
]
