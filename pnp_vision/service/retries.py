"""Retries and duplicates: a request resent with the same id and bytes is never run twice.

Controllers retry on a timeout (Lazy Pirate), so the same request can arrive while it is still
pending (then only its newest sender gets the reply, once) or after it was answered (then the
very same reply bytes go out again). The key is (id, digest of the request frames): the same id
with other bytes is a different request. I/O thread only.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from pnp_vision.service.jobs import Job

Key = tuple[str, bytes]

_RECENT_REPLIES = 256


def request_key(request_id: str, body: list[bytes]) -> Key:
    return request_id, hashlib.blake2b(b"\0".join(body), digest_size=16).digest()


class Retries:
    """Pending jobs by key, and the last answered replies by key."""

    def __init__(self, remembered: int = _RECENT_REPLIES) -> None:
        self.remembered = remembered
        self.pending: dict[Key, Job] = {}  # admitted and not yet answered
        self._answered: OrderedDict[Key, bytes] = OrderedDict()

    def answered(self, key: Key) -> bytes | None:
        """The reply already sent for this exact request, if it is still remembered."""
        return self._answered.get(key)

    def resent_while_pending(self, key: Key, envelope: list[bytes]) -> bool:
        """A resend of a pending request: its reply goes to this newest sender instead."""
        job = self.pending.get(key)
        if job is None:
            return False
        job.envelope = envelope
        return True

    def admitted(self, job: Job) -> None:
        self.pending[job.key] = job

    def finished(self, job: Job, reply: bytes | None) -> None:
        """The job was answered; `reply` (a success) is kept for a late resend."""
        self.pending.pop(job.key, None)
        if reply is not None:
            self._answered[job.key] = reply
            while len(self._answered) > self.remembered:
                self._answered.popitem(last=False)
