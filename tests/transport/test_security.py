"""CurveZMQ over real sockets: authorized keys pass; unknown keys and plain text are refused."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
import zmq
import zmq.auth

from pnp_vision.errors import ConfigError
from pnp_vision.transport.security import (
    Security,
    ZapHandler,
    generate_keys,
    is_loopback_endpoint,
    security_from_settings,
    warn_if_exposed,
)


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    generate_keys("server", tmp_path)
    generate_keys("client", tmp_path)
    generate_keys("intruder", tmp_path, authorize=False)
    return tmp_path


def _echo_once(server: zmq.Socket, timeout_ms: int = 3000) -> bool:
    if not server.poll(timeout_ms):
        return False
    ident, payload = server.recv_multipart()
    server.send_multipart([ident, payload])
    return True


def _roundtrip(ctx: zmq.Context, server: zmq.Socket, endpoint: str, setup, wait_ms: int) -> bool:
    with ctx.socket(zmq.DEALER) as client:
        client.linger = 0
        setup(client)
        client.connect(endpoint)
        client.send(b"ping")
        if not _echo_once(server, wait_ms):
            return False
        return client.poll(3000) and client.recv() == b"ping"


def test_only_authorized_keys_get_through(keys: Path, caplog: pytest.LogCaptureFixture) -> None:
    security = Security(keys_dir=keys, client_name="client")
    ctx = zmq.Context()
    try:
        with ZapHandler(ctx, security.authorized_dir) as zap, ctx.socket(zmq.ROUTER) as server:
            server.linger = 0
            security.secure_server(server)
            port = server.bind_to_random_port("tcp://127.0.0.1")
            endpoint = f"tcp://127.0.0.1:{port}"

            assert _roundtrip(ctx, server, endpoint, security.secure_client, 3000)

            intruder = Security(keys_dir=keys, client_name="intruder")
            with caplog.at_level(logging.WARNING, logger="pnp_vision.transport.security"):
                assert not _roundtrip(ctx, server, endpoint, intruder.secure_client, 500)
            assert zap.refused == 1
            assert any("auth refused peer=127.0.0.1" in r.message for r in caplog.records)

            assert not _roundtrip(ctx, server, endpoint, lambda s: None, 500)  # plain text
            # the authorized client still works after the refusals
            assert _roundtrip(ctx, server, endpoint, security.secure_client, 3000)
    finally:
        ctx.term()


def test_revoked_key_is_refused_without_restart(keys: Path) -> None:
    security = Security(keys_dir=keys, client_name="client")
    ctx = zmq.Context()
    try:
        with ZapHandler(ctx, security.authorized_dir) as zap, ctx.socket(zmq.ROUTER) as server:
            server.linger = 0
            security.secure_server(server)
            endpoint = f"tcp://127.0.0.1:{server.bind_to_random_port('tcp://127.0.0.1')}"
            (keys / "authorized" / "client.key").unlink()
            assert not _roundtrip(ctx, server, endpoint, security.secure_client, 500)
            assert zap.refused == 1
    finally:
        ctx.term()


def test_settings_without_server_key_is_a_clear_error(tmp_path: Path) -> None:
    assert security_from_settings(None, "client") is None
    with pytest.raises(ConfigError, match=r"no server\.key"):
        security_from_settings(tmp_path, "client")


def test_bad_key_name_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="key name"):
        generate_keys("../evil", tmp_path)


@pytest.mark.parametrize(
    ("endpoint", "loopback"),
    [
        ("tcp://127.0.0.1:5555", True),
        ("tcp://localhost:5555", True),
        ("tcp://[::1]:5555", True),
        ("ipc:///tmp/x.sock", True),
        ("tcp://*:5555", False),
        ("tcp://0.0.0.0:5555", False),
        ("tcp://192.168.1.10:5555", False),
    ],
)
def test_loopback_detection(endpoint: str, loopback: bool, tmp_path: Path) -> None:
    assert is_loopback_endpoint(endpoint) is loopback
    assert warn_if_exposed(endpoint, None) is (not loopback)
    assert not warn_if_exposed(endpoint, Security(keys_dir=tmp_path, client_name="c"))


def test_keys_generate_command(tmp_path: Path) -> None:
    from pnp_vision.cli import main

    assert main(["keys", "generate", "server", "--dir", str(tmp_path)]) == 0
    assert main(["keys", "generate", "line-3", "--dir", str(tmp_path)]) == 0
    assert (tmp_path / "server.key_secret").exists()
    assert (tmp_path / "authorized" / "line-3.key").exists()
    assert not (tmp_path / "authorized" / "server.key").exists()
    assert security_from_settings(tmp_path, "line-3") is not None


def test_secret_keys_are_0600_and_never_silently_replaced(tmp_path: Path) -> None:
    import stat

    public, secret = generate_keys("server", tmp_path / "k")
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(public.stat().st_mode) == 0o644
    before = secret.read_bytes()
    with pytest.raises(ConfigError, match=r"already exists.*--force"):
        generate_keys("server", tmp_path / "k")
    assert secret.read_bytes() == before  # the deployed pair is intact
    generate_keys("server", tmp_path / "k", force=True)
    assert secret.read_bytes() != before
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    # what we write is what zmq.auth (and so every CURVE peer setup) reads
    loaded_public, loaded_secret = zmq.auth.load_certificate(secret)
    assert loaded_secret is not None and zmq.auth.load_certificate(public)[0] == loaded_public


def test_a_plain_text_peer_is_logged_with_its_address(
    keys: Path, caplog: pytest.LogCaptureFixture
) -> None:
    security = Security(keys_dir=keys, client_name="client")
    ctx = zmq.Context()
    try:
        with (
            caplog.at_level(logging.WARNING, logger="pnp_vision.transport.security"),
            ZapHandler(ctx, security.authorized_dir),
            ctx.socket(zmq.ROUTER) as server,
        ):
            server.linger = 0
            security.secure_server(server)
            port = server.bind_to_random_port("tcp://127.0.0.1")
            endpoint = f"tcp://127.0.0.1:{port}"
            assert not _roundtrip(ctx, server, endpoint, lambda s: None, 500)  # plain text
            deadline = time.monotonic() + 10
            while not any("plain-text peer" in r.message for r in caplog.records):
                assert time.monotonic() < deadline, "the refusal was never logged"
                server.poll(50)  # a bounded wait while the monitor thread logs
        line = next(r.message for r in caplog.records if "plain-text peer" in r.message)
        assert line.startswith("auth refused peer=")
        assert f"endpoint={endpoint}" in line
    finally:
        ctx.term()
