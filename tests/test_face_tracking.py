"""Face detection, tracking, main-character choice, crops and the JSON result, on real clips and built ones.
(The identity cases, with two people built from tests/media, are in test_person_identity.py.)"""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from facetrack.analysis.video_analysis import read_face_track
from facetrack.faces.detection import FaceDetection, as_face_detector, get_face_detector
from facetrack.faces.tracking import FaceTracker
from facetrack.video.crops import crop_faces
from facetrack.video.decode import load_video

# The five faces of multi_face.jpg (1000x667) as RetinaFace finds them at full resolution (x1, y1, x2, y2).
# MAIN_FACE is the largest: the woman on the right; the built clip pans and zooms onto her.
MAIN_FACE = (682.0, 289.0, 791.0, 422.0)
OTHER_FACES = [(531.0, 308.0, 629.0, 434.0), (316.0, 234.0, 409.0, 359.0), (219.0, 66.0, 307.0, 174.0),
               (437.0, 215.0, 518.0, 309.0)]
# Where the shots change in the two cut clips (found by frame differencing and looking at the frames):
FACE_NOFACE_LAST_FACE_FRAME = 71  # face_noface.mov: the man until frame 71, then the cartoon title
NOFACE_FACE_FIRST_FACE_FRAME = 96  # noface_face.mov: the title until frame 95, the man from 96; frame 168 is black
NOFACE_FACE_BLACK_FRAME = 168


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def tracker() -> FaceTracker:
    return FaceTracker("retinaface")


@pytest.fixture(scope="module")
def shared_results(media_dir, tracker):
    """Each shared video is decoded and tracked once (32 frames), on first use."""
    cache: dict[str, tuple] = {}

    def get(name: str):
        if name not in cache:
            clip = load_video(media_dir / name, num_frames=32)
            cache[name] = (clip, tracker.track(clip))
        return cache[name]

    return get


# ---------------------------------------------------------------------------------------------- real shared clips
@pytest.mark.parametrize("name", ["single_face.mp4", "WolfgangLanger_Pexels.mp4"])
def test_one_person_has_a_main_face_in_nearly_every_frame(shared_results, name):
    clip, result = shared_results(name)
    assert result.main_person_id is not None and result.person_id == result.main_person_id
    assert result.present.mean() >= 0.95, result.summary()
    main_frames = [f for f in result.frames if f.box is not None]
    assert {f.person_id for f in main_frames} == {result.main_person_id}
    # One person keeps one id, although the 32 samples of the 20 s clip are 0.6 s apart.
    long_persons = [pid for pid, person in result.persons.items() if person.num_frames >= 3]
    assert long_persons == [result.main_person_id]
    assert result.shot_cuts == []  # one shot
    # One fragment, nobody to tell apart: no face needed an embedding (identity costs nothing here).
    assert result.identity["faces_embedded"] == 0
    for frame in main_frames:  # a face-sized box inside the frame
        x1, y1, x2, y2 = frame.box
        assert 0 <= x1 < x2 <= clip.width and 0 <= y1 < y2 <= clip.height
        assert 0.05 * clip.height < y2 - y1 < 0.9 * clip.height
        assert frame.score > 0.5 and not frame.interpolated


def test_no_face_video_has_no_main_character(shared_results):
    _, result = shared_results("no_face.mp4")
    assert result.main_person_id is None and result.person_id is None and result.persons == {}
    assert not result.present.any()
    assert "no" in result.reason.lower()
    assert all(f.box is None and f.person_id is None for f in result.frames)


def test_face_then_cut_to_no_face(shared_results):
    clip, result = shared_results("face_noface.mov")
    assert result.main_person_id is not None
    # The cut to the title is found (the first sampled frame after frame 71).
    first_title = next(t for t, index in enumerate(clip.frame_indices) if index > FACE_NOFACE_LAST_FACE_FRAME)
    assert clip.timestamps[first_title] in result.shot_cuts
    face_frames = [t for t, index in enumerate(clip.frame_indices) if index <= FACE_NOFACE_LAST_FACE_FRAME]
    present = np.flatnonzero(result.present)
    assert set(present) <= set(face_frames), "a face reported after the cut"
    assert len(present) >= 0.9 * len(face_frames)
    assert len(face_frames) < len(clip)  # the sample does reach past the cut


def test_no_face_then_cut_to_face(shared_results):
    clip, result = shared_results("noface_face.mov")
    assert result.main_person_id is not None
    face_frames = [t for t, index in enumerate(clip.frame_indices)
                   if NOFACE_FACE_FIRST_FACE_FRAME <= index < NOFACE_FACE_BLACK_FRAME]
    present = np.flatnonzero(result.present)
    assert set(present) <= set(face_frames), "a face reported before the cut (or on the black last frame)"
    assert len(present) >= 0.9 * len(face_frames)
    assert present.min() > 0


def test_result_json_round_trip(shared_results):
    _, result = shared_results("face_noface.mov")
    text = json.dumps(result.to_dict())
    restored = read_face_track(json.loads(text))
    assert restored == result
    assert restored.persons.keys() == result.persons.keys() and all(isinstance(k, int) for k in restored.persons)
    assert text.count('"version": 3') == 1
    np.testing.assert_array_equal(restored.present, result.present)
    with pytest.raises(ValueError, match="not a valid face-track result"):
        read_face_track({"frames": [{"timestamp": 0.0}]})


def test_crops_of_a_real_video(shared_results):
    clip, result = shared_results("noface_face.mov")
    crops = crop_faces(clip.frames, result.boxes, size=96)
    assert crops.shape == (32, 96, 96, 3) and crops.dtype == np.uint8
    present = result.present
    assert not crops[~present].any()  # zeros where the face is missing
    assert all(crop.std() > 10 for crop in crops[present])  # real picture content where it is present


# ------------------------------------------------------------------------------------- built multi-person clips
def render_pan_zoom(image: np.ndarray, num_frames: int = 24, width: int = 640, height: int = 360,
                    hide: range = range(0)) -> tuple[np.ndarray, list[list[float]]]:
    cx, cy = (MAIN_FACE[0] + MAIN_FACE[2]) / 2, (MAIN_FACE[1] + MAIN_FACE[3]) / 2
    frames, boxes = [], []
    for i in range(num_frames):
        progress = i / (num_frames - 1)
        scale = width / (900 - 300 * progress)  # zoom in from a 900 px wide window to 600 px
        center_x, center_y = cx + 60 * (1 - progress), cy - 20 * (1 - progress)  # pan onto the face
        matrix = np.array([[scale, 0, width / 2 - scale * center_x], [0, scale, height / 2 - scale * center_y]])
        frame = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_AREA, borderValue=(0, 0, 0))
        box = [MAIN_FACE[0] * scale + matrix[0, 2], MAIN_FACE[1] * scale + matrix[1, 2],
               MAIN_FACE[2] * scale + matrix[0, 2], MAIN_FACE[3] * scale + matrix[1, 2]]
        if i in hide:
            x1, y1, x2, y2 = (int(v) for v in box)
            frame[max(0, y1 - 10) : y2 + 10, max(0, x1 - 10) : x2 + 10] = 128
        frames.append(frame)
        boxes.append(box)
    return np.stack(frames), boxes


@pytest.fixture(scope="module")
def multi_face_image(media_dir) -> np.ndarray:
    return np.asarray(Image.open(media_dir / "multi_face.jpg").convert("RGB"))


def test_known_faces_of_the_photo(multi_face_image):
    detections = get_face_detector("retinaface", max_side=None).detect(multi_face_image)
    assert len(detections) == 5
    for known in [MAIN_FACE, *OTHER_FACES]:
        assert max(iou(known, d.box) for d in detections) > 0.8


def test_main_character_in_a_multi_person_pan_zoom(tmp_path, multi_face_image, tracker):
    from facetrack.analysis.overlay import write_video

    frames, main_boxes = render_pan_zoom(multi_face_image)
    path = write_video(frames, tmp_path / "pan_zoom.mp4", fps=8)
    clip = load_video(path, num_frames=None)
    result = tracker.track(clip)
    assert len(result.persons) >= 3  # the others are tracked too
    assert result.main_person_id is not None
    for frame, expected in zip(result.frames, main_boxes):
        assert frame.box is not None and iou(frame.box, expected) > 0.6, (frame, expected)
        assert frame.person_id == result.main_person_id
    assert f"person {result.main_person_id} is the main character" in result.reason
    assert "presence x size x centrality" in result.reason and "runner-up: person" in result.reason
    # Every person's factors are in the result, and the winner's score is the highest.
    factors = result.selection["factors"]
    assert set(factors) == {str(pid) for pid in result.persons}
    assert max(factors, key=lambda pid: factors[pid]["score"]) == str(result.main_person_id)
    assert result.selection["runner_up"] in result.persons


def test_hidden_main_face_is_missing_then_keeps_its_id(tmp_path, multi_face_image, tracker):
    from facetrack.analysis.overlay import write_video

    hidden = range(10, 14)
    frames, main_boxes = render_pan_zoom(multi_face_image, hide=hidden)
    clip = load_video(write_video(frames, tmp_path / "hidden.mp4", fps=8), num_frames=None)
    result = tracker.track(clip)
    assert result.main_person_id is not None
    for t, (frame, expected) in enumerate(zip(result.frames, main_boxes)):
        if t in hidden:
            assert frame.box is None and frame.person_id is None, f"frame {t} was given someone's box: {frame}"
        else:
            assert iou(frame.box, expected) > 0.6 and frame.person_id == result.main_person_id
    # The per-person view agrees: the main person has no box while hidden, and nobody else took their place.
    assert all(result.persons[result.main_person_id].boxes[t] is None for t in hidden)
    # The two fragments around the gap are one person: joined by identity (or, without dlib, by position).
    joins = [fragment["joined"] for fragment in result.persons[result.main_person_id].fragments]
    assert joins[0] == "first" and len(joins) == 2 and joins[1].startswith(("identity", "look-alike", "position"))

    interpolating = FaceTracker(tracker.detector, interpolate_max_gap=4).track(clip)
    assert interpolating.main_person_id == result.main_person_id
    for t in hidden:
        frame = interpolating.frames[t]
        assert frame.interpolated and frame.score is None and iou(frame.box, main_boxes[t]) > 0.5


# ---------------------------------------------------------------------------------- scripted detector (rules)
class ScriptedDetector:
    """Returns prepared detections frame by frame (frames carry their index in pixel [0, 0, 0])."""

    def __init__(self, script: list[list[tuple[float, float, float, float]]], score: float = 0.95):
        self.script = script
        self.score = score

    def detect(self, frame: np.ndarray) -> list[FaceDetection]:
        return [FaceDetection(box=box, score=self.score, landmarks=None) for box in self.script[int(frame[0, 0, 0])]]


def scripted_clip(num_frames: int, width: int = 640, height: int = 360):
    frames = np.zeros((num_frames, height, width, 3), dtype=np.uint8)
    frames[:, 0, 0, 0] = np.arange(num_frames)
    return load_video(frames, num_frames=None)


def test_fragments_after_a_gap_are_relinked_by_position_without_identity():
    # Person A is seen in frames 0-5, lost in 6-9, and comes back 60 px to the right (IoU 0 with where it was):
    # ByteTrack gives it a new track; without identity, the position re-link must join the fragments. Person B
    # stays small at the edge. (Scripted faces are black squares: identity=None tests the position rule itself.)
    from facetrack.faces.bytetrack_adapter import ByteTrackAdapter

    a_before, a_after, b = (200, 100, 260, 170), (280, 110, 340, 180), (560, 20, 590, 55)
    script = [[a_before, b] if t < 6 else [b] if t < 10 else [a_after, b] for t in range(16)]
    tracker = FaceTracker(ScriptedDetector(script), identity=None, lost_track_buffer=2)
    clip = scripted_clip(16)
    raw_tracks = ByteTrackAdapter(**tracker.bytetrack_options).tracks(tracker.detect(clip.frames))
    assert len(raw_tracks) == 3  # without re-linking: A, B, and A's second fragment
    result = tracker.track(clip)
    assert len(result.persons) == 2
    main = result.main_person_id
    assert [f.box is not None for f in result.frames] == [t < 6 or t >= 10 for t in range(16)]
    assert {f.person_id for f in result.frames if f.box is not None} == {main}
    assert result.frames[12].box == list(map(float, a_after))
    assert [f["joined"] for f in result.persons[main].fragments][1].startswith("position")
    assert "identity is off" in result.identity["note"] and result.identity["embedder"] is None
    # A far-away newcomer after the gap is not joined to A.
    script = [[a_before] if t < 6 else [] if t < 10 else [(500, 250, 560, 320)] for t in range(16)]
    result = FaceTracker(ScriptedDetector(script), identity=None, lost_track_buffer=2).track(scripted_clip(16))
    assert len(result.persons) == 2


def test_main_rule_prefers_present_large_central_faces():
    center, corner = (290, 150, 350, 210), (0, 0, 60, 60)
    big_edge, small_center = (0, 100, 150, 280), (305, 165, 335, 195)
    cases = [
        ([[center, corner]] * 8, center),  # same size and presence: the central one
        ([[big_edge, small_center]] * 8, big_edge),  # 5x bigger beats central
        ([[corner] + ([center] if t < 2 else []) for t in range(8)], corner),  # always there beats briefly there
    ]
    for script, expected in cases:
        result = FaceTracker(ScriptedDetector(script), identity=None).track(scripted_clip(len(script)))
        assert result.frames[0].box == list(map(float, expected)), result.reason
        assert "runner-up" in result.reason


def test_a_face_in_one_frame_only_is_not_a_main_character():
    script = [[] for _ in range(8)]
    script[3] = [(100, 100, 160, 160)]
    result = FaceTracker(ScriptedDetector(script), identity=None).track(scripted_clip(8))
    assert result.main_person_id is None and len(result.persons) == 1
    assert "at least 2" in result.reason


def test_a_single_frame_clip_can_have_a_main_character():
    result = FaceTracker(ScriptedDetector([[(100, 100, 160, 160)]]), identity=None).track(scripted_clip(1))
    assert result.main_person_id == 1 and result.frames[0].box == [100.0, 100.0, 160.0, 160.0]


def test_low_confidence_detections_extend_but_never_start_tracks():
    box = (100, 100, 160, 160)
    weak = FaceTracker(ScriptedDetector([[box]] * 6, score=0.55), identity=None).track(scripted_clip(6))
    assert weak.main_person_id is None and weak.persons == {}
    # A confident start followed by weak detections of the same face: one track through all frames.
    scores = [0.95, 0.55, 0.55, 0.55, 0.55, 0.55]

    class FadingDetector(ScriptedDetector):
        def detect(self, frame):
            t = int(frame[0, 0, 0])
            return [FaceDetection(box=(100 + t, 100, 160 + t, 160), score=scores[t], landmarks=None)]

    fading = FaceTracker(FadingDetector([]), identity=None).track(scripted_clip(6))
    assert fading.main_person_id == 1 and fading.present.all()
    assert [f.score for f in fading.frames] == scores


# ------------------------------------------------------------------------------------------------- crops & misc
def test_crop_is_square_with_margin_and_padded_at_the_border():
    frame = np.zeros((100, 200, 3), dtype=np.uint8)
    frame[40:60, 90:110] = (255, 0, 0)  # a red 20x20 "face"
    frame[0:20, 0:20] = (0, 255, 0)  # a green face in the corner
    crops = crop_faces(np.stack([frame] * 3), [[90, 40, 110, 60], [0, 0, 20, 20], None], size=30, margin=0.25)
    assert crops.shape == (3, 30, 30, 3)
    # margin 0.25 -> a 30 px square around the 20 px box: red in the middle 20 px, black border of 5 px
    assert (crops[0, 5:25, 5:25] == (255, 0, 0)).all() and crops[0, :4].max() == 0
    # the corner square leaves the frame on the top/left: padded with zeros there, green inside
    assert crops[1, :4, :4].max() == 0 and (crops[1, 6:24, 6:24] == (0, 255, 0)).all()
    assert not crops[2].any()
    with pytest.raises(ValueError):
        crop_faces(np.stack([frame] * 3), [None], size=30)


def test_detectors_by_name_and_any_object_with_detect(media_dir):
    photo = np.asarray(Image.open(media_dir / "single_face.jpg").convert("RGB"))
    retina = get_face_detector("retinaface")
    assert retina._session.get_session_options().intra_op_num_threads <= (os.cpu_count() or 1)
    (face,) = retina.detect(photo)
    assert face.score > 0.9 and len(face.landmarks) == 5
    try:
        yunet = get_face_detector("yunet")  # optional: needs the yuface package
    except ImportError:
        yunet = None
    if yunet is not None:
        assert iou(face.box, max(yunet.detect(photo), key=lambda f: f.score).box) > 0.6  # the same face
    with pytest.raises(ValueError, match="unknown face detector"):
        get_face_detector("nope")
    with pytest.raises(TypeError):
        as_face_detector(object())
    wrapped = as_face_detector(ScriptedDetector([[(1, 1, 5, 5)]]))
    assert wrapped.name == "ScriptedDetector"



def test_bytetrack_adapter_is_pinned_to_the_checked_trackers_version():
    from importlib.metadata import version

    from facetrack.faces.bytetrack_adapter import TRACKERS_VERSION

    installed = version("trackers")
    assert installed == TRACKERS_VERSION, (
        f"trackers {installed} is installed but facetrack/faces/bytetrack_adapter.py was checked against "
        f"{TRACKERS_VERSION}: re-check its use of tracker.tracks, tracklet.tracker_id and tracklet.get_state_bbox(), "
        f"then update TRACKERS_VERSION and the pin in requirements-nodeps.txt")


def test_bytetrack_adapter_keeps_each_tracks_first_frame():
    # ByteTrack gives the detection that starts a track id -1; the adapter still puts it in that track.
    from facetrack.faces.bytetrack_adapter import ByteTrackAdapter

    a, b = FaceDetection((100, 100, 160, 170), 0.9), FaceDetection((400, 50, 450, 110), 0.9)
    late = FaceDetection((250, 200, 300, 260), 0.9)
    frames = [[a], [a, b], [a, b], [a, b, late]]
    adapter = ByteTrackAdapter(lost_track_buffer=10, min_iou=0.1, high_confidence=0.6, activation_threshold=0.6)
    tracks = adapter.tracks(frames)
    assert [sorted(track) for track in tracks] == [[0, 1, 2, 3], [1, 2, 3], [3]]  # the last: seen once, no id
    assert [track[3] for track in tracks] == [a, b, late]
