"""The speed-ups of tracking keep its results: repeated frames detected once, frames detected side by side, frames
decoded shrunk."""

from __future__ import annotations

import numpy as np
from test_face_tracking import ScriptedDetector, iou, scripted_clip

from facetrack.processing.face_detection import get_face_detector
from facetrack.processing.face_tracking import FaceTracker, crop_faces
from facetrack.processing.video_io import load_video


def test_detector_runs_once_per_distinct_source_frame_and_repeats_get_the_same_faces():
    # 10 samples of a 4-frame clip repeat frames; each repeat has the same faces (and crop) as its source frame.
    script = [[(100 + 20 * t, 80, 160 + 20 * t, 150)] for t in range(4)]

    class CountingDetector(ScriptedDetector):
        calls = 0

        def detect(self, frame):
            CountingDetector.calls += 1
            return super().detect(frame)

    tracker = FaceTracker(CountingDetector(script), identity=None)
    clip = load_video(scripted_clip(4).frames, num_frames=10)
    assert clip.frame_indices == [0, 0, 1, 1, 1, 2, 2, 2, 3, 3]
    result = tracker.track(clip)
    assert CountingDetector.calls == 4
    every_frame = tracker.track(clip, detections=[tracker.detector.detect(frame) for frame in clip.frames])
    assert CountingDetector.calls == 14
    assert result.to_dict() == every_frame.to_dict()
    assert [frame.box for frame in result.frames] == [list(map(float, script[i][0])) for i in clip.frame_indices]
    crops = crop_faces(clip.frames, result.boxes, size=32)
    singles = np.stack([crop_faces(clip.frames[t : t + 1], result.boxes[t : t + 1], size=32)[0] for t in range(10)])
    np.testing.assert_array_equal(crops, singles)


def test_retinaface_detects_frames_side_by_side_with_the_same_faces_in_order(media_dir):
    from facetrack.processing.face_detection import detect_frames

    frames = load_video(media_dir / "face_noface.mov", num_frames=6).frames  # faces, then none (the retry runs)
    one_by_one = [get_face_detector("retinaface").detect(frame) for frame in frames]
    side_by_side = detect_frames(get_face_detector("retinaface", num_threads=3), frames)
    assert side_by_side == one_by_one and any(one_by_one) and not all(one_by_one)
    scripted = ScriptedDetector([[(t, t, t + 9, t + 9)] for t in range(6)])  # no detect_frames: one by one
    assert [found[0].box for found in detect_frames(scripted, scripted_clip(6).frames)] == \
        [(t, t, t + 9, t + 9) for t in range(6)]


def test_frames_decoded_shrunk_give_the_same_boxes_within_tolerance(media_dir):
    # max_side shrinks inside the decoder; the boxes, mapped back to video pixels, stay put.
    path = media_dir / "single_face.mp4"  # 640 x 360
    tracker = FaceTracker("retinaface", identity=None)
    full = tracker.track(load_video(path, num_frames=8))
    shrunk_clip = load_video(path, num_frames=8, max_side=320)
    assert shrunk_clip.frames.shape[1:3] == (180, 320)
    shrunk = tracker.track(shrunk_clip).scaled_to(640, 360)
    assert full.present.all() and shrunk.present.all()
    for a, b in zip(full.boxes, shrunk.boxes):
        assert iou(a, b) > 0.85, (a, b)
