"""Writing the dataset release folder so that an interrupted build (Ctrl-C, kill -9, a full disk) loses nothing and
lets nothing half-written in: `load_dataset(folder)` sees the split as it was or as it is rebuilt, never a mix.

How (`facetrack.data.build.build_dataset` calls these in this order):
1. `recover(out_dir)`: finish or discard what an interrupted build left (below).
2. `write_shards(...)`: the new split's parquet shards go to `data/` under names of their own,
   `data/{split}-{build_id}-{i:05d}-of-{n:05d}.parquet`. Nothing references them yet, so a reader never sees them
   and a half-written one is harmless. New names also mean a new `datasets` cache entry: a warm cache can never
   serve the previous build's rows for the new files.
3. `commit_split(...)`: the new dataset card (`README.md`, whose `configs` list every split's exact shard files)
   and `build_report.json` are written complete into `.facetrack-staging/{split}-{build_id}/`, sealed with a
   `READY` file, then moved over the old ones with `os.replace` (atomic): the README first (the commit point: it is
   what `load_dataset` reads), the report right after. Only then are the split's old shards deleted.

Recovery: a staging folder without `READY`, or whose README was never moved, is discarded with its build's shards
(the old split stays, whole). One whose README was moved had committed: its report is moved too if it is still
there, and the old shards are deleted. Shards no card references are deleted. So the next build (or a rerun of the
interrupted one) starts from a consistent folder, and its result is the same as that of a build never interrupted.
One build at a time writes a folder (an exclusive lock on `.facetrack-build.lock`; a second build fails at once).
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

REPORT_FILENAME = "build_report.json"
CARD_FILENAME = "README.md"
STAGING_DIRNAME = ".facetrack-staging"
LOCK_FILENAME = ".facetrack-build.lock"
READY_FILENAME = "READY"
SHARD_NAME = "data/{split}-{build_id}-{index:05d}-of-{count:05d}.parquet"


class ReleaseLockedError(RuntimeError):
    """Another build is writing the same dataset folder."""


def new_build_id() -> str:
    """Sortable by time, unique across machines: 20261201T224512-3f9a."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


class release_lock:
    """Exclusive lock on the folder for the duration of a build (released by the OS if the process dies)."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / LOCK_FILENAME
        self.handle = None

    def __enter__(self) -> "release_lock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "a+")
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, as before
            return self
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise ReleaseLockedError(
                f"another `facetrack dataset build` is writing {self.path.parent}; wait for it to finish"
            ) from None
        except OSError:  # a file system without locks (some network mounts): carry on unlocked
            pass
        return self

    def __exit__(self, *exc_info) -> None:
        self.handle.close()  # closing releases the lock


def _fsync_dir(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _write_durably(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())


# ------------------------------------------------------------------------------------------------- what is live
def split_files(out_dir: Path) -> dict[str, list[str]]:
    """Each split's shard files (paths relative to out_dir) as the live dataset card lists them; {} without one.
    Glob patterns (cards written by earlier versions) are expanded."""
    card = out_dir / CARD_FILENAME
    if not card.is_file():
        return {}
    import yaml

    text = card.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return {}
    metadata = yaml.safe_load(text.split("---", 2)[1]) or {}
    files: dict[str, list[str]] = {}
    for config in metadata.get("configs") or []:
        for entry in config.get("data_files") or []:
            patterns = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
            found = []
            for pattern in patterns:
                matches = sorted(glob.glob(str(out_dir / pattern)))
                found.extend(Path(match).relative_to(out_dir).as_posix() for match in matches)
            files[entry["split"]] = found
    return files


def read_reports(out_dir: Path) -> dict[str, Any]:
    report_path = out_dir / REPORT_FILENAME
    return json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else {}


def _remove_unreferenced_shards(out_dir: Path) -> None:
    referenced = {name for names in split_files(out_dir).values() for name in names}
    for shard in (out_dir / "data").glob("*.parquet"):
        if shard.relative_to(out_dir).as_posix() not in referenced:
            shard.unlink()


# ------------------------------------------------------------------------------------------------------ recovery
def recover(out_dir: Path) -> list[str]:
    """Finish or discard what interrupted builds left in out_dir (see the module docstring); returns what was done,
    one line each."""
    done = []
    staging_root = out_dir / STAGING_DIRNAME
    for staging in sorted(staging_root.glob("*")) if staging_root.is_dir() else []:
        committed = (staging / READY_FILENAME).is_file() and not (staging / CARD_FILENAME).exists()
        if committed:
            if (staging / REPORT_FILENAME).is_file():
                os.replace(staging / REPORT_FILENAME, out_dir / REPORT_FILENAME)
            done.append(f"finished the interrupted commit of build {staging.name}")
        else:
            done.append(f"discarded the unfinished build {staging.name}")
        shutil.rmtree(staging)
    if (out_dir / "data").is_dir():
        before = set((out_dir / "data").glob("*.parquet"))
        _remove_unreferenced_shards(out_dir)
        removed = before - set((out_dir / "data").glob("*.parquet"))
        if removed:
            done.append(f"removed {len(removed)} shard(s) no dataset card references")
    if staging_root.is_dir() and not any(staging_root.iterdir()):
        staging_root.rmdir()
    return done


# ------------------------------------------------------------------------------------------------------- writing
def write_shards(
    rows: list[dict[str, Any]], out_dir: Path, split: str, build_id: str, max_shard_bytes: int, features
) -> list[str]:
    """Write rows as parquet shards (videos embedded) under this build's own names; returns their paths relative to
    out_dir. Each video's bytes are read only when its shard is written, so memory holds one shard at a time."""
    import pyarrow as pa
    from datasets import Dataset
    from datasets.table import InMemoryTable

    (out_dir / "data").mkdir(parents=True, exist_ok=True)
    shard_groups: list[list[dict[str, Any]]] = [[]]
    shard_bytes = 0
    for row in rows:  # cut shards by video file size, as push_to_hub does
        size = os.path.getsize(row["video_file"])
        if shard_groups[-1] and shard_bytes + size > max_shard_bytes:
            shard_groups.append([])
            shard_bytes = 0
        shard_groups[-1].append(row)
        shard_bytes += size

    names = []
    for index, group in enumerate(shard_groups):
        records = []
        for row in group:
            record = {key: value for key, value in row.items() if key != "video_file"}
            # Bytes embedded, path kept as the annotation's relative path (tells decoders the container format).
            record["video"] = {"bytes": Path(row["video_file"]).read_bytes(), "path": row["video"]}
            records.append(record)
        # Built straight from Arrow: `Features.encode_example` would drop the bytes of a path that exists locally.
        table = pa.Table.from_pylist(records, schema=features.arrow_schema)
        name = SHARD_NAME.format(split=split, build_id=build_id, index=index, count=len(shard_groups))
        Dataset(InMemoryTable(table)).to_parquet(str(out_dir / name))
        names.append(name)
    return names


def commit_split(
    out_dir: Path, split: str, build_id: str, shards: list[str], report: dict[str, Any], write_card
) -> None:
    """Make the new split live: stage the card and the report, then move them into place (README first).
    `write_card(path, split_files)` writes the dataset card for the given split -> files mapping to `path`."""
    files = split_files(out_dir)
    files[split] = shards
    reports = read_reports(out_dir)
    reports[split] = report

    staging = out_dir / STAGING_DIRNAME / f"{split}-{build_id}"
    staging.mkdir(parents=True)
    write_card(staging / CARD_FILENAME, files)
    with open(staging / CARD_FILENAME, "rb+") as file:
        os.fsync(file.fileno())
    _write_durably(staging / REPORT_FILENAME, json.dumps(reports, indent=2))
    _write_durably(staging / READY_FILENAME, build_id)
    _fsync_dir(staging)

    os.replace(staging / CARD_FILENAME, out_dir / CARD_FILENAME)  # the commit point
    os.replace(staging / REPORT_FILENAME, out_dir / REPORT_FILENAME)
    _fsync_dir(out_dir)
    _remove_unreferenced_shards(out_dir)  # the split's previous shards
    shutil.rmtree(staging)
    if not any((out_dir / STAGING_DIRNAME).iterdir()):
        (out_dir / STAGING_DIRNAME).rmdir()


def release_files(out_dir: Path) -> list[str]:
    """The files a release consists of (what `push` uploads): the card, the report and every referenced shard."""
    files = [CARD_FILENAME] + ([REPORT_FILENAME] if (out_dir / REPORT_FILENAME).is_file() else [])
    return files + [name for names in split_files(out_dir).values() for name in names]
