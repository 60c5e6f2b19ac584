"""A connection that floods bad requests is slowed down; nothing it sent is lost, others go on.

The bucket logic with an explicit clock, then a live in-process worker (real ROUTER, the tiny
model) at 2 bad requests/s: a flooder's messages are held and answered in order while another
controller is answered at once, and past the hold cap the flooder gets the fixed reply.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from pnp_vision.client import VisionClient
from pnp_vision.config import Settings
from pnp_vision.service.bad_peers import HELD_PER_PEER, BadPeers, Verdict
from pnp_vision.service.worker import Worker

A, B = b"peer-a", b"peer-b"


def _counts() -> dict[str, int]:
    return {"bad_requests_held": 0, "bad_requests_refused": 0}


def test_a_peer_is_held_once_its_tokens_are_spent_and_released_as_it_earns_them() -> None:
    peers = BadPeers(2.0, _counts())
    for n in range(2):
        assert peers.admit(A, [A, b"bad%d" % n], now=0.0) is Verdict.NOW
        peers.charge(A, now=0.0)
    assert peers.admit(A, [A, b"m1"], now=0.0) is Verdict.HELD
    assert peers.admit(A, [A, b"m2"], now=0.0) is Verdict.HELD
    assert peers.admit(B, [B, b"ok"], now=0.0) is Verdict.NOW  # another peer is not affected
    assert peers.next_release() == pytest.approx(0.5)
    assert peers.release(now=0.4) == []
    assert peers.release(now=0.5) == [[A, b"m1"]]  # in order, one per earned token
    peers.charge(A, now=0.5)  # m1 was bad too
    assert peers.release(now=0.9) == []
    assert peers.release(now=1.0) == [[A, b"m2"]]
    assert peers.next_release() is None and peers.held_total == 0
    # A's next message waits for no one: m2 was valid (never charged), a token is back.
    assert peers.admit(A, [A, b"m3"], now=1.5) is Verdict.NOW


def test_past_the_cap_messages_are_refused_unread_and_the_drain_gets_every_held_one() -> None:
    counts = _counts()
    peers = BadPeers(1.0, counts)
    peers.charge(A, now=0.0)
    verdicts = [peers.admit(A, [A, b"%d" % n], now=0.0) for n in range(HELD_PER_PEER + 3)]
    assert verdicts.count(Verdict.HELD) == HELD_PER_PEER
    assert verdicts[HELD_PER_PEER:] == [Verdict.REFUSED] * 3
    assert counts == {"bad_requests_held": HELD_PER_PEER, "bad_requests_refused": 3}
    drained = peers.release_all()
    assert [f[1] for f in drained] == [b"%d" % n for n in range(HELD_PER_PEER)]
    assert peers.held_total == 0 and peers.held_bytes == 0


def test_rate_zero_turns_it_off() -> None:
    peers = BadPeers(0.0, _counts())
    for _ in range(100):
        peers.charge(A)
        assert peers.admit(A, [A, b"x"]) is Verdict.NOW


@pytest.fixture(scope="module")
def worker(service_model: Path, run_dir: Path) -> Iterator[Worker]:
    made = Worker(
        Settings(
            requests_endpoint=f"ipc://{run_dir}/badpeers-requests.sock",
            frames_endpoint=f"ipc://{run_dir}/badpeers-frames.sock",
            model_dir=service_model,
            bad_request_rate=2.0,
        )
    )
    thread = threading.Thread(target=made.serve, daemon=True)
    thread.start()
    assert made.ready.wait(60), "worker did not bind"
    try:
        yield made
    finally:
        made.stop()
        thread.join(60)


def _flood(sock: zmq.Socket, prefix: str, n: int) -> list[str]:
    ids = [f"{prefix}{i}" for i in range(n)]
    for rid in ids:
        sock.send_multipart([json.dumps({"kind": "nonsense", "id": rid}).encode()])
    return ids


def _replies(sock: zmq.Socket, n: int, timeout: float) -> list[dict[str, Any]]:
    got, end = [], time.monotonic() + timeout
    while len(got) < n:
        left = end - time.monotonic()
        assert left > 0 and sock.poll(int(left * 1000)), f"{len(got)} of {n} replies"
        got.append(json.loads(sock.recv_multipart()[-1]))
    return got


def test_a_flooder_is_answered_in_order_while_another_controller_is_not_slowed(
    worker: Worker,
) -> None:
    endpoint = worker.settings.requests_endpoint
    context = zmq.Context.instance()
    with context.socket(zmq.DEALER) as flooder, VisionClient(endpoint, timeout=5.0) as other:
        flooder.linger = 0
        flooder.connect(endpoint)
        ids = _flood(flooder, "a", 6)  # 2 answered at once, 4 held and released at 2/s
        assert other.ping().uptime_s >= 0  # answered while the flooder waits
        end = time.monotonic() + 20
        while other.status().counters["bad_requests_held"] < 4:
            assert time.monotonic() < end, "the flooder was never held back"
        replies = _replies(flooder, 6, timeout=20)
    assert [r["id"] for r in replies] == ids
    assert all(r["error"]["code"] == "bad_request" for r in replies)


def test_past_the_hold_cap_a_flooder_gets_the_fixed_reply_and_loses_no_answer(
    worker: Worker,
) -> None:
    endpoint = worker.settings.requests_endpoint
    context = zmq.Context.instance()
    sent = HELD_PER_PEER + 12
    with context.socket(zmq.DEALER) as flooder, VisionClient(endpoint, timeout=5.0) as other:
        flooder.linger = 0
        flooder.connect(endpoint)
        before = other.status().counters["bad_requests_refused"]
        ids = _flood(flooder, "b", sent)
        replies = _replies(flooder, sent, timeout=60)
        refused_now = other.status().counters["bad_requests_refused"] - before
    refused = [r for r in replies if r["id"] is None]
    assert refused and len(refused) == refused_now
    assert all("bad_request_rate" in r["error"]["message"] for r in refused)
    assert all(r["error"]["code"] == "bad_request" for r in replies)
    answered = [r["id"] for r in replies if r["id"] is not None]
    assert len(answered) == sent - len(refused)
    assert answered == [i for i in ids if i in set(answered)]  # each once, in the order sent
