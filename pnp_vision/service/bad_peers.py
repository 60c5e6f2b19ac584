"""Slowing down a peer that sends bad requests, so a flood of them costs the rig little.

Each ROUTER peer (one connection) has a bucket of `bad_request_rate` tokens per second (it holds
at most one second's worth). A request the worker could not decode, or one over
`max_request_bytes`, takes a token. A peer with no token left is held back: its next messages
wait here, unread, until it earns one, then are handled in order. A peer that waits for each
reply, as controllers do, is thereby slowed to the rate; nothing it sent is lost. A peer that
does not wait has at most `HELD_PER_PEER` messages held (and all peers `HELD_BYTES`): beyond that
each is answered at once with a fixed `bad_request` reply, without being parsed. Well-behaved
peers never owe a token, and valid requests never take one.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from enum import Enum

from pnp_vision.errors import BadRequest
from pnp_vision.logs import kv
from pnp_vision.protocol.requests import encode_reply, error_reply

log = logging.getLogger("pnp_vision.service.worker")

HELD_PER_PEER = 32  # messages held back per peer; more are answered at once, unread
HELD_BYTES = 64 << 20  # bytes held back over all peers; more are answered at once, unread
MAX_PEERS = 4096  # buckets remembered; past it the least recently seen with none held go

SLOW_DOWN = encode_reply(
    error_reply(
        None,
        BadRequest(
            "too many bad requests from this connection (bad_request_rate): message not read"
        ),
    )
)


class Verdict(Enum):
    NOW = "now"  # handle it now
    HELD = "held"  # kept here until the peer earns a token (see `release`)
    REFUSED = "refused"  # over the cap: answer SLOW_DOWN, unread


@dataclass
class _Peer:
    tokens: float
    at: float
    held: deque[list[bytes]] = field(default_factory=deque)
    refused: int = 0  # answered SLOW_DOWN since it was last logged


class BadPeers:
    """Token buckets of bad requests per peer, and the messages held back (I/O thread only)."""

    def __init__(self, rate: float, counts: dict[str, int]) -> None:
        self.rate = rate
        self.burst = max(1.0, rate)
        self._peers: OrderedDict[bytes, _Peer] = OrderedDict()
        self.held_total = 0
        self.held_bytes = 0
        self.counts = counts  # the worker's counters: bad_requests_held / _refused

    def _peer(self, key: bytes, now: float) -> _Peer:
        peer = self._peers.get(key)
        if peer is None:
            peer = self._peers[key] = _Peer(self.burst, now)
            if len(self._peers) > MAX_PEERS:
                self._forget_one()
        else:
            peer.tokens = min(self.burst, peer.tokens + (now - peer.at) * self.rate)
            peer.at = now
            self._peers.move_to_end(key)
        return peer

    def _forget_one(self) -> None:
        for key, peer in self._peers.items():  # least recently seen first
            if not peer.held:
                del self._peers[key]
                return

    def admit(self, key: bytes, frames: list[bytes], now: float | None = None) -> Verdict:
        """What to do with a message just received from peer `key`."""
        if self.rate <= 0:
            return Verdict.NOW
        now = time.monotonic() if now is None else now
        peer = self._peer(key, now)
        if not peer.held and peer.tokens >= 1.0:
            return Verdict.NOW
        size = sum(len(f) for f in frames)
        if len(peer.held) >= HELD_PER_PEER or self.held_bytes + size > HELD_BYTES:
            peer.refused += 1
            self.counts["bad_requests_refused"] += 1
            if peer.refused == 1:
                log.warning("peer flooding bad requests: answering unread %s", kv(peer=key.hex()))
            return Verdict.REFUSED
        if not peer.held:
            log.info("peer slowed down: too many bad requests %s", kv(peer=key.hex()))
        peer.held.append(frames)
        self.held_total += 1
        self.held_bytes += size
        self.counts["bad_requests_held"] += 1
        return Verdict.HELD

    def charge(self, key: bytes, now: float | None = None) -> None:
        """The peer's message was a bad request: it takes a token."""
        if self.rate <= 0:
            return
        peer = self._peer(key, time.monotonic() if now is None else now)
        peer.tokens -= 1.0

    def release(self, now: float | None = None) -> list[list[bytes]]:
        """Held messages whose peers have earned a token: one per such peer, in order."""
        if not self.held_total:
            return []
        now = time.monotonic() if now is None else now
        ready = []
        for key, peer in list(self._peers.items()):
            if peer.held:
                peer = self._peer(key, now)
                if peer.tokens >= 1.0:
                    ready.append(self._pop(peer))
                    if not peer.held and peer.refused:
                        log.info("peer flood over %s", kv(peer=key.hex(), refused=peer.refused))
                        peer.refused = 0
        return ready

    def release_all(self) -> list[list[bytes]]:
        """Every held message, in each peer's order (the drain answers them all)."""
        return [self._pop(p) for p in self._peers.values() for _ in range(len(p.held))]

    def _pop(self, peer: _Peer) -> list[bytes]:
        frames = peer.held.popleft()
        self.held_total -= 1
        self.held_bytes -= sum(len(f) for f in frames)
        return frames

    def next_release(self) -> float | None:
        """When the earliest held peer earns its next token (monotonic), or None."""
        if not self.held_total:
            return None
        return min(
            p.at + max(0.0, 1.0 - p.tokens) / self.rate for p in self._peers.values() if p.held
        )
