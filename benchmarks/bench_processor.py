"""Processor call time for one analysed video (its clip and track handed in: pixels and tokens only, no decoding or
tracking), for the processor code of one or more Hub folders, side by side in one process; their outputs must be
identical. Use it to compare a processor change against a folder saved before it.

Each folder's own code is loaded (`AutoProcessor`, `trust_remote_code=True`) at the vision encoder's real size
(`--image-size`, default 384); without folders, a tiny model folder is built and timed alone. Calls alternate
between the folders, `--repeats` rounds; medians and minima are printed.

Usage: python benchmarks/bench_processor.py [FOLDER ...] [--video PATH] [--frames 32] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoProcessor

from facetrack.analysis.video_analysis import analyze_video
from facetrack.data.sample_media import write_astronaut_clip

OUTPUT_KEYS = ("input_ids", "pixel_values_videos", "pixel_values_faces", "face_mask")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", help="Hub folders whose processor code to time")
    parser.add_argument("--video", help="the video (default: a synthesised clip)")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-processor-"))
    folders = [Path(folder) for folder in args.folders]
    if not folders:
        from facetrack.hub.builders import build_tiny_model

        folders = [build_tiny_model(work / "tiny", language_model="random", seed=0)]
    video = args.video or str(write_astronaut_clip(work / "astronaut.mp4", motion="zoom_in"))
    processors = {
        str(folder): AutoProcessor.from_pretrained(folder, trust_remote_code=True, image_size=args.image_size)
        for folder in folders
    }
    analysis = analyze_video(video, num_frames=args.frames, expressions=False)
    print(f"{video}: {len(analysis.clip)} frames of {analysis.clip.width}x{analysis.clip.height}, "
          f"image size {args.image_size}")

    times: dict[str, list[float]] = {name: [] for name in processors}
    outputs = {}
    for _ in range(args.repeats):
        for name, processor in processors.items():
            started = time.perf_counter()
            outputs[name] = processor(text="<video>", videos=[analysis.clip], face_tracks=[analysis.track])
            times[name].append(time.perf_counter() - started)
    reference = next(iter(outputs.values()))
    for name, output in outputs.items():
        for key in OUTPUT_KEYS:
            if not torch.equal(output[key], reference[key]):
                raise SystemExit(f"{name}: {key} differs from {next(iter(outputs))}'s")
    for name, values in times.items():
        print(f"{name}: median {statistics.median(values) * 1000:.0f} ms, min {min(values) * 1000:.0f} ms "
              f"({len(values)} calls)")
    if len(processors) > 1:
        print("outputs identical across folders")


if __name__ == "__main__":
    main()
