"""Measure a face's expression in every sampled frame: the main character's (or anyone's) expression timeline.

`ExpressionAnalyzer(config).analyze(frames, boxes, timestamps)` takes (T, H, W, 3) uint8 RGB frames and one face box
per frame (x1, y1, x2, y2, or None where the face is missing) and returns an `ExpressionTimeline`: per frame,

- `blendshapes`: MediaPipe's 52 ARKit-style blendshape scores (0..1; names in `timeline.blendshape_names`);
- `yaw`, `pitch`, `roll` (degrees, from the landmarker's head-pose matrix): yaw > 0 = turned to the person's left,
  pitch > 0 = chin up, roll > 0 = head tilted towards the person's right shoulder (counter-clockwise on screen);
- geometric measures from the 478-point mesh, each normalised by face size (3-D distances, so turning the head
  changes them little, except the brow height):
  `eye_open_left` / `eye_open_right` (the person's left / right eye): lid gap / eye width (the eye aspect ratio);
  `mouth_open`: inner-lip gap / eye distance; `lip_corner_width`: mouth-corner distance / eye distance;
  `brow_height`: mean image-plane distance of the inner half of each brow from the line through that eye's
  corners / eye distance (knitted brows lower it; looking up or down shifts it a little, as the brows sit in
  front of the eye corners);
  `brow_gap`: distance between the inner brow ends / eye distance (knitted brows pull together);
  (eye distance = between the two eye centres);
- `emotions`: the 7 probabilities of fer's classifier (`timeline.emotion_labels`).

A frame without a box has no measurement: every value is null, never a neighbour's. A frame whose box the
landmarker finds no face in has emotions but no landmark measures (`face_found = False`).

The landmarker runs on a square crop around the given box (`crop_size`, `crop_margin`), in VIDEO mode, one
landmarker per analyzer; each `analyze` call continues its clock, so one analyzer can describe several people.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from facetrack.expressions.config import ExpressionConfig
from facetrack.expressions.models import EMOTION_LABELS, EmotionClassifier, FaceLandmarker
from facetrack.video.frame_work import default_num_threads
from facetrack.video.crops import square_crop_box

TIMELINE_FORMAT_VERSION = 1
# MediaPipe's 52 blendshapes, in the order the model outputs them (checked on every result).
BLENDSHAPE_NAMES = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff",
    "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight",
    "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight",
    "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)
MEASURES = ("eye_open_left", "eye_open_right", "mouth_open", "lip_corner_width", "brow_height", "brow_gap")

# MediaPipe face-mesh indices. "right"/"left" are the person's: their right eye is on the image's left.
_RIGHT_EYE = {"outer": 33, "inner": 133, "upper": (160, 158), "lower": (144, 153)}
_LEFT_EYE = {"outer": 263, "inner": 362, "upper": (385, 387), "lower": (380, 373)}
_RIGHT_BROW = (70, 63, 105, 66, 107)  # upper contour, outer -> inner
_LEFT_BROW = (300, 293, 334, 296, 336)
_RIGHT_BROW_INNER = _RIGHT_BROW[2:]  # knitting and worried raising move the inner half most
_LEFT_BROW_INNER = _LEFT_BROW[2:]
_INNER_LIPS = (13, 14)
_MOUTH_CORNERS = (61, 291)


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b))


def _distance_to_line(point: np.ndarray, start: np.ndarray, end: np.ndarray) -> float:
    direction = end - start
    return float(np.linalg.norm(np.cross(point - start, direction)) / max(np.linalg.norm(direction), 1e-9))


def geometric_measures(landmarks: np.ndarray) -> dict[str, float]:
    """The face-size-normalised measures (see the module docstring) from (478, 3) landmarks of a square image."""
    p = np.asarray(landmarks, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 468 or p.shape[1] != 3:
        raise ValueError(f"landmarks must have shape (478, 3), got {p.shape}")

    def eye_open(eye: dict) -> float:
        gaps = [_distance(p[u], p[d]) for u, d in zip(eye["upper"], eye["lower"])]
        return float(np.mean(gaps)) / max(_distance(p[eye["outer"]], p[eye["inner"]]), 1e-9)

    right_centre = (p[_RIGHT_EYE["outer"]] + p[_RIGHT_EYE["inner"]]) / 2.0
    left_centre = (p[_LEFT_EYE["outer"]] + p[_LEFT_EYE["inner"]]) / 2.0
    eye_distance = max(_distance(right_centre, left_centre), 1e-9)
    # Brow height in the image plane: the mesh's depth is too flat around the brows to show knitted brows, which
    # the 2-D distance does (WolfgangLanger crying: 0.35 against 0.43-0.47 otherwise).
    flat = p.copy()
    flat[:, 2] = 0.0
    brow_right = np.mean([_distance_to_line(flat[i], flat[_RIGHT_EYE["outer"]], flat[_RIGHT_EYE["inner"]])
                          for i in _RIGHT_BROW_INNER])
    brow_left = np.mean([_distance_to_line(flat[i], flat[_LEFT_EYE["outer"]], flat[_LEFT_EYE["inner"]])
                         for i in _LEFT_BROW_INNER])
    return {
        "eye_open_left": eye_open(_LEFT_EYE),
        "eye_open_right": eye_open(_RIGHT_EYE),
        "mouth_open": _distance(p[_INNER_LIPS[0]], p[_INNER_LIPS[1]]) / eye_distance,
        "lip_corner_width": _distance(p[_MOUTH_CORNERS[0]], p[_MOUTH_CORNERS[1]]) / eye_distance,
        "brow_height": float((brow_right + brow_left) / 2.0) / eye_distance,
        "brow_gap": _distance(p[_RIGHT_BROW[-1]], p[_LEFT_BROW[-1]]) / eye_distance,
    }


def head_pose_degrees(matrix: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from MediaPipe's 4x4 face pose matrix (camera space: x right, y up, z towards
    the viewer), as R = Ry(yaw) Rx(-pitch) Rz(roll); signs as in the module docstring."""
    r = np.asarray(matrix, dtype=np.float64)[:3, :3]
    r = r / np.cbrt(max(np.linalg.det(r), 1e-12))  # the matrix may carry the face's scale
    yaw = math.degrees(math.atan2(r[0, 2], r[2, 2]))
    pitch_down = math.degrees(math.asin(max(-1.0, min(1.0, -r[1, 2]))))
    roll = math.degrees(math.atan2(r[1, 0], r[1, 1]))
    return yaw, -pitch_down, roll


@dataclass
class FrameExpression:
    """One sampled frame's measurement; all values None where the face is missing."""

    timestamp: float
    frame_index: int | None = None
    box: list[float] | None = None  # the face box the measurement was made in
    face_found: bool = False  # the landmarker found the face in the box's crop
    blendshapes: list[float] | None = None
    yaw: float | None = None
    pitch: float | None = None
    roll: float | None = None
    eye_open_left: float | None = None
    eye_open_right: float | None = None
    mouth_open: float | None = None
    lip_corner_width: float | None = None
    brow_height: float | None = None
    brow_gap: float | None = None
    emotions: list[float] | None = None

    @property
    def measured(self) -> bool:
        return self.box is not None and (self.face_found or self.emotions is not None)


@dataclass
class ExpressionTimeline:
    """Per-frame measurements of one face. `to_dict()` gives versioned JSON:
    {"version": 1, "blendshape_names": [52 names], "emotion_labels": [7 labels], "models": {...},
     "frames": [{"timestamp": 0.0, "frame_index": 0, "box": [x1, y1, x2, y2] or null, "face_found": true,
                 "blendshapes": [52 floats] or null, "yaw": 1.2 or null, "pitch": ..., "roll": ...,
                 "eye_open_left": 0.31 or null, ..., "emotions": [7 floats] or null}, ...]}"""

    frames: list[FrameExpression]
    blendshape_names: list[str] = field(default_factory=lambda: list(BLENDSHAPE_NAMES))
    emotion_labels: list[str] = field(default_factory=lambda: list(EMOTION_LABELS))
    models: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)

    def __repr__(self) -> str:
        # 52 blendshapes x every frame would print thousands of numbers: a notebook shows what the timeline holds.
        t = self.timestamps
        span = f", {t[0]:.2f}-{t[-1]:.2f} s" if len(t) else ""
        boxes = sum(frame.box is not None for frame in self.frames)
        return (f"ExpressionTimeline({len(self)} frames{span}: face in {boxes}, landmarks in "
                f"{int(self.measured.sum())}; {len(self.blendshape_names)} blendshapes, head pose, "
                f"{len(MEASURES)} measures, {len(self.emotion_labels)} emotions; .to_dict(), .signal(name))")

    @property
    def timestamps(self) -> np.ndarray:
        return np.array([frame.timestamp for frame in self.frames], dtype=np.float64)

    @property
    def measured(self) -> np.ndarray:
        """(T,) bool: True where the face was measured by the landmarker."""
        return np.array([frame.face_found for frame in self.frames], dtype=bool)

    @property
    def is_empty(self) -> bool:
        return not any(frame.measured for frame in self.frames)

    def signal(self, name: str) -> np.ndarray:
        """(T,) float64 values of one signal, NaN where not measured. Names: a measure ("mouth_open", ...),
        "yaw"/"pitch"/"roll", "eye_open" (both eyes' mean), "smile" (mean mouthSmileLeft/Right), "blendshape:NAME",
        "emotion:LABEL"."""
        if name == "eye_open":
            return (self.signal("eye_open_left") + self.signal("eye_open_right")) / 2.0
        if name == "smile":
            return (self.signal("blendshape:mouthSmileLeft") + self.signal("blendshape:mouthSmileRight")) / 2.0
        if name.startswith("blendshape:") or name.startswith("emotion:"):
            kind, _, key = name.partition(":")
            names = self.blendshape_names if kind == "blendshape" else self.emotion_labels
            if key not in names:
                raise KeyError(f"unknown {kind} {key!r}; known: {names}")
            index = names.index(key)
            attribute = "blendshapes" if kind == "blendshape" else "emotions"
            values = [getattr(frame, attribute) for frame in self.frames]
            return np.array([np.nan if v is None else v[index] for v in values], dtype=np.float64)
        if name not in MEASURES + ("yaw", "pitch", "roll"):
            raise KeyError(f"unknown signal {name!r}")
        return np.array([np.nan if getattr(f, name) is None else getattr(f, name) for f in self.frames], dtype=float)

    def emotion_matrix(self) -> np.ndarray:
        """(T, 7) emotion probabilities, NaN rows where not measured."""
        return np.stack([self.signal(f"emotion:{label}") for label in self.emotion_labels], axis=1) \
            if self.frames else np.zeros((0, len(self.emotion_labels)))

    def select_frames(self, positions: Sequence[int]) -> ExpressionTimeline:
        """The timeline of the frames at `positions` only."""
        return replace(self, frames=[replace(self.frames[int(t)]) for t in positions], models=dict(self.models))

    def scaled(self, scale_x: float, scale_y: float) -> ExpressionTimeline:
        """The same measurements with the face boxes in other pixels (every measure is normalised by face size)."""
        def box(b):
            return None if b is None else [round(b[0] * scale_x, 2), round(b[1] * scale_y, 2),
                                           round(b[2] * scale_x, 2), round(b[3] * scale_y, 2)]

        return replace(self, frames=[replace(frame, box=box(frame.box)) for frame in self.frames],
                       models=dict(self.models))

    def to_dict(self) -> dict:
        return {
            "version": TIMELINE_FORMAT_VERSION,
            "blendshape_names": list(self.blendshape_names),
            "emotion_labels": list(self.emotion_labels),
            "models": dict(self.models),
            "frames": [asdict(frame) for frame in self.frames],
        }

    @classmethod
    def from_dict(cls, data: dict) -> ExpressionTimeline:
        try:
            version = int(data.get("version", 0))
            if version != TIMELINE_FORMAT_VERSION:
                raise ValueError(f"version {version} (this code reads version {TIMELINE_FORMAT_VERSION})")
            known = {name for name in FrameExpression.__dataclass_fields__}
            blendshape_names = [str(n) for n in data.get("blendshape_names", BLENDSHAPE_NAMES)]
            emotion_labels = [str(n) for n in data.get("emotion_labels", EMOTION_LABELS)]
            frames = []
            for index, item in enumerate(data["frames"]):
                unknown = set(item) - known
                if unknown:
                    raise ValueError(f"unknown frame field(s) {sorted(unknown)}")
                frame = FrameExpression(**item)
                for name, size in (("blendshapes", len(blendshape_names)), ("emotions", len(emotion_labels))):
                    values = getattr(frame, name)
                    if values is not None and len(values) != size:
                        raise ValueError(f"frame {index} has {len(values)} {name}, expected {size}")
                frames.append(frame)
            return cls(frames=frames, blendshape_names=blendshape_names, emotion_labels=emotion_labels,
                       models=dict(data.get("models", {})))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a valid expression timeline: {type(error).__name__}: {error}") from error


def expression_model_crops(
    frame: np.ndarray, box: Sequence[float], size: int, margin: float, emotion_margin: float
) -> tuple[np.ndarray, np.ndarray]:
    """The landmarker's (size, size, 3) RGB crop (the square of `square_crop_box(box, margin)`, zeros outside the
    frame) and the emotion model's (64, 64) greyscale crop (the square with `emotion_margin`, cut from the first).

    One affine warp with bilinear sampling, as MediaPipe cuts its own face regions: on a 720p face it is ~10x
    cheaper than cutting the square and area-resizing it, and the emotion crop costs almost nothing on top."""
    import cv2

    x0, y0, side = square_crop_box(box, margin)
    scale = size / side
    warp = np.array([[scale, 0.0, -x0 * scale], [0.0, scale, -y0 * scale]], dtype=np.float64)
    crop = cv2.warpAffine(frame, warp, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(0, 0, 0))
    inner = min(size, max(1, int(round(size * (1.0 + 2.0 * emotion_margin) / (1.0 + 2.0 * margin)))))
    start = (size - inner) // 2
    gray = cv2.cvtColor(crop[start:start + inner, start:start + inner], cv2.COLOR_RGB2GRAY)
    return crop, cv2.resize(gray, (64, 64), interpolation=cv2.INTER_AREA)


def _rounded(values, digits: int = 4) -> list[float]:
    return [round(float(v), digits) for v in values]


class ExpressionAnalyzer:
    """Measures a face through sampled frames (see the module docstring). Loads both models once; `close()` (or a
    `with` block) frees the landmarker."""

    def __init__(self, config: ExpressionConfig | None = None) -> None:
        self.config = config or ExpressionConfig()
        self._landmarker = self._new_landmarker()
        self._landmarker_used = False
        self._emotions = EmotionClassifier(
            self.config.emotion_model_path, num_threads=self.config.num_threads or default_num_threads()
        )
        self._model_names: dict | None = None

    def _new_landmarker(self) -> FaceLandmarker:
        return FaceLandmarker(
            self.config.landmarker_model_path,
            min_detection_confidence=self.config.min_detection_confidence,
            min_presence_confidence=self.config.min_presence_confidence,
            min_tracking_confidence=self.config.min_tracking_confidence,
        )

    def __enter__(self) -> ExpressionAnalyzer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._landmarker.close()

    @property
    def models(self) -> dict:
        """Which models made the timeline (recorded in its JSON)."""
        from importlib.metadata import PackageNotFoundError, version

        def installed(package: str) -> str:
            try:
                return f"{package} {version(package)}"
            except PackageNotFoundError:
                return package

        return {
            "landmarker": f"{installed('mediapipe')} FaceLandmarker, {self._landmarker.model_path}",
            "emotions": f"{installed('fer')} emotion model via {installed('ai-edge-litert')}, "
                        f"{self._emotions.model_path}",
        }

    def analyze(
        self,
        frames: np.ndarray,
        boxes: Sequence[Sequence[float] | None],
        timestamps: Sequence[float],
        frame_indices: Sequence[int] | None = None,
    ) -> ExpressionTimeline:
        """The expression timeline of the face in `boxes` (one box or None per frame) through `frames`."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be a (T, H, W, 3) uint8 RGB array, got {frames.dtype} {frames.shape}")
        if not len(boxes) == len(frames) == len(timestamps):
            raise ValueError(f"got {len(frames)} frames, {len(boxes)} boxes and {len(timestamps)} timestamps")
        if frame_indices is not None and len(frame_indices) != len(frames):
            raise ValueError(f"got {len(frame_indices)} frame indices for {len(frames)} frames")
        times = [float(t) for t in timestamps]
        if any(b < a for a, b in zip(times, times[1:])):
            raise ValueError("timestamps must not decrease")
        for t, box in enumerate(boxes):
            if box is not None and (len(box) != 4 or not box[2] > box[0] or not box[3] > box[1]):
                raise ValueError(f"box {t} must be (x1, y1, x2, y2) with x2 > x1 and y2 > y1, got {box}")
        config = self.config
        # MediaPipe's VIDEO mode carries its face tracking from one call to the next, so a clip's measures would
        # depend on the clips measured before it: each call gets a landmarker of its own (~30 ms to make).
        if self._landmarker_used:
            self._landmarker.close()
            self._landmarker = self._new_landmarker()
        self._landmarker_used = True
        start_ms = 0
        timeline_frames: list[FrameExpression] = []
        previous_ms = start_ms - 1
        for t, box in enumerate(boxes):
            index = None if frame_indices is None else int(frame_indices[t])
            frame = FrameExpression(timestamp=times[t], frame_index=index)
            timeline_frames.append(frame)
            if box is None:
                continue
            frame.box = _rounded(box, 2)
            crop, gray = expression_model_crops(frames[t], box, config.crop_size, config.crop_margin,
                                                config.emotion_crop_margin)
            frame.emotions = _rounded(self._emotions.predict(gray))
            timestamp_ms = max(start_ms + int(round((times[t] - times[0]) * 1000)), previous_ms + 1)
            previous_ms = timestamp_ms
            result = self._landmarker.detect(crop, timestamp_ms)
            if result is None:
                continue
            frame.face_found = True
            if tuple(result.blendshape_names) != BLENDSHAPE_NAMES:
                raise ValueError(f"{self._landmarker.model_path}: unexpected blendshapes {result.blendshape_names[:5]}")
            frame.blendshapes = _rounded(result.blendshapes)
            frame.yaw, frame.pitch, frame.roll = (round(v, 2) for v in head_pose_degrees(result.pose_matrix))
            for name, value in geometric_measures(result.landmarks).items():
                setattr(frame, name, round(value, 4))
        if self._model_names is None:
            self._model_names = self.models
        return ExpressionTimeline(
            frames=timeline_frames, blendshape_names=list(BLENDSHAPE_NAMES), emotion_labels=list(EMOTION_LABELS),
            models=dict(self._model_names),
        )
