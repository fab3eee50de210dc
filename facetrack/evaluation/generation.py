"""FEC-Bench generation: caption the test videos with any captioner (FaceTrack-MM's `Captioner`, another
transformers video chat model, or an OpenAI-compatible endpoint: `facetrack.inference.video_chat_models`), resumably."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from facetrack.evaluation.errors import BenchmarkError
from facetrack.data.schema import FEC_BENCH_PROMPT


def generate_predictions(
    captioner, items: list[dict], video_root: str | os.PathLike, predictions_path: str | os.PathLike,
    model_name: str, batch_size: int = 1, num_frames: int | None = None, prompt: str = FEC_BENCH_PROMPT,
    max_new_tokens: int = 256, progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, str], list[dict]]:
    """Caption `items` in batches with a captioner (anything with `generate_captions(videos, prompt, num_frames=,
    max_new_tokens=) -> (captions, info)`: `facetrack.inference.captioner.Captioner` or a `facetrack.inference.video_chat_models` one), appending each batch to `predictions_path`
    (JSONL) as soon as it is done, so an interrupted run resumes where it stopped: ids already in the file are
    skipped. The generation settings are kept beside the file (`<name>.settings.json`) and a resume with other
    settings is refused, so one file never mixes two models or prompts. A video that cannot be decoded is skipped
    and returned with the reason. Returns ({id: prediction}, [unreadable items])."""
    predictions_path = Path(predictions_path)
    settings = {"model": model_name, "prompt": prompt, "num_frames": num_frames, "max_new_tokens": max_new_tokens}
    settings_path = predictions_path.with_suffix(".settings.json")
    if predictions_path.is_file() and settings_path.is_file():
        previous = json.loads(settings_path.read_text())
        if previous != settings:
            raise BenchmarkError(
                f"{predictions_path} holds predictions made with {previous}, not {settings}: "
                "use another --out (or delete that file) to start over"
            )
    predictions_path.parent.mkdir(parents=True, exist_ok=True)
    settings_path.write_text(json.dumps(settings, indent=2))
    from facetrack.evaluation.fec_bench import read_predictions

    done = read_predictions(predictions_path) if predictions_path.is_file() else {}
    todo = [item for item in items if item["id"] not in done]
    unreadable: list[dict] = []

    def caption(batch: list[dict]) -> list[tuple[dict, str]]:
        videos = [str(Path(video_root) / item["video"]) for item in batch]
        try:
            texts, _ = captioner.generate_captions(videos, prompt, num_frames=num_frames, max_new_tokens=max_new_tokens)
            return list(zip(batch, texts))
        except ValueError as error:  # a video that cannot be decoded (VideoDecodeError) or tracked
            if len(batch) > 1:  # find which one: caption the others
                return [pair for item in batch for pair in caption([item])]
            unreadable.append({**batch[0], "reason": str(error)})
            return []

    for start in range(0, len(todo), batch_size):
        captioned = caption(todo[start : start + batch_size])
        with predictions_path.open("a", encoding="utf-8") as handle:
            for item, text in captioned:
                done[item["id"]] = text
                record = {"id": item["id"], "video": item["video"], "prediction": text, "reference": item["caption"]}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        if progress:
            progress(min(start + batch_size, len(todo)), len(todo))
    return done, unreadable
