"""Fuzzing the live worker over its real ROUTER socket: one valid reply per message, always."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pnp_vision.protocol.requests import decode_reply
from pnp_vision.stack.launch import ServiceStack, service_stack

from .test_request_parser import _mutated, _valid


@pytest.fixture(scope="module")
def stack(tiny_model_dir: Callable[[str], Path]) -> Iterator[ServiceStack]:
    run_dir = Path(tempfile.mkdtemp(prefix="pnpz-", dir="/tmp"))
    try:
        with service_stack(model_dir=tiny_model_dir("qwen2_5_vl"), run_dir=run_dir) as running:
            yield running
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def connect(stack: ServiceStack) -> Iterator[Callable[[], zmq.Socket]]:
    """A fresh DEALER per example, so a failed example can't leave a reply for the next."""
    ctx = zmq.Context()

    def make() -> zmq.Socket:
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(stack.requests_endpoint)
        return sock

    yield make
    ctx.term()


_message = st.one_of(
    st.lists(st.binary(max_size=200), min_size=1, max_size=3),
    st.builds(lambda obj: [json.dumps(obj).encode()], _valid | _mutated()),
    st.builds(
        lambda obj, img: [json.dumps({**obj, "image": True}).encode(), img],
        _valid,
        st.binary(min_size=1, max_size=64),
    ),
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@pytest.mark.slow
@given(_message)
def test_every_message_gets_exactly_one_valid_reply(
    connect: Callable[[], zmq.Socket], stack: ServiceStack, message: list[bytes]
) -> None:
    with connect() as dealer:
        dealer.send_multipart(message)
        assert dealer.poll(15_000), f"no reply to {message!r}"
        parts = dealer.recv_multipart()
        # An empty first frame is REQ framing (the empty delimiter): the reply mirrors it.
        envelope = [b""] if message[0] == b"" else []
        assert parts[:-1] == envelope
        reply = decode_reply(parts[-1])  # raises if it is not a protocol message
        assert reply.ok or reply.error is not None
        assert not dealer.poll(50), "a second reply to one message"
    assert stack.worker.alive()


def test_worker_still_serves_after_the_fuzzing(connect: Callable[[], zmq.Socket]) -> None:
    with connect() as dealer:
        dealer.send_multipart([b'{"id": "after-fuzz", "kind": "ping"}'])
        assert dealer.poll(10_000)
        reply = decode_reply(dealer.recv_multipart()[0])
    assert reply.ok and reply.id == "after-fuzz"
