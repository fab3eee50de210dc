"""How FaceTrack-MM's flattened visual inputs line up with prompt rows, and what `generate()` needs from that.

The visual inputs hold the frames of all videos of a batch back to back (`pixel_values_videos`, `pixel_values_faces`,
`face_mask`, `expression_features`, `expression_mask`: one entry per frame; `video_num_frames`: one entry per video).
A prompt row may hold zero, one or several videos; how many frames a row holds is read from its count of the
placeholder every frame has a fixed number of (`counted_placeholder`: `<video>`, or `<expression>` in a model without
a vision path). Two generation steps must know which frames belong to which row:

- expanding the batch for beam search / `num_return_sequences` (`_expand_inputs_for_generation`): every copy of a
  row needs that row's whole block of frames, in order. transformers' default repeats each tensor row by row, which
  for flattened frames duplicates frame by frame (A1 A1 A2 A2 instead of A1 A2 A1 A2) and hands rows the wrong
  frames as soon as a video has more than one frame (Qwen2-VL overrides the same method for the same reason);
- deciding at which step the visual inputs go to the model (`prepare_inputs_for_generation`): with the step that
  starts from an empty cache, i.e. the prefill. transformers marks an assistant model's prefill as "not the first
  iteration", and would drop the pixels there.

This file is copied flat into Hub repos: it imports only torch and its sibling configuration file.
"""

from __future__ import annotations

import torch

from .configuration_facetrack import FaceTrackConfig

# Inputs that only the step feeding the placeholder tokens needs (one entry per frame, or per video).
VISUAL_INPUT_NAMES = ("pixel_values_videos", "pixel_values_faces", "face_mask", "expression_features",
                      "expression_mask", "video_num_frames")
PER_FRAME_INPUT_NAMES = ("pixel_values_videos", "pixel_values_faces", "face_mask", "expression_features",
                         "expression_mask")
# Per-frame inputs that every frame of a batch has one row of (the others are optional beside them).
FRAME_INPUT_NAMES = ("pixel_values_videos", "expression_features")


class FaceTrackInputError(ValueError):
    """Model inputs that do not fit together (placeholder counts, frame counts, shapes)."""


def counted_placeholder(config: FaceTrackConfig) -> tuple[int, str, int, int]:
    """The placeholder whose count says how many frames a prompt row holds: `<video>` (G per frame, plus the
    newline per video), or `<expression>` (E per frame) in a model without a vision path.
    Returns (token id, name, tokens per frame, extra tokens per video)."""
    if config.global_tokens_per_frame > 0:
        return config.video_token_id, "<video>", config.global_tokens_per_frame, int(config.video_newline)
    return config.expression_token_id, "<expression>", config.expression_tokens_per_frame, 0


def total_frames_of(visual_inputs: dict) -> int:
    """Frames of the batch, from the per-frame inputs (pixels, or expression features without a vision path)."""
    for name in FRAME_INPUT_NAMES:
        if visual_inputs.get(name) is not None:
            return visual_inputs[name].shape[0]
    raise FaceTrackInputError(f"no per-frame input: give one of {', '.join(FRAME_INPUT_NAMES)}")


def infer_video_num_frames(config: FaceTrackConfig, placeholders_per_row: list[int]) -> list[int]:
    """Frames per video when the inputs carry no `video_num_frames`: one video per row that has counted placeholder
    tokens (`counted_placeholder`)."""
    _, name, per_frame, per_video = counted_placeholder(config)
    frames = []
    for row, count in enumerate(placeholders_per_row):
        if count == 0:
            continue
        frame_tokens = count - per_video
        if frame_tokens <= 0 or frame_tokens % per_frame:
            raise FaceTrackInputError(
                f"prompt row {row} has {count} {name} tokens, which is no whole number of frames of "
                f"{per_frame} tokens{' plus one newline token' if per_video else ''}; "
                "pass video_num_frames (FaceTrackProcessor does)"
            )
        frames.append(frame_tokens // per_frame)
    return frames


def videos_per_row(config: FaceTrackConfig, placeholders_per_row: list[int], frames_per_video: list[int]) -> list[int]:
    """How many of the videos (in order) each prompt row holds, from the rows' counted placeholder tokens."""
    _, name, per_frame, per_video = counted_placeholder(config)
    tokens_per_video = [frames * per_frame + per_video for frames in frames_per_video]
    counts, video = [], 0
    for row, row_tokens in enumerate(placeholders_per_row):
        first, total = video, 0
        while total < row_tokens and video < len(tokens_per_video):
            total += tokens_per_video[video]
            video += 1
        if total != row_tokens:
            raise FaceTrackInputError(
                f"prompt row {row} has {row_tokens} {name} tokens, which do not match whole videos of "
                f"video_num_frames={frames_per_video} ({tokens_per_video} {name} tokens each)"
            )
        counts.append(video - first)
    if video != len(tokens_per_video):
        raise FaceTrackInputError(
            f"the prompts hold {video} video(s) but video_num_frames lists {len(tokens_per_video)}: "
            "put one <video> placeholder per video"
        )
    return counts


def expand_visual_inputs(
    config: FaceTrackConfig, visual_inputs: dict, placeholders_per_row: list[int], expand_size: int
) -> dict:
    """Repeat each row's block of frames (and videos) `expand_size` times, matching `repeat_interleave` of the rows."""
    total_frames = total_frames_of(visual_inputs)
    device = next(visual_inputs[name] for name in FRAME_INPUT_NAMES if visual_inputs.get(name) is not None).device
    if visual_inputs.get("video_num_frames") is not None:
        frames_per_video = [int(count) for count in visual_inputs["video_num_frames"].tolist()]
    else:
        frames_per_video = infer_video_num_frames(config, placeholders_per_row)
    if sum(frames_per_video) != total_frames:
        raise FaceTrackInputError(
            f"video_num_frames sums to {sum(frames_per_video)} but the per-frame inputs have {total_frames} frames"
        )
    row_videos = videos_per_row(config, placeholders_per_row, frames_per_video)

    frame_index, video_index, first_frame, first_video = [], [], 0, 0
    for count in row_videos:
        row_frames = sum(frames_per_video[first_video : first_video + count])
        frame_index.extend(list(range(first_frame, first_frame + row_frames)) * expand_size)
        video_index.extend(list(range(first_video, first_video + count)) * expand_size)
        first_frame += row_frames
        first_video += count

    expanded = {}
    for name, value in visual_inputs.items():
        if name in PER_FRAME_INPUT_NAMES:
            expanded[name] = value.index_select(0, torch.tensor(frame_index, dtype=torch.long, device=value.device))
        elif name == "video_num_frames":
            expanded[name] = value.index_select(0, torch.tensor(video_index, dtype=torch.long, device=value.device))
        else:
            expanded[name] = value
    if "video_num_frames" not in expanded:
        # Inferred above: pass it on, so the expanded rows are split into videos the same way.
        counts = [frames_per_video[index] for index in video_index]
        expanded["video_num_frames"] = torch.tensor(counts, dtype=torch.long, device=device)
    return expanded


class FaceTrackGenerationMixin:
    """The two `GenerationMixin` hooks FaceTrack-MM overrides (see the module docstring). Mixed into
    `FaceTrackForConditionalGeneration` before `GenerationMixin`."""

    def _placeholders_per_row(self, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None) -> list[int]:
        token_id = counted_placeholder(self.config)[0]
        if input_ids is not None and input_ids.numel() > 0:
            mask = input_ids == token_id
        else:
            mask = self.model.placeholder_mask(None, inputs_embeds, token_id)
        return mask.sum(-1).tolist()

    def _expand_inputs_for_generation(self, expand_size=1, is_encoder_decoder=False, input_ids=None, **model_kwargs):
        visual_inputs = {}
        if expand_size > 1 and any(model_kwargs.get(name) is not None for name in FRAME_INPUT_NAMES):
            visual_inputs = {name: model_kwargs.pop(name) for name in VISUAL_INPUT_NAMES if name in model_kwargs}
            visual_inputs = {name: value for name, value in visual_inputs.items() if value is not None}
            rows = self._placeholders_per_row(input_ids, model_kwargs.get("inputs_embeds"))
            visual_inputs = expand_visual_inputs(self.config, visual_inputs, rows, expand_size)
        input_ids, model_kwargs = super()._expand_inputs_for_generation(
            expand_size=expand_size, is_encoder_decoder=is_encoder_decoder, input_ids=input_ids, **model_kwargs
        )
        model_kwargs.update(visual_inputs)
        return input_ids, model_kwargs

    def prepare_inputs_for_generation(self, *args, is_first_iteration: bool | None = False, **kwargs):
        model_inputs = super().prepare_inputs_for_generation(*args, is_first_iteration=is_first_iteration, **kwargs)
        # The visual inputs go with the step that feeds the prompt: the one that starts from an empty cache (also an
        # assistant model's prefill, which transformers does not mark as a first iteration), or every step without a
        # cache. After that the cache holds their features; a generated token is never a reason to send them again.
        cache = model_inputs.get("past_key_values")
        if cache is None or cache.get_seq_length() == 0:
            for name in VISUAL_INPUT_NAMES:
                if kwargs.get(name) is not None:
                    model_inputs[name] = kwargs[name]
        else:
            for name in VISUAL_INPUT_NAMES:
                model_inputs.pop(name, None)
        return model_inputs


__all__ = [
    "FaceTrackGenerationMixin",
    "FaceTrackInputError",
    "VISUAL_INPUT_NAMES",
    "counted_placeholder",
    "expand_visual_inputs",
    "infer_video_num_frames",
    "videos_per_row",
]
