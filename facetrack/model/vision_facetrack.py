"""FaceTrack-MM's per-frame input layers: the vision projector, the pooling of a patch grid to k x k tokens, and the
expression projector.

Both vision paths of the model use the first two: the global path (whole frames -> `<video>` tokens) and the face
path (face crops -> `<face>` tokens). `video_pooling="bilinear"` with `projector_before_pooling=True` is
LLaVA-OneVision's video path (`LlavaOnevisionModel.apply_pooling`: project every patch, then bilinear-interpolate the
grid to ceil(side / 2)). The expression stream's projector turns each frame's expression feature vector into
`expression_tokens_per_frame` tokens (`<expression>`).

This file is copied flat into Hub repos: it imports only torch, transformers and its sibling configuration file.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from transformers.activations import ACT2FN

from .configuration_facetrack import FaceTrackConfig, pooled_grid_side


class FaceTrackProjector(nn.Module):
    """Vision width -> LLM width: `mlp2x_gelu` (Linear, GELU, Linear) or `linear`. Parameter names follow
    LLaVA's `multi_modal_projector` (`linear_1`, `linear_2`), so a LLaVA projector's state dict loads as is."""

    def __init__(self, config: FaceTrackConfig):
        super().__init__()
        vision_width = config.vision_config.hidden_size
        text_width = config.text_config.hidden_size
        self.linear_1 = nn.Linear(vision_width, text_width, bias=config.projector_bias)
        if config.projector_type == "mlp2x_gelu":
            self.act = ACT2FN[config.projector_hidden_act]
            self.linear_2 = nn.Linear(text_width, text_width, bias=config.projector_bias)
        else:
            self.act = None
            self.linear_2 = None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden = self.linear_1(features)
        if self.linear_2 is not None:
            hidden = self.linear_2(self.act(hidden))
        return hidden


class FaceTrackExpressionProjector(nn.Module):
    """One frame's expression features -> E LLM-width tokens: MLP2x-GELU (Linear(N, D), GELU, Linear(D, E x D)),
    reshaped to `(..., E, D)`. N = the columns it reads (`expression_columns`, default all of
    `expression_features["size"]`), D = the LLM width, E = `expression_tokens_per_frame`; one MLP for all E tokens,
    so each token can carry a different part of the frame's expression."""

    def __init__(self, config: FaceTrackConfig):
        super().__init__()
        self.num_tokens = config.expression_tokens_per_frame
        self.text_width = config.text_config.hidden_size
        # The columns it reads (`expression_columns`; None: all), from the config: not a weight (a buffer would be
        # left uninitialised by from_pretrained's meta-device loading).
        self.input_columns = None if config.expression_columns is None else tuple(config.expression_input_indices)
        self.linear_1 = nn.Linear(len(config.expression_input_indices), self.text_width, bias=config.projector_bias)
        self.act = ACT2FN[config.projector_hidden_act]
        self.linear_2 = nn.Linear(self.text_width, self.num_tokens * self.text_width, bias=config.projector_bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.input_columns is not None:
            features = features[..., torch.tensor(self.input_columns, device=features.device)]
        hidden = self.linear_2(self.act(self.linear_1(features)))
        return hidden.view(*features.shape[:-1], self.num_tokens, self.text_width)


def pool_patch_grid(patch_features: torch.Tensor, num_tokens: int, mode: str = "average") -> torch.Tensor:
    """Pool a `(N, side, side, C)` patch grid to `(N, num_tokens, C)`: a k x k grid, row-major.

    mode: "average" (adaptive average pooling) or "bilinear" (`F.interpolate(..., mode="bilinear")`,
    `align_corners=False`, exactly as LLaVA-OneVision pools video frames).
    """
    grid_side = pooled_grid_side(num_tokens, patch_features.shape[1], "tokens per image")
    channels_first = patch_features.permute(0, 3, 1, 2)
    if mode == "bilinear":
        pooled = F.interpolate(channels_first, size=(grid_side, grid_side), mode="bilinear")
    elif mode == "average":
        pooled = F.adaptive_avg_pool2d(channels_first, grid_side)
    else:
        raise ValueError(f"unknown pooling mode {mode!r}: use 'average' or 'bilinear'")
    return pooled.flatten(2).transpose(1, 2)


def project_and_pool(
    patch_features: torch.Tensor,
    projector: FaceTrackProjector,
    num_tokens: int,
    mode: str,
    projector_before_pooling: bool,
) -> torch.Tensor:
    """`(N, side, side, C)` patch features -> `(N, num_tokens, D)` LLM-width tokens, in the configured order."""
    if projector_before_pooling:
        return pool_patch_grid(projector(patch_features), num_tokens, mode)
    return projector(pool_patch_grid(patch_features, num_tokens, mode))


__all__ = ["FaceTrackExpressionProjector", "FaceTrackProjector", "pool_patch_grid", "project_and_pool"]
