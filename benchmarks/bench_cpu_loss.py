"""Seconds per CPU training step of the quickstart's recipe (`cpu_expression_stream`) with the loss computed two ways,
side by side in one run: TRL's fused LM head (`SFTTrainer.compute_loss`) and the model's own loss
(`FaceTrackSFTTrainer.compute_loss`, what the trainer uses on CPU).

    python benchmarks/bench_cpu_loss.py [--dataset quickstart_output/dataset] [--steps 16] [--rounds 2]

Each run trains `--steps` steps from the same start in a fresh process (`train_sft.py`, no checkpoints, no merge),
alternating the two ways `--rounds` times so a machine that speeds up or slows down weighs on both alike; prints each
run's `train_runtime`, seconds per step and final `train_loss` (the same for both, up to float rounding).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

RUN = """
import json, sys, runpy
import trl
import facetrack.training.parts as parts
if sys.argv[1] == "fused":
    parts.FaceTrackSFTTrainer.compute_loss = trl.SFTTrainer.compute_loss
sys.argv = ["train_sft.py"] + sys.argv[2:]
runpy.run_path(sys.argv.pop(1), run_name="__main__")
"""


def run(way: str, dataset: str, steps: int, output_dir: Path) -> dict:
    command = [sys.executable, "-c", RUN, way, str(REPO_ROOT / "train_sft.py"), "--config", "cpu_expression_stream",
               "--dataset_name", dataset, "--output_dir", str(output_dir), "--max_steps", str(steps),
               "--save_strategy", "no", "--merge_lora", "false", "--logging_steps", str(steps)]
    process = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in process.stdout.splitlines() if "train_runtime" in line]
    if process.returncode != 0 or not lines:
        raise SystemExit(f"{way} failed:\n{process.stderr[-3000:]}")
    metrics = json.loads(lines[-1].replace("'", '"'))
    return {"runtime": float(metrics["train_runtime"]), "loss": float(metrics["train_loss"])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="quickstart_output/dataset",
                        help="a dataset built with expressions (default: the quickstart's)")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    if not Path(args.dataset).is_dir():
        # `make bench` runs every benchmark: without a dataset this one says so and stops (no figures).
        print(f"SKIP bench_cpu_loss: no dataset folder at {args.dataset}; run `make quickstart` first, or pass "
              "--dataset")
        return
    ways = {"fused": "TRL's fused LM head", "own": "the model's own loss"}
    results: dict[str, list[dict]] = {way: [] for way in ways}
    with tempfile.TemporaryDirectory(prefix="bench_cpu_loss_") as work:
        for round_index in range(args.rounds):
            for way in (ways if round_index % 2 == 0 else list(ways)[::-1]):
                result = run(way, args.dataset, args.steps, Path(work) / f"{way}{round_index}")
                results[way].append(result)
                print(f"  {ways[way]}: {result['runtime']:.1f} s for {args.steps} steps, train_loss "
                      f"{result['loss']:.4f}", flush=True)
    print("\n| loss | s per step (each run) | train_loss |\n|---|---|---|")
    for way, rows in results.items():
        per_step = [row["runtime"] / args.steps for row in rows]
        print(f"| {ways[way]} | {sum(per_step) / len(per_step):.2f} ({', '.join(f'{x:.2f}' for x in per_step)}) "
              f"| {rows[0]['loss']:.4f} |")
    fused = sum(row["runtime"] for row in results["fused"])
    own = sum(row["runtime"] for row in results["own"])
    print(f"\nthe model's own loss: {fused / own:.2f}x the steps per second of TRL's fused LM head")


if __name__ == "__main__":
    main()
