"""Recording folders: frame files plus ``index.jsonl`` (one FrameHeader JSON + ``"file"`` a line).

The writer is shared by ``pnp-vision record`` and the synthetic generator; the ``replay`` source
(:class:`pnp_vision.capture.sources.RecordingSource`) reads the same layout back. PNG keeps every
pixel, so a recorded then replayed frame is identical to the one published.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TextIO

import cv2
import numpy as np

from pnp_vision.capture.subscriber import Frame, FrameSubscriber
from pnp_vision.errors import BadRequest, ConfigError, ImageError, NoFrame, UnknownCamera
from pnp_vision.logs import kv
from pnp_vision.progress import Progress
from pnp_vision.protocol.frames import Encoding, FrameHeader
from pnp_vision.transport.security import Security

log = logging.getLogger(__name__)

INDEX_NAME = "index.jsonl"
FORMATS = ("png", "jpeg")


class RecordingWriter:
    """Appends frames to a recording folder; the index line is written after its file.

    `append`: continue a recording already there (the worker's outcomes folder grows across
    restarts) instead of refusing it."""

    def __init__(
        self,
        folder: Path,
        *,
        image_format: str = "png",
        png_level: int = 3,
        append: bool = False,
    ) -> None:
        if image_format not in FORMATS:
            raise BadRequest(f"recording format {image_format!r} is not one of {FORMATS}")
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create recording folder {str(folder)!r}: {exc}") from exc
        index = self.folder / INDEX_NAME
        if index.exists() and not append:
            raise ConfigError(f"{str(self.folder)!r} already holds a recording; pick a new folder")
        self._format, self._png_level = image_format, png_level
        self.count = len(index.read_text().splitlines()) if index.exists() else 0
        self._index: IO[str] = open(index, "a" if append else "w")  # noqa: SIM115 - closed in close()

    def write(self, header: FrameHeader, image: np.ndarray, name: str | None = None) -> str:
        """Store one frame; returns its file name inside the folder."""
        ext = ".png" if self._format == "png" else ".jpg"
        name = name or f"{header.camera}-{header.seq:08d}{ext}"
        params = (
            [cv2.IMWRITE_PNG_COMPRESSION, self._png_level]
            if ext == ".png"
            else [cv2.IMWRITE_JPEG_QUALITY, 95]
        )
        if not cv2.imwrite(str(self.folder / name), image, params):
            raise ImageError(f"cannot write frame {name!r} to {str(self.folder)!r}")
        # The index describes the file: its encoding is the file's, whatever came on the wire.
        file_encoding = Encoding.PNG if ext == ".png" else Encoding.JPEG
        row = header.model_copy(update={"encoding": file_encoding}).model_dump(
            mode="json", exclude_none=True
        )
        row["file"] = name
        self._index.write(json.dumps(row) + "\n")
        self._index.flush()
        self.count += 1
        return name

    def close(self) -> None:
        self._index.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def record(
    endpoint: str,
    camera: str,
    out: Path,
    *,
    frames: int | None = None,
    seconds: float | None = None,
    first_frame_timeout_s: float = 10.0,
    image_format: str = "png",
    stop: threading.Event | None = None,
    max_message_bytes: int = 64 << 20,
    security: Security | None = None,
    progress: TextIO | None = None,
) -> int:
    """Write what ``camera`` publishes until ``frames`` or ``seconds`` (or ``stop``); the count.
    With ``progress`` (a stream), a bar or a line per tenth of the frames shows it moving.

    Frames arriving faster than they can be written are dropped (and logged), never queued
    without bound. Raises NoFrame if nothing arrives within ``first_frame_timeout_s``, and
    UnknownCamera as soon as the daemon's statuses show it does not publish ``camera``.
    """
    if frames is None and seconds is None and stop is None:
        raise BadRequest("record needs --frames or --seconds")
    if frames is not None and frames < 1:
        raise BadRequest(f"--frames must be >= 1, got {frames}")
    if seconds is not None and seconds <= 0:
        raise BadRequest(f"--seconds must be > 0, got {seconds}")
    stop = stop or threading.Event()
    pending: queue.Queue[Frame] = queue.Queue(maxsize=16)
    dropped = 0

    def on_frame(frame: Frame) -> None:
        nonlocal dropped
        try:
            pending.put_nowait(frame)
        except queue.Full:
            dropped += 1

    written = 0
    index_existed = (Path(out) / INDEX_NAME).exists()
    bar = Progress(f"record {camera}", frames or 0, stream=progress) if progress else None
    try:
        with (
            FrameSubscriber(
                endpoint,
                cameras=[camera],
                ring_size=1,
                rcvhwm=16,
                on_frame=on_frame,
                every_frame=True,
                max_message_bytes=max_message_bytes,
                security=security,
                all_statuses=True,  # to say which cameras there are, if not this one
            ) as sub,
            RecordingWriter(out, image_format=image_format) as writer,
        ):
            first_deadline = time.monotonic() + first_frame_timeout_s
            end: float | None = None
            heard: float | None = None  # when the first camera status arrived
            while not stop.is_set():
                now = time.monotonic()
                if end is not None and now >= end:
                    break
                if end is None:
                    if now >= first_deadline:
                        raise _no_first_frame(sub, endpoint, camera, first_frame_timeout_s)
                    published = sub.cameras()
                    heard = heard or (now if published else None)
                    if heard is not None and now - heard >= ANNOUNCE_S and camera not in published:
                        raise _not_published(endpoint, camera, published)
                try:
                    frame = pending.get(timeout=0.1)
                except queue.Empty:
                    continue
                if end is None:
                    end = now + seconds if seconds is not None else float("inf")
                writer.write(frame.header, np.asarray(frame.image))
                written += 1
                if bar is not None:
                    bar.advance(note=f"seq {frame.header.seq}")
                if frames is not None and written >= frames:
                    break
    finally:
        if bar is not None:
            bar.__exit__()
        if written == 0 and not index_existed:
            _remove_empty(Path(out))  # an empty recording must not block a retry into it
    log.info("recorded %s", kv(camera=camera, out=str(out), frames=written, dropped=dropped))
    return written


# A capture daemon sends each camera's status once a second: this long after the first status
# arrived, a camera never heard of is not one it publishes.
ANNOUNCE_S = 2.5


def _not_published(endpoint: str, camera: str, published: Iterable[str]) -> UnknownCamera:
    return UnknownCamera(
        f"camera {camera!r} is not published at {endpoint}; the capture daemon there publishes"
        f" {', '.join(sorted(published))} (its cameras/*.toml, or `pnp-vision capture --camera`)"
    )


def _no_first_frame(
    sub: FrameSubscriber, endpoint: str, camera: str, timeout: float
) -> NoFrame | UnknownCamera:
    """Why nothing was recorded, in words: capture not reachable, the camera not among those
    it publishes, or the camera's own state."""
    seen = sub.cameras()
    if camera not in seen and seen:
        return _not_published(endpoint, camera, seen)
    if camera not in seen:
        why = f"nothing was received from {endpoint}: is `pnp-vision capture` running there?"
    elif seen[camera] is None:
        why = "the camera is known but sent no frame"
    else:
        status = seen[camera]
        assert status is not None
        why = f"camera state {status.state.value}"
        if status.last_error:
            why += f", last error: {status.last_error}"
    return NoFrame(f"no frame of camera {camera!r} arrived within {timeout:g} s: {why}")


def _remove_empty(folder: Path) -> None:
    index = folder / INDEX_NAME
    if index.exists() and index.stat().st_size == 0:
        index.unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()  # only when nothing else is in it
