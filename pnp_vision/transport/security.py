"""Optional CurveZMQ on every socket, enforced through our own ZAP handler.

Key folder layout (`Settings.keys_dir`; CURVE is off when it is unset)::

    keys/
      server.key, server.key_secret      the servers' pair (capture PUB, worker ROUTER)
      NAME.key, NAME.key_secret          a client pair made by `pnp-vision keys generate NAME`
      authorized/NAME.key                public keys the servers accept (copied on generate)

Servers run a ZAP handler thread per ZeroMQ context that accepts only keys found in
`authorized/`; every refusal is logged with the peer address and key. A plain-text client
cannot complete the CURVE handshake at all, so it never reaches a server socket.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import zmq
import zmq.auth

from pnp_vision.errors import ConfigError

log = logging.getLogger(__name__)

SERVER_KEY = "server"
AUTHORIZED = "authorized"
ZAP_ENDPOINT = "inproc://zeromq.zap.01"  # fixed by the ZAP RFC (27/ZAP)
ZAP_DOMAIN = "pnp-vision"


def _write_key_file(path: Path, public: bytes, secret: bytes | None, *, force: bool) -> None:
    """One ZPL certificate file (the layout zmq.auth reads); secret files are 0600 from birth."""
    lines = [
        "#   ZeroMQ CURVE "
        + ("secret key: never copy it off this host" if secret else "public key"),
        "#   written by pnp-vision keys generate",
        "metadata",
        "curve",
        f'    public-key = "{public.decode()}"',
    ]
    if secret is not None:
        lines.append(f'    secret-key = "{secret.decode()}"')
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    mode = 0o600 if secret is not None else 0o644
    fd = os.open(path, flags, mode)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    os.chmod(path, mode)  # also when --force replaced a file made with other permissions


def generate_keys(
    name: str, keys_dir: Path, *, authorize: bool = True, force: bool = False
) -> tuple[Path, Path]:
    """Write NAME.key (0644) and NAME.key_secret (0600); a client's public key is also copied to
    authorized/. An existing pair is never replaced unless `force`: a new server pair cuts off
    every controller that holds the old server public key."""
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"key name {name!r}: use letters, digits, '-' and '_' only")
    public_path = keys_dir / f"{name}.key"
    secret_path = keys_dir / f"{name}.key_secret"
    existing = [p for p in (public_path, secret_path) if p.exists()]
    if existing and not force:
        raise ConfigError(
            f"{existing[0]} already exists: key pair {name!r} was generated before; "
            "pass --force to replace it (then every peer holding the old public key needs the new)"
        )
    try:
        keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        public, secret = zmq.curve_keypair()
        _write_key_file(public_path, public, None, force=force)
        _write_key_file(secret_path, public, secret, force=force)
        if authorize and name != SERVER_KEY:
            (keys_dir / AUTHORIZED).mkdir(exist_ok=True)
            shutil.copyfile(public_path, keys_dir / AUTHORIZED / public_path.name)
    except OSError as exc:
        raise ConfigError(f"cannot write key pair {name!r} in {keys_dir}: {exc}") from exc
    return public_path, secret_path


def _load(path: Path, *, secret: bool, hint: str = "") -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise ConfigError(f"{path}: no such CURVE key file{hint}")
    try:
        public, secret_key = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read CURVE key: {exc}") from exc
    if secret and secret_key is None:
        raise ConfigError(f"{path}: holds no secret key (expected a .key_secret file)")
    return public, secret_key


@dataclass(frozen=True)
class Security:
    """Everything a process needs to put CURVE on its sockets, loaded once from the key folder."""

    keys_dir: Path
    client_name: str

    @property
    def authorized_dir(self) -> Path:
        return self.keys_dir / AUTHORIZED

    def server_keys(self) -> tuple[bytes, bytes]:
        hint = f": run `pnp-vision keys generate {SERVER_KEY}` on the server host"
        public, secret = _load(self.keys_dir / f"{SERVER_KEY}.key_secret", secret=True, hint=hint)
        assert secret is not None
        return public, secret

    def secure_server(self, sock: zmq.Socket) -> None:
        """Make `sock` a CURVE server; call before bind."""
        public, secret = self.server_keys()
        sock.zap_domain = ZAP_DOMAIN.encode()
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_server = True  # must be set before bind
        RefusalMonitor(sock).start()

    def secure_client(self, sock: zmq.Socket) -> None:
        """Make `sock` a CURVE client of our server; call before connect."""
        server_hint = f": copy the server's {SERVER_KEY}.key (public) into {self.keys_dir}"
        server_public, _ = _load(
            self.keys_dir / f"{SERVER_KEY}.key", secret=False, hint=server_hint
        )
        hint = (
            f" (client_key is {self.client_name!r}): run `pnp-vision keys generate "
            f"{self.client_name}`, or set PNP_VISION_CLIENT_KEY to a key pair in {self.keys_dir}"
        )
        public, secret = _load(
            self.keys_dir / f"{self.client_name}.key_secret", secret=True, hint=hint
        )
        sock.curve_serverkey = server_public
        sock.curve_publickey = public
        sock.curve_secretkey = secret


class ZapHandler:
    """Answers ZAP requests for one context: CURVE keys in `authorized/` pass, all else fails."""

    def __init__(self, context: zmq.Context, authorized_dir: Path) -> None:
        self._context = context
        self._authorized_dir = authorized_dir
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zap", daemon=True)
        self.refused = 0

    def _authorized(self) -> set[bytes]:
        # Re-read on each handshake so a key added or revoked takes effect without a restart.
        if not self._authorized_dir.is_dir():
            return set()
        return set(zmq.auth.load_certificates(self._authorized_dir).keys())

    def start(self) -> ZapHandler:
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("ZAP handler did not start within 5 s")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def __enter__(self) -> ZapHandler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        with self._context.socket(zmq.REP) as sock:
            sock.linger = 0
            sock.bind(ZAP_ENDPOINT)
            self._ready.set()
            while not self._stop.is_set():
                if sock.poll(200, zmq.POLLIN):
                    sock.send_multipart(self._reply(sock.recv_multipart()))

    def _reply(self, msg: list[bytes]) -> list[bytes]:
        # 27/ZAP request: version, request id, domain, address, identity, mechanism, credentials
        if len(msg) < 6:
            return [b"1.0", b"", b"400", b"malformed ZAP request", b"", b""]
        version, request_id, _domain, address, _identity, mechanism = msg[:6]
        credentials = msg[6:]
        peer = address.decode(errors="replace")
        if mechanism == b"CURVE" and credentials:
            key = zmq.utils.z85.encode(credentials[0])
            if key in self._authorized():
                log.debug("auth accepted peer=%s key=%s", peer, key.decode())
                return [version, request_id, b"200", b"OK", key, b""]
            reason = f"unknown CURVE key {key.decode()}"
        else:
            reason = f"mechanism {mechanism.decode(errors='replace')} not allowed"
        self.refused += 1
        log.warning("auth refused peer=%s reason=%s", peer, reason)
        return [version, request_id, b"400", reason.encode(), b"", b""]


_REFUSALS = (
    zmq.EVENT_ACCEPTED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_MONITOR_STOPPED
)


class RefusalMonitor:
    """Logs the peers a CURVE server socket drops before ZAP sees them (plain text, bad keys).

    A plain-text peer fails at the ZMTP greeting (mechanism mismatch), so the ZAP handler never
    hears of it. The socket monitor does, but names only our own endpoint: the peer's address is
    read from the accepted connection's file descriptor (best effort: a connection already
    closed by then is logged as `peer=unknown`). Ends when the socket is closed.
    """

    def __init__(self, sock: zmq.Socket) -> None:
        self._monitor = sock.get_monitor_socket(_REFUSALS)
        self._monitor.linger = 0
        self._thread = threading.Thread(target=self._run, name="refusals", daemon=True)
        self.refused = 0

    def start(self) -> RefusalMonitor:
        self._thread.start()
        return self

    def _run(self) -> None:
        from zmq.utils.monitor import parse_monitor_message

        peers: dict[int, str] = {}
        failed: str | None = None
        try:
            while True:
                if not self._monitor.poll(1000):
                    continue
                event = parse_monitor_message(self._monitor.recv_multipart())
                kind, value = event["event"], event["value"]
                if kind == zmq.EVENT_MONITOR_STOPPED:
                    return
                if kind == zmq.EVENT_ACCEPTED:
                    peers[value] = _peer_address(value)
                elif kind == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
                    failed = _handshake_reason(value)
                elif kind == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:  # value: an errno
                    failed = (
                        "plain-text peer or wrong server key: it aborted the handshake "
                        f"({os.strerror(value)})"
                    )
                elif kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                    failed = None  # the ZAP handler logged it, with the key
                elif kind == zmq.EVENT_DISCONNECTED:
                    peer = peers.pop(value, "unknown")
                    if failed is not None:
                        self.refused += 1
                        log.warning(
                            "auth refused peer=%s reason=%s endpoint=%s",
                            peer,
                            failed,
                            event["endpoint"].decode(errors="replace"),
                        )
                        failed = None
        except zmq.ZMQError:
            return  # the context is going away
        finally:
            self._monitor.close(linger=0)


def _peer_address(fd: int) -> str:
    """host:port of an accepted TCP connection's descriptor (ipc peers have no address)."""
    import socket

    try:
        dup = os.dup(fd)
    except OSError:
        return "unknown"
    try:
        with socket.socket(fileno=dup) as conn:
            address = conn.getpeername()
    except OSError:
        return "unknown"
    if isinstance(address, tuple):
        return f"{address[0]}:{address[1]}"
    return address or "local"


def _handshake_reason(code: int) -> str:
    if code == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
        return "plain-text peer: this socket requires CURVE (mechanism mismatch)"
    if code in (
        zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC,
        zmq.PROTOCOL_ERROR_ZMTP_INVALID_METADATA,
    ):
        return "CURVE handshake failed: wrong server public key on the peer's side"
    return f"handshake failed (ZMTP error {code:#x}): not a ZeroMQ peer, or a broken one"


_zap_lock = threading.Lock()
_zap_users: dict[int, tuple[ZapHandler, int]] = {}


def acquire_zap(context: zmq.Context, authorized_dir: Path) -> ZapHandler:
    """The context's ZAP handler, started on first use; pair every call with `release_zap`.

    ZAP is one inproc endpoint per context, so servers sharing a context share one handler.
    """
    with _zap_lock:
        handler, users = _zap_users.get(id(context), (None, 0))
        if handler is None:
            handler = ZapHandler(context, authorized_dir).start()
        _zap_users[id(context)] = (handler, users + 1)
        return handler


def release_zap(context: zmq.Context) -> None:
    """Stop the handler when its last server closes (its socket would block `context.term()`)."""
    with _zap_lock:
        handler, users = _zap_users.pop(id(context), (None, 0))
        if handler is not None and users > 1:
            _zap_users[id(context)] = (handler, users - 1)
        elif handler is not None:
            handler.stop()


def secure_bind(
    sock: zmq.Socket, context: zmq.Context, endpoint: str, security: Security | None
) -> bool:
    """Before `bind`: CURVE server keys and the ZAP handler; warns when exposed without CURVE.

    Returns True when a ZAP handler was acquired (then call `release_zap` on close).
    """
    warn_if_exposed(endpoint, security)
    if security is None:
        return False
    security.secure_server(sock)
    acquire_zap(context, security.authorized_dir)
    return True


def secure_connect(sock: zmq.Socket, security: Security | None) -> None:
    """Before `connect`: CURVE client keys when security is on."""
    if security is not None:
        security.secure_client(sock)


def is_loopback_endpoint(endpoint: str) -> bool:
    """True for ipc://, inproc:// and tcp endpoints bound to a loopback address."""
    parts = urlsplit(endpoint)
    if parts.scheme in ("ipc", "inproc"):
        return True
    host = (parts.hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "*", an interface name or a host name: reachable from outside


def warn_if_exposed(endpoint: str, security: Security | None) -> bool:
    """Log a warning when binding beyond loopback without CURVE; returns True if it warned."""
    if security is None and not is_loopback_endpoint(endpoint):
        log.warning(
            "bind endpoint=%s is reachable from other hosts without CURVE: set keys_dir "
            "(pnp-vision keys generate) or bind to 127.0.0.1",
            endpoint,
        )
        return True
    return False


def security_from_settings(keys_dir: Path | None, client_key: str) -> Security | None:
    """The CURVE setup named by the settings, or None when CURVE is off."""
    if keys_dir is None:
        return None
    if not (keys_dir / f"{SERVER_KEY}.key").exists():
        raise ConfigError(
            f"keys_dir {keys_dir} has no {SERVER_KEY}.key: run `pnp-vision keys generate server`"
        )
    return Security(keys_dir=keys_dir, client_name=client_key)
