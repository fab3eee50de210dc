"""Face tracks that hold a made-up measured expression timeline (as `facetrack dataset build` stores a real one), for
tests of the expression stream that need no landmarker: the processor reads the stored timeline and never measures.

`measured_track(boxes)`: person 1 followed where a box is given; per frame with a box, seeded random blendshapes,
head pose, eye / mouth / brow measures and emotions (all in their real ranges); frames listed in `not_found` have a
box but no face found by the landmarker (unmeasured, like a frame without a box).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facetrack.expressions.measure import BLENDSHAPE_NAMES, ExpressionTimeline, FrameExpression
from facetrack.expressions.models import EMOTION_LABELS
from facetrack.expressions.report import report_from_timeline
from facetrack.faces.track_result import FaceTrackResult


def measured_track(
    boxes: Sequence[Sequence[float] | None],
    width: int = 64,
    height: int = 48,
    seed: int = 0,
    timestamps: Sequence[float] | None = None,
    frame_indices: Sequence[int] | None = None,
    not_found: Sequence[int] = (),
) -> FaceTrackResult:
    timestamps = [0.5 * index for index in range(len(boxes))] if timestamps is None else list(timestamps)
    track = FaceTrackResult.from_boxes([None if box is None else list(box) for box in boxes], width=width,
                                       height=height, timestamps=timestamps, frame_indices=frame_indices, score=0.9,
                                       reason="test")
    rng = np.random.default_rng(seed)
    frames = []
    for index, (frame, box) in enumerate(zip(track.frames, boxes)):
        if box is None:
            frames.append(FrameExpression(timestamp=frame.timestamp, frame_index=frame.frame_index))
            continue
        if index in not_found:
            frames.append(FrameExpression(timestamp=frame.timestamp, frame_index=frame.frame_index, box=list(box)))
            continue
        eyes = float(rng.uniform(0.1, 0.4))
        frames.append(FrameExpression(
            timestamp=frame.timestamp, frame_index=frame.frame_index, box=[float(v) for v in box], face_found=True,
            blendshapes=rng.uniform(0.0, 1.0, len(BLENDSHAPE_NAMES)).tolist(),
            yaw=float(rng.uniform(-30, 30)), pitch=float(rng.uniform(-15, 15)), roll=float(rng.uniform(-10, 10)),
            eye_open_left=eyes, eye_open_right=eyes * 0.95, mouth_open=float(rng.uniform(0.0, 0.4)),
            lip_corner_width=float(rng.uniform(0.8, 1.3)), brow_height=float(rng.uniform(0.40, 0.48)),
            brow_gap=float(rng.uniform(0.42, 0.52)), emotions=rng.dirichlet(np.ones(len(EMOTION_LABELS))).tolist(),
        ))
    if track.person_id is not None:
        track.expressions = {track.person_id: report_from_timeline(ExpressionTimeline(frames=frames),
                                                                   track.person_id)}
    return track
