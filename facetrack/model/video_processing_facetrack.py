"""`FaceTrackVideoProcessor`: videos (+ one face box per frame) -> the vision encoder's pixels (the video processor
`FaceTrackProcessor` is composed of, as `LlavaOnevisionProcessor` is of a `LlavaOnevisionVideoProcessor`).

- Sampling: `frames_to_sample` turns a call's `num_frames` / `fps` / `do_sample_frames` into what the decoder takes
  (default: `num_frames` uniform frames); a `VideoClip` (what `FaceTrackProcessor` hands over after tracking) is taken
  as it is.
- Pixels: frames and square face crops (`crop_faces`, `face_crop_margin` around each box) are resized to
  `image_size` (bicubic with antialiasing, no crop, as SigLIP), rescaled by `rescale_factor` (1/255) and normalised
  with `image_mean` / `image_std`, in torch only.
- The call takes the standard `VideosKwargs` (`do_resize`, `size`, `resample`, `do_rescale`, `rescale_factor`,
  `do_normalize`, `image_mean`, `image_std`, `do_convert_rgb`, `num_frames`, `fps`, `do_sample_frames`, `device`,
  `return_tensors`, ...), as `BaseVideoProcessor` does; options it cannot honour (`do_center_crop=True`,
  `do_pad=True`, `data_format="channels_last"`, `return_metadata=True`) are refused by name.

Why not `BaseVideoProcessor`: it needs torchvision, which does not import beside the CPU torch wheel this project
installs; so this subclasses the backend-free `VideoProcessorMixin` (which gives `to_dict` / `save_pretrained` /
`from_pretrained`) and does its own frame preprocessing.

Outputs (docs/architecture.md): `pixel_values_videos` `(total_frames, 3, H, W)` (the frames of all videos back to
back), `video_num_frames` `(num_videos,)`; with `face_boxes` also `pixel_values_faces` `(total_frames, 3, H, W)` (all
zeros before normalisation where a frame has no box) and `face_mask` `(total_frames,)` bool.

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
from transformers.image_utils import PILImageResampling
from transformers.processing_utils import Unpack, VideosKwargs
from transformers.video_processing_utils import VideoProcessorMixin

try:  # the face pipeline is the installed facetrack-mm package (a Hub folder carries the model and processor only)
    from facetrack.video.crops import crop_faces
    from facetrack.video.decode import VideoClip, load_video
except ImportError as error:
    raise ImportError("FaceTrack-MM's processor needs the facetrack-mm package: pip install facetrack-mm") from error


class FaceTrackProcessorError(ValueError):
    """Processor input that cannot be turned into model inputs (names the problem)."""


class FaceTrackVideosKwargs(VideosKwargs, total=False):
    """`VideosKwargs` plus FaceTrack's own video options.

    face_tracks (`list`): one precomputed track per video (a `FaceTrackResult`, its dict, or None to track that
        video); a video with a track is decoded at exactly the track's frames and not tracked again. Per-video data
        known at call time, like `video_metadata`.
    return_face_tracks (`bool`): also return `face_tracks`, one `FaceTrackResult.to_dict()` per video.
    target: whose face to follow instead of the main character (see `facetrack.faces.tracking.parse_target`), for
        every video, or a list with one target (or None) per video.
    return_expressions (`bool`): also return `expressions`, the followed person's measured `ExpressionReport.to_dict()`
        per video (None where nobody is followed). Off by default: measuring costs ~12 ms per frame.
    """

    face_tracks: list | tuple | None
    return_face_tracks: bool | None
    target: Any
    return_expressions: bool | None


SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)

# The settings this processor saves; folders saved before it existed hold them flat in the processor's config.
VIDEO_PROCESSOR_SETTINGS = ("image_size", "image_mean", "image_std", "num_frames", "face_crop_margin")
# FaceTrackVideosKwargs that `FaceTrackProcessor` acts on (tracking happens before pixels).
TRACKING_KWARGS = ("face_tracks", "target", "return_face_tracks", "return_expressions")
# Keys transformers writes into a saved video processor's dict besides its settings.
SAVED_METADATA_KEYS = ("video_processor_type", "image_processor_type", "processor_class", "auto_map")
# torch's interpolation mode for each PIL resampling filter transformers' `resample` names.
INTERPOLATION_MODES = {
    PILImageResampling.NEAREST: "nearest",
    PILImageResampling.BILINEAR: "bilinear",
    PILImageResampling.BICUBIC: "bicubic",
}


def preprocess_frames(
    frames: np.ndarray,
    size: int | tuple[int, int] | None,
    mean: Sequence[float] | None = SIGLIP_MEAN,
    std: Sequence[float] | None = SIGLIP_STD,
    rescale_factor: float | None = 1 / 255,
    resample: int = PILImageResampling.BICUBIC,
) -> torch.Tensor:
    """`(T, H, W, 3)` uint8 RGB -> `(T, 3, height, width)` float32: rescale (`rescale_factor`; None: keep 0-255),
    resize (`size`: a side or (height, width); None: keep; bicubic with antialiasing, no crop, as SigLIP), then
    normalise with `mean`/`std` (None: not normalised)."""
    pixels = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    top = 255.0
    if rescale_factor is not None:
        pixels.div_(1 / rescale_factor)  # 1 / (1/255) is exactly 255: the same floats as dividing by 255
        top = 255.0 * rescale_factor
    if size is not None:
        height, width = (size, size) if isinstance(size, int) else size
        if pixels.shape[-2:] != (height, width):
            mode = INTERPOLATION_MODES.get(resample)
            if mode is None:
                raise FaceTrackProcessorError(
                    f"resample={resample!r} is not supported; use PILImageResampling.BICUBIC, BILINEAR or NEAREST"
                )
            smooth = mode != "nearest"
            pixels = F.interpolate(pixels, size=(height, width), mode=mode, antialias=smooth,
                                   **({"align_corners": False} if smooth else {}))
            pixels = pixels.clamp_(min(0.0, top), max(0.0, top))  # bicubic overshoots the value range
    if mean is not None and std is not None:
        mean_tensor = torch.tensor(mean, dtype=pixels.dtype).view(1, 3, 1, 1)
        std_tensor = torch.tensor(std, dtype=pixels.dtype).view(1, 3, 1, 1)
        pixels = (pixels - mean_tensor) / std_tensor
    return pixels


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
    if isinstance(item, np.ndarray) and item.ndim == 4 and item.shape[1] in (1, 3, 4) and item.shape[-1] not in (1, 3, 4):
        item = item.transpose(0, 2, 3, 1)
    return item


def as_rgb(item):
    """Decoded frames with 1 (grey) or 4 (RGBA) channels as 3-channel RGB; anything else unchanged."""
    if isinstance(item, np.ndarray) and item.ndim == 4 and item.shape[-1] in (1, 4):
        return np.repeat(item, 3, axis=-1) if item.shape[-1] == 1 else item[..., :3]
    if isinstance(item, (list, tuple)) and item and all(is_pil_image(frame) for frame in item):
        return [frame if frame.mode == "RGB" else frame.convert("RGB") for frame in item]
    return item


def is_single_video(item) -> bool:
    """A path, an open binary file (e.g. a dataset row's bytes in a `BytesIO`), a `VideoClip`, a `(T, H, W, 3)`
    array, or a list of frames (PIL images or `(H, W, 3)` arrays)."""
    if isinstance(item, (str, VideoClip)) or hasattr(item, "__fspath__") or hasattr(item, "read"):
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
    """One video, a list of videos, or one list of videos per prompt (as `apply_chat_template` gives) -> flat.
    A `(num_videos, T, C, H, W)` array or tensor is that many videos."""
    if videos is None:
        return []
    if isinstance(videos, (np.ndarray, torch.Tensor)) and videos.ndim == 5:
        return [as_frames_last(video) for video in videos]
    videos = as_frames_last(videos)
    if is_single_video(videos):
        return [videos]
    flat = []
    for item in videos:
        item = as_frames_last(item)
        if is_single_video(item):
            flat.append(item)
        elif isinstance(item, (list, tuple)) and all(is_single_video(as_frames_last(v)) for v in item):
            flat.extend(as_frames_last(video) for video in item)
        else:
            raise FaceTrackProcessorError(
                f"cannot read {type(item).__name__} as a video: give a path, a VideoClip, a (T, H, W, 3) uint8 "
                f"array or a list of PIL images"
            )
    return flat


def size_to_height_width(size) -> tuple[int, int]:
    """`size` as `VideosKwargs` gives it (`{"height", "width"}`, `{"shortest_edge"}`, an int or a pair) -> (h, w)."""
    if isinstance(size, int):
        return size, size
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return int(size[0]), int(size[1])
    if hasattr(size, "keys") or hasattr(size, "height"):
        size = dict(size) if hasattr(size, "keys") else {"height": size.height, "width": size.width}
        if size.get("height") and size.get("width"):
            return int(size["height"]), int(size["width"])
        if size.get("shortest_edge"):  # frames are resized to a square: the shortest edge is the side
            return int(size["shortest_edge"]), int(size["shortest_edge"])
    raise FaceTrackProcessorError(f"size must be {{'height': H, 'width': W}} or an int, got {size!r}")


class FaceTrackVideoProcessor(VideoProcessorMixin):
    r"""
    Args:
        image_size (`int`, defaults to 384): side of frames and face crops (the vision encoder's input size);
            `size={"height": S, "width": S}` (the standard argument) says the same.
        image_mean / image_std: normalisation (SigLIP: 0.5 / 0.5).
        num_frames (`int`, defaults to 8): frames sampled uniformly per video when the call gives no
            `num_frames`/`fps`.
        face_crop_margin (`float`, defaults to 0.25): margin around the face box, as a fraction of its side.
        kwargs: any other `VideosKwargs` default (`do_rescale`, `rescale_factor`, `do_normalize`, `resample`, ...).
    """

    valid_kwargs = FaceTrackVideosKwargs
    model_input_names = ["pixel_values_videos", "pixel_values_faces", "face_mask", "video_num_frames"]

    # Defaults of the standard options (an instance attribute, set from `__init__` or a saved config, wins).
    do_convert_rgb = True
    do_resize = True
    resample = PILImageResampling.BICUBIC
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    do_sample_frames = True
    return_metadata = False

    def __init__(
        self,
        image_size: int = 384,
        image_mean: Sequence[float] = SIGLIP_MEAN,
        image_std: Sequence[float] = SIGLIP_STD,
        num_frames: int = 8,
        face_crop_margin: float = 0.25,
        **kwargs: Unpack[FaceTrackVideosKwargs],
    ):
        for key in SAVED_METADATA_KEYS[:-1]:
            kwargs.pop(key, None)  # written by to_dict; the class is this one
        if kwargs.get("size") is not None:
            height, width = size_to_height_width(kwargs.pop("size"))
            if height != width:
                raise FaceTrackProcessorError(f"size must be square (the vision encoder's input), got {height}x{width}")
            image_size = height
        kwargs.pop("size", None)
        unknown = sorted(set(kwargs) - set(self.valid_kwargs.__annotations__) - {"auto_map"})
        if unknown:
            raise FaceTrackProcessorError(f"FaceTrackVideoProcessor got unexpected argument(s): {', '.join(unknown)}")
        super().__init__(**kwargs)  # sets the given options (and a Hub folder's `auto_map`) as attributes
        self.image_size = int(image_size)
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.num_frames = int(num_frames)
        self.face_crop_margin = float(face_crop_margin)

    @property
    def size(self) -> dict:
        """`image_size` as the standard `size` (frames and crops are square)."""
        return {"height": self.image_size, "width": self.image_size}

    @classmethod
    def from_processor_dict(cls, processor_dict: dict, **overrides) -> "FaceTrackVideoProcessor":
        """From a processor_config.json's contents: its nested "video_processor", or the flat settings of a folder
        saved before this class existed; `overrides` (e.g. `from_pretrained(..., num_frames=4, do_normalize=False)`:
        its settings and the standard `VideosKwargs`) win."""
        settings = dict(processor_dict.get("video_processor") or
                        {key: processor_dict[key] for key in VIDEO_PROCESSOR_SETTINGS if key in processor_dict})
        settings.update({key: value for key, value in overrides.items()
                         if key in VIDEO_PROCESSOR_SETTINGS or key in VideosKwargs.__annotations__})
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

    def load(self, video, num_frames: int | None = None, fps: float | None = None,
             do_sample_frames: bool | None = None) -> VideoClip:
        """Decode and sample one video (a `VideoClip` is taken as it is)."""
        if isinstance(video, VideoClip):
            return video
        num_frames, fps = self.frames_to_sample(video, num_frames, fps, do_sample_frames)
        return load_video(video, num_frames=num_frames, fps=fps)

    # ------------------------------------------------------------------------------------------------ pixels
    def resolve_options(self, kwargs: dict) -> dict:
        """The call's options over this processor's: every `valid_kwargs` key, unknown ones refused by name."""
        unknown = sorted(set(kwargs) - set(self.valid_kwargs.__annotations__))
        if unknown:
            raise FaceTrackProcessorError(f"FaceTrackVideoProcessor got unexpected argument(s): {', '.join(unknown)}")
        options = {key: kwargs[key] if kwargs.get(key) is not None else getattr(self, key, None)
                   for key in self.valid_kwargs.__annotations__}
        tracking = sorted(key for key in TRACKING_KWARGS if kwargs.get(key) is not None)
        if tracking:
            raise FaceTrackProcessorError(
                f"{', '.join(tracking)}: tracking options go to FaceTrackProcessor, which tracks the face and hands "
                "this video processor the frames and boxes"
            )
        refused = [f"{key}={options[key]!r}" for key in ("do_center_crop", "do_pad", "return_metadata") if options[key]]
        if options["data_format"] not in (None, "channels_first"):
            refused.append(f"data_format={options['data_format']!r}")
        if refused:
            raise FaceTrackProcessorError(
                f"FaceTrackVideoProcessor cannot honour {', '.join(refused)}: frames are resized whole to the vision "
                "encoder's square input, channels first"
            )
        return options

    def preprocess_frames(self, frames: np.ndarray, **kwargs) -> torch.Tensor:
        """`(T, H, W, 3)` uint8 frames -> `(T, 3, H', W')` pixels, with this processor's options or a call's."""
        options = self.resolve_options(kwargs)
        return preprocess_frames(
            frames,
            size_to_height_width(options["size"]) if options["do_resize"] else None,
            options["image_mean"] if options["do_normalize"] else None,
            options["image_std"] if options["do_normalize"] else None,
            options["rescale_factor"] if options["do_rescale"] else None,
            options["resample"],
        )

    def preprocess_faces(
        self, frames: np.ndarray, boxes: Sequence[Sequence[float] | None],
        frame_indices: Sequence[int] | None = None, **kwargs,
    ) -> torch.Tensor:
        """The square face crop around each box (all zeros where a box is None) as `(T, 3, H', W')` pixels
        (`frame_indices`: each frame's source index, so a repeated frame is cropped once)."""
        options = self.resolve_options(kwargs)
        side = size_to_height_width(options["size"])[0] if options["do_resize"] else self.image_size
        crops = crop_faces(frames, boxes, size=side, margin=self.face_crop_margin, frame_indices=frame_indices)
        return self.preprocess_frames(crops, **kwargs)

    def preprocess(
        self, videos, face_boxes: Sequence[Sequence[Sequence[float] | None]] | None = None,
        **kwargs: Unpack[FaceTrackVideosKwargs],
    ) -> BatchFeature:
        """Pixels of one video or a batch of videos (paths, `VideoClip`s, `(T, H, W, 3)` / `(T, 3, H, W)` arrays or
        tensors, lists of PIL images), their frames back to back; with `face_boxes` (one list of per-frame boxes,
        or None entries, per video) also the face crops and `face_mask`."""
        options = self.resolve_options(kwargs)
        pixel_options = {key: kwargs[key] for key in kwargs if key not in ("num_frames", "fps", "do_sample_frames",
                                                                          "return_tensors", "device")}
        video_list = flatten_videos(videos)
        if options["do_convert_rgb"]:
            video_list = [as_rgb(video) for video in video_list]
        if face_boxes is not None and len(face_boxes) != len(video_list):
            raise FaceTrackProcessorError(
                f"got face boxes for {len(face_boxes)} video(s) but {len(video_list)} video(s): give one list per video"
            )
        frame_pixels, face_pixels, face_masks, frame_counts = [], [], [], []
        for index, video in enumerate(video_list):
            clip = self.load(video, options["num_frames"], options["fps"], options["do_sample_frames"])
            frame_pixels.append(self.preprocess_frames(clip.frames, **pixel_options))
            frame_counts.append(len(clip.frames))
            if face_boxes is not None:
                boxes = face_boxes[index]
                face_pixels.append(self.preprocess_faces(clip.frames, boxes, clip.frame_indices, **pixel_options))
                face_masks.append(torch.tensor([box is not None for box in boxes], dtype=torch.bool))
        data = {
            "pixel_values_videos": torch.cat(frame_pixels),
            "video_num_frames": torch.tensor(frame_counts, dtype=torch.long),
        }
        if face_boxes is not None:
            data["pixel_values_faces"] = torch.cat(face_pixels)
            data["face_mask"] = torch.cat(face_masks)
        if options["device"] is not None:
            data = {key: value.to(options["device"]) for key, value in data.items()}
        return BatchFeature(data, tensor_type=options["return_tensors"])

    def __call__(self, videos, face_boxes=None, **kwargs) -> BatchFeature:
        return self.preprocess(videos, face_boxes=face_boxes, **kwargs)


__all__ = ["FaceTrackVideoProcessor", "SIGLIP_MEAN", "SIGLIP_STD", "count_decoded_frames", "preprocess_frames"]
