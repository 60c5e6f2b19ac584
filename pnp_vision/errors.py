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
    │   └── ModelLoadError  model_error        missing files, unsupported architecture
    │       └── ModelNotFound       model_not_found *   no model folder where model_dir points
    ├── ShuttingDown        shutting_down
    ├── Internal            internal
    └── ConfigError         config_error *     a settings, camera or template file is invalid
        ├── FolderNotFound  folder_not_found * a folder named by --home or a setting is missing
        ├── FolderNotEmpty  folder_not_empty * `init` never writes over an existing folder
        └── AddressInUse    address_in_use *   a port the worker or capture binds is taken

``*``: a start-up code (:class:`StartupCode`): what stops a command or a service from starting,
never a request's fault. The CLI prints it and exits with its own status (`EXIT_CODES`, README
"Exit codes"). Should one happen while a request is answered (a reload re-reading a broken
template), the reply carries ``wire_code``: ``bad_request`` or ``model_error`` as it always did,
so the codes on the wire (docs/protocol.md) stay the fixed set above.

Third-party errors (cv2, zmq, mlx) are translated at one boundary with ``raise ... from exc``.
A failure is never turned into an answer: a machine reading ``NO`` acts on it.
"""

from __future__ import annotations

import errno
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


class StartupCode(StrEnum):
    """Codes of what stops a command or service from starting; never sent by the worker."""

    CONFIG_ERROR = "config_error"
    FOLDER_NOT_FOUND = "folder_not_found"
    FOLDER_NOT_EMPTY = "folder_not_empty"
    MODEL_NOT_FOUND = "model_not_found"
    ADDRESS_IN_USE = "address_in_use"


# The `pnp-vision` exit status per code (README "Exit codes"); any other error exits 2.
EXIT_CODES: dict[StartupCode, int] = {
    StartupCode.CONFIG_ERROR: 3,
    StartupCode.FOLDER_NOT_FOUND: 4,
    StartupCode.FOLDER_NOT_EMPTY: 5,
    StartupCode.MODEL_NOT_FOUND: 6,
    StartupCode.ADDRESS_IN_USE: 7,
}


class PnpVisionError(Exception):
    """Base of every pnp-vision error; ``code`` names it, ``wire_code`` is what a reply carries
    (the same code, except for start-up errors met while answering a request)."""

    code: ErrorCode | ClientCode | StartupCode = ErrorCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    @property
    def wire_code(self) -> ErrorCode:
        return self.code if isinstance(self.code, ErrorCode) else ErrorCode.BAD_REQUEST

    @property
    def exit_code(self) -> int:
        """The `pnp-vision` exit status this error ends a command with."""
        return EXIT_CODES.get(self.code, 2) if isinstance(self.code, StartupCode) else 2


class BadRequest(PnpVisionError):
    code = ErrorCode.BAD_REQUEST


class ImageError(BadRequest):
    """An image that cannot be decoded, is empty, or is cropped to nothing."""


class ConfigError(PnpVisionError):
    """A setting, or a camera, template or settings file, that fails validation."""

    code = StartupCode.CONFIG_ERROR


class FolderNotFound(ConfigError):
    """A folder named by `--home`, an environment variable or a setting that does not exist."""

    code = StartupCode.FOLDER_NOT_FOUND


class FolderNotEmpty(ConfigError):
    """`pnp-vision init DIR` on a folder that already holds something."""

    code = StartupCode.FOLDER_NOT_EMPTY


class AddressInUse(ConfigError):
    """An endpoint the worker or the capture daemon binds is taken by another process."""

    code = StartupCode.ADDRESS_IN_USE


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


class ModelNotFound(ModelLoadError):
    """No model folder where `model_dir` points (`model_error` if met during a reload)."""

    code = StartupCode.MODEL_NOT_FOUND

    @property
    def wire_code(self) -> ErrorCode:
        return ErrorCode.MODEL_ERROR


class ShuttingDown(PnpVisionError):
    code = ErrorCode.SHUTTING_DOWN


class Internal(PnpVisionError):
    code = ErrorCode.INTERNAL


_BY_CODE: dict[ErrorCode, type[PnpVisionError]] = {
    ErrorCode.BAD_REQUEST: BadRequest,
    ErrorCode.UNKNOWN_TEMPLATE: UnknownTemplate,
    ErrorCode.UNFAMILIAR: Unfamiliar,
    ErrorCode.BAD_PARAMS: BadParams,
    ErrorCode.UNKNOWN_CAMERA: UnknownCamera,
    ErrorCode.NO_FRAME: NoFrame,
    ErrorCode.BUSY: Busy,
    ErrorCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    ErrorCode.MODEL_ERROR: ModelError,
    ErrorCode.SHUTTING_DOWN: ShuttingDown,
    ErrorCode.INTERNAL: Internal,
}


def bind_failed(setting: str, endpoint: str, exc: BaseException) -> ConfigError:
    """The one translation of a failed bind (zmq or socket): a taken port is `address_in_use`,
    anything else (a malformed endpoint, no such interface, a missing key) `config_error`."""
    if getattr(exc, "errno", None) == errno.EADDRINUSE:
        return AddressInUse(
            f"cannot bind {setting} {endpoint}: address already in use (another worker or capture"
            f" daemon running? set {setting} or PNP_VISION_{setting.upper()} to a free one)"
        )
    return ConfigError(f"cannot bind {setting} {endpoint}: {exc}")


def error_for_code(code: ErrorCode | str, message: str) -> PnpVisionError:
    """Rebuild the typed exception for a code received on the wire (client side)."""
    try:
        cls = _BY_CODE[ErrorCode(code)]
    except ValueError:
        cls = Internal
        message = f"unknown error code {code!r}: {message}"
    return cls(message)
