"""The operator console: a Starlette app that is just another controller.

It subscribes to the frames PUB and asks the worker over the documented protocol, so whatever
it shows (live tiles, answers, the crops the model saw) is what a controller would get. The
page is plain HTML/JS in `static/`, no build step. Its parts: `guard` (loopback safety),
`watch` (one watcher pushing the worker's and cameras' state and every answer to the tabs as
server-sent events), `cameras` (stale / offline, tiles, boxes), `inspections` (the images of
an answer), `labelling` (recordings) and `link` (requests to the worker).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pnp_vision.capture.subscriber import FrameSubscriber
from pnp_vision.client import NoWorker
from pnp_vision.console.cameras import CameraWatch
from pnp_vision.console.guard import guard_middleware, is_loopback
from pnp_vision.console.inspections import InspectionImages
from pnp_vision.console.labelling import Predictions, Recordings
from pnp_vision.console.link import WorkerLink, new_id
from pnp_vision.console.watch import Hub, Watch, sse
from pnp_vision.errors import BadRequest, ConfigError, PnpVisionError
from pnp_vision.inspect.templates import TemplateSet
from pnp_vision.protocol.requests import InspectRequest, InspectResult, ReloadRequest

STATIC = Path(__file__).with_name("static")
ASK_TIMEOUT_S = 5.0
RELOAD_TIMEOUT_S = 600.0  # a real model takes a while to load; the page shows "reloading"
_CLIENT_ERRORS = {"bad_request", "bad_params", "unknown_template", "unknown_camera"}


@dataclass
class ConsoleConfig:
    requests_endpoint: str
    frames_endpoint: str
    prompts_dir: Path | list[Path]
    recordings_dir: Path
    host: str = "127.0.0.1"
    token: str | None = None
    timeout_s: float = ASK_TIMEOUT_S
    max_frame_age_s: float = 1.0
    security: Any = None  # transport.security.Security when keys_dir is set


def check_exposure(config: ConsoleConfig) -> None:
    """Beyond loopback the console shows cameras and writes labels: never without a token."""
    if not is_loopback(config.host) and not config.token:
        raise ConfigError(
            f"console: binding {config.host} (beyond loopback) needs a token:"
            " --token or the console_token setting (PNP_VISION_CONSOLE_TOKEN)"
        )


class Console:
    """The parts behind the routes."""

    def __init__(self, config: ConsoleConfig) -> None:
        self.config = config
        self.templates = TemplateSet.load(config.prompts_dir)
        self.frames = FrameSubscriber(config.frames_endpoint, security=config.security)
        self.link = WorkerLink(
            config.requests_endpoint, timeout_s=config.timeout_s, security=config.security
        )
        self.hub = Hub()
        self.cameras = CameraWatch(self.frames, self.templates, config.max_frame_age_s)
        self.watch = Watch(self.link, self.frames, self.cameras, self.hub)
        self.predictions = Predictions(self.link, self.model_identity)
        self.recordings = Recordings(config.recordings_dir, self.templates, self.predictions)
        self.images = InspectionImages(self.link)

    def start(self) -> None:
        self.watch.start()

    def stop(self) -> None:
        """End every event stream first (open tabs must not hold the exit), then the threads."""
        self.hub.close()
        self.predictions.stop()
        self.watch.stop()
        self.frames.close(0.3)

    def model_identity(self) -> tuple[str, int] | None:
        status = self.watch.status
        if status is None or status.model.identity is None:
            return None
        return status.model.identity.fingerprint, status.model.identity.generation

    def worker_gone(self) -> PnpVisionError | None:
        """An error to answer at once when the watcher finds no worker (no 5 s wait)."""
        if self.watch.worker_up:
            return None
        state = self.watch.state.get("worker", {})
        return NoWorker(f"the worker is stopped: {state.get('detail') or 'no reply'}")

    # -- worker requests ------------------------------------------------------------------

    def ask(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            request = InspectRequest(
                id=new_id("console"),
                camera=str(body.get("camera")),
                template=str(body.get("template")),
                params={str(k): str(v) for k, v in (body.get("params") or {}).items()},
                deadline_ms=ASK_TIMEOUT_S * 800,
            )
        except ValueError as exc:
            raise BadRequest(f"ask needs camera, template and params: {exc}") from None
        reply = self.link.request(request)
        result = InspectResult.model_validate(reply.result)
        return {
            "id": request.id,
            **result.model_dump(mode="json"),
            "frame": reply.frame.model_dump(mode="json") if reply.frame else None,
        }

    def reload(self) -> dict[str, Any]:
        reply = self.link.request(ReloadRequest(id=new_id("console")), timeout_s=RELOAD_TIMEOUT_S)
        return reply.result or {}

    def templates_listing(self) -> list[dict[str, Any]]:
        """The worker's templates (a reload may have changed them); the console's own when the
        worker is stopped, so the page still works."""
        if self.watch.worker_up:
            with contextlib.suppress(PnpVisionError):
                return self.link.client().templates()
        return [t.model_dump(mode="json") for t in self.templates]


def _error(exc: PnpVisionError) -> JSONResponse:
    code = exc.code.value
    if isinstance(exc, BadRequest | ConfigError) or code in _CLIENT_ERRORS:
        status = 400
    elif code in ("no_worker", "no_reply", "shutting_down", "busy"):
        status = 503
    else:
        status = 502
    return JSONResponse({"error": code, "message": str(exc)}, status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def create_app(config: ConsoleConfig) -> Starlette:
    check_exposure(config)
    console = Console(config)

    async def call(fn: Callable[..., Any], *args: Any) -> Response:
        try:
            result = await run_in_threadpool(fn, *args)
        except PnpVisionError as exc:
            return _error(exc)
        if isinstance(result, Response):
            return result
        return JSONResponse(result)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def favicon(request: Request) -> Response:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    async def events(request: Request) -> Response:
        """Server-sent events: `state` (worker, cameras) and every answered `inspection`."""

        async def stream() -> AsyncIterator[str]:
            queue = console.hub.subscribe()
            try:
                state, backlog = console.watch.snapshot()
                yield "retry: 1000\n\n"
                if state:
                    yield sse("state", state)
                for item in backlog:
                    yield sse("inspection", item)
                while (event := await queue.get()) is not None:
                    yield event
            finally:
                console.hub.unsubscribe(queue)

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    async def templates(request: Request) -> Response:
        return await call(console.templates_listing)

    async def frame(request: Request) -> Response:
        size = request.query_params.get("size", "tile")
        after = request.query_params.get("after")
        if size not in ("tile", "full") or (after is not None and not after.isdigit()):
            return JSONResponse({"error": "bad_request", "message": "size tile|full"}, 400)
        got = await run_in_threadpool(
            console.cameras.jpeg,
            request.path_params["camera"],
            size,
            int(after) if after is not None else None,
        )
        if got is None:
            return JSONResponse({"error": "no_frame", "message": "no frame yet"}, 404)
        data, shown = got
        headers = {
            "Cache-Control": "no-store",
            "X-Seq": str(shown.header.seq),
            "X-Age-Ms": str(round((time.time() - shown.received) * 1000)),
        }
        return Response(data, media_type="image/jpeg", headers=headers)

    async def ask(request: Request) -> Response:
        try:
            body = await _body(request)
        except PnpVisionError as exc:
            return _error(exc)
        if (gone := console.worker_gone()) is not None:
            return _error(gone)
        return await call(console.ask, body)

    async def reload(request: Request) -> Response:
        if (gone := console.worker_gone()) is not None:
            return _error(gone)
        return await call(console.reload)

    def inspection_image(kind: str) -> Callable[[Request], Any]:
        async def route(request: Request) -> Response:
            rid, question = request.path_params["request_id"], request.path_params["question"]
            return await call(getattr(console.images, kind), rid, question)

        return route

    async def recordings(request: Request) -> Response:
        return await call(console.recordings.names)

    async def recording(request: Request) -> Response:
        q = request.query_params
        try:
            params = json.loads(q.get("params") or "{}")
            page, per_page = int(q.get("page", "0")), int(q.get("per_page", "24"))
        except ValueError as exc:
            return _error(BadRequest(f"params (JSON), page and per_page: {exc}"))
        if not isinstance(params, dict):
            return _error(BadRequest("params must be a JSON object"))
        return await call(
            lambda: console.recordings.page(
                request.path_params["name"],
                q.get("template", ""),
                {str(k): str(v) for k, v in params.items()},
                show=q.get("show", "all"),
                scene=q.get("scene", ""),
                page=page,
                per_page=per_page,
            )
        )

    async def recording_view(request: Request) -> Response:
        name, seq = request.path_params["name"], request.path_params["seq"]
        template = request.query_params.get("template", "")

        def run() -> Response:
            data = console.recordings.thumbnail(name, seq, template)
            return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=600"})

        return await call(run)

    async def recording_frame(request: Request) -> Response:
        name, seq = request.path_params["name"], request.path_params["seq"]
        return await call(lambda: FileResponse(console.recordings.frame_file(name, seq)))

    async def label(request: Request) -> Response:
        try:
            body = await _body(request)
        except PnpVisionError as exc:
            return _error(exc)
        return await call(console.recordings.label, request.path_params["name"], body)

    routes = [
        Route("/", index),
        Route("/favicon.ico", favicon),
        Route("/api/events", events),
        Route("/api/templates", templates),
        Route("/api/cameras/{camera}/frame.jpg", frame),
        Route("/api/ask", ask, methods=["POST"]),
        Route("/api/reload", reload, methods=["POST"]),
        Route("/api/inspections/{request_id}/{question:int}/crop.png", inspection_image("crop")),
        Route(
            "/api/inspections/{request_id}/{question:int}/crop.jpg", inspection_image("thumbnail")
        ),
        Route("/api/inspections/{request_id}/{question:int}/frame.jpg", inspection_image("whole")),
        Route("/api/recordings", recordings),
        Route("/api/recordings/{name}", recording),
        Route("/api/recordings/{name}/frames/{seq:int}/view.jpg", recording_view),
        Route("/api/recordings/{name}/frames/{seq:int}/frame", recording_frame),
        Route("/api/recordings/{name}/labels", label, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC)),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        console.start()
        yield
        console.stop()

    app = Starlette(
        routes=routes, middleware=guard_middleware(config.host, config.token), lifespan=lifespan
    )
    app.state.console = console
    return app
