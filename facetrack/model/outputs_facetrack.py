"""FaceTrack-MM's model outputs (transformers `ModelOutput` dataclasses).

This file is copied flat into Hub repos: it imports only torch and transformers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from transformers.cache_utils import Cache
from transformers.modeling_outputs import BaseModelOutputWithPast, BaseModelOutputWithPooling, ModelOutput


@dataclass
class FaceTrackVideoFeaturesOutput(BaseModelOutputWithPooling):
    r"""
    What `get_video_features` returns (transformers 5's contract: the vision encoder's outputs + `pooler_output`).

    last_hidden_state (`torch.FloatTensor` of shape `(total_frames, num_patches, vision_width)`):
        The vision encoder's last hidden state for the frames (face crops are encoded in the same batch, after them,
        and left out here). None for a model without a vision tower (expression tokens alone).
    pooler_output (`tuple[torch.FloatTensor]`, one per video, each `(num_frames * global_tokens_per_frame [+ 1], D)`):
        What fills that video's `<video>` tokens: its frames' projected global tokens in frame order, then the
        newline embedding when `video_newline=True`. For a model without a vision tower, what fills its
        `<expression>` tokens: `(num_frames * expression_tokens_per_frame, D)` per video, in frame order.
    hidden_states / attentions: the vision encoder's, for the frames, when requested.
    frame_features (`torch.FloatTensor` of shape `(total_frames, global_tokens_per_frame, D)`):
        The projected global tokens per frame.
    face_features (`torch.FloatTensor` of shape `(num_face_frames, face_tokens_per_frame, D)`, *optional*):
        What fills the `<face>` tokens: every frame (the "no face" embedding where the face is missing) with
        `use_no_face_embedding=True`, else the present faces only. None without face inputs or a face path.
    expression_features (`torch.FloatTensor` of shape `(total_frames, expression_tokens_per_frame, D)`, *optional*):
        What fills the `<expression>` tokens: every frame's projected expression features (the "no expression"
        embedding where the face was not measured). None without expression inputs.
    """

    frame_features: torch.FloatTensor | None = None
    face_features: torch.FloatTensor | None = None
    expression_features: torch.FloatTensor | None = None


@dataclass
class FaceTrackModelOutputWithPast(BaseModelOutputWithPast):
    r"""
    video_hidden_states (`torch.FloatTensor` of shape `(total_frames, global_tokens_per_frame, hidden_size)`):
        Projected frame features that filled the `<video>` tokens (the newline embeddings not included).
    face_hidden_states (`torch.FloatTensor` of shape `(num_face_frames, face_tokens_per_frame, hidden_size)`):
        Face features (or "no face" embeddings) that filled the `<face>` tokens.
    expression_hidden_states (`torch.FloatTensor` of shape `(total_frames, expression_tokens_per_frame, hidden_size)`):
        Projected expression features (or "no expression" embeddings) that filled the `<expression>` tokens.
    """

    video_hidden_states: torch.FloatTensor | None = None
    face_hidden_states: torch.FloatTensor | None = None
    expression_hidden_states: torch.FloatTensor | None = None


@dataclass
class FaceTrackCausalLMOutputWithPast(ModelOutput):
    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    past_key_values: Cache | None = None
    hidden_states: tuple[torch.FloatTensor] | None = None
    attentions: tuple[torch.FloatTensor] | None = None
    video_hidden_states: torch.FloatTensor | None = None
    face_hidden_states: torch.FloatTensor | None = None
    expression_hidden_states: torch.FloatTensor | None = None


__all__ = ["FaceTrackCausalLMOutputWithPast", "FaceTrackModelOutputWithPast", "FaceTrackVideoFeaturesOutput"]
