"""Where a build reads its videos: paths kept inside the video root, bytes read only from a regular file inside it
(checked on the open file), and the folder of unlabelled videos (`--videos`) listed.

Nothing outside the root is read: an absolute path, or one that leaves the root (`..`, or a symbolic link pointing
out of it), is refused as `outside_root` without being opened, and the check is made again on the open file, where
the bytes are read (`read_inside`). Reasons never repeat an absolute path: they go into the release's report.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any


class DatasetBuildError(ValueError):
    """Bad input to the dataset build: the message names the file, the item and the problem."""



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


# ------------------------------------------------------------------------------------ a folder of unlabelled videos
# Matched case-insensitively on the file name's last suffix; anything else in the folder (notes, images, subtitles)
# is not a video and is passed over without a word.
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts",
                              ".wmv", ".flv", ".3gp", ".ogv"})


def list_videos(videos: str | os.PathLike, video_root: str | os.PathLike | None = None,
                exclude: str | os.PathLike | None = None) -> tuple[Path, list[str], list[dict[str, str]]]:
    """The videos of `--videos`: (video root, their paths relative to it in sorted order, entries left out).

    videos: a folder, searched recursively for files named with a video extension (`VIDEO_EXTENSIONS`); names
    starting with "." (hidden files and folders) and `exclude` (the output folder, when it lies inside) are passed
    over, and folder links are not followed (a file link is listed; reading it checks it stays inside the root).
    The root is the folder itself (`video_root` must then be None or that folder).
    Or a text file listing one video per line (blank lines and lines starting with "#" skipped): relative paths
    are relative to `video_root` (default: the list's own folder); an absolute path is kept when it lies inside
    that root (made relative), and left out as `outside_root` otherwise.
    A path that cannot be stored as text (a file name that is not UTF-8) is left out as `invalid_text`.
    Raises DatasetBuildError when `videos` is neither, or names no video."""
    path = Path(videos)
    if path.is_dir():
        root = path
        if video_root is not None and Path(video_root).resolve() != path.resolve():
            raise DatasetBuildError(f"--videos {path} is a folder: it is the video root itself, so --video-root "
                                    f"{video_root} must not name another folder")
        found = _walk_videos(path, Path(exclude).resolve() if exclude is not None else None)
        if not found:
            raise DatasetBuildError(f"no video files ({', '.join(sorted(VIDEO_EXTENSIONS))}) found under {path}")
        return root, *_storable(found)
    if path.is_file():
        return _read_video_list(path, Path(video_root) if video_root is not None else path.parent)
    raise DatasetBuildError(f"--videos {path} does not exist: give a folder of videos or a text file listing them")


def _walk_videos(root: Path, exclude: Path | None) -> list[str]:
    found = []
    for folder, subfolders, files in os.walk(root):  # never follows folder links
        here = Path(folder)
        subfolders[:] = sorted(name for name in subfolders if not name.startswith(".")
                               and (exclude is None or (here / name).resolve() != exclude))
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() in VIDEO_EXTENSIONS:
                found.append((here / name).relative_to(root).as_posix())
    return sorted(found)


def _read_video_list(list_path: Path, root: Path) -> tuple[Path, list[str], list[dict[str, str]]]:
    if not root.is_dir():
        raise DatasetBuildError(f"video root does not exist or is not a folder: {root}")
    try:
        lines = list_path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise DatasetBuildError(f"video list {list_path} is not UTF-8 text: {error}") from None
    resolved_root = root.resolve()
    videos: list[str] = []
    left_out: list[dict[str, str]] = []
    for line in lines:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if _is_absolute(entry) and "\x00" not in entry:
            try:
                entry = Path(os.path.abspath(Path(entry).expanduser())).relative_to(resolved_root).as_posix()
            except ValueError:
                left_out.append({"id": f".../{Path(entry).name}", "video": f".../{Path(entry).name}",
                                 "status": "outside_root",
                                 "reason": f".../{Path(entry).name}: not inside the video root; not read"})
                continue
        if entry not in videos:
            videos.append(entry)
    if not videos and not left_out:
        raise DatasetBuildError(f"video list {list_path} names no video")
    storable, invalid = _storable(sorted(videos))
    return root, storable, left_out + invalid


def _storable(videos: list[str]) -> tuple[list[str], list[dict[str, str]]]:
    """(the paths a release can store, entries for those it cannot: not valid UTF-8)."""
    kept, left_out = [], []
    for video in videos:
        problem = _text_problem(video)
        if problem:
            left_out.append({"id": _shown(video), "video": _shown(video), "status": "invalid_text",
                             "reason": f"{_shown(video)}: the path {problem}; not read"})
        else:
            kept.append(video)
    return kept, left_out
