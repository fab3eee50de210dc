"""`facetrack convert llava-onevision SRC OUT`: start FaceTrack-MM from an aligned video LLM (LLaVA-OneVision)."""

from __future__ import annotations

import argparse

DTYPES = ("auto", "bfloat16", "float16", "float32")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert another video LLM's checkpoint into a FaceTrack-MM Hub folder",
        description="Convert a checkpoint of another model family into a Hub-layout FaceTrack-MM folder (loadable "
        "with trust_remote_code=True), the starting point of training.",
    )
    sources = parser.add_subparsers(dest="source_family", metavar="FAMILY", required=True)
    llava = sources.add_parser(
        "llava-onevision",
        help="from LLaVA-OneVision / LLaVA-Video (transformers format, e.g. llava-hf/llava-onevision-qwen2-7b-ov-hf)",
        description="Read a LLaVA-OneVision checkpoint (Hub id or folder) and write OUT: its vision tower, LLM and "
        "head; its projector as the video projector and as the start of the face projector; its newline embedding; "
        "the tokenizer with <face> added; the chat template. With --face-tokens 0 the model computes exactly what "
        "LLaVA-OneVision computes for a video. --expression-tokens N adds the expression stream (a fresh projector "
        "over the measured expressions, N tokens per frame).",
    )
    llava.add_argument("src", metavar="SRC", help="LLaVA-OneVision checkpoint: a Hub id or a local folder")
    llava.add_argument("out", metavar="OUT", help="new folder for the FaceTrack-MM Hub repo")
    llava.add_argument("--face-tokens", type=int, default=16, metavar="N",
                       help="face tokens per frame, a perfect square (default 16; 0: no face path)")
    llava.add_argument("--expression-tokens", type=int, default=0, metavar="N",
                       help="expression tokens per frame, projected from the followed person's measured expressions "
                       "(default 0: no expression stream)")
    llava.add_argument("--global-tokens", type=int, default=None, metavar="N",
                       help="global tokens per frame, a perfect square (default: LLaVA-OneVision's, 196 for 384 px)")
    llava.add_argument("--pooling", choices=("bilinear", "average"), default="bilinear",
                       help="how frames are pooled to the global grid (default bilinear, as LLaVA-OneVision)")
    llava.add_argument("--timestamps", action="store_true", help="render <t=1.5s> before each frame (default off)")
    llava.add_argument("--num-frames", type=int, default=32, metavar="N",
                       help="the processor's default frames per video (default 32)")
    llava.add_argument("--dtype", choices=DTYPES, default="auto", help="weights dtype (default: as saved)")
    llava.add_argument("--chat-template", choices=("facetrack", "source"), default="facetrack",
                       help="FaceTrack's ChatML template (default) or the checkpoint's own")
    llava.add_argument("--revision", default=None, help="Hub revision of SRC")
    llava.set_defaults(func=run_llava_onevision)


def run_llava_onevision(args: argparse.Namespace) -> int:
    from facetrack.commands.cli import UserError

    for name, value in (("--face-tokens", args.face_tokens), ("--global-tokens", args.global_tokens),
                        ("--expression-tokens", args.expression_tokens)):
        if value is not None and value < 0:
            raise UserError(f"{name} must be >= 0, got {value}")
    if args.num_frames < 1:
        raise UserError(f"--num-frames must be at least 1, got {args.num_frames}")

    from facetrack.hub.convert_llava_onevision import convert_llava_onevision

    hub_kwargs = {"revision": args.revision} if args.revision else {}
    out = convert_llava_onevision(
        args.src,
        args.out,
        face_tokens_per_frame=args.face_tokens,
        global_tokens_per_frame=args.global_tokens,
        expression_tokens_per_frame=args.expression_tokens,
        video_pooling=args.pooling,
        timestamps=args.timestamps,
        num_frames=args.num_frames,
        dtype=args.dtype,
        chat_template=args.chat_template,
        **hub_kwargs,
    )
    print(f"wrote FaceTrack-MM Hub folder {out}")
    return 0
