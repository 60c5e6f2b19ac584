"""The service end to end: a capture daemon replaying the bundled recording and a worker on the
tiny model, both real subprocesses, driven through the client, the CLI and raw ZeroMQ sockets."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

import pytest
import zmq

from pnp_vision.client import VisionClient
from pnp_vision.config import PROJECT_ROOT, load_settings
from pnp_vision.errors import BadParams, NoFrame, UnknownCamera, UnknownTemplate
from pnp_vision.stack.demo import example_params
from pnp_vision.stack.launch import ServiceStack

CAMERA = "demo"


def _inspect_json(request_id: str, **fields: object) -> bytes:
    body = {"kind": "inspect", "id": request_id, **fields}
    return json.dumps(body).encode()


def test_every_template_is_answered_on_live_frames(client: VisionClient) -> None:
    templates = client.templates()
    assert {t["name"] for t in templates} >= {
        "nozzle_alignment",
        "part_on_nozzle",
        "part_marking",
        "polarity_mark",
        "tombstone",
        "feeder_pocket_empty",
    }
    bar = load_settings().min_confidence
    for template in templates:
        asked = time.time()
        result = client.inspect(CAMERA, template["name"], example_params(template))
        r = result.result
        assert r.template == template["name"]
        assert r.answer in template["answers"]
        assert set(r.probabilities) == set(template["answers"])
        assert math.isclose(sum(r.probabilities.values()), 1.0, abs_tol=1e-6)
        assert r.confident == (max(r.probabilities.values()) >= bar)
        frame = result.frame
        assert frame is not None and frame.source == "camera" and frame.camera == CAMERA
        assert frame.seq is not None and frame.session
        # `latest` defaults to max_frame_age_s (1 s) when it picked the frame
        assert frame.age_ms is not None and frame.age_ms <= 1000
        assert frame.capture_time is not None and frame.capture_time <= time.time()
        assert asked - frame.capture_time <= 1.0 + (time.time() - asked)
        assert result.timings.inference_ms > 0


def test_several_questions_share_one_frame_and_match_single_questions(
    client: VisionClient, sample_png: bytes
) -> None:
    questions = [
        ("nozzle_alignment", {}),
        ("part_marking", {"marking": "R0603"}),
        ("polarity_mark", {"corner": "bottom_right"}),
    ]
    many = client.inspect_many(CAMERA, questions, image=sample_png)
    assert [r.template for r in many.results] == [q[0] for q in questions]
    assert many.frame is not None and many.frame.source == "image"
    for (template, params), together in zip(questions, many.results, strict=True):
        alone = client.inspect(None, template, params, image=sample_png).result
        assert alone.answer == together.answer
        for answer, p in alone.probabilities.items():
            assert together.probabilities[answer] == pytest.approx(p, abs=1e-5)
    camera = client.inspect_many(CAMERA, questions)
    assert len(camera.results) == 3 and camera.frame is not None and camera.frame.seq is not None


def test_frame_by_seq_is_the_same_frame(client: VisionClient) -> None:
    first = client.inspect(CAMERA, "tombstone")
    assert first.frame is not None and first.frame.seq is not None
    again = client.inspect(CAMERA, "tombstone", frame="seq", seq=first.frame.seq)
    assert again.frame is not None
    assert (again.frame.seq, again.frame.session) == (first.frame.seq, first.frame.session)
    assert again.frame.capture_time == first.frame.capture_time
    assert again.result.probabilities == pytest.approx(first.result.probabilities, abs=1e-6)
    with pytest.raises(NoFrame, match="not held"):
        client.inspect(CAMERA, "tombstone", frame="seq", seq=0)  # long dropped from the ring
    with pytest.raises(NoFrame, match="did not arrive within"):
        client.inspect(CAMERA, "tombstone", frame="seq", seq=10**12, deadline=0.3)


def test_fresh_frame_was_captured_after_the_request(client: VisionClient) -> None:
    before = client.inspect(CAMERA, "nozzle_alignment")
    sent = time.time()
    fresh = client.inspect(CAMERA, "nozzle_alignment", frame="fresh", deadline=5.0)
    assert fresh.frame is not None and fresh.frame.capture_time is not None
    assert fresh.frame.capture_time > sent
    assert before.frame is not None and fresh.frame.session == before.frame.session
    assert fresh.frame.seq > before.frame.seq


def test_latest_older_than_max_age_is_no_frame(client: VisionClient) -> None:
    with pytest.raises(NoFrame, match="no frame newer than"):
        client.inspect(CAMERA, "nozzle_alignment", max_age=1e-6)


def test_status_reports_model_queue_and_camera(
    client: VisionClient, limits: dict[str, int]
) -> None:
    client.inspect(CAMERA, "part_on_nozzle")
    status = client.status()
    assert status.ready and status.model.state == "ready"
    assert status.model.info["model_type"] == "qwen2_5_vl"
    assert status.queue.capacity == limits["queue_size"]
    view = status.cameras[CAMERA]
    assert view.last_seq is not None and view.frame_age_ms is not None
    assert view.frame_age_ms < 5000  # frames are flowing (generous: a loaded CI box)
    assert status.counters["inspect"] >= 1 and status.counters["inferences"] >= 1
    assert status.uptime_s > 0
    assert client.ping().uptime_s > 0


@pytest.mark.parametrize("kind", [zmq.DEALER, zmq.REQ])
def test_malformed_input_gets_its_error_code_and_the_worker_keeps_serving(
    stack: ServiceStack,
    sockets: Callable[..., zmq.Socket],
    sample_png: bytes,
    kind: int,
    limits: dict[str, int],
    recv_reply: Callable[..., dict],
) -> None:
    sock = sockets(stack.requests_endpoint, kind)
    oversize = b"\x89PNG" + bytes(limits["max_request_bytes"] + 1)
    cases: list[tuple[list[bytes], str, str | None]] = [
        ([b"this is not json"], "bad_request", None),
        ([_inspect_json("t1", camera=CAMERA, template="tombstone", seq="7")], "bad_request", "t1"),
        ([_inspect_json("t2", camera=CAMERA, template="tombstone", colour=1)], "bad_request", "t2"),
        ([json.dumps({"kind": "reboot", "id": "t3"}).encode()], "bad_request", "t3"),
        ([_inspect_json("t4", image=True, template="tombstone")], "bad_request", "t4"),
        ([_inspect_json("t5", image=True, template="tombstone"), oversize], "bad_request", "t5"),
        ([_inspect_json("t6", camera="nope", template="tombstone")], "unknown_camera", "t6"),
        ([_inspect_json("t7", camera=CAMERA, template="nope")], "unknown_template", "t7"),
        (
            [
                _inspect_json(
                    "t8", camera=CAMERA, template="part_marking", params={"marking": "a b"}
                )
            ],
            "bad_params",
            "t8",
        ),
        (
            [_inspect_json("t9", camera=CAMERA, template="polarity_mark", params={"corner": "x"})],
            "bad_params",
            "t9",
        ),
        (
            [_inspect_json("t10", image=True, template="tombstone"), b"not an image"],
            "bad_request",
            "t10",
        ),
        # JSON no parser reads still gets its plain top-level id back
        ([b'{"kind": "ping", "id": "t11", "x": 1e309}'], "bad_request", "t11"),
        ([b'{"id": "t12", "kind": "ping", "pad": "' + b"y" * 70_000 + b'"}'], "bad_request", "t12"),
        ([b'{"kind": "ping", "id": "t13", "x": "\\ud800"}'], "bad_request", "t13"),
        ([b'{"kind": "ping", "x": {"id": "inner"}, "y": NaN}'], "bad_request", None),
    ]
    for frames, code, request_id in cases:
        sock.send_multipart(frames)  # REQ adds its empty delimiter frame itself
        reply = recv_reply(sock)
        assert reply["ok"] is False, frames[0][:80]
        assert reply["error"]["code"] == code, reply
        assert reply["id"] == request_id
        assert reply["error"]["message"]
        sock.send(json.dumps({"kind": "ping", "id": "alive"}).encode())
        assert recv_reply(sock)["ok"] is True
    # ... and still answers a real question afterwards
    sock.send_multipart([_inspect_json("ok", image=True, template="tombstone"), sample_png])
    reply = recv_reply(sock)
    assert reply["ok"] is True and reply["result"]["results"][0]["answer"] in ("YES", "NO")


def test_a_message_over_the_zeromq_limit_is_dropped_and_the_worker_keeps_serving(
    stack: ServiceStack,
    sockets: Callable[..., zmq.Socket],
    limits: dict[str, int],
    recv_reply: Callable[..., dict],
) -> None:
    huge = sockets(stack.requests_endpoint)
    huge.send_multipart(
        [
            _inspect_json("huge", image=True, template="tombstone"),
            bytes(limits["max_message_bytes"] + 1),
        ]
    )
    assert not huge.poll(1000), "ZeroMQ drops a frame over MAXMSGSIZE: no reply is possible"
    fresh = sockets(stack.requests_endpoint)
    fresh.send(json.dumps({"kind": "ping", "id": "after-huge"}).encode())
    assert recv_reply(fresh)["id"] == "after-huge"
    assert stack.worker.alive()


def test_client_raises_typed_errors(client: VisionClient) -> None:
    with pytest.raises(UnknownCamera, match="nope"):
        client.inspect("nope", "tombstone")
    with pytest.raises(UnknownTemplate, match="no_such_template"):
        client.inspect(CAMERA, "no_such_template")
    with pytest.raises(BadParams, match="lowercase"):
        client.inspect(CAMERA, "part_marking", {"marking": "lowercase"})


def test_full_queue_answers_busy_and_every_request_exactly_once(
    stack: ServiceStack,
    sockets: Callable[..., zmq.Socket],
    sample_png: bytes,
    limits: dict[str, int],
    collect_replies: Callable[..., dict],
) -> None:
    sock = sockets(stack.requests_endpoint)
    ids = {f"burst-{i}" for i in range(6 * limits["queue_size"])}
    for request_id in sorted(ids):
        sock.send_multipart(
            [_inspect_json(request_id, image=True, template="tombstone"), sample_png]
        )
    replies = collect_replies(sock, ids)
    assert all(len(replies[i]) == 1 for i in ids), {i: len(r) for i, r in replies.items()}
    outcomes = [r[0]["error"]["code"] if not r[0]["ok"] else "ok" for r in replies.values()]
    assert set(outcomes) <= {"ok", "busy"}
    assert outcomes.count("busy") >= 1
    assert outcomes.count("ok") >= limits["queue_size"]
    assert set(replies) == ids


def test_expired_work_is_answered_deadline_exceeded_and_not_started(
    stack: ServiceStack,
    sockets: Callable[..., zmq.Socket],
    client: VisionClient,
    sample_png: bytes,
    collect_replies: Callable[..., dict],
) -> None:
    before = client.status().counters["inferences"]
    sock = sockets(stack.requests_endpoint)
    sock.send_multipart([_inspect_json("head", image=True, template="tombstone"), sample_png])
    late = {f"late-{i}" for i in range(3)}
    for request_id in sorted(late):
        body = _inspect_json(request_id, image=True, template="tombstone", deadline_ms=0.001)
        sock.send_multipart([body, sample_png])
    replies = collect_replies(sock, late | {"head"})
    assert replies["head"][0]["ok"] is True
    for request_id in late:
        assert replies[request_id][0]["error"]["code"] == "deadline_exceeded"
    assert client.status().counters["inferences"] == before + 1


def test_a_resent_request_is_answered_once_and_identically(
    stack: ServiceStack,
    sockets: Callable[..., zmq.Socket],
    sample_png: bytes,
    recv_reply: Callable[..., dict],
) -> None:
    request = [_inspect_json(uuid.uuid4().hex, image=True, template="part_on_nozzle"), sample_png]
    first = sockets(stack.requests_endpoint)
    first.send_multipart(request)
    reply_one = recv_reply(first)
    second = sockets(stack.requests_endpoint)  # a reopened socket: new identity, same request
    second.send_multipart(request)
    reply_two = recv_reply(second)
    assert reply_one["ok"] and reply_one == reply_two


def _cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pnp_vision.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_cli_ask_and_status(stack: ServiceStack) -> None:
    endpoint = ["--endpoint", stack.requests_endpoint]
    done = _cli("ask", CAMERA, "part_marking", "--param", "marking=R0603", "--json", *endpoint)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["results"][0]["question"].endswith("Answer YES or NO.")
    assert "R0603" in answer["results"][0]["question"]
    assert answer["frame"]["camera"] == CAMERA

    done = _cli("ask", CAMERA, "polarity_mark", "--param", "corner=top_left", *endpoint)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("polarity_mark: ")

    done = _cli("ask", CAMERA, "part_marking", "--param", "marking=no way", *endpoint)
    assert done.returncode == 2
    assert "bad_params" in done.stderr and "no way" in done.stderr

    image = sorted((PROJECT_ROOT / "recordings" / "demo").glob("*.png"))[0]
    done = _cli("ask", "bench", "nozzle_alignment", "--image", str(image), "--json", *endpoint)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["frame"] == {
        "source": "image",
        "camera": "bench",
        "session": None,
        "seq": None,
        "capture_time": None,
        "age_ms": None,
        "source_seq": None,
    }

    done = _cli("status", *endpoint)
    assert done.returncode == 0, done.stderr
    assert f"camera {CAMERA}:" in done.stdout and "model: ready" in done.stdout
