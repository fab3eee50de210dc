"""Inputs that used to exhaust memory or time, as `facetrack track` meets them (issue 14).

    python benchmarks/bench_large_video.py [--skip-unlimited]

Prints, per case, the wall time and the peak resident memory (ru_maxrss of the `facetrack track` child process):
- a 198 KB, 2-second 8192 x 8192 H.264 clip with the default pixel limit (refused from the header) and with the
  limit turned off (FACETRACK_MAX_VIDEO_PIXELS=0: what every release before the limit did);
- a 2-second 3840 x 2160 (4K UHD) clip, within the default limit;
- `load_video` of 32 frames from a raw H.264 elementary stream (no container) of 9,000 640 x 360 frames.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np


def write_clip(path: Path, width: int, height: int, num_frames: int, fmt: str | None = None, fps: int = 24) -> Path:
    """Black frames with a moving grey square (x264 ultrafast): tiny files, full-size decoded frames."""
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(num_frames):
            frame = av.VideoFrame(width, height, "yuv420p")
            luma = np.zeros((height, frame.planes[0].line_size), dtype=np.uint8)
            side = min(width, height) // 4
            x = (i * 7) % max(1, width - side)
            luma[:side, x : x + side] = 128
            frame.planes[0].update(luma.tobytes())
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


MEASURE = (  # runs the command as its only child, then prints that child's peak resident memory in KB
    "import resource, subprocess, sys\n"
    "process = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "sys.stderr.write(process.stderr + process.stdout)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(process.returncode)\n"
)


def run_track(path: Path, env_extra: dict[str, str]) -> tuple[float, float, int, str]:
    """(seconds, peak MB, exit code, last output line) of `facetrack track PATH --frames 32` in a child process."""
    env = {**os.environ, **env_extra}
    started = time.perf_counter()
    process = subprocess.run(
        [sys.executable, "-c", MEASURE, sys.executable, "-m", "facetrack", "track", str(path), "--frames", "32"],
        env=env, capture_output=True, text=True,
    )
    seconds = time.perf_counter() - started
    peak_kb = int(process.stdout.strip().splitlines()[-1])
    lines = process.stderr.strip().splitlines()
    return seconds, peak_kb / 1024, process.returncode, lines[-1] if lines else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-unlimited", action="store_true", help="skip the 8192 x 8192 decode without a limit")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-large-"))
    huge = write_clip(work / "huge_8192.mp4", 8192, 8192, 48)
    uhd = write_clip(work / "uhd_3840x2160.mp4", 3840, 2160, 48)
    print(f"8192x8192 clip: {huge.stat().st_size / 1000:.0f} KB, 48 frames; 4K clip: {uhd.stat().st_size / 1000:.0f} KB")

    print("| case | exit | wall s | peak MB | last line |")
    print("|---|---:|---:|---:|---|")
    cases = [("8192x8192, default limit", huge, {}), ("4K UHD 3840x2160", uhd, {})]
    if not args.skip_unlimited:
        cases.append(("8192x8192, FACETRACK_MAX_VIDEO_PIXELS=0", huge, {"FACETRACK_MAX_VIDEO_PIXELS": "0"}))
    for name, path, env in cases:
        seconds, peak_mb, code, line = run_track(path, env)
        print(f"| {name} | {code} | {seconds:.1f} | {peak_mb:.0f} | {line[:110]} |")

    from facetrack.video.decode import load_video

    raw = write_clip(work / "long.h264", 640, 360, 9000, fmt="h264", fps=30)
    started = time.perf_counter()
    clip = load_video(raw, num_frames=32)
    print(f"raw H.264, 9,000 frames of 640x360: 32 frames in {time.perf_counter() - started:.1f} s "
          f"(duration {clip.duration:.0f} s at {clip.source_fps:g} fps)")


if __name__ == "__main__":
    main()
