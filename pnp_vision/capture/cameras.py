"""Camera definitions: `cameras/*.toml`, each file a list of ``[[camera]]`` tables.

A definition says what to open (``source``), how to shape the frames (size, rotation, ROI) and
put them on the wire (encoding), and how hard to try when the camera misbehaves (timeouts,
backoff). Relative paths in ``source`` are taken from the folder of the file that names them, so
``cameras/demo.toml`` can point at ``../recordings/demo`` wherever the repository lives.
"""

from __future__ import annotations

import re
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, model_validator

from pnp_vision.config import StrictModel
from pnp_vision.errors import ConfigError, FolderNotFound, UnknownCamera
from pnp_vision.protocol.frames import CAMERA_NAME_PATTERN, Encoding

_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


class SourceKind(StrEnum):
    DEVICE = "device"  # a device index (0) or a device path (/dev/video0)
    FILE = "file"  # a video file OpenCV can read
    STREAM = "stream"  # an http(s)/rtsp/rtmp/udp URL
    RECORDING = "recording"  # a folder written by `pnp-vision record` or the synthetic generator


class Pacing(StrEnum):
    RECORDED = "recorded"  # the gaps between recorded capture times (file: its frame rate)
    FIXED = "fixed"  # `fps` frames per second
    DRAIN = "drain"  # as fast as the publisher hand-off takes them (never dropped by us)


class Flip(StrEnum):
    NONE = "none"
    HORIZONTAL = "horizontal"
    VERTICAL = "vertical"
    BOTH = "both"


class Backoff(StrictModel):
    initial_s: float = Field(0.5, gt=0, le=60, description="First wait before reopening.")
    max_s: float = Field(10.0, gt=0, le=600, description="Longest wait between reopen attempts.")
    factor: float = Field(2.0, ge=1, le=10, description="Wait multiplier after each failure.")

    def delay(self, failures: int) -> float:
        """Wait before attempt ``failures + 1`` (``failures`` >= 1)."""
        return min(self.max_s, self.initial_s * self.factor ** max(0, failures - 1))


class CameraConfig(StrictModel):
    name: str = Field(min_length=1, max_length=64, pattern=CAMERA_NAME_PATTERN)
    source: int | str = Field(
        description="Device index or path, video file, stream URL, or recording folder."
    )
    kind: SourceKind | None = Field(None, description="Omit to infer it from `source`.")
    backend: Literal["any", "ffmpeg", "v4l2", "gstreamer", "dshow", "msmf", "avfoundation"] = Field(
        "any", description="OpenCV video I/O backend to ask for."
    )
    width: int | None = Field(None, ge=1, le=16384, description="Requested capture width.")
    height: int | None = Field(None, ge=1, le=16384, description="Requested capture height.")
    fps: float | None = Field(
        None, gt=0, le=1000, description="Requested capture rate; the replay rate for `fixed`."
    )
    fourcc: str | None = Field(
        None, pattern=r"^[A-Za-z0-9 ]{4}$", description="Requested pixel format, e.g. MJPG."
    )
    rotate: Literal[0, 90, 180, 270] = Field(0, description="Clockwise rotation in degrees.")
    flip: Flip = Flip.NONE
    roi: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=4, max_length=4)] | None = (
        Field(None, description="[x, y, width, height] crop after rotate/flip.")
    )
    encoding: Encoding = Encoding.RAW_BGR8
    jpeg_quality: int = Field(90, ge=1, le=100)
    png_compression: int = Field(1, ge=0, le=9)
    loop: bool = Field(False, description="Files and recordings: start over at the end.")
    pacing: Pacing = Pacing.RECORDED
    open_timeout_s: float = Field(5.0, gt=0, le=120, description="OpenCV open timeout.")
    read_timeout_s: float = Field(5.0, gt=0, le=120, description="OpenCV read timeout.")
    stall_timeout_s: float = Field(
        3.0, gt=0, le=600, description="No frame for this long: the camera is reopened."
    )
    backoff: Backoff = Field(default_factory=Backoff)
    max_reconnects: int | None = Field(
        None, ge=0, description="Give up (state `failed`) after this many failed reopens in a row."
    )

    @model_validator(mode="after")
    def _check(self) -> CameraConfig:
        if (self.width is None) != (self.height is None):
            raise ValueError("give both `width` and `height`, or neither")
        if self.roi is not None and (self.roi[2] == 0 or self.roi[3] == 0):
            raise ValueError(f"roi {self.roi} has a zero width or height")
        if self.pacing is Pacing.FIXED and self.fps is None:
            raise ValueError("pacing = 'fixed' needs `fps`")
        if self.kind is SourceKind.DEVICE and isinstance(self.source, str):
            if not self.source.startswith("/dev/"):
                raise ValueError(f"device source {self.source!r} is neither an index nor /dev/...")
        elif self.kind not in (None, SourceKind.DEVICE) and not isinstance(self.source, str):
            raise ValueError(f"{self.kind.value} source must be a string, not {self.source!r}")
        return self

    @property
    def source_kind(self) -> SourceKind:
        """The declared kind, or the one ``source`` looks like."""
        if self.kind is not None:
            return self.kind
        src = self.source
        if isinstance(src, int) or src.startswith("/dev/"):
            return SourceKind.DEVICE
        if _URL.match(src):
            return SourceKind.STREAM
        if Path(src).is_dir():
            return SourceKind.RECORDING
        return SourceKind.FILE

    @property
    def is_live(self) -> bool:
        """Live sources are grabbed continuously; files and recordings are read on demand."""
        return self.source_kind in (SourceKind.DEVICE, SourceKind.STREAM)

    def describe(self) -> str:
        """The source for logs and status, without credentials in a URL."""
        src = str(self.source)
        return re.sub(r"://[^/@]*@", "://***@", src)


class _CameraFile(StrictModel):
    camera: list[CameraConfig] = Field(min_length=1)


def _resolve(raw: dict, base: Path) -> dict:
    source = raw.get("source")
    if isinstance(source, str) and not _URL.match(source) and not source.startswith("/dev/"):
        path = Path(source).expanduser()
        raw = {**raw, "source": str(path if path.is_absolute() else (base / path).resolve())}
    return raw


def load_camera_file(path: Path) -> list[CameraConfig]:
    """One file's cameras; any problem is a ConfigError naming the file and the bad value."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read camera definitions: {exc}") from exc
    tables = data.get("camera")
    if isinstance(tables, list):
        data = {**data, "camera": [_resolve(t, Path(path).parent) for t in tables]}
    try:
        return _CameraFile.model_validate(data).camera
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})"
            for err in exc.errors()
        )
        raise ConfigError(f"{path}: invalid camera definition: {problems}") from exc


def load_cameras(path: Path | list[Path], names: list[str] | None = None) -> list[CameraConfig]:
    """Cameras from a file or every ``*.toml`` in a folder, optionally only ``names``.

    Several files or folders (the shipped cameras, then a rig folder's): a later one's camera
    replaces an earlier one of the same name."""
    places = [Path(p) for p in path] if isinstance(path, list) else [Path(path)]
    cameras: dict[str, CameraConfig] = {}
    for place in places:
        cameras.update(_load_place(place))
    where = ", ".join(str(p) for p in places)
    if names:
        missing = [n for n in names if n not in cameras]
        if missing:
            raise UnknownCamera(
                f"unknown camera(s) {missing} in {where!r}; defined: {sorted(cameras)}"
            )
        return [cameras[n] for n in names]
    if not cameras:
        raise ConfigError(f"no camera definitions in {where!r}")
    return list(cameras.values())


def _load_place(path: Path) -> dict[str, CameraConfig]:
    if path.is_dir():
        files = sorted(path.glob("*.toml"))
    elif path.is_file():
        files = [path]
    else:
        raise FolderNotFound(f"camera definitions {str(path)!r}: no such file or folder")
    cameras: dict[str, CameraConfig] = {}
    for file in files:
        for cam in load_camera_file(file):
            if cam.name in cameras:
                raise ConfigError(f"{file}: camera {cam.name!r} is defined twice")
            cameras[cam.name] = cam
    return cameras
