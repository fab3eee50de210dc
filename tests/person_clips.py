"""Multi-person test clips built from tests/media, with ground truth of where each person's face is in every frame.

Person "A" is the man of single_face.mp4, person "B" the woman of WolfgangLanger_Pexels.mp4 (two different people;
dlib's face descriptor puts them 0.77-0.90 apart, and frames of the same person 0.07-0.61). Each shot or tile is cut
from the source video around the person's face and scaled so both faces are framed alike (same place, same size)
where the case wants it. The five faces of multi_face.jpg make the small-face scene. Clips are written as H.264 with
the repo's own writer (PyAV) and built once per test session (`person_clips` fixture, registered in conftest.py).

Ground truth: `BuiltClip.truth[k]` maps each person to their face box (x1, y1, x2, y2) in clip frame k, or None
where that person is not visible. A source face box comes from RetinaFace on the clean full-size source frame
(the faces there are 150-300 px), mapped through the same transform that placed the picture.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

TWO_PERSON_SIZE = (384, 216)  # width, height: small, so the suite stays fast
SMALL_FACE_SIZE = (1280, 720)  # the small-face scene must be 720p: faces of 16-27 px there
CLIP_FPS = 12.0
# The five faces of multi_face.jpg (1000x667) as RetinaFace finds them at full resolution; the largest (the woman
# on the right) is the main character "A" of the small-face scene.
PHOTO_FACES = {
    "A": (682.0, 289.0, 791.0, 422.0),
    "C": (531.0, 308.0, 629.0, 434.0),
    "D": (316.0, 234.0, 409.0, 359.0),
    "E": (219.0, 66.0, 307.0, 174.0),
    "F": (437.0, 215.0, 518.0, 309.0),
}
# Frames of the woman's video the clips use; later frames are kept out of every clip for a "photo" of her.
B_CLIP_FRAMES = range(0, 300)
B_PHOTO_FRAME = 420


class PersonSource:
    """One person's source video; face boxes are detected on first use of each frame (clean, full-size frames)."""

    def __init__(self, frames: np.ndarray, fps: float, detector) -> None:
        self.frames, self.fps, self._detector = frames, fps, detector
        self._boxes: dict[int, tuple] = {}

    def box(self, i: int) -> tuple:
        if i not in self._boxes:
            faces = self._detector.detect(self.frames[i])
            assert len(faces) == 1, f"expected one face in source frame {i}, found {len(faces)}"
            self._boxes[i] = faces[0].box
        return self._boxes[i]

    def frame(self, k: float) -> tuple[np.ndarray, tuple]:
        """Frame and face box at (looped back and forth) position k."""
        n = len(self.frames)
        period = 2 * (n - 1)
        i = int(round(k)) % period
        i = i if i < n else period - i
        return self.frames[i], self.box(i)

    @property
    def median_box(self) -> np.ndarray:
        """The face's typical place: the median box of a few frames spread over the video."""
        picks = np.linspace(0, len(self.frames) - 1, 9).round().astype(int)
        return np.median([self.box(int(i)) for i in picks], axis=0)


@dataclass
class BuiltClip:
    name: str
    path: Path
    fps: float
    truth: list[dict[str, tuple[float, float, float, float] | None]]  # per clip frame: person -> face box or None
    main: str = "A"

    def truth_at(self, frame_indices: list[int]) -> list[dict]:
        return [self.truth[index] for index in frame_indices]

    def first_time_visible(self, person: str) -> float:
        return next(k for k, people in enumerate(self.truth) if people[person] is not None) / self.fps


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def person_in_box(box, people: dict) -> str | None:
    """Whose face a reported box is on (IoU >= 0.4 with their true face box), or None."""
    best, best_iou = None, 0.4
    for person, true_box in people.items():
        if true_box is not None and iou(box, true_box) >= best_iou:
            best, best_iou = person, iou(box, true_box)
    return best


def score_main_track(result, clip: BuiltClip, person: str = "A") -> dict[str, int]:
    """Frames where `person` is visible, frames with a box on them, boxes on anyone (or anything) else."""
    visible = on_person = elsewhere = 0
    indices = [frame.frame_index for frame in result.frames]
    for frame, people in zip(result.frames, clip.truth_at(indices)):
        visible += people[person] is not None
        if frame.box is not None:
            if person_in_box(frame.box, people) == person:
                on_person += 1
            else:
                elsewhere += 1
    return {"visible": visible, "on_person": on_person, "elsewhere": elsewhere}


# ----------------------------------------------------------------------------------------------- sources
def load_sources(media_dir: Path) -> dict[str, PersonSource]:
    from facetrack.faces.detection import get_face_detector
    from facetrack.video.decode import load_video

    detector = get_face_detector("retinaface", max_side=None)
    man = load_video(media_dir / "single_face.mp4", num_frames=None)
    woman = load_video(media_dir / "WolfgangLanger_Pexels.mp4", num_frames=None, frame_indices=list(B_CLIP_FRAMES))
    return {
        "A": PersonSource(man.frames, float(man.source_fps or 30.0), detector),
        "B": PersonSource(woman.frames, float(woman.source_fps or 24.0), detector),
    }


def b_photo(media_dir: Path) -> np.ndarray:
    """A frame of the woman that no clip contains (for --person-image)."""
    from facetrack.video.decode import load_video

    return load_video(media_dir / "WolfgangLanger_Pexels.mp4", num_frames=None, frame_indices=[B_PHOTO_FRAME]).frames[0]


# ----------------------------------------------------------------------------------------------- drawing
def background(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A smooth, faceless backdrop (horizontal colour gradient + fixed noise)."""
    width, height = size
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, width)[None, :, None]
    base = (70 + 60 * x) * np.array([1.0, 0.9, 0.8])[None, None, :]
    image = np.broadcast_to(base, (height, width, 3)) + rng.normal(0, 4, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def warp(image: np.ndarray, scale: float, tx: float, ty: float, size: tuple[int, int], border=cv2.BORDER_REPLICATE):
    matrix = np.array([[scale, 0, tx], [0, scale, ty]], dtype=np.float64)
    return cv2.warpAffine(image, matrix, size, flags=cv2.INTER_AREA, borderMode=border)


def map_box(box, scale: float, tx: float, ty: float) -> tuple[float, float, float, float]:
    return (box[0] * scale + tx, box[1] * scale + ty, box[2] * scale + tx, box[3] * scale + ty)


def framed_shot(source: PersonSource, k: float, size: tuple[int, int], face_height: float = 0.62,
                center: tuple[float, float] = (0.5, 0.5)) -> tuple[np.ndarray, tuple]:
    """The whole frame is the person, the face (its median box) scaled to `face_height` x frame height and centred
    at `center`: two people shot with the same settings are framed alike."""
    width, height = size
    median = source.median_box
    scale = face_height * height / (median[3] - median[1])
    tx = center[0] * width - scale * (median[0] + median[2]) / 2
    ty = center[1] * height - scale * (median[1] + median[3]) / 2
    frame, box = source.frame(k)
    return warp(frame, scale, tx, ty, size), map_box(box, scale, tx, ty)


def tile(source: PersonSource, k: float, face_height: float) -> tuple[np.ndarray, tuple]:
    """A rectangle of the source around the face (1.5 x 1.35 face heights), scaled so the face is `face_height` px;
    returns the tile and the face box inside it."""
    median = source.median_box
    side = median[3] - median[1]
    scale = face_height / side
    tile_w, tile_h = int(round(1.5 * face_height)), int(round(1.35 * face_height))
    tx = tile_w / 2 - scale * (median[0] + median[2]) / 2
    ty = tile_h / 2 - scale * (median[1] + median[3]) / 2
    frame, box = source.frame(k)
    return warp(frame, scale, tx, ty, (tile_w, tile_h)), map_box(box, scale, tx, ty)


def paste(canvas: np.ndarray, image: np.ndarray, x: int, y: int) -> tuple[int, int, int, int]:
    """Paste `image` at (x, y), cut to the canvas; returns the pasted rectangle in canvas pixels."""
    height, width = canvas.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + image.shape[1], width), min(y + image.shape[0], height)
    if x1 > x0 and y1 > y0:
        canvas[y0:y1, x0:x1] = image[y0 - y : y1 - y, x0 - x : x1 - x]
    return x0, y0, x1, y1


def visible_box(box, canvas_size: tuple[int, int], covered: list[tuple] = (), min_visible: float = 0.6):
    """The face box if at least `min_visible` of it is inside the canvas and not under a `covered` rectangle."""
    width, height = canvas_size
    x1, y1, x2, y2 = box
    area = (x2 - x1) * (y2 - y1)
    cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
    if cx2 <= cx1 or cy2 <= cy1:
        return None
    inside = (cx2 - cx1) * (cy2 - cy1)
    hidden = 0.0
    for rx1, ry1, rx2, ry2 in covered:
        ix, iy = max(0.0, min(cx2, rx2) - max(cx1, rx1)), max(0.0, min(cy2, ry2) - max(cy1, ry1))
        hidden += ix * iy
    if (inside - hidden) / area < min_visible:
        return None
    return (float(cx1), float(cy1), float(cx2), float(cy2))


def write_clip(name: str, frames: list[np.ndarray], truth: list[dict], out_dir: Path, main: str = "A") -> BuiltClip:
    from facetrack.analysis.overlay import write_video

    path = write_video(np.stack(frames), out_dir / f"{name}.mp4", fps=CLIP_FPS)
    return BuiltClip(name=name, path=path, fps=CLIP_FPS, truth=truth, main=main)


# ----------------------------------------------------------------------------------------------- the cases
def source_step(source: PersonSource) -> float:
    return source.fps / CLIP_FPS  # source frames per clip frame: people move at their real speed


def cut_clip(name: str, sources: dict, shots: list[tuple[str, int]], out_dir: Path) -> BuiltClip:
    """Shots of one person each, framed alike; `shots` = [(person, clip frames), ...]. Every shot of a person
    continues that person's video where their previous shot ended, as in an edited dialogue."""
    frames, truth, position = [], [], {"A": 0.0, "B": 0.0}
    for person, length in shots:
        source = sources[person]
        for _ in range(length):
            frame, box = framed_shot(source, position[person], TWO_PERSON_SIZE)
            position[person] += source_step(source)
            frames.append(frame)
            truth.append({"A": None, "B": None, person: visible_box(box, TWO_PERSON_SIZE)})
    return write_clip(name, frames, truth, out_dir)


def side_by_side_swap(sources: dict, out_dir: Path, num_frames: int = 72) -> BuiltClip:
    """A (left, the bigger face) and B (right) side by side; halfway through the shot changes and they have swapped
    places, each face now where the other's was (a position-only tracker carries each track onto the other)."""
    size, frames, truth = TWO_PERSON_SIZE, [], []
    backdrop = background(size)
    for k in range(num_frames):
        canvas = backdrop.copy()
        people = {}
        swapped = k >= num_frames // 2
        for person, face_h in (("A", 84.0), ("B", 76.0)):
            image, box = tile(sources[person], k * source_step(sources[person]), face_h)
            left = (person == "A") != swapped
            x = 12 if left else size[0] - image.shape[1] - 12
            y = (size[1] - image.shape[0]) // 2
            paste(canvas, image, x, y)
            people[person] = visible_box(map_box(box, 1.0, x, y), size)
        frames.append(canvas)
        truth.append(people)
    return write_clip("side_by_side_swap", frames, truth, out_dir)


CROSSING_MOTIONS = {
    # They walk towards each other, stop in the middle (A in front hides B) for 0.2 of the clip, walk on.
    "pause": lambda p: 0.5 * min(p / 0.4, 1.0) if p < 0.6 else 0.5 + 0.5 * (p - 0.6) / 0.4,
    # They stroll, then rush past each other, then stroll (the tracker's constant-velocity guess fails).
    "rush": lambda p: 0.5 + 0.5 * float(np.tanh((p - 0.5) * 8) / np.tanh(4)),
}


def crossing(sources: dict, out_dir: Path, motion: str = "pause", num_frames: int = 48) -> BuiltClip:
    """A walks left to right in front of B, who walks right to left at the same height: they cross in the middle,
    where B is hidden while A's picture covers most of B's face."""
    size, frames, truth = TWO_PERSON_SIZE, [], []
    backdrop = background(size, seed=1)
    move = CROSSING_MOTIONS[motion]
    for k in range(num_frames):
        canvas = backdrop.copy()
        progress = move(k / (num_frames - 1))
        image_b, box_b = tile(sources["B"], k * source_step(sources["B"]), 76.0)
        image_a, box_a = tile(sources["A"], k * source_step(sources["A"]), 84.0)
        xb = int(round((1 - progress) * (size[0] - image_b.shape[1])))
        xa = int(round(progress * (size[0] - image_a.shape[1])))
        yb = ya = 40
        paste(canvas, image_b, xb, yb)
        rect_a = paste(canvas, image_a, xa, ya)  # A in front
        truth.append({
            "A": visible_box(map_box(box_a, 1.0, xa, ya), size),
            "B": visible_box(map_box(box_b, 1.0, xb, yb), size, covered=[rect_a]),
        })
        frames.append(canvas)
    return write_clip(f"crossing_{motion}", frames, truth, out_dir)


def fast_pan(sources: dict, out_dir: Path, num_frames: int = 72) -> BuiltClip:
    """The camera whips back and forth over a wide scene with A (big, left of centre) and B (right): between two
    sampled frames the faces move by more than their own width."""
    size = TWO_PERSON_SIZE
    scene_w = 3 * size[0]
    backdrop = background((scene_w, size[1]), seed=2)
    frames, truth = [], []
    for k in range(num_frames):
        scene = backdrop.copy()
        image_a, box_a = tile(sources["A"], k * source_step(sources["A"]), 90.0)
        image_b, box_b = tile(sources["B"], k * source_step(sources["B"]), 72.0)
        xa, ya = int(0.36 * scene_w) - image_a.shape[1] // 2, 30
        xb, yb = int(0.80 * scene_w) - image_b.shape[1] // 2, 50
        paste(scene, image_a, xa, ya)
        paste(scene, image_b, xb, yb)
        # Window left edge swings between 0.05 and 0.62 of the scene, a full swing every 3 s.
        phase = 0.5 - 0.5 * np.cos(2 * np.pi * k / (3 * CLIP_FPS))
        left = int(round((0.05 + 0.57 * phase) * scene_w - 0.0))
        left = min(left, scene_w - size[0])
        frames.append(np.ascontiguousarray(scene[:, left : left + size[0]]))
        truth.append({
            "A": visible_box(map_box(box_a, 1.0, xa - left, ya), size),
            "B": visible_box(map_box(box_b, 1.0, xb - left, yb), size),
        })
    return write_clip("fast_pan", frames, truth, out_dir)


def small_faces(media_dir: Path, out_dir: Path, num_frames: int = 32, scale: float = 0.2) -> BuiltClip:
    """multi_face.jpg shrunk so its five faces are 16-27 px, drifting slowly across a 1280x720 frame."""
    photo = np.asarray(Image.open(media_dir / "multi_face.jpg").convert("RGB"))
    small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    size = SMALL_FACE_SIZE
    backdrop = background(size, seed=3)
    frames, truth = [], []
    # The main face (A, the largest) drifts through the frame centre, the other four around it.
    center_x, center_y = (PHOTO_FACES["A"][0] + PHOTO_FACES["A"][2]) / 2 * scale, (PHOTO_FACES["A"][1] + PHOTO_FACES["A"][3]) / 2 * scale
    for k in range(num_frames):
        x = int(round(size[0] / 2 - center_x - num_frames + 2 * k))
        y = int(round(size[1] / 2 - center_y - num_frames / 4 + 0.5 * k))
        canvas = backdrop.copy()
        paste(canvas, small, x, y)
        frames.append(canvas)
        truth.append({person: map_box(box, scale, x, y) for person, box in PHOTO_FACES.items()})
    return write_clip("small_faces", frames, truth, out_dir)


CASES: dict[str, Callable] = {
    # one cut, A 60 % of the time
    "cut_a_to_b": lambda s, m, d: cut_clip("cut_a_to_b", s, [("A", 54), ("B", 36)], d),
    "cut_b_to_a": lambda s, m, d: cut_clip("cut_b_to_a", s, [("B", 36), ("A", 54)], d),
    # 1.5 s shots, A B A B A: A 60 % of the time
    "alternating": lambda s, m, d: cut_clip("alternating", s, [("A", 18), ("B", 18)] * 2 + [("A", 18)], d),
    "side_by_side_swap": lambda s, m, d: side_by_side_swap(s, d),
    "crossing_pause": lambda s, m, d: crossing(s, d, "pause", 48),
    "crossing_rush": lambda s, m, d: crossing(s, d, "rush", 32),
    "fast_pan": lambda s, m, d: fast_pan(s, d),
    "small_faces": lambda s, m, d: small_faces(m, d),
}


class PersonClips:
    """Builds each case on first use and keeps it for the session."""

    def __init__(self, media_dir: Path, out_dir: Path) -> None:
        self.media_dir, self.out_dir = media_dir, out_dir
        self._sources: dict[str, PersonSource] | None = None
        self._clips: dict[str, BuiltClip] = {}

    @property
    def sources(self) -> dict[str, PersonSource]:
        if self._sources is None:
            self._sources = load_sources(self.media_dir)
        return self._sources

    def __getitem__(self, name: str) -> BuiltClip:
        if name not in self._clips:
            sources = None if name == "small_faces" else self.sources
            self._clips[name] = CASES[name](sources, self.media_dir, self.out_dir)
        return self._clips[name]

    def b_photo_path(self) -> Path:
        path = self.out_dir / "woman_photo.jpg"
        if not path.exists():
            Image.fromarray(b_photo(self.media_dir)).save(path, quality=92)
        return path


@pytest.fixture(scope="session")
def person_clips(media_dir, tmp_path_factory) -> PersonClips:
    """`person_clips["crossing"]` -> a `BuiltClip` (built once per session)."""
    return PersonClips(media_dir, tmp_path_factory.mktemp("person_clips"))
