"""What `FaceTrackProcessor.__call__` accepts: its `ProcessingKwargs`, the check that names every option it would
otherwise ignore, the shapes a video and a face track may come in, and the conversations `apply_chat_template` takes
(with the default chat template that renders them).

New per-video options go into `FaceTrackVideosKwargs` (one typed key each): transformers' `_merge_kwargs` then routes
them from a flat call (`processor(..., my_option=1)`) or a structured one (`videos_kwargs={"my_option": 1}`) into
the processor's `videos_kwargs`, and `check_processor_kwargs` accepts them.

This file is copied flat into Hub repos: it imports only third-party packages and its siblings, relatively.
"""

# No `from __future__ import annotations`: transformers reads the kwargs TypedDicts' annotations at run time.
from typing import Any

import numpy as np
import torch

from transformers.processing_utils import ProcessingKwargs, VideosKwargs

from .face_track_result import FaceTrackResult
from .video_io import VideoClip


# ChatML (Qwen2 / SmolLM2 style). A `{"type": "video"}` content part becomes the `<video>` placeholder; assistant
# replies are wrapped in {% generation %} so `return_assistant_tokens_mask=True` can mark the tokens to train on.
DEFAULT_CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['role'] == 'assistant' -%}{%- generation -%}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>' -}}{%- endgeneration -%}{{- '\\n' -}}"
    "{%- else -%}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'video' -%}{{- '<video>\\n' -}}"
    "{%- elif part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


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


class FaceTrackProcessorKwargs(ProcessingKwargs, total=False):
    videos_kwargs: FaceTrackVideosKwargs


# The standard `VideosKwargs` this processor acts on (FaceTrack's own keys are always accepted); any other video
# option (`size`, `do_resize`, ...) is refused by name: the frames are sized for the vision encoder.
USED_STANDARD_VIDEO_KWARGS = ("num_frames", "fps", "do_sample_frames", "image_mean", "image_std", "return_tensors")


def check_processor_kwargs(kwargs: dict) -> None:
    """Raise `FaceTrackProcessorError` naming every option the processor would not use (transformers' merge only
    logs a warning for unknown keys and drops them)."""
    annotations = FaceTrackProcessorKwargs.__annotations__
    text_keys = set(annotations["text_kwargs"].__annotations__)
    own_video_keys = set(FaceTrackVideosKwargs.__annotations__) - set(VideosKwargs.__annotations__)
    video_keys = set(USED_STANDARD_VIDEO_KWARGS) | own_video_keys
    flat = set(annotations) | text_keys | video_keys | {"common_kwargs"}
    unknown = sorted(key for key in kwargs if key not in flat)
    for modality, allowed in (("text_kwargs", text_keys), ("videos_kwargs", video_keys)):
        unknown += [f"{modality}[{key!r}]" for key in (kwargs.get(modality) or {}) if key not in allowed]
    unknown += [modality for modality in ("images_kwargs", "audio_kwargs") if kwargs.get(modality)]
    if unknown:
        raise FaceTrackProcessorError(f"FaceTrackProcessor got unexpected argument(s): {', '.join(unknown)}")


def set_padding_side(tokenizer, side: str) -> None:
    """Pad on `side` by default, also after save/load (the side is kept in tokenizer_config.json)."""
    if side not in ("left", "right"):
        raise FaceTrackProcessorError(f"padding_side must be 'left' or 'right', got {side!r}")
    tokenizer.padding_side = side
    tokenizer.init_kwargs["padding_side"] = side


def as_frames_last(item):
    """Arrays and tensors as `(T, H, W, C)` numpy: torch-style `(T, C, H, W)` videos are transposed."""
    if isinstance(item, torch.Tensor):
        item = item.detach().cpu().numpy()
    if isinstance(item, np.ndarray) and item.ndim == 4 and item.shape[1] in (1, 3) and item.shape[-1] not in (1, 3):
        item = item.transpose(0, 2, 3, 1)
    return item


def as_own_clip(item):
    """A `VideoClip` made by another copy of video_io (the installed package's, handed to a processor loaded from a
    Hub folder's code with trust_remote_code, or the other way round) as this copy's class: same arrays, no copy."""
    if isinstance(item, VideoClip) or type(item).__name__ != "VideoClip" or not hasattr(item, "frame_indices"):
        return item
    return VideoClip(frames=item.frames, timestamps=list(item.timestamps), frame_indices=list(item.frame_indices),
                     source_fps=item.source_fps, duration=item.duration, source=item.source,
                     source_width=getattr(item, "source_width", None), source_height=getattr(item, "source_height", None))


def as_face_track(track: FaceTrackResult | dict) -> FaceTrackResult:
    """A track object or dict as this copy's `FaceTrackResult`. One made by another copy of face_track_result (the
    installed package's, given to a processor loaded with trust_remote_code) goes through its dict, once."""
    if isinstance(track, FaceTrackResult):
        return track
    if isinstance(track, dict):
        return FaceTrackResult.from_dict(track)
    if type(track).__name__ == "FaceTrackResult" and callable(getattr(track, "to_dict", None)):
        return FaceTrackResult.from_dict(track.to_dict())
    raise FaceTrackProcessorError(
        f"a face track must be a FaceTrackResult or its to_dict() dict, got {type(track).__name__}"
    )


def check_conversations(conversation) -> None:
    """One conversation or a batch of them must have messages, each a dict with 'role' and 'content'."""
    if conversation is None or len(conversation) == 0:
        raise FaceTrackProcessorError("the message list is empty: give at least one message")
    conversations = conversation if isinstance(conversation[0], (list, tuple)) else [conversation]
    for index, messages in enumerate(conversations):
        if len(messages) == 0:
            raise FaceTrackProcessorError(f"conversation {index} of the batch has no messages")
        for message in messages:
            if not isinstance(message, dict) or "role" not in message or "content" not in message:
                raise FaceTrackProcessorError(
                    f"each message must be a dict with 'role' and 'content', got {message!r:.80}"
                )


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
    videos = as_own_clip(as_frames_last(videos))
    if is_single_video(videos):
        return [videos]
    flat = []
    for item in videos:
        item = as_own_clip(as_frames_last(item))
        if is_single_video(item):
            flat.append(item)
        elif isinstance(item, (list, tuple)) and all(is_single_video(as_own_clip(as_frames_last(v))) for v in item):
            flat.extend(as_own_clip(as_frames_last(video)) for video in item)
        else:
            raise FaceTrackProcessorError(
                f"cannot read {type(item).__name__} as a video: give a path, a VideoClip, a (T, H, W, 3) uint8 "
                f"array or a list of PIL images"
            )
    return flat


__all__ = [
    "DEFAULT_CHAT_TEMPLATE",
    "FaceTrackProcessorError",
    "FaceTrackProcessorKwargs",
    "FaceTrackVideosKwargs",
    "as_face_track",
    "check_conversations",
    "check_processor_kwargs",
    "flatten_videos",
    "set_padding_side",
]
