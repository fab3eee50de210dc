"""Where a pretrained model comes from (a local folder or a Hugging Face Hub repo id), checked before transformers
is asked to load it.

Without this, a folder that does not exist reaches `huggingface_hub` as a repo id ("Repo id must be in the form
'repo_name' or 'namespace/repo_name'"), and a Hub id on a machine without network costs half a minute of retries
before an error about something else. `check_model_source` answers in one line, at once: the folder does not exist,
or the Hub cannot be reached (one short request), or `HF_HUB_OFFLINE` is set and the repo is not in the cache. A Hub
id found in the local cache loads from it (`local_files_only`) when the Hub cannot be reached.
"""

from __future__ import annotations

import os
from pathlib import Path

HUB_CHECK_TIMEOUT_S = 3.0  # one request; a reachable Hub answers well within it


class ModelSourceError(OSError):
    """A model source that cannot be loaded here; the message names it and says why (one line)."""


def is_repo_id(source: str) -> bool:
    """True when `source` has the form of a Hub repo id ("name" or "namespace/name"), by huggingface_hub's rule."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if source.startswith((".", "/", "~")) or "\\" in source:  # written as a path
        return False
    try:
        validate_repo_id(source)
    except HFValidationError:
        return False
    return True


def hub_problem(timeout: float = HUB_CHECK_TIMEOUT_S) -> str | None:
    """None when the Hub endpoint answers (any HTTP status), else why not, in a few words."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception as error:  # noqa: BLE001 - any failure to connect means the same thing here
        return str(error).splitlines()[0] if str(error) else type(error).__name__
    return None


def is_cached(repo_id: str, filename: str = "config.json", revision: str | None = None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, filename, revision=revision), str)


def check_model_source(source: str | os.PathLike, what: str = "model", revision: str | None = None) -> dict:
    """Check that `source` (a local folder or a Hub repo id) can be loaded here; returns the extra keyword arguments
    for `from_pretrained` (`{"local_files_only": True}` for a cached repo while the Hub cannot be reached, else {}).

    Raises ModelSourceError naming `what` and `source`: a path that does not exist (or is a file), a Hub id while
    `HF_HUB_OFFLINE` is set and the repo is not cached, or a Hub id while the Hub cannot be reached and the repo is
    not cached."""
    from huggingface_hub import constants

    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.is_dir():
        return {}
    if path.exists():
        raise ModelSourceError(f"{what} {text!r} is a file, not a model folder (config.json, weights, tokenizer)")
    if not is_repo_id(text):
        raise ModelSourceError(f"{what} {text!r}: no such folder")
    # HF_HUB_OFFLINE is read when huggingface_hub is imported (as transformers reads it): the same value here.
    offline = bool(os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
                   or constants.HF_HUB_OFFLINE)
    problem = None if offline else hub_problem()
    if (offline or problem is not None) and is_cached(text, revision=revision):
        return {"local_files_only": True}
    download = f"give a local folder, or download the repo first (`hf download {text}`) where the Hub can be reached"
    if offline:
        raise ModelSourceError(f"{what} {text!r} is not a local folder, HF_HUB_OFFLINE is set and the Hub repo is "
                               f"not in the Hugging Face cache ({constants.HF_HUB_CACHE}); {download}")
    if problem is not None:
        raise ModelSourceError(f"{what} {text!r} is not a local folder, and the Hugging Face Hub "
                               f"({constants.ENDPOINT}) cannot be reached ({problem}); {download}")
    return {}
