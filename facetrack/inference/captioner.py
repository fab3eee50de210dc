"""Caption a video with a FaceTrack-MM model: load (local folder or Hub id, `trust_remote_code`), build inputs, generate
or stream. Used by `facetrack describe`, `facetrack eval`, the quickstart and the Space."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from facetrack.data.schema import FEC_BENCH_PROMPT
from facetrack.hub.sources import check_model_source


@dataclass
class Captioner:
    """A loaded FaceTrack-MM model and its processor."""

    model: Any
    processor: Any

    @property
    def device(self):
        return self.model.device

    def build_inputs(
        self,
        videos: Sequence,
        prompt: str | Sequence[str] = FEC_BENCH_PROMPT,
        num_frames: int | None = None,
        face_tracks: Sequence | None = None,
        targets: Sequence | None = None,
    ) -> tuple[dict, list[dict]]:
        """One chat prompt per video (the same instruction, or one per video) -> a left-padded batch of model inputs
        on the model's device (pixels in the model's dtype), and the face track used for each video (dicts, video
        pixels).

        videos: paths, frame arrays or decoded `VideoClip`s; face_tracks: one `FaceTrackResult` (or its dict, or
        None to track that video) per video: a clip with its track (e.g. `VideoAnalysis.clip` / `.track`) is
        neither decoded nor tracked again. `targets` (one per video, or None) choose whose face to follow
        (`face_tracking.parse_target`); default the main character."""
        prompts = [prompt] * len(videos) if isinstance(prompt, str) else list(prompt)
        if len(prompts) != len(videos):
            raise ValueError(f"got {len(prompts)} prompts for {len(videos)} videos: give one prompt, or one per video")
        texts = [
            self.processor.apply_chat_template(
                [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}],
                tokenize=False, add_generation_prompt=True,
            )
            for text in prompts
        ]
        inputs = self.processor(
            text=texts,
            videos=list(videos),
            face_tracks=face_tracks,
            num_frames=num_frames,
            target=None if targets is None else list(targets),
            return_face_tracks=True,
            padding=True,
            padding_side="left",  # generation continues every row from its last token
            return_tensors="pt",
        )
        used_tracks = inputs.pop("face_tracks")
        dtype = self.model.dtype
        tensors = {
            key: value.to(self.device, dtype=dtype) if value.is_floating_point() else value.to(self.device)
            for key, value in inputs.items()
        }
        return tensors, used_tracks

    def generate_captions(
        self,
        videos: Sequence,
        prompt: str | Sequence[str] = FEC_BENCH_PROMPT,
        num_frames: int | None = None,
        max_new_tokens: int = 256,
        face_tracks: Sequence | None = None,
        targets: Sequence | None = None,
        **generate_kwargs,
    ) -> tuple[list[str], list[dict]]:
        """Captions of a batch of videos, greedy unless `generate_kwargs` (`generate()`'s: `do_sample`,
        `temperature`, `num_beams`, ...) say otherwise; returns `(captions, face_track_dicts)`."""
        import torch

        inputs, used_tracks = self.build_inputs(videos, prompt, num_frames, face_tracks, targets)
        generate_kwargs = {"do_sample": False, **generate_kwargs}
        with torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=max_new_tokens, **generate_kwargs)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        captions = self.processor.batch_decode(new_tokens, skip_special_tokens=True)
        return [caption.strip() for caption in captions], used_tracks

    def stream_caption(
        self,
        video,
        prompt: str = FEC_BENCH_PROMPT,
        num_frames: int | None = None,
        max_new_tokens: int = 256,
        face_track=None,
        target=None,
    ) -> tuple[Iterator[str], dict]:
        """Greedy caption streamed piece by piece: returns `(iterator of text pieces, face_track_dict)`.

        Generation runs in a background thread feeding transformers' `TextIteratorStreamer`; an exception raised
        there ends the stream and is re-raised by the iterator, so a consumer never waits forever."""
        import torch
        from transformers import TextIteratorStreamer

        inputs, (face_track,) = self.build_inputs([video], prompt, num_frames, [face_track], [target])
        streamer = TextIteratorStreamer(self.processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode():
                    self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, streamer=streamer)
            except BaseException as error:  # handed to the consumer below
                failure.append(error)
                streamer.end()

        def pieces() -> Iterator[str]:
            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            for piece in streamer:
                if piece:  # the streamer also emits empty pieces while it holds back a partial word
                    yield piece
            worker.join()
            if failure:
                raise RuntimeError(f"caption generation failed: {type(failure[0]).__name__}: {failure[0]}") from failure[0]

        return pieces(), face_track


    def caption_each_person(
        self,
        video,
        prompt: str = FEC_BENCH_PROMPT,
        num_frames: int | None = None,
        max_new_tokens: int = 256,
        min_share: float = 0.25,
    ) -> list[dict]:
        """Track once, then caption every person visible in at least `min_share` of the sampled frames (one batch).
        Returns, by person id, `{"person_id", "is_main", "share", "caption", "face_track"}` (the face track follows
        that person; an empty list when nobody is visible that often)."""
        if not 0.0 <= min_share <= 1.0:
            raise ValueError(f"min_share must be between 0 and 1, got {min_share}")
        analysis = self.processor.analyze(video, num_frames=num_frames)
        clip, result = analysis.clip, analysis.track
        per_person = result.each_person(min_share)
        if not per_person:
            return []
        captions, tracks = self.generate_captions(
            [clip] * len(per_person), prompt, max_new_tokens=max_new_tokens, face_tracks=per_person
        )
        total = len(result.frames)
        return [
            {"person_id": person.person_id, "is_main": person.person_id == result.main_person_id,
             "share": round(person.persons[person.person_id].num_frames / total, 4), "caption": caption,
             "face_track": track}
            for person, caption, track in zip(per_person, captions, tracks)
        ]


def resolve_dtype(name: str):
    """"auto" or a dtype name ("float32", "bfloat16", "float16") -> what `from_pretrained(dtype=...)` takes."""
    import torch

    dtypes = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name not in dtypes:
        raise ValueError(f"dtype must be one of {sorted(dtypes)}, got {name!r}")
    return dtypes[name]


def load_captioner(model_name_or_path: str, device: str | None = None, dtype: str = "auto") -> Captioner:
    """Load a FaceTrack-MM model + processor from a Hub-layout folder or a Hub id (`trust_remote_code=True`).

    device: e.g. "cuda" or "cpu"; default CUDA when available. dtype: "auto" keeps the checkpoint's dtype
    (bfloat16 on CUDA for float32 checkpoints), or "float32" / "bfloat16" / "float16".
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        parsed_device = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"unknown device {device!r}: use cpu, cuda or cuda:N") from error
    if parsed_device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but this PyTorch build sees no CUDA GPU: use --device cpu")
    torch_dtype = resolve_dtype(dtype)
    if torch_dtype == "auto" and device.startswith("cuda"):
        torch_dtype = torch.bfloat16
    # A folder that does not exist, or a Hub id while the Hub cannot be reached: one line (ModelSourceError) at once.
    load_kwargs = check_model_source(model_name_or_path, "model")
    processor = AutoProcessor.from_pretrained(model_name_or_path, trust_remote_code=True, **load_kwargs)
    model = AutoModelForImageTextToText.from_pretrained(model_name_or_path, dtype=torch_dtype, trust_remote_code=True,
                                                        **load_kwargs)
    model.to(device).eval()
    return Captioner(model=model, processor=processor)
