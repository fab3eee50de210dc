"""Shot cuts between sampled frames: a measured colour-histogram rule.

Sampled frames are far apart (32 frames of a 20 s clip are 0.6 s apart), so detectors built for consecutive frames
(PySceneDetect's content and adaptive detectors compare neighbouring frames pixel by pixel) see a fast pan or a walk
across the frame as a cut. The colour *distribution* of a shot changes little when the camera or the people move, and
a lot when the shot changes, so the rule compares whole-frame HSV histograms (16 hue x 4 saturation x 4 value bins, on
a 64x36 thumbnail) of consecutive sampled frames with the Bhattacharyya distance:

    cut between frame t-1 and t  <=>  distance(histogram(t-1), histogram(t)) > CUT_THRESHOLD (0.5)

Measured on the shared clips and the built test clips at 16, 32 and 64 sampled frames (benchmarks/README.md):
within-shot pairs <= 0.33 (fast pans included), real cuts between two people >= 0.82. A cut between shots with
the same colours (two people swapping places in front of one backdrop) is not seen here: the tracker's appearance
check catches that change of person instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facetrack.video.frame_work import map_on_threads
from facetrack.video.frame_work import once_per_source_frame

CUT_THRESHOLD = 0.5
_THUMBNAIL = (64, 36)


def frame_histograms(frames: np.ndarray, frame_indices: Sequence[int] | None = None) -> list[np.ndarray]:
    """One L2-normalised 16x4x4 HSV histogram per RGB frame of `frames` (T, H, W, 3). Frames with the same source
    index (`frame_indices`: a clip sampled with repeats) share one histogram, computed once."""
    # On a few threads: the thumbnail's area resize is most of the cost.
    return once_per_source_frame(frames, frame_indices, lambda distinct: map_on_threads(_histogram, distinct))


def _histogram(frame: np.ndarray) -> np.ndarray:
    import cv2

    thumbnail = cv2.resize(frame, _THUMBNAIL, interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(thumbnail, cv2.COLOR_RGB2HSV)
    histogram = cv2.calcHist([hsv], [0, 1, 2], None, [16, 4, 4], [0, 180, 0, 256, 0, 256])
    return cv2.normalize(histogram, histogram).flatten()


def cut_scores(frames: np.ndarray, frame_indices: Sequence[int] | None = None) -> list[float]:
    """Bhattacharyya distance between each pair of consecutive frames (T - 1 values, 0 = same colours)."""
    import cv2

    histograms = frame_histograms(frames, frame_indices)
    return [float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA)) for a, b in zip(histograms, histograms[1:])]


def detect_shot_cuts(
    frames: np.ndarray, threshold: float = CUT_THRESHOLD, frame_indices: Sequence[int] | None = None
) -> list[int]:
    """Positions t (1 <= t < T) where a new shot starts, in increasing order (`frame_indices`: see
    `frame_histograms`)."""
    return [t + 1 for t, score in enumerate(cut_scores(frames, frame_indices)) if score > threshold]


def shot_ids(num_frames: int, cuts: list[int]) -> list[int]:
    """The shot number (0, 1, ...) of every frame position, given the cut positions."""
    ids, shot, cut_set = [], 0, set(cuts)
    for t in range(num_frames):
        if t in cut_set:
            shot += 1
        ids.append(shot)
    return ids
