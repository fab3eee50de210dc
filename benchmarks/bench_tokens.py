"""Visual-token budget of FaceTrack-MM vs a plain per-frame-patch video LLM, and what it does to prefill time.

1. Token counts (paper-scale configs, no model needed): per video of N frames,
   - FaceTrack-MM: N x (global_tokens_per_frame + face_tokens_per_frame) (default 81 + 16 = 97 per frame),
   - baseline: N x 729 (every SigLIP-so400m-384 patch of every frame, as a LLaVA-style model without pooling).
2. Prefill time (a small random configuration with the real token counts: a 2-layer width-32 SigLIP at 384 px /
   14 px patches = 729 patches per frame, and a 4-layer width-256 Qwen2): one forward pass over the prompt for
   FaceTrack-MM (frames + face crops through the encoder, 97 visual tokens per frame) and for the baseline (frames
   only, 729 tokens per frame), median of `--repeats` runs; the ratio is baseline / FaceTrack-MM.

Usage: python benchmarks/bench_tokens.py [--frames 8 16 32] [--time-frames 8 16] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from facetrack.model.configuration_facetrack import FaceTrackConfig
from facetrack.model.modeling_facetrack import FaceTrackForConditionalGeneration

VIDEO_TOKEN_ID, FACE_TOKEN_ID = 998, 999
PROMPT_TEXT_TOKENS = 40  # a short instruction around the video


def token_counts(num_frames: int, config: FaceTrackConfig) -> tuple[int, int]:
    facetrack = num_frames * (config.global_tokens_per_frame + config.face_tokens_per_frame)
    baseline = num_frames * config.patch_grid_side**2
    return facetrack, baseline


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
    parser.add_argument("--time-frames", type=int, nargs="+", default=[8, 16], help="frame counts to time")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    paper = FaceTrackConfig()
    per_frame = paper.global_tokens_per_frame + paper.face_tokens_per_frame
    print(f"Visual tokens per video (SigLIP so400m-384: {paper.patch_grid_side**2} patches/frame; FaceTrack-MM: "
          f"{paper.global_tokens_per_frame} global + {paper.face_tokens_per_frame} face = {per_frame}/frame)")
    print(f"{'frames':>6} | {'FaceTrack-MM':>12} | {'baseline':>9} | {'reduction':>9}")
    for num_frames in args.frames:
        facetrack, baseline = token_counts(num_frames, paper)
        print(f"{num_frames:>6} | {facetrack:>12} | {baseline:>9} | {baseline / facetrack:>8.1f}x")

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
