"""The `pnp-vision` command. Each area registers its own subcommands; this file only dispatches.

Subcommand modules import nothing heavy (mlx, cv2) at import time, so `--help` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

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
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pnp-vision",
        description="Machine vision for pick-and-place rigs: camera capture over ZeroMQ and a "
        "resident vision-language model answering constrained inspection questions.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PnpVisionError as exc:
        print(f"pnp-vision {args.command}: error [{exc.code.value}]: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
