"""Subcommands of the `facetrack` CLI. Each module defines `register(subparsers)`; heavy imports go inside the handler
so that `facetrack --help` stays fast."""
