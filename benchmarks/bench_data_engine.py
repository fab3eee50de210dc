"""Throughput of `facetrack dataset build --videos` (issue 21): clips per minute and CPU seconds per clip by stage,
with 1 and 2 workers, `--engine local` and `--engine ray`, side by side in one run, on copies of the shipped media.

    python benchmarks/bench_data_engine.py [--copies 4] [--num-frames 16] [--clip-seconds 4] [--clips-per-video 4]

The folder: `--copies` copies of every video of tests/media (and of ../shared/media where it has others): per copy,
WolfgangLanger gives 4 clips, single_face 1; face_noface's one window is cut down to its cartoon side and skipped, as
are no_face's (no face) and noface_face (too short): the skipped windows' work is in every figure too.

Rows: each build runs in a fresh Python process, as `facetrack dataset build` would, so every row pays its own
start-up (imports, models, workers, Ray), into its own folder:
- `local`, 1 worker (in the build's process: inference on 2 threads here, `cpu_count // workers`), the same with
  FACETRACK_NUM_THREADS=1, and 2 worker processes (1 thread each);
- `ray` starting its own local cluster (what `--engine ray` without `--ray-address` does), 1 and 2 actors;
- `ray` joining a cluster that is already running (`--ray-address`; started by this script), 2 actors;
- the path before this issue, for reference: the same clips (the first build's, as files) given as an annotation
  file, one row per whole clip (no cutting, no encoding), 1 and 2 processes.
Every row runs `--rounds` times, in turn forwards and backwards through the list, and the table shows its mean (and
each round's wall time), so that a load rising or falling during the run weighs on every row alike.

Figures: wall seconds of the whole build (start-up included), clips per minute, total CPU seconds of this process and
every process it started (sampled with psutil: Ray's workers included, start-up included), and CPU seconds per clip
by stage as the workers measured them per clip (`BuildReport.cpu_seconds`: decode = read, find the frames, decode
the window and check it for shot cuts; encode = the clip's H.264; detect = decode the clip's sampled frames with face
detection running beside; track = the rest of detection, identity, tracking; expressions; write = the driver's parts
and shards). Start-up and steady rate apart: "first result" is the seconds from the build process's start to the first
clip's result (imports, worker processes or the Ray cluster, models, one clip), "steady" the clips per minute between
the first result and the last (`BuildReport.result_times`), which is what a build of thousands of clips runs at.
The machine's load average is printed: other users' work slows every row alike.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
MEDIA_DIRS = [REPO_ROOT / "tests" / "media", REPO_ROOT.parent / "shared" / "media"]
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi"}
STAGES = ("decode", "encode", "detect", "track", "expressions", "write")


def prepare_videos(folder: Path, copies: int) -> list[str]:
    """`copies` copies of every shipped video (by name: tests/media first, then what ../shared/media adds)."""
    sources: dict[str, Path] = {}
    for media in MEDIA_DIRS:
        for path in sorted(media.glob("*")) if media.is_dir() else []:
            if path.suffix.lower() in VIDEO_SUFFIXES:
                sources.setdefault(path.name, path)
    for copy in range(copies):
        (folder / f"copy{copy}").mkdir(parents=True)
        for name, path in sources.items():
            shutil.copy(path, folder / f"copy{copy}" / name)
    return sorted(sources)


class CpuMeter:
    """CPU seconds (user + system) of this process and of every process it starts, sampled every 0.2 s (a process
    that ends between two samples loses at most its last 0.2 s)."""

    def __init__(self) -> None:
        import psutil

        self.root = psutil.Process()
        self.seen: dict[tuple[int, float], float] = {}
        self.baseline = self._sample()
        self.running = True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _sample(self) -> float:
        import psutil

        for process in [self.root, *self.root.children(recursive=True)]:
            try:
                times = process.cpu_times()
                self.seen[(process.pid, process.create_time())] = times.user + times.system
            except psutil.Error:
                pass
        return sum(self.seen.values())

    def _loop(self) -> None:
        while self.running:
            self._sample()
            time.sleep(0.2)

    def stop(self) -> float:
        self.running = False
        self.thread.join()
        return self._sample() - self.baseline


BUILD = """
import json, sys, time
started = time.perf_counter()
from facetrack.data.build import build_dataset
report = build_dataset(**json.loads(sys.argv[1]))
print("REPORT " + json.dumps({"clips": report.num_written, "cpu_seconds": report.cpu_seconds,
                              "results": [moment - started for moment in report.result_times]}))
"""


def measure(label: str, threads: int | None = None, **build_options) -> dict:
    """One build in a fresh process: its wall time, the CPU of every process it ran, and its report's figures.
    threads: FACETRACK_NUM_THREADS for it (default: the engine's choice, cpu_count // workers)."""
    environment = {**os.environ, **({"FACETRACK_NUM_THREADS": str(threads)} if threads else {})}
    meter = CpuMeter()
    started = time.perf_counter()
    process = subprocess.run([sys.executable, "-c", BUILD, json.dumps(build_options, default=str)],
                             capture_output=True, text=True, env=environment)
    wall = time.perf_counter() - started
    cpu = meter.stop()
    lines = [line for line in process.stdout.splitlines() if line.startswith("REPORT ")]
    if process.returncode != 0 or not lines:
        raise SystemExit(f"{label} failed:\n{process.stderr[-3000:]}")
    report = json.loads(lines[-1].removeprefix("REPORT "))
    results = report.get("results") or []
    # Steady rate: windows analysed per second between the first result and the last (start-up left out), in
    # clips written per minute; start-up: from the process's start to its first result.
    steady = (60 * (len(results) - 1) / (results[-1] - results[0]) * report["clips"] / len(results)
              if len(results) > 2 and results[-1] > results[0] else None)
    first = results[0] if results else None
    print(f"  {label}: {report['clips']} clips in {wall:.1f} s" + (
        f" (first result after {first:.1f} s, then {steady:.1f} clips/min)" if steady else ""), flush=True)
    return {"label": label, "wall": wall, "cpu_total": cpu, "clips": report["clips"], "stages": report["cpu_seconds"],
            "steady": steady, "first": first}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=4, help="copies of the shipped media")
    parser.add_argument("--num-frames", type=int, default=16, help="frames sampled per clip")
    parser.add_argument("--clip-seconds", type=float, default=4.0)
    parser.add_argument("--clips-per-video", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds over every row, in turn forwards and backwards (so a load that rises or falls "
                        "during the run weighs on every row alike); the table shows each row's mean")
    parser.add_argument("--skip-baseline", action="store_true", help="leave out the annotation-file rows")
    args = parser.parse_args(argv)

    import ray

    work = Path(tempfile.mkdtemp(prefix="bench_data_engine_"))
    try:
        names = prepare_videos(work / "videos", args.copies)
        print(f"{args.copies} copies of {len(names)} shipped videos ({', '.join(names)}); {args.num_frames} frames "
              f"per clip, {args.clip_seconds:g} s clips, at most {args.clips_per_video} per video; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start", flush=True)
        clip_settings = dict(videos=work / "videos", num_frames=args.num_frames, clip_seconds=args.clip_seconds,
                             clips_per_video=args.clips_per_video)
        # (label, options; "threads": FACETRACK_NUM_THREADS, "running_cluster": join a cluster started here)
        configs = [
            ("local, 1 worker (2 threads)", dict(num_proc=1)),
            ("local, 1 worker, 1 thread", dict(num_proc=1, threads=1)),
            ("local, 2 workers (1 thread each)", dict(num_proc=2)),
            ("ray, own cluster, 1 actor", dict(engine="ray", num_proc=1)),
            ("ray, own cluster, 2 actors", dict(engine="ray", num_proc=2)),
            ("ray, running cluster, 2 actors", dict(engine="ray", num_proc=2, running_cluster=True)),
        ]
        if not args.skip_baseline:  # the clips of the first build, as files with an annotation file
            configs += [(f"annotations (before #21), {workers} process{'es' if workers > 1 else ''}",
                         dict(num_proc=workers, annotations=True)) for workers in (1, 2)]
        runs: dict[str, list[dict]] = {label: [] for label, _ in configs}
        shards = []
        for round_index in range(args.rounds):
            order = configs if round_index % 2 == 0 else configs[::-1]
            print(f"round {round_index + 1} ({'forwards' if round_index % 2 == 0 else 'backwards'}), load average "
                  f"{os.getloadavg()[0]:.1f}", flush=True)
            for label, config in order:
                options = dict(config)
                out_dir = work / f"round{round_index}" / label.replace(" ", "_").replace(",", "")
                if options.pop("annotations", False):
                    if not (work / "clips.json").is_file():
                        first_build = next(path for path in shards if path is not None)
                        _clips_as_files(first_build, work / "clips")
                    runs[label].append(measure(label, annotations_path=work / "clips.json",
                                               video_root=work / "clips", out_dir=out_dir,
                                               num_frames=args.num_frames, **options))
                    continue
                if options.pop("running_cluster", False):
                    ray.init(num_cpus=2, include_dashboard=False)  # running before the build starts
                    options["ray_address"] = ray.get_runtime_context().gcs_address
                try:
                    runs[label].append(measure(label, out_dir=out_dir, **clip_settings, **options))
                finally:
                    if ray.is_initialized():
                        ray.shutdown()
                shards.append(out_dir)
        same = len({tuple(_shards(path)) for path in shards}) == 1
        print(f"load average {os.getloadavg()[0]:.1f} at the end; the same shards from all {len(shards)} videos "
              f"builds: {same}\n")
        print_table([_mean(label, rows) for label, rows in runs.items()])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _mean(label: str, rows: list[dict]) -> dict:
    """A row's mean over its rounds (and each round's wall time)."""
    count = len(rows)
    stages = {stage: sum(row["stages"].get(stage, 0.0) for row in rows) / count for stage in STAGES} \
        if rows[0]["stages"] else {}
    steady = [row["steady"] for row in rows if row.get("steady")]
    first = [row["first"] for row in rows if row.get("first") is not None]
    return {"label": label, "walls": [row["wall"] for row in rows], "wall": sum(row["wall"] for row in rows) / count,
            "cpu_total": sum(row["cpu_total"] for row in rows) / count, "clips": rows[0]["clips"],
            "stages": stages, "steady": sum(steady) / len(steady) if steady else None,
            "first": sum(first) / len(first) if first else None}


def _shards(folder: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted((folder / "data").glob("*.parquet"))]


def _clips_as_files(release: Path, folder: Path) -> Path:
    """The release's clips written out as video files, with an annotation file naming them (placeholder captions)."""
    import pyarrow.parquet as pq

    folder.mkdir()
    items = []
    for shard in sorted((release / "data").glob("*.parquet")):
        for index, row in enumerate(pq.read_table(shard, columns=["video"]).column("video").to_pylist()):
            name = f"clip{len(items):04d}.mp4"
            (folder / name).write_bytes(row["bytes"])
            items.append({"id": name, "video": name, "caption": "A placeholder caption."})
    annotations = folder.parent / "clips.json"
    annotations.write_text(json.dumps(items))
    return annotations


def print_table(rows: list[dict]) -> None:
    base = rows[0]["wall"]
    base_steady = rows[0]["steady"]
    print("| build | clips | wall s (each round) | clips/min | vs local 1 worker | first result s | steady clips/min | "
          "steady vs local 1 worker | CPU s/clip (all processes) | " + " | ".join(STAGES) + " |")
    print("|---|---|---|---|---|---|---|---|---|" + "---|" * len(STAGES))
    for row in rows:
        clips = max(row["clips"], 1)
        stages = " | ".join(f"{row['stages'].get(stage, 0.0) / clips:.3f}" if row["stages"] else "-"
                            for stage in STAGES)
        walls = " / ".join(f"{wall:.1f}" for wall in row["walls"])
        first = f"{row['first']:.1f}" if row["first"] is not None else "-"
        steady = f"{row['steady']:.1f}" if row["steady"] else "-"
        steady_ratio = f"{row['steady'] / base_steady:.2f}x" if row["steady"] and base_steady else "-"
        print(f"| {row['label']} | {row['clips']} | {row['wall']:.1f} ({walls}) | "
              f"{60 * row['clips'] / row['wall']:.1f} | {base / row['wall']:.2f}x | {first} | {steady} | "
              f"{steady_ratio} | {row['cpu_total'] / clips:.2f} | {stages} |")
    print("\nfirst result: seconds from the build process's start to its first clip's result (imports, workers, "
          "models, one clip); steady: clips written per minute between the first and the last result (start-up left "
          "out).")
    print("CPU s/clip by stage: as the workers measured each clip (start-up not included; the work on windows "
          "that were skipped is); `-`: the annotation path does not measure stages.")


if __name__ == "__main__":
    sys.exit(main())
