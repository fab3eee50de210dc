"""The clips a build has finished, kept as they finish, so that an interrupted build (kill -9 of the driver, a lost
node) goes on where it stopped and ends with the release an uninterrupted build writes.

    OUT/.facetrack-work/{split}-{settings key}/{key[:2]}/{key}.parquet     one clip's outcome (clips.part_schema)

- The driver writes each part as its result arrives, from whichever engine: under a temporary name, flushed, then
  renamed, so a kill leaves a whole part or none. A task whose part exists is not run again.
- `key` names the task: the video's relative path, the clip number, and the video file's size and modification
  time when the build listed it, so a video changed since is done again. The settings key names everything that
  shapes a clip (clips.ClipSettings, the rewriter and its prompt version, facetrack's version): a build with other
  settings never reuses these parts.
- The release is then written from the parts in the order of the input (video path, clip number), cut into shards
  by size (`write_clip_shards`): the same parts give the same shards, whatever order they finished in.
- Once the split is committed its work folders go (`remove_work`): only part files and folders of this layout.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

WORK_DIRNAME = ".facetrack-work"
_PART_NAME = re.compile(r"[0-9a-f]{32}\.parquet(\.tmp)?")


def task_key(video: str, clip: int, size: int, mtime_ns: int) -> str:
    text = json.dumps([video, clip, size, mtime_ns])
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def settings_key(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()[:16]


class PartStore:
    """The finished clips of one split built with one set of settings (see the module docstring)."""

    def __init__(self, out_dir: Path, split: str, settings: dict[str, Any]):
        self.folder = Path(out_dir) / WORK_DIRNAME / f"{split}-{settings_key(settings)}"

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.parquet"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def save(self, key: str, data: bytes) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)

    def read(self, keys: list[str], columns: list[str] | None = None):
        """The parts of `keys`, in that order, as one Arrow table (only `columns`, when given)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from facetrack.data.clips import part_schema

        schema = part_schema()
        if columns is not None:
            schema = pa.schema([schema.field(name) for name in columns])
        tables = [pq.read_table(self.path(key), columns=columns) for key in keys]
        return pa.concat_tables([table.cast(schema) for table in tables]) if tables else schema.empty_table()


def write_clip_shards(store: PartStore, keys: list[str], sizes: list[int], out_dir: Path, split: str, build_id: str,
                      max_shard_bytes: int, features) -> list[str]:
    """The clips of `keys` (in this order; their videos' `sizes`) written as the split's shards under this build's
    names (`release.SHARD_NAME`); returns their paths relative to out_dir. One shard's rows in memory at a time."""
    import pyarrow as pa
    from datasets import Dataset
    from datasets.table import InMemoryTable

    from facetrack.data.release import SHARD_NAME, group_shards

    (out_dir / "data").mkdir(parents=True, exist_ok=True)
    groups = group_shards(sizes, max_shard_bytes)
    names = []
    for index, group in enumerate(groups):
        parts = store.read([keys[position] for position in group], columns=list(features))
        table = pa.Table.from_batches(parts.to_batches(), schema=parts.schema).cast(features.arrow_schema)
        name = SHARD_NAME.format(split=split, build_id=build_id, index=index, count=len(groups))
        Dataset(InMemoryTable(table)).to_parquet(str(out_dir / name))
        names.append(name)
    return names


def remove_work(out_dir: Path, split: str) -> None:
    """Delete the split's work folders (every settings key): their part files, then the folders left empty. Files
    of any other name are kept, and so are the folders holding them."""
    root = Path(out_dir) / WORK_DIRNAME
    if not root.is_dir():
        return
    for work in root.glob(f"{split}-*"):
        if not re.fullmatch(rf"{re.escape(split)}-[0-9a-f]{{16}}", work.name) or not work.is_dir():
            continue
        for bucket in work.iterdir():
            if bucket.is_dir() and not bucket.is_symlink() and re.fullmatch(r"[0-9a-f]{2}", bucket.name):
                for part in bucket.iterdir():
                    if _PART_NAME.fullmatch(part.name) and part.is_file() and not part.is_symlink():
                        part.unlink()
                _remove_if_empty(bucket)
        _remove_if_empty(work)
    _remove_if_empty(root)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty (something of someone else's), or gone
        pass
