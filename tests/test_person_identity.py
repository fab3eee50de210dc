"""Whose face: identity through cuts, swaps, crossings and pans, small faces, and choosing the person.

The clips are built from tests/media by `person_clips` (man "A" of single_face.mp4 = the main character, woman "B"
of WolfgangLanger_Pexels.mp4; the five faces of multi_face.jpg), with ground truth of where each face is per frame.

(One file for identity-aware tracking: its tests share the built two-person clips (tests/person_clips.py), each
built once per session.)
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from person_clips import iou, person_in_box, score_main_track

from facetrack.analysis.video_analysis import read_face_track
from facetrack.commands.cli import main
from facetrack.faces import identity as face_identity
from facetrack.faces.tracking import FaceTracker
from facetrack.faces.track_result import FaceTrackResult
from facetrack.faces.selection import parse_target
from facetrack.video.decode import load_video

# (case, sampled frames): the cases.
CASES = [
    ("cut_a_to_b", 32), ("cut_b_to_a", 32),
    ("alternating", 16), ("alternating", 32), ("alternating", 64),
    ("side_by_side_swap", 32),
    ("crossing_pause", 16), ("crossing_pause", 32), ("crossing_rush", 16), ("crossing_rush", 32),
    ("fast_pan", 32),
    ("small_faces", 32),
]


@pytest.fixture(scope="module")
def tracker() -> FaceTracker:
    return FaceTracker("retinaface")


@pytest.fixture(scope="module")
def tracked(person_clips, tracker):
    """(case, frames) -> (BuiltClip, VideoClip, FaceTrackResult), each tracked once."""
    cache = {}

    def get(name: str, num_frames: int):
        if (name, num_frames) not in cache:
            built = person_clips[name]
            clip = load_video(built.path, num_frames=num_frames)
            cache[name, num_frames] = (built, clip, tracker.track(clip))
        return cache[name, num_frames]

    return get


def boxes_on(result: FaceTrackResult, built, person: str) -> list[int]:
    """Frame positions where `person` is visible but the result's box is not on them (should be empty)."""
    misses = []
    for t, (frame, people) in enumerate(zip(result.frames, built.truth_at(result.frame_indices))):
        if people[person] is not None and (frame.box is None or person_in_box(frame.box, people) != person):
            misses.append(t)
    return misses


# ------------------------------------------------------------------------------------------------ the main character
@pytest.mark.parametrize("name,num_frames", CASES, ids=[f"{name}-{n}" for name, n in CASES])
def test_main_character_is_followed_and_nobody_else_ever(tracked, name, num_frames):
    built, clip, result = tracked(name, num_frames)
    counts = score_main_track(result, built, "A")
    assert result.person_id == result.main_person_id is not None, result.summary()
    assert counts["visible"] > 0
    assert counts["on_person"] >= 0.95 * counts["visible"], (counts, result.summary())
    assert counts["elsewhere"] == 0, (counts, result.summary())  # never a box on B (or on nothing)
    # A frame where A is not visible is missing, never filled with someone else.
    for frame, people in zip(result.frames, built.truth_at(result.frame_indices)):
        if people["A"] is None:
            assert frame.box is None and frame.person_id is None


@pytest.mark.parametrize("name", ["cut_a_to_b", "cut_b_to_a", "alternating"])
def test_cuts_are_found_and_each_person_is_one_identity(tracked, name):
    built, clip, result = tracked(name, 32)
    # A cut is reported at every sampled frame whose person differs from the previous frame's, and nowhere else.
    people = [tuple(p for p, box in truth.items() if box is not None) for truth in built.truth_at(clip.frame_indices)]
    expected_cuts = [clip.timestamps[t] for t in range(1, len(people)) if people[t] != people[t - 1]]
    assert result.shot_cuts == expected_cuts
    # Two people, each one identity, joined across the cuts by face identity.
    assert len(result.persons) == 2
    for person in result.persons.values():
        joins = [fragment["joined"] for fragment in person.fragments]
        assert joins[0] == "first" and all(j.startswith("identity") for j in joins[1:]), joins
    b_id = next(pid for pid in result.persons if pid != result.main_person_id)
    assert not boxes_on(result.for_person(b_id), built, "B")
    assert result.identity["embedder"] == "dlib-resnet-v1"
    assert result.identity["faces_embedded"] == sum(len(p.fragments) for p in result.persons.values())


def test_swap_and_crossing_fragments_rejoin_out_of_order(tracked):
    # Side by side, then swapped: the tracker's two tracks each change person at the swap; identity splits them
    # there and joins A's halves (and B's) back together.
    built, clip, result = tracked("side_by_side_swap", 32)
    assert len(result.persons) == 2 and result.shot_cuts == []
    for pid in result.persons:
        followed = result.for_person(pid)
        person = "A" if pid == result.main_person_id else "B"
        assert not boxes_on(followed, built, person)
        assert followed.present.all()
    # Why A is main: both always there; A's face is bigger. The factors of both are in the result.
    factors = result.selection["factors"]
    main, other = str(result.main_person_id), str(result.selection["runner_up"])
    assert factors[main]["presence"] == factors[other]["presence"] == 1.0
    assert factors[main]["size"] == 1.0 > factors[other]["size"]


def test_interpolation_never_crosses_a_cut(person_clips, tracker):
    built = person_clips["alternating"]
    clip = load_video(built.path, num_frames=32)
    result = FaceTracker(tracker.detector, interpolate_max_gap=10).track(clip)
    assert score_main_track(result, built, "A")["elsewhere"] == 0
    assert not any(frame.interpolated for frame in result.frames)  # every gap of A is a B shot


def test_ids_are_stable_for_the_same_settings(tracked, tracker, person_clips):
    built, clip, first = tracked("crossing_pause", 32)
    again = FaceTracker(tracker.detector).track(load_video(built.path, num_frames=32))
    assert again.to_dict() == {**first.to_dict(), "identity": again.to_dict()["identity"]}  # all but the timing
    # Numbered by first appearance (left to right in the first frame): A starts on the left.
    assert first.main_person_id == 1


def test_small_faces_need_the_full_resolution_look(tracked, person_clips):
    built, clip, result = tracked("small_faces", 32)
    assert len(result.persons) == 5
    sides = [np.sqrt((b[2] - b[0]) * (b[3] - b[1])) for p in result.persons.values() for b in p.boxes if b]
    assert 14 <= min(sides) and max(sides) <= 30  # faces of 16-27 px
    # The downscaled pass alone (the old behaviour) finds none of them in a 1280x720 frame.
    from facetrack.faces.detection import get_face_detector

    downscaled_only = get_face_detector("retinaface", full_resolution_retry=False)
    assert downscaled_only.detect(clip.frames[0]) == []


def test_retry_runs_only_where_the_downscaled_pass_sees_no_or_tiny_faces(person_clips):
    from facetrack.faces.detection import get_face_detector

    detector = get_face_detector("retinaface")
    sizes = []
    original = detector._detect_at

    def counting(frame, max_side):
        sizes.append(max_side)
        return original(frame, max_side)

    detector._detect_at = counting
    big = load_video(person_clips["cut_a_to_b"].path, num_frames=1).frames[0]
    upscaled = np.ascontiguousarray(np.repeat(np.repeat(big, 4, axis=0), 4, axis=1))  # 1536x864, a big face
    assert len(detector.detect(upscaled)) == 1 and sizes == [640]
    sizes.clear()
    small = load_video(person_clips["small_faces"].path, num_frames=1).frames[0]
    assert len(detector.detect(small)) == 5 and sizes == [640, 1920]


def test_json_round_trip_and_version_1_files_load(tracked):
    _, _, result = tracked("side_by_side_swap", 32)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["version"] == 3 and set(data["tracks"]) == set(data["persons"]) == {"1", "2"}
    assert read_face_track(data) == result
    # A version-1 file (position-only tracks, `main_track_id`, frames with `track_id`) still loads.
    version_1 = {
        "version": 1, "width": 640, "height": 360, "detector": "retinaface", "main_track_id": 2,
        "reason": "track 2 has the highest score presence x size x centrality = 1.00 x 1.00 x 0.90 = 0.900",
        "frames": [{"timestamp": 0.5 * t, "frame_index": 15 * t, "box": [10.0, 10.0, 50.0, 60.0] if t != 1 else None,
                    "score": 0.99 if t != 1 else None, "track_id": 2 if t != 1 else None, "interpolated": False}
                   for t in range(3)],
        "tracks": {"2": [[10.0, 10.0, 50.0, 60.0], None, [10.0, 10.0, 50.0, 60.0]],
                   "3": [None, [300.0, 20.0, 330.0, 60.0], None]},
    }
    old = read_face_track(version_1)
    assert old.main_person_id == old.person_id == 2 and old.main_track_id == 2
    assert [f.person_id for f in old.frames] == [2, None, 2]
    assert old.persons[2].scores == [0.99, None, 0.99] and old.persons[3].scores == [None, None, None]
    assert old.tracks == {2: version_1["tracks"]["2"], 3: version_1["tracks"]["3"]}
    assert old.to_dict()["version"] == 3 and read_face_track(old.to_dict()) == old
    with pytest.raises(ValueError, match="person 2 has 3 boxes"):
        read_face_track({**version_1, "frames": version_1["frames"][:2]})


# --------------------------------------------------------------------------------------- without the identity model
def test_without_identity_tracking_still_works_cut_aware_and_says_so_once(person_clips, tracker, monkeypatch):
    monkeypatch.setattr(face_identity, "_warned_missing", False)
    monkeypatch.setattr(face_identity, "identity_model_problem", lambda: "dlib is not installed")
    import facetrack.faces.tracking as face_tracking

    monkeypatch.setattr(face_tracking, "identity_model_problem", face_identity.identity_model_problem)
    with pytest.warns(UserWarning, match="face identity is off \\(dlib is not installed\\).*pip install dlib-bin"):
        position_only = FaceTracker(tracker.detector)
    with pytest.warns() as later:  # a second tracker does not warn again
        FaceTracker(tracker.detector)
        import warnings

        warnings.warn("marker", UserWarning)
    assert [str(w.message) for w in later] == ["marker"]
    built = person_clips["cut_a_to_b"]
    result = position_only.track(load_video(built.path, num_frames=32))
    assert result.identity["embedder"] is None and "dlib is not installed" in result.identity["note"]
    counts = score_main_track(result, built, "A")
    assert counts["elsewhere"] == 0 and counts["on_person"] == counts["visible"]  # the cut still splits A from B
    with pytest.raises(ValueError, match="needs the face identity model"):
        position_only.select(result, load_video(built.path, num_frames=32), {"image": person_clips.b_photo_path()})


def test_the_identity_model_loads_only_when_needed():
    code = (
        "import sys; from facetrack.faces.tracking import FaceTracker; "
        "from facetrack.video.decode import load_video; "
        "t = FaceTracker(); r = t.track(load_video('tests/media/single_face.mp4', num_frames=6)); "
        "assert r.main_person_id is not None and r.identity['faces_embedded'] == 0; "
        "print('dlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------------ choosing a person
def test_parse_target_forms_and_errors(tmp_path, person_clips):
    assert parse_target(None) is None
    assert parse_target(3).person_id == parse_target("3").person_id == parse_target({"person": 3}).person_id == 3
    box = parse_target("10,20,110,140@1.5")
    assert box.box == (10.0, 20.0, 110.0, 140.0) and box.time == 1.5
    assert parse_target({"box": [10, 20, 110, 140], "time": 1.5}) == box
    photo = parse_target(str(person_clips.b_photo_path()))
    assert photo.kind == "image"
    for bad, message in [("10,20,5,140@1", "x2 > x1"), ("1,2,3@1", "X1,Y1,X2,Y2@T"), ("nothing.jpg", "existing photo"),
                         ({"box": [1, 2, 3, 4]}, "needs a 'time'"), (True, "person id"), (str(tmp_path), "photo")]:
        with pytest.raises(ValueError, match=message):
            parse_target(bad)


def b_id_of(result, built) -> int:
    for pid, person in result.persons.items():
        hits = [person_in_box(box, truth) for box, truth in zip(person.boxes, built.truth_at(result.frame_indices)) if box]
        if hits and all(hit == "B" for hit in hits):
            return pid
    raise AssertionError(f"no person is B: {result.summary()}")


@pytest.fixture(scope="module")
def swap_json(person_clips, tmp_path_factory):
    """`facetrack track` on the side-by-side swap clip (32 frames): the JSON a user would pick an id from."""
    out = tmp_path_factory.mktemp("swap") / "track.json"
    assert main(["track", str(person_clips["side_by_side_swap"].path), "--frames", "32", "--out", str(out)]) == 0
    return json.loads(out.read_text())


def chosen_via_cli(built, tmp_path, *options: str) -> FaceTrackResult:
    out = tmp_path / "chosen.json"
    assert main(["track", str(built.path), "--frames", "32", "--out", str(out), *options]) == 0
    return read_face_track(json.loads(out.read_text()))


@pytest.mark.parametrize("how", ["person", "person-box", "person-image"])
def test_cli_chooses_the_other_person_in_every_frame_they_are_visible(person_clips, swap_json, tmp_path, how, capsys):
    built = person_clips["side_by_side_swap"]
    first = read_face_track(swap_json)
    b_id = b_id_of(first, built)
    assert b_id != first.main_person_id
    if how == "person":
        value = str(b_id)
    elif how == "person-box":  # B's face box after the swap (B on the left), at that frame's time
        k = len(built.truth) * 3 // 4
        value = ",".join(f"{v:.0f}" for v in built.truth[k]["B"]) + f"@{k / built.fps:.3f}"
    else:
        value = str(person_clips.b_photo_path())
    chosen = chosen_via_cli(built, tmp_path, f"--{how}", value)
    printed = capsys.readouterr().out
    assert chosen.person_id == b_id and chosen.main_person_id == first.main_person_id
    assert not boxes_on(chosen, built, "B")
    assert score_main_track(chosen, built, "B")["elsewhere"] == 0
    assert chosen.selection["target"]["kind"] == {"person": "person", "person-box": "box", "person-image": "image"}[how]
    assert f"chosen person: person {b_id}" in printed
    assert chosen.persons.keys() == first.persons.keys()  # the same ids as the run the id was taken from


def test_bad_targets_are_one_line_errors(person_clips, tmp_path, capsys, media_dir):
    built = person_clips["side_by_side_swap"]
    no_face = tmp_path / "no_face.png"
    from PIL import Image

    Image.fromarray(load_video(media_dir / "no_face.mp4", num_frames=1).frames[0]).save(no_face)
    for options, expected in [
        (["--person", "9"], "no person with id 9 in this video; the persons are 1, 2"),
        (["--person", "two"], "--person takes a person id"),
        (["--person-box", "0,0,20,20@1.0"], "no face near box 0,0,20,20 at 1 s"),
        (["--person-box", "10,10,50,50@99"], "after the last sampled frame"),
        (["--person-box", "10,10,50,50"], "X1,Y1,X2,Y2@T"),
        (["--person-image", str(no_face)], "no face in the photo"),
        (["--person-image", str(tmp_path / "missing.jpg")], "no such photo file"),
        (["--person-image", str(built.path)], "not a photo"),
    ]:
        assert main(["track", str(built.path), "--frames", "8", *options]) == 2, options
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], (options, err)


def test_processor_target_follows_the_chosen_person(person_clips, tiny_model_dir, swap_json):
    from transformers import AutoProcessor

    built = person_clips["side_by_side_swap"]
    processor = AutoProcessor.from_pretrained(tiny_model_dir, trust_remote_code=True)
    b_id = b_id_of(read_face_track(swap_json), built)
    messages = [{"role": "user", "content": [{"type": "video", "path": str(built.path)},
                                             {"type": "text", "text": "Describe her face."}]}]
    inputs = processor.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_tensors="pt", add_generation_prompt=True,
        processor_kwargs={"num_frames": 32, "target": b_id, "return_face_tracks": True},
    )
    track = read_face_track(inputs["face_tracks"][0])
    assert track.person_id == b_id and not boxes_on(track, built, "B")
    assert inputs["face_mask"].all()  # B is visible in every frame
    # A photo works the same way, as does a per-video list; a precomputed track can be re-targeted too.
    by_photo = processor(text="<video>", videos=[str(built.path)], num_frames=32, return_face_tracks=True,
                         target=[str(person_clips.b_photo_path())])
    assert by_photo["face_tracks"][0]["person_id"] == b_id
    again = processor(text="<video>", videos=[str(built.path)], face_tracks=[swap_json], target=b_id,
                      return_face_tracks=True)
    assert again["face_tracks"][0]["person_id"] == b_id
    with pytest.raises(ValueError, match="1 target\\(s\\) for 2 video\\(s\\)"):
        processor(text="<video><video>", videos=[str(built.path)] * 2, target=[b_id])


def test_describe_each_person_gives_one_caption_per_person(person_clips, tiny_model_dir, capsys):
    built = person_clips["side_by_side_swap"]
    code = main(["describe", str(built.path), "--model", str(tiny_model_dir), "--frames", "8", "--max-new-tokens",
                 "6", "--each-person", "--json"])
    assert code == 0
    output = json.loads(capsys.readouterr().out)
    persons = output["persons"]
    assert [entry["person_id"] for entry in persons] == [1, 2]
    assert [entry["is_main"] for entry in persons] == [True, False]
    for entry in persons:
        track = read_face_track(entry["face_track"])
        who = "A" if entry["is_main"] else "B"
        assert track.person_id == entry["person_id"] and not boxes_on(track, built, who)
        assert isinstance(entry["caption"], str) and entry["share"] == 1.0
    # A share nobody reaches: no captions; and --each-person with a target is refused.
    assert main(["describe", str(built.path), "--model", str(tiny_model_dir), "--frames", "4", "--each-person",
                 "--min-share", "1.0", "--max-new-tokens", "2"]) == 0
    assert main(["describe", str(built.path), "--model", str(tiny_model_dir), "--each-person", "--person", "1"]) == 2
    assert "cannot be combined" in capsys.readouterr().err


def test_describe_person_follows_the_chosen_person(person_clips, tiny_model_dir, capsys, swap_json):
    built = person_clips["side_by_side_swap"]
    b_id = b_id_of(read_face_track(swap_json), built)
    assert main(["describe", str(built.path), "--model", str(tiny_model_dir), "--frames", "8", "--max-new-tokens",
                 "4", "--person", str(b_id), "--json"]) == 0
    output = json.loads(capsys.readouterr().out)
    assert output["person_id"] == b_id
    assert not boxes_on(read_face_track(output["face_track"]), built, "B")


def test_overlay_marks_the_chosen_person(tracked):
    from facetrack.analysis.overlay import annotate_frames

    built, clip, result = tracked("side_by_side_swap", 32)
    b_id = b_id_of(result, built)
    chosen = result.for_person(b_id, "test")
    drawn = annotate_frames(clip.frames[:2], chosen.select_frames([0, 1]))
    x1, y1, x2, y2 = (int(v) for v in chosen.frames[0].box)
    edge = drawn[0][y1 + 2 : y2 - 2, x1 - 1 : x1 + 2].reshape(-1, 3).astype(int)
    assert (edge[:, 1] > edge[:, 0] + 60).mean() > 0.8  # the thick green box is on B
    assert iou(chosen.frames[0].box, built.truth[clip.frame_indices[0]]["B"]) > 0.4


# ------------------------------------------------------------------------------ the look-alike shortcut (scripted)
class ScriptedFaces:
    """Frames carry their index in pixel [0, 0, 0]; the script gives each frame's face boxes."""

    def __init__(self, script):
        self.script = script

    def detect(self, frame):
        from facetrack.faces.detection import FaceDetection

        return [FaceDetection(box=box, score=0.95) for box in self.script[int(frame[0, 0, 0])]]


class SideEmbedder:
    """A stand-in identity model: faces left of x=320 are one person, the others another (or all one person)."""

    name = "side"

    def __init__(self, everyone_alike: bool = False):
        self.everyone_alike, self.calls = everyone_alike, 0

    def embed(self, frame, box):
        self.calls += 1
        left = self.everyone_alike or box[0] < 320
        return np.array([1.0, 0.0] if left else [0.0, 1.0], dtype=np.float32)


@pytest.mark.parametrize("everyone_alike", [False, True])
def test_look_alike_fragments_share_an_embedding_only_after_a_check(everyone_alike):
    # Two faces of identical colour (black frames) take turns on screen, two sampled frames each, so the tracker
    # loses each one in between: six fragments in one shot, never two at once -> one look-alike set. The check
    # (best face, least look-alike, farthest in time) must see that they are two people, and then embed everyone.
    left, right = (100, 100, 160, 160), (480, 100, 540, 160)
    script = [[left] if (t // 2) % 2 == 0 else [right] for t in range(12)]
    frames = np.zeros((12, 360, 640, 3), dtype=np.uint8)
    frames[:, 0, 0, 0] = np.arange(12)
    embedder = SideEmbedder(everyone_alike)
    result = FaceTracker(ScriptedFaces(script), identity=embedder).track(load_video(frames, num_frames=None))
    assert result.identity["fragments"] == 6
    if everyone_alike:
        assert len(result.persons) == 1 and embedder.calls == 3  # the set shared one check: 3 faces, not 6
        assert all(f["joined"] in ("first", "look-alike (identity checked)") for f in result.persons[1].fragments)
    else:
        assert len(result.persons) == 2 and embedder.calls == 6  # the check failed: each fragment on its own
        for person in result.persons.values():
            sides = {box[0] < 320 for box in person.boxes if box is not None}
            assert len(sides) == 1  # nobody got the other one's frames
