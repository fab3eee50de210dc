"""FaceTrack-MM: a video LLM that spends a small, fixed token budget on the main character's tracked face.

LLaVA layout (what TRL's loss path and `AutoModelForImageTextToText` expect):

    FaceTrackForConditionalGeneration
    ├── model: FaceTrackModel                 (base_model_prefix = "model"; returns last_hidden_state)
    │   ├── vision_tower: SigLIP vision model (one encoder for frames and face crops; absent for
    │   │                                      expression tokens alone: no global and no face tokens)
    │   ├── video_projector: MLP2x-GELU      (frame patches -> LLM width; absent with the vision tower)
    │   ├── face_projector: MLP2x-GELU       (face-crop patches -> LLM width; absent with face_tokens_per_frame=0)
    │   ├── no_face_embedding                (learned; fills the face tokens of frames without the main face)
    │   ├── video_newline_embedding          (learned; one per video after its last frame, with video_newline=True)
    │   ├── expression_projector: MLP2x-GELU (a frame's expression features -> E tokens; absent with
    │   │                                      expression_tokens_per_frame=0)
    │   ├── no_expression_embedding          (learned; fills the expression tokens of frames not measured)
    │   └── language_model: the LLM's base model (Qwen2, Llama, ...)
    └── lm_head

Inputs follow docs/architecture.md: frames of all videos of the batch are flattened (`pixel_values_videos`,
`pixel_values_faces`: `(total_frames, 3, S, S)`, `face_mask`: `(total_frames,)`, `expression_features`:
`(total_frames, N)`, `expression_mask`: `(total_frames,)`, `video_num_frames`: `(num_videos,)`). Frame features fill
the `<video>` placeholder tokens, face features the `<face>` and expression features the `<expression>` placeholder
tokens, each in frame order, so the per-frame interleaving chosen by the processor is kept. With the LLaVA-OneVision
settings (`video_pooling="bilinear"`, `projector_before_pooling=True`, `video_newline=True`, no face tokens, no
timestamps) the global path computes exactly what `LlavaOnevisionForConditionalGeneration` computes for a video.

This file is copied flat into Hub repos: it imports only torch, transformers and its sibling files.
"""

from __future__ import annotations

import torch
from torch import nn

from transformers import AutoModel, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache
from transformers.utils.generic import can_return_tuple

from .configuration_facetrack import FaceTrackConfig
from .generation_facetrack import (
    VISUAL_INPUT_NAMES,
    FaceTrackGenerationMixin,
    FaceTrackInputError,
    counted_placeholder,
    infer_video_num_frames,
)
from .outputs_facetrack import (
    FaceTrackCausalLMOutputWithPast,
    FaceTrackModelOutputWithPast,
    FaceTrackVideoFeaturesOutput,
)
from .vision_facetrack import FaceTrackExpressionProjector, FaceTrackProjector, pool_patch_grid, project_and_pool


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

    def initialize_weights(self):
        # SigLIP initialises its attention and MLP weights from their parent modules, which hold no parameter of their
        # own; for a custom-code model (ours) transformers skips such modules, so weights initialised on load (a
        # missing key, `from_pretrained(None, config=..., state_dict={})`) would differ from `__init__`'s. The
        # library's sub-models therefore run their own initialisation first; what is left is `_init_weights`'.
        for submodel in self.modules():
            if isinstance(submodel, PreTrainedModel) and not submodel.is_custom_code():
                submodel.initialize_weights()
        super().initialize_weights()

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, FaceTrackModel):
            std = self.config.text_config.hidden_size**-0.5
            if module.no_face_embedding is not None:
                init.normal_(module.no_face_embedding, mean=0.0, std=std)
            if module.video_newline_embedding is not None:
                init.normal_(module.video_newline_embedding, mean=0.0, std=std)
            if module.no_expression_embedding is not None:
                init.normal_(module.no_expression_embedding, mean=0.0, std=std)


class FaceTrackModel(FaceTrackPreTrainedModel):
    """Vision tower + projectors + the LLM's base model; returns `last_hidden_state` (no LM head)."""

    def __init__(self, config: FaceTrackConfig):
        super().__init__(config)
        text_width = config.text_config.hidden_size
        # Parameters that a setting turns off do not exist at all: older checkpoints load without missing keys, and
        # the expression stream alone has no vision weights to load or run.
        if config.has_vision_path:
            self.vision_tower = AutoModel.from_config(config.vision_config)
            self.video_projector = FaceTrackProjector(config)
        else:
            self.vision_tower = None
            self.video_projector = None
        if config.has_face_path:
            self.face_projector = FaceTrackProjector(config)
            self.no_face_embedding = nn.Parameter(torch.zeros(config.face_tokens_per_frame, text_width))
        else:
            self.face_projector = None
            self.no_face_embedding = None
        self.video_newline_embedding = nn.Parameter(torch.zeros(text_width)) if config.video_newline else None
        if config.has_expression_stream:
            self.expression_projector = FaceTrackExpressionProjector(config)
            self.no_expression_embedding = nn.Parameter(
                torch.zeros(config.expression_tokens_per_frame, text_width)
            )
        else:
            self.expression_projector = None
            self.no_expression_embedding = None
        self.language_model = AutoModel.from_config(config.text_config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def encode_images(self, pixel_values: torch.Tensor, **vision_kwargs):
        """`(N, 3, S, S)` -> (patch features `(N, side, side, vision_width)` from `config.vision_feature_layer`,
        the vision encoder's outputs). Only the selected hidden state is kept unless `output_hidden_states=True`."""
        vision_dtype = self.vision_tower.get_input_embeddings().weight.dtype
        if not vision_kwargs.get("output_hidden_states"):
            vision_kwargs["output_hidden_states"] = self.config.vision_feature_layer
        outputs = self.vision_tower(pixel_values.to(vision_dtype), return_dict=True, **vision_kwargs)
        features = outputs.hidden_states[self.config.vision_feature_layer]
        side = self.config.patch_grid_side
        if features.shape[1] != side * side:
            raise FaceTrackInputError(
                f"the vision encoder returned {features.shape[1]} patches per image, expected {side} x {side}: "
                f"pixel values must be {self.config.vision_config.image_size} pixels square, "
                f"got {tuple(pixel_values.shape[-2:])}"
            )
        return features.view(features.shape[0], side, side, features.shape[-1]), outputs

    @staticmethod
    def pool_patches(patch_features: torch.Tensor, num_tokens: int, mode: str = "average") -> torch.Tensor:
        """Pool a `(N, side, side, C)` patch grid to `(N, num_tokens, C)` (a k x k grid, row-major)."""
        return pool_patch_grid(patch_features, num_tokens, mode)

    @can_return_tuple
    def get_video_features(
        self,
        pixel_values_videos: torch.Tensor | None = None,
        pixel_values_faces: torch.Tensor | None = None,
        face_mask: torch.Tensor | None = None,
        video_num_frames: torch.Tensor | None = None,
        expression_features: torch.Tensor | None = None,
        expression_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> FaceTrackVideoFeaturesOutput:
        """Frame, face and expression features, projected to the LLM width (see `FaceTrackVideoFeaturesOutput`).

        `video_num_frames` splits the frames into videos (default: all frames are one video). Only present faces go
        through the encoder (in the same batch as the frames): a missing face is never encoded, so its tokens never
        hold features of an empty crop. Expression features are projected when given (a model without a vision
        tower needs them and takes no pixels).
        """
        config = self.config
        if output_hidden_states is None:
            output_hidden_states = config.output_hidden_states
        if output_attentions is None:
            output_attentions = config.output_attentions
        if not config.has_vision_path and (pixel_values_videos is not None or pixel_values_faces is not None):
            raise FaceTrackInputError(
                "this model has no vision tower (global_tokens_per_frame=0, face_tokens_per_frame=0: expression "
                "tokens alone): give expression_features, not pixel values"
            )
        # The input every frame has one row of: pixels, or expression features without a vision path.
        frames_name = "pixel_values_videos" if config.has_vision_path else "expression_features"
        frames_input = pixel_values_videos if config.has_vision_path else expression_features
        if frames_input is None:
            raise FaceTrackInputError(f"get_video_features needs {frames_name} (one row per frame)")
        total_frames = frames_input.shape[0]
        frames_per_video = [total_frames] if video_num_frames is None else [int(n) for n in video_num_frames.tolist()]
        if sum(frames_per_video) != total_frames:
            raise FaceTrackInputError(
                f"video_num_frames sums to {sum(frames_per_video)} but {frames_name} has {total_frames} frames"
            )

        expression_tokens = None
        if expression_features is not None:
            expression_tokens = self.get_expression_features(expression_features, expression_mask)
            if expression_tokens.shape[0] != total_frames:
                raise FaceTrackInputError(
                    f"expression_features has {expression_tokens.shape[0]} rows but pixel_values_videos has "
                    f"{total_frames} frames (one feature vector per frame)"
                )
        if not config.has_vision_path:
            per_video = [tokens.reshape(-1, tokens.shape[-1]) for tokens in expression_tokens.split(frames_per_video)]
            return FaceTrackVideoFeaturesOutput(pooler_output=tuple(per_video), expression_features=expression_tokens)

        present_faces = None
        if pixel_values_faces is not None and config.has_face_path:
            if face_mask is None:
                face_mask = torch.zeros(total_frames, dtype=torch.bool, device=pixel_values_videos.device)
            face_mask = face_mask.to(device=pixel_values_faces.device, dtype=torch.bool).reshape(-1)
            if face_mask.shape[0] != total_frames or pixel_values_faces.shape[0] != total_frames:
                raise FaceTrackInputError(
                    f"pixel_values_faces has {pixel_values_faces.shape[0]} crops and face_mask {face_mask.shape[0]} "
                    f"entries but pixel_values_videos has {total_frames} frames (one crop per frame, zeros where the "
                    "face is missing)"
                )
            present_faces = pixel_values_faces[face_mask]
        images = pixel_values_videos if present_faces is None else torch.cat([pixel_values_videos, present_faces])
        patch_features, vision_outputs = self.encode_images(
            images, output_hidden_states=output_hidden_states, output_attentions=output_attentions
        )

        frame_features = project_and_pool(
            patch_features[:total_frames], self.video_projector, config.global_tokens_per_frame,
            config.video_pooling, config.projector_before_pooling,
        )
        per_video = []
        for frames in frame_features.split(frames_per_video):
            tokens = frames.reshape(-1, frames.shape[-1])
            if self.video_newline_embedding is not None:
                tokens = torch.cat([tokens, self.video_newline_embedding.to(tokens.dtype)[None]])
            per_video.append(tokens)

        face_features = None
        if present_faces is not None:
            face_features = project_and_pool(
                patch_features[total_frames:], self.face_projector, config.face_tokens_per_frame,
                "average", config.projector_before_pooling,
            )
            if config.use_no_face_embedding:
                # Every frame gets face tokens: present faces their features, the others the "no face" embedding.
                all_faces = self.no_face_embedding.to(face_features.dtype)[None].expand(total_frames, -1, -1)
                mask = face_mask[:, None, None].to(all_faces.device)
                face_features = all_faces.masked_scatter(mask, face_features)

        def frames_only(states):
            return None if states is None else tuple(None if s is None else s[:total_frames] for s in states)

        return FaceTrackVideoFeaturesOutput(
            last_hidden_state=vision_outputs.last_hidden_state[:total_frames],
            pooler_output=tuple(per_video),
            hidden_states=frames_only(vision_outputs.hidden_states) if output_hidden_states else None,
            attentions=frames_only(vision_outputs.attentions) if output_attentions else None,
            frame_features=frame_features,
            face_features=face_features,
            expression_features=expression_tokens,
        )

    def get_expression_features(
        self, expression_features: torch.Tensor, expression_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`(total_frames, N)` expression features -> `(total_frames, E, D)` tokens: the projector's where
        `expression_mask` is True (default: every frame), the learned "no expression" embedding elsewhere (a frame
        whose face was not measured has no features to project)."""
        config = self.config
        if not config.has_expression_stream:
            raise FaceTrackInputError(
                "got expression_features but this model has no expression stream (expression_tokens_per_frame=0)"
            )
        size = config.expression_features["size"]
        if expression_features.ndim != 2 or expression_features.shape[-1] != size:
            raise FaceTrackInputError(
                f"expression_features must be (total_frames, {size}) ({config.expression_features['name']} version "
                f"{config.expression_features['version']}), got {tuple(expression_features.shape)}"
            )
        weight = self.expression_projector.linear_1.weight
        tokens = self.expression_projector(expression_features.to(device=weight.device, dtype=weight.dtype))
        if expression_mask is None:
            return tokens
        mask = expression_mask.to(device=tokens.device, dtype=torch.bool).reshape(-1)
        if mask.shape[0] != tokens.shape[0]:
            raise FaceTrackInputError(
                f"expression_mask has {mask.shape[0]} entries but expression_features has {tokens.shape[0]} frames"
            )
        missing = self.no_expression_embedding.to(tokens.dtype)[None]
        return torch.where(mask[:, None, None], tokens, missing)

    def placeholder_mask(
        self, input_ids: torch.LongTensor | None, inputs_embeds: torch.Tensor, token_id: int
    ) -> torch.Tensor:
        """Boolean mask `(batch, seq)` of placeholder positions (from ids, or by matching the embedding)."""
        if input_ids is not None:
            return input_ids == token_id
        token_embedding = self.get_input_embeddings()(torch.tensor(token_id, device=inputs_embeds.device))
        return (inputs_embeds == token_embedding).all(-1)

    @staticmethod
    def scatter_features(
        inputs_embeds: torch.Tensor, mask: torch.Tensor, features: torch.Tensor, name: str, what: str
    ) -> torch.Tensor:
        """Write `features` `(n, D)` into the `n` placeholder positions of `mask`; a clear error if counts differ."""
        num_placeholders = int(mask.sum())
        if num_placeholders != features.shape[0]:
            raise FaceTrackInputError(
                f"the prompt has {num_placeholders} {name} placeholder tokens but the visual inputs give "
                f"{features.shape[0]} {name} features ({what}); build the prompt with FaceTrackProcessor (same "
                "tokens-per-frame settings as the model config)"
            )
        features = features.to(inputs_embeds.device, inputs_embeds.dtype)
        return inputs_embeds.masked_scatter(mask[..., None].to(inputs_embeds.device), features)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values_videos: torch.FloatTensor | None = None,
        pixel_values_faces: torch.FloatTensor | None = None,
        face_mask: torch.BoolTensor | None = None,
        video_num_frames: torch.LongTensor | None = None,
        expression_features: torch.FloatTensor | None = None,
        expression_mask: torch.BoolTensor | None = None,
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

        config = self.config
        masks = {
            "<video>": self.placeholder_mask(input_ids, inputs_embeds, config.video_token_id),
            "<face>": self.placeholder_mask(input_ids, inputs_embeds, config.face_token_id),
        }
        if config.has_expression_stream:  # (without the stream the id may be any token of the vocabulary)
            masks["<expression>"] = self.placeholder_mask(input_ids, inputs_embeds, config.expression_token_id)
        video_features = face_features = expression_tokens = None
        if pixel_values_videos is not None or expression_features is not None:
            if video_num_frames is None:  # one video per prompt row that has placeholder tokens
                token_id, _, _, _ = counted_placeholder(config)
                counts = self.placeholder_mask(input_ids, inputs_embeds, token_id).sum(-1).tolist()
                video_num_frames = torch.tensor(infer_video_num_frames(config, counts), dtype=torch.long)
            features = self.get_video_features(
                pixel_values_videos, pixel_values_faces, face_mask, video_num_frames, expression_features,
                expression_mask, return_dict=True,
            )
            video_features, face_features = features.frame_features, features.face_features
            expression_tokens = features.expression_features
            if video_features is not None:
                layout = f"{video_features.shape[0]} frames x {video_features.shape[1]} tokens"
                if config.video_newline:
                    layout += f" + {len(features.pooler_output)} newline tokens"
                inputs_embeds = self.scatter_features(
                    inputs_embeds, masks["<video>"], torch.cat(features.pooler_output), "<video>", layout
                )
            per_frame = {"<face>": face_features, "<expression>": expression_tokens}
            for name, tokens in per_frame.items():
                mask = masks.get(name)
                if tokens is not None:
                    inputs_embeds = self.scatter_features(
                        inputs_embeds, mask, tokens.reshape(-1, tokens.shape[-1]), name,
                        f"{tokens.shape[0]} frames x {tokens.shape[1]} tokens",
                    )
                elif mask is not None and mask.any():
                    raise FaceTrackInputError(self.missing_features_message(name, int(mask.sum())))
            if masks["<video>"].any() and video_features is None:
                raise FaceTrackInputError(self.missing_features_message("<video>", int(masks["<video>"].sum())))
        elif any(mask.any() for mask in masks.values()) and (
            past_key_values is None or past_key_values.get_seq_length() == 0
        ):
            # Placeholders in a prefill without visual inputs would silently feed the placeholder embedding to the LLM.
            counts = " and ".join(f"{int(mask.sum())} {name}" for name, mask in masks.items())
            needed = "pixel_values_videos" if config.has_vision_path else "expression_features"
            raise FaceTrackInputError(f"the prompt has {counts} placeholder tokens but no {needed}")

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
            expression_hidden_states=expression_tokens,
        )

    def missing_features_message(self, name: str, count: int) -> str:
        """Why the prompt's `name` placeholders have no features (the model lacks that path, or an input is missing)."""
        config = self.config
        reasons = {
            "<video>": ("the model has no vision tower" if not config.has_vision_path else "no pixel_values_videos",
                        f"global_tokens_per_frame={config.global_tokens_per_frame}"),
            "<face>": ("the model has no face path" if not config.has_face_path else "no pixel_values_faces",
                       f"face_tokens_per_frame={config.face_tokens_per_frame}"),
            "<expression>": ("no expression_features",
                             f"expression_tokens_per_frame={config.expression_tokens_per_frame}"),
        }
        reason, setting = reasons[name]
        return f"the prompt has {count} {name} placeholder tokens but {reason} ({setting})"


class FaceTrackForConditionalGeneration(FaceTrackGenerationMixin, FaceTrackPreTrainedModel, GenerationMixin):
    """FaceTrack-MM with its language-modelling head: `forward` (loss with `labels`) and `generate()`."""

    _tied_weights_keys = {"lm_head.weight": "model.language_model.embed_tokens.weight"}
    # A tied head is the embedding's (row-sharded) weight: it needs a tensor-parallel entry of its own.
    _tp_plan = {"lm_head": "colwise_gather_output"}

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

    def get_video_features(self, pixel_values_videos=None, pixel_values_faces=None, face_mask=None,
                           video_num_frames=None, expression_features=None, expression_mask=None,
                           **kwargs) -> FaceTrackVideoFeaturesOutput:
        return self.model.get_video_features(
            pixel_values_videos, pixel_values_faces, face_mask, video_num_frames, expression_features,
            expression_mask, **kwargs
        )

    def get_expression_features(self, expression_features, expression_mask=None) -> torch.Tensor:
        return self.model.get_expression_features(expression_features, expression_mask)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values_videos: torch.FloatTensor | None = None,
        pixel_values_faces: torch.FloatTensor | None = None,
        face_mask: torch.BoolTensor | None = None,
        video_num_frames: torch.LongTensor | None = None,
        expression_features: torch.FloatTensor | None = None,
        expression_mask: torch.BoolTensor | None = None,
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
            expression_features=expression_features,
            expression_mask=expression_mask,
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
            expression_hidden_states=outputs.expression_hidden_states,
        )


__all__ = [
    "FaceTrackPreTrainedModel",
    "FaceTrackModel",
    "FaceTrackForConditionalGeneration",
    "FaceTrackInputError",
    "FaceTrackProjector",
    "FaceTrackVideoFeaturesOutput",
    "VISUAL_INPUT_NAMES",
]
