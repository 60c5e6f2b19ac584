"""Sending replies on the ROUTER: never blocking the loop, counted, one log line per inspection."""

from __future__ import annotations

import logging

import zmq

from pnp_vision.logs import kv
from pnp_vision.protocol.requests import InspectRequest, Reply, encode_reply
from pnp_vision.service.status import Counters

log = logging.getLogger("pnp_vision.service.worker")  # the log name operators already filter on


class Replies:
    """The only writer to the ROUTER (I/O thread only)."""

    def __init__(self, router: zmq.Socket, counters: Counters) -> None:
        self.router = router
        self.counters = counters

    def send(
        self,
        envelope: list[bytes],
        reply: Reply,
        *,
        request: InspectRequest | None = None,
        ms: float | None = None,
    ) -> bytes:
        """Encode, send and count `reply`; log it when it answers an inspection. The bytes sent
        are returned for the retry cache."""
        raw = encode_reply(reply)
        self.send_raw(envelope, raw)
        self.counters.count_reply(reply)
        if request is not None:
            self.counters.templates.count(request, reply, ms)
            outcome = "ok" if reply.ok else reply.error.code.value  # type: ignore[union-attr]
            level = logging.INFO if reply.ok or reply.error.code != "internal" else logging.ERROR
            fields = {"id": reply.id, "camera": request.camera, "outcome": outcome}
            if ms is not None:
                fields["ms"] = round(ms, 1)
            if reply.frame is not None and reply.frame.seq is not None:
                fields["seq"] = reply.frame.seq
            log.log(level, "inspect %s", kv(**fields))
        return raw

    def send_raw(self, envelope: list[bytes], raw: bytes) -> None:
        self.counters.counts["replies"] += 1
        try:
            self.router.send_multipart([*envelope, raw], zmq.NOBLOCK)
        except zmq.Again:  # the peer stopped reading; its reply is lost, never blocks the loop
            log.warning("reply dropped: peer not reading %s", kv(peer=peer(envelope)))


def peer(envelope: list[bytes]) -> str:
    """The ROUTER's routing id of a peer, for log lines (its address is not known here)."""
    return envelope[0].hex() if envelope else "-"
