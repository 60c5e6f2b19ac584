"""`pnp-vision console`: the browser console, its own process, a controller like any other."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

# Open tabs hold event streams that never end by themselves, and uvicorn waits for open
# connections before it stops: they are ended as the signal arrives, and any other request is
# given at most this long.
GRACE_S = 1


def serve(app: Any, host: str, port: int, on_exit: Callable[[], None]) -> None:
    """uvicorn, with SIGTERM / Ctrl-C also calling `on_exit` (which ends the event streams)."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            on_exit()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=GRACE_S
    )
    Server(config).run()


def _console(args: argparse.Namespace) -> int:
    from pnp_vision.config import PROJECT_ROOT, load_settings
    from pnp_vision.console.server import ConsoleConfig, create_app
    from pnp_vision.logs import setup_logging
    from pnp_vision.transport.security import security_from_settings

    settings = load_settings()
    setup_logging(settings.log_level)
    config = ConsoleConfig(
        requests_endpoint=args.endpoint or settings.requests_endpoint,
        frames_endpoint=args.frames_endpoint or settings.frames_endpoint,
        prompts_dir=args.prompts or settings.prompts_dir,
        recordings_dir=args.recordings or PROJECT_ROOT / "recordings",
        host=args.host,
        token=args.token or settings.console_token or None,
        max_frame_age_s=settings.max_frame_age_s,
        security=security_from_settings(settings.keys_dir, settings.client_key),
    )
    app = create_app(config)  # refuses beyond loopback without a token, before binding
    print(f"console on http://{args.host}:{args.port}/", flush=True)
    serve(app, args.host, args.port, on_exit=app.state.console.hub.close)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "console",
        help="operator console in the browser: live cameras, answers, crops, labels",
        description=(
            "Serve the operator console (default http://127.0.0.1:8080). It reads the frames"
            " PUB and asks the worker over the documented protocol, like any controller."
            " Beyond loopback it requires a token (--token, or the console_token setting:"
            " PNP_VISION_CONSOLE_TOKEN)."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--token", help="required on every request (default: none on loopback)")
    p.add_argument("--endpoint", help="worker requests endpoint (default: settings)")
    p.add_argument("--frames-endpoint", help="capture frames endpoint (default: settings)")
    p.add_argument("--prompts", type=Path, help="template folder (default: settings)")
    p.add_argument("--recordings", type=Path, help="folder of recordings to browse and label")
    p.set_defaults(func=_console)
