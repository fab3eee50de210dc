"""Shared fixtures. `../shared` (beside the checkout) holds real test media; a user's clone may not have it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach the Hub: everything they load is built locally or shipped in a pip package.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("FACETRACK_SHARED_DIR", REPO_ROOT.parent / "shared"))
MEDIA_DIR = SHARED_DIR / "media"


@pytest.fixture(scope="session")
def media_dir() -> Path:
    if not MEDIA_DIR.is_dir():
        pytest.skip(f"shared test media not found at {MEDIA_DIR} (set FACETRACK_SHARED_DIR)")
    return MEDIA_DIR


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED_DIR.is_dir():
        pytest.skip(f"shared folder not found at {SHARED_DIR} (set FACETRACK_SHARED_DIR)")
    return SHARED_DIR


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random FaceTrack-MM (tiny SigLIP + tiny Qwen2, SmolLM2's real tokenizer when installed) saved as a
    complete Hub folder, built once per session."""
    from facetrack.hub import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("facetrack-tiny"), language_model="random", seed=0)
