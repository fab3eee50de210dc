"""Training-memory arithmetic of the recipes (facetrack/training/recipes/paper_7b.yaml and single_gpu_0p5b.yaml),
written down.

Parameters are counted exactly (the converted models built on the meta device from the LLaVA-OneVision
architectures); everything else is arithmetic on them and on the recipe's frames, batch and sequence length, so
these are ESTIMATES (no GPU here): `bash scripts/gpu_check.sh` prints the measured peak on a CUDA machine.

Per GPU, in GiB:
- model states: weights (2 B/param bf16, or 4 B fp32), gradients of the trainable parameters (same width), AdamW
  states (m and v in fp32, 8 B) and, with DeepSpeed's bf16 optimizer, an fp32 master copy (4 B): 16 B per trainable
  parameter either way, plus 2 or 4 B per frozen one. ZeRO-3 divides all of it by the GPU count. LoRA: the frozen
  base in bf16 (2 B) and the adapters + trained projector copies in fp32 (peft's default, 16 B).
- activations with activation checkpointing: the input of every decoder layer kept (s x h per layer), one layer's
  internals while it is recomputed (s x (6h + 2 h_kv + 3 i), bf16), and the trained projectors' activations over all
  patches (LLaVA-OneVision's order projects every patch before pooling: images x 729 x 3 x D, bf16), plus the
  expression projector's per frame (hidden D and output E x D, bf16: a few MiB).
- the expression stream (`facetrack convert llava-onevision --expression-tokens E`; the recipes describe E = 1):
  E tokens per frame in the sequence, and its projector's parameters N x D + D x E x D (N = the feature set's size),
  trained like the other projectors.
- logits and loss: s x V logits, at most 16 B each (bf16 logits, the loss's fp32 copy and log-softmax, the fp32 and
  bf16 gradients). With a ~152k vocabulary this is the largest activation term at these sequence lengths.
- the frozen vision tower's forward (no grad): transient, images x 729 x (4 w + i_v) x 2 B.
CUDA context and allocator slack (1-3 GiB) come on top.

Usage: python benchmarks/bench_memory.py [--gpus 8] [--answer-tokens 200] [--expression-tokens 1]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from facetrack.expressions.features import EXPRESSION_FEATURES
from facetrack.model.configuration_facetrack import FaceTrackConfig
from facetrack.model.modeling_facetrack import FaceTrackForConditionalGeneration

RECIPES_DIR = Path(__file__).resolve().parents[1] / "facetrack" / "training" / "recipes"
GiB = 2**30
PROMPT_TOKENS = 40  # the instruction and chat markers around the video
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

# SigLIP-so400m-patch14-384 as LLaVA-OneVision ships it: the last of its 27 layers removed (feature layer -1).
SIGLIP_26 = {"model_type": "siglip_vision_model", "hidden_size": 1152, "intermediate_size": 4304,
             "num_hidden_layers": 26, "num_attention_heads": 16, "patch_size": 14, "image_size": 384,
             "vision_use_head": False}
# The Qwen2 LLMs of llava-onevision-qwen2-{0.5b,7b}-ov-hf (embedding rows ~152k; a few rows more or less between
# checkpoints change the totals by < 0.1 %).
LLMS = {
    "0.5b": {"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
             "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 152000, "tie_word_embeddings": True},
    "7b": {"model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
           "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152128, "tie_word_embeddings": False},
}


@dataclass
class Recipe:
    name: str
    llm: str
    recipe_file: str
    gpus: int
    lora: bool = False
    expression_tokens: int = 1  # the recipes convert with --expression-tokens 1


def converted_config(llm: str, expression_tokens: int = 0) -> FaceTrackConfig:
    """`facetrack convert llava-onevision --expression-tokens E` with its other defaults: 196 global + 16 face
    (+ E expression) tokens per frame."""
    stream = {"expression_tokens_per_frame": expression_tokens, "expression_features": EXPRESSION_FEATURES,
              "expression_token_id": 151649} if expression_tokens else {}
    return FaceTrackConfig(vision_config=dict(SIGLIP_26), text_config=dict(LLMS[llm]), global_tokens_per_frame=196,
                           face_tokens_per_frame=16, video_pooling="bilinear", projector_before_pooling=True,
                           video_newline=True, vision_feature_layer=-1,
                           tie_word_embeddings=LLMS[llm]["tie_word_embeddings"], **stream)


def parameter_counts(config: FaceTrackConfig) -> dict[str, int]:
    with torch.device("meta"):
        model = FaceTrackForConditionalGeneration(config)
    counts = {"vision": 0, "projectors": 0, "expression": 0, "llm": 0}
    for name, parameter in model.named_parameters():  # a tied head is counted once
        part = "vision" if "vision_tower" in name else "llm" if ("language_model" in name or name == "lm_head.weight") \
            else "expression" if "expression" in name else "projectors"
        counts[part] += parameter.numel()
    return counts


def lora_parameters(text: dict, rank: int) -> int:
    h, i = text["hidden_size"], text["intermediate_size"]
    kv = text["num_key_value_heads"] * h // text["num_attention_heads"]
    shapes = {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
              "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}
    return text["num_hidden_layers"] * sum(rank * (fan_in + fan_out) for fan_in, fan_out in shapes.values())


def estimate(recipe: Recipe, answer_tokens: int) -> dict:
    settings = yaml.safe_load((RECIPES_DIR / recipe.recipe_file).read_text())
    config = converted_config(recipe.llm, recipe.expression_tokens)
    text = LLMS[recipe.llm]
    counts = parameter_counts(config)
    frames, batch = settings["num_frames"], settings["per_device_train_batch_size"]
    seq = min(settings["max_length"], frames * config.tokens_per_frame() + 1 + PROMPT_TOKENS + answer_tokens)
    h, i, layers, vocab = text["hidden_size"], text["intermediate_size"], text["num_hidden_layers"], text["vocab_size"]
    kv = text["num_key_value_heads"] * h // text["num_attention_heads"]
    fp32_weights = settings.get("dtype") == "float32"
    trainable = counts["llm"] + counts["projectors"] + counts["expression"]

    if recipe.lora:
        adapters = lora_parameters(text, settings.get("lora_r", 16)) + counts["projectors"] + counts["expression"]
        states = 2 * sum(counts.values()) + 16 * adapters
        trainable = adapters
    else:
        weight_bytes = 4 if fp32_weights else 2
        states = 16 * trainable + weight_bytes * counts["vision"]
    states /= recipe.gpus  # ZeRO-3 partitions weights, gradients and optimizer states

    residual_bytes = 4 if fp32_weights and not recipe.lora else 2
    images = 2 * frames  # frames + face crops (at most one per frame)
    patches = config.patch_grid_side**2
    layer_inputs = batch * layers * seq * h * residual_bytes
    recompute = batch * seq * (6 * h + 2 * kv + 3 * i) * 2
    projector = batch * images * patches * 3 * h * 2 + batch * frames * (1 + config.expression_tokens_per_frame) * h * 2
    logits = batch * seq * vocab * 16
    vision = images * patches * (4 * SIGLIP_26["hidden_size"] + SIGLIP_26["intermediate_size"]) * 2
    total = states + layer_inputs + recompute + projector + logits + vision
    return {
        "recipe": recipe.name, "params": counts, "trainable": trainable, "seq": seq, "batch": batch,
        "expression_tokens": frames * config.expression_tokens_per_frame,
        "frames": frames, "gpus": recipe.gpus, "states": states / GiB, "layer_inputs": layer_inputs / GiB,
        "recompute": recompute / GiB, "projector": projector / GiB, "logits": logits / GiB, "vision": vision / GiB,
        "total": total / GiB,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpus", type=int, default=8, help="GPUs of the ZeRO-3 run of paper_7b (default 8)")
    parser.add_argument("--answer-tokens", type=int, default=200, help="caption tokens per sample (default 200)")
    parser.add_argument("--expression-tokens", type=int, default=1,
                        help="expression tokens per frame of the converted models (default 1, as the recipes; 0: none)")
    args = parser.parse_args()
    tokens = args.expression_tokens
    recipes = [
        Recipe(f"paper_7b: full, ZeRO-3 over {args.gpus} GPUs", "7b", "paper_7b.yaml", args.gpus,
               expression_tokens=tokens),
        Recipe("paper_7b: full, ZeRO-3 over 4 GPUs", "7b", "paper_7b.yaml", 4, expression_tokens=tokens),
        Recipe("single_gpu_0p5b: full", "0.5b", "single_gpu_0p5b.yaml", 1, expression_tokens=tokens),
        Recipe("single_gpu_0p5b: LoRA r=16 (--use_peft true --dtype bfloat16)", "0.5b", "single_gpu_0p5b.yaml", 1,
               lora=True, expression_tokens=tokens),
    ]
    print("| recipe | params vision / projectors / expression / LLM (M) | trainable (M) | frames x batch, tokens "
          "(of which expression) | model states | layer inputs | 1 layer recompute | projectors | logits + loss "
          "| vision fwd | total (GiB) |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for recipe in recipes:
        row = estimate(recipe, args.answer_tokens)
        params = row["params"]
        print(f"| {row['recipe']} | {params['vision'] / 1e6:.0f} / {params['projectors'] / 1e6:.1f} / "
              f"{params['expression'] / 1e6:.2f} / {params['llm'] / 1e6:.0f} | {row['trainable'] / 1e6:.1f} | "
              f"{row['frames']} x {row['batch']}, {row['seq']} ({row['expression_tokens']}) | {row['states']:.1f} | "
              f"{row['layer_inputs']:.1f} | {row['recompute']:.1f} | {row['projector']:.1f} | {row['logits']:.1f} | "
              f"{row['vision']:.1f} | {row['total']:.1f} |")
    print()
    print("What the expression stream costs, per E (expression tokens per frame)")
    print("| LLM | E | expression projector + no-expression embedding (M) | tokens at 16 / 32 frames "
          "| model states, full fine-tuning (GiB, 16 B per parameter) |")
    print("|---|---:|---:|---|---:|")
    for llm in ("0.5b", "7b"):
        for tokens in (1, 4):
            count = parameter_counts(converted_config(llm, tokens))["expression"]
            print(f"| {llm} | {tokens} | {count / 1e6:.2f} | {16 * tokens} / {32 * tokens} | {16 * count / GiB:.2f} |")


if __name__ == "__main__":
    main()
