"""`facetrack train`: instruction tuning with TRL's SFTTrainer (the same entry point as `python train_sft.py`)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="instruction-tune FaceTrack-MM with TRL's SFTTrainer (same as python train_sft.py)",
        description=(
            "Instruction-tune FaceTrack-MM on a dataset built by `facetrack dataset build`: "
            "facetrack train --config tiny_cpu [--key value ...]. `facetrack train --help` lists every "
            "recipe key (script, model and TRL SFTConfig arguments)."
        ),
        # Every argument, --config and --help included, belongs to the recipe parser (TRL's TrlParser in
        # facetrack.training.run); a prefix other than "-" makes argparse hand them over untouched.
        prefix_chars="+",
        add_help=False,
    )
    parser.add_argument("recipe_args", nargs="*", help="--config RECIPE.yaml and/or --key value flags")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from facetrack.commands.cli import UserError
    from facetrack.training.config import TrainingSetupError
    from facetrack.training.run import main

    try:
        return main(list(args.recipe_args))
    except TrainingSetupError as error:
        raise UserError(str(error)) from error
