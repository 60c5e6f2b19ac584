"""Frame transport: pnp-vision's publisher/subscriber vs imagezmq, same frames, same run.

For 720p and 1080p frames, `raw-bgr8` and `jpeg`, over `ipc://` and `tcp://127.0.0.1`, a sender
process and a receiver process measure:

- latency: 60 frames paced at 30 fps; publish-to-decoded time (same host clock), p50 / p99;
- throughput: frames sent back to back for 1.5 s; frames per second decoded by the receiver;
- CPU per frame: process CPU time of sender and receiver over the throughput window, divided by
  the frames each handled (JPEG encode/decode is included on both sides for both stacks).

Peers: imagezmq in PUB/SUB mode (same pattern as ours) and in its default REQ/REP mode (each
frame waits for the hub's reply). pnp-vision sends through the daemon's real `Publisher` (small
high-water mark, hand-off that drops the oldest) and receives with the real `FrameSubscriber`,
which, when JPEG frames queue up faster than it decodes them, decodes only the newest: its
"fps" counts decoded frames, and "p50 at max rate" shows what that buys under overload.

    .venv/bin/python bench/frame_transport.py [--quick]

Prints a table and ratios; writes bench/results/frame_transport.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import cv2
import numpy as np

from pnp_vision.capture.codec import encode
from pnp_vision.capture.publisher import FrameMessage, Publisher
from pnp_vision.protocol.frames import Encoding, FrameHeader

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}
IMPLS = ("pnp-vision", "imagezmq-pubsub", "imagezmq-reqrep")
QUICK_IMPLS = IMPLS
LATENCY_FRAMES, LATENCY_FPS, THROUGHPUT_S = 60, 30.0, 1.5
# imagezmq keeps ZeroMQ's default high-water mark (1000 messages each side): at 1080p raw a
# slow receiver could queue ~12 GB. The bench caps its PUB/SUB queues at this many frames.
PEER_HWM = 16
RESULTS = Path(__file__).resolve().parent / "results" / "frame_transport.json"


def _image(size: tuple[int, int]) -> np.ndarray:
    from pnp_vision.devtools.synthetic import render

    return render(2, seed=1, size=size, noise=2.0)[0]  # a chip scene: realistic JPEG size


def _endpoint(transport: str) -> str:
    if transport == "ipc":
        return f"ipc://{tempfile.gettempdir()}/pnpv-bench-{uuid.uuid4().hex[:8]}.sock"
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


# -- receivers ----------------------------------------------------------------------------------


def _receiver(impl: str, endpoint: str, encoding: str, ready, conn) -> None:
    """Record (phase, receive time, latency) per decoded frame, and CPU over the throughput phase.

    Stops at the sender's `end` frame, after 1.5 s without frames once the throughput phase
    began, or after a minute.
    """
    records: list[tuple[str, float, float]] = []
    cpu: dict[str, float] = {}
    skipped = 0
    done = threading.Event()

    def seen(phase: str, sent: float) -> None:
        now = time.time()
        if phase == "end":
            done.set()
            return
        if phase == "thr":
            cpu.setdefault("first", time.process_time())
            cpu["last"] = time.process_time()
        records.append((phase, now, now - sent))
        if phase == "warm":
            ready.set()

    def finished() -> bool:
        quiet = "last" in cpu and time.time() - records[-1][1] > 1.5
        return done.is_set() or quiet or time.monotonic() > deadline

    deadline = time.monotonic() + 60
    if impl == "pnp-vision":
        from pnp_vision.capture.subscriber import FrameSubscriber

        def on_frame(frame) -> None:
            seen(frame.header.camera, frame.header.capture_time)

        # As the worker uses it: of several queued JPEG frames only the newest is decoded, the
        # older ones are skipped (counted), so a receiver that falls behind does not queue.
        with FrameSubscriber(endpoint, on_frame=on_frame) as sub:
            while not finished():
                done.wait(0.1)
            skipped = sub.skipped
    else:
        import imagezmq
        import zmq

        hub = imagezmq.ImageHub(open_port=endpoint, REQ_REP=impl == "imagezmq-reqrep")
        sock = hub.zmq_socket
        sock.linger = 0
        if impl == "imagezmq-pubsub":  # see _ImagezmqSender: bound the queue (memory)
            sock.disconnect(endpoint)
            sock.rcvhwm = PEER_HWM
            sock.connect(endpoint)
        while not finished():
            if not sock.poll(100):
                continue
            if encoding == "jpeg":
                msg, buf = hub.recv_jpg()
                image = cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_COLOR)
                assert image is not None
            else:
                msg, image = hub.recv_image()
            if impl == "imagezmq-reqrep":
                hub.send_reply(b"OK")
            phase, sent = msg.split()
            seen(phase, float(sent))
        with contextlib.suppress(zmq.ZMQError):
            hub.close()
    thr = [(t, lat) for phase, t, lat in records if phase == "thr"]
    span = thr[-1][0] - thr[0][0] if len(thr) > 1 else 0.0
    conn.send(
        {
            "latency": [lat for phase, _, lat in records if phase == "lat"],
            "load_latency": [lat for _, lat in thr],
            "throughput_frames": len(thr),
            "fps": (len(thr) - 1) / span if span > 0 else 0.0,
            "recv_cpu_s": cpu.get("last", 0.0) - cpu.get("first", 0.0),
            "skipped": skipped,
        }
    )


# -- senders ------------------------------------------------------------------------------------


class _PnpSender:
    def __init__(self, endpoint: str, encoding: str) -> None:
        self.publisher = Publisher(endpoint)
        self.publisher.start()
        self.encoding, self.seq, self.drops = encoding, 0, 0

    def send(self, phase: str, image: np.ndarray) -> None:
        enc = Encoding(self.encoding)
        header = FrameHeader(
            camera=phase, session="bench", seq=self.seq, capture_time=time.time(),
            width=image.shape[1], height=image.shape[0], encoding=enc,
        )  # fmt: skip
        self.seq += 1
        payload = encode(image, enc)
        self.publisher.offer_frame(FrameMessage(header, payload, on_dropped=self._dropped))

    def wait_room(self) -> None:
        """Offer a frame only when the publisher can take it (the daemon's `drain` pacing):
        a Python loop offering 100k frames/s would only starve the publisher thread."""
        self.publisher.wait_room(1.0)

    def _dropped(self, _header) -> None:
        self.drops += 1

    def close(self) -> None:
        self.publisher.wait_drained(2.0)
        self.publisher.stop()


class _ImagezmqSender:
    def __init__(self, endpoint: str, encoding: str, reqrep: bool) -> None:
        import imagezmq

        if reqrep:
            self.sender = imagezmq.ImageSender(connect_to=endpoint, REQ_REP=True)
        else:
            self.sender = imagezmq.ImageSender(connect_to=_later(endpoint), REQ_REP=False)
            sock = self.sender.zmq_socket  # bound to a throwaway address: rebind with a cap
            sock.unbind(sock.last_endpoint)
            sock.sndhwm = PEER_HWM
            sock.bind(endpoint)
        self.sender.zmq_socket.linger = 200
        self.encoding, self.reqrep, self.drops = encoding, reqrep, 0

    def send(self, phase: str, image: np.ndarray) -> None:
        msg = f"{phase} {time.time()!r}"
        if self.encoding == "jpeg":
            jpg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
            self.sender.send_jpg(msg, jpg)  # REQ/REP: returns after the hub's reply
        else:
            self.sender.send_image(msg, image)

    def wait_room(self) -> None:
        pass  # imagezmq sends inline: the send itself is the pace

    def close(self) -> None:
        self.sender.close()


def _sender(impl: str, endpoint: str, encoding: str, size: tuple[int, int], ready, conn) -> None:
    image = _image(size)
    image.flags.writeable = False
    if impl == "pnp-vision":
        tx = _PnpSender(endpoint, encoding)
    else:
        if impl == "imagezmq-reqrep":
            time.sleep(0.3)  # the hub binds; let it come up before the REQ connects
        tx = _ImagezmqSender(endpoint, encoding, impl == "imagezmq-reqrep")
    deadline = time.monotonic() + 20
    while not ready.is_set() and time.monotonic() < deadline:  # PUB/SUB joins take a moment
        tx.send("warm", image)
        ready.wait(0.02)
    if not ready.is_set():
        conn.send({"error": "receiver never saw a warm-up frame"})
        return
    time.sleep(0.2)
    next_t = time.perf_counter()
    for _ in range(LATENCY_FRAMES):
        next_t += 1 / LATENCY_FPS
        tx.send("lat", image)
        time.sleep(max(0.0, next_t - time.perf_counter()))
    time.sleep(0.2)
    cpu0, t0, sent = time.process_time(), time.perf_counter(), 0
    while time.perf_counter() - t0 < THROUGHPUT_S:
        tx.wait_room()
        tx.send("thr", image)
        sent += 1
    cpu = time.process_time() - cpu0
    time.sleep(0.3)
    for _ in range(1 if impl == "imagezmq-reqrep" else 5):  # PUB/SUB may lose one
        tx.send("end", image)
        time.sleep(0.05)
    drops = tx.drops
    tx.close()
    conn.send({"sent": sent, "send_cpu_s": cpu, "sender_drops": drops})


def _later(endpoint: str) -> str:
    """A different endpoint of the same kind, for imagezmq to bind before we re-bind it."""
    return endpoint.rsplit(":", 1)[0] + ":*" if endpoint.startswith("tcp") else endpoint + "x"


# -- orchestration ------------------------------------------------------------------------------


def _context() -> mp.context.BaseContext:
    """Children forked from a server that imported the heavy modules once (spawn re-imported
    them for every process: most of the run time on a busy 2-core machine)."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["cv2", "numpy", "zmq", "imagezmq", "pnp_vision.capture.subscriber"])
    return ctx


def run_one(impl: str, size_name: str, encoding: str, transport: str) -> dict:
    ctx = _context()
    endpoint = _endpoint(transport)
    ready = ctx.Event()
    rx_parent, rx_child = ctx.Pipe()
    tx_parent, tx_child = ctx.Pipe()
    rx = ctx.Process(target=_receiver, args=(impl, endpoint, encoding, ready, rx_child))
    tx = ctx.Process(
        target=_sender, args=(impl, endpoint, encoding, SIZES[size_name], ready, tx_child)
    )
    rx.start()
    tx.start()
    try:
        if not tx_parent.poll(60) or not rx_parent.poll(30):
            raise RuntimeError(f"{impl} {size_name} {encoding} {transport}: no result in time")
        sent, got = tx_parent.recv(), rx_parent.recv()
    finally:
        for proc in (tx, rx):
            proc.join(5)
            if proc.is_alive():
                proc.kill()
    if "error" in sent:
        raise RuntimeError(f"{impl} {size_name} {encoding} {transport}: {sent['error']}")
    lat, load = sorted(got["latency"]), got["load_latency"]
    frames = got["throughput_frames"]
    return {
        "impl": impl,
        "size": size_name,
        "encoding": encoding,
        "transport": transport,
        "fps": got["fps"],
        "latency_p50_ms": 1e3 * statistics.median(lat) if lat else None,
        "latency_p99_ms": 1e3 * lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else None,
        "latency_frames": len(lat),
        "load_latency_p50_ms": 1e3 * statistics.median(load) if load else None,
        "sent": sent["sent"],
        "received": frames,
        "sender_drops": sent["sender_drops"],
        "receiver_skipped": got["skipped"],
        "send_cpu_ms_per_frame": 1e3 * sent["send_cpu_s"] / max(1, sent["sent"]),
        "recv_cpu_ms_per_frame": 1e3 * got["recv_cpu_s"] / max(1, frames),
    }


def _fmt(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="720p only, tcp only")
    args = parser.parse_args()
    sizes = ["720p"] if args.quick else list(SIZES)
    transports = ["tcp"] if args.quick else ["ipc", "tcp"]
    rows = []
    started = time.perf_counter()
    for size in sizes:
        for encoding in ("raw-bgr8", "jpeg"):
            for transport in transports:
                for impl in IMPLS:
                    row = run_one(impl, size, encoding, transport)
                    rows.append(row)
                    print(
                        f"  {impl:16} {size:5} {encoding:8} {transport:3} "
                        f"{row['fps']:7.1f} fps  p50 {_fmt(row['latency_p50_ms'])} ms",
                        file=sys.stderr,
                    )
    header = (
        "| impl | size | encoding | transport | fps | p50 ms | p99 ms | p50 ms at max rate | "
        "send CPU ms/frame | recv CPU ms/frame |"
    )
    print(header)
    print("|" + "---|" * 10)
    for r in rows:
        print(
            f"| {r['impl']} | {r['size']} | {r['encoding']} | {r['transport']} | "
            f"{r['fps']:.1f} | {_fmt(r['latency_p50_ms'], 2)} | {_fmt(r['latency_p99_ms'], 2)} | "
            f"{_fmt(r['load_latency_p50_ms'], 1)} | "
            f"{_fmt(r['send_cpu_ms_per_frame'], 2)} | {_fmt(r['recv_cpu_ms_per_frame'], 2)} |"
        )
    ratios = []
    print("\nRatios pnp-vision / imagezmq (fps: >1 is better; p50 latency: <1 is better)")
    for r in rows:
        if r["impl"] != "pnp-vision":
            continue
        for peer in ("imagezmq-pubsub", "imagezmq-reqrep"):
            same = ("size", "encoding", "transport")
            p = next(x for x in rows if x["impl"] == peer and all(x[k] == r[k] for k in same))
            ratio = {
                "size": r["size"], "encoding": r["encoding"], "transport": r["transport"],
                "peer": peer, "fps_ratio": r["fps"] / p["fps"] if p["fps"] else None,
                "p50_ratio": (r["latency_p50_ms"] / p["latency_p50_ms"])
                if r["latency_p50_ms"] and p["latency_p50_ms"] else None,
            }  # fmt: skip
            ratios.append(ratio)
            print(
                f"  {r['size']:5} {r['encoding']:8} {r['transport']:3} vs {peer:16} "
                f"fps x{_fmt(ratio['fps_ratio'], 2)}  p50 x{_fmt(ratio['p50_ratio'], 2)}"
            )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "frame_transport",
                "machine": {
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                },
                "latency_frames": LATENCY_FRAMES,
                "latency_fps": LATENCY_FPS,
                "throughput_s": THROUGHPUT_S,
                "rows": rows,
                "ratios": ratios,
                "runtime_s": time.perf_counter() - started,
            },
            indent=2,
        )
    )
    print(f"\nwrote {RESULTS} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
