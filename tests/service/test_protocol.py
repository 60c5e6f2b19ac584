"""The request parser and reply model on their own: every malformed input names what is wrong."""

from __future__ import annotations

import json

import pytest

import pnp_vision.protocol as protocol
from pnp_vision.errors import BadRequest, ErrorCode, NoFrame
from pnp_vision.protocol.requests import (
    FrameChoice,
    InspectRequest,
    PingRequest,
    Reply,
    decode_reply,
    decode_request,
    encode_request,
    error_reply,
    peek_id,
)


def _raw(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_round_trip_of_every_kind() -> None:
    for kind in ("ping", "status", "templates"):
        request, image = decode_request([_raw(kind=kind, id="r1")])
        assert request.kind == kind and request.id == "r1" and image is None
    inspect = InspectRequest(
        id="r2",
        camera="top",
        questions=[{"template": "part_marking", "params": {"marking": "R0603"}}],
        frame="fresh",
        deadline_ms=500,
    )
    parsed, image = decode_request(encode_request(inspect))
    assert parsed == inspect and image is None
    assert parsed.frame is FrameChoice.FRESH
    assert parsed.question_list()[0].params == {"marking": "R0603"}


def test_inline_image_travels_as_second_frame() -> None:
    request = InspectRequest(id="r3", image=True, template="tombstone")
    frames = encode_request(request, b"\x89PNG...")
    assert len(frames) == 2
    parsed, image = decode_request(frames)
    assert image == b"\x89PNG..." and parsed.question_list()[0].template == "tombstone"


@pytest.mark.parametrize(
    ("frames", "needle"),
    [
        ([b"\xff\xfe not json"], "not valid UTF-8"),
        ([b"[1, 2]"], "JSON object"),
        ([_raw(kind="inspect", id="a", camera="c", template=5)], "template"),
        ([_raw(kind="inspect", id="a", camera="c", template="t", seq="5")], "seq"),
        ([_raw(kind="inspect", id="a", camera="c", template="t", colour="red")], "colour"),
        ([_raw(kind="reboot", id="a")], "reboot"),
        ([_raw(id="a")], "kind"),
        ([_raw(kind="ping")], "id"),
        ([_raw(kind="ping", id="a", version=2)], "version 2"),
        ([_raw(kind="inspect", id="a", image=True, template="t")], "image frame"),
        ([_raw(kind="inspect", id="a", camera="c", template="t"), b"extra"], "2 frames"),
        ([_raw(kind="inspect", id="a", camera="c", questions=[])], "at least 1"),
        (
            [_raw(kind="inspect", id="a", camera="c", template="t", questions=[{"template": "u"}])],
            "not both",
        ),
        ([_raw(kind="inspect", id="a", template="t")], "camera"),
        ([_raw(kind="inspect", id="a", camera="c", template="t", frame="seq")], "seq"),
        ([_raw(kind="inspect", id="a", camera="c", template="t", frame="newest")], "frame"),
        ([_raw(kind="inspect", id="a", camera="../etc", template="t")], "camera"),
        ([_raw(kind="inspect", id="a", camera="c", template="t", roi=[0, 0, 0, 5])], "roi"),
        ([_raw(kind="inspect", id="a", camera="c", template="t", params={"k": 1})], "params.k"),
        ([], "empty"),
        ([b"x" * 70_000], "limit"),
    ],
)
def test_malformed_requests_are_bad_request_naming_the_problem(
    frames: list[bytes], needle: str
) -> None:
    with pytest.raises(BadRequest) as info:
        decode_request(frames)
    assert info.value.code is ErrorCode.BAD_REQUEST
    assert needle in str(info.value)


def test_peek_id_finds_the_id_of_an_invalid_request_when_there_is_one() -> None:
    assert peek_id(_raw(kind="inspect", id="abc", template=5)) == "abc"
    assert peek_id(b"not json") is None
    assert peek_id(_raw(kind="ping", id=7)) is None


def test_reply_has_result_xor_error() -> None:
    with pytest.raises(ValueError, match="never both"):
        Reply(id="a", ok=True, result=None)
    with pytest.raises(ValueError, match="never both"):
        Reply(id="a", ok=False, result={}, error={"code": "busy", "message": "m"})
    reply = error_reply("a", NoFrame("camera 'top' is 3 s old"))
    decoded = decode_reply(reply.model_dump_json().encode())
    assert decoded.error is not None and decoded.error.code is ErrorCode.NO_FRAME
    assert "3 s old" in decoded.error.message


def test_ping_defaults_carry_version_and_kind() -> None:
    body = json.loads(encode_request(PingRequest(id="p"))[0])
    assert body == {"version": 1, "id": "p", "kind": "ping"}


def test_exported_names_do_not_drift() -> None:
    for name in protocol.__all__:
        assert getattr(protocol, name) is not None
    assert {"InspectRequest", "Reply", "decode_request", "FrameHeader"} <= set(protocol.__all__)
