"""`facetrack export SRC_DIR OUT_DIR [--push REPO_ID]`: write a trained FaceTrack-MM as a complete Hub model repo."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write a FaceTrack-MM checkpoint as a Hub model repo (weights, code, processor, model card)",
        description="Load a FaceTrack-MM model + processor saved with save_pretrained (e.g. a training output) and "
        "write OUT_DIR as a complete Hugging Face model repo: safetensors weights, config.json with auto_map, the "
        "model/processor code copied flat (for trust_remote_code=True), tokenizer files, chat_template.jinja and a "
        "README.md model card. With --push, upload OUT_DIR to the Hub.",
    )
    parser.add_argument("src_dir", metavar="SRC_DIR", help="folder with config.json, model weights and processor files")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder to write the Hub repo to (created if missing)")
    parser.add_argument("--push", metavar="REPO_ID", help="also upload OUT_DIR to this Hub model repo (user/name)")
    parser.add_argument("--private", action="store_true", help="create the Hub repo as private (with --push)")
    parser.add_argument("--license", default="apache-2.0", help="license for the model card (default: apache-2.0)")
    parser.add_argument(
        "--base-model", action="append", default=[], metavar="REPO_ID",
        help="base model named in the model card (repeatable), e.g. google/siglip-so400m-patch14-384",
    )
    parser.add_argument("--card", metavar="README", help="use this Markdown file as the model card instead")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from facetrack.commands.cli import UserError

    src_dir, out_dir = Path(args.src_dir), Path(args.out_dir)
    if not (src_dir / "config.json").is_file():
        raise UserError(f"{src_dir} is not a saved FaceTrack-MM model (no config.json)")
    if not (src_dir / "processor_config.json").is_file():
        raise UserError(f"{src_dir} has no processor_config.json: save the processor next to the model")
    if out_dir.resolve() == src_dir.resolve():
        raise UserError("OUT_DIR must differ from SRC_DIR")
    if args.private and not args.push:
        raise UserError("--private only applies with --push REPO_ID")
    card = None
    if args.card:
        card_path = Path(args.card)
        if not card_path.is_file():
            raise UserError(f"model card file not found: {card_path}")
        card = card_path.read_text()

    from facetrack.hub.upload import push_hub_folder
    from facetrack.hub.folder import save_hub_folder
    from facetrack.model.modeling_facetrack import FaceTrackForConditionalGeneration
    from facetrack.model.processing_facetrack import FaceTrackProcessor

    model = FaceTrackForConditionalGeneration.from_pretrained(src_dir)
    processor = FaceTrackProcessor.from_pretrained(src_dir)
    save_hub_folder(model, processor, out_dir, card=card, license=args.license, base_models=args.base_model or None)
    print(f"wrote Hub repo folder {out_dir}")
    if args.push:
        push_hub_folder(out_dir, args.push, private=args.private)
        print(f"uploaded {out_dir} to https://huggingface.co/{args.push}")
    return 0
