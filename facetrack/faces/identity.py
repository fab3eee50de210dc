"""Who a face is: a 128-d identity embedding per face, and a cheap appearance signature to spot where one may change.

`get_face_embedder()` returns dlib's ResNet face descriptor (`face_recognition_model_v1`, weights in the
`face_recognition_models` pip package: public domain / CC0; dlib itself from `dlib-bin`, Boost licence), aligned with
dlib's *5-point* landmark model (CC0). The package also carries a 68-point model, which is non-commercial: it is never
loaded. Faces of the same person are 0.07-0.61 apart (L2), different people 0.75 or more (measured in
benchmarks/README.md); ~80 ms of one CPU core per face, so the tracker embeds a few faces per fragment, not every
face. Where dlib or the weights are not installed, `get_face_embedder()` returns None and warns once: tracking then
joins fragments by position only.

`appearance_signature(frame, box)` is a hue-saturation histogram of the inner face (~0.1 ms): consecutive faces of
one tracker fragment whose signatures differ by more than `SIGNATURE_CHANGE` (Bhattacharyya distance) may belong to
two people, and the tracker checks there with embeddings (same person, consecutive sampled frames: <= 0.40 measured;
the man and the woman of the test clips: >= 0.76).
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

SAME_PERSON_DISTANCE = 0.6  # dlib's own threshold for "same person" (L2 between descriptors)
SIGNATURE_CHANGE = 0.5
DLIB_INSTALL = "pip install dlib-bin face_recognition_models"
_ALIGN_SIDE = 100  # small faces are enlarged to about this many pixels before landmark fitting
_warned_missing = False


@runtime_checkable
class FaceEmbedder(Protocol):
    name: str

    def embed(self, frame: np.ndarray, box: Sequence[float]) -> np.ndarray: ...  # (D,) float32, L2 comparable


def face_distance(a: np.ndarray, b: np.ndarray) -> float:
    """L2 distance between two embeddings (dlib: < 0.6 = the same person)."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def _models_dir() -> Path | None:
    """face_recognition_models' `models/` folder, found without importing the package (its __init__ needs
    pkg_resources, which new setuptools no longer ships)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    return folder if folder.is_dir() else None


class DlibFaceEmbedder:
    """dlib's ResNet face descriptor on a face box: 5-point landmarks -> aligned 150 px chip -> 128-d vector."""

    name = "dlib-resnet-v1"

    def __init__(self) -> None:
        try:
            import dlib
        except ImportError as error:
            raise ImportError(f"face identity needs dlib ({DLIB_INSTALL}): {error}") from error
        models = _models_dir()
        if models is None:
            raise ImportError(f"face identity needs the face_recognition_models package ({DLIB_INSTALL})")
        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self._net = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))

    def embed(self, frame: np.ndarray, box: Sequence[float]) -> np.ndarray:
        import cv2

        x1, y1, x2, y2 = (float(v) for v in box)
        side = max(x2 - x1, y2 - y1, 1.0)
        # Work on a region of twice the face's size; small faces are enlarged first so the landmarks land well.
        height, width = frame.shape[:2]
        rx1, ry1 = int(max(0, x1 - side / 2)), int(max(0, y1 - side / 2))
        rx2, ry2 = int(min(width, x2 + side / 2)), int(min(height, y2 + side / 2))
        region = np.ascontiguousarray(frame[ry1:ry2, rx1:rx2])
        scale = max(1.0, _ALIGN_SIDE / side)
        if scale > 1.0:
            region = cv2.resize(region, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        rect = self._dlib.rectangle(
            int(round((x1 - rx1) * scale)), int(round((y1 - ry1) * scale)),
            int(round((x2 - rx1) * scale)), int(round((y2 - ry1) * scale)),
        )
        shape = self._shape(region, rect)
        chip = self._dlib.get_face_chip(region, shape, size=150, padding=0.25)
        return np.asarray(self._net.compute_face_descriptor(chip), dtype=np.float32)


def identity_model_problem() -> str | None:
    """Why the identity model cannot load (dlib or its weights missing), or None when it can; cheap (imports nothing)."""
    if importlib.util.find_spec("dlib") is None:
        return "dlib is not installed"
    if _models_dir() is None:
        return "the face_recognition_models package (dlib's weights) is not installed"
    return None


def warn_identity_off(problem: str) -> None:
    """Say once per process that tracking runs without identities, and how to fix it."""
    global _warned_missing
    if not _warned_missing:
        warnings.warn(
            f"face identity is off ({problem}): face fragments are joined by position only, so a cut or a crossing "
            f"can carry a track to another person. Install it with: {DLIB_INSTALL}",
            stacklevel=3,
        )
        _warned_missing = True


def get_face_embedder(name: str | None = "dlib") -> FaceEmbedder | None:
    """The identity embedder ("dlib"), or None for position-only tracking (`name=None`, or dlib not installed: then a
    warning says so, once per process)."""
    if name is None:
        return None
    if name != "dlib":
        raise ValueError(f"unknown face embedder {name!r}; choose 'dlib' or None (position only)")
    problem = identity_model_problem()
    if problem is None:
        try:
            return DlibFaceEmbedder()
        except (ImportError, RuntimeError) as error:  # a broken install or unreadable weights
            problem = str(error)
    warn_identity_off(problem)
    return None


def appearance_signature(frame: np.ndarray, box: Sequence[float]) -> np.ndarray | None:
    """Hue-saturation histogram (12 x 8 bins, L2-normalised) of the inner 80 % of the face box; None if empty."""
    import cv2

    x1, y1, x2, y2 = (float(v) for v in box)
    inset_x, inset_y = 0.1 * (x2 - x1), 0.1 * (y2 - y1)
    height, width = frame.shape[:2]
    cx1, cy1 = int(max(0, round(x1 + inset_x))), int(max(0, round(y1 + inset_y)))
    cx2, cy2 = int(min(width, round(x2 - inset_x))), int(min(height, round(y2 - inset_y)))
    if cx2 - cx1 < 2 or cy2 - cy1 < 2:
        return None
    hsv = cv2.cvtColor(np.ascontiguousarray(frame[cy1:cy2, cx1:cx2]), cv2.COLOR_RGB2HSV)
    histogram = cv2.calcHist([hsv], [0, 1], None, [12, 8], [0, 180, 0, 256])
    return cv2.normalize(histogram, histogram).flatten()


def signature_change(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Bhattacharyya distance between two signatures (0 = same colours, 1 = nothing in common; 1 when unknown)."""
    import cv2

    if a is None or b is None:
        return 1.0
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))
