"""Cameras as an operator must read them: live, stale or offline (never a frozen frame that looks
fresh), tiles small enough for a tab to idle on, and each template's box where the model looks.

A camera is `stale` once its newest frame is older than `max_frame_age_s` (the age past which
the worker refuses it too) and `offline` once the capture daemon has said nothing about it for
`OFFLINE_AFTER_S` (it publishes every camera's status about once a second). Ages are measured
on the console's own clock (when frames and statuses arrived), so a capture host with another
clock cannot make a dead camera look alive. Boxes are sent as pixel rectangles and drawn by the
page, so they stay inside the image, can be switched off and their names never overlap.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import cv2
import numpy as np

from pnp_vision.capture.subscriber import Frame, FrameSubscriber
from pnp_vision.errors import Internal, NoFrame
from pnp_vision.inspect.imageprep import template_box
from pnp_vision.inspect.templates import TemplateSet

OFFLINE_AFTER_S = 3.0
TILE_WIDTH = 320  # a tile costs ~10 kB as JPEG; the enlarged view gets the full frame
QUALITY = {"tile": 70, "full": 85}


class CameraWatch:
    def __init__(
        self, frames: FrameSubscriber, templates: TemplateSet, max_frame_age_s: float
    ) -> None:
        self.frames = frames
        self.templates = templates
        self.max_frame_age_s = max_frame_age_s
        self._heard: dict[str, tuple[object, float]] = {}  # camera -> (status, when it came)
        self._first_seen: dict[str, float] = {}
        self._boxes: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self._jpegs: dict[tuple[str, str], tuple[tuple[str, int], bytes]] = {}
        self._lock = threading.Lock()

    # -- state --------------------------------------------------------------------------------

    def views(self) -> list[dict[str, Any]]:
        """Every camera seen, with its state in words. Called often (the watcher, ~10 Hz): it
        notes when each status arrived."""
        now, wall = time.monotonic(), time.time()
        views = []
        for name, status in sorted(self.frames.cameras().items()):
            self._first_seen.setdefault(name, now)
            heard = self._heard.get(name)
            if status is not None and (heard is None or heard[0] is not status):
                self._heard[name] = heard = (status, now)
            frame = self.frames.latest(name)
            age = wall - frame.received if frame is not None else None
            silent = now - (heard[1] if heard else self._first_seen[name])
            if silent > OFFLINE_AFTER_S:
                state = "offline"
            elif age is None or age > self.max_frame_age_s:
                state = "stale"
            else:
                state = status.state.value if status is not None else "streaming"
            header = frame.header if frame is not None else None
            views.append(
                {
                    "name": name,
                    "state": state,
                    "capture_state": status.state.value if status is not None else None,
                    "fps": status.fps if status is not None else None,
                    "drops": status.drops if status is not None else None,
                    "reconnects": status.reconnects if status is not None else None,
                    "last_error": status.last_error if status is not None else None,
                    "seq": header.seq if header else None,
                    "session": header.session if header else None,
                    "age_s": None if age is None else round(age, 2),
                    "silent_s": round(silent, 1),
                    "width": header.width if header else None,
                    "height": header.height if header else None,
                    "boxes": self.boxes(header.width, header.height) if header else [],
                }
            )
        return views

    def boxes(self, width: int, height: int) -> list[dict[str, Any]]:
        """Each distinct box the templates look at on a width x height frame, with the names
        of the templates sharing it: [{"box": [left, top, right, bottom], "templates": [...]}]."""
        with self._lock:
            cached = self._boxes.get((width, height))
        if cached is not None:
            return cached
        groups: dict[tuple[int, int, int, int], list[str]] = {}
        for template in self.templates:
            box = template_box((width, height), template)
            groups.setdefault(box, []).append(template.name)
        found = [
            {"box": list(box), "templates": names}
            for box, names in sorted(groups.items(), key=lambda item: _area(item[0]), reverse=True)
        ]
        with self._lock:
            self._boxes[(width, height)] = found
        return found

    # -- images -------------------------------------------------------------------------------

    def jpeg(
        self, camera: str, size: str, after: int | None = None, wait_s: float = 0.5
    ) -> tuple[bytes, Frame] | None:
        """The camera's newest frame as JPEG (`tile`: TILE_WIDTH wide; `full`: as captured).
        With `after` (a seq the page shows), wait up to `wait_s` for a newer one first: the
        enlarged view follows the camera at its own rate without polling."""
        frame = self.frames.latest(camera)
        if frame is None:
            return None
        if after is not None and frame.header.seq == after:
            # No newer frame in time: the same one again (the page's state says it is stale).
            with contextlib.suppress(NoFrame):
                self.frames.wait_fresh(camera, frame.header.capture_time, wait_s)
            frame = self.frames.latest(camera) or frame
        key = (camera, size)
        ident = (frame.header.session, frame.header.seq)
        with self._lock:
            cached = self._jpegs.get(key)
        if cached is not None and cached[0] == ident:
            return cached[1], frame
        data = encode_jpeg(frame.image, TILE_WIDTH if size == "tile" else None, QUALITY[size])
        with self._lock:
            self._jpegs[key] = (ident, data)
        return data, frame


def encode_jpeg(image: np.ndarray, width: int | None, quality: int) -> bytes:
    if width is not None and image.shape[1] > width:
        scale = width / image.shape[1]
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(
        ".jpg", np.ascontiguousarray(image), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise Internal(f"cannot encode a {image.shape} frame as JPEG")
    return data.tobytes()


def _area(box: tuple[int, int, int, int]) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])
