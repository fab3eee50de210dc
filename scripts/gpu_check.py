"""The CUDA check behind scripts/gpu_check.sh: bf16 forward, generate and a few training steps with sdpa attention,
on a tiny FaceTrack-MM (built here) and, when present, on the converted LLaVA-OneVision 0.5B; prints the figures.

    bash scripts/gpu_check.sh                                  # skips with one line where CUDA is unavailable
    python scripts/gpu_check.py --model-0p5b models/facetrack-llava-ov-0.5b --steps 5
    python scripts/gpu_check.py --allow-cpu --steps 2          # the same code path on CPU (what the tests run)

Device and dtype come from the loaded model; inputs follow them (`.to(model.device)`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_0P5B = REPO_ROOT / "models" / "facetrack-llava-ov-0.5b"
VIDEO = REPO_ROOT / "tests" / "media" / "single_face.mp4"
PROMPT = "Please provide a detailed description of the facial appearance attributes and expression changes of the " \
         "character in the video"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def check(name: str, folder: Path, device: str, num_frames: int, steps: int, new_tokens: int) -> dict:
    """Load `folder` in bf16 with sdpa on `device`; time a forward, greedy and beam generation, and `steps` AdamW
    steps (activation checkpointing on, vision tower frozen) on one real clip. Returns the figures."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(
        folder, trust_remote_code=True, dtype=torch.bfloat16, attn_implementation="sdpa"
    ).to(device)
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats(model.device)
    messages = [{"role": "user", "content": [{"type": "video", "path": str(VIDEO)}, {"type": "text", "text": PROMPT}]}]
    inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                           processor_kwargs={"num_frames": num_frames}).to(model.device)
    figures = {"model": name, "device": str(model.device), "dtype": str(model.dtype).replace("torch.", ""),
               "attention": model.config._attn_implementation, "prompt_tokens": int(inputs["input_ids"].shape[1])}

    model.eval()
    with torch.no_grad():
        start = time.perf_counter()
        logits = model(**inputs).logits
        synchronize(model.device)
        figures["forward_s"] = time.perf_counter() - start
        if not torch.isfinite(logits.float()).all():
            raise RuntimeError(f"{name}: non-finite logits in bf16")
        start = time.perf_counter()
        greedy = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
        synchronize(model.device)
        figures["generate_s"] = time.perf_counter() - start
        beams = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                               num_beams=2, return_dict_in_generate=True, output_logits=True)
        reference = model.generate(**inputs, max_new_tokens=1, do_sample=False, return_dict_in_generate=True,
                                   output_logits=True)
    figures["greedy_tokens"] = int(greedy.shape[1] - inputs["input_ids"].shape[1])
    figures["beam_first_step_gap"] = float((beams.logits[0][0] - reference.logits[0][0]).abs().max())

    model.train()
    model.activation_checkpointing_enable()
    for parameter in model.model.vision_tower.parameters():
        parameter.requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    labels = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)
    losses, start = [], time.perf_counter()
    for _ in range(steps):
        loss = model(**inputs, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.detach().item())
    synchronize(model.device)
    figures["train_step_s"] = (time.perf_counter() - start) / max(steps, 1)
    figures["losses"] = [round(value, 4) for value in losses]
    if not all(torch.isfinite(torch.tensor(losses))):
        raise RuntimeError(f"{name}: non-finite training loss {losses}")
    figures["peak_memory_gib"] = peak_memory_gib(model.device)
    return figures


def report(figures: dict) -> None:
    memory = figures["peak_memory_gib"]
    print(
        f"gpu_check: {figures['model']}: {figures['device']} {figures['dtype']} {figures['attention']}, "
        f"{figures['prompt_tokens']} prompt tokens | forward {figures['forward_s']:.3f} s | generate "
        f"{figures['greedy_tokens']} tokens {figures['generate_s']:.3f} s | beam-vs-greedy first-step gap "
        f"{figures['beam_first_step_gap']:.2e} (bf16 rounding) | train step {figures['train_step_s']:.3f} s, losses "
        f"{figures['losses']} | peak memory {'n/a' if memory is None else f'{memory:.2f} GiB'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-0p5b", type=Path, default=DEFAULT_0P5B,
                        help=f"converted LLaVA-OneVision 0.5B folder, checked when present (default {DEFAULT_0P5B})")
    parser.add_argument("--steps", type=int, default=5, help="training steps per model (default 5)")
    parser.add_argument("--frames", type=int, default=8, help="frames of the test clip (default 8)")
    parser.add_argument("--new-tokens", type=int, default=16, help="tokens to generate (default 16)")
    parser.add_argument("--allow-cpu", action="store_true", help="run on CPU when CUDA is unavailable (for tests)")
    args = parser.parse_args(argv)

    if not torch.cuda.is_available():
        if not args.allow_cpu:
            print("gpu_check: SKIP: no CUDA device (torch.cuda.is_available() is False); nothing checked")
            return 0
        device = "cpu"
    else:
        device = "cuda"
    from facetrack.hub.builders import build_tiny_model

    with tempfile.TemporaryDirectory(prefix="facetrack-gpu-check-") as tmp:
        tiny = build_tiny_model(Path(tmp) / "tiny", language_model="random", tokenizer="trained", image_size=64,
                                patch_size=8, global_tokens_per_frame=16, face_tokens_per_frame=4)
        report(check("tiny", tiny, device, args.frames, args.steps, args.new_tokens))
    if args.model_0p5b.is_dir():
        report(check(args.model_0p5b.name, args.model_0p5b, device, args.frames, args.steps, args.new_tokens))
    else:
        print(f"gpu_check: {args.model_0p5b} not found: converted 0.5B not checked (facetrack convert "
              "llava-onevision llava-hf/llava-onevision-qwen2-0.5b-ov-hf models/facetrack-llava-ov-0.5b)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
