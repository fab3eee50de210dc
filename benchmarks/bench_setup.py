"""Wall time of `scripts/setup.sh` into a fresh virtual environment, with pip alone and with uv (the default), side by
side in one run.

    python benchmarks/bench_setup.py [--rounds 1] [--test]

Each run sets up a new venv in a temporary folder (`VENV=...`), `FACETRACK_SETUP_INSTALLER=pip` for pip alone; the
rounds alternate the order. Both use whatever the machine's caches hold (pip's and uv's), as a user's second setup
would; a machine that never downloaded the packages adds their download to both. Prints each run's seconds and the
seconds to import the model's stack in the new venv (where bytecode was not compiled, every process pays it again).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
IMPORT = "import transformers, trl, datasets, facetrack.model.modeling_facetrack"


def setup(installer: str, venv: Path, test: bool) -> tuple[float, float]:
    environment = {**os.environ, "VENV": str(venv), "FACETRACK_SETUP_INSTALLER": installer}
    started = time.perf_counter()
    subprocess.run(["bash", "scripts/setup.sh", *(["--test"] if test else [])], cwd=REPO_ROOT, env=environment,
                   check=True, capture_output=True)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run([str(venv / "bin" / "python"), "-c", IMPORT], check=True, capture_output=True)
    return seconds, time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--test", action="store_true", help="set up the test tools too (setup.sh --test)")
    args = parser.parse_args(argv)
    installers = ["pip", "uv"]
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in installers}
    with tempfile.TemporaryDirectory(prefix="bench_setup_") as work:
        for round_index in range(args.rounds):
            for installer in installers if round_index % 2 == 0 else installers[::-1]:
                result = setup(installer, Path(work) / f"{installer}{round_index}", args.test)
                results[installer].append(result)
                print(f"  {installer}: setup {result[0]:.0f} s, import {result[1]:.1f} s", flush=True)
    print("\n| installer | setup s (each run) | import of the model's stack, s |\n|---|---|---|")
    for installer, rows in results.items():
        print(f"| {installer} | {sum(r[0] for r in rows) / len(rows):.0f} ({', '.join(f'{r[0]:.0f}' for r in rows)}) "
              f"| {sum(r[1] for r in rows) / len(rows):.1f} |")


if __name__ == "__main__":
    main()
