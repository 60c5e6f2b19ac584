"""Where frames come from: OpenCV (devices, files, network streams) and recording folders.

A source is opened, read frame by frame, and closed by one thread. It reports trouble by raising
:class:`SourceError`, an internal signal to the camera's watchdog that never leaves the daemon
(it ends up as ``last_error`` in the camera's status), so it is not part of the wire hierarchy.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from pnp_vision.capture.cameras import CameraConfig, SourceKind
from pnp_vision.capture.codec import as_bgr
from pnp_vision.logs import kv

log = logging.getLogger(__name__)

_BACKENDS = {
    "any": cv2.CAP_ANY,
    "ffmpeg": cv2.CAP_FFMPEG,
    "v4l2": cv2.CAP_V4L2,
    "gstreamer": cv2.CAP_GSTREAMER,
    "dshow": cv2.CAP_DSHOW,
    "msmf": cv2.CAP_MSMF,
    "avfoundation": cv2.CAP_AVFOUNDATION,
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class SourceError(Exception):
    """A camera fault. ``permanent``: retrying cannot help (missing file, empty recording)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Grabbed:
    """One frame as read, before rotation/ROI/encoding."""

    image: np.ndarray
    capture_time: float
    pts: float | None = None  # seconds on the source's own clock, for pacing replays
    source_seq: int | None = None
    source_time: float | None = None


class Source(Protocol):
    def open(self) -> None: ...

    def read(self) -> Grabbed | None:
        """The next frame; None at the end of a file or recording. Raises SourceError."""
        ...

    def close(self) -> None: ...


class OpenCVSource:
    """cv2.VideoCapture with the camera's requested format and bounded open/read timeouts."""

    def __init__(self, cam: CameraConfig) -> None:
        self.cam = cam
        self._cap: cv2.VideoCapture | None = None
        self._index = 0
        self._fps = 0.0

    def open(self) -> None:
        cam, kind = self.cam, self.cam.source_kind
        if kind is SourceKind.FILE and not Path(str(cam.source)).is_file():
            raise SourceError(f"video file {cam.describe()!r} does not exist", permanent=True)
        api = _BACKENDS[cam.backend]
        if kind is SourceKind.STREAM and api == cv2.CAP_ANY:
            api = cv2.CAP_FFMPEG  # the backend that honours the timeouts below
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(cam.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(cam.read_timeout_s * 1000),
        ]
        if kind is SourceKind.DEVICE:
            params = []  # V4L2 rejects unknown params; a device read does not block for long
        try:
            cap = cv2.VideoCapture(cam.source, api, params)
        except cv2.error as exc:
            raise SourceError(f"cannot open {cam.describe()!r}: {exc}") from exc
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {cam.describe()!r} ({kind.value})")
        if kind is SourceKind.DEVICE:
            self._configure_device(cap)
        self._cap, self._index = cap, 0
        self._fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        log.info(
            "opened %s",
            kv(camera=cam.name, source=cam.describe(), backend=cap.getBackendName(),
               width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
               height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), fps=self._fps),
        )  # fmt: skip

    def _configure_device(self, cap: cv2.VideoCapture) -> None:
        cam = self.cam
        if cam.fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*cam.fourcc))
        if cam.width and cam.height:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, cam.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cam.height)
        if cam.fps:
            cap.set(cv2.CAP_PROP_FPS, cam.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # fewer queued frames; the grab loop does the rest

    def read(self) -> Grabbed | None:
        if self._cap is None:
            raise SourceError(f"{self.cam.describe()!r} is not open")
        try:
            ok, image = self._cap.read()
        except cv2.error as exc:
            raise SourceError(f"read from {self.cam.describe()!r} failed: {exc}") from exc
        now = time.time()
        if not ok or image is None:
            if self.cam.source_kind is SourceKind.FILE:
                return None
            raise SourceError(f"{self.cam.describe()!r} stopped delivering frames")
        index = self._index
        self._index += 1
        pts = index / self._fps if self._fps > 0 else None
        return Grabbed(as_bgr(image), now, pts=pts, source_seq=index)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


@dataclass(frozen=True)
class RecordedEntry:
    file: Path
    seq: int
    capture_time: float | None


def read_index(folder: Path) -> list[RecordedEntry]:
    """The frames of a recording folder; bad index lines are logged and skipped.

    Without ``index.jsonl`` every image file in the folder is taken, in name order.
    """
    index = folder / "index.jsonl"
    if not index.is_file():
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        return [RecordedEntry(p, i, None) for i, p in enumerate(files)]
    entries = []
    for lineno, line in enumerate(index.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            name = row["file"]
            if not isinstance(name, str) or Path(name).is_absolute() or ".." in Path(name).parts:
                raise ValueError(f"file {name!r} is not a name inside the recording")
            seq = int(row.get("seq", len(entries)))
            t = row.get("capture_time")
            entries.append(RecordedEntry(folder / name, seq, None if t is None else float(t)))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("skipping %s", kv(index=str(index), line=lineno, error=repr(exc)))
    return entries


class RecordingSource:
    """Plays a recording folder; unreadable frame files are logged and skipped."""

    def __init__(self, cam: CameraConfig) -> None:
        self.cam = cam
        self.folder = Path(str(cam.source))
        self._entries: list[RecordedEntry] = []
        self._pos = 0
        self.skipped = 0

    def open(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"recording {str(self.folder)!r} is not a folder", permanent=True)
        self._entries = read_index(self.folder)
        if not self._entries:
            raise SourceError(f"recording {str(self.folder)!r} has no frames", permanent=True)
        self._pos = 0

    def read(self) -> Grabbed | None:
        while self._pos < len(self._entries):
            entry = self._entries[self._pos]
            self._pos += 1
            image = cv2.imread(str(entry.file), cv2.IMREAD_UNCHANGED)
            if image is None:
                self.skipped += 1
                log.warning(
                    "skipping unreadable frame %s",
                    kv(camera=self.cam.name, file=str(entry.file), seq=entry.seq),
                )
                continue
            return Grabbed(
                as_bgr(image),
                time.time(),
                pts=entry.capture_time,
                source_seq=entry.seq,
                source_time=entry.capture_time,
            )
        return None

    def close(self) -> None:
        self._entries = []


def open_source(cam: CameraConfig) -> Source:
    """A fresh, unopened source for the camera's kind."""
    if cam.source_kind is SourceKind.RECORDING:
        return RecordingSource(cam)
    return OpenCVSource(cam)
