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


def row_video(video: dict[str, Any] | str | os.PathLike):
    """What `load_video` reads for a row's `video`: its embedded bytes as an in-memory file (named by the row's
    `path`, so decoding errors name the clip), else the file at its `path`; a plain path as it is."""
    from facetrack.data.build import DatasetBuildError

    if isinstance(video, (str, os.PathLike)):
        return video
    if not isinstance(video, dict) or (video.get("bytes") is None and video.get("path") is None):
        raise DatasetBuildError(f"expected a video path or a {{'bytes', 'path'}} dict, got {type(video)}")
    if video.get("bytes") is None:
        return video["path"]
    file = io.BytesIO(video["bytes"])
    if video.get("path"):
        file.name = video["path"]
    return file


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

    def __init__(self) -> None:
        self.parsed: dict[int, dict[str, Any]] = {}

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.parsed = {}

    def parse(self, row: int, face_track: str) -> dict[str, Any]:
        """Row `row`'s track (raises ValueError when `face_track` is not JSON). The dict is shared: never change it."""
        track = self.parsed.get(row)
        if track is None:
            track = self.parsed[row] = json.loads(face_track)
        return track

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        if ROW_COLUMN in batch:  # (a query for single columns leaves the row position out: nothing to do)
            rows = batch.pop(ROW_COLUMN)
            batch["face_track"] = [self.parse(row, text) for row, text in zip(rows, batch["face_track"])]
        return batch


def load_training_splits(script_args: ScriptArguments):
    """(train, eval or None): the dataset's splits with the video column as bytes (decoded by the collator) and each
    row's face track parsed and checked once, before the model loads."""
    from datasets import load_dataset
    from datasets.exceptions import DataFilesNotFoundError, DatasetNotFoundError

    name = script_args.dataset_name
    if name is None:
        raise TrainingSetupError("dataset_name is required: a folder built by `facetrack dataset build` or a repo id")
    try:
        dataset_dict = load_dataset(name)
    except (FileNotFoundError, DatasetNotFoundError, DataFilesNotFoundError) as error:
        raise TrainingSetupError(f"cannot load dataset {name!r}: {error}") from error

    def split(split_name: str, limit: int | None):
        if split_name not in dataset_dict:
            raise TrainingSetupError(f"{name} has no split {split_name!r} (has {list(dataset_dict)})")
        return training_split(dataset_dict[split_name], f"{name} split {split_name!r}", limit, script_args.num_frames)

    train = split(script_args.dataset_train_split, script_args.max_train_samples)
    evaluation = split(script_args.dataset_eval_split, script_args.max_eval_samples) if script_args.dataset_eval_split \
        else None
    return train, evaluation


def training_split(dataset, where: str, limit: int | None = None, num_frames: int | None = None):
    """One split of a built dataset, ready for `FaceTrackDataCollator`: its first `limit` rows, the video column as
    `{"bytes", "path"}`, every row checked (`where` names the split in errors) and its face track parsed once."""
    from datasets import Video

    missing = sorted(set(REQUIRED_COLUMNS) - set(dataset.column_names))
    if missing:
        raise TrainingSetupError(f"{where} lacks column(s) {missing}: build it with `facetrack dataset build`")
    # The row positions go in as a column of their own (a table beside the parquet's: nothing is rewritten).
    dataset = dataset.add_column(ROW_COLUMN, list(range(len(dataset))))
    dataset = dataset.cast_column("video", Video(decode=False))
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    face_tracks = ParsedFaceTracks()
    check_rows(dataset, where, face_tracks, num_frames)
    return dataset.with_transform(face_tracks)


def check_rows(dataset, where: str, face_tracks: ParsedFaceTracks, num_frames: int | None = None) -> None:
    """Every row's face track and messages, checked before the model loads (the collator would fail on the first
    bad row only after the model and trainer were set up); each track is parsed here, into `face_tracks`. Reads the
    small columns only, never the videos."""
    problems = []
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
