"""The Makefile's targets run scripts/setup.sh only when the environment is missing or older than what it is
installed from (`make demo` twice sets up once), checked with `make -n` (what make would run) in a copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SETUP_INPUTS = ("pyproject.toml", "requirements-nodeps.txt", "scripts/setup.sh")

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    for name in ("Makefile", *SETUP_INPUTS):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    return tmp_path


def planned(checkout: Path, target: str) -> list[str]:
    # Under `make test` the outer make's MAKELEVEL/MAKEFLAGS would make this one print "Entering directory".
    environment = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    result = subprocess.run(["make", "-n", target], cwd=checkout, capture_output=True, text=True, timeout=30,
                            env=environment)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def stamp(path: Path, seconds_ago: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    when = time.time() - seconds_ago
    os.utime(path, (when, when))


@pytest.mark.parametrize("target", ["demo", "quickstart", "bench"])
def test_a_target_sets_up_only_when_the_environment_is_missing_or_stale(checkout, target):
    assert "bash scripts/setup.sh" in planned(checkout, target)  # a fresh clone: no .venv yet

    for name in SETUP_INPUTS:
        stamp(checkout / name, seconds_ago=100)
    stamp(checkout / ".venv" / ".installed", seconds_ago=10)  # what setup.sh touches when it finishes
    assert not any("setup.sh" in line for line in planned(checkout, target))

    stamp(checkout / "pyproject.toml", seconds_ago=1)  # a dependency changed since: set up again
    assert "bash scripts/setup.sh" in planned(checkout, target)


def test_make_test_sets_up_the_test_tools_once(checkout):
    for name in SETUP_INPUTS:
        stamp(checkout / name, seconds_ago=100)
    stamp(checkout / ".venv" / ".installed", seconds_ago=10)  # a plain setup has no test tools
    assert "bash scripts/setup.sh --test" in planned(checkout, "test")
    stamp(checkout / ".venv" / ".installed-test", seconds_ago=10)
    assert not any("setup.sh" in line for line in planned(checkout, "test"))


def test_make_setup_always_runs_the_setup(checkout):
    for name in SETUP_INPUTS:
        stamp(checkout / name, seconds_ago=100)
    stamp(checkout / ".venv" / ".installed", seconds_ago=10)
    assert planned(checkout, "setup") == ["bash scripts/setup.sh"]
