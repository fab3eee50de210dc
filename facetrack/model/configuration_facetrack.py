"""FaceTrack-MM configuration.

A composite config: a vision encoder (`vision_config`, SigLIP so400m-patch14-384 by default), a language model
(`text_config`, Qwen2-7B by default) and the FaceTrack-MM token budget that sits between them.

Token layout (built by `FaceTrackProcessor`, consumed by `FaceTrackForConditionalGeneration`): every `<video>`
placeholder in the prompt becomes, for each sampled frame,

    <t=1.5s> <video> x G  <face> x F  <expression> x E

(G = `global_tokens_per_frame`, F = `face_tokens_per_frame`, E = `expression_tokens_per_frame`)

and, with `video_newline=True`, one more `<video>` after the last frame of each video (a learned end-of-video
embedding, LLaVA-OneVision's `image_newline`). The `<video>` tokens carry the whole frame, pooled from the encoder's
patch grid to a k x k grid (`video_pooling`: average pooling, or LLaVA-OneVision's bilinear interpolation); the
`<face>` tokens carry the main character's face crop (tracked through the video), average-pooled to a smaller grid.
Where the main face is missing, the face tokens hold a learned "no face" embedding (`use_no_face_embedding=True`, the
default) or are left out of the prompt altogether (`use_no_face_embedding=False`). `face_tokens_per_frame=0` turns
the face path off (no face projector, no face tokens): the model is then a plain video LLM, e.g. LLaVA-OneVision.

The expression stream (`expression_tokens_per_frame` > 0; 0, the default, is off: config, weights and prompts are
those of a model without it) reads the followed person's measured expressions instead of pixels: one feature vector
per frame (`expression_features` records the feature set: name, version, size; the processor refuses another set),
projected by its own MLP2x-GELU to `expression_tokens_per_frame` tokens, with a learned "no expression" embedding for
frames where the face was not measured. It sits beside the global and face tokens, or alone
(`global_tokens_per_frame=0`, `face_tokens_per_frame=0`): then there is no vision tower at all (`vision_config` is
None), and the model is an LLM that reads expression tokens.

The defaults are the original FaceTrack-MM layout; configs saved before the LLaVA-OneVision options existed load with
exactly the behaviour they had (`video_pooling="average"`, `projector_before_pooling=False`, `video_newline=False`).

This file is copied flat into Hub repos: it imports only `transformers` (and siblings, relatively).
"""

from __future__ import annotations

import math

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec


class FaceTrackConfigError(ValueError):
    """A FaceTrack-MM configuration value that cannot work (names the value and why)."""


# SigLIP so400m-patch14-384, the encoder LLaVA-OneVision and the paper authors' later model use (27 x 27 = 729 patches).
SIGLIP_SO400M_384 = {
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "num_hidden_layers": 27,
    "num_attention_heads": 16,
    "patch_size": 14,
    "image_size": 384,
    "vision_use_head": False,
}

# Qwen2-7B (the paper's LLM family at 7B scale).
QWEN2_7B = {
    "vocab_size": 152064,
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "max_position_embeddings": 32768,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
}

PROJECTOR_TYPES = ("mlp2x_gelu", "linear")
VIDEO_POOLING_MODES = ("average", "bilinear")


def pooled_grid_side(num_tokens: int, patch_grid_side: int, name: str) -> int:
    """Side k of the k x k grid that `num_tokens` tokens per image are pooled to; a clear error if impossible."""
    side = math.isqrt(num_tokens) if num_tokens > 0 else 0
    if num_tokens <= 0 or side * side != num_tokens:
        raise FaceTrackConfigError(
            f"{name}={num_tokens} is not a positive perfect square: tokens are pooled to a k x k grid "
            f"(e.g. 1, 4, 16, 64, 81)"
        )
    if side > patch_grid_side:
        raise FaceTrackConfigError(
            f"{name}={num_tokens} ({side} x {side}) does not fit the vision encoder's patch grid of "
            f"{patch_grid_side} x {patch_grid_side} = {patch_grid_side**2} patches; use at most {patch_grid_side**2}"
        )
    return side


class FaceTrackConfig(PreTrainedConfig):
    r"""
    Configuration of a FaceTrack-MM model.

    Args:
        vision_config (`dict` or `PreTrainedConfig`, *optional*):
            The vision encoder (one encoder for frames and face crops). Defaults to SigLIP so400m-patch14-384; must
            be None for the expression stream alone (no global and no face tokens: no vision tower).
        text_config (`dict` or `PreTrainedConfig`, *optional*):
            The language model. Defaults to Qwen2-7B.
        global_tokens_per_frame (`int`, defaults to 81):
            Tokens per frame for the whole frame: the patch grid (27 x 27 for SigLIP-384) is average-pooled to a
            9 x 9 grid. Must be a perfect square that fits the patch grid, or 0 (with `face_tokens_per_frame=0`)
            for a model that reads expression tokens only.
        face_tokens_per_frame (`int`, defaults to 16):
            Tokens per frame for the main character's face crop (4 x 4 pooled). Must be a perfect square that fits
            the patch grid, or 0 for no face path at all. Small on purpose: the paper's point is a limited face-token
            budget.
        video_pooling (`str`, defaults to `"average"`):
            How the frame's patch grid becomes the k x k global grid: `"average"` (adaptive average pooling) or
            `"bilinear"` (bilinear interpolation, `align_corners=False`, as LLaVA-OneVision's video path: 27 x 27 ->
            14 x 14). Face crops are always average-pooled.
        projector_before_pooling (`bool`, defaults to `False`):
            False: pool the patch features, then project them (fewer tokens through the projector). True: project
            every patch, then pool (LLaVA-OneVision's order; its projector was trained on unpooled patches). Applies
            to the video and the face path alike.
        video_newline (`bool`, defaults to `False`):
            Append one learned embedding (`video_newline_embedding`) after the last frame of every video, in one more
            `<video>` placeholder: LLaVA-OneVision's `image_newline`, which it appends once per video.
        projector_type (`str`, defaults to `"mlp2x_gelu"`):
            Projector from vision features to the LLM width, for both the video and the face projector.
        projector_bias (`bool`, defaults to `True`): whether the projector's linear layers have a bias.
        vision_feature_layer (`int`, defaults to -2):
            Which hidden state of the vision encoder to use (-2: the penultimate layer, as in LLaVA).
        video_token_id (`int`, defaults to 151647) / face_token_id (`int`, defaults to 151648):
            Placeholder token ids that the processor expands and the model fills with visual features.
        use_no_face_embedding (`bool`, defaults to `True`):
            True: frames without the main face get a learned "no face" embedding in their face tokens.
            False: such frames get no face tokens at all (the processor leaves them out of the prompt).
        projector_hidden_act (`str`, defaults to `"gelu"`): activation of the `mlp2x_gelu` projectors (the
            expression projector's too).
        expression_tokens_per_frame (`int`, defaults to 0):
            Expression tokens per frame: the frame's expression feature vector projected by `expression_projector`
            (Linear(N, D), GELU, Linear(D, E x D), reshaped to E tokens). 0: no expression stream.
        expression_token_id (`int`, defaults to 151649): placeholder id of the `<expression>` tokens.
        expression_features (`dict`, *optional*):
            The feature set the stream was trained on: `{"name", "version", "size"}` (and `"columns"`), as
            `facetrack.expressions.features.EXPRESSION_FEATURES` describes it; `size` is the projector's input width
            unless `expression_columns` picks fewer.
            Required with `expression_tokens_per_frame > 0`.
        expression_columns (`list[str]`, *optional*):
            The columns of the feature set the projector reads (its input width), in the set's order; None (the
            default): all of them. A model that reads only the rule columns (`state:`, `event:`, `time:`: what the
            measured caption is written from, the same on every face) ignores the raw measures, which differ from
            face to face; the processor still computes the whole set.
        tie_word_embeddings (`bool`, defaults to `False`): tie `lm_head` to the input embeddings (follows the LLM).
    """

    model_type = "facetrack"
    sub_configs_defaults = {
        # Optional: the expression stream alone has no vision tower (None stays None; see `__post_init__`).
        "vision_config": SubConfigSpec(
            config_class=AutoConfig, model_type="siglip_vision_model", init_kwargs=SIGLIP_SO400M_384, optional=True
        ),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="qwen2", init_kwargs=QWEN2_7B),
    }

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    global_tokens_per_frame: int = 81
    face_tokens_per_frame: int = 16
    video_pooling: str = "average"
    projector_before_pooling: bool = False
    video_newline: bool = False
    projector_type: str = "mlp2x_gelu"
    projector_bias: bool = True
    projector_hidden_act: str = "gelu"
    vision_feature_layer: int = -2
    video_token_id: int = 151647
    face_token_id: int = 151648
    use_no_face_embedding: bool = True
    tie_word_embeddings: bool = False
    expression_tokens_per_frame: int = 0
    expression_token_id: int = 151649
    expression_features: dict | None = None
    expression_columns: list[str] | None = None

    def __post_init__(self, **kwargs):
        # Every model with global or face tokens has a vision tower (SigLIP so400m unless given); the expression
        # stream alone has none, so its `vision_config` stays None (the sub-config is optional for that reason).
        if self.vision_config is None and self.has_vision_path:
            self.vision_config = {"model_type": "siglip_vision_model", **SIGLIP_SO400M_384}
        super().__post_init__(**kwargs)
        # The tying decision belongs to the LLM: follow it (as LLaVA-OneVision does).
        if not self.tie_word_embeddings and getattr(self.text_config, "tie_word_embeddings", False):
            self.tie_word_embeddings = True
        self.check_token_budget()

    @property
    def patch_grid_side(self) -> int:
        """Patches per side of the vision encoder's grid (27 for SigLIP-384 with 14-pixel patches)."""
        return self.vision_config.image_size // self.vision_config.patch_size

    @property
    def has_vision_path(self) -> bool:
        """Whether the model reads pixels (global or face tokens): a vision tower and a video projector."""
        return self.global_tokens_per_frame > 0 or self.face_tokens_per_frame > 0

    @property
    def has_expression_stream(self) -> bool:
        """Whether the model reads expression features (`expression_tokens_per_frame > 0`)."""
        return self.expression_tokens_per_frame > 0

    @property
    def expression_input_indices(self) -> list[int]:
        """Positions in the feature set of the columns the expression projector reads (`expression_columns`)."""
        if self.expression_columns is None:
            return list(range(self.expression_features["size"]))
        columns = list(self.expression_features["columns"])
        return [columns.index(name) for name in self.expression_columns]

    def to_dict(self) -> dict:
        output = super().to_dict()
        # Without the stream a config saves exactly what it saved before the stream existed (older facetrack-mm
        # code reads it unchanged); the missing keys load as their defaults.
        if not output.get("expression_tokens_per_frame"):
            for key in EXPRESSION_STREAM_KEYS:
                output.pop(key, None)
        return output

    def check_token_budget(self) -> None:
        """Raise `FaceTrackConfigError` naming the numbers when the token budget cannot work."""
        for name in ("global_tokens_per_frame", "face_tokens_per_frame"):
            if getattr(self, name) < 0:
                pooled_grid_side(getattr(self, name), 0, name)  # raises: not a positive perfect square
        value = self.expression_tokens_per_frame
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise FaceTrackConfigError(f"expression_tokens_per_frame={value!r} must be a whole number >= 0 (0: off)")
        if self.has_expression_stream:
            self.check_expression_stream()
        if not self.has_vision_path:
            self.check_without_vision_path()
            return
        if self.projector_type not in PROJECTOR_TYPES:
            raise FaceTrackConfigError(
                f"projector_type={self.projector_type!r} is not supported; choose one of {PROJECTOR_TYPES}"
            )
        if self.video_pooling not in VIDEO_POOLING_MODES:
            raise FaceTrackConfigError(
                f"video_pooling={self.video_pooling!r} is not supported; choose one of {VIDEO_POOLING_MODES}"
            )
        if self.video_token_id == self.face_token_id:
            raise FaceTrackConfigError(
                f"video_token_id and face_token_id must differ, both are {self.video_token_id}"
            )
        num_layers = self.vision_config.num_hidden_layers
        if not -num_layers - 1 <= self.vision_feature_layer <= num_layers:
            raise FaceTrackConfigError(
                f"vision_feature_layer={self.vision_feature_layer} is out of range for a vision encoder with "
                f"{num_layers} layers (hidden states -{num_layers + 1}..{num_layers})"
            )
        if self.global_tokens_per_frame == 0:
            raise FaceTrackConfigError(
                f"global_tokens_per_frame=0 with face_tokens_per_frame={self.face_tokens_per_frame}: a model with a "
                "vision tower needs global tokens per frame; for expression tokens alone (no vision tower) set "
                "face_tokens_per_frame=0 too"
            )
        pooled_grid_side(self.global_tokens_per_frame, self.patch_grid_side, "global_tokens_per_frame")
        if self.face_tokens_per_frame != 0:  # 0: no face path
            pooled_grid_side(self.face_tokens_per_frame, self.patch_grid_side, "face_tokens_per_frame")

    def check_expression_stream(self) -> None:
        """The stream names its feature set (the projector's input width) and has a placeholder id of its own."""
        features = self.expression_features
        size = features.get("size") if isinstance(features, dict) else None
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0 or not features.get("name") \
                or features.get("version") is None:
            raise FaceTrackConfigError(
                f"expression_tokens_per_frame={self.expression_tokens_per_frame} needs expression_features, the "
                f"feature set the stream reads ({{'name', 'version', 'size'}}, as facetrack.expressions.features."
                f"EXPRESSION_FEATURES describes it), got {features!r:.120}"
            )
        if "columns" in features and len(features["columns"]) != size:
            raise FaceTrackConfigError(
                f"expression_features lists {len(features['columns'])} columns but says size={size}"
            )
        if self.expression_columns is not None:
            chosen, known = self.expression_columns, features.get("columns")
            if not isinstance(chosen, (list, tuple)) or not chosen or not all(isinstance(c, str) for c in chosen):
                raise FaceTrackConfigError(f"expression_columns must be a non-empty list of column names (None: "
                                           f"all), got {chosen!r:.120}")
            if not known:
                raise FaceTrackConfigError("expression_columns needs expression_features['columns'] to pick from")
            unknown = [name for name in chosen if name not in known]
            if unknown:
                raise FaceTrackConfigError(f"expression_columns names columns the feature set "
                                           f"{features.get('name')!r} does not have: {unknown[:5]}")
            picked = set(chosen)
            if list(chosen) != [name for name in known if name in picked]:
                raise FaceTrackConfigError("expression_columns must list each column once, in the feature set's order")
            self.expression_columns = list(chosen)
        token_ids = {"video_token_id": self.video_token_id, "face_token_id": self.face_token_id}
        for name, token_id in token_ids.items():
            if token_id == self.expression_token_id:
                raise FaceTrackConfigError(f"expression_token_id and {name} must differ, both are {token_id}")

    def check_without_vision_path(self) -> None:
        """Expression tokens alone: no vision tower, nothing that needs one."""
        if not self.has_expression_stream:
            raise FaceTrackConfigError(
                "global_tokens_per_frame=0, face_tokens_per_frame=0 and expression_tokens_per_frame=0: a frame "
                "would have no tokens at all; give global tokens (a perfect square) or expression tokens"
            )
        if self.vision_config is not None:
            raise FaceTrackConfigError(
                "global_tokens_per_frame=0 and face_tokens_per_frame=0 (expression tokens alone): the model has no "
                "vision tower, so vision_config must be None"
            )
        if self.video_newline:
            raise FaceTrackConfigError(
                "video_newline=True needs global tokens (the newline is one more <video> token after each video); "
                "the expression stream alone has none"
            )

    @property
    def has_face_path(self) -> bool:
        """Whether the model has a face projector and face tokens (`face_tokens_per_frame > 0`)."""
        return self.face_tokens_per_frame > 0

    def tokens_per_frame(self, face_present: bool = True) -> int:
        """Visual tokens one frame costs in the prompt (the per-video newline token not counted)."""
        face_tokens = self.face_tokens_per_frame if (face_present or self.use_no_face_embedding) else 0
        return self.global_tokens_per_frame + face_tokens + self.expression_tokens_per_frame


# Left out of a saved config without the stream (`FaceTrackConfig.to_dict`).
EXPRESSION_STREAM_KEYS = ("expression_tokens_per_frame", "expression_token_id", "expression_features",
                          "expression_columns")

__all__ = ["FaceTrackConfig", "FaceTrackConfigError"]
