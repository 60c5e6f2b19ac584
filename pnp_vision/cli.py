"""The `pnp-vision` command. Each area registers its own subcommands; this file only dispatches.

Subcommand modules import nothing heavy (mlx, cv2) at import time, so `--help` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from pnp_vision.errors import PnpVisionError

# Each module has `register(subparsers)`, adding parsers whose default `func(args) -> int` runs it.
_COMMAND_MODULES = (
    "pnp_vision.inspect.commands",
    "pnp_vision.capture.commands",
    "pnp_vision.service.commands",
    "pnp_vision.transport.commands",
    "pnp_vision.evaluation.commands",
    "pnp_vision.teach.commands",
    "pnp_vision.console.commands",
    "pnp_vision.devtools.commands",
    "pnp_vision.rig",
)
_HOME_HELP = (
    "the rig folder (config/, cameras/, prompts/, models/): sets PNP_VISION_HOME for this command"
    " and the processes it starts (default: the current directory when it holds config/)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pnp-vision",
        description="Machine vision for pick-and-place rigs: camera capture over ZeroMQ and a "
        "resident vision-language model answering constrained inspection questions.",
    )
    parser.add_argument("--home", type=Path, metavar="DIR", help=_HOME_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    for command in sub.choices.values():  # `pnp-vision worker --home DIR` reads as well
        command.add_argument("--home", type=Path, metavar="DIR", default=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a pnp-vision error is one line `error [code]: ...` and its exit status
    (2, or a start-up code's own: errors.EXIT_CODES, README "Exit codes")."""
    args = build_parser().parse_args(argv)
    if args.home is not None:
        os.environ["PNP_VISION_HOME"] = str(args.home.expanduser().absolute())
    try:
        return int(args.func(args) or 0)
    except PnpVisionError as exc:
        print(f"pnp-vision {args.command}: error [{exc.code.value}]: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
