"""FaceTrack-MM as an lmms-eval model: `lmms-eval --model facetrack --model_args pretrained=FOLDER_OR_HUB_ID ...`.

lmms-eval finds it through the `lmms_eval.models` entry point of the facetrack-mm package (pyproject.toml), the way
its docs ask packages outside lmms-eval to register a model (a `ModelManifest`; lmms-eval's `models/__init__.py`
loads every manifest of that group). This module imports lmms_eval: only lmms-eval loads it.

Written as lmms-eval's own "simple" models are (`models/simple/qwen2_vl.py`, `llava_onevision.py`): the task gives
`doc_to_visual` (here one video path per doc, as `lmms_eval_tasks/fec_bench` does) and `doc_to_text`; the model
builds its own chat prompt. FaceTrack-MM's processor samples the frames, tracks the main character's face and crops
it (`facetrack.inference.captioner.Captioner`, the same path as `facetrack describe` and `facetrack eval`).

model_args: `pretrained` (required), `device` (default CUDA when available), `dtype` ("auto", "float32",
"bfloat16", "float16"), `num_frames` (default: the processor's), `batch_size`.
"""

from __future__ import annotations

import json
import os

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from lmms_eval.models.registry_v2 import ModelManifest
from tqdm import tqdm

from facetrack.inference.captioner import load_captioner

DEFAULT_MAX_NEW_TOKENS = 256


def model_manifest() -> ModelManifest:
    """The entry point lmms-eval reads (group `lmms_eval.models`): `--model facetrack` is this module's class."""
    return ModelManifest(model_id="facetrack", simple_class_path=f"{__name__}.FaceTrackMM")


class FaceTrackMM(lmms):
    """FaceTrack-MM (a Hub-layout folder or Hub id, loaded with `trust_remote_code`) for lmms-eval's generation
    tasks. One process (lmms-eval's data parallel launchers are not supported: a clear error says so)."""

    is_simple = True

    def __init__(
        self,
        pretrained: str,
        device: str | None = None,
        dtype: str = "auto",
        num_frames: int | str | None = None,
        batch_size: int | str = 1,
        max_batch_size: int | str | None = None,  # lmms-eval passes it to every model; batches are batch_size
        **unknown,
    ) -> None:
        super().__init__()
        if unknown:
            raise ValueError(f"facetrack: unknown model_args {sorted(unknown)}; known: pretrained, device, dtype, "
                             "num_frames, batch_size")
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ValueError("facetrack: one process only; run lmms-eval without accelerate/torchrun launchers")
        self.captioner = load_captioner(pretrained, device=device, dtype=dtype)
        self.num_frames = int(num_frames) if num_frames not in (None, "") else None
        self.batch_size_per_gpu = int(batch_size)
        if self.batch_size_per_gpu < 1:
            raise ValueError(f"facetrack: batch_size must be at least 1, got {batch_size}")

    @property
    def device(self):
        return self.captioner.device

    @property
    def batch_size(self) -> int:
        return self.batch_size_per_gpu

    def generate_until(self, requests: list[Instance]) -> list[str]:
        """One caption per request, in the requests' order. Requests with the same generation settings are
        batched (left padding: a row's greedy caption is the same alone or in a batch)."""
        answers: list[str | None] = [None] * len(requests)
        groups: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(json.dumps(request.args[1], sort_keys=True, default=str), []).append(index)
        progress = tqdm(total=len(requests), disable=self.rank != 0, desc="FaceTrack-MM captioning")
        for indices in groups.values():
            for start in range(0, len(indices), self.batch_size):
                batch = indices[start : start + self.batch_size]
                contexts, videos = [], []
                for index in batch:
                    context, _, doc_to_visual, doc_id, task, split = requests[index].args
                    contexts.append(context.replace("<image>", "").replace("<video>", "").strip())
                    videos.append(self._video(doc_to_visual(self.task_dict[task][split][doc_id]), task, doc_id))
                generation, until = generation_settings(requests[batch[0]].args[1])
                captions, _ = self.captioner.generate_captions(videos, contexts, num_frames=self.num_frames,
                                                               **generation)
                for index, caption in zip(batch, captions):
                    answers[index] = cut_at(caption, until)
                    self.cache_hook.add_partial("generate_until", (requests[index].args[0], requests[index].args[1]),
                                                answers[index])
                progress.update(len(batch))
        progress.close()
        return answers

    @staticmethod
    def _video(visuals, task: str, doc_id: int) -> str:
        """The one video of a doc (FaceTrack-MM takes one video per prompt; images are not its input)."""
        visuals = visuals if isinstance(visuals, (list, tuple)) else [visuals]
        if len(visuals) != 1 or not isinstance(visuals[0], (str, os.PathLike)):
            kinds = [type(visual).__name__ for visual in visuals]
            raise ValueError(f"facetrack: task {task} doc {doc_id} gives {kinds}; FaceTrack-MM takes one video path "
                             "per doc")
        return os.fspath(visuals[0])

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        raise NotImplementedError("facetrack: FaceTrack-MM is evaluated on generation tasks (generate_until) only")

    def generate_until_multi_round(self, requests) -> list[str]:
        raise NotImplementedError("facetrack: multi-round generation is not supported")


def generation_settings(gen_kwargs: dict) -> tuple[dict, list[str]]:
    """lmms-eval's generation_kwargs -> (`generate()` keyword arguments, stop strings). Greedy unless the task asks
    for sampling (`do_sample`, or a temperature above 0)."""
    settings = dict(gen_kwargs)
    until = settings.pop("until", None) or []
    until = [until] if isinstance(until, str) else list(until)
    temperature = float(settings.pop("temperature", 0) or 0)
    do_sample = bool(settings.pop("do_sample", False)) or temperature > 0
    generation = {"max_new_tokens": int(settings.pop("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)), "do_sample": do_sample}
    if do_sample:
        generation["temperature"] = temperature or 1.0
        if settings.get("top_p") is not None:
            generation["top_p"] = float(settings["top_p"])
    if settings.get("num_beams") is not None:
        generation["num_beams"] = int(settings["num_beams"])
    return generation, until


def cut_at(text: str, until: list[str]) -> str:
    """`text` up to the first stop string (lmms-eval's `until`)."""
    for stop in until:
        if stop:
            text = text.split(stop, 1)[0]
    return text.strip()
