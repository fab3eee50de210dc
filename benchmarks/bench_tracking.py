"""Face-tracking speed per shared video, the 720p target, the identity step on multi-person clips, and the detectors.

    python benchmarks/bench_tracking.py [--runs 3] [--media ../shared/media] [--skip-detectors] [--skip-identity]
        [--skip-pipeline] [--skip-limit] [--baseline ac74c8d] [--frame-counts 32,128,512]

First, the tracking path against its limit (decode-only + detector-only) at 32 / 128 / 512 frames of the 720p clip,
side by side with processing/ as it was at --baseline (see tracking_speed.py).

Prints, for each video in ../shared/media, the median milliseconds (over --runs runs) to decode 32 uniformly
sampled frames while detecting faces (as analyze_video: "detect" is what remains after decoding), track them
(shot cuts, ByteTrack, fragments; the identity step: face embeddings, joining fragments into persons; the
main-character rule) and cut 224 px face crops, and the frames processed per second; then the same for a 10 s
1280x720 clip (WolfgangLanger_Pexels.mp4 upscaled; target: under 2 s) with and without the identity model; then,
on the two-person clips of tests/person_clips.py, frames with a box on the main character A / frames where A is
visible / boxes on anyone else, and what the identity step cost; then, per detector, recall on sampled frames
that show a face, false positives on frames without one, small faces, and median ms per frame.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from tracking_speed import run_limit_benchmark

from facetrack.faces.detection import DetectionStream, get_face_detector
from facetrack.faces.tracking import FaceTracker
from facetrack.video.crops import crop_faces
from facetrack.video.decode import load_video

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MEDIA = Path(os.environ.get("FACETRACK_SHARED_DIR", REPO_ROOT.parent / "shared")) / "media"
VIDEOS = ["single_face.mp4", "WolfgangLanger_Pexels.mp4", "face_noface.mov", "noface_face.mov", "no_face.mp4"]
NUM_FRAMES = 32


def shows_a_face(video: str, frame_index: int) -> bool:
    """Ground truth per source frame (cut positions found by frame differencing and looking at the frames)."""
    if video == "no_face.mp4":
        return False
    if video == "face_noface.mov":
        return frame_index <= 71
    if video == "noface_face.mov":
        return 96 <= frame_index < 168  # frame 168 is black
    return True


STAGES = ["decode", "detect", "track", "identity", "crop", "total", "cpu", "embedded"]


def time_pipeline(path: Path, tracker: FaceTracker, runs: int) -> dict[str, float]:
    """Median ms per stage; "decode" holds the detection that ran while decoding, "track" includes "identity" (the
    face embeddings: tracker.timings["identity"])."""
    stages: dict[str, list[float]] = {name: [] for name in STAGES}
    for _ in range(runs):
        cpu_start = time.process_time()  # CPU seconds of all our threads: less sensitive to other load
        start = time.perf_counter()
        with DetectionStream(tracker.detector) as stream:  # as analyze_video: faces are found while decoding
            clip = load_video(path, num_frames=NUM_FRAMES, on_frame=stream.submit)
            decoded = time.perf_counter()
            detections = stream.detections(clip.frame_indices)
        detected = time.perf_counter()
        result = tracker.track(clip, detections=detections)
        tracked = time.perf_counter()
        crop_faces(clip.frames, result.boxes, size=224, frame_indices=clip.frame_indices)
        cropped = time.perf_counter()
        for name, seconds in zip(["decode", "detect", "track", "crop", "total"],
                                 [decoded - start, detected - decoded, tracked - detected, cropped - tracked,
                                  cropped - start]):
            stages[name].append(seconds * 1000)
        stages["identity"].append(tracker.timings["identity"])
        stages["embedded"].append(result.identity["faces_embedded"])
        stages["cpu"].append((time.process_time() - cpu_start) * 1000)
    return {name: statistics.median(values) for name, values in stages.items()}


def make_720p_clip(source: Path, target: Path, seconds: float = 10.0) -> Path:
    """Upscale the first `seconds` of `source` to 1280x720 H.264."""
    import av
    import cv2

    from facetrack.analysis.overlay import write_video

    frames = []
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        for frame in container.decode(stream):
            if frame.time is not None and frame.time >= seconds:
                break
            frames.append(cv2.resize(frame.to_ndarray(format="rgb24"), (1280, 720), interpolation=cv2.INTER_CUBIC))
    return write_video(np.stack(frames), target, fps=fps)


def print_pipeline_table(rows: list[tuple[str, dict[str, float]]]) -> None:
    print(f"| video ({NUM_FRAMES} frames) | decode ms | detect ms | track ms | of which identity ms (faces) "
          "| crop ms | total ms | frames/s | CPU ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, t in rows:
        print(f"| {name} | {t['decode']:.0f} | {t['detect']:.0f} | {t['track']:.0f} | {t['identity']:.0f} "
              f"({t['embedded']:.0f}) | {t['crop']:.0f} | {t['total']:.0f} | {NUM_FRAMES / t['total'] * 1000:.1f} | "
              f"{t['cpu']:.0f} |")


def compare_detectors(media: Path, detectors: dict[str, object]) -> None:
    clips = {video: load_video(media / video, num_frames=NUM_FRAMES) for video in VIDEOS if (media / video).exists()}
    from PIL import Image

    photo_path = media / "multi_face.jpg"
    photo = np.asarray(Image.open(photo_path).convert("RGB")) if photo_path.exists() else None
    print("| detector | recall (frames with a face) | false positives (boxes on face-free frames) | "
          "multi_face.jpg faces (of 5) | small faces in 720p: 16 / 22 / 30 / 45 / 60 px (of 5) | median ms/frame |")
    print("|---|---:|---:|---:|---|---:|")
    # Detectors take turns on every frame, so a change in the machine's load affects them alike.
    counts = {label: {"hits": 0, "faces": 0, "false": 0, "free": 0, "ms": []} for label in detectors}
    first_frame = next(iter(clips.values())).frames[0]
    for detector in detectors.values():
        detector.detect(first_frame)  # warm-up
    for video, clip in clips.items():
        for frame, index in zip(clip.frames, clip.frame_indices):
            for label, detector in detectors.items():
                start = time.perf_counter()
                found = detector.detect(frame)
                count = counts[label]
                count["ms"].append((time.perf_counter() - start) * 1000)
                if shows_a_face(video, index):
                    count["faces"] += 1
                    count["hits"] += bool(found)
                else:
                    count["free"] += 1
                    count["false"] += len(found)
    for label, detector in detectors.items():
        count = counts[label]
        in_photo = len(detector.detect(photo)) if photo is not None else "-"
        small = "-"
        if photo is not None:
            small = " / ".join(str(len(detector.detect(canvas))) for canvas in small_face_frames(photo))
        print(f"| {label} | {count['hits']}/{count['faces']} = {count['hits'] / count['faces']:.3f} | "
              f"{count['false']} on {count['free']} frames | {in_photo} | {small} | "
              f"{statistics.median(count['ms']):.1f} |")


SMALL_FACE_HEIGHTS = (16, 22, 30, 45, 60)


def small_face_frames(photo: np.ndarray) -> list[np.ndarray]:
    """multi_face.jpg shrunk so its faces are about 16, 22, 30, 45 and 60 px high, each pasted into a grey 1280x720
    frame."""
    import cv2

    frames = []
    for face_height in SMALL_FACE_HEIGHTS:
        scale = face_height / 110  # the photo's faces are 90-130 px high
        small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        canvas = np.full((720, 1280, 3), 90, dtype=np.uint8)
        canvas[100 : 100 + small.shape[0], 200 : 200 + small.shape[1]] = small
        frames.append(canvas)
    return frames


def compare_decoders(path: Path, runs: int) -> None:
    """decord (primary) vs PyAV (fallback) decoding the same 32 frames."""
    from facetrack.video import decode as video_io

    print(f"| decoder ({path.name}, {NUM_FRAMES} frames) | median wall ms | median CPU ms |")
    print("|---|---:|---:|")
    info = video_io.probe_video(path)
    for label, load in [("decord", video_io._load_with_decord), ("PyAV", video_io._load_with_pyav)]:
        wall, cpu = [], []
        for _ in range(runs):
            start, cpu_start = time.perf_counter(), time.process_time()
            load(path, info, NUM_FRAMES, None, None, None)
            wall.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - cpu_start) * 1000)
        print(f"| {label} | {statistics.median(wall):.0f} | {statistics.median(cpu):.0f} |")


def run_pipeline_benchmarks(media: Path, runs: int) -> None:
    tracker = FaceTracker("retinaface")
    position_only = FaceTracker(tracker.detector, identity=None)
    tracker.track(load_video(np.zeros((2, 64, 64, 3), dtype=np.uint8), num_frames=None))  # warm-up: imports
    if tracker.embedder is not None:  # warm-up: load the identity model once (~0.1 s), as a long-lived process does
        tracker.embedder.embed(np.zeros((64, 64, 3), dtype=np.uint8), (8, 8, 56, 56))
    rows = [(video, time_pipeline(media / video, tracker, runs)) for video in VIDEOS if (media / video).exists()]
    with tempfile.TemporaryDirectory() as scratch:
        clip_720p = make_720p_clip(media / "WolfgangLanger_Pexels.mp4", Path(scratch) / "wolfgang_720p_10s.mp4")
        # The two trackers take turns, so a change in the machine's load affects them alike.
        with_identity, without = [], []
        for _ in range(runs):
            with_identity.append(time_pipeline(clip_720p, tracker, 1))
            without.append(time_pipeline(clip_720p, position_only, 1))
        median = lambda runs_: {k: statistics.median(r[k] for r in runs_) for k in STAGES}  # noqa: E731
        rows.append(("WolfgangLanger 1280x720 10 s (upscaled)", median(with_identity)))
        rows.append(("the same, identity=None (position only)", median(without)))
        print_pipeline_table(rows)
        print()
        compare_decoders(clip_720p, runs)
    total_720p = rows[-2][1]["total"]
    print(f"\n720p 10 s clip, {NUM_FRAMES} frames: {total_720p / 1000:.2f} s median with identity, "
          f"{rows[-1][1]['total'] / 1000:.2f} s without ({'meets' if total_720p < 2000 else 'misses'} the 2 s "
          f"target; load average {os.getloadavg()[0]:.1f})\n")


def time_embedder(clips) -> None:
    """The identity model's load time and cost per face (wall and CPU ms, median of 12 faces)."""
    from facetrack.faces.identity import get_face_embedder

    start = time.perf_counter()
    embedder = get_face_embedder()
    if embedder is None:
        print("identity model not installed: nothing to time\n")
        return
    load_ms = (time.perf_counter() - start) * 1000
    clip = load_video(clips["alternating"].path, num_frames=12)
    detector = FaceTracker(identity=None).detector
    walls, cpus = [], []
    for frame in clip.frames:
        for face in detector.detect(frame):
            start, cpu_start = time.perf_counter(), time.process_time()
            embedder.embed(frame, face.box)
            walls.append((time.perf_counter() - start) * 1000)
            cpus.append((time.process_time() - cpu_start) * 1000)
    print(f"identity model ({embedder.name}): loads in {load_ms:.0f} ms; per face {statistics.median(walls):.0f} ms "
          f"wall, {statistics.median(cpus):.0f} ms CPU (median of {len(walls)}; load average "
          f"{os.getloadavg()[0]:.1f})\n")


def run_identity_benchmarks(media: Path) -> None:
    """The issue's multi-person cases (tests/person_clips.py), with and without the identity model."""
    import sys

    sys.path.insert(0, str(REPO_ROOT / "tests"))
    import person_clips

    with tempfile.TemporaryDirectory() as scratch:
        clips = person_clips.PersonClips(media, Path(scratch))
        trackers = {"identity": FaceTracker("retinaface")}
        trackers["position only"] = FaceTracker(trackers["identity"].detector, identity=None)
        time_embedder(clips)
        print("| case | frames | identity: on A / A visible / elsewhere | faces embedded | identity ms | track ms "
              "| track CPU ms | persons | position only: on A / visible / elsewhere | position-only track ms |")
        print("|---|---:|---|---:|---:|---:|---:|---:|---|---:|")
        cases = [("cut_a_to_b", 32), ("cut_b_to_a", 32), ("alternating", 16), ("alternating", 32),
                 ("alternating", 64), ("side_by_side_swap", 32), ("crossing_pause", 16), ("crossing_pause", 32),
                 ("crossing_rush", 16), ("crossing_rush", 32), ("fast_pan", 32), ("small_faces", 32)]
        for name, num_frames in cases:
            built = clips[name]
            clip = load_video(built.path, num_frames=num_frames)
            detections = trackers["identity"].detect(clip.frames)
            cells = {}
            for label, tracker in trackers.items():
                start, cpu_start = time.perf_counter(), time.process_time()
                result = tracker.track(clip, detections=detections)
                elapsed, cpu = (time.perf_counter() - start) * 1000, (time.process_time() - cpu_start) * 1000
                counts = person_clips.score_main_track(result, built, "A")
                cells[label] = (f"{counts['on_person']} / {counts['visible']} / {counts['elsewhere']}", result,
                                elapsed, cpu, tracker.timings["identity"])
            text, result, elapsed, cpu, identity_ms = cells["identity"]
            print(f"| {name} | {num_frames} | {text} | {result.identity['faces_embedded']} | "
                  f"{identity_ms:.0f} | {elapsed:.0f} | {cpu:.0f} | {len(result.persons)} | "
                  f"{cells['position only'][0]} | {cells['position only'][2]:.0f} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA)
    parser.add_argument("--skip-detectors", action="store_true", help="skip the detector comparison")
    parser.add_argument("--skip-pipeline", action="store_true", help="skip the speed table")
    parser.add_argument("--skip-identity", action="store_true", help="skip the multi-person identity cases")
    parser.add_argument("--skip-limit", action="store_true", help="skip the side-by-side table against the limit")
    parser.add_argument("--baseline", default="ac74c8d", help="the revision of processing/ to compare with")
    parser.add_argument("--frame-counts", default="32,128,512", help="frame counts of the side-by-side table")
    args = parser.parse_args()
    if not args.media.is_dir():
        raise SystemExit(f"shared media not found at {args.media}")
    print(f"cpu cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}, "
          f"median of {args.runs} runs, detector retinaface (default options)\n")

    if not args.skip_limit:
        with tempfile.TemporaryDirectory() as scratch:
            clip_720p = make_720p_clip(args.media / "WolfgangLanger_Pexels.mp4", Path(scratch) / "wolfgang_720p.mp4")
            print(f"Tracking path vs its limit, 10 s 1280x720 clip (240 frames), now vs {args.baseline}:\n")
            run_limit_benchmark(clip_720p, REPO_ROOT, args.baseline, [int(n) for n in args.frame_counts.split(",")],
                                args.runs, Path(scratch))
            print(f"\n(load average {os.getloadavg()[0]:.1f} at the end)\n")
    if not args.skip_pipeline:
        run_pipeline_benchmarks(args.media, args.runs)
    if not args.skip_identity:
        run_identity_benchmarks(args.media)

    if not args.skip_detectors:
        compare_detectors(args.media, {
            "retinaface (max_side 640 + full-resolution retry, default)": get_face_detector("retinaface"),
            "retinaface (max_side 640, no retry)": get_face_detector("retinaface", full_resolution_retry=False),
            "retinaface (max_side 480, no retry)": get_face_detector("retinaface", max_side=480,
                                                                     full_resolution_retry=False),
            "retinaface (full resolution)": get_face_detector("retinaface", max_side=None),
            "yunet (max_side 640 + retry)": get_face_detector("yunet"),
            "yunet (max_side 640, no retry)": get_face_detector("yunet", full_resolution_retry=False),
        })


if __name__ == "__main__":
    main()
