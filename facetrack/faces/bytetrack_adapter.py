"""The one place that knows roboflow `trackers`' ByteTrack beyond its public `update()` contract.

`ByteTrackAdapter(...).tracks(detections)` runs ByteTrack over one shot's frames and returns one
{frame position: detection} dict per track, in order of creation, *including each track's first frame*.

Why internals are needed: `update()` returns tracker id -1 for the detection that starts a track (the id is given
at the track's first match, one frame later), so the public contract cannot say which detection started which
track. The adapter reads `tracker.tracks` (the live tracklets) and, per tracklet, `tracker_id` and
`get_state_bbox()`, as `trackers` TRACKERS_VERSION has them; a test fails with a clear message when the installed
version differs, so these three uses are re-checked on every upgrade.
"""

from __future__ import annotations

import numpy as np

from facetrack.faces.detection import FaceDetection

TRACKERS_VERSION = "2.6.1"  # the version whose internals this adapter was checked against (tests pin it)


def _import_trackers():
    try:
        import supervision
        from trackers import ByteTrackTracker
    except ImportError as error:
        raise ImportError(
            f"face tracking needs roboflow trackers and supervision "
            f"(pip install supervision; pip install --no-deps trackers=={TRACKERS_VERSION}): {error}"
        ) from error
    return supervision, ByteTrackTracker


def box_iou_matrix(boxes_a, boxes_b) -> np.ndarray:
    """(N, M) IoU of x1, y1, x2, y2 boxes: supervision's `box_iou_batch`."""
    supervision, _ = _import_trackers()
    return supervision.box_iou_batch(np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4),
                                     np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4))


class ByteTrackAdapter:
    """ByteTrack in fixed-step mode (one Kalman step per call: frame_rate 30 makes the buffer count sampled frames),
    tracks confirmed on their first match."""

    def __init__(self, *, lost_track_buffer: int, min_iou: float, high_confidence: float,
                 activation_threshold: float) -> None:
        self._supervision, tracker_class = _import_trackers()
        self._tracker = tracker_class(
            lost_track_buffer=lost_track_buffer,
            frame_rate=30.0,
            track_activation_threshold=activation_threshold,
            minimum_consecutive_frames=1,
            minimum_iou_threshold=min_iou,
            high_conf_det_threshold=high_confidence,
        )

    def tracks(self, detections: list[list[FaceDetection]]) -> list[dict[int, FaceDetection]]:
        """One {position: detection} dict per track over these frames (one list of detections per frame)."""
        sv = self._supervision
        tracks: dict[int, dict[int, FaceDetection]] = {}
        # Tracklets created from a detection but without an id yet: (tracklet, frame, the detection that started it).
        pending: list[tuple[object, int, FaceDetection]] = []
        for t, frame_detections in enumerate(detections):
            if frame_detections:
                inputs = sv.Detections(
                    xyxy=np.array([d.box for d in frame_detections], dtype=np.float64).reshape(-1, 4),
                    confidence=np.array([d.score for d in frame_detections], dtype=np.float64),
                    data={"index": np.arange(len(frame_detections))},
                )
            else:
                inputs = sv.Detections.empty()
            before = list(self._tracker.tracks)  # the tracklets themselves, compared by identity
            outputs = self._tracker.update(inputs)
            unassigned = []
            for index, track_id in zip(outputs.data.get("index", []), outputs.tracker_id):
                if track_id >= 0:
                    tracks.setdefault(int(track_id), {})[t] = frame_detections[int(index)]
                else:
                    unassigned.append(frame_detections[int(index)])
            created = [tracklet for tracklet in self._tracker.tracks if not any(tracklet is b for b in before)]
            if created and unassigned:
                # A new tracklet's state box is the detection it was made from: the best-overlapping one.
                overlaps = box_iou_matrix([tracklet.get_state_bbox() for tracklet in created],
                                          [d.box for d in unassigned])
                pending.extend((tracklet, t, unassigned[int(np.argmax(row))]) for tracklet, row in zip(created, overlaps))
            still_pending = []
            for tracklet, start_t, detection in pending:
                if tracklet.tracker_id >= 0:
                    tracks.setdefault(int(tracklet.tracker_id), {})[start_t] = detection
                else:
                    still_pending.append((tracklet, start_t, detection))
            pending = still_pending
        # Tracks started but never matched again (seen in one frame only) still become (short) tracks.
        ordered = [tracks[track_id] for track_id in sorted(tracks)]
        ordered.extend({start_t: detection} for _tracklet, start_t, detection in pending)
        return ordered
