"""The operator console: a Starlette app that is just another controller.

It subscribes to the frames PUB and asks the worker over the documented protocol, so whatever
it shows (live tiles, answers, the crops the model saw) is what a controller would get. The
page is plain HTML/JS in `static/`, no build step; inspections are pushed with server-sent
events. Labels are written with the same store `pnp-vision label` uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pnp_vision.capture.sources import read_index
from pnp_vision.errors import BadRequest, ConfigError, PnpVisionError
from pnp_vision.evaluation.labels import load_labels_if_any, save_labels, with_answer
from pnp_vision.inspect.templates import TemplateSet

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
TILE_WIDTH = 480
_NAME_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


@dataclass
class ConsoleConfig:
    requests_endpoint: str
    frames_endpoint: str
    prompts_dir: Path
    recordings_dir: Path
    host: str = "127.0.0.1"
    token: str | None = None
    timeout_s: float = 5.0
    security: Any = None  # transport.security.Security when keys_dir is set


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(config: ConsoleConfig) -> None:
    """Beyond loopback the console shows cameras and writes labels: never without a token."""
    if not is_loopback(config.host) and not config.token:
        raise ConfigError(
            f"console: binding {config.host} (beyond loopback) needs a token:"
            " --token or PNP_VISION_CONSOLE_TOKEN"
        )


class _TokenGate(BaseHTTPMiddleware):
    """Bearer header, `token` query parameter (the link an operator opens) or the cookie that
    link sets, so the page's own assets, images and event stream pass too. Constant-time."""

    COOKIE = "pnp_console_token"

    def __init__(self, app: Any, token: str | None) -> None:
        super().__init__(app)
        self.token = token

    async def dispatch(self, request: Request, call_next: Any) -> Response:
        if not self.token:
            return await call_next(request)
        query = request.query_params.get("token")
        given = (
            query
            or request.headers.get("authorization", "").removeprefix("Bearer ")
            or request.cookies.get(self.COOKIE, "")
        )
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            log.warning(
                "console refused %s %s: missing or wrong token", request.client, request.url.path
            )
            return JSONResponse({"error": "token required"}, status_code=401)
        response = await call_next(request)
        if query:
            response.set_cookie(self.COOKIE, self.token, httponly=True, samesite="strict")
        return response


class Console:
    """The state behind the routes: one frame subscriber, one serialized worker client."""

    def __init__(self, config: ConsoleConfig) -> None:
        from pnp_vision.capture.subscriber import FrameSubscriber
        from pnp_vision.client import VisionClient

        self.config = config
        self.frames = FrameSubscriber(config.frames_endpoint, security=config.security)
        self._client = VisionClient(
            config.requests_endpoint, config.timeout_s, 0, security=config.security
        )
        self._lock = threading.Lock()  # a VisionClient is one socket: one caller at a time
        self.templates = TemplateSet.load(config.prompts_dir)

    def close(self) -> None:
        self.frames.close()
        self._client.close()

    def ask(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return getattr(self._client, method)(*args, **kwargs)

    # -- cameras --------------------------------------------------------------------------

    def cameras(self) -> list[dict[str, Any]]:
        now = time.time()
        tiles = []
        for name, status in sorted(self.frames.cameras().items()):
            frame = self.frames.latest(name)
            tiles.append(
                {
                    "name": name,
                    "state": status.state if status else None,
                    "fps": status.fps if status else None,
                    "drops": status.drops if status else None,
                    "reconnects": status.reconnects if status else None,
                    "last_error": status.last_error if status else None,
                    "seq": frame.header.seq if frame else None,
                    "age_ms": round((now - frame.header.capture_time) * 1000, 1) if frame else None,
                }
            )
        return tiles

    def tile_jpeg(self, camera: str) -> bytes | None:
        """The latest frame, scaled to the tile, every template's ROI drawn and named."""
        frame = self.frames.latest(camera)
        if frame is None:
            return None
        image = frame.image
        scale = min(1.0, TILE_WIDTH / image.shape[1])
        tile = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        height, width = tile.shape[:2]
        for template in self.templates:
            if template.roi is None and template.view is None:
                continue
            left, top, right, bottom = _box_on(template, width, height)
            cv2.rectangle(tile, (left, top), (right, bottom), (0, 200, 255), 1)
            cv2.putText(
                tile,
                template.name,
                (left + 2, top + 11),
                cv2.FONT_HERSHEY_PLAIN,
                0.8,
                (0, 200, 255),
                1,
            )
        ok, jpeg = cv2.imencode(".jpg", np.ascontiguousarray(tile), [cv2.IMWRITE_JPEG_QUALITY, 80])
        return jpeg.tobytes() if ok else None

    # -- recordings -----------------------------------------------------------------------

    def recording(self, name: str) -> Path:
        if not name or set(name) - _NAME_OK or name.startswith("."):
            raise BadRequest(f"recording name {name!r}: letters, digits, _ . - only")
        folder = self.config.recordings_dir / name
        if not folder.is_dir():
            raise BadRequest(f"no recording {name!r} in {self.config.recordings_dir}")
        return folder

    def recordings(self) -> list[str]:
        root = self.config.recordings_dir
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def recording_view(self, name: str) -> dict[str, Any]:
        folder = self.recording(name)
        labels = {f.seq: f for f in load_labels_if_any(folder)}
        frames = []
        for entry in read_index(folder):
            frame = labels.get(entry.seq)
            frames.append(
                {
                    "seq": entry.seq,
                    "file": entry.file.name,
                    "questions": [q.model_dump() for q in frame.questions] if frame else [],
                }
            )
        return {"name": name, "frames": frames}

    def label(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        folder = self.recording(name)
        try:
            seq, template_name = int(body["seq"]), str(body["template"])
            params = {str(k): str(v) for k, v in (body.get("params") or {}).items()}
            answer = str(body["answer"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BadRequest(f"label needs seq, template, params and answer: {exc}") from exc
        template = self.templates.get(template_name)
        template.render(params)  # checks the parameters
        if answer not in template.answers:
            raise BadRequest(f"{answer!r} is not an answer of {template_name}: {template.answers}")
        entries = {e.seq: e for e in read_index(folder)}
        if seq not in entries:
            raise BadRequest(f"recording {name!r} has no frame {seq}")
        labels = with_answer(
            load_labels_if_any(folder),
            seq=seq,
            file=entries[seq].file.name,
            template=template_name,
            params=params,
            answer=answer,
        )
        save_labels(folder, labels)
        log.info(
            "label recording=%s seq=%d template=%s answer=%s", name, seq, template_name, answer
        )
        return {"seq": seq, "template": template_name, "params": params, "answer": answer}


def _box_on(template: Any, width: int, height: int) -> tuple[int, int, int, int]:
    """The part of a width x height frame the template's view takes (left, top, right, bottom)."""
    if template.view is not None:
        from pnp_vision.inspect.views import view_box

        return view_box((width, height), template.roi, template.view)
    x, y, w, h = template.roi
    return int(x * width), int(y * height), int((x + w) * width), int((y + h) * height)


def _error(exc: PnpVisionError) -> JSONResponse:
    status = (
        400
        if isinstance(exc, BadRequest | ConfigError)
        or exc.code.value in ("bad_request", "bad_params", "unknown_template", "unknown_camera")
        else 502
    )
    return JSONResponse({"error": exc.code.value, "message": str(exc)}, status_code=status)


def create_app(config: ConsoleConfig) -> Starlette:
    check_exposure(config)
    console = Console(config)

    async def call(fn: Any, *args: Any) -> Response:
        try:
            result = await run_in_threadpool(fn, *args)
        except PnpVisionError as exc:
            return _error(exc)
        if isinstance(result, Response):
            return result
        return JSONResponse(result)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def cameras(request: Request) -> Response:
        return await call(console.cameras)

    async def tile(request: Request) -> Response:
        jpeg = await run_in_threadpool(console.tile_jpeg, request.path_params["camera"])
        if jpeg is None:
            return JSONResponse({"error": "no_frame"}, status_code=404)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def status(request: Request) -> Response:
        return await call(lambda: console.ask("status").model_dump(mode="json"))

    async def templates(request: Request) -> Response:
        return await call(console.ask, "templates")

    async def ask(request: Request) -> Response:
        body = await request.json()

        def run() -> dict[str, Any]:
            got = console.ask(
                "inspect",
                str(body.get("camera")),
                str(body.get("template")),
                {str(k): str(v) for k, v in (body.get("params") or {}).items()},
                frame="latest",
            )
            return got.model_dump(mode="json")

        return await call(run)

    async def recent(request: Request) -> Response:
        limit = min(int(request.query_params.get("limit", "20")), 256)
        return await call(lambda: [s.model_dump(mode="json") for s in console.ask("recent", limit)])

    async def crop(request: Request) -> Response:
        rid, question = request.path_params["request_id"], request.path_params["question"]
        return await call(
            lambda: Response(console.ask("crop", rid, question), media_type="image/png")
        )

    async def events(request: Request) -> Response:
        """Server-sent events: every inspection the worker answers, as it is answered."""

        async def stream() -> AsyncIterator[str]:
            after = time.time() - 60
            yield "retry: 1000\n\n"
            while not await request.is_disconnected():
                try:
                    seen = await run_in_threadpool(console.ask, "recent", 50, after)
                except PnpVisionError as exc:
                    yield f"event: worker\ndata: {json.dumps({'error': str(exc)})}\n\n"
                    await asyncio.sleep(2.0)
                    continue
                for item in reversed(seen):
                    after = max(after, item.time)
                    yield f"data: {item.model_dump_json()}\n\n"
                await asyncio.sleep(0.25)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    async def recordings(request: Request) -> Response:
        return await call(console.recordings)

    async def recording(request: Request) -> Response:
        return await call(console.recording_view, request.path_params["name"])

    async def recording_frame(request: Request) -> Response:
        def run() -> Response:
            folder = console.recording(request.path_params["name"])
            files = {e.file.name: e.file for e in read_index(folder)}
            path = files.get(request.path_params["file"])
            if path is None:
                raise BadRequest(f"no frame {request.path_params['file']!r}")
            return FileResponse(path)

        return await call(run)

    async def label(request: Request) -> Response:
        body = await request.json()
        return await call(console.label, request.path_params["name"], body)

    routes = [
        Route("/", index),
        Route("/api/cameras", cameras),
        Route("/api/cameras/{camera}/frame.jpg", tile),
        Route("/api/status", status),
        Route("/api/templates", templates),
        Route("/api/ask", ask, methods=["POST"]),
        Route("/api/recent", recent),
        Route("/api/crop/{request_id}/{question:int}.png", crop),
        Route("/api/events", events),
        Route("/api/recordings", recordings),
        Route("/api/recordings/{name}", recording),
        Route("/api/recordings/{name}/frames/{file}", recording_frame),
        Route("/api/recordings/{name}/labels", label, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC)),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        console.close()

    return Starlette(
        routes=routes,
        middleware=[Middleware(_TokenGate, token=config.token)],
        lifespan=lifespan,
    )
