"""Reading a dataset built by `facetrack dataset build` back, for training and evaluation.

- The `video` column is read as `Video(decode=False)`: `{"bytes", "path"}` per row, the bytes embedded in the
  parquet. `load_video` decodes them from memory (decord or PyAV, through `facetrack.video.decode`): no
  temporary file.
- The `face_track` column is a JSON string (`FaceTrackResult.to_dict()`; see `dataset_builder`). A training split
  parses each row's track once: the check before the model loads (`load_training_splits`) parses and checks every
  row, and the split it returns hands that parse out again, as a dict, every time the row is read (a datasets
  transform, `ParsedFaceTracks`), so the collator never parses. The parquet files, videos included, are read as
  they are, never rewritten.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

from facetrack.training.config import ScriptArguments, TrainingSetupError

REQUIRED_COLUMNS = ("video", "messages", "face_track")
ROW_COLUMN = "facetrack_row"  # a row's position in its split: what ParsedFaceTracks keeps each parse under


# ---------------------------------------------------------------------------------------------------------------
# Rows of any built split
# ---------------------------------------------------------------------------------------------------------------


def load_built_dataset(path: str | os.PathLike, split: str | None = None):
    """`load_dataset(path)` with the video column cast to `Video(decode=False)` (bytes for decord/PyAV)."""
    from datasets import Video, load_dataset

    dataset = load_dataset(str(path), split=split)
    return dataset.cast_column("video", Video(decode=False))


def row_video(video: dict[str, Any] | str | os.PathLike, video_root: str | os.PathLike | None = None):
    """What `load_video` reads for a row's `video`: its embedded bytes as an in-memory file (named by the row's
    `path`, so decoding errors name the clip); a plain path (a caller's own file, not a row) as it is.

    A row without bytes is read from its `path` only when that is a relative path to a file inside `video_root`
    (the dataset's own folder), checked on the open file (`dataset_builder.read_inside`): a path in a dataset row
    never makes facetrack open a file elsewhere (`/etc/passwd`). Otherwise DatasetBuildError names the path."""
    from facetrack.data.build import DatasetBuildError

    if isinstance(video, (str, os.PathLike)):
        return video
    if not isinstance(video, dict) or (video.get("bytes") is None and video.get("path") is None):
        raise DatasetBuildError(f"expected a video path or a {{'bytes', 'path'}} dict, got {type(video)}")
    data = video.get("bytes")
    if data is None:
        data = read_row_file(video["path"], video_root)
    file = io.BytesIO(data)
    if isinstance(video.get("path"), str) and video["path"]:
        file.name = video["path"]
    return file


def row_file_problem(path: Any, video_root: str | os.PathLike | None) -> tuple[Any, str] | None:
    """(the file, None) when a row's video `path` (a row without bytes) names a file inside `video_root`, else
    (None, why not)."""
    from facetrack.data.build import _is_absolute, _resolve_item

    if video_root is None:
        return None, (f"its video has no embedded bytes (path {path!r}), and facetrack reads a row's video only from "
                      "its bytes or from a relative path inside the dataset's own folder")
    if not isinstance(path, str) or not path:
        return None, f"its video has no embedded bytes and no path (got {path!r})"
    if _is_absolute(path):
        return None, (f"its video has no embedded bytes and its path {path!r} is absolute: only a relative path "
                      "inside the dataset's folder is read")
    from pathlib import Path

    resolved, status, reason = _resolve_item(Path(video_root), path)
    if resolved is None:
        return None, f"its video has no embedded bytes and its path is not read: {reason}"
    if not resolved.is_file():
        return None, f"its video has no embedded bytes and its path {path!r} is not a file in the dataset's folder"
    return resolved, None


def read_row_file(path: Any, video_root: str | os.PathLike | None) -> bytes:
    """The bytes of a row's relative video `path`, read inside `video_root` (see `row_video`)."""
    from pathlib import Path

    from facetrack.data.build import DatasetBuildError, _ItemProblem, read_inside

    resolved, problem = row_file_problem(path, video_root)
    if problem:
        raise DatasetBuildError(problem)
    try:
        return read_inside(Path(video_root), resolved, path)
    except _ItemProblem as error:
        raise DatasetBuildError(f"its video has no embedded bytes and its path is not read: {error.reason}") from None


def subsample_track(track: dict[str, Any], num_frames: int) -> dict[str, Any]:
    """A face track (`FaceTrackResult.to_dict()`) restricted to `num_frames` of its frames, picked uniformly."""
    from facetrack.data.build import DatasetBuildError
    from facetrack.video.decode import uniform_indices

    total = len(track["frames"])
    if num_frames > total:
        raise DatasetBuildError(
            f"{num_frames} frames requested but the precomputed face track has {total}; rebuild the dataset with "
            f"--num-frames {num_frames}"
        )
    keep = uniform_indices(total, num_frames)
    subset = dict(track)
    subset["frames"] = [track["frames"][i] for i in keep]
    for key in ("tracks", "track_scores"):  # per person, one value per frame (track_scores: format version 2)
        if key in track:
            subset[key] = {person: [values[i] for i in keep] for person, values in track[key].items()}
    if track.get("expressions"):  # format version 3: the kept frames' timelines, their events re-derived
        from facetrack.expressions.report import ExpressionReport

        subset["expressions"] = {person: ExpressionReport.from_dict(report).select_frames(keep).to_dict()
                                 for person, report in track["expressions"].items()}
    return subset


def track_frame_indices(track: dict[str, Any]) -> list[int]:
    """The source frames a face track was computed on (its boxes refer to them)."""
    return [frame["frame_index"] for frame in track["frames"]]


def load_example_video(
    video: dict[str, Any] | str, face_track: str | dict | None = None, num_frames: int | None = None
):
    """Decode one row's video into a `VideoClip` and its `FaceTrackResult`.

    `video` is the row's `{"bytes", "path"}` (the column cast to `Video(decode=False)`) or a file path. With a face
    track, exactly its frames are decoded (the boxes refer to them); `num_frames` then picks that many of them
    uniformly and must not exceed the number tracked. Without one, `num_frames` frames are sampled uniformly and the
    returned track is None.
    """
    from facetrack.analysis.video_analysis import read_face_track
    from facetrack.video.decode import load_video

    if face_track is None:
        return load_video(row_video(video), num_frames=num_frames or 32), None
    track = json.loads(face_track) if isinstance(face_track, str) else face_track
    if num_frames is not None and num_frames != len(track["frames"]):
        track = subsample_track(track, num_frames)
    clip = load_video(row_video(video), num_frames=None, frame_indices=track_frame_indices(track))
    return clip, read_face_track(track)


# ---------------------------------------------------------------------------------------------------------------
# Training splits: checked before the model loads, each track parsed once
# ---------------------------------------------------------------------------------------------------------------


class ParsedFaceTracks:
    """A datasets transform (`Dataset.with_transform`): a row's `face_track` as a dict, parsed the first time the row
    is read (by the check before training) and handed out again after that. The parses are a cache: pickling
    (datasets' fingerprint, dataloader workers started by spawning) leaves them out, so a fresh process parses each
    row once again; forked workers share the parent's."""

    def __init__(self, video_root: str | os.PathLike | None = None) -> None:
        self.parsed: dict[int, dict[str, Any]] = {}
        self.video_root = video_root  # a row without bytes is read from a relative path inside it (row_video)

    def __getstate__(self) -> dict:
        return {"video_root": self.video_root}

    def __setstate__(self, state: dict) -> None:
        self.parsed = {}
        self.video_root = state.get("video_root")

    def parse(self, row: int, face_track: str) -> dict[str, Any]:
        """Row `row`'s track (raises ValueError when `face_track` is not JSON, or nested too deeply to parse). The
        dict is shared: never change it."""
        track = self.parsed.get(row)
        if track is None:
            try:
                track = json.loads(face_track)
            except RecursionError:
                raise ValueError("nested too deeply to parse") from None
            self.parsed[row] = track
        return track

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        if ROW_COLUMN in batch:  # (a query for single columns leaves the row position out: nothing to do)
            rows = batch.pop(ROW_COLUMN)
            batch["face_track"] = [self.parse(row, text) for row, text in zip(rows, batch["face_track"])]
            if "video" in batch:  # rows without bytes: read from inside the dataset folder, or refused by row
                batch["video"] = [self._video(row, video) for row, video in zip(rows, batch["video"])]
        return batch

    def _video(self, row: int, video):
        if not isinstance(video, dict) or video.get("bytes") is not None:
            return video
        from facetrack.data.build import DatasetBuildError

        try:
            return {"bytes": read_row_file(video.get("path"), self.video_root), "path": video.get("path")}
        except DatasetBuildError as error:
            raise TrainingSetupError(f"row {row}: {error}") from None


def load_training_splits(script_args: ScriptArguments):
    """(train, eval or None): the dataset's splits with the video column as bytes (decoded by the collator) and each
    row's face track parsed and checked once, before the model loads."""
    from datasets import load_dataset
    from datasets.exceptions import DataFilesNotFoundError, DatasetGenerationError, DatasetNotFoundError

    name = script_args.dataset_name
    if name is None:
        raise TrainingSetupError("dataset_name is required: a folder built by `facetrack dataset build` or a repo id")
    problem = data_file_problem(name)  # an empty or broken parquet file of a local folder: named before loading
    if problem:
        raise TrainingSetupError(problem)
    try:
        dataset_dict = load_dataset(name)
    except (FileNotFoundError, DatasetNotFoundError, DataFilesNotFoundError) as error:
        raise TrainingSetupError(f"cannot load dataset {name!r}: {error}") from error
    except DatasetGenerationError as error:  # any other file it cannot read: one line with the cause
        raise TrainingSetupError(
            f"cannot load dataset {name!r}: {error}: {type(error.__cause__).__name__}: {error.__cause__}"
        ) from None
    video_root = name if os.path.isdir(name) else None  # path-only rows are read from inside this folder only

    def split(split_name: str, limit: int | None):
        if split_name not in dataset_dict:
            raise TrainingSetupError(f"{name} has no split {split_name!r} (has {list(dataset_dict)})")
        return training_split(dataset_dict[split_name], f"{name} split {split_name!r}", limit, script_args.num_frames,
                              video_root=video_root)

    train = split(script_args.dataset_train_split, script_args.max_train_samples)
    evaluation = split(script_args.dataset_eval_split, script_args.max_eval_samples) if script_args.dataset_eval_split \
        else None
    return train, evaluation


def data_file_problem(name: str) -> str | None:
    """Why `load_dataset(name)` cannot read a local folder's data files, as one line naming the split and the file
    (an empty parquet file, or one that is not parquet); None when no file tells."""
    if not os.path.isdir(name):
        return None
    import pyarrow.parquet as pq
    from datasets import load_dataset_builder

    try:
        data_files = load_dataset_builder(name).config.data_files or {}
    except Exception:  # noqa: BLE001 - only a diagnosis: the caller has its own message
        return None
    for split_name, files in data_files.items():
        for file in files:
            shown = os.path.relpath(file, name) if os.path.isabs(str(file)) else file
            if not str(file).endswith(".parquet"):
                continue
            try:
                rows = pq.ParquetFile(file).metadata.num_rows
            except Exception as error:  # noqa: BLE001 - pyarrow's errors name no file
                return f"{name} split {split_name!r}: {shown} is not a readable parquet file ({error})"
            if rows == 0:
                return (f"{name} split {split_name!r}: {shown} holds no rows; remove it (or rebuild the split with "
                        "`facetrack dataset build`)")
    return None


def training_split(dataset, where: str, limit: int | None = None, num_frames: int | None = None,
                   video_root: str | os.PathLike | None = None):
    """One split of a built dataset, ready for `FaceTrackDataCollator`: its first `limit` rows, the video column as
    `{"bytes", "path"}`, every row checked (`where` names the split in errors) and its face track parsed once.
    A row without embedded bytes must name a relative path inside `video_root` (the dataset's folder)."""
    from datasets import Video

    missing = sorted(set(REQUIRED_COLUMNS) - set(dataset.column_names))
    if missing:
        raise TrainingSetupError(f"{where} lacks column(s) {missing}: build it with `facetrack dataset build`")
    # The row positions go in as a column of their own (a table beside the parquet's: nothing is rewritten).
    dataset = dataset.add_column(ROW_COLUMN, list(range(len(dataset))))
    dataset = dataset.cast_column("video", Video(decode=False))
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    if len(dataset) == 0:
        raise TrainingSetupError(f"{where} has no rows")
    face_tracks = ParsedFaceTracks(video_root)
    check_rows(dataset, where, face_tracks, num_frames)
    return dataset.with_transform(face_tracks)


def video_problems(dataset, video_root: str | os.PathLike | None, limit: int = 5) -> list[str]:
    """Rows whose video has no embedded bytes and no relative path to a file inside `video_root`, one line each
    (at most `limit`). Reads which rows have bytes from Arrow's null bitmaps: no video is read."""
    import pyarrow.compute as pc

    problems = []
    columns = ["video"] + (["id"] if "id" in dataset.column_names else [])
    table = dataset.select_columns(columns).with_format("arrow")
    for start in range(0, len(dataset), 1000):
        batch = table[start : start + 1000]
        video = batch.column("video")
        missing = pc.or_(pc.is_null(video), pc.is_null(pc.struct_field(video, "bytes")))
        for offset in pc.indices_nonzero(missing).to_pylist() if pc.any(missing).as_py() else []:
            index = start + offset
            path = batch.column("video")[offset].as_py()
            path = path.get("path") if isinstance(path, dict) else None
            row_id = batch.column("id")[offset].as_py() if "id" in columns else None
            _, problem = row_file_problem(path, video_root)
            if problem:
                problems.append(f"row {index}" + (f" (id {row_id!r})" if row_id is not None else "") + f": {problem}")
                if len(problems) >= limit:
                    return problems
    return problems


def check_rows(dataset, where: str, face_tracks: ParsedFaceTracks, num_frames: int | None = None) -> None:
    """Every row's face track, messages and video source, checked before the model loads (the collator would fail
    on the first bad row only after the model and trainer were set up); each track is parsed here, into
    `face_tracks`. Reads the small columns only, never the videos."""
    problems = video_problems(dataset, face_tracks.video_root)
    columns = ["face_track", "messages", ROW_COLUMN] + (["id"] if "id" in dataset.column_names else [])
    for index, row in enumerate(dataset.select_columns(columns)):
        name = f"row {index}" + (f" (id {row['id']!r})" if row.get("id") is not None else "")
        try:
            track = face_tracks.parse(row[ROW_COLUMN], row["face_track"]) if isinstance(row["face_track"], str) \
                else None
        except ValueError as error:
            problems.append(f"{name}: face_track is not JSON ({error})")
            continue
        frames = track.get("frames") if isinstance(track, dict) else None
        if not isinstance(frames, list) or not frames or not isinstance(track.get("tracks"), dict) or any(
            not isinstance(frame, dict) or not isinstance(frame.get("frame_index"), int) for frame in frames
        ):
            problems.append(f"{name}: face_track is not a face track (FaceTrackResult.to_dict(): frames, tracks)")
        elif num_frames is not None and num_frames > len(frames):
            problems.append(f"{name}: num_frames={num_frames} but its face track has {len(frames)} frames")
        messages = row["messages"]
        if not messages or messages[-1].get("role") != "assistant":
            problems.append(f"{name}: messages must end with the assistant's answer")
        if len(problems) >= 5:
            break
    if problems:
        raise TrainingSetupError(
            f"{where}: {'; '.join(problems[:5])}{' (and more)' if len(problems) >= 5 else ''}; rebuild it with "
            "`facetrack dataset build`"
        )
