"""The client's Lazy Pirate behaviour against a scripted ROUTER peer (real sockets, no worker):
retries with a reopened socket and the same request, stale replies dropped, typed errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zmq

from pnp_vision.client import NoWorker, ServiceTimeout, VisionClient
from pnp_vision.errors import BadRequest, Busy, ClientCode
from pnp_vision.stack.launch import ipc_endpoint

Script = Callable[[zmq.Socket, list[bytes], int], None]  # (router, message, index) -> replies


class ScriptedPeer:
    """A ROUTER that records every request and answers it as a script says."""

    def __init__(self, endpoint: str, script: Script) -> None:
        self.endpoint = endpoint
        self.received: list[list[bytes]] = []
        self._script = script
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(5)

    def _run(self) -> None:
        with zmq.Context() as ctx, ctx.socket(zmq.ROUTER) as router:
            router.linger = 0
            router.bind(self.endpoint)
            self._ready.set()
            while not self._stop.is_set():
                if router.poll(50):
                    message = router.recv_multipart()
                    self.received.append(message)
                    self._script(router, message, len(self.received) - 1)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[Script], ScriptedPeer]]:
    peers: list[ScriptedPeer] = []
    folder = Path(tmp_path_factory.mktemp("c", numbered=True))

    def make(script: Script) -> ScriptedPeer:
        p = ScriptedPeer(ipc_endpoint(folder, f"p{len(peers)}"), script)
        peers.append(p)
        return p

    yield make
    for p in peers:
        p.close()


def _body(message: list[bytes]) -> dict:
    return json.loads(message[-1])


def _reply(router: zmq.Socket, message: list[bytes], **fields: object) -> None:
    envelope = message[:2] if len(message) > 2 and message[1] == b"" else message[:1]
    reply = {"version": 1, "ok": True, "result": {"time": 1.0, "uptime_s": 2.0}, "error": None}
    reply.update(fields)
    router.send_multipart([*envelope, json.dumps(reply).encode()])


def test_no_reply_means_reopen_and_resend_the_same_request_then_service_timeout(peer) -> None:
    silent = peer(lambda router, message, i: None)
    with VisionClient(silent.endpoint, timeout=0.2, retries=2) as client:
        with pytest.raises(ServiceTimeout, match="after 3 tries") as info:
            client.ping()
        assert client.reconnects == 2
    assert info.value.code is ClientCode.NO_REPLY  # the client's own code, not the worker's
    assert not isinstance(info.value, NoWorker)  # a worker was connected: it just never answered
    assert len(silent.received) == 3
    assert len({m[-1] for m in silent.received}) == 1  # the same bytes, so the same id
    assert len({m[0] for m in silent.received}) == 3  # from three different sockets


def test_no_worker_at_the_endpoint_is_reported_within_the_connect_timeout(tmp_path) -> None:
    endpoint = f"ipc://{tmp_path}/nobody.sock"
    with (
        VisionClient(endpoint, timeout=30.0, retries=3, connect_timeout=0.3) as client,
        pytest.raises(NoWorker, match="no worker answering at ipc://") as info,
    ):
        client.status()
    assert info.value.code is ClientCode.NO_WORKER
    assert "is `pnp-vision worker` running" in str(info.value)
    assert client.reconnects == 0  # not the per-try timeout and its retries: the handshake


def test_answer_on_the_second_try_succeeds(peer) -> None:
    def second_only(router: zmq.Socket, message: list[bytes], i: int) -> None:
        if i == 1:
            _reply(router, message, id=_body(message)["id"])

    late = peer(second_only)
    with VisionClient(late.endpoint, timeout=0.2, retries=3) as client:
        assert client.ping().uptime_s == 2.0
        assert client.reconnects == 1


def test_a_reply_with_another_id_is_dropped(peer) -> None:
    def stale_first(router: zmq.Socket, message: list[bytes], i: int) -> None:
        _reply(router, message, id="an-earlier-request", result={"time": 0.0, "uptime_s": 0.0})
        _reply(router, message, id=_body(message)["id"])

    stale = peer(stale_first)
    with VisionClient(stale.endpoint, timeout=2.0, retries=0) as client:
        assert client.ping().uptime_s == 2.0


@pytest.mark.parametrize("socket_type", ["dealer", "req"])
def test_error_reply_is_raised_as_its_typed_exception(peer, socket_type: str) -> None:
    def busy(router: zmq.Socket, message: list[bytes], i: int) -> None:
        error = {"code": "busy", "message": "the request queue is full (8 waiting)"}
        _reply(router, message, id=_body(message)["id"], ok=False, result=None, error=error)

    full = peer(busy)
    with VisionClient(full.endpoint, timeout=2.0, retries=3, socket_type=socket_type) as client:
        with pytest.raises(Busy, match="queue is full"):
            client.inspect("top", "tombstone")
        assert client.reconnects == 0  # an error reply is an answer: no retry
    assert len(full.received) == 1
    sent = _body(full.received[0])
    assert sent["kind"] == "inspect" and sent["questions"] == [
        {"template": "tombstone", "params": {}}
    ]


def test_bad_arguments_are_refused_before_anything_is_sent() -> None:
    with pytest.raises(BadRequest, match="timeout"):
        VisionClient("ipc:///tmp/unused.sock", timeout=0, retries=1)
    with pytest.raises(BadRequest, match="retries"):
        VisionClient("ipc:///tmp/unused.sock", timeout=1, retries=-1)
    with VisionClient("ipc:///tmp/unused.sock", timeout=1, retries=0) as client:
        with pytest.raises(BadRequest, match="frame"):
            client.inspect("top", "tombstone", frame="newest")
        with pytest.raises(BadRequest, match="seq"):
            client.inspect("top", "tombstone", frame="seq")


def test_the_client_does_not_pull_in_mlx_or_opencv() -> None:
    import subprocess
    import sys

    probe = (
        "import sys, pnp_vision.client; "
        "print(sorted({'cv2', 'mlx.core', 'numpy'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
