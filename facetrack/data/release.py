"""Writing the dataset release folder so that an interrupted build (Ctrl-C, kill -9, a full disk) loses nothing and
lets nothing half-written in: `load_dataset(folder)` sees the split as it was or as it is rebuilt, never a mix; and so
that a build never deletes or replaces a file facetrack did not write.

How (`facetrack.data.build.build_dataset` calls these in this order, holding `release_lock` throughout):
1. `recover(out_dir)`: finish or discard what an interrupted build left (below).
2. `foreign_files(out_dir)`: the card and report a build would replace must be the ones facetrack wrote (the
   record says so, below); any other is refused by name unless the caller allows it (`--overwrite`).
3. `begin_build(...)`: the build's staging folder `.facetrack-staging/{split}-{build_id}/` is made first: the record
   that the shards named after this build are facetrack's, until they are committed or discarded.
4. `write_shards(...)`: the new split's parquet shards go to `data/` under names of their own,
   `data/{split}-{build_id}-{i:05d}-of-{n:05d}.parquet`. Nothing references them yet, so a reader never sees them
   and a half-written one is harmless. New names also mean a new `datasets` cache entry: a warm cache can never
   serve the previous build's rows for the new files.
5. `commit_split(...)`: the new dataset card (`README.md`, whose `configs` list every split's exact shard files),
   `build_report.json` and the release record `.facetrack-release.json` are written complete into the staging
   folder, sealed with a `READY` file, then moved over the old ones with `os.replace` (atomic): the README first
   (the commit point: it is what `load_dataset` reads), the report and the record right after. Only then are the
   split's old shards deleted.

The record (`.facetrack-release.json`) is the release's own account of what facetrack wrote: the SHA-256 of the card
and the report it wrote, each split's shards, and the shards it replaced ("retired", deleted after the commit).
Only files it names, and shards named after a build whose staging folder exists, are ever deleted; a README.md or
build_report.json it does not vouch for (written by hand, edited since, or from another tool) is never replaced
without `overwrite`, and other files in the folder (a parquet file of another tool in `data/`) are never touched.
A release written before the record existed is adopted when its card lists exactly the shards its report records.

Recovery: a staging folder without `READY`, or whose README was never moved, is discarded with its build's shards
(the old split stays, whole). One whose README was moved had committed: its report and record are moved too if they
are still there, and the retired shards are deleted. So the next build (or a rerun of the interrupted one) starts
from a consistent folder, and its result is the same as that of a build never interrupted.
One build at a time writes a folder (an exclusive lock on `.facetrack-build.lock`; a second build fails at once).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
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
RECORD_FILENAME = ".facetrack-release.json"
SHARD_NAME = "data/{split}-{build_id}-{index:05d}-of-{count:05d}.parquet"
BUILD_ID_PATTERN = r"\d{8}T\d{6}-[0-9a-f]{4}"  # new_build_id()
STAGING_PATTERN = re.compile(rf"(?P<split>.+)-(?P<build_id>{BUILD_ID_PATTERN})")  # a staging folder's name


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


# ------------------------------------------------------------------------------------ what facetrack wrote here
def _sha256(path: Path) -> str | None:
    """The file's SHA-256, or None when it is not a regular file of its own (missing, a folder, a symlink)."""
    if path.is_symlink() or not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_shard_of(name: str, split: str, build_id: str) -> bool:
    return re.fullmatch(rf"data/{re.escape(split)}-{build_id}-\d{{5}}-of-\d{{5}}\.parquet", name) is not None


def read_record(out_dir: Path) -> dict[str, Any] | None:
    """facetrack's record of what it wrote in out_dir (the module docstring), or None when it wrote nothing there
    that it can vouch for: {"card_sha256", "report_sha256", "splits": {split: [shards]}, "retired": [shards]}."""
    path = out_dir / RECORD_FILENAME
    if path.is_file() and not path.is_symlink():
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            return None
        splits = record.get("splits") if isinstance(record, dict) else None
        if not isinstance(splits, dict) or not all(
            isinstance(names, list) and all(isinstance(name, str) and _build_id_of(name) is not None
                                            and _is_shard_of(name, split, _build_id_of(name)) for name in names)
            for split, names in splits.items()
        ):
            return None
        retired = [name for name in record.get("retired") or [] if isinstance(name, str) and _build_id_of(name)]
        return {"card_sha256": record.get("card_sha256"), "report_sha256": record.get("report_sha256"),
                "splits": {split: list(names) for split, names in splits.items()}, "retired": retired}
    return _adopted_record(out_dir)


def _build_id_of(name: str) -> str | None:
    """The build id in a shard name facetrack gives (SHARD_NAME), or None for any other name."""
    match = re.fullmatch(rf"data/[^/]+-(?P<build_id>{BUILD_ID_PATTERN})-\d{{5}}-of-\d{{5}}\.parquet", name)
    return match["build_id"] if match else None


def _adopted_record(out_dir: Path) -> dict[str, Any] | None:
    """The record of a release written before records existed: its card lists, split by split, exactly the shards its
    report says facetrack wrote (names with their build's id). Anything else is not vouched for."""
    card, report = out_dir / CARD_FILENAME, out_dir / REPORT_FILENAME
    if _sha256(card) is None or _sha256(report) is None:
        return None
    try:
        files, reports = split_files(out_dir), read_reports(out_dir)
    except Exception:  # noqa: BLE001 - any card or report facetrack cannot read is not one it wrote
        return None
    if not files or not isinstance(reports, dict) or set(files) != set(reports):
        return None
    for split, names in files.items():
        entry = reports[split]
        if not isinstance(entry, dict) or entry.get("shards") != names or not names or not all(
            _is_shard_of(name, split, str(entry.get("build_id"))) for name in names
        ):
            return None
    return {"card_sha256": _sha256(card), "report_sha256": _sha256(report), "splits": files, "retired": []}


def foreign_files(out_dir: Path) -> list[str]:
    """The files of out_dir that a build would replace (README.md, build_report.json) and that facetrack did not
    write, or that changed since it did; [] when the folder holds none."""
    record = read_record(out_dir) or {}
    foreign = []
    for name, key in ((CARD_FILENAME, "card_sha256"), (REPORT_FILENAME, "report_sha256")):
        path = out_dir / name
        if (path.exists() or path.is_symlink()) and (_sha256(path) is None or _sha256(path) != record.get(key)):
            foreign.append(name)
    return foreign


class ForeignFileError(RuntimeError):
    """A build would replace a file facetrack did not write."""


def refuse_foreign_files(out_dir: Path, overwrite: bool) -> None:
    """Raise ForeignFileError naming the first file a build would replace that facetrack did not write (unless
    `overwrite`)."""
    foreign = foreign_files(out_dir)
    if foreign and not overwrite:
        raise ForeignFileError(
            f"{out_dir / foreign[0]} was not written by `facetrack dataset build` (or was changed since): refusing to "
            "replace it; pass --overwrite to replace it (other files in the folder are kept), or choose another --out"
        )


def _remove_unreferenced_shards(out_dir: Path) -> None:
    """Delete the shards facetrack replaced (the record's "retired"): never a file the record does not name, never one
    a live split lists."""
    record = read_record(out_dir)
    if record is None:
        return
    live = {name for names in record["splits"].values() for name in names}
    for name in record["retired"]:
        if name not in live:
            (out_dir / name).unlink(missing_ok=True)


def _discard_build(out_dir: Path, split: str, build_id: str) -> int:
    """Delete the shards an uncommitted build wrote (named after its build id); returns how many."""
    removed = 0
    for shard in (out_dir / "data").glob(f"{glob.escape(split)}-{build_id}-*.parquet"):
        if _is_shard_of(shard.relative_to(out_dir).as_posix(), split, build_id) and not shard.is_dir():
            shard.unlink()
            removed += 1
    return removed


# ------------------------------------------------------------------------------------------------------ recovery
def recover(out_dir: Path) -> list[str]:
    """Finish or discard what interrupted builds left in out_dir (see the module docstring); returns what was done,
    one line each."""
    done = []
    staging_root = out_dir / STAGING_DIRNAME
    for staging in sorted(staging_root.glob("*")) if staging_root.is_dir() else []:
        committed = (staging / READY_FILENAME).is_file() and not (staging / CARD_FILENAME).exists()
        if committed:
            for name in (REPORT_FILENAME, RECORD_FILENAME):
                if (staging / name).is_file():
                    os.replace(staging / name, out_dir / name)
            done.append(f"finished the interrupted commit of build {staging.name}")
        else:
            match = STAGING_PATTERN.fullmatch(staging.name)
            removed = _discard_build(out_dir, match["split"], match["build_id"]) if match else 0
            done.append(f"discarded the unfinished build {staging.name}"
                        + (f" ({removed} shard(s))" if removed else ""))
        shutil.rmtree(staging)
    record = read_record(out_dir)
    retired = [name for name in (record or {}).get("retired", []) if (out_dir / name).exists()]
    if retired:
        _remove_unreferenced_shards(out_dir)
        done.append(f"removed {len(retired)} shard(s) an earlier build replaced")
    if staging_root.is_dir() and not any(staging_root.iterdir()):
        staging_root.rmdir()
    return done


# ------------------------------------------------------------------------------------------------------- writing
def begin_build(out_dir: Path, split: str, build_id: str) -> Path:
    """The build's staging folder, made before its first shard is written: until the build is committed or
    discarded, it is the record that the shards named after this build are facetrack's (recover deletes them)."""
    staging = out_dir / STAGING_DIRNAME / f"{split}-{build_id}"
    staging.mkdir(parents=True)
    _fsync_dir(staging.parent)
    return staging


def discard_build(out_dir: Path, split: str, build_id: str) -> None:
    """Undo a build that will not be committed: its shards and its staging folder."""
    _discard_build(out_dir, split, build_id)
    staging = out_dir / STAGING_DIRNAME / f"{split}-{build_id}"
    if staging.is_dir():
        shutil.rmtree(staging)
    if (out_dir / STAGING_DIRNAME).is_dir() and not any((out_dir / STAGING_DIRNAME).iterdir()):
        (out_dir / STAGING_DIRNAME).rmdir()


def group_shards(sizes: list[int], max_shard_bytes: int) -> list[list[int]]:
    """Positions of rows cut into shards by their videos' sizes, in order, as push_to_hub cuts them: a shard closes
    before the row that would take it over `max_shard_bytes` (a row larger than that gets a shard of its own)."""
    groups: list[list[int]] = [[]]
    shard_bytes = 0
    for position, size in enumerate(sizes):
        if groups[-1] and shard_bytes + size > max_shard_bytes:
            groups.append([])
            shard_bytes = 0
        groups[-1].append(position)
        shard_bytes += size
    return groups


def write_shards(
    rows: list[dict[str, Any]], out_dir: Path, split: str, build_id: str, max_shard_bytes: int, features,
    read_video=None,
) -> list[str]:
    """Write rows as parquet shards (videos embedded) under this build's own names; returns their paths relative to
    out_dir. Each video's bytes are read only when its shard is written, so memory holds one shard at a time:
    `read_video(row)` gives them (default: the file at `row["video_file"]`), or None to leave the row out (the
    caller reports why). Shards are cut by `row["video_size"]` (default: the file's size)."""
    import pyarrow as pa
    from datasets import Dataset
    from datasets.table import InMemoryTable

    if read_video is None:
        def read_video(row):
            return Path(row["video_file"]).read_bytes()

    (out_dir / "data").mkdir(parents=True, exist_ok=True)
    sizes = [row["video_size"] if "video_size" in row else os.path.getsize(row["video_file"]) for row in rows]
    shard_groups = [[rows[position] for position in group] for group in group_shards(sizes, max_shard_bytes)]

    names = []
    for index, group in enumerate(shard_groups):
        records = []
        for row in group:
            data = read_video(row)
            if data is None:
                continue
            record = {key: value for key, value in row.items() if key not in ("video_file", "video_size",
                                                                              "video_sha256")}
            # Bytes embedded, path kept as the annotation's relative path (tells decoders the container format).
            record["video"] = {"bytes": data, "path": row["video"]}
            records.append(record)
        if not records:  # every row of this shard left out: no empty shard (load_dataset refuses those)
            continue
        # Built straight from Arrow: `Features.encode_example` would drop the bytes of a path that exists locally.
        table = pa.Table.from_pylist(records, schema=features.arrow_schema)
        name = SHARD_NAME.format(split=split, build_id=build_id, index=index, count=len(shard_groups))
        Dataset(InMemoryTable(table)).to_parquet(str(out_dir / name))
        names.append(name)
    return names


def commit_split(
    out_dir: Path, split: str, build_id: str, shards: list[str], report: dict[str, Any], write_card,
    overwrite: bool = False,
) -> None:
    """Make the new split live: stage the card, the report and the record, then move them into place (README first).
    `write_card(path, split_files, reports)` writes the dataset card for the given split -> files mapping (and each
    split's report entry, for its provenance) to `path`.
    The card lists facetrack's own splits only (the record's); a card or report facetrack did not write is replaced
    only with `overwrite` (ForeignFileError otherwise)."""
    refuse_foreign_files(out_dir, overwrite)
    record = read_record(out_dir) or {"splits": {}, "retired": []}
    files = {name: [shard for shard in names if (out_dir / shard).is_file()]
             for name, names in record["splits"].items()}
    files = {name: names for name, names in files.items() if names}  # (a split whose shards were removed by hand)
    retired = [name for name in record["retired"] if (out_dir / name).exists()]
    retired += [name for name in files.get(split, []) if name not in shards]
    files[split] = shards
    # The other splits' report entries, when the report is the one facetrack wrote (replaced with overwrite, else).
    reports = read_reports(out_dir) if REPORT_FILENAME not in foreign_files(out_dir) else {}
    reports = {name: entry for name, entry in reports.items() if name in files}
    reports[split] = report

    staging = out_dir / STAGING_DIRNAME / f"{split}-{build_id}"
    staging.mkdir(parents=True, exist_ok=True)
    write_card(staging / CARD_FILENAME, files, reports)
    with open(staging / CARD_FILENAME, "rb+") as file:
        os.fsync(file.fileno())
    _write_durably(staging / REPORT_FILENAME, json.dumps(reports, indent=2))
    _write_durably(staging / RECORD_FILENAME, json.dumps({
        "card_sha256": _sha256(staging / CARD_FILENAME), "report_sha256": _sha256(staging / REPORT_FILENAME),
        "splits": files, "retired": retired,
    }, indent=2))
    _write_durably(staging / READY_FILENAME, build_id)
    _fsync_dir(staging)

    os.replace(staging / CARD_FILENAME, out_dir / CARD_FILENAME)  # the commit point
    os.replace(staging / REPORT_FILENAME, out_dir / REPORT_FILENAME)
    os.replace(staging / RECORD_FILENAME, out_dir / RECORD_FILENAME)
    _fsync_dir(out_dir)
    _remove_unreferenced_shards(out_dir)  # the split's previous shards
    shutil.rmtree(staging)
    if not any((out_dir / STAGING_DIRNAME).iterdir()):
        (out_dir / STAGING_DIRNAME).rmdir()


def release_files(out_dir: Path) -> list[str]:
    """The files a release consists of (what `push` uploads): the card, the report and every referenced shard."""
    files = [CARD_FILENAME] + ([REPORT_FILENAME] if (out_dir / REPORT_FILENAME).is_file() else [])
    return files + [name for names in split_files(out_dir).values() for name in names]
