"""`pnp-vision keys generate NAME`: CurveZMQ key pairs for servers and controllers."""

from __future__ import annotations

import argparse
from pathlib import Path

from pnp_vision.config import load_settings
from pnp_vision.errors import ConfigError
from pnp_vision.transport.security import AUTHORIZED, SERVER_KEY, generate_keys


def _generate(args: argparse.Namespace) -> int:
    keys_dir = args.dir or load_settings().keys_dir
    if keys_dir is None:
        raise ConfigError("keys generate: give --dir, or set keys_dir (PNP_VISION_KEYS_DIR)")
    public, secret = generate_keys(
        args.name, Path(keys_dir), authorize=not args.no_authorize, force=args.force
    )
    print(f"public key: {public}\nsecret key: {secret}")
    if args.name != SERVER_KEY and not args.no_authorize:
        print(f"authorized: {Path(keys_dir) / AUTHORIZED / public.name}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser("keys", help="CurveZMQ keys for authenticated sockets")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    gen = keys_sub.add_parser(
        "generate", help="make a key pair (NAME 'server' for the servers' own pair)"
    )
    gen.add_argument("name", help="key name: 'server', or a controller's name")
    gen.add_argument("--dir", type=Path, help="key folder (default: keys_dir setting)")
    gen.add_argument(
        "--no-authorize", action="store_true", help="don't add the public key to authorized/"
    )
    gen.add_argument(
        "--force",
        action="store_true",
        help="replace an existing pair (peers holding its old public key are cut off)",
    )
    gen.set_defaults(func=_generate)
