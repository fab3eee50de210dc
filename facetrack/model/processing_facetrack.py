"""`FaceTrackProcessor`: prompt + video -> FaceTrack-MM model inputs (the `AutoProcessor` of a FaceTrack-MM repo).

It is composed of a tokenizer and a video processor (`FaceTrackVideoProcessor`: frame sampling, frame and face-crop
pixels), as transformers' processors are of their parts. For every video it samples frames and tracks the main
character's face (`video_analysis.analyze_video`; or takes a precomputed track, e.g. from a dataset column, and
decodes exactly its frames), has the video processor crop the face per frame and turn frames and crops into the
vision encoder's pixels, and expands each `<video>` placeholder of the prompt into the per-frame token layout the
model fills:

    <t=0.0s><video>...<video><face>...<face><t=1.5s><video>...      (G global + F face tokens per frame)

With `use_no_face_embedding=False` frames without the main face get no `<face>` tokens; with `video_newline=True` one
more `<video>` follows each video's last frame (LLaVA-OneVision's layout); with `face_tokens_per_frame=0` there are no
face tokens and no face tracking at all; `timestamp_template=None` renders no timestamps.

Call-time options follow transformers' `ProcessingKwargs` (`FaceTrackProcessorKwargs`): flat (`num_frames=8`,
`padding_side="right"`) or structured (`text_kwargs={...}`, `videos_kwargs={...}`); `videos_kwargs` takes the
standard `VideosKwargs` keys this processor uses (`num_frames`, `fps`, `do_sample_frames`, `image_mean`,
`image_std`) plus FaceTrack's own (`FaceTrackVideosKwargs`).

Outputs (docs/architecture.md): `input_ids`, `attention_mask`, `pixel_values_videos` `(total_frames, 3, S, S)`,
`pixel_values_faces` `(total_frames, 3, S, S)`, `face_mask` `(total_frames,)` bool, `video_num_frames`
`(num_videos,)` long; with `return_face_tracks=True` also `face_tracks` (one `FaceTrackResult.to_dict()` per video,
in the video's own pixels); with `return_expressions=True` also `expressions` (the followed person's
`ExpressionReport.to_dict()` per video, None where nobody is followed; measured only when asked for, or taken from a
precomputed track that holds them).

Decoding, tracking and expressions are `video_analysis.analyze_video`, the pipeline every caller shares.

(Over 400 lines on purpose: one class, whose call, tracking step and token layout share its settings, and what it
accepts; its pixels are video_processing_facetrack.py.)

This file is copied into Hub model repos beside the model's files; the face pipeline it uses (decoding, tracking,
expressions) comes from the installed `facetrack-mm` package, which the model card's first lines name.
"""

# No `from __future__ import annotations`: transformers reads the kwargs TypedDicts' annotations at run time.
from collections.abc import Sequence

import torch

from transformers import BatchFeature
from transformers.processing_utils import ProcessingKwargs, ProcessorMixin, Unpack, VideosKwargs
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
        timestamp_template (`str` or `None`, defaults to `"<t={:.1f}s>"`): text rendered before each frame's tokens
            with the frame's time in seconds; `None` renders none.
        face_detector (`str`, defaults to `"retinaface"`): detector name for the face tracker.
        tracker_options (`dict`, *optional*): extra options for `FaceTracker`.

    Batches are padded on the tokenizer's `padding_side` (left, set by facetrack.hub, suits `generate()`; a training
    collator passes `padding_side="right"` per call). Defaults of the call: `padding=True`, `return_tensors="pt"`.
    """

    valid_processor_kwargs = FaceTrackProcessorKwargs
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
        self._face_tracker = None  # built on first use: precomputed tracks never need a detector
        legacy_padding_side = kwargs.pop("padding_side", None)  # processor_config.json written before 0.2
        if kwargs:
            raise FaceTrackProcessorError(f"FaceTrackProcessor got unexpected argument(s): {', '.join(sorted(kwargs))}")
        super().__init__(tokenizer, video_processor, chat_template=chat_template or DEFAULT_CHAT_TEMPLATE)
        if legacy_padding_side is not None:
            set_padding_side(tokenizer, legacy_padding_side)
        for token in (video_token, face_token):
            if token not in tokenizer.get_vocab():
                raise FaceTrackProcessorError(
                    f"the tokenizer has no {token!r} token: add it as a special token (facetrack.hub does)"
                )
        self.video_token_id = tokenizer.convert_tokens_to_ids(video_token)
        self.face_token_id = tokenizer.convert_tokens_to_ids(face_token)

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
    def model_input_names(self) -> list[str]:
        face_inputs = ["pixel_values_faces", "face_mask"] if self.face_tokens_per_frame > 0 else []
        return ["input_ids", "attention_mask", "pixel_values_videos", *face_inputs, "video_num_frames"]

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

    def video_prompt(self, timestamps: Sequence[float], face_present: Sequence[bool]) -> str:
        """The text one `<video>` placeholder expands to."""
        pieces = []
        for timestamp, present in zip(timestamps, face_present):
            if self.timestamp_template:
                pieces.append(self.timestamp_template.format(timestamp))
            pieces.append(self.video_token * self.global_tokens_per_frame)
            if present or self.use_no_face_embedding:
                pieces.append(self.face_token * self.face_tokens_per_frame)
        if self.video_newline:
            pieces.append(self.video_token)
        return "".join(pieces)

    # ------------------------------------------------------------------------------------------------ call
    def __call__(
        self,
        text: str | list[str] | None = None,
        videos=None,
        face_tracks: Sequence[FaceTrackResult | dict | None] | None = None,
        **kwargs: Unpack[FaceTrackProcessorKwargs],
    ) -> BatchFeature:
        """Tokenise `text` (one prompt or a batch) with every `<video>` expanded, and preprocess `videos`.

        videos: one video or a list, in the order their `<video>` placeholders appear in the batch (a list of lists,
            one per prompt, as `apply_chat_template` passes them, is flattened). A video is a path, a list of PIL
            images, a `(T, H, W, 3)` (or `(T, 3, H, W)`) uint8 array or tensor, or a `VideoClip`.
        face_tracks: optional, one per video (a `FaceTrackResult`, its dict, or None to track that video).
        kwargs: `FaceTrackProcessorKwargs`, flat or per modality. Videos: `num_frames` / `fps` (sampling of videos
            without a precomputed track; default `self.num_frames`), `do_sample_frames=False` (every frame of
            decoded frames), `image_mean` / `image_std`, `return_face_tracks`. Text: the tokenizer's options
            (`padding`, `padding_side`, `truncation`, `max_length`, `return_offsets_mapping`, ...).
            `target` (videos): whose face to follow instead of the main character (`face_tracking.parse_target`:
            a person id of a previous run's JSON, "X1,Y1,X2,Y2@T", or a photo path / PIL image), for every
            video; or a list, one target (or None) per video.
            `return_expressions` (videos): also return `expressions`, the followed person's measured expression
            report per video (needs the optional expression packages; off by default: it costs ~12 ms per frame).
            `return_text_replacement_offsets`: where each placeholder and its expansion are (what
            `apply_chat_template(..., return_assistant_tokens_mask=True)` needs).
        """
        for name in ("images", "audio"):
            if kwargs.pop(name, None) is not None:
                raise FaceTrackProcessorError(f"FaceTrackProcessor takes videos, not {name}: pass `videos=`")
        check_processor_kwargs(kwargs)
        options = self._merge_kwargs(FaceTrackProcessorKwargs, tokenizer_init_kwargs=self.tokenizer.init_kwargs,
                                     **kwargs)
        text_kwargs, video_kwargs = options["text_kwargs"], options["videos_kwargs"]
        return_replacement_offsets = text_kwargs.pop(
            "return_text_replacement_offsets", options.get("return_text_replacement_offsets")
        )
        text_kwargs.pop("return_mm_token_type_ids", None)
        return_tensors = text_kwargs.get("return_tensors")

        if text is None:
            raise FaceTrackProcessorError("FaceTrackProcessor needs `text` (a prompt with one <video> per video)")
        texts = [text] if isinstance(text, str) else list(text)
        if not texts or not all(isinstance(sample, str) for sample in texts):
            raise FaceTrackProcessorError("`text` must be a string or a non-empty list of strings")
        video_list = flatten_videos(videos)
        num_placeholders = sum(sample.count(self.video_token) for sample in texts)
        if num_placeholders != len(video_list):
            raise FaceTrackProcessorError(
                f"the text has {num_placeholders} {self.video_token} placeholder(s) but {len(video_list)} video(s) "
                f"were given: put one {self.video_token} per video"
            )
        if self.face_token in "".join(texts):
            raise FaceTrackProcessorError(
                f"the text contains {self.face_token}: it is reserved for face tokens, which the processor inserts"
            )
        if face_tracks is not None:
            face_tracks = list(face_tracks)
            if len(face_tracks) != len(video_list):
                raise FaceTrackProcessorError(
                    f"got {len(face_tracks)} face track(s) for {len(video_list)} video(s): give one per video (or None)"
                )
        else:
            face_tracks = [None] * len(video_list)

        video_data = self._process_videos(video_list, face_tracks, video_kwargs)
        expanded_texts, replacement_offsets = self._expand_placeholders(texts, video_data.pop("prompts"))
        data = dict(self.tokenizer(expanded_texts, **text_kwargs))
        if return_replacement_offsets:
            data["text_replacement_offsets"] = replacement_offsets
        tracks_out = video_data.pop("face_tracks")
        expressions_out = video_data.pop("expressions")
        if video_list:
            if return_tensors not in ("pt", None):
                video_data = {key: value.numpy() for key, value in video_data.items()}
            data.update(video_data)
        if video_kwargs.get("return_face_tracks"):
            data["face_tracks"] = tracks_out
        if video_kwargs.get("return_expressions"):
            data["expressions"] = expressions_out
        return BatchFeature(data, tensor_type=None)

    def _process_videos(self, video_list: list, face_tracks: list, video_kwargs: dict) -> dict:
        """Sample, track, crop and preprocess each video; returns the per-frame tensors, prompts and tracks."""
        mean, std = video_kwargs.get("image_mean"), video_kwargs.get("image_std")
        use_faces = self.face_tokens_per_frame > 0
        target = video_kwargs.get("target")
        targets = list(target) if isinstance(target, (list, tuple)) else [target] * len(video_list)
        if len(targets) != len(video_list):
            raise FaceTrackProcessorError(f"got {len(targets)} target(s) for {len(video_list)} video(s): give one per video")
        return_expressions = bool(video_kwargs.get("return_expressions"))
        frame_pixels, face_pixels, face_masks, frame_counts, prompts, tracks_out = [], [], [], [], [], []
        expressions_out = []
        for video, precomputed, video_target in zip(video_list, face_tracks, targets):
            video_frames, video_fps = self.video_processor.frames_to_sample(
                video, video_kwargs.get("num_frames"), video_kwargs.get("fps"), video_kwargs.get("do_sample_frames"))
            wants_track = use_faces or video_kwargs.get("return_face_tracks") or return_expressions
            if precomputed is None and video_target is None and not wants_track:
                clip, track, source_track = self.video_processor.load(video, video_frames, video_fps), None, None
            else:
                analysis = self.analyze(video, precomputed, num_frames=video_frames, fps=video_fps,
                                        target=video_target, expressions=return_expressions)
                if return_expressions and analysis.expression_problem:
                    raise ExpressionDependencyError(analysis.expression_problem)
                clip, track, source_track = analysis.clip, analysis.track, analysis.source_track()
            report = None if source_track is None else source_track.expression_report
            expressions_out.append(None if report is None else report.to_dict())
            frame_pixels.append(self.video_processor.preprocess_frames(clip.frames, mean, std))
            frame_counts.append(len(clip.frames))
            present = [False] * len(clip.frames)
            if track is not None:
                boxes = track.boxes  # in the clip's pixels, as analyze_video returns every track
                present = [box is not None for box in boxes]
                if use_faces:
                    face_pixels.append(self.video_processor.preprocess_faces(
                        clip.frames, boxes, mean, std, clip.frame_indices))
                    face_masks.append(torch.tensor(present, dtype=torch.bool))
                if video_kwargs.get("return_face_tracks"):
                    tracks_out.append(source_track.to_dict())
            timestamps = [frame.timestamp for frame in track.frames] if precomputed is not None else clip.timestamps
            prompts.append(self.video_prompt(timestamps, present))

        data = {"prompts": prompts, "face_tracks": tracks_out, "expressions": expressions_out}
        if video_list:
            data["pixel_values_videos"] = torch.cat(frame_pixels)
            if use_faces:
                data["pixel_values_faces"] = torch.cat(face_pixels)
                data["face_mask"] = torch.cat(face_masks)
            data["video_num_frames"] = torch.tensor(frame_counts, dtype=torch.long)
        return data

    def to_dict(self) -> dict:
        # The face tracker holds an inference session: it is rebuilt from the saved options, never serialised.
        face_tracker = self.__dict__.pop("_face_tracker", None)
        try:
            return super().to_dict()
        finally:
            self._face_tracker = face_tracker

    def _expand_placeholders(self, texts: list[str], video_prompts: list[str]) -> tuple[list[str], list[list[dict]]]:
        """Replace the i-th `<video>` of the batch by the i-th video prompt. Also returns, per text, where each
        placeholder was (`span`, in the original text) and where its expansion is (`new_span`, in the new text)."""
        prompts = iter(video_prompts)
        expanded, offsets = [], []
        for sample in texts:
            parts = sample.split(self.video_token)
            pieces, sample_offsets = [parts[0]], []
            old_position, new_position = len(parts[0]), len(parts[0])
            for part in parts[1:]:
                video_prompt = next(prompts)
                sample_offsets.append({
                    "span": (old_position, old_position + len(self.video_token)),
                    "new_span": (new_position, new_position + len(video_prompt)),
                })
                pieces.extend((video_prompt, part))
                old_position += len(self.video_token) + len(part)
                new_position += len(video_prompt) + len(part)
            expanded.append("".join(pieces))
            offsets.append(sample_offsets)
        return expanded, offsets

    # ------------------------------------------------------------------------------------------------ chat
    def apply_chat_template(self, conversation, chat_template: str | None = None, **kwargs):
        """ProcessorMixin's `apply_chat_template`, with a clear error for empty conversations.

        Video content parts: `{"type": "video", "path": "clip.mp4"}` (or `"video"`/`"url"` keys). Pass
        `num_frames=`/`face_tracks=` in `processor_kwargs` (or as keyword arguments).
        """
        check_conversations(conversation)
        return super().apply_chat_template(conversation, chat_template=chat_template, **kwargs)
