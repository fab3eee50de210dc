"""`facetrack eval`: run FEC-Bench for any model: caption the test videos (or read predictions) and print the table."""

from __future__ import annotations

import argparse
import os
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a model, an endpoint or a predictions file on FEC-Bench: CIDEr, ROUGE-L, AutoDQ, TEM, BLEU-4, METEOR",
        description=(
            "Caption every FEC-Bench clip (batched, greedy; resumable: ids already in OUT/predictions.jsonl are "
            "skipped), then score the predictions against the reference captions and print a Markdown table in the "
            "paper's column order, with the paper's rows as reference lines. --model takes a FaceTrack-MM model or "
            "any transformers video chat model (LLaVA-OneVision, Qwen2-VL ...: its own processor and chat template); "
            "with --api-base-url, --model names a model served by an OpenAI-compatible endpoint, which gets the "
            "frames as images (as GPT-4o is evaluated). Writes OUT/predictions.jsonl, OUT/results.json and "
            "OUT/results.md. Clips whose video is missing under --video-root are listed, skipped and counted. With "
            "--predictions, existing predictions (JSONL lines {\"id\", \"prediction\"}) are scored without a model."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a FaceTrack-MM or other transformers video chat model (folder or Hub id), or "
                                        "with --api-base-url the model name at that endpoint")
    source.add_argument("--predictions", help="score this predictions JSONL instead of running a model")
    parser.add_argument("--api-base-url", default=None,
                        help="OpenAI-compatible endpoint, e.g. https://api.openai.com/v1 (API key: --api-key-env)")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    parser.add_argument("--image-detail", default="auto", choices=["low", "high", "auto"], help="image detail for the endpoint")
    parser.add_argument("--annotations", required=True, help="FEC-Bench annotations: JSON list of {id, video, caption}")
    parser.add_argument("--video-root", help="folder the annotation video paths are relative to (needed with --model)")
    parser.add_argument("--out", default="results", help="output folder")
    parser.add_argument("--batch-size", type=int, default=1, help="videos captioned per generate() call")
    parser.add_argument("--num-frames", type=int, default=None,
                        help="frames sampled per video (default: FaceTrack-MM's processor setting; 8 for other models)")
    parser.add_argument("--prompt", default=None, help="instruction given with each video (default: the paper's evaluation prompt)")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="longest caption generated")
    parser.add_argument("--limit", type=int, default=None, help="only the first N annotated clips (quick checks)")
    parser.add_argument("--device", default=None, help="e.g. cuda or cpu (default: CUDA when available)")
    parser.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16")
    parser.add_argument("--name", default=None, help="row name in the table (default: the model path or predictions file)")
    parser.add_argument("--tem-extractor", default="rules", choices=["rules", "llm"], help="TEM event extractor")
    parser.add_argument("--tem-relation", default="lexicon", choices=["lexicon", "minilm", "nli", "llm"],
                        help="TEM relation backend")
    parser.add_argument("--tem-llm-protocol", default="autodq", choices=["autodq", "facetrack"],
                        help="prompts of TEM's llm backends: AutoDQ's published ones or our face-specific ones")
    parser.add_argument("--tem-llm-model", default=None, help="LLM for TEM's llm backends: local path, or model name at --tem-llm-base-url")
    parser.add_argument("--tem-llm-base-url", default=None, help="OpenAI-compatible endpoint for TEM's llm backends")
    parser.add_argument("--tem-nli-model", default=None, help="NLI cross-encoder (local path) for --tem-relation nli")
    parser.add_argument("--judge-model", default=None,
                        help="LLM judge for the paper's GPT-judged columns (Correctness, Detail, Context, Temporal): "
                             "a model name at --judge-base-url or a local chat model path; without it they read n/a")
    parser.add_argument("--judge-base-url", default=None, help="OpenAI-compatible endpoint of the judge (API key: $OPENAI_API_KEY)")
    parser.add_argument("--no-chance-row", action="store_true",
                        help="skip the chance row (every metric of another clip's reference, over all the annotations; "
                             "with TEM's llm backends it costs an LLM call per reference, cached)")
    parser.set_defaults(func=run)


def load_any_captioner(args: argparse.Namespace):
    """(captioner, generation record): an endpoint, a FaceTrack-MM model or another transformers video chat model."""
    from facetrack.inference.video_chat_models import OpenAIVideoCaptioner, TransformersVideoCaptioner, model_type_of

    if args.api_base_url:
        captioner = OpenAIVideoCaptioner(args.api_base_url, args.model, api_key=os.environ.get(args.api_key_env),
                                         image_detail=args.image_detail)
        record = {"backend": "openai-compatible", "model": args.model, "base_url": args.api_base_url}
    elif model_type_of(args.model) == "facetrack":
        from facetrack.inference.captioner import load_captioner

        captioner = load_captioner(args.model, device=args.device, dtype=args.dtype)
        record = {"backend": "facetrack", "model": args.model}
    else:
        captioner = TransformersVideoCaptioner.load(args.model, device=args.device, dtype=args.dtype)
        record = {"backend": "transformers", "model": args.model, "model_type": captioner.model.config.model_type,
                  "inputs": "fallback preprocessing" if captioner.fallback else "the model's processor"}
    record["num_frames"] = args.num_frames or getattr(captioner, "default_num_frames", None)
    record["notes"] = list(getattr(captioner, "notes", []))
    for note in record["notes"]:
        print(f"note: {note}", file=sys.stderr)
    return captioner, record


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from facetrack.commands.cli import UserError
    from facetrack.evaluation.errors import BenchmarkError
    from facetrack.evaluation.fec_bench import (
        evaluate_benchmark,
        load_annotations,
        read_predictions,
        split_missing_videos,
    )
    from facetrack.evaluation.generation import generate_predictions
    from facetrack.data.schema import FEC_BENCH_PROMPT

    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.num_frames is not None and args.num_frames < 1:
        raise UserError(f"--num-frames must be at least 1, got {args.num_frames}")
    if args.api_base_url and not args.model:
        raise UserError("--api-base-url needs --model (the model name served at that endpoint)")
    tem_options = {"extractor": args.tem_extractor, "relation": args.tem_relation}
    if "llm" in (args.tem_extractor, args.tem_relation):
        tem_options["llm_protocol"] = args.tem_llm_protocol
    for key, value in (("llm_model", args.tem_llm_model), ("llm_base_url", args.tem_llm_base_url), ("nli_model", args.tem_nli_model)):
        if value:
            tem_options[key] = value
    out_dir = Path(args.out)
    generation = None
    try:
        annotations = load_annotations(args.annotations)
        if args.limit is not None:
            if args.limit < 1:
                raise UserError(f"--limit must be at least 1, got {args.limit}")
            annotations = annotations[: args.limit]
        missing: list[dict] = []
        if args.predictions:
            predictions = read_predictions(args.predictions)
            name = args.name or Path(args.predictions).stem
        else:
            if not args.video_root:
                raise UserError("--video-root is required with --model")
            if not Path(args.video_root).is_dir():
                raise UserError(f"--video-root is not a folder: {args.video_root}")
            present, missing = split_missing_videos(annotations, args.video_root)
            if missing:
                print(f"{len(missing)} of {len(annotations)} videos are missing under {args.video_root} (skipped):", file=sys.stderr)
                for item in missing:
                    print(f"  missing: {item['video']} (id {item['id']})", file=sys.stderr)
            if not present:
                raise UserError(f"none of the {len(annotations)} annotated videos exists under {args.video_root}")
            captioner, generation = load_any_captioner(args)
            model_name = f"{args.api_base_url}#{args.model}" if args.api_base_url else args.model
            predictions, unreadable = generate_predictions(
                captioner, present, args.video_root, out_dir / "predictions.jsonl", model_name=model_name,
                batch_size=args.batch_size, num_frames=args.num_frames, prompt=args.prompt or FEC_BENCH_PROMPT,
                max_new_tokens=args.max_new_tokens,
                progress=lambda done, total: print(f"captioned {done}/{total}", file=sys.stderr),
            )
            for item in unreadable:
                print(f"  unreadable: {item['video']} (id {item['id']}): {item['reason']}", file=sys.stderr)
            missing += unreadable  # listed and counted with the missing videos, never scored
            name = args.name or args.model
        judge = {"judge_model": args.judge_model, "judge_base_url": args.judge_base_url} if args.judge_model else None
        results = evaluate_benchmark(annotations, predictions, name, out_dir, missing=missing, tem_options=tem_options,
                                     judge=judge, generation=generation, chance=not args.no_chance_row)
    except BenchmarkError as error:
        raise UserError(str(error)) from error
    print(results["table"])
    print(f"wrote {out_dir / 'results.md'} and {out_dir / 'results.json'}", file=sys.stderr)
    return 0
