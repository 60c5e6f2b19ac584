"""The images of an answered inspection, from the worker's history: the exact crop the model
saw, a small copy of it for the table, and the whole frame with the box the model looked at.

Each is one HTTP response. An inspection the worker has let go (it keeps `history_size`) is
said in the picture rather than with an error status, which would be a browser console error on
every page listing older inspections; the table's small copies are kept here, so a crop shown
once stays shown.
"""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict

import cv2
import numpy as np
from starlette.responses import Response

from pnp_vision.console.cameras import encode_jpeg
from pnp_vision.console.link import WorkerLink, new_id
from pnp_vision.errors import BadRequest
from pnp_vision.protocol.requests import CropRequest, CropResult

THUMB_HEIGHT = 84  # the 112x84 views stay as the model saw them; larger ones are scaled down
KEPT = 512
CACHE = {"Cache-Control": "max-age=600"}
GONE_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="112" height="84">'
    '<rect width="112" height="84" fill="#e4e7eb"/><text x="56" y="38" font-size="9"'
    ' text-anchor="middle" font-family="sans-serif" fill="#52606d">no longer held</text>'
    '<text x="56" y="52" font-size="9" text-anchor="middle" font-family="sans-serif"'
    ' fill="#52606d">by the worker</text></svg>'
)


class InspectionImages:
    def __init__(self, link: WorkerLink) -> None:
        self.link = link
        self._thumbs: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def crop(self, request_id: str, question: int) -> Response:
        got = self._ask(request_id, question, whole=False)
        if got is None:
            return gone()
        png = base64.b64decode(got.png_base64)
        return Response(png, media_type="image/png", headers=CACHE)

    def thumbnail(self, request_id: str, question: int) -> Response:
        key = (request_id, question)
        with self._lock:
            data = self._thumbs.get(key)
        if data is None:
            got = self._ask(request_id, question, whole=False)
            if got is None:
                return gone()
            image = _decode(got)
            width = round(image.shape[1] * min(1.0, THUMB_HEIGHT / image.shape[0]))
            data = encode_jpeg(image, width, 85)
            with self._lock:
                self._thumbs[key] = data
                while len(self._thumbs) > KEPT:
                    self._thumbs.popitem(last=False)
        return Response(data, media_type="image/jpeg", headers=CACHE)

    def whole(self, request_id: str, question: int) -> Response:
        """The whole frame as JPEG; the box the model saw (left, top, right, bottom) and the
        frame's size in headers, for the page to draw."""
        got = self._ask(request_id, question, whole=True)
        if got is None:
            return gone()
        headers = {
            **CACHE,
            "X-Box": ",".join(str(v) for v in got.box or ()),
            "X-Size": f"{got.width},{got.height}",
        }
        jpeg = encode_jpeg(_decode(got), None, 90)
        return Response(jpeg, media_type="image/jpeg", headers=headers)

    def _ask(self, request_id: str, question: int, whole: bool) -> CropResult | None:
        """None: the worker no longer holds that inspection."""
        request = CropRequest(id=new_id("crop"), request=request_id, question=question, whole=whole)
        try:
            return CropResult.model_validate(self.link.request(request).result)
        except BadRequest as exc:
            if str(exc).startswith("no recent inspection"):
                return None
            raise


def gone() -> Response:
    return Response(GONE_SVG, media_type="image/svg+xml", headers=CACHE)


def _decode(got: CropResult) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(base64.b64decode(got.png_base64), np.uint8), cv2.IMREAD_COLOR)
