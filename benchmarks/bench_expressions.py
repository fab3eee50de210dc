"""Expression-timeline speed: the expression stage per frame, and track + expressions for the 720p target.

    python benchmarks/bench_expressions.py [--runs 5] [--compare-inputs]

Prints, for a 32-frame sample of a 10 s 1280x720 clip (WolfgangLanger_Pexels.mp4 upscaled, as in
bench_tracking.py), the median over --runs runs of one call of the analysis pipeline every caller uses
(`video_analysis.analyze_video`, as `facetrack track` runs it: decode, face tracking, the expression stage =
landmarker on the face crop + emotion model per frame, events and the measured caption), with its stages, and the
whole track + expressions time (target: under 2.5 s on the 2-core machine). Then the same on the 640x360 clips.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tracking import make_720p_clip  # noqa: E402

from facetrack.expressions.measure import ExpressionAnalyzer  # noqa: E402
from facetrack.faces.tracking import FaceTracker  # noqa: E402
from facetrack.analysis.video_analysis import analyze_video  # noqa: E402
from facetrack.video.decode import load_video  # noqa: E402

MEDIA = Path(__file__).resolve().parents[1] / "tests" / "media"
NUM_FRAMES = 32
TARGET_SECONDS = 2.5
DECODE_MAX_SIDE = 1920  # as `facetrack track`


def time_clip(path: Path, tracker: FaceTracker, analyzer: ExpressionAnalyzer, runs: int) -> dict[str, float]:
    stages: dict[str, list[float]] = {"decode": [], "track": [], "expressions": [], "total": [], "cpu": []}
    for _ in range(runs):
        cpu_start, start = time.process_time(), time.perf_counter()
        analysis = analyze_video(path, num_frames=NUM_FRAMES, max_side=DECODE_MAX_SIDE, tracker=tracker,
                                 analyzer=analyzer)
        done = time.perf_counter()
        for name in ("decode", "track", "expressions"):  # the expression stage includes events + caption
            stages[name].append(analysis.timings[name])
        stages["total"].append((done - start) * 1000)
        stages["cpu"].append((time.process_time() - cpu_start) * 1000)
    result = {name: statistics.median(values) for name, values in stages.items()}
    result["faces"] = int(analysis.expressions.timeline.measured.sum())
    return result


def compare_landmarker_inputs(runs: int) -> None:
    """The landmarker alone on the same 32 frames: the whole 640x360 frame vs the 256 px face crop, VIDEO vs IMAGE
    running mode (IMAGE runs MediaPipe's face detector on every frame; VIDEO tracks the face from the last one)."""
    import mediapipe
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    from facetrack.expressions.models import _native_stderr_silenced, landmarker_model_path
    from facetrack.expressions.measure import expression_model_crops

    clip = load_video(MEDIA / "WolfgangLanger_Pexels.mp4", num_frames=NUM_FRAMES)
    boxes = FaceTracker().track(clip).boxes
    crops = [expression_model_crops(frame, box, 256, 0.25, 0.08)[0] for frame, box in zip(clip.frames, boxes)]
    print("\n| landmarker input (32 frames of WolfgangLanger_Pexels.mp4) | running mode | median ms per frame |")
    print("|---|---|---:|")
    for label, images in (("whole 640x360 frame", list(clip.frames)), ("256 px face crop", crops)):
        for mode in ("VIDEO", "IMAGE"):
            options = vision.FaceLandmarkerOptions(
                base_options=BaseOptions(model_asset_path=str(landmarker_model_path())),
                running_mode=getattr(vision.RunningMode, mode), output_face_blendshapes=True,
                output_facial_transformation_matrixes=True)
            timings = []
            with _native_stderr_silenced():  # MediaPipe's graph-building log lines
                landmarker = vision.FaceLandmarker.create_from_options(options)
            with landmarker:
                clock = 0
                for _ in range(runs):
                    for image in images:
                        picture = mediapipe.Image(image_format=mediapipe.ImageFormat.SRGB,
                                                  data=np.ascontiguousarray(image))
                        start = time.perf_counter()
                        if mode == "VIDEO":
                            clock += 300
                            landmarker.detect_for_video(picture, clock)
                        else:
                            landmarker.detect(picture)
                        timings.append((time.perf_counter() - start) * 1000)
            print(f"| {label} | {mode} | {statistics.median(timings):.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--compare-inputs", action="store_true",
                        help="also time the landmarker on whole frames vs face crops, VIDEO vs IMAGE mode")
    args = parser.parse_args()
    print(f"cpu cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}, median of {args.runs} runs, "
          f"{NUM_FRAMES} frames\n")
    tracker, analyzer = FaceTracker(), ExpressionAnalyzer()
    analyze_video(MEDIA / "single_face.mp4", num_frames=2, tracker=tracker, analyzer=analyzer)  # warm-up
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        clip_720p = make_720p_clip(MEDIA / "WolfgangLanger_Pexels.mp4", Path(scratch) / "wolfgang_720p_10s.mp4")
        rows.append(("WolfgangLanger 1280x720 10 s (upscaled)", time_clip(clip_720p, tracker, analyzer, args.runs)))
    for name in ("single_face.mp4", "WolfgangLanger_Pexels.mp4"):
        rows.append((name, time_clip(MEDIA / name, tracker, analyzer, args.runs)))
    print("| video (32 frames) | decode ms | track ms | expressions + events + caption ms | expressions ms/frame | "
          "total ms | CPU ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, t in rows:
        per_frame = t["expressions"] / max(t["faces"], 1)  # frames with a face (all 32 on these clips)
        print(f"| {name} | {t['decode']:.0f} | {t['track']:.0f} | {t['expressions']:.0f} | {per_frame:.1f} | "
              f"{t['total']:.0f} | {t['cpu']:.0f} |")
    total = rows[0][1]["total"] / 1000
    print(f"\n720p 10 s clip, {NUM_FRAMES} frames, track + expressions (analyze_video): {total:.2f} s median at load "
          f"{os.getloadavg()[0]:.1f} ({'meets' if total < TARGET_SECONDS else 'misses'} the {TARGET_SECONDS} s target)")
    analyzer.close()
    if args.compare_inputs:
        compare_landmarker_inputs(args.runs)


if __name__ == "__main__":
    main()
