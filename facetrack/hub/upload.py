"""Upload a folder to the Hub with `huggingface_hub`; failures are one readable `HubUploadError`."""

from __future__ import annotations

import os


class HubUploadError(OSError):
    """An upload to the Hub failed (no network, no token, no permission): the message says which and why."""


def upload_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    repo_type: str,
    private: bool = False,
    commit_message: str | None = None,
    allow_patterns: list[str] | None = None,
    token: str | None = None,
    delete_patterns: list[str] | None = None,
):
    """Create the repo if needed and upload `folder` with `huggingface_hub`; any failure becomes one readable
    `HubUploadError` (the CLI prints it as a line, not a traceback)."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        return api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type=repo_type,
            allow_patterns=allow_patterns,
            delete_patterns=delete_patterns,  # remote files matching these and not uploaded now are deleted
            commit_message=commit_message or "Upload FaceTrack-MM",
        )
    except Exception as error:  # HTTP, auth and connection errors of huggingface_hub / httpx
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise HubUploadError(
            f"could not upload {folder} to the Hub {repo_type} repo {repo_id!r} ({type(error).__name__}: {reason}); "
            "check the network and your token (`hf auth login` or HF_TOKEN)"
        ) from error


def push_hub_folder(folder: str | os.PathLike, repo_id: str, private: bool = False, commit_message: str | None = None):
    """Create the model repo if needed and upload `folder` to it; returns the commit info."""
    return upload_to_hub(folder, repo_id, "model", private=private, commit_message=commit_message)
