"""FaceTrack-MM: a video LLM that spends a small, fixed token budget on the main character's tracked face.

LLaVA layout (what TRL's loss path and `AutoModelForImageTextToText` expect):

    FaceTrackForConditionalGeneration
    ├── model: FaceTrackModel                 (base_model_prefix = "model"; returns last_hidden_state)
    │   ├── vision_tower: SigLIP vision model (one encoder for frames and face crops)
    │   ├── video_projector: MLP2x-GELU      (pooled frame patches -> LLM width)
    │   ├── face_projector: MLP2x-GELU       (pooled face-crop patches -> LLM width)
    │   ├── no_face_embedding                (learned; fills the face tokens of frames without the main face)
    │   └── language_model: the LLM's base model (Qwen2, Llama, ...)
    └── lm_head

Inputs follow docs/architecture.md: frames of all videos of the batch are flattened (`pixel_values_videos`,
`pixel_values_faces`: `(total_frames, 3, S, S)`, `face_mask`: `(total_frames,)`, `video_num_frames`: `(num_videos,)`).
Frame features fill the `<video>` placeholder tokens and face features the `<face>` placeholder tokens, both in frame
order, so the per-frame interleaving chosen by the processor is kept.

This file is copied flat into Hub repos: it imports only torch, transformers and its sibling configuration file.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from transformers import AutoModel, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache
from transformers.modeling_outputs import BaseModelOutputWithPast, ModelOutput
from transformers.utils.generic import can_return_tuple

from .configuration_facetrack import FaceTrackConfig, pooled_grid_side

# Inputs that only the prefill step needs: `generate()` drops the standard ones itself, these are ours.
VISUAL_INPUT_NAMES = ("pixel_values_videos", "pixel_values_faces", "face_mask", "video_num_frames")


class FaceTrackInputError(ValueError):
    """Model inputs that do not fit together (placeholder counts, frame counts, shapes)."""


@dataclass
class FaceTrackModelOutputWithPast(BaseModelOutputWithPast):
    r"""
    video_hidden_states (`torch.FloatTensor` of shape `(total_frames, global_tokens_per_frame, hidden_size)`):
        Projected frame features that filled the `<video>` tokens.
    face_hidden_states (`torch.FloatTensor` of shape `(num_face_frames, face_tokens_per_frame, hidden_size)`):
        Face features (or "no face" embeddings) that filled the `<face>` tokens.
    """

    video_hidden_states: torch.FloatTensor | None = None
    face_hidden_states: torch.FloatTensor | None = None


@dataclass
class FaceTrackCausalLMOutputWithPast(ModelOutput):
    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    past_key_values: Cache | None = None
    hidden_states: tuple[torch.FloatTensor] | None = None
    attentions: tuple[torch.FloatTensor] | None = None
    video_hidden_states: torch.FloatTensor | None = None
    face_hidden_states: torch.FloatTensor | None = None


class FaceTrackProjector(nn.Module):
    """Vision width -> LLM width: `mlp2x_gelu` (Linear, GELU, Linear) or `linear`."""

    def __init__(self, config: FaceTrackConfig):
        super().__init__()
        vision_width = config.vision_config.hidden_size
        text_width = config.text_config.hidden_size
        self.linear_1 = nn.Linear(vision_width, text_width)
        if config.projector_type == "mlp2x_gelu":
            self.act = ACT2FN[config.projector_hidden_act]
            self.linear_2 = nn.Linear(text_width, text_width)
        else:
            self.act = None
            self.linear_2 = None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden = self.linear_1(features)
        if self.linear_2 is not None:
            hidden = self.linear_2(self.act(hidden))
        return hidden


class FaceTrackPreTrainedModel(PreTrainedModel):
    config: FaceTrackConfig
    config_class = FaceTrackConfig
    base_model_prefix = "model"
    input_modalities = ("video", "text")
    supports_gradient_checkpointing = True
    _skip_keys_device_placement = ["past_key_values"]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    # The number of visual tokens depends on the data (face presence), so no full-graph compile.
    _can_compile_fullgraph = False

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, FaceTrackModel):
            init.normal_(module.no_face_embedding, mean=0.0, std=self.config.text_config.hidden_size**-0.5)


class FaceTrackModel(FaceTrackPreTrainedModel):
    """Vision tower + projectors + the LLM's base model; returns `last_hidden_state` (no LM head)."""

    def __init__(self, config: FaceTrackConfig):
        super().__init__(config)
        self.vision_tower = AutoModel.from_config(config.vision_config)
        self.video_projector = FaceTrackProjector(config)
        self.face_projector = FaceTrackProjector(config)
        self.no_face_embedding = nn.Parameter(
            torch.zeros(config.face_tokens_per_frame, config.text_config.hidden_size)
        )
        self.language_model = AutoModel.from_config(config.text_config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """`(N, 3, S, S)` -> patch features `(N, side, side, vision_width)` from `config.vision_feature_layer`."""
        vision_dtype = self.vision_tower.get_input_embeddings().weight.dtype
        outputs = self.vision_tower(pixel_values.to(vision_dtype), output_hidden_states=True)
        features = outputs.hidden_states[self.config.vision_feature_layer]
        side = self.config.patch_grid_side
        if features.shape[1] != side * side:
            raise FaceTrackInputError(
                f"the vision encoder returned {features.shape[1]} patches per image, expected {side} x {side}: "
                f"pixel values must be {self.config.vision_config.image_size} pixels square, "
                f"got {tuple(pixel_values.shape[-2:])}"
            )
        return features.view(features.shape[0], side, side, features.shape[-1])

    @staticmethod
    def pool_patches(patch_features: torch.Tensor, num_tokens: int) -> torch.Tensor:
        """Average-pool a `(N, side, side, C)` patch grid to `(N, num_tokens, C)` (a k x k grid, row-major)."""
        grid_side = pooled_grid_side(num_tokens, patch_features.shape[1], "tokens per image")
        channels_first = patch_features.permute(0, 3, 1, 2)
        pooled = F.adaptive_avg_pool2d(channels_first, grid_side)
        return pooled.flatten(2).transpose(1, 2)

    def get_video_features(
        self,
        pixel_values_videos: torch.Tensor,
        pixel_values_faces: torch.Tensor | None = None,
        face_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Frame and face features, projected to the LLM width.

        Returns `video_features` `(total_frames, global_tokens_per_frame, D)` and `face_features`: with the "no face"
        embedding `(total_frames, face_tokens_per_frame, D)`, else `(num_present_faces, face_tokens_per_frame, D)`;
        `None` when no face inputs are given. Only present faces go through the encoder (in the same batch as the
        frames): a missing face is never encoded, so its tokens never hold features of an empty crop.
        """
        total_frames = pixel_values_videos.shape[0]
        if face_mask is None:
            face_mask = torch.zeros(total_frames, dtype=torch.bool, device=pixel_values_videos.device)
        face_mask = face_mask.to(device=pixel_values_videos.device, dtype=torch.bool).reshape(-1)
        if face_mask.shape[0] != total_frames:
            raise FaceTrackInputError(
                f"face_mask has {face_mask.shape[0]} entries but pixel_values_videos has {total_frames} frames"
            )
        present_faces = None
        if pixel_values_faces is not None:
            if pixel_values_faces.shape[0] != total_frames:
                raise FaceTrackInputError(
                    f"pixel_values_faces has {pixel_values_faces.shape[0]} crops but pixel_values_videos has "
                    f"{total_frames} frames (one crop per frame, zeros where the face is missing)"
                )
            present_faces = pixel_values_faces[face_mask.to(pixel_values_faces.device)]
        images = pixel_values_videos if present_faces is None else torch.cat([pixel_values_videos, present_faces])
        patch_features = self.encode_images(images)

        video_features = self.video_projector(
            self.pool_patches(patch_features[:total_frames], self.config.global_tokens_per_frame)
        )
        if pixel_values_faces is None:
            return video_features, None

        num_face_tokens = self.config.face_tokens_per_frame
        face_features = self.face_projector(self.pool_patches(patch_features[total_frames:], num_face_tokens))
        if not self.config.use_no_face_embedding:
            return video_features, face_features
        # Every frame gets face tokens: present faces their features, the others the learned "no face" embedding.
        all_faces = self.no_face_embedding.to(face_features.dtype)[None].expand(total_frames, -1, -1)
        all_faces = all_faces.masked_scatter(face_mask[:, None, None].to(all_faces.device), face_features)
        return video_features, all_faces

    def placeholder_mask(
        self, input_ids: torch.LongTensor | None, inputs_embeds: torch.Tensor, token_id: int
    ) -> torch.Tensor:
        """Boolean mask `(batch, seq)` of placeholder positions (from ids, or by matching the embedding)."""
        if input_ids is not None:
            return input_ids == token_id
        token_embedding = self.get_input_embeddings()(torch.tensor(token_id, device=inputs_embeds.device))
        return (inputs_embeds == token_embedding).all(-1)

    def scatter_features(
        self, inputs_embeds: torch.Tensor, mask: torch.Tensor, features: torch.Tensor, name: str
    ) -> torch.Tensor:
        num_placeholders = int(mask.sum())
        num_features = features.shape[0] * features.shape[1]
        if num_placeholders != num_features:
            raise FaceTrackInputError(
                f"the prompt has {num_placeholders} {name} placeholder tokens but the visual inputs give "
                f"{num_features} {name} features ({features.shape[0]} frames x {features.shape[1]} tokens); "
                f"build the prompt with FaceTrackProcessor (same tokens-per-frame settings as the model config)"
            )
        features = features.reshape(-1, features.shape[-1]).to(inputs_embeds.device, inputs_embeds.dtype)
        return inputs_embeds.masked_scatter(mask[..., None].to(inputs_embeds.device), features)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values_videos: torch.FloatTensor | None = None,
        pixel_values_faces: torch.FloatTensor | None = None,
        face_mask: torch.BoolTensor | None = None,
        video_num_frames: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> FaceTrackModelOutputWithPast:
        if (input_ids is None) == (inputs_embeds is None):
            raise FaceTrackInputError("give exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)

        video_mask = self.placeholder_mask(input_ids, inputs_embeds, self.config.video_token_id)
        face_token_mask = self.placeholder_mask(input_ids, inputs_embeds, self.config.face_token_id)
        video_features = face_features = None
        if pixel_values_videos is not None:
            if video_num_frames is not None and int(video_num_frames.sum()) != pixel_values_videos.shape[0]:
                raise FaceTrackInputError(
                    f"video_num_frames sums to {int(video_num_frames.sum())} but pixel_values_videos has "
                    f"{pixel_values_videos.shape[0]} frames"
                )
            video_features, face_features = self.get_video_features(pixel_values_videos, pixel_values_faces, face_mask)
            inputs_embeds = self.scatter_features(inputs_embeds, video_mask, video_features, "<video>")
            if face_features is not None:
                inputs_embeds = self.scatter_features(inputs_embeds, face_token_mask, face_features, "<face>")
            elif face_token_mask.any():
                raise FaceTrackInputError(
                    f"the prompt has {int(face_token_mask.sum())} <face> placeholder tokens but no pixel_values_faces"
                )
        elif (video_mask.any() or face_token_mask.any()) and (
            past_key_values is None or past_key_values.get_seq_length() == 0
        ):
            # Placeholders in a prefill without pixels would silently feed the placeholder embedding to the LLM.
            raise FaceTrackInputError(
                f"the prompt has {int(video_mask.sum())} <video> and {int(face_token_mask.sum())} <face> placeholder "
                f"tokens but no pixel_values_videos"
            )

        outputs = self.language_model(
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        return FaceTrackModelOutputWithPast(
            last_hidden_state=outputs.last_hidden_state,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            video_hidden_states=video_features,
            face_hidden_states=face_features,
        )


class FaceTrackForConditionalGeneration(FaceTrackPreTrainedModel, GenerationMixin):
    """FaceTrack-MM with its language-modelling head: `forward` (loss with `labels`) and `generate()`."""

    _tied_weights_keys = {"lm_head.weight": "model.language_model.embed_tokens.weight"}

    def __init__(self, config: FaceTrackConfig):
        super().__init__(config)
        self.model = FaceTrackModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def set_output_embeddings(self, new_embeddings: nn.Module) -> None:
        self.lm_head = new_embeddings

    def get_video_features(self, pixel_values_videos, pixel_values_faces=None, face_mask=None):
        return self.model.get_video_features(pixel_values_videos, pixel_values_faces, face_mask)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values_videos: torch.FloatTensor | None = None,
        pixel_values_faces: torch.FloatTensor | None = None,
        face_mask: torch.BoolTensor | None = None,
        video_num_frames: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> FaceTrackCausalLMOutputWithPast:
        r"""
        labels (`torch.LongTensor` of shape `(batch, seq)`, *optional*):
            Next-token targets (shifted inside the loss); -100 is ignored. Mask the visual placeholders.
        """
        outputs = self.model(
            input_ids=input_ids,
            pixel_values_videos=pixel_values_videos,
            pixel_values_faces=pixel_values_faces,
            face_mask=face_mask,
            video_num_frames=video_num_frames,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        slice_indices = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden_states[:, slice_indices, :])

        loss = None
        if labels is not None:
            loss = self.loss_function(
                logits=logits, labels=labels, vocab_size=self.config.text_config.vocab_size, **kwargs
            )
        return FaceTrackCausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            video_hidden_states=outputs.video_hidden_states,
            face_hidden_states=outputs.face_hidden_states,
        )

    def prepare_inputs_for_generation(self, *args, is_first_iteration: bool | None = False, **kwargs):
        model_inputs = super().prepare_inputs_for_generation(*args, is_first_iteration=is_first_iteration, **kwargs)
        # Visual features are computed once, at prefill; after that the KV cache holds them.
        if not is_first_iteration and kwargs.get("use_cache", True):
            for name in VISUAL_INPUT_NAMES:
                model_inputs.pop(name, None)
        return model_inputs


__all__ = [
    "FaceTrackPreTrainedModel",
    "FaceTrackModel",
    "FaceTrackForConditionalGeneration",
    "FaceTrackInputError",
]
