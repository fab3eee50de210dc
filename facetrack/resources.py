"""Where the files that travel with the package are: the TEM `evaluate` module and the training recipes.

In a checkout (editable install) they are the repo's `evaluate_metric/tem/` and `configs/`; in an installed wheel
they are `facetrack/tem_metric/` and `facetrack/recipes/` (see `pyproject.toml`)."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent


def _first_existing(*candidates: Path) -> Path:
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"none of {[str(path) for path in candidates]} exists: the facetrack install is incomplete")


def recipe_path(name: str) -> Path:
    """A shipped training recipe, e.g. `recipe_path("tiny_cpu.yaml")`."""
    return _first_existing(PACKAGE_DIR / "recipes" / name, REPO_ROOT / "configs" / name)
