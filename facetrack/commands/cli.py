"""The `facetrack` command line: one subcommand per module in `facetrack/commands/` (COMMANDS)."""

from __future__ import annotations

import argparse
import importlib
import sys

from facetrack import __version__

# One module of this folder per subcommand, each with `register(subparsers)`.
COMMANDS = ("track", "describe", "dataset", "train", "export", "convert", "eval", "quickstart")


class UserError(Exception):
    """An error caused by the user's input: printed as one readable line, exit code 2, no traceback."""


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse prints a command's whole usage (dozens of lines) before a bad value's message; one line naming the
    argument and the problem is enough. Subcommand parsers are made of the same class."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="facetrack",
        description="FaceTrack-MM: follow the main character's face through a video and describe how "
        "their facial expression changes.",
    )
    parser.add_argument("--version", action="version", version=f"facetrack {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Each command's `register(subparsers)` adds its parser and sets `func` to the module's `run(args)`
    # (`run_<subcommand>` for commands with subcommands: `dataset build`, `convert ...`).
    for name in sorted(COMMANDS):
        importlib.import_module(f"facetrack.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except (UserError, OSError, ValueError) as error:
        # Expected, user-caused failures (bad arguments, unreadable or unwritable paths): one line naming the
        # problem, no traceback.
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"facetrack {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"facetrack {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
