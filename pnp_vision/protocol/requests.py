"""Controller requests to the worker and the worker's replies (see docs/protocol.md).

Request, multipart, as the worker's ROUTER receives it after the peer identity:

    DEALER client:  [request JSON]                 or [request JSON, image bytes]
    REQ client:     [b"", request JSON]            or [b"", request JSON, image bytes]

Reply: the same envelope, then one JSON frame. Every reply names the request id (null only when
none could be read), says `ok`, and carries either `result` or `error {code, message}`, plus the
frame the answer was computed on. Requests are parsed in strict mode: `"5"` is not a number and
an unknown field is an error, so a controller's typo is reported instead of silently ignored.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError, field_validator, model_validator

from pnp_vision.errors import BadRequest, ErrorCode, Internal, PnpVisionError
from pnp_vision.protocol.base import StrictModel
from pnp_vision.protocol.frames import PROTOCOL_VERSION
from pnp_vision.protocol.wire_json import load_json, printable, top_level_string

MAX_QUESTIONS = 16
MAX_JSON_BYTES = 64 * 1024  # the request JSON frame; the image frame has max_request_bytes
MAX_REPLY_BYTES = 64 * 1024 * 1024
MAX_DEADLINE_MS = 3_600_000
MAX_RECENT = 256  # inspections a worker keeps for `recent` and `crop`
_NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"

MAX_SEQ = 2**63 - 1  # sequence numbers fit a signed 64-bit integer in every language
# Printable: an id is echoed in one-line logs, where a newline or NUL would forge or cut a line.
_MAX_ID_CHARS = 128
RequestId = Annotated[
    str, Field(min_length=1, max_length=_MAX_ID_CHARS, pattern=r"^[^\x00-\x1f\x7f]+$")
]
CameraName = Annotated[str, Field(min_length=1, max_length=64, pattern=_NAME_PATTERN)]
TemplateName = Annotated[str, Field(min_length=1, max_length=64, pattern=_NAME_PATTERN)]
Params = Annotated[dict[str, Annotated[str, Field(max_length=256)]], Field(max_length=16)]


class RequestKind(StrEnum):
    INSPECT = "inspect"
    STATUS = "status"
    TEMPLATES = "templates"
    PING = "ping"
    RECENT = "recent"
    CROP = "crop"
    RELOAD = "reload"
    OUTCOME = "outcome"


class FrameChoice(StrEnum):
    """Which camera frame an inspection uses."""

    LATEST = "latest"  # the newest held frame, if not older than max_age_ms
    FRESH = "fresh"  # the first frame captured after the request arrived (machine just moved)
    SEQ = "seq"  # the frame with this sequence number, if still held


class _Request(StrictModel):
    version: int = Field(PROTOCOL_VERSION, description="Protocol version the client speaks.")
    id: RequestId = Field(description="Client-chosen id, echoed in the reply; reuse it on retry.")

    @field_validator("version")
    @classmethod
    def _supported(cls, value: int) -> int:
        if value != PROTOCOL_VERSION:
            raise ValueError(f"protocol version {value} is not supported (this side speaks 1)")
        return value


class QuestionSpec(StrictModel):
    """One templated question; the worker checks template and params against prompts/*.toml."""

    template: TemplateName
    params: Params = Field(default_factory=dict)


class InspectRequest(_Request):
    kind: Literal["inspect"] = "inspect"
    camera: CameraName | None = Field(
        None, description="Camera to take the frame from; only a label when image is true."
    )
    image: bool = Field(
        False, description="True: PNG/JPEG bytes follow as the second frame and are inspected."
    )
    template: TemplateName | None = Field(None, description="Shorthand for one question.")
    params: Params | None = Field(None, description="Parameters of `template`.")
    questions: (
        Annotated[list[QuestionSpec], Field(min_length=1, max_length=MAX_QUESTIONS)] | None
    ) = Field(None, description="Several questions answered on the same frame.")
    frame: FrameChoice = FrameChoice.LATEST
    max_age_ms: float | None = Field(
        None, gt=0, le=MAX_DEADLINE_MS, description="For frame=latest; default max_frame_age_s."
    )
    seq: int | None = Field(
        None, ge=0, le=MAX_SEQ, description="For frame=seq: the sequence number."
    )
    deadline_ms: float | None = Field(
        None,
        gt=0,
        le=MAX_DEADLINE_MS,
        description="Time from arrival after which the request is answered deadline_exceeded.",
    )
    roi: tuple[int, int, int, int] | None = Field(
        None, description="Crop [x, y, width, height] in pixels before the model sees the frame."
    )
    keep: bool = Field(
        True,
        description="False: not kept for `recent`, `crop` and `outcome` (a labelling tool's own "
        "checks of recorded frames must not push the line's inspections out of the history).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> InspectRequest:
        if (self.template is None) == (self.questions is None):
            raise ValueError("give either `template` (with `params`) or `questions`, not both")
        if self.params is not None and self.template is None:
            raise ValueError("`params` belongs to `template`; inside `questions` use their params")
        if not self.image and self.camera is None:
            raise ValueError("`camera` is required unless an image is sent (`image`: true)")
        if self.image and (self.frame is not FrameChoice.LATEST or self.max_age_ms is not None):
            raise ValueError("`frame` and `max_age_ms` choose a camera frame; not with an image")
        if (self.seq is not None) != (self.frame is FrameChoice.SEQ):
            raise ValueError("`seq` is required with frame='seq' and allowed only with it")
        if self.max_age_ms is not None and self.frame is not FrameChoice.LATEST:
            raise ValueError("`max_age_ms` applies to frame='latest' only")
        if self.roi is not None and (min(self.roi) < 0 or self.roi[2] < 1 or self.roi[3] < 1):
            raise ValueError(f"roi {list(self.roi)} must be [x>=0, y>=0, width>=1, height>=1]")
        return self

    def question_list(self) -> list[QuestionSpec]:
        if self.questions is not None:
            return list(self.questions)
        assert self.template is not None  # guaranteed by _consistent
        return [QuestionSpec(template=self.template, params=self.params or {})]


class StatusRequest(_Request):
    kind: Literal["status"] = "status"


class TemplatesRequest(_Request):
    kind: Literal["templates"] = "templates"


class PingRequest(_Request):
    kind: Literal["ping"] = "ping"


class RecentRequest(_Request):
    """The worker's latest answered inspections (newest first), from any controller."""

    kind: Literal["recent"] = "recent"
    limit: int = Field(20, ge=1, le=MAX_RECENT, description="At most this many inspections.")
    after: float | None = Field(None, description="Only those answered after this Unix time.")


class CropRequest(_Request):
    """The exact image the model saw for one question of a recent inspection."""

    kind: Literal["crop"] = "crop"
    request: RequestId = Field(description="The id of the inspect request.")
    question: int = Field(0, ge=0, lt=MAX_QUESTIONS, description="Index in its questions.")
    whole: bool = Field(
        False,
        description="True: the whole frame (or image) the question was asked on, with `box`, "
        "the part of it the model saw.",
    )


class ReloadRequest(_Request):
    """Load the model folder, adapters and templates again (settings re-read); answered once
    the new set has passed its self-check and replaced the old, or failed and the old stays."""

    kind: Literal["reload"] = "reload"


class Outcome(StrictModel):
    """What the machine later observed for one question of an inspection: its true answer."""

    question: int = Field(0, ge=0, lt=MAX_QUESTIONS, description="Index in its questions.")
    answer: TemplateName = Field(description="One of the template's answers.")


class OutcomeRequest(_Request):
    """Label a recent inspection's frame with observed outcomes (written to outcomes_dir)."""

    kind: Literal["outcome"] = "outcome"
    request: RequestId = Field(description="The id of the inspect request.")
    outcomes: Annotated[list[Outcome], Field(min_length=1, max_length=MAX_QUESTIONS)] = Field(
        description="One true answer per question labelled."
    )


AnyRequest = (
    InspectRequest
    | StatusRequest
    | TemplatesRequest
    | PingRequest
    | RecentRequest
    | CropRequest
    | ReloadRequest
    | OutcomeRequest
)
Request = Annotated[AnyRequest, Field(discriminator="kind")]
_REQUEST = TypeAdapter(Request)


# ---------------------------------------------------------------------------------------------
# Replies


class ErrorInfo(StrictModel):
    code: ErrorCode
    message: str


class FrameUsed(StrictModel):
    """The frame an answer was computed on, so a controller can check it is the one it meant."""

    source: Literal["camera", "image"]
    camera: str | None = None
    session: str | None = None
    seq: int | None = None
    capture_time: float | None = Field(None, description="Unix time (s) the frame was grabbed.")
    age_ms: float | None = Field(None, description="Frame age when the worker picked it.")
    source_seq: int | None = Field(
        None, description="Replayed frames: the frame's seq in the recording (its labels)."
    )


class Reply(StrictModel):
    version: int = PROTOCOL_VERSION
    id: str | None
    ok: bool
    result: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    frame: FrameUsed | None = None

    @model_validator(mode="after")
    def _result_xor_error(self) -> Reply:
        if self.ok != (self.error is None) or self.ok != (self.result is not None):
            raise ValueError("a reply has `result` when ok and `error` when not, never both")
        return self


class AnswerTimings(StrictModel):
    prep_ms: float
    vision_ms: float
    language_ms: float
    total_ms: float


class QuestionResult(StrictModel):
    """One answered question; mirrors the engine's InspectionResult on the wire."""

    template: str
    params: dict[str, str]
    question: str
    answer: str
    probabilities: dict[str, float]
    confident: bool
    trained: bool | None = None  # False: the model folder did not learn this template
    familiar: bool | None = None  # False: the view is unlike the template's training views
    familiarity: float | None = None  # the view's score / the fitted threshold (<= 1 familiar)
    timings: AnswerTimings
    adapter: str | None = Field(
        None,
        description="The adapter that answered (its folder: a LoRA adapter from the settings,"
        " or a taught template's own weights in the model folder); null: the bare base.",
    )


class ModelIdentity(StrictModel):
    """Which loaded model answered: a reload changes `generation` (and path/fingerprint when
    the folder changed), so a controller can tell old answers from new ones."""

    path: str = Field(description="The model folder.")
    fingerprint: str = Field(description="config.json + weight file names and sizes, short.")
    generation: int = Field(description="1 at start, +1 per successful reload.")


class ServiceTimings(StrictModel):
    queue_ms: float = Field(description="From arrival until the model thread took it.")
    frame_wait_ms: float = Field(description="Part of the above spent waiting for the frame.")
    inference_ms: float = Field(description="The engine call (all questions together).")
    total_ms: float = Field(description="From arrival until the reply was handed to the socket.")
    batch: int = Field(
        1, ge=1, description="Requests the model answered in the same passes (this one included)."
    )


class InspectResult(StrictModel):
    results: list[QuestionResult]
    timings: ServiceTimings
    model: ModelIdentity | None = Field(None, description="The model that answered.")


class ModelStatus(StrictModel):
    state: Literal["loading", "ready", "failed"]
    path: str
    info: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    identity: ModelIdentity | None = Field(None, description="Set once the model is ready.")
    adapters: dict[str, str] = Field(
        default_factory=dict,
        description="Adapter routes: `template:NAME` / `camera:NAME` -> folder.",
    )


class ReloadStatus(StrictModel):
    """The latest reload: running now, or how the last one ended."""

    state: Literal["loading", "ok", "failed"]
    generation: int = Field(description="The generation it loads or loaded.")
    started: float = Field(description="Unix time it began.")
    load_s: float | None = Field(None, description="Load + self-check time, once ended.")
    error: str | None = Field(None, description="Why it failed; the old model kept answering.")


class ReloadResult(StrictModel):
    model: ModelIdentity
    load_s: float = Field(description="Load, warm-up and self-check of the new set.")
    templates: list[str]
    adapters: dict[str, str]
    checked: list[str] = Field(description="Templates the self-check inspected.")


class OutcomeResult(StrictModel):
    recording: str = Field(description="The outcomes_dir recording the frame was written to.")
    seq: int = Field(description="Frame seq in that recording (its labels line).")
    file: str
    labelled: int = Field(description="Questions labelled by this request.")


class QueueStatus(StrictModel):
    capacity: int
    depth: int = Field(description="Requests waiting for the model thread.")
    waiting_for_frame: int = Field(description="Admitted requests still waiting for their frame.")
    in_flight: int


class CameraView(StrictModel):
    state: str | None = Field(None, description="From the capture daemon's status; None if unseen.")
    fps: float | None = None
    frames: int | None = None
    drops: int | None = None
    reconnects: int | None = None
    last_error: str | None = None
    session: str | None = None
    last_seq: int | None = Field(None, description="Newest frame held by the worker.")
    frame_age_ms: float | None = Field(None, description="Age of that frame now.")


class FoldersRead(StrictModel):
    """Where the worker read its site's files (the lookup: README "Configuration")."""

    home: str | None = Field(description="The rig folder; null: the package's defaults only.")
    found_by: Literal["PNP_VISION_HOME", "current directory", "none"] = Field(
        description="How the rig folder was found (`--home` sets PNP_VISION_HOME)."
    )
    config: str | None = Field(description="The folder whose *.toml settings were read.")
    prompts: list[str] = Field(description="Template folders, later ones winning by name.")


class TemplateCounts(StrictModel):
    """One template's questions since the worker started: what a console shows per check."""

    answered: int = Field(0, description="Questions answered (in ok replies).")
    errors: dict[str, int] = Field(default_factory=dict, description="Error replies by code.")
    p50_ms: float | None = Field(None, description="Median reply time of the latest answers.")
    p95_ms: float | None = Field(None, description="95th percentile of the same.")
    unfamiliar: dict[str, int] = Field(
        default_factory=dict,
        description="Answers whose view the model found unfamiliar (familiar: false), by camera "
        "('' for inline images): a rig whose look drifted shows here.",
    )


class StatusResult(StrictModel):
    uptime_s: float
    ready: bool
    draining: bool
    model: ModelStatus
    queue: QueueStatus
    cameras: dict[str, CameraView]
    counters: dict[str, int]
    errors: dict[str, int]
    endpoints: dict[str, str]
    reload: ReloadStatus | None = Field(None, description="The latest reload, if any.")
    min_confidence: float | None = Field(None, description="The confidence bar (setting).")
    templates: dict[str, TemplateCounts] = Field(
        default_factory=dict, description="Per template: answers, errors and reply times."
    )
    folders: FoldersRead | None = Field(None, description="Where the settings were read.")


class TemplatesResult(StrictModel):
    templates: list[dict[str, Any]]


class PingResult(StrictModel):
    time: float
    uptime_s: float


class SeenAnswer(StrictModel):
    template: str
    params: dict[str, str]
    answer: str
    probability: float = Field(description="Probability of `answer`.")
    confident: bool
    trained: bool | None = None  # as in the inspect reply
    familiar: bool | None = None  # as in the inspect reply


class SeenInspection(StrictModel):
    """One answered inspection as the worker saw it: what a console shows."""

    id: str
    time: float = Field(description="Unix time the reply was sent.")
    camera: str | None
    frame: FrameUsed | None
    answers: list[SeenAnswer]
    total_ms: float


class RecentResult(StrictModel):
    inspections: list[SeenInspection]


class CropResult(StrictModel):
    request: str
    question: int
    template: str
    width: int
    height: int
    png_base64: str = Field(description="The crop as PNG, base64 (RFC 4648).")
    box: tuple[int, int, int, int] | None = Field(
        None,
        description="With `whole`: [left, top, right, bottom], pixels of the image, of the "
        "part the model saw (before it was fitted to its view size or pixel budget).",
    )


# ---------------------------------------------------------------------------------------------
# Framing


def encode_request(request: _Request, image: bytes | None = None) -> list[bytes]:
    frames = [request.model_dump_json(exclude_none=True).encode()]
    if image is not None:
        frames.append(image)
    return frames


def peek_id(raw: bytes) -> str | None:
    """Best-effort id of a message that failed, so its error reply can name it.

    A message the safe parser reads gives its `id` if that is a valid one. One it cannot read
    (over 64 KiB, a number beyond a double, nesting too deep, a lone surrogate, not UTF-8...) is
    never parsed: a bounded scan of its first 64 KiB takes the top-level `"id"` only when it is
    a plain printable string (`wire_json.top_level_string`). Either way the id echoed encodes
    and fits one log line.
    """
    try:
        obj = load_json(raw, what="request", max_bytes=MAX_JSON_BYTES)
    except BadRequest:
        return top_level_string(raw, "id", max_chars=_MAX_ID_CHARS, scan_bytes=MAX_JSON_BYTES)
    if isinstance(obj, dict):
        value = obj.get("id")
        printable = isinstance(value, str) and value.isprintable()
        if printable and 0 < len(value) <= _MAX_ID_CHARS:
            return value
    return None


def describe_validation(exc: ValidationError, limit: int = 3) -> str:
    """`questions.0.template: Field required; ...`: short enough for a log line and a reply."""
    parts = []
    for err in exc.errors()[:limit]:
        loc_parts = list(err["loc"])
        if loc_parts and loc_parts[0] in RequestKind._value2member_map_:
            loc_parts = loc_parts[1:]  # the union tag, already named by the message prefix
        loc = ".".join(str(p) for p in loc_parts)
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def decode_request(
    body: list[bytes], max_json_bytes: int = MAX_JSON_BYTES
) -> tuple[AnyRequest, bytes | None]:
    """Parse the frames after the envelope. Raises BadRequest naming what is wrong."""
    if not body:
        raise BadRequest("empty message: expected a request JSON frame")
    raw = body[0]
    obj = load_json(raw, what="request JSON", max_bytes=max_json_bytes)
    if not isinstance(obj, dict):
        raise BadRequest(f"request must be a JSON object, got {type(obj).__name__}")
    try:
        request = _REQUEST.validate_json(raw, strict=True)
    except ValidationError as exc:
        what = printable(str(obj.get("kind", "request")), 32)
        raise BadRequest(printable(f"invalid {what}: {describe_validation(exc)}", 1000)) from None
    wants_image = isinstance(request, InspectRequest) and request.image
    if len(body) > 2 or (len(body) == 2 and not wants_image):
        raise BadRequest(
            f"{len(body)} frames after the envelope; expected 1 (JSON), or 2 when `image` is true"
        )
    if wants_image and len(body) < 2:
        raise BadRequest("`image` is true but the image frame (PNG/JPEG bytes) is missing")
    image = body[1] if wants_image else None
    if image is not None and not image:
        raise BadRequest("the image frame is empty")
    return request, image


def ok_reply(request_id: str, result: StrictModel, frame: FrameUsed | None = None) -> Reply:
    return Reply(id=request_id, ok=True, result=result.model_dump(mode="json"), frame=frame)


def error_reply(
    request_id: str | None,
    error: PnpVisionError | ErrorCode,
    message: str | None = None,
    frame: FrameUsed | None = None,
) -> Reply:
    code = error if isinstance(error, ErrorCode) else error.wire_code
    text = message if message is not None else str(error)
    return Reply(id=request_id, ok=False, error=ErrorInfo(code=code, message=text), frame=frame)


def encode_reply(reply: Reply) -> bytes:
    return reply.model_dump_json().encode()


def decode_reply(raw: bytes) -> Reply:
    """Client side. Raises Internal if the worker's reply is not a protocol message."""
    try:
        load_json(raw, what="reply", max_bytes=MAX_REPLY_BYTES, max_string_chars=MAX_REPLY_BYTES)
        return Reply.model_validate_json(raw)
    except BadRequest as exc:
        raise Internal(f"malformed reply from the worker: {exc}") from exc
    except ValidationError as exc:
        raise Internal(f"malformed reply from the worker: {describe_validation(exc)}") from exc
