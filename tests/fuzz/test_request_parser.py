"""Property-based fuzzing of the request parser: any bytes in, a request or BadRequest out."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from pnp_vision.errors import BadRequest, ErrorCode
from pnp_vision.protocol.requests import (
    InspectRequest,
    Reply,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
    error_reply,
)

_json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
_FIELDS = [
    "version",
    "id",
    "kind",
    "camera",
    "image",
    "template",
    "params",
    "questions",
    "frame",
    "max_age_ms",
    "seq",
    "deadline_ms",
    "roi",
    "extra",
]
_KINDS = ["inspect", "status", "templates", "ping", "nope", ""]
# Objects shaped like requests, with every field present or absent and of any JSON type, so the
# search reaches the validators instead of stopping at "not JSON".
_request_like = st.fixed_dictionaries(
    {"id": st.text(max_size=8) | _json, "kind": st.sampled_from(_KINDS) | _json},
    optional={name: _json for name in _FIELDS if name not in ("id", "kind")}
    | {
        "template": st.sampled_from(["nozzle_alignment", "x y", ""]),
        "frame": st.sampled_from(["latest", "fresh", "seq", "old"]),
        "camera": st.sampled_from(["demo", "a/b", ""]),
    },
)

_ids = st.text(min_size=1, max_size=12)
_valid = st.one_of(
    st.builds(lambda i, k: {"id": i, "kind": k}, _ids, st.sampled_from(_KINDS[1:4])),
    st.builds(
        lambda i, t, f, d: {
            "id": i,
            "kind": "inspect",
            "camera": "demo",
            "template": t,
            "params": {"marking": "ABC"},
            "frame": f,
            "deadline_ms": d,
        },
        _ids,
        st.sampled_from(["part_marking", "tombstone"]),
        st.sampled_from(["latest", "fresh"]),
        st.floats(1, 5000),
    ),
)


@st.composite
def _mutated(draw: st.DrawFn) -> dict:
    """A valid request with one field replaced by any JSON value, or removed."""
    obj = dict(draw(_valid))
    field = draw(st.sampled_from(_FIELDS))
    if draw(st.booleans()):
        obj.pop(field, None)
    else:
        obj[field] = draw(_json)
    return obj


def _check(body: list[bytes]) -> None:
    try:
        request, image = decode_request(body)
    except BadRequest as exc:
        assert exc.code is ErrorCode.BAD_REQUEST
        assert str(exc)  # a message a person can act on
        # the error reply the worker would send is itself a valid protocol message
        reply = decode_reply(encode_reply(error_reply(None, exc)))
        assert reply.ok is False and reply.error is not None
        return
    wants_image = isinstance(request, InspectRequest) and request.image
    assert (image is not None) == wants_image
    # what was accepted survives a re-encode unchanged
    again, _ = decode_request(encode_request(request, image))
    assert again == request


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=3))
def test_random_bytes_never_crash_the_parser(body: list[bytes]) -> None:
    _check(body)


@settings(max_examples=400, deadline=None)
@given(_request_like, st.lists(st.binary(min_size=0, max_size=16), max_size=2))
def test_request_shaped_json_is_accepted_or_rejected_cleanly(obj: dict, extra: list[bytes]) -> None:
    _check([json.dumps(obj).encode(), *extra])


@settings(max_examples=300, deadline=None)
@given(_valid | _mutated())
def test_valid_and_mutated_requests(obj: dict) -> None:
    _check([json.dumps(obj).encode()])


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(list(ErrorCode)), st.text(max_size=80), st.text(max_size=8) | st.none())
def test_every_error_reply_is_a_valid_message(
    code: ErrorCode, message: str, rid: str | None
) -> None:
    reply = decode_reply(encode_reply(error_reply(rid, code, message)))
    assert isinstance(reply, Reply) and reply.error is not None and reply.error.code is code
