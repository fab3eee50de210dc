"""The speed-ups of tracking keep its results: repeated frames detected once, frames detected side by side, frames
decoded shrunk."""

from __future__ import annotations

import numpy as np
import pytest
from test_face_tracking import ScriptedDetector, iou, scripted_clip

from facetrack.faces.detection import get_face_detector
from facetrack.faces.tracking import FaceTracker
from facetrack.video.crops import crop_faces
from facetrack.video.decode import load_video


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
    from facetrack.faces.detection import detect_frames

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


# ------------------------------------------------------------------------------- decoding and detection overlap
def test_load_video_hands_each_distinct_frame_over_once_with_its_final_pixels(media_dir):
    # decord (frame by frame, while decoding), PyAV (max_side shrinks through PyAV) and in-memory frames, with the
    # repeats of 12 samples of a short clip.
    handed: dict[str, list] = {}
    for name, video, options in [("decord", media_dir / "single_face.mp4", {}),
                                 ("pyav", media_dir / "single_face.mp4", {"max_side": 320}),
                                 ("frames", scripted_clip(5).frames, {})]:
        calls = handed[name] = []
        clip = load_video(video, num_frames=12 if name == "frames" else 9,
                          on_frame=lambda index, frame, calls=calls: calls.append((index, frame)), **options)
        assert [index for index, _ in calls] == sorted(set(clip.frame_indices)), name
        for index, frame in calls:
            np.testing.assert_array_equal(frame, clip.frames[clip.frame_indices.index(index)])
            assert not frame.flags.writeable  # a view of the clip: the receiver cannot change the clip
    assert len(handed["frames"]) == 5


def test_decoding_hands_frames_over_before_the_next_one_is_decoded(media_dir, monkeypatch):
    # The point of on_frame: work starts while decoding goes on. Each frame is handed over before the next one is
    # decoded (counted decoder calls, not timings: the test holds on a loaded machine too).
    import decord

    decoded = []
    get_batch = decord.VideoReader.get_batch

    def counting_get_batch(self, indices):
        decoded.extend(indices)
        return get_batch(self, indices)

    monkeypatch.setattr(decord.VideoReader, "get_batch", counting_get_batch)
    seen_at_handover = []
    load_video(media_dir / "single_face.mp4", num_frames=8,
               on_frame=lambda index, frame: seen_at_handover.append(len(decoded)))
    assert seen_at_handover == list(range(1, 9)), seen_at_handover


def test_analyze_video_detects_while_decoding_with_the_same_result_as_track_after_load(media_dir):
    from facetrack.analysis.video_analysis import analyze_video

    tracker = FaceTracker("retinaface", identity=None)
    for video in ["single_face.mp4", "face_noface.mov"]:
        analysis = analyze_video(media_dir / video, num_frames=10, tracker=tracker, expressions=False)
        after_load = tracker.track(load_video(media_dir / video, num_frames=10))
        assert analysis.track.to_dict() == after_load.to_dict()
        assert analysis.track.present.any()


def test_detection_stream_gives_each_frame_its_faces_and_keeps_other_detectors_on_one_thread():
    import threading
    import time

    from facetrack.faces.detection import DetectionStream

    script = [[(10 * t, 0, 10 * t + 20, 20)] for t in range(6)]

    class OneAtATime(ScriptedDetector):  # no detect_frames: it may not be thread-safe
        busy, overlaps, threads = 0, 0, set()

        def detect(self, frame):
            OneAtATime.busy += 1
            OneAtATime.overlaps += OneAtATime.busy > 1
            OneAtATime.threads.add(threading.get_ident())
            time.sleep(0.002)
            OneAtATime.busy -= 1
            return super().detect(frame)

    clip = scripted_clip(6)
    with DetectionStream(OneAtATime(script)) as stream:
        for index in [0, 1, 2, 3, 4, 5, 2]:  # a repeat is detected once
            stream.submit(index, clip.frames[index])
        faces = stream.detections([0, 0, 3, 5, 1])
    assert [found[0].box for found in faces] == [script[i][0] for i in [0, 0, 3, 5, 1]]
    faces[0].append("mine")  # every frame's list is its own
    assert len(faces[1]) == 1
    assert OneAtATime.overlaps == 0 and len(OneAtATime.threads) == 1
    with DetectionStream(OneAtATime(script)) as stream:
        stream.submit(0, clip.frames[0])
        with pytest.raises(ValueError, match="no frame was submitted for source indices \\[4\\]"):
            stream.detections([0, 4])


def test_a_failing_detector_or_video_stops_the_stream_with_its_own_error(media_dir, bad_files):
    import threading

    from facetrack.analysis.video_analysis import analyze_video
    from facetrack.video.probe import VideoDecodeError

    class Broken:
        name = "broken"

        def detect(self, frame):
            raise RuntimeError("the detector broke")

    with pytest.raises(RuntimeError, match="the detector broke"):
        analyze_video(media_dir / "single_face.mp4", num_frames=6, tracker=FaceTracker(Broken(), identity=None),
                      expressions=False)
    path, word = bad_files["corrupt"]
    with pytest.raises(VideoDecodeError, match=word):
        analyze_video(path, num_frames=6, tracker=FaceTracker(Broken(), identity=None), expressions=False)
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("detect")]


def test_crops_of_repeated_frames_are_cut_once_and_equal_one_by_one():
    clip = load_video(scripted_clip(4).frames, num_frames=10)
    rng = np.random.default_rng(0)
    clip.frames[:] = rng.integers(0, 255, clip.frames.shape[1:], dtype=np.uint8)  # the same picture everywhere
    boxes = [[100, 80, 160, 150] if t != 4 else None for t in range(10)]
    by_index = crop_faces(clip.frames, boxes, size=24, frame_indices=clip.frame_indices)
    singles = np.stack([crop_faces(clip.frames[t : t + 1], boxes[t : t + 1], size=24)[0] for t in range(10)])
    np.testing.assert_array_equal(by_index, singles)
    assert not by_index[4].any() and by_index[0].any()
    with pytest.raises(ValueError, match="3 frame indices for 10 frames"):
        crop_faces(clip.frames, boxes, size=24, frame_indices=[0, 1, 2])
