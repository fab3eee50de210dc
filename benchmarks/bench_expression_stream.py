"""Does the CPU model's caption follow the clip it is shown? The expression-stream model trained by the quickstart,
on the quickstart's held-out clips (another person than the training clips', as shipped and edited: reversed,
mirrored, slowed), side by side with two references in the same run:

- `model`: the trained model's caption of each clip (greedy), from the folder loaded with trust_remote_code;
- `one caption for all`: the model's caption of the first clip given for every clip (what a model that ignores the
  video scores);
- `measured` (the ceiling): each clip's measured caption itself.

For each: per clip TEM(caption, the same clip's measured caption) against TEM(caption, the other clips' measured
captions), the share of (clip, other clip) pairs where the own clip wins, the number of distinct captions, and for
each reversed clip whether its caption matches the reversed order better than the forward one. Then seconds per
caption and tokens per frame: the stream's against the SigLIP face and global tokens of the other recipes.

Usage (after `facetrack quickstart`, which trains the model and writes the held-out clips and their measured
captions):
    python benchmarks/bench_expression_stream.py [--run quickstart_output] [--batch-size 4]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from facetrack.evaluation.follows_clip import caption_follows_clip, format_follows_clip


def caption_clips(model_dir: str, videos: list[Path], num_frames: int, batch_size: int) -> tuple[list[str], float]:
    """Greedy captions of the videos and the seconds per caption (model loading excluded)."""
    from facetrack.inference.captioner import load_captioner

    captioner = load_captioner(model_dir)
    captions, started = [], time.perf_counter()
    for start in range(0, len(videos), batch_size):
        batch = [str(video) for video in videos[start:start + batch_size]]
        captions += captioner.generate_captions(batch, num_frames=num_frames, max_new_tokens=200)[0]
    return captions, (time.perf_counter() - started) / len(videos)


def tokens_per_frame(model_dir: str) -> list[str]:
    """Prompt tokens one frame costs in this model, against the SigLIP recipes' global and face tokens."""
    from transformers import AutoConfig, AutoProcessor

    config = AutoConfig.from_pretrained(model_dir, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(model_dir, trust_remote_code=True)
    frames = 16  # what the held-out clips are shown at
    text = processor.video_prompt([0.5 * index for index in range(frames)], [True] * frames)
    total = len(processor.tokenizer(text, add_special_tokens=False)["input_ids"])
    visual = config.global_tokens_per_frame + config.face_tokens_per_frame + config.expression_tokens_per_frame
    labels = f", the caption's phase words: {total - visual * frames} tokens a clip" \
        if getattr(processor, "phase_labels", False) else ""
    return [
        f"this model: {total / frames:g} tokens per frame over {frames} frames ({config.global_tokens_per_frame} "
        f"global + {config.face_tokens_per_frame} face + {config.expression_tokens_per_frame} expression{labels}"
        f"{', timestamps' if processor.timestamp_template else ', no timestamps'})",
        "single_gpu_0p5b / paper_7b recipes (SigLIP-so400m): 196 global + 16 face (+ 1 expression with "
        "--expression-tokens 1) per frame",
        "tiny_cpu recipe (a random 32 px SigLIP): 4 global + 4 face + ~7 for the <t=1.5s> timestamp per frame",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="quickstart_output", help="a finished `facetrack quickstart --out` folder")
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    run = Path(args.run)
    stages = run / "stages"
    if not (stages / "train.json").is_file() or not (stages / "held_out.json").is_file():
        # `make bench` runs every benchmark: without a trained model this one says so and stops (no figures).
        print(f"SKIP bench_expression_stream: {run} holds no finished quickstart training; run `make quickstart` "
              f"(or `facetrack quickstart --out {run}`) first")
        return
    from facetrack.quickstart import HELD_OUT_FRAMES

    model_dir = json.loads((stages / "train.json").read_text())["model_dir"]
    clips = json.loads((stages / "clips.json").read_text())
    items = json.loads(Path(json.loads((stages / "held_out.json").read_text())["annotations"]).read_text())
    names = [item["video"] for item in items]
    references = [item["caption"] for item in items]
    videos = [Path(clips["video_root"]) / name for name in names]
    reversed_pairs = [tuple(pair) for pair in clips["reversed_pairs"]]

    captions, seconds = caption_clips(model_dir, videos, HELD_OUT_FRAMES, args.batch_size)
    rows = {"model": captions, "one caption for all": [captions[0]] * len(captions), "measured": references}
    print(f"model: {model_dir}; {len(names)} held-out clips at {HELD_OUT_FRAMES} frames; references: each clip's "
          "measured caption\n")
    summary = []
    for name, predictions in rows.items():
        result = caption_follows_clip(predictions, references, names, reversed_pairs=reversed_pairs)
        print(f"== {name}")
        print("\n".join(format_follows_clip(result)) + "\n")
        summary.append((name, result))
    print(f"{'captions':<22} {'own TEM':>8} {'others':>8} {'pairs won':>10} {'distinct':>9} {'reversed':>9}")
    for name, result in summary:
        reversed_ok = sum(check["follows_order"] for check in result["reversed"])
        print(f"{name:<22} {result['mean_own']:>8.3f} {result['mean_other']:>8.3f} "
              f"{100 * result['win_share']:>9.0f}% {result['distinct_predictions']:>4}/{len(names):<4} "
              f"{reversed_ok:>4}/{len(result['reversed'])}")
    print(f"\nseconds per caption (greedy, batches of {args.batch_size}, up to 200 new tokens, analysis included): "
          f"{seconds:.2f}")
    print("\n".join(tokens_per_frame(model_dir)))


if __name__ == "__main__":
    main()
