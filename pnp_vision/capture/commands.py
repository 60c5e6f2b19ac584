"""`pnp-vision capture` and `pnp-vision record`. Heavy imports (cv2) stay inside the functions."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    cap = sub.add_parser(
        "capture",
        help="run the capture daemon (cameras -> ZeroMQ frames + status)",
        description="Publish frames and camera status until SIGINT/SIGTERM.",
    )
    cap.add_argument(
        "--camera",
        action="extend",
        nargs="+",
        metavar="NAME",
        help="capture only these cameras (default: every camera defined)",
    )
    cap.add_argument(
        "--cameras-dir",
        type=Path,
        help="camera definitions: a folder of *.toml or one file (default: settings.cameras_dir)",
    )
    cap.add_argument("--endpoint", help="PUB endpoint to bind (default: settings.frames_endpoint)")
    cap.set_defaults(func=_capture)

    rec = sub.add_parser(
        "record",
        help="record one camera's frames to a folder (PNG + index.jsonl)",
        description="Subscribe to the capture daemon and write the frames of one camera.",
    )
    rec.add_argument("--camera", required=True, metavar="NAME")
    rec.add_argument("--out", required=True, type=Path, metavar="DIR", help="a new folder")
    limit = rec.add_mutually_exclusive_group(required=True)
    limit.add_argument("--frames", type=int, metavar="N")
    limit.add_argument("--seconds", type=float, metavar="S")
    rec.add_argument("--endpoint", help="frames endpoint (default: settings.frames_endpoint)")
    rec.add_argument("--format", choices=("png", "jpeg"), default="png", dest="image_format")
    rec.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for the first frame"
    )
    rec.set_defaults(func=_record)


def _capture(args: argparse.Namespace) -> int:
    from pnp_vision.capture.cameras import load_cameras
    from pnp_vision.capture.daemon import CaptureDaemon
    from pnp_vision.config import load_settings, log_folders
    from pnp_vision.logs import setup_logging

    settings = load_settings()
    setup_logging(settings.log_level)
    log_folders(settings, "cameras")
    cameras = load_cameras(args.cameras_dir or settings.cameras_dir, args.camera)
    from pnp_vision.transport.security import security_from_settings

    security = security_from_settings(settings.keys_dir, settings.client_key)
    daemon = CaptureDaemon(cameras, args.endpoint or settings.frames_endpoint, security=security)
    daemon.run_until_signalled()
    return 0


def _record(args: argparse.Namespace) -> int:
    from pnp_vision.capture.recording import record
    from pnp_vision.config import load_settings
    from pnp_vision.logs import setup_logging
    from pnp_vision.transport.security import security_from_settings

    settings = load_settings()
    setup_logging(settings.log_level)
    stop = threading.Event()
    got: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        got.append(signum)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    count = record(
        args.endpoint or settings.frames_endpoint,
        args.camera,
        args.out,
        frames=args.frames,
        seconds=args.seconds,
        first_frame_timeout_s=args.timeout,
        image_format=args.image_format,
        stop=stop,
        max_message_bytes=settings.max_message_bytes,
        security=security_from_settings(settings.keys_dir, settings.client_key),
        progress=sys.stderr,
    )
    print(f"recorded {count} frames of {args.camera!r} to {args.out}")
    if got and args.frames is not None and count < args.frames:
        # Interrupted before the N frames asked for: what was written is kept, but a script
        # must not take it for a complete recording (128 + the signal, as a shell reports).
        print(f"interrupted after {count} of {args.frames} frames", file=sys.stderr)
        return 128 + got[0]
    return 0
