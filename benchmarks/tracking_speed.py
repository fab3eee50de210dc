"""Tracking speed against its limit, side by side with an older revision of processing/ (bench_tracking.py --limit).

For each frame count (32 / 128 / 512 uniformly sampled frames of a 10 s 1280x720 clip: 512 samples of its 240
frames repeat frames), both versions take turns, run after run, so a change in the machine's load affects them
alike. Per version it prints the median ms of each stage of the tracking path (decode = load_video, detect,
track = shot cuts + ByteTrack + fragments + identity + main character, of which identity, crop = 224 px face
crops, total; the current version detects while it decodes, so its decode holds detection and its detect is what
remains after decoding) and of its limit:

    limit = decode-only + detector-only
    decode-only   = decord decoding the distinct sampled frames, nothing else (no copy into a clip)
    detector-only = that version's detector on the frames it detects on, as it runs them (before: every sampled
                    frame, one after the other; now: each distinct source frame, frames side by side), frames
                    already in memory
    ratio = total / limit

The older revision is `git archive REV processing` unpacked into a temporary folder and imported as its own
package (`processing/` imports only its siblings, relatively, so it runs as it was).
"""

from __future__ import annotations

import importlib
import io
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

BASELINE_PACKAGE = "facetrack_baseline"
STAGES = ["decode", "detect", "track", "identity", "crop", "total", "decode_only", "detector_only", "limit"]


def import_processing_at(rev: str, repo: Path, folder: Path):
    """The `processing` package of commit `rev`, unpacked into `folder` and imported as BASELINE_PACKAGE:
    (video_io, face_tracking) modules."""
    archive = subprocess.run(["git", "-C", str(repo), "archive", rev, "processing"], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    (folder / "processing").rename(folder / BASELINE_PACKAGE)
    sys.path.insert(0, str(folder))
    return (importlib.import_module(f"{BASELINE_PACKAGE}.video_io"),
            importlib.import_module(f"{BASELINE_PACKAGE}.face_tracking"))


def decode_only_ms(path: Path, indices: list[int]) -> float:
    """decord decoding each distinct sampled frame once (its own NDArrays, no numpy copy)."""
    import decord

    start = time.perf_counter()
    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=2)
    for index in sorted(set(indices)):
        reader.get_batch([index])
    return (time.perf_counter() - start) * 1000


def time_version(path: Path, num_frames: int, video_io, face_tracking, tracker, current: bool) -> dict[str, float]:
    """One run of one version's tracking path and of its limit, in ms. The current version runs it as
    `analyze_video` does: faces are detected while the video decodes (`DetectionStream`), so "decode" holds
    detection too and "detect" is what remains of it once decoding ends; each distinct frame is detected and
    cropped once."""
    from facetrack.faces.detection import DetectionStream, detect_frames
    from facetrack.video.frame_work import first_positions

    start = time.perf_counter()
    if current:
        with DetectionStream(tracker.detector) as stream:
            clip = video_io.load_video(path, num_frames=num_frames, on_frame=stream.submit)
            decoded = time.perf_counter()
            detections = stream.detections(clip.frame_indices)
    else:
        clip = video_io.load_video(path, num_frames=num_frames)
        decoded = time.perf_counter()
        detections = tracker.detect(clip.frames)
    detected = time.perf_counter()
    result = tracker.track(clip, detections=detections)
    tracked = time.perf_counter()
    if current:
        face_tracking.crop_faces(clip.frames, result.boxes, size=224, frame_indices=clip.frame_indices)
    else:
        face_tracking.crop_faces(clip.frames, result.boxes, size=224)
    cropped = time.perf_counter()
    detected_on = clip.frames
    if current:
        detected_on = clip.frames[list(first_positions(clip.frame_indices).values())]
    detector_start = time.perf_counter()
    if current:
        detect_frames(tracker.detector, detected_on)  # frames side by side, as the tracker runs them
    else:
        for frame in detected_on:
            tracker.detector.detect(frame)
    detector_ms = (time.perf_counter() - detector_start) * 1000
    decode_ms = decode_only_ms(path, clip.frame_indices)
    del clip
    times = {"decode": decoded - start, "detect": detected - decoded, "track": tracked - detected,
             "crop": cropped - tracked, "total": cropped - start}
    row = {name: seconds * 1000 for name, seconds in times.items()}
    # (older revisions kept the embeddings' ms in the result itself)
    identity_ms = tracker.timings["identity"] if hasattr(tracker, "timings") else result.identity["ms"]
    row.update(identity=identity_ms, decode_only=decode_ms, detector_only=detector_ms,
               limit=decode_ms + detector_ms)
    return row


def run_limit_benchmark(clip_path: Path, repo: Path, baseline_rev: str, frame_counts: list[int], runs: int,
                        scratch: Path) -> None:
    import numpy as np

    from facetrack.faces import tracking as face_tracking
    from facetrack.video import decode as video_io

    old_io, old_tracking = import_processing_at(baseline_rev, repo, scratch)
    versions = {f"before ({baseline_rev})": (old_io, old_tracking, old_tracking.FaceTracker("retinaface"), False),
                "now": (video_io, face_tracking, face_tracking.FaceTracker("retinaface"), True)}
    warm_up = np.zeros((2, 64, 64, 3), dtype=np.uint8)
    for io_module, _tracking, tracker, _ in versions.values():  # imports, and the identity model once
        tracker.track(io_module.load_video(warm_up, num_frames=None))
    print(f"| frames | version | decode ms | detect ms | track ms | of which identity ms | crop ms | total ms "
          f"| decode-only ms | detector-only ms | limit ms | total / limit |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for num_frames in frame_counts:
        rows: dict[str, list[dict[str, float]]] = {label: [] for label in versions}
        for _ in range(runs):
            for label, (io_module, tracking, tracker, current) in versions.items():
                rows[label].append(time_version(clip_path, num_frames, io_module, tracking, tracker, current))
        for label, measured in rows.items():
            t = {name: statistics.median(row[name] for row in measured) for name in STAGES}
            ratio = statistics.median(row["total"] / row["limit"] for row in measured)
            print(f"| {num_frames} | {label} | {t['decode']:.0f} | {t['detect']:.0f} | {t['track']:.0f} | "
                  f"{t['identity']:.0f} | {t['crop']:.0f} | {t['total']:.0f} | {t['decode_only']:.0f} | "
                  f"{t['detector_only']:.0f} | {t['limit']:.0f} | {ratio:.2f} |")
