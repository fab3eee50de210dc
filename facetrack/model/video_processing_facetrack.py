"""`FaceTrackVideoProcessor`: how many frames to sample, and decoded frames + face boxes -> the vision encoder's
pixels (the video processor `FaceTrackProcessor` is composed of, as `LlavaNextVideoProcessor(video_processor,
image_processor, tokenizer)` is of its parts).

- Sampling: `frames_to_sample` turns a call's `num_frames` / `fps` / `do_sample_frames` into what the decoder takes
  (default: `num_frames` uniform frames); `load` decodes and samples a video that needs no face track.
- Pixels: frames and square face crops (`face_tracking.crop_faces`, `face_crop_margin` around each box) are resized
  to `image_size` (bicubic, no crop, as SigLIP), scaled to [0, 1] and normalised with `image_mean` / `image_std`, in
  torch only (no torchvision: transformers' `BaseVideoProcessor` needs it, so this subclasses the
  backend-free `VideoProcessorMixin`, which gives `to_dict` / `save_pretrained` / `from_pretrained`).

Saved inside processor_config.json under "video_processor" (transformers 5's nested layout). Folders saved before
it existed kept the same settings flat in processor_config.json: `from_processor_dict` reads both.

This file is copied into Hub model repos beside the model's files; the face pipeline it uses comes from the installed
`facetrack-mm` package.
"""

# No `from __future__ import annotations`: transformers reads the kwargs TypedDicts' annotations at run time.

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from transformers import BatchFeature
from transformers.video_processing_utils import VideoProcessorMixin

from transformers.processing_utils import VideosKwargs

try:  # the face pipeline is the installed facetrack-mm package (a Hub folder carries the model and processor only)
    from facetrack.video.crops import crop_faces
    from facetrack.video.decode import VideoClip, load_video
except ImportError as error:
    raise ImportError("FaceTrack-MM's processor needs the facetrack-mm package: pip install facetrack-mm") from error

class FaceTrackProcessorError(ValueError):
    """Processor input that cannot be turned into model inputs (names the problem)."""


class FaceTrackVideosKwargs(VideosKwargs, total=False):
    """`VideosKwargs` plus FaceTrack's own video options.

    return_face_tracks (`bool`): also return `face_tracks`, one `FaceTrackResult.to_dict()` per video.
    target: whose face to follow instead of the main character (see `face_tracking.parse_target`), for every video,
        or a list with one target (or None) per video.
    return_expressions (`bool`): also return `expressions`, the followed person's measured `ExpressionReport.to_dict()`
        per video (None where nobody is followed). Off by default: measuring costs ~12 ms per frame.
    """

    return_face_tracks: bool | None
    target: Any
    return_expressions: bool | None


SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)

# The settings this processor saves; folders saved before it existed hold them flat in the processor's config.
VIDEO_PROCESSOR_SETTINGS = ("image_size", "image_mean", "image_std", "num_frames", "face_crop_margin")


def preprocess_frames(
    frames: np.ndarray, size: int, mean: Sequence[float] = SIGLIP_MEAN, std: Sequence[float] = SIGLIP_STD
) -> torch.Tensor:
    """`(T, H, W, 3)` uint8 RGB -> `(T, 3, size, size)` float32: bicubic resize (no crop, as SigLIP), scale to
    [0, 1], normalise with `mean`/`std`."""
    pixels = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)
    if pixels.shape[-2:] != (size, size):
        pixels = F.interpolate(pixels, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
        pixels = pixels.clamp_(0.0, 1.0)
    mean_tensor = torch.tensor(mean, dtype=pixels.dtype).view(1, 3, 1, 1)
    std_tensor = torch.tensor(std, dtype=pixels.dtype).view(1, 3, 1, 1)
    return (pixels - mean_tensor) / std_tensor


def count_decoded_frames(video) -> int:
    """`do_sample_frames=False` takes every frame, which only decoded frames have a count of before decoding."""
    if isinstance(video, VideoClip):
        return len(video.frames)
    if isinstance(video, (np.ndarray, list, tuple)):
        return len(video)
    raise FaceTrackProcessorError(
        "do_sample_frames=False takes every frame of decoded frames; for a video file give num_frames or fps"
    )


def as_frames_last(item):
    """Arrays and tensors as `(T, H, W, C)` numpy: torch-style `(T, C, H, W)` videos are transposed."""
    if isinstance(item, torch.Tensor):
        item = item.detach().cpu().numpy()
    if isinstance(item, np.ndarray) and item.ndim == 4 and item.shape[1] in (1, 3) and item.shape[-1] not in (1, 3):
        item = item.transpose(0, 2, 3, 1)
    return item


def is_single_video(item) -> bool:
    """A path, a `VideoClip`, a `(T, H, W, 3)` array, or a list of frames (PIL images or `(H, W, 3)` arrays)."""
    if isinstance(item, (str, VideoClip)) or hasattr(item, "__fspath__"):
        return True
    if isinstance(item, np.ndarray):
        return item.ndim == 4
    if isinstance(item, (list, tuple)) and item:
        return all(is_pil_image(frame) or (isinstance(frame, np.ndarray) and frame.ndim == 3) for frame in item)
    return False


def is_pil_image(item) -> bool:
    # Duck-typed (PIL stays an optional import); torch tensors also have a `mode` attribute, but no `getbands`.
    return hasattr(item, "mode") and hasattr(item, "getbands")


def flatten_videos(videos) -> list:
    """One video, a list of videos, or one list of videos per prompt (as `apply_chat_template` gives) -> flat."""
    if videos is None:
        return []
    videos = (as_frames_last(videos))
    if is_single_video(videos):
        return [videos]
    flat = []
    for item in videos:
        item = (as_frames_last(item))
        if is_single_video(item):
            flat.append(item)
        elif isinstance(item, (list, tuple)) and all(is_single_video((as_frames_last(v))) for v in item):
            flat.extend((as_frames_last(video)) for video in item)
        else:
            raise FaceTrackProcessorError(
                f"cannot read {type(item).__name__} as a video: give a path, a VideoClip, a (T, H, W, 3) uint8 "
                f"array or a list of PIL images"
            )
    return flat


class FaceTrackVideoProcessor(VideoProcessorMixin):
    r"""
    Args:
        image_size (`int`, defaults to 384): side of frames and face crops (the vision encoder's input size).
        image_mean / image_std: normalisation (SigLIP: 0.5 / 0.5).
        num_frames (`int`, defaults to 8): frames sampled uniformly per video when the call gives no
            `num_frames`/`fps`.
        face_crop_margin (`float`, defaults to 0.25): margin around the face box, as a fraction of its side.
    """

    valid_kwargs = FaceTrackVideosKwargs
    model_input_names = ["pixel_values_videos", "pixel_values_faces"]

    def __init__(
        self,
        image_size: int = 384,
        image_mean: Sequence[float] = SIGLIP_MEAN,
        image_std: Sequence[float] = SIGLIP_STD,
        num_frames: int = 8,
        face_crop_margin: float = 0.25,
        **kwargs,
    ):
        kwargs.pop("video_processor_type", None)  # written by to_dict; the class is this one
        super().__init__(**kwargs)  # keeps `auto_map` (a Hub folder's) as an attribute, as transformers' do
        self.image_size = int(image_size)
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.num_frames = int(num_frames)
        self.face_crop_margin = float(face_crop_margin)

    @classmethod
    def from_processor_dict(cls, processor_dict: dict, **overrides) -> "FaceTrackVideoProcessor":
        """From a processor_config.json's contents: its nested "video_processor", or the flat settings of a folder
        saved before this class existed; `overrides` (e.g. `from_pretrained(..., num_frames=4)`) win."""
        settings = dict(processor_dict.get("video_processor") or
                        {key: processor_dict[key] for key in VIDEO_PROCESSOR_SETTINGS if key in processor_dict})
        settings.update({key: value for key, value in overrides.items() if key in VIDEO_PROCESSOR_SETTINGS})
        return cls(**settings)

    # ------------------------------------------------------------------------------------------------ sampling
    def frames_to_sample(
        self, video, num_frames: int | None = None, fps: float | None = None, do_sample_frames: bool | None = None
    ) -> tuple[int | None, float | None]:
        """(num_frames, fps) to decode `video` with: every frame with `do_sample_frames=False` (decoded frames
        only), else the call's `num_frames` / `fps`, else this processor's `num_frames`."""
        if do_sample_frames is False:
            return count_decoded_frames(video), None
        if num_frames is None and fps is None:
            return self.num_frames, None
        return num_frames, fps

    @staticmethod
    def load(video, num_frames: int | None, fps: float | None) -> VideoClip:
        """Decode and sample a video that needs no face track (a model without a face path)."""
        if isinstance(video, VideoClip):
            return video
        return load_video(video, num_frames=num_frames, fps=fps)

    # ------------------------------------------------------------------------------------------------ pixels
    def preprocess_frames(self, frames: np.ndarray, image_mean=None, image_std=None) -> torch.Tensor:
        """`(T, H, W, 3)` uint8 frames -> `(T, 3, S, S)` normalised pixels (`image_mean`/`image_std`: a call's)."""
        return preprocess_frames(frames, self.image_size, image_mean or self.image_mean, image_std or self.image_std)

    def preprocess_faces(
        self, frames: np.ndarray, boxes: Sequence[Sequence[float] | None], image_mean=None, image_std=None,
        frame_indices: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """The square face crop around each box (all zeros where a box is None) as `(T, 3, S, S)` pixels
        (`frame_indices`: each frame's source index, so a repeated frame is cropped once)."""
        crops = crop_faces(frames, boxes, size=self.image_size, margin=self.face_crop_margin,
                           frame_indices=frame_indices)
        return self.preprocess_frames(crops, image_mean, image_std)

    def __call__(
        self, frames: np.ndarray, face_boxes: Sequence[Sequence[float] | None] | None = None, image_mean=None,
        image_std=None,
    ) -> BatchFeature:
        """`pixel_values_videos` of `frames`, and `pixel_values_faces` when `face_boxes` (one per frame) are given."""
        data = {"pixel_values_videos": self.preprocess_frames(frames, image_mean, image_std)}
        if face_boxes is not None:
            data["pixel_values_faces"] = self.preprocess_faces(frames, face_boxes, image_mean, image_std)
        return BatchFeature(data)

    def preprocess(self, *args, **kwargs) -> BatchFeature:
        return self(*args, **kwargs)


__all__ = ["FaceTrackVideoProcessor", "SIGLIP_MEAN", "SIGLIP_STD", "count_decoded_frames", "preprocess_frames"]
