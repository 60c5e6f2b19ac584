"""The one error hierarchy of pnp-vision.

Every failure that can reach a controller carries an :class:`ErrorCode` from a small fixed set,
so a machine can branch on it and a person can act on the message::

    PnpVisionError (code)
    ├── BadRequest          bad_request        malformed message, wrong types, unknown fields
    │   └── ImageError      bad_request        corrupt, empty or unreadable image
    ├── UnknownTemplate     unknown_template
    ├── Unfamiliar          unfamiliar         the view looks like nothing the template was
    │                                          trained on (only with refuse_unfamiliar)
    ├── BadParams           bad_params         a template parameter outside its declared type
    ├── UnknownCamera       unknown_camera
    ├── NoFrame             no_frame           no (fresh enough) frame within the deadline
    ├── Busy                busy               the request queue is full
    ├── DeadlineExceeded    deadline_exceeded
    ├── ModelError          model_error        the model failed, or could not be loaded
    │   └── ModelLoadError  model_error        missing folder/files, unsupported architecture
    ├── ShuttingDown        shutting_down
    ├── Internal            internal
    └── ConfigError         bad_request        a camera, template or settings file is invalid

Third-party errors (cv2, zmq, mlx) are translated at one boundary with ``raise ... from exc``.
A failure is never turned into an answer: a machine reading ``NO`` acts on it.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"
    UNKNOWN_TEMPLATE = "unknown_template"
    UNFAMILIAR = "unfamiliar"
    BAD_PARAMS = "bad_params"
    UNKNOWN_CAMERA = "unknown_camera"
    NO_FRAME = "no_frame"
    BUSY = "busy"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    MODEL_ERROR = "model_error"
    SHUTTING_DOWN = "shutting_down"
    INTERNAL = "internal"


class ClientCode(StrEnum):
    """Codes only the client raises, about the link itself; never sent by the worker."""

    NO_WORKER = "no_worker"  # no worker completed a handshake at the endpoint (or it refused us)
    NO_REPLY = "no_reply"  # connected, but no reply to the request after every try


class PnpVisionError(Exception):
    """Base of every pnp-vision error; ``code`` is what goes on the wire."""

    code: ErrorCode | ClientCode = ErrorCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadRequest(PnpVisionError):
    code = ErrorCode.BAD_REQUEST


class ImageError(BadRequest):
    """An image that cannot be decoded, is empty, or is cropped to nothing."""


class ConfigError(BadRequest):
    """A camera, template or settings file that fails validation."""


class UnknownTemplate(PnpVisionError):
    code = ErrorCode.UNKNOWN_TEMPLATE


class Unfamiliar(PnpVisionError):
    """`refuse_unfamiliar`: the view is unlike the template's training views (familiarity)."""

    code = ErrorCode.UNFAMILIAR


class BadParams(PnpVisionError):
    code = ErrorCode.BAD_PARAMS


class UnknownCamera(PnpVisionError):
    code = ErrorCode.UNKNOWN_CAMERA


class NoFrame(PnpVisionError):
    code = ErrorCode.NO_FRAME


class Busy(PnpVisionError):
    code = ErrorCode.BUSY


class DeadlineExceeded(PnpVisionError):
    code = ErrorCode.DEADLINE_EXCEEDED


class ModelError(PnpVisionError):
    code = ErrorCode.MODEL_ERROR


class ModelLoadError(ModelError):
    """A model folder that is missing, incomplete, or of an unsupported architecture."""


class ShuttingDown(PnpVisionError):
    code = ErrorCode.SHUTTING_DOWN


class Internal(PnpVisionError):
    code = ErrorCode.INTERNAL


_BY_CODE: dict[ErrorCode, type[PnpVisionError]] = {
    ErrorCode.BAD_REQUEST: BadRequest,
    ErrorCode.UNKNOWN_TEMPLATE: UnknownTemplate,
    ErrorCode.BAD_PARAMS: BadParams,
    ErrorCode.UNKNOWN_CAMERA: UnknownCamera,
    ErrorCode.NO_FRAME: NoFrame,
    ErrorCode.BUSY: Busy,
    ErrorCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    ErrorCode.MODEL_ERROR: ModelError,
    ErrorCode.SHUTTING_DOWN: ShuttingDown,
    ErrorCode.INTERNAL: Internal,
}


def error_for_code(code: ErrorCode | str, message: str) -> PnpVisionError:
    """Rebuild the typed exception for a code received on the wire (client side)."""
    try:
        cls = _BY_CODE[ErrorCode(code)]
    except ValueError:
        cls = Internal
        message = f"unknown error code {code!r}: {message}"
    return cls(message)
