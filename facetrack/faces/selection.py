"""Whose face to follow: the main-character rule over persons, and a chosen person (`PersonTarget`).

Main character: every person seen in at least `min_frames` frames (2, or 1 for clips under 4 frames) gets

    score = presence x size x centrality
    presence   = frames where the person is detected / sampled frames                          (0..1]
    size       = the person's mean face side / the largest mean face side among all persons     (0..1]
                 (face side = sqrt(box width x box height))
    centrality = 0.5 + 0.5 x (1 - mean distance of the box centre from the frame centre / half the frame diagonal)
                                                                                                [0.5..1]

The highest score wins; ties go to the lower id. The factors of every person and the runner-up go into the result's
`selection`, and `reason` says it in one sentence. Nobody qualifies -> no main character (a normal result).

A target (`parse_target`, shared by the CLI, the processor and the Space) picks someone else:
- a person id (`3`, `"3"`, `{"person": 3}`): an id of a previous run's JSON; ids are stable for the same video,
  frames and settings (numbered by first appearance);
- a box at a time (`"X1,Y1,X2,Y2@T"`, `{"box": [x1, y1, x2, y2], "time": T}`; pixels of the video, T in seconds): the
  person whose face overlaps that box most in the sampled frame nearest T (or the frames up to 0.5 s around it);
- a photo (an image path, a PIL image or an RGB array, `{"image": ...}`): the person whose face embedding is closest
  to the largest face in the photo (needs the identity model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facetrack.faces.fragments import box_center, box_iou, box_side
from facetrack.faces.identity import DLIB_INSTALL, FaceEmbedder, face_distance
from facetrack.faces.track_result import FaceTrackResult, PersonTrack
from facetrack.faces.persons import IDENTITY_THRESHOLD

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
BOX_SEARCH_SECONDS = 0.5


@dataclass(frozen=True)
class PersonTarget:
    """Exactly one of: `person_id`; `box` (x1, y1, x2, y2 in video pixels) with `time` (seconds); `image`."""

    person_id: int | None = None
    box: tuple[float, float, float, float] | None = None
    time: float | None = None
    image: Any = None  # path, PIL image or (H, W, 3) uint8 RGB array

    @property
    def kind(self) -> str:
        return "person" if self.person_id is not None else "box" if self.box is not None else "image"

    def query(self) -> str:
        if self.kind == "person":
            return f"person {self.person_id}"
        if self.kind == "box":
            return f"box {','.join(f'{v:g}' for v in self.box)} at {self.time:g} s"
        return f"photo {self.image}" if isinstance(self.image, (str, Path)) else "photo (in memory)"


def parse_target(value: Any) -> PersonTarget | None:
    """None, a `PersonTarget`, a person id, "X1,Y1,X2,Y2@T", an image path / PIL image / RGB array, or a dict with
    one of the keys "person", "box" (+ "time"), "image" -> a `PersonTarget` (or None). Bad input: ValueError."""
    if value is None or isinstance(value, PersonTarget):
        return value
    if type(value).__name__ == "PersonTarget" and all(hasattr(value, name) for name in ("person_id", "box", "image")):
        # The same class from another copy of this file: the installed package's, handed to a processor loaded
        # from a Hub folder's code with trust_remote_code (or the other way round).
        return PersonTarget(person_id=value.person_id, box=value.box, time=value.time, image=value.image)
    if isinstance(value, bool):
        raise ValueError(f"a target must be a person id, a box 'X1,Y1,X2,Y2@T' or a photo, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return PersonTarget(person_id=int(value))
    if isinstance(value, dict):
        keys = set(value) & {"person", "box", "image"}
        if len(keys) != 1:
            raise ValueError(f"a target dict needs exactly one of 'person', 'box' (+ 'time'), 'image'; got {sorted(value)}")
        if "person" in value:
            return parse_target(int(value["person"]))
        if "box" in value:
            if "time" not in value:
                raise ValueError("a box target needs a 'time' in seconds: {'box': [x1, y1, x2, y2], 'time': t}")
            return _box_target(value["box"], value["time"])
        return _image_target(value["image"], explicit=True)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return PersonTarget(person_id=int(text))
        if "@" in text:
            box_text, _, time_text = text.partition("@")
            try:
                return _box_target([float(v) for v in box_text.split(",")], float(time_text))
            except ValueError as error:
                raise ValueError(f"cannot read the box target {text!r} as X1,Y1,X2,Y2@T (pixels, seconds): {error}") from None
        return _image_target(text)
    if isinstance(value, Path) or hasattr(value, "mode") or isinstance(value, np.ndarray):
        return _image_target(value, explicit=True)
    raise ValueError(f"a target must be a person id, a box 'X1,Y1,X2,Y2@T' or a photo, got {type(value).__name__}")


def _box_target(box, time) -> PersonTarget:
    box = tuple(float(v) for v in box)
    if len(box) != 4 or not (box[2] > box[0] and box[3] > box[1]):
        raise ValueError(f"a box target needs x1,y1,x2,y2 with x2 > x1 and y2 > y1, got {box}")
    if not float(time) >= 0:
        raise ValueError(f"a box target's time must be >= 0 seconds, got {time}")
    return PersonTarget(box=box, time=float(time))


def _image_target(image, explicit: bool = False) -> PersonTarget:
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            if explicit:
                raise ValueError(f"no such photo file: {image}")
            raise ValueError(f"target {str(image)!r} is not a person id, a box 'X1,Y1,X2,Y2@T' or an existing photo file")
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise ValueError(f"{path}: not a photo (expected one of {', '.join(sorted(IMAGE_SUFFIXES))})")
        return PersonTarget(image=str(path))
    if isinstance(image, np.ndarray) and not (image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8):
        raise ValueError(f"a photo array must be RGB uint8 of shape (H, W, 3), got {image.dtype} {image.shape}")
    return PersonTarget(image=image)


def load_photo(image) -> np.ndarray:
    """A photo target as an RGB uint8 array."""
    if isinstance(image, np.ndarray):
        return image
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as error:
        raise ImportError(f"reading a photo needs Pillow (pip install pillow): {error}") from error

    if isinstance(image, (str, Path)):
        try:
            with Image.open(image) as opened:
                return np.asarray(opened.convert("RGB"))
        except (UnidentifiedImageError, OSError) as error:
            raise ValueError(f"{image}: cannot read the photo: {error}") from error
    return np.asarray(image.convert("RGB"))


# ------------------------------------------------------------------------------------------------ main character
def choose_main(
    persons: dict[int, PersonTrack], width: int, height: int, num_frames: int, min_frames: int | None = None
) -> tuple[int | None, str, dict]:
    """(main person id or None, reason, selection dict) by the rule in the module docstring."""
    min_frames = min_frames or (2 if num_frames >= 4 else 1)
    selection: dict = {"rule": "presence x size x centrality", "min_frames": min_frames, "main": None,
                       "runner_up": None, "factors": {}, "target": None}
    if not persons:
        return None, "no face was detected in any sampled frame", selection
    half_diagonal = math.hypot(width, height) / 2.0
    mean_sides = {pid: float(np.mean([box_side(b) for b in p.boxes if b is not None])) for pid, p in persons.items()}
    largest_side = max(mean_sides.values())
    factors = {}
    for pid, person in persons.items():
        boxes = [box for box in person.boxes if box is not None]
        presence = len(boxes) / num_frames
        size = mean_sides[pid] / largest_side
        offsets = [math.hypot(x - width / 2.0, y - height / 2.0) for x, y in map(box_center, boxes)]
        centrality = 0.5 + 0.5 * (1.0 - min(1.0, float(np.mean(offsets)) / half_diagonal))
        factors[pid] = {"frames": len(boxes), "presence": round(presence, 4), "size": round(size, 4),
                        "centrality": round(centrality, 4), "score": round(presence * size * centrality, 4)}
    selection["factors"] = {str(pid): values for pid, values in factors.items()}
    ranking = sorted((pid for pid in factors if factors[pid]["frames"] >= min_frames),
                     key=lambda pid: (-factors[pid]["score"], pid))
    if not ranking:
        return None, (f"no person was seen in at least {min_frames} of {num_frames} sampled frames "
                      f"({len(persons)} person(s) seen more briefly)"), selection
    main = ranking[0]
    f = factors[main]
    reason = (f"person {main} is the main character: the highest presence x size x centrality = "
              f"{f['presence']:.2f} x {f['size']:.2f} x {f['centrality']:.2f} = {f['score']:.3f}")
    if len(ranking) > 1:
        selection["runner_up"] = ranking[1]
        reason += f" (runner-up: person {ranking[1]}, {factors[ranking[1]]['score']:.3f})"
    else:
        reason += " (the only person seen in enough frames)"
    selection["main"] = main
    return main, reason, selection


# ------------------------------------------------------------------------------------------------ targets
def find_target(
    result: FaceTrackResult, target: PersonTarget, frames: np.ndarray | None = None,
    detector=None, embedder: FaceEmbedder | None = None,
) -> tuple[int, str]:
    """(person id, how it was found) for `target` in `result`; ValueError naming the problem otherwise."""
    ids = sorted(result.persons)
    if target.kind == "person":
        if target.person_id not in result.persons:
            raise ValueError(f"no person with id {target.person_id} in this video; the persons are "
                             f"{', '.join(map(str, ids)) or 'none (no face found)'}")
        return target.person_id, f"person {target.person_id} was asked for by id"
    if target.kind == "box":
        return _find_by_box(result, target)
    return _find_by_photo(result, target, frames, detector, embedder)


def _find_by_box(result: FaceTrackResult, target: PersonTarget) -> tuple[int, str]:
    times = np.array(result.timestamps)
    if not len(times):
        raise ValueError("the video has no sampled frames")
    if target.time > times[-1] + BOX_SEARCH_SECONDS:
        raise ValueError(f"time {target.time:g} s is after the last sampled frame ({times[-1]:.2f} s)")
    order = sorted(range(len(times)), key=lambda t: (abs(times[t] - target.time), t))
    nearest = order[0]
    for t in order:
        if abs(times[t] - target.time) > max(BOX_SEARCH_SECONDS, abs(times[nearest] - target.time)):
            break
        overlaps = [(box_iou(person.boxes[t], target.box), pid) for pid, person in result.persons.items()
                    if person.boxes[t] is not None]
        overlaps = [(iou, pid) for iou, pid in overlaps if iou >= 0.2]
        if overlaps:
            iou, pid = max(overlaps, key=lambda item: (item[0], -item[1]))
            return pid, (f"person {pid} is the face at box {','.join(f'{v:g}' for v in target.box)} at {target.time:g} s "
                         f"(sampled frame at {times[t]:.2f} s, IoU {iou:.2f})")
    there = [f"person {pid} at {[round(v) for v in p.boxes[nearest]]}" for pid, p in result.persons.items()
             if p.boxes[nearest] is not None]
    raise ValueError(f"no face near box {','.join(f'{v:g}' for v in target.box)} at {target.time:g} s "
                     f"(sampled frame at {times[nearest]:.2f} s; faces there: {', '.join(there) or 'none'})")


def person_embedding(person: PersonTrack, frames: np.ndarray, embedder: FaceEmbedder) -> np.ndarray:
    """The person's identity embedding: the tracker's, or one of their biggest, most confident face now."""
    if person.embedding is None:
        best = max((t for t, box in enumerate(person.boxes) if box is not None),
                   key=lambda t: (box_side(person.boxes[t]) * (person.scores[t] or 0.5), -t))
        person.embedding = embedder.embed(frames[best], person.boxes[best])
    return person.embedding


def _find_by_photo(result, target, frames, detector, embedder) -> tuple[int, str]:
    if embedder is None:
        raise ValueError(f"choosing a person by photo needs the face identity model ({DLIB_INSTALL})")
    if frames is None or len(frames) != len(result.frames):
        raise ValueError("choosing a person by photo needs the video's sampled frames")
    photo = load_photo(target.image)
    faces = detector.detect(np.ascontiguousarray(photo)) if detector is not None else []
    if not faces:
        raise ValueError(f"no face in the photo ({target.query()})")
    face = max(faces, key=lambda f: box_side(f.box) * f.score)
    wanted = embedder.embed(photo, face.box)
    if not result.persons:
        raise ValueError("no person in this video to compare the photo with (no face found)")
    distances = sorted((face_distance(wanted, person_embedding(p, frames, embedder)), pid)
                       for pid, p in result.persons.items())
    distance, pid = distances[0]
    how = f"person {pid} looks most like the photo (identity distance {distance:.2f}"
    how += f"; next: person {distances[1][1]}, {distances[1][0]:.2f})" if len(distances) > 1 else ")"
    if distance > IDENTITY_THRESHOLD:
        how += f"; no one in the video is closely alike (distance above {IDENTITY_THRESHOLD})"
    return pid, how
