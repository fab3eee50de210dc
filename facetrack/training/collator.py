"""`FaceTrackDataCollator`: rows of a training split -> FaceTrack-MM inputs with labels (TRL 1.16 has no video
collator: the trainer runs with `remove_unused_columns=False` and `dataset_kwargs={"skip_prepare_dataset": True}`,
and this collator owns decoding, tokenisation, label masking and truncation)."""

from __future__ import annotations

from typing import Any

from dataclasses import replace

import numpy as np

from facetrack.expressions.features import RULE_COLUMN_PREFIXES
from facetrack.training.config import TrainingSetupError
from facetrack.training.data import row_video, subsample_track, track_frame_indices


class TimelineVariants:
    """Training examples drawn from the rows' measured timelines: at each call, a montage of 1 or more edited pieces
    (`facetrack.expressions.variants.random_variant`: a window of at most `max_seconds`, re-timed, maybe reversed
    and mirrored) cut together (`concatenate`) and sampled to one of `frame_counts`, with its events and measured
    caption derived again. Each piece comes from the row's own timeline, or with probability `other_clip_share`
    from another row's seen before: a montage that cuts between clips, as a film cuts between shots, so that
    transitions the clips never show (from one person's neutral face to another's smile) are in the data. A row
    whose own timeline has no event (a still face) always starts a montage that cuts to another clip.

    The caption is a weak label (written by rules from the measurements, not by a person), and it describes exactly
    the montage's measurements: a model trained on montages learns to read the stream frame by frame instead of
    learning a few clips' stories by heart. Only for models that read the stream alone: the pixels of a montage do
    not exist. A draw whose measurements give no event at all is kept with probability `keep_eventless` (a long
    clip sampled sparsely often has none) and drawn again otherwise, at most `max_draws` times. A share
    `no_face_share` of the montages is cut, at its start or its end, to 0.5-3 s where no face is measured (a title
    card, a cutaway), so the model meets frames without the face in training. A share `script_share` is scripted
    instead: 2-5 stretches of frames picked by their rule state (smiling, eyes closed, mouth open, ..., the dominant
    emotion) from any row seen, each in another state than the one before, so that a few clips' frames make
    sequences of expressions in orders none of them shows (a smile that fades, a face that starts out smiling).
    """

    def __init__(self, seed: int = 0, frame_counts: tuple[int, ...] = (8, 12, 16),
                 part_counts: tuple[int, ...] = (1, 1, 2), max_seconds: float | None = 5.0,
                 other_clip_share: float = 0.5, keep_eventless: float = 0.25, no_face_share: float = 0.0,
                 script_share: float = 0.0, max_draws: int = 20):
        if not frame_counts or min(frame_counts) < 2:
            raise TrainingSetupError(f"variant frame counts must be at least 2 each, got {list(frame_counts)}")
        if not part_counts or min(part_counts) < 1:
            raise TrainingSetupError(f"variant part counts must be at least 1 each, got {list(part_counts)}")
        if max_seconds is not None and not max_seconds > 0:
            raise TrainingSetupError(f"variant max seconds must be > 0, got {max_seconds}")
        if not 0 <= other_clip_share <= 1:
            raise TrainingSetupError(f"variant other-clip share must be in [0, 1], got {other_clip_share}")
        if not 0 <= no_face_share <= 1:
            raise TrainingSetupError(f"variant no-face share must be in [0, 1], got {no_face_share}")
        self.rng = np.random.default_rng(seed)
        self.frame_counts = tuple(frame_counts)
        self.part_counts = tuple(part_counts)
        self.max_seconds = max_seconds
        self.other_clip_share = other_clip_share
        self.keep_eventless = keep_eventless
        self.no_face_share = no_face_share
        if not 0 <= script_share <= 1:
            raise TrainingSetupError(f"variant script share must be in [0, 1], got {script_share}")
        self.script_share = script_share
        self._runs: dict[tuple, list] | None = None  # state -> stretches of frames in that state, all rows seen
        self._runs_of = 0
        self.max_draws = max_draws
        self._sources: dict[tuple, tuple[Any, float]] = {}  # each row's parsed report and frame width, read once

    def source(self, track: dict[str, Any], row_id: Any) -> tuple[Any, float]:
        """The followed person's measured report stored in a row's track, and the frame width (TrainingSetupError
        when there is no report)."""
        key = (str(row_id), len(track["frames"]))
        if key not in self._sources:
            from facetrack.expressions.report import ExpressionReport

            person = track.get("person_id")
            stored = (track.get("expressions") or {}).get(str(person))
            if stored is None:
                raise TrainingSetupError(
                    f"row {row_id!r}: its face track holds no measured expressions of the followed person, which "
                    "timeline variants are drawn from: build the dataset with expressions (the default)"
                )
            report = ExpressionReport.from_dict(stored)
            # A clip sampled at more frames than it has repeats frames (same index, same time): montages are cut
            # from its distinct frames.
            first_positions: dict[int, int] = {}
            for position, frame in enumerate(report.timeline.frames):
                first_positions.setdefault(frame.frame_index, position)
            if len(first_positions) < len(report.timeline):
                report = report.select_frames(sorted(first_positions.values()))
            self._sources[key] = (report, float(track["width"]))
        return self._sources[key]

    def __call__(self, track: dict[str, Any], row_id: Any = None) -> tuple[dict[str, Any], str | None]:
        """(the montage's face track, its measured caption without the "Measured description" label); for a row
        where nobody is followed, (its track, None): it trains as it is, with its own caption."""
        from facetrack.expressions.caption import measured_caption_text
        from facetrack.expressions.report import report_from_timeline
        from facetrack.expressions.variants import concatenate, random_variant, resample

        if track.get("person_id") is None:  # nobody followed (no face): nothing to edit, the row trains as it is
            return track, None
        own = self.source(track, row_id)
        others = [self._sources[key] for key in sorted(self._sources) if self._sources[key] is not own]
        # A clip whose own timeline has no event (a still face) teaches only "stays the same" alone: it is cut
        # together with another clip instead (its state, then the other's: a change no clip shows).
        still = not own[0].events and bool(others) and self.other_clip_share > 0
        for _ in range(self.max_draws):
            count = max(2, int(self.rng.choice(self.part_counts))) if still else int(self.rng.choice(self.part_counts))
            pieces = self._scripted_pieces() if self.rng.random() < self.script_share else []
            for index in range(0 if pieces else count):
                from_other = others and count > 1 and (
                    (still and index > 0) or (not still and self.rng.random() < self.other_clip_share))
                report, width = others[self.rng.integers(len(others))] if from_other else own
                variant = random_variant(report.timeline, self.rng, min_seconds=1.5 if count == 1 else 1.0,
                                         max_seconds=self.max_seconds)
                pieces.append(replace(variant, num_frames=None).apply(report.timeline, width))
            if self.rng.random() < self.no_face_share:  # a cut to a shot without the face (a title card, a cutaway)
                pieces.insert(0 if self.rng.random() < 0.5 else len(pieces), self._no_face_piece(pieces[0]))
            timeline = resample(concatenate(pieces), int(self.rng.choice(self.frame_counts)))
            report = report_from_timeline(timeline, own[0].person_id, own[0].config)
            if report.events or self.rng.random() < self.keep_eventless:
                break
        return variant_track(track, report), measured_caption_text(report.caption)

    def _state_runs(self) -> dict[tuple, list]:
        """Every stretch of frames (at least 0.3 s) of the rows seen so far in which the rule states (the level
        states and the dominant emotion) stay the same, by state."""
        from facetrack.expressions.events import dominant_emotions
        from facetrack.expressions.features import LEVEL_STATES, level_states

        runs: dict[tuple, list] = {}
        for key in sorted(self._sources):
            report, width = self._sources[key]
            timeline = report.timeline
            states = level_states(timeline, report.config)
            emotions = dominant_emotions(timeline, report.config)
            measured = timeline.measured
            t = timeline.timestamps
            keys = [None if not measured[i] else tuple(bool(states[n][i]) for n in LEVEL_STATES) + (emotions[i],)
                    for i in range(len(t))]
            start = 0
            for end in range(1, len(t) + 1):
                if end == len(t) or keys[end] != keys[start]:
                    if keys[start] is not None and t[end - 1] - t[start] >= 0.3:
                        runs.setdefault(keys[start], []).append((report, width, float(t[start]), float(t[end - 1])))
                    start = end
        return runs

    def _scripted_pieces(self) -> list:
        """2-5 stretches of measured frames, each in another state than the one before (any row's, mirrored at
        random), re-timed to 0.6-2.5 s each: sequences of expressions no clip shows in that order. Empty (an
        ordinary montage instead) when no row has a stretch of at least 0.3 s in one state."""
        from facetrack.expressions.variants import mirror, retime, window

        if self._runs is None or self._runs_of != len(self._sources):  # rows are seen one by one
            self._runs, self._runs_of = self._state_runs(), len(self._sources)
        states = sorted(self._runs, key=repr)
        if not states:
            return []
        pieces, previous = [], None
        for _ in range(int(self.rng.integers(2, 6))):
            choices = [state for state in states if state != previous] or states
            previous = choices[self.rng.integers(len(choices))]
            report, width, start, end = self._runs[previous][self.rng.integers(len(self._runs[previous]))]
            step = float(np.median(np.diff(report.timeline.timestamps))) if len(report.timeline) > 1 else 0.1
            piece = window(report.timeline, start, end - start + step / 2)
            seconds = float(self.rng.uniform(0.6, 2.5))
            piece = retime(piece, max(end - start, step) / seconds)
            if self.rng.random() < 0.5:
                piece = mirror(piece, width)
            pieces.append(piece)
        return pieces

    def _no_face_piece(self, piece):
        """0.5-3 s (at most as long as `piece`) at `piece`'s frame rate where nobody's face is measured."""
        from facetrack.expressions.measure import FrameExpression

        seconds = float(self.rng.uniform(0.5, 3.0))
        frames = [frame for frame in piece.frames if frame.timestamp - piece.frames[0].timestamp < seconds]
        return replace(piece, frames=[FrameExpression(timestamp=frame.timestamp, frame_index=frame.frame_index)
                                      for frame in frames])


def variant_track(track: dict[str, Any], report) -> dict[str, Any]:
    """A stored face track (`FaceTrackResult.to_dict()`) standing for an edited clip: the followed person alone, at
    the frames of `report`'s timeline (their boxes where the face was measured), with `report` as their
    expressions."""
    person = track["person_id"]
    boxes = [frame.box for frame in report.timeline.frames]
    frames = [{"timestamp": frame.timestamp, "frame_index": frame.frame_index, "box": frame.box, "score": None,
               "person_id": person if frame.box is not None else None, "interpolated": False}
              for frame in report.timeline.frames]
    return {**track, "frames": frames, "shot_cuts": [], "tracks": {str(person): boxes},
            "track_scores": {str(person): [None] * len(boxes)}, "persons": {str(person): {"fragments": []}},
            "expressions": {str(person): report.to_dict()}}


class FaceTrackDataCollator:
    """Rows of a training split (`training_data.load_training_splits`) -> model inputs with labels.

    Each row's video (`{"bytes", "path"}`) is decoded from its bytes at the frames of its face track (parsed once,
    when the split was loaded); the processor crops the faces at the track's boxes and expands `<video>`. With
    `face_source="detect"` the processor detects and tracks the faces itself, on as many uniformly sampled frames as
    the track has. A model with the expression stream reads the followed person's measured timeline stored in the
    track (never measured again); a model that reads expression tokens only (no global, no face tokens) needs no
    pixels, so with precomputed tracks no video is decoded at all. Labels are -100 everywhere but on the assistant's
    answer (the caption and its end-of-turn token): the answer is what the chat template appends after the generation prompt, tokenised on its own and checked
    against the end of each sequence, so any chat template that ends the prompt on a token boundary works.
    Sequences longer than `max_length` lose the end of their answer; a prompt (video tokens included) that does not
    leave room for the answer is an error, found before training by `check_max_length` (from each row's text and
    face track, no video decoded).
    """

    def __init__(
        self,
        processor,
        num_frames: int | None = None,
        max_length: int | None = None,
        face_source: str = "precomputed",
        timeline_variants: TimelineVariants | None = None,
        measure_jitter: float = 0.0,
        seed: int = 0,
    ):
        if face_source not in ("precomputed", "detect"):
            raise TrainingSetupError(f"face_source must be 'precomputed' or 'detect', got {face_source!r}")
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.num_frames = num_frames
        self.max_length = max_length
        self.face_source = face_source
        self.timeline_variants = timeline_variants
        if not measure_jitter >= 0:
            raise TrainingSetupError(f"measure_jitter must be >= 0, got {measure_jitter}")
        if measure_jitter > 0 and not getattr(processor, "expression_features", None):
            raise TrainingSetupError("measure_jitter changes expression features: the model has no expression stream")
        self.measure_jitter = measure_jitter
        self.rng = np.random.default_rng(seed)
        if measure_jitter > 0:  # which feature columns are raw measures (jittered) rather than rule columns
            self.raw_columns = np.array([not name.startswith(RULE_COLUMN_PREFIXES)
                                         for name in processor.expression_features["columns"]])
        if timeline_variants is not None and (self.needs_pixels or face_source != "precomputed"):
            raise TrainingSetupError(
                "timeline variants edit the stored measurements only, so they need a model that reads the "
                "expression stream alone (no global or face tokens) and face_source='precomputed'"
            )

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        from facetrack.data.build import DatasetBuildError
        from facetrack.video.decode import load_video

        texts, answers, videos, tracks = [], [], [], []
        for example in examples:
            messages = example["messages"]
            track = example["face_track"]
            if not isinstance(track, dict):
                raise TrainingSetupError(
                    f"row {example.get('id')!r}: face_track is a {type(track).__name__}, not a parsed track: give "
                    "the collator rows of training_data.load_training_splits / training_split"
                )
            if self.timeline_variants is not None:  # a montage of the row's timeline, captioned by its measurements
                track, caption = self.timeline_variants(track, example.get("id"))
                if caption is not None:
                    messages = [*messages[:-1], {"role": "assistant", "content": [{"type": "text", "text": caption}]}]
            elif self.num_frames is not None and self.num_frames != len(track["frames"]):
                try:
                    track = subsample_track(track, self.num_frames)
                except DatasetBuildError as error:
                    raise TrainingSetupError(f"row {example.get('id')!r}: {error}") from error
            video = example["video"]
            if not isinstance(video, dict):  # a row's video is {"bytes", "path"}: never a path to open as it is
                raise TrainingSetupError(f"row {example.get('id')!r}: video is a {type(video).__name__}, not a "
                                         "{'bytes', 'path'} dict: give the collator rows of training_split")
            try:
                video = row_video(video)  # its bytes (a path-only row was read inside the dataset's folder)
            except DatasetBuildError as error:
                raise TrainingSetupError(f"row {example.get('id')!r}: {error}") from None
            if self.face_source == "precomputed" and not self.needs_pixels:
                clip = video  # the processor reads the stored timeline only; the bytes are never decoded
            elif self.face_source == "precomputed":
                clip = load_video(video, num_frames=None, frame_indices=track_frame_indices(track))
            else:
                # The same frames the dataset build sampled (uniformly, this many), so both modes see the same pixels.
                clip = load_video(video, num_frames=len(track["frames"]))
            full, answer = self._texts(messages)
            texts.append(full)
            answers.append(answer)
            videos.append(clip)
            tracks.append(track)

        face_tracks = tracks if self.face_source == "precomputed" else None
        batch = self.processor(text=texts, videos=videos, face_tracks=face_tracks, padding=True, padding_side="right")
        batch["labels"] = self._labels(batch["input_ids"], batch["attention_mask"], answers)
        if self.measure_jitter > 0:
            self._jitter_measures(batch)
        if self.max_length is not None and batch["input_ids"].shape[1] > self.max_length:
            self._truncate(batch)
        return dict(batch)

    def prompt_length(self, example: dict[str, Any]) -> int:
        """Tokens of a row's prompt (everything before the answer: text, timestamps, global and face tokens), as
        `__call__` builds it, from the row's messages and parsed face track only: no video is decoded."""
        return len(self.tokenizer(self.prompt_text(example), add_special_tokens=False)["input_ids"])

    def prompt_text(self, example: dict[str, Any]) -> str:
        """A row's prompt with its `<video>` expanded, as the processor expands it for that row's frames."""
        track = example["face_track"]
        if self.timeline_variants is not None:  # the longest montage: the most frames, at the latest times
            count = max(self.timeline_variants.frame_counts)
            frames = [{"timestamp": 100.0 * index / count, "box": [0, 0, 1, 1]} for index in range(count)]
        else:
            if self.num_frames is not None and self.num_frames != len(track["frames"]):
                track = subsample_track(track, self.num_frames)
            frames = track["frames"]
        # precomputed: the followed person's boxes say where a face is; detect: unknown before decoding, so every
        # frame counts as having one (the most tokens a frame can take).
        present = [frame.get("box") is not None or self.face_source == "detect" for frame in frames]
        video_prompt = self.processor.video_prompt([frame["timestamp"] for frame in frames], present)
        full, answer = self._texts(example["messages"])
        return full[: len(full) - len(answer)].replace(self.processor.video_token, video_prompt)

    def check_max_length(self, dataset, where: str = "the training split", min_answer_tokens: int = 16) -> None:
        """Refuse, before training starts, a `max_length` that leaves no room for the answer after some row's
        prompt (the collator would fail on that row mid-run). The message names max_length, the frames and the
        longest prompt, and says what fits. Reads the small columns only; prompts are tokenised in batches (a
        fast tokenizer spreads a batch over the CPU's cores)."""
        if self.max_length is None:
            return
        from facetrack.training.data import ROW_COLUMN

        columns = [name for name in ("messages", "face_track", ROW_COLUMN, "id") if name in dataset.column_names]
        longest, longest_row, frames = 0, None, 0
        rows = dataset.select_columns(columns)  # keeps the split's transform: each face track parsed once
        for start in range(0, len(rows), 256):
            batch = [rows[index] for index in range(start, min(start + 256, len(rows)))]
            lengths = [len(ids) for ids in self.tokenizer([self.prompt_text(row) for row in batch],
                                                          add_special_tokens=False)["input_ids"]]
            for offset, (row, length) in enumerate(zip(batch, lengths)):
                if length > longest:
                    longest, longest_row = length, row.get("id", start + offset)
                    frames = self.num_frames or len(row["face_track"]["frames"])
        if longest + min_answer_tokens > self.max_length:
            raise TrainingSetupError(
                f"max_length={self.max_length} is too short for {where}: the prompt of row {longest_row!r} takes "
                f"{longest} tokens with its {frames} frames (video and face tokens included), leaving less than "
                f"{min_answer_tokens} tokens for the caption; set --max_length {suggested_max_length(longest)} or "
                "more, or train on fewer frames (--num_frames)"
            )

    def _jitter_measures(self, batch) -> None:
        """Each video's raw measure columns (blendshapes, pose, eye / mouth / brow measures, emotion probabilities)
        scaled by a gain and shifted by an offset of their own (log-normal sigma and normal sigma `measure_jitter`;
        one draw per video and column), on its measured frames. The rule columns (`state:*`, `event:*`, `time:*`)
        and the target stay as they are: the caption is written from the rules, and the raw values are what
        differs from face to face, so a model trained on a few faces must not read the caption from them."""
        import torch

        features, mask = batch["expression_features"], batch["expression_mask"]
        size = len(self.raw_columns)
        start = 0
        for count in batch["video_num_frames"].tolist():
            rows = slice(start, start + count)
            gain = np.where(self.raw_columns, np.exp(self.rng.normal(0.0, self.measure_jitter, size)), 1.0)
            offset = np.where(self.raw_columns, self.rng.normal(0.0, self.measure_jitter, size), 0.0)
            jittered = (features[rows] * torch.from_numpy(gain).to(features.dtype)
                        + torch.from_numpy(offset).to(features.dtype))
            features[rows] = torch.where(mask[rows, None], jittered, features[rows])
            start += count

    @property
    def needs_pixels(self) -> bool:
        """Whether the model reads pixels (global or face tokens); False for expression tokens alone."""
        return self.processor.global_tokens_per_frame > 0 or self.processor.face_tokens_per_frame > 0

    def _texts(self, messages: list[dict]) -> tuple[str, str]:
        """(full conversation text, answer text appended after the generation prompt)."""
        if not messages or messages[-1]["role"] != "assistant":
            raise TrainingSetupError("each row's messages must end with the assistant's answer")
        prompt = self.processor.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
        full = self.processor.apply_chat_template(messages, tokenize=False)
        if not full.startswith(prompt):
            raise TrainingSetupError(
                "the chat template renders the conversation without its generation prompt as a prefix; the answer "
                "tokens cannot be located for label masking"
            )
        return full, full[len(prompt) :]

    def _labels(self, input_ids, attention_mask, answers: list[str]):
        labels = input_ids.new_full(input_ids.shape, -100)
        for row, answer in enumerate(answers):
            answer_ids = self.tokenizer(answer, add_special_tokens=False)["input_ids"]
            positions = attention_mask[row].nonzero().flatten()  # real tokens, whatever the padding side
            answer_positions = positions[len(positions) - len(answer_ids) :]
            if len(answer_ids) >= len(positions) or input_ids[row, answer_positions].tolist() != answer_ids:
                raise TrainingSetupError(
                    "the answer tokenised alone does not match the end of the tokenised conversation; the chat "
                    "template must end the generation prompt on a token boundary (e.g. a newline or special token)"
                )
            labels[row, answer_positions] = input_ids[row, answer_positions]
        return labels

    def _truncate(self, batch) -> None:
        # Batches are padded on the right (padding_side="right" above), so cutting the end only loses answer tokens.
        prompt_lengths = (batch["labels"] == -100).logical_and(batch["attention_mask"].bool()).sum(1)
        if int(prompt_lengths.max()) >= self.max_length:
            raise TrainingSetupError(
                f"max_length={self.max_length} is shorter than a prompt of {int(prompt_lengths.max())} tokens (video "
                "and face tokens included): raise max_length or lower num_frames"
            )
        for key in ("input_ids", "attention_mask", "labels"):
            batch[key] = batch[key][:, : self.max_length]


def suggested_max_length(prompt_tokens: int, answer_tokens: int = 256) -> int:
    """A max_length with room for an answer of `answer_tokens` after the prompt, rounded up to a multiple of 256."""
    return -(-(prompt_tokens + answer_tokens) // 256) * 256
