"""`FaceTrackProcessor`: prompt + video -> FaceTrack-MM model inputs (the `AutoProcessor` of a FaceTrack-MM repo).

It is composed of a tokenizer and a video processor (`FaceTrackVideoProcessor`: frame sampling, frame and face-crop
pixels), as transformers' processors are of their parts. For every video it samples frames and tracks the main
character's face (`video_analysis.analyze_video`; or takes a precomputed track, e.g. from a dataset column, and
decodes exactly its frames), has the video processor crop the face per frame and turn frames and crops into the
vision encoder's pixels, and expands each `<video>` placeholder of the prompt into the per-frame token layout the
model fills:

    <t=0.0s><video>...<video><face>...<face><expression>...<t=1.5s><video>...   (G global + F face + E expression
                                                                                   tokens per frame)

With `use_no_face_embedding=False` frames without the main face get no `<face>` tokens; with `video_newline=True` one
more `<video>` follows each video's last frame (LLaVA-OneVision's layout); with `face_tokens_per_frame=0` there are no
face tokens and no face tracking at all; `timestamp_template=None` renders no timestamps.

The expression stream (`expression_tokens_per_frame` E > 0; 0 is off and changes nothing): the followed person's
expressions, measured through the same pipeline (`analyze_video(..., expressions=True)`) or read from a precomputed
track that stores them, become one feature vector per frame (`facetrack.expressions.features`), returned as
`expression_features` `(total_frames, N)` and `expression_mask` `(total_frames,)` (False where the face was not
measured). The processor records the feature set its model was trained on (`expression_features`, from the model
config) and refuses to load where the installed package computes another. A model that reads expression tokens only
(G = F = 0) needs no pixels: given precomputed tracks, nothing is decoded or measured (the stored timelines are
enough); given a video alone, it is decoded, tracked and measured, and no pixel tensors are built.

The call is `ProcessorMixin.__call__` (placeholder expansion, `return_text_replacement_offsets`, tensor
conversion): this class provides its two hooks, `_process_videos` (tracking, then the video processor's pixels) and
`replace_video_token` (the token layout, written once in `video_prompt`). Call-time options follow transformers'
`ProcessingKwargs` (`FaceTrackProcessorKwargs`): flat (`num_frames=8`, `padding_side="right"`) or structured
(`text_kwargs={...}`, `videos_kwargs={...}`); `videos_kwargs` takes the standard `VideosKwargs` plus FaceTrack's own
(`FaceTrackVideosKwargs`: `face_tracks`, `target`, `return_face_tracks`, `return_expressions`).

Outputs (docs/architecture.md): `input_ids`, `attention_mask`, `pixel_values_videos` `(total_frames, 3, S, S)`,
`pixel_values_faces` `(total_frames, 3, S, S)`, `face_mask` `(total_frames,)` bool, `expression_features`
`(total_frames, N)` float32 and `expression_mask` `(total_frames,)` bool (with the stream), `video_num_frames`
`(num_videos,)` long; with `return_face_tracks=True` also `face_tracks` (one `FaceTrackResult.to_dict()` per video,
in the video's own pixels); with `return_expressions=True` also `expressions` (the followed person's
`ExpressionReport.to_dict()` per video, None where nobody is followed; measured only when asked for, or taken from a
precomputed track that holds them).

Decoding, tracking and expressions are `video_analysis.analyze_video`, the pipeline every caller shares.

This file is copied into Hub model repos beside the model's files; the face pipeline it uses (decoding, tracking,
expressions) comes from the installed `facetrack-mm` package, which the model card's first lines name.
"""

# No `from __future__ import annotations`: transformers reads the kwargs TypedDicts' annotations at run time.
from collections.abc import Sequence

import numpy as np
import torch

from transformers import BatchFeature
from transformers.processing_utils import ProcessingKwargs, ProcessorMixin, Unpack
from transformers.video_processing_utils import VideoProcessorMixin

from .video_processing_facetrack import (
    VIDEO_PROCESSOR_SETTINGS,
    FaceTrackProcessorError,
    FaceTrackVideoProcessor,
    FaceTrackVideosKwargs,
    flatten_videos,
)

try:  # the face pipeline is the installed facetrack-mm package (a Hub folder carries the model and processor only)
    from facetrack.analysis.video_analysis import VideoAnalysis, analyze_video, read_face_track
    from facetrack.expressions import features as expression_feature_set
    from facetrack.expressions.caption import PHASES, frame_phases
    from facetrack.expressions.models import ExpressionDependencyError
    from facetrack.faces.track_result import FaceTrackResult
    from facetrack.faces.tracking import FaceTracker
    from facetrack.video.decode import VideoClip
except ImportError as error:
    raise ImportError("FaceTrack-MM's processor needs the facetrack-mm package: pip install facetrack-mm") from error


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


class FaceTrackProcessorKwargs(ProcessingKwargs, total=False):
    videos_kwargs: FaceTrackVideosKwargs


def check_processor_kwargs(kwargs: dict) -> None:
    """Raise `FaceTrackProcessorError` naming every option the processor would not use (transformers' merge only
    logs a warning for unknown keys and drops them)."""
    annotations = FaceTrackProcessorKwargs.__annotations__
    text_keys = set(annotations["text_kwargs"].__annotations__)
    video_keys = set(FaceTrackVideosKwargs.__annotations__)
    flat = set(annotations) | text_keys | video_keys | {"common_kwargs", "sanitize_control_tokens"}
    unknown = sorted(key for key in kwargs if key not in flat)
    for modality, allowed in (("text_kwargs", text_keys), ("videos_kwargs", video_keys)):
        unknown += [f"{modality}[{key!r}]" for key in (kwargs.get(modality) or {}) if key not in allowed]
    unknown += [modality for modality in ("images_kwargs", "audio_kwargs") if kwargs.get(modality)]
    if unknown:
        raise FaceTrackProcessorError(f"FaceTrackProcessor got unexpected argument(s): {', '.join(unknown)}")


# The expression stream's settings: left out of a saved processor without the stream (`FaceTrackProcessor.to_dict`).
EXPRESSION_STREAM_SETTINGS = ("expression_tokens_per_frame", "expression_token", "expression_features", "phase_labels")


def check_expression_feature_set(recorded) -> None:
    """Refuse, in one line naming both sets, a model trained on expression features other than the ones the
    installed facetrack-mm computes (`facetrack.expressions.features.check_feature_set`)."""
    if recorded is None:
        raise FaceTrackProcessorError(
            "expression_tokens_per_frame > 0 needs expression_features: the feature set the model was trained on "
            "(the model config's expression_features)"
        )
    try:
        expression_feature_set.check_feature_set(recorded)
    except ValueError as error:
        raise FaceTrackProcessorError(str(error)) from None


def set_padding_side(tokenizer, side: str) -> None:
    """Pad on `side` by default, also after save/load (the side is kept in tokenizer_config.json)."""
    if side not in ("left", "right"):
        raise FaceTrackProcessorError(f"padding_side must be 'left' or 'right', got {side!r}")
    tokenizer.padding_side = side
    tokenizer.init_kwargs["padding_side"] = side


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


class FaceTrackProcessor(ProcessorMixin):
    r"""
    Args:
        tokenizer: the LLM's tokenizer, with `video_token` and `face_token` added as special tokens.
        video_processor (`FaceTrackVideoProcessor`, *optional*): frame sampling and pixels; when not given, one is
            built from the keyword arguments `image_size` (384), `image_mean` / `image_std` (SigLIP's 0.5),
            `num_frames` (8) and `face_crop_margin` (0.25), which are also how folders saved before it existed
            hold those settings. `image_size`, `image_mean`, `image_std` and `num_frames` read back as the
            processor's own attributes.
        chat_template (`str`, *optional*): Jinja chat template; defaults to ChatML with `<video>` placeholders.
        global_tokens_per_frame / face_tokens_per_frame (`int`): must equal the model config's;
            `face_tokens_per_frame=0`: no face tokens and no face tracking.
        use_no_face_embedding (`bool`, defaults to `True`): must equal the model config's; False leaves the face
            tokens of frames without the main face out of the prompt.
        video_newline (`bool`, defaults to `False`): must equal the model config's; True adds one `<video>` after
            each video's last frame (the model fills it with its end-of-video embedding).
        video_token / face_token (`str`): placeholder tokens (`<video>` is also what the prompt uses, once per video).
        expression_tokens_per_frame (`int`, defaults to 0): must equal the model config's; E `<expression>` tokens
            per frame, filled from the followed person's measured expressions (0: none, nothing measured).
        expression_token (`str`, defaults to `"<expression>"`): their placeholder token.
        phase_labels (`bool`, defaults to `False`): with the stream, write the caption's phase words before the
            frames of each phase ("At the beginning: <frames>\nAs the video progresses: <frames>..."; the phases
            cut the time from the first to the last frame where expressions were measured into quarters, as the
            measured caption does), so that a model writing "In the middle" finds that part's frames by the same
            words in its prompt.
        expression_features (`dict`, *optional*): the feature set the model was trained on (the model config's
            `expression_features`); required with the stream, and refused unless the installed facetrack-mm
            computes that set.
        timestamp_template (`str` or `None`, defaults to `"<t={:.1f}s>"`): text rendered before each frame's tokens
            with the frame's time in seconds; `None` renders none.
        face_detector (`str`, defaults to `"retinaface"`): detector name for the face tracker.
        tracker_options (`dict`, *optional*): extra options for `FaceTracker`.

    Batches are padded on the tokenizer's `padding_side` (left, set by facetrack.hub, suits `generate()`; a training
    collator passes `padding_side="right"` per call). Defaults of the call: `padding=True`, `return_tensors="pt"`.
    """

    valid_processor_kwargs = FaceTrackProcessorKwargs
    # Per-video records, kept as Python objects whatever `return_tensors` says.
    skip_tensor_conversion = [*ProcessorMixin.skip_tensor_conversion, "face_tracks", "expressions"]
    # Call defaults (transformers 5: processor-level modality defaults are class variables).
    text_kwargs = {"padding": True, "return_tensors": "pt"}

    def __init__(
        self,
        tokenizer=None,
        video_processor: FaceTrackVideoProcessor | None = None,
        chat_template: str | None = None,
        global_tokens_per_frame: int = 81,
        face_tokens_per_frame: int = 16,
        use_no_face_embedding: bool = True,
        video_newline: bool = False,
        video_token: str = "<video>",
        face_token: str = "<face>",
        timestamp_template: str | None = "<t={:.1f}s>",
        face_detector: str = "retinaface",
        tracker_options: dict | None = None,
        expression_tokens_per_frame: int = 0,
        expression_token: str = "<expression>",
        expression_features: dict | None = None,
        phase_labels: bool = False,
        **kwargs,
    ):
        video_settings = {key: kwargs.pop(key) for key in VIDEO_PROCESSOR_SETTINGS if key in kwargs}
        if video_processor is None:
            video_processor = FaceTrackVideoProcessor(**video_settings)
        elif video_settings:
            raise FaceTrackProcessorError(
                f"give {', '.join(sorted(video_settings))} to the video processor, not beside it"
            )
        self.global_tokens_per_frame = int(global_tokens_per_frame)
        self.face_tokens_per_frame = int(face_tokens_per_frame)
        self.use_no_face_embedding = bool(use_no_face_embedding)
        self.video_newline = bool(video_newline)
        self.video_token = video_token
        self.face_token = face_token
        self.timestamp_template = timestamp_template
        self.face_detector = face_detector
        self.tracker_options = dict(tracker_options or {})
        self.expression_tokens_per_frame = int(expression_tokens_per_frame)
        self.expression_token = expression_token
        self.expression_features = expression_features
        self.phase_labels = bool(phase_labels)
        if self.phase_labels and self.expression_tokens_per_frame == 0:
            raise FaceTrackProcessorError("phase_labels places the expression stream's frames in the caption's "
                                          "phases: it needs expression_tokens_per_frame > 0")
        if self.expression_tokens_per_frame > 0:
            check_expression_feature_set(expression_features)
        self._face_tracker = None  # built on first use: precomputed tracks never need a detector
        legacy_padding_side = kwargs.pop("padding_side", None)  # processor_config.json written before 0.2
        if kwargs:
            raise FaceTrackProcessorError(f"FaceTrackProcessor got unexpected argument(s): {', '.join(sorted(kwargs))}")
        super().__init__(tokenizer, video_processor, chat_template=chat_template or DEFAULT_CHAT_TEMPLATE)
        if legacy_padding_side is not None:
            set_padding_side(tokenizer, legacy_padding_side)
        for token in (video_token, face_token, *((expression_token,) if self.uses_expressions else ())):
            if token not in tokenizer.get_vocab():
                raise FaceTrackProcessorError(
                    f"the tokenizer has no {token!r} token: add it as a special token (facetrack.hub does)"
                )
        self.video_token_id = tokenizer.convert_tokens_to_ids(video_token)
        self.face_token_id = tokenizer.convert_tokens_to_ids(face_token)
        self.expression_token_id = tokenizer.convert_tokens_to_ids(expression_token) if self.uses_expressions else None

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        # The tokenizer loader reads config.json only for the model type. Left at None, `trust_remote_code` would make
        # it ask whether to run the folder's configuration code, which the tokenizer never needs (tokenizer_config.json
        # names its class). `AutoProcessor.from_pretrained(..., trust_remote_code=True)` still passes True.
        kwargs.setdefault("trust_remote_code", False)
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    @classmethod
    def _get_arguments_from_pretrained(cls, pretrained_model_name_or_path, processor_dict=None, **kwargs):
        # transformers would look the video processor up with AutoVideoProcessor, which finds a remote class only with
        # trust_remote_code and fails on folders saved before it existed (their settings are flat in
        # processor_config.json). It is always this file's sibling class, so it is built here from either layout.
        subfolder = kwargs.pop("subfolder", "")
        tokenizer = cls._load_tokenizer_from_pretrained("tokenizer", pretrained_model_name_or_path,
                                                        subfolder=subfolder, **kwargs)
        return [tokenizer, FaceTrackVideoProcessor.from_processor_dict(processor_dict or {}, **kwargs)]

    @classmethod
    def from_args_and_dict(cls, args, processor_dict: dict, **kwargs):
        # Processors saved before the kwargs rework kept `padding_side` in processor_config.json; it now lives in the
        # tokenizer's config. An old folder's tokenizer config has none, so the old value still applies.
        legacy_padding_side = processor_dict.get("padding_side")
        loaded = super().from_args_and_dict(args, processor_dict, **kwargs)
        processor = loaded[0] if isinstance(loaded, tuple) else loaded
        if legacy_padding_side is not None and "padding_side" not in processor.tokenizer.init_kwargs:
            set_padding_side(processor.tokenizer, legacy_padding_side)
        return loaded

    def check_argument_for_proper_class(self, argument_name, argument):
        # transformers finds the video processor's base class through VIDEO_PROCESSOR_MAPPING, a placeholder that
        # raises when torchvision is not installed; ours needs no torchvision, so it is checked here directly.
        if argument_name == "video_processor":
            if not isinstance(argument, VideoProcessorMixin):
                raise TypeError(f"video_processor must be a FaceTrackVideoProcessor, got {type(argument).__name__}")
            return type(argument)
        return super().check_argument_for_proper_class(argument_name, argument)

    # The video processor's settings, read (and `num_frames` set) through the processor as before it had one.
    @property
    def image_size(self) -> int:
        return self.video_processor.image_size

    @property
    def image_mean(self) -> list[float]:
        return self.video_processor.image_mean

    @property
    def image_std(self) -> list[float]:
        return self.video_processor.image_std

    @property
    def num_frames(self) -> int:
        return self.video_processor.num_frames

    @num_frames.setter
    def num_frames(self, value: int) -> None:
        self.video_processor.num_frames = int(value)

    @property
    def face_tracker(self) -> FaceTracker:
        if self._face_tracker is None:
            self._face_tracker = FaceTracker(self.face_detector, **self.tracker_options)
        return self._face_tracker

    @property
    def uses_pixels(self) -> bool:
        """Whether the model reads pixels (global or face tokens); False for expression tokens alone."""
        return self.global_tokens_per_frame > 0 or self.face_tokens_per_frame > 0

    @property
    def uses_expressions(self) -> bool:
        """Whether the model reads the expression stream (`expression_tokens_per_frame > 0`)."""
        return self.expression_tokens_per_frame > 0

    @property
    def model_input_names(self) -> list[str]:
        pixel_inputs = ["pixel_values_videos"] if self.uses_pixels else []
        face_inputs = ["pixel_values_faces", "face_mask"] if self.face_tokens_per_frame > 0 else []
        expression_inputs = ["expression_features", "expression_mask"] if self.uses_expressions else []
        return ["input_ids", "attention_mask", *pixel_inputs, *face_inputs, *expression_inputs, "video_num_frames"]

    # ------------------------------------------------------------------------------------------------ videos
    def analyze(
        self,
        video,
        face_track: FaceTrackResult | dict | None = None,
        num_frames: int | None = None,
        fps: float | None = None,
        target=None,
        expressions: bool = False,
    ) -> VideoAnalysis:
        """Sample + track one video (`video_analysis.analyze_video`); with a precomputed `face_track`, decode exactly
        its frames and use its boxes (no detection). `target` (see `face_tracking.parse_target`: a person id,
        "X1,Y1,X2,Y2@T" or a photo) follows that person instead of the main character; `expressions` measures the
        followed person's expressions unless the precomputed track holds them."""
        if face_track is None and not isinstance(video, VideoClip):
            num_frames, fps = self.video_processor.frames_to_sample(video, num_frames, fps)
        if face_track is not None:
            face_track = read_face_track(face_track)
            if not face_track.frames:
                raise FaceTrackProcessorError("the precomputed face track has no frames")
        tracker = self.face_tracker if face_track is None or target is not None else None
        # The expression models load per call, only when a person still needs measuring (~30 ms after the first).
        return analyze_video(video, num_frames=num_frames, fps=fps, tracker=tracker, target=target,
                             face_track=face_track, expressions=expressions)

    # ------------------------------------------------------------------------------------------------ token layout
    def video_prompt(self, timestamps: Sequence[float], face_present: Sequence[bool],
                     measured: Sequence[bool] | None = None) -> str:
        """The text one `<video>` placeholder expands to: per frame its timestamp, G `<video>`, F `<face>` (none for
        a frame without the face when `use_no_face_embedding=False`) and E `<expression>` tokens (every frame: an
        unmeasured one gets the model's "no expression" embedding), then the newline `<video>`; with `phase_labels`,
        each caption phase's words before its first frame. `measured`: the frames with measured expressions (where
        the phases lie; default `face_present`). The one place the per-frame token layout is written."""
        phases = frame_phases(timestamps, face_present if measured is None else measured) if self.phase_labels \
            else None
        pieces = []
        for index, (timestamp, present) in enumerate(zip(timestamps, face_present)):
            if phases is not None and (index == 0 or phases[index] != phases[index - 1]):
                pieces.append(("\n" if index else "") + PHASES[phases[index]] + ": ")
            if self.timestamp_template:
                pieces.append(self.timestamp_template.format(timestamp))
            pieces.append(self.video_token * self.global_tokens_per_frame)
            if present or self.use_no_face_embedding:
                pieces.append(self.face_token * self.face_tokens_per_frame)
            if self.uses_expressions:
                pieces.append(self.expression_token * self.expression_tokens_per_frame)
        if self.video_newline:
            pieces.append(self.video_token)
        return "".join(pieces)

    def replace_video_token(self, video_inputs: dict, video_idx: int, **kwargs) -> str:
        """`ProcessorMixin`'s hook: what the `video_idx`-th `<video>` of the batch becomes (`video_prompt` of that
        video's frames, from the processed videos' frame counts, timestamps and face mask)."""
        frame_counts = video_inputs["video_num_frames"].tolist()
        first = sum(frame_counts[:video_idx])
        num_frames = frame_counts[video_idx]
        face_mask = video_inputs.get("face_mask")
        present = [False] * num_frames if face_mask is None else face_mask[first : first + num_frames].tolist()
        expression_mask = video_inputs.get("expression_mask")
        measured = None if expression_mask is None else expression_mask[first : first + num_frames].tolist()
        return self.video_prompt(video_inputs["video_timestamps"][video_idx], present, measured)

    @property
    def video_token_ids(self) -> list[int]:
        # `mm_token_type_ids` marks every position that holds visual features: <face> and <expression> tokens too.
        return [self.video_token_id, self.face_token_id, *([self.expression_token_id] if self.uses_expressions else [])]

    @property
    def unused_input_names(self) -> list[str]:
        # Per-video timestamps only shape the prompt (`replace_video_token`); the model never sees them.
        return ["video_timestamps"]

    # ------------------------------------------------------------------------------------------------ call
    def __call__(self, text: str | list[str] | None = None, videos=None, **kwargs: Unpack[FaceTrackProcessorKwargs]
                 ) -> BatchFeature:
        """Tokenise `text` (one prompt or a batch) with every `<video>` expanded, and preprocess `videos`
        (`ProcessorMixin.__call__`: placeholder expansion, `return_text_replacement_offsets`, tensors; the video
        step is `_process_videos`).

        videos: one video or a list, in the order their `<video>` placeholders appear in the batch (a list of lists,
            one per prompt, as `apply_chat_template` passes them, is flattened). A video is a path, a list of PIL
            images, a `(T, H, W, 3)` (or `(T, 3, H, W)`) uint8 array or tensor, or a `VideoClip`.
        kwargs: `FaceTrackProcessorKwargs`, flat or per modality. Videos: `face_tracks` (one precomputed track per
            video, or None to track it), `num_frames` / `fps` (sampling of videos without a precomputed track;
            default `self.num_frames`), `do_sample_frames=False` (every frame of decoded frames), the pixel options
            of `FaceTrackVideoProcessor` (`size`, `do_rescale`, `image_mean`, ...), `return_face_tracks`.
            `target`: whose face to follow instead of the main character (`facetrack.faces.tracking.parse_target`:
            a person id of a previous run's JSON, "X1,Y1,X2,Y2@T", or a photo path / PIL image), for every video;
            or a list, one target (or None) per video. `return_expressions`: also return `expressions`, the
            followed person's measured expression report per video (needs the optional expression packages; off
            by default: it costs ~12 ms per frame). Text: the tokenizer's options (`padding`, `padding_side`,
            `truncation`, `max_length`, `return_offsets_mapping`, ...). `return_text_replacement_offsets`: where
            each placeholder and its expansion are.
        """
        return super().__call__(text=text, videos=videos, **kwargs)

    def validate_inputs(self, images=None, text=None, videos=None, audio=None, **kwargs) -> None:
        """Clear errors, before any decoding, for inputs this processor cannot use (names the problem)."""
        for name, value in (("images", images), ("audio", audio)):
            if value is not None:
                raise FaceTrackProcessorError(f"FaceTrackProcessor takes videos, not {name}: pass `videos=`")
        check_processor_kwargs(kwargs)
        if text is None:
            raise FaceTrackProcessorError("FaceTrackProcessor needs `text` (a prompt with one <video> per video)")
        texts = [text] if isinstance(text, str) else list(text)
        if not texts or not all(isinstance(sample, str) for sample in texts):
            raise FaceTrackProcessorError("`text` must be a string or a non-empty list of strings")
        num_videos = len(flatten_videos(videos))
        num_placeholders = sum(sample.count(self.video_token) for sample in texts)
        if num_placeholders != num_videos:
            raise FaceTrackProcessorError(
                f"the text has {num_placeholders} {self.video_token} placeholder(s) but {num_videos} video(s) "
                f"were given: put one {self.video_token} per video"
            )
        if self.face_token in "".join(texts):
            raise FaceTrackProcessorError(
                f"the text contains {self.face_token}: it is reserved for face tokens, which the processor inserts"
            )
        if self.uses_expressions and self.expression_token in "".join(texts):
            raise FaceTrackProcessorError(
                f"the text contains {self.expression_token}: it is reserved for expression tokens, which the "
                "processor inserts"
            )
        video_kwargs = {**kwargs, **(kwargs.get("videos_kwargs") or {})}
        for name in ("face_tracks", "target"):
            value = video_kwargs.get(name)
            if isinstance(value, (list, tuple)) and len(value) != num_videos:
                raise FaceTrackProcessorError(
                    f"got {len(value)} {name.replace('_', ' ')[:-1] if name.endswith('s') else name}(s) for "
                    f"{num_videos} video(s): give one per video (or None)"
                )

    def _process_videos(self, videos, **kwargs) -> tuple[dict, list[str]]:
        """`ProcessorMixin`'s video step: sample and track each video (`analyze`, or only decode when nothing needs
        a track, or neither when a model without pixels is given a stored track), have the video processor turn
        frames and face boxes into pixels, compute the expression stream's features, and expand each placeholder
        (`replace_video_token`). Returns the processed videos and one replacement text per video."""
        video_list = flatten_videos(videos)
        if not video_list:
            return {}, []
        face_tracks = kwargs.pop("face_tracks", None) or [None] * len(video_list)
        target = kwargs.pop("target", None)
        targets = list(target) if isinstance(target, (list, tuple)) else [target] * len(video_list)
        return_face_tracks = bool(kwargs.pop("return_face_tracks", None))
        return_expressions = bool(kwargs.pop("return_expressions", None))
        sampling = [kwargs.pop(key, None) for key in ("num_frames", "fps", "do_sample_frames")]
        kwargs.pop("return_tensors", None)  # the whole batch is converted at the end
        use_faces = self.face_tokens_per_frame > 0
        clips, boxes, timestamps, tracks_out, expressions_out, stream = [], [], [], [], [], []
        for index, (video, precomputed, video_target) in enumerate(zip(video_list, face_tracks, targets)):
            if precomputed is not None and video_target is None and not (self.uses_pixels or return_face_tracks
                                                                         or return_expressions):
                # Expression tokens alone, from a stored track: its timeline is all the model reads (no decoding).
                track = read_face_track(precomputed)
                if not track.frames:
                    raise FaceTrackProcessorError("the precomputed face track has no frames")
                timestamps.append([frame.timestamp for frame in track.frames])
                stream.append(self.expression_inputs(track, index))
                continue
            num_frames, fps = self.video_processor.frames_to_sample(video, *sampling)
            if precomputed is None and video_target is None and not (use_faces or self.uses_expressions
                                                                      or return_face_tracks or return_expressions):
                clips.append(self.video_processor.load(video, num_frames, fps))
                timestamps.append(clips[-1].timestamps)
                continue
            # A new video is measured for the stream (so is a target other than the stored track's person, if its
            # measurement is not stored); a precomputed track brings its stored measurements.
            measure = return_expressions or (self.uses_expressions
                                             and (precomputed is None or video_target is not None))
            analysis = self.analyze(video, precomputed, num_frames=num_frames, fps=fps, target=video_target,
                                    expressions=measure)
            if measure and analysis.expression_problem:
                raise ExpressionDependencyError(analysis.expression_problem)
            track, source_track = analysis.track, analysis.source_track()
            clips.append(analysis.clip)
            boxes.append(track.boxes)  # in the clip's pixels, as analyze_video returns every track
            timestamps.append([frame.timestamp for frame in track.frames] if precomputed is not None
                              else analysis.clip.timestamps)
            tracks_out.append(source_track.to_dict())
            report = source_track.expression_report
            expressions_out.append(None if report is None else report.to_dict())
            if self.uses_expressions:
                stream.append(self.expression_inputs(track, index))

        if self.uses_pixels:
            processed = dict(self.video_processor(clips, face_boxes=boxes if use_faces else None, **kwargs))
        else:  # no pixels to build: the frame counts are the timelines'
            processed = {"video_num_frames": torch.tensor([len(times) for times in timestamps], dtype=torch.long)}
        if self.uses_expressions:
            device = kwargs.get("device")
            processed["expression_features"] = torch.from_numpy(np.concatenate([f for f, _ in stream])).to(device)
            processed["expression_mask"] = torch.from_numpy(np.concatenate([m for _, m in stream])).to(device)
        processed["video_timestamps"] = timestamps
        if return_face_tracks:
            processed["face_tracks"] = tracks_out
        if return_expressions:
            processed["expressions"] = expressions_out
        replacements = [self.replace_video_token(processed, video_idx=index) for index in range(len(video_list))]
        return processed, replacements

    def expression_inputs(self, track: FaceTrackResult, video_index: int) -> tuple[np.ndarray, np.ndarray]:
        """The stream's inputs for one video: (features `(T, N)` float32, measured `(T,)` bool) of the followed
        person's measured timeline in `track` (all unmeasured where nobody is followed)."""
        report = track.expression_report
        num_frames = len(track.frames)
        if report is None:
            if track.person_id is not None:
                raise FaceTrackProcessorError(
                    f"the face track of video {video_index} holds no measured expressions of person "
                    f"{track.person_id}, which this model reads (expression_tokens_per_frame="
                    f"{self.expression_tokens_per_frame}): make tracks with expressions (facetrack dataset build "
                    "without --no-expressions), or give no track so the video is measured"
                )
            size = self.expression_features["size"]
            return np.zeros((num_frames, size), dtype=np.float32), np.zeros(num_frames, dtype=bool)
        features, measured = expression_feature_set.expression_features(report)
        if len(features) != num_frames:
            raise FaceTrackProcessorError(
                f"the expression timeline of video {video_index} has {len(features)} frames, its face track "
                f"{num_frames}"
            )
        return features, measured

    def to_dict(self) -> dict:
        # The face tracker holds an inference session: it is rebuilt from the saved options, never serialised.
        face_tracker = self.__dict__.pop("_face_tracker", None)
        try:
            output = super().to_dict()
        finally:
            self._face_tracker = face_tracker
        # Without the stream a processor saves exactly what it saved before the stream existed (older facetrack-mm
        # code loads it unchanged); the missing settings load as their defaults.
        if not self.uses_expressions:
            for key in EXPRESSION_STREAM_SETTINGS:
                output.pop(key, None)
        return output

    # ------------------------------------------------------------------------------------------------ chat
    def apply_chat_template(self, conversation, chat_template: str | None = None, **kwargs):
        """ProcessorMixin's `apply_chat_template`, with a clear error for empty conversations.

        Video content parts: `{"type": "video", "path": "clip.mp4"}` (or `"video"`/`"url"` keys). Pass
        `num_frames=`/`face_tracks=` in `processor_kwargs` (or as keyword arguments).
        """
        check_conversations(conversation)
        return super().apply_chat_template(conversation, chat_template=chat_template, **kwargs)
