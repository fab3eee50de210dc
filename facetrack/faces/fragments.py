"""Frame-to-frame face association: ByteTrack (roboflow `trackers`, through `bytetrack_adapter`) inside each shot,
cut into fragments that hold one person each for certain, plus the position rule that re-links fragments when
identity is unknown.

A *fragment* is a run of one tracker track inside one shot, between two points where the person could have changed:
- a shot cut (the tracker is restarted in every shot, so no track crosses a cut);
- an appearance change: consecutive faces of the track whose colour signatures differ by more than
  `face_identity.SIGNATURE_CHANGE` (two people swapping places, a crossing where the tracker took the other face);
- a gap of `gap_split` or more sampled frames without the face (someone else may have stepped in).
Fragments split at the last two points are *tracker-linked*: the identity step decides whether they are one person.

ByteTrack runs in fixed-step mode (one Kalman step per sampled frame), keeps a lost track for `lost_track_buffer`
sampled frames, gates on IoU >= `min_iou`, confirms on the first match; detections scoring below `high_confidence`
only extend tracks, new tracks need `activation_threshold`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from facetrack.faces.bytetrack_adapter import ByteTrackAdapter, box_iou_matrix
from facetrack.faces.detection import FaceDetection
from facetrack.faces.identity import SIGNATURE_CHANGE, appearance_signature, signature_change


@dataclass
class Fragment:
    fragment_id: int
    shot: int
    detections: dict[int, FaceDetection]  # frame position -> detection
    linked_from: int | None = None  # the fragment of the same tracker track just before this one (tracker-linked)
    embedding: np.ndarray | None = field(default=None, repr=False)
    embedded_at: list[int] = field(default_factory=list)  # frame positions whose faces were embedded
    weak: bool = False  # the embedded face was small or cut by the frame border
    signature: np.ndarray | None = field(default=None, repr=False)  # mean colour signature of its faces
    look_alike: int | None = None  # fragments of one shot with the same look share an embedding (see embed_fragments)

    @property
    def frames(self) -> list[int]:
        return sorted(self.detections)

    def side(self, t: int) -> float:
        return box_side(self.detections[t].box)


def box_side(box: Sequence[float]) -> float:
    return math.sqrt(max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0))


def box_center(box: Sequence[float]) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    return float(box_iou_matrix([a], [b])[0, 0])


def split_track(
    track: dict[int, FaceDetection], frames: np.ndarray, gap_split: int, frame_indices: Sequence[int] | None = None
) -> list[tuple[dict[int, FaceDetection], np.ndarray | None, bool]]:
    """Cut one tracker track where the person may have changed; returns (piece, its mean colour signature,
    linked to the previous piece). The same box on the same source frame (`frame_indices`: a clip sampled with
    repeats) is measured once."""
    positions = sorted(track)
    by_source: dict[tuple, np.ndarray | None] = {}
    signatures = {}
    for t in positions:
        key = (t if frame_indices is None else frame_indices[t], tuple(track[t].box))
        if key not in by_source:
            by_source[key] = appearance_signature(frames[t], track[t].box)
        signatures[t] = by_source[key]
    pieces: list[list[int]] = [[positions[0]]]
    for before, after in zip(positions, positions[1:]):
        changed = signature_change(signatures[before], signatures[after]) > SIGNATURE_CHANGE
        if changed or after - before - 1 >= gap_split:
            pieces.append([])
        pieces[-1].append(after)
    out = []
    for index, piece in enumerate(pieces):
        known = [signatures[t] for t in piece if signatures[t] is not None]
        mean = None
        if known:
            mean = np.mean(known, axis=0).astype(np.float32)
            mean /= max(float(np.linalg.norm(mean)), 1e-12)
        out.append(({t: track[t] for t in piece}, mean, index > 0))
    return out


def make_fragments(
    detections: list[list[FaceDetection]],
    frames: np.ndarray,
    shots: list[int],
    *,
    gap_split: int,
    frame_indices: Sequence[int] | None = None,
    **bytetrack_options,
) -> list[Fragment]:
    """ByteTrack in every shot separately, each track split into fragments (see the module docstring).
    `frame_indices`: the source index of each frame, so repeated frames are measured once."""
    fragments: list[Fragment] = []
    shot_starts = [t for t in range(len(shots)) if t == 0 or shots[t] != shots[t - 1]]
    for start, stop in zip(shot_starts, shot_starts[1:] + [len(shots)]):
        for track in ByteTrackAdapter(**bytetrack_options).tracks(detections[start:stop]):
            shifted = {start + t: detection for t, detection in track.items()}
            previous: int | None = None
            for piece, signature, linked in split_track(shifted, frames, gap_split, frame_indices):
                fragment = Fragment(len(fragments), shots[start], piece, linked_from=previous if linked else None,
                                    signature=signature)
                fragments.append(fragment)
                previous = fragment.fragment_id
    return fragments


def continues(a_box: Sequence[float], b_box: Sequence[float], max_distance: float, max_size_ratio: float) -> float | None:
    """How far b's first box is from a's last one, in mean face sides, if b could continue a (else None)."""
    side_a, side_b = box_side(a_box), box_side(b_box)
    if min(side_a, side_b) <= 0 or max(side_a, side_b) / min(side_a, side_b) > max_size_ratio:
        return None
    (ax, ay), (bx, by) = box_center(a_box), box_center(b_box)
    distance = math.hypot(ax - bx, ay - by) / ((side_a + side_b) / 2.0)
    return distance if distance <= max_distance else None
