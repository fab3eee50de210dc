"""The command-line options that choose whose face to follow, shared by `facetrack track` and `facetrack describe`."""

from __future__ import annotations

import argparse


def add_person_arguments(parser: argparse.ArgumentParser) -> None:
    """--person ID | --person-box X1,Y1,X2,Y2@T | --person-image PHOTO (at most one)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--person", default=None, metavar="ID",
                       help="follow this person instead of the main character: an id from a previous run's JSON "
                       "(persons are numbered by first appearance; stable for the same video, frames and settings)")
    group.add_argument("--person-box", default=None, metavar="X1,Y1,X2,Y2@T",
                       help="follow the person whose face is at this box (video pixels) at time T seconds")
    group.add_argument("--person-image", default=None, metavar="PHOTO",
                       help="follow the person who looks most like the face in this photo (needs dlib)")


def target_from_args(args: argparse.Namespace):
    """The `PersonTarget` the options ask for, or None; a bad value is a one-line `UserError`."""
    from facetrack.commands.cli import UserError
    from facetrack.faces.selection import parse_target

    try:
        if args.person is not None:
            if not str(args.person).strip().isdigit():
                raise ValueError(f"--person takes a person id (a whole number), got {args.person!r}")
            return parse_target(int(args.person))
        if args.person_box is not None:
            if "@" not in args.person_box:
                raise ValueError(f"--person-box takes X1,Y1,X2,Y2@T (pixels, seconds), got {args.person_box!r}")
            return parse_target(args.person_box)
        if args.person_image is not None:
            return parse_target({"image": args.person_image})
    except ValueError as error:
        raise UserError(str(error)) from error
    return None
