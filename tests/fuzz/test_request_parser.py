"""Property-based fuzzing of the request parser: any bytes in, a request or BadRequest out."""

from __future__ import annotations

import json

import pytest
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
    peek_id,
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


# ---------------------------------------------------------------------------------------------
# The classes that once killed the worker: depth, surrogates, invalid UTF-8, non-finite numbers


def test_hostile_corpus_is_rejected_by_the_parser_itself() -> None:
    from .hostile import hostile_requests

    needs_worker = {"image_garbage", "image_bomb", "image_bomb_wide", "request_over_limit"}
    for hostile in hostile_requests(1 << 20, 4 << 20):
        body = hostile.frames[1:] if hostile.frames[0] == b"" else hostile.frames
        if hostile.name.removeprefix("shape/") in needs_worker or not hostile.reply:
            continue  # image content and sizes are the worker's checks (test_hostile_live)
        try:
            decode_request(body)
        except BadRequest as exc:
            assert "\n" not in str(exc)
            rid = peek_id(body[0]) if body else None
            assert rid == hostile.id, hostile.name
            encode_reply(error_reply(rid, exc))  # must encode
        else:
            raise AssertionError(f"{hostile.name} was accepted")


@settings(max_examples=100, deadline=None)
@given(st.integers(17, 20_000), st.sampled_from(["[", '{"a":']), st.sampled_from(["id", "x"]))
def test_any_depth_is_a_bad_request(depth: int, opener: str, where: str) -> None:
    closer = "]" if opener == "[" else "}"
    value = opener * depth + ("1" if opener != "[" else "") + closer * depth
    raw = f'{{"kind": "ping", "id": "d", "{where}": {value}}}'.encode()
    try:
        decode_request([raw])
    except BadRequest as exc:
        assert "levels deep" in str(exc) or "the limit is 65536" in str(exc)
    else:
        raise AssertionError("accepted")


@settings(max_examples=200, deadline=None)
@given(st.integers(0xD800, 0xDFFF), st.text(max_size=4))
def test_lone_surrogates_never_reach_an_id(code: int, around: str) -> None:
    text = json.dumps(around)[1:-1]
    raw = f'{{"kind": "ping", "id": "{text}\\u{code:04x}"}}'.encode()
    try:
        decode_request([raw])
    except BadRequest as exc:
        assert peek_id(raw) is None
        encode_reply(error_reply(peek_id(raw), exc))
    else:
        raise AssertionError("a lone surrogate was accepted")


_plain_ids = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, exclude_characters='"\\'),
    min_size=1,
    max_size=128,
).filter(str.isprintable)
# values no parser reads (a balanced one may stand before the id, an unbalanced one only after)
_balanced = [b"1e309", b"NaN", b'"\\ud800"', b"[" * 17 + b"]" * 17, b'"\xff"', b'"\\"\\"\\""']


@settings(max_examples=300, deadline=None)
@given(_valid | _mutated(), _plain_ids, st.sampled_from([*_balanced, b"{"]), st.booleans())
def test_the_id_of_an_unreadable_request_is_recovered_when_plain(
    obj: dict, rid: str, spoiler: bytes, id_first: bool
) -> None:
    """A request that no parser reads, the spoiler before or after a plain id: the id comes
    back (an unclosed bracket before it hides it: then nothing does)."""
    obj = {k: v for k, v in obj.items() if k != "id"}
    spoil = {"spoiler": "@SPOILER@"}
    fields = {"id": rid, **obj, **spoil} if id_first else {**obj, **spoil, "id": rid}
    raw = json.dumps(fields, ensure_ascii=False).encode().replace(b'"@SPOILER@"', spoiler)
    with pytest.raises(BadRequest):
        decode_request([raw])
    hidden = not id_first and spoiler == b"{"
    assert peek_id(raw) == (None if hidden else rid)


@settings(max_examples=300, deadline=None)
@given(_json, _json, st.binary(max_size=12))
def test_a_recovered_id_is_never_a_wrong_one(inner: object, rid: object, tail: bytes) -> None:
    """Whatever the scan returns for a readable object is the object's own top-level id, and
    cutting or spoiling the text never makes it return another value."""
    from pnp_vision.protocol.wire_json import top_level_string

    text = json.dumps({"x": inner, "id": rid}).encode()
    found = top_level_string(text, "id", max_chars=128, scan_bytes=65536)
    assert found is None or found == rid
    for spoiled in (text[: len(text) // 2], text + tail, text[:-1] + tail):
        again = top_level_string(spoiled, "id", max_chars=128, scan_bytes=65536)
        assert again is None or again == rid


def test_valid_surrogate_pairs_and_unicode_still_pass() -> None:
    request, _ = decode_request([b'{"kind": "ping", "id": "\\ud83d\\ude00-\xc3\xa9"}'])
    assert request.id == "\U0001f600-é"


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=8).filter(lambda b: not _is_utf8(b)))
def test_invalid_utf8_is_a_bad_request(junk: bytes) -> None:
    raw = b'{"kind": "ping", "id": "' + junk + b'"}'
    try:
        decode_request([raw])
    except BadRequest as exc:
        assert "UTF-8" in str(exc) or "JSON" in str(exc)
    else:
        raise AssertionError("accepted")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_non_finite_numbers_are_rejected_everywhere() -> None:
    from pnp_vision.protocol.frames import unpack_frame, unpack_status

    for number in ("NaN", "Infinity", "-Infinity", "1e999"):
        raw = (
            '{"kind": "inspect", "id": "n", "camera": "c", "template": "t", '
            f'"deadline_ms": {number}}}'
        ).encode()
        with pytest.raises(BadRequest):
            decode_request([raw])
        header = (
            '{"version": 1, "camera": "c", "session": "s", "seq": 1, '
            f'"capture_time": {number}, "width": 1, "height": 1}}'
        ).encode()
        with pytest.raises(BadRequest, match="invalid frame header"):
            unpack_frame([b"frame.c", header, b"\0\0\0"])
        status = (
            '{"version": 1, "camera": "c", "session": "s", "state": "streaming", '
            f'"time": {number}}}'
        ).encode()
        with pytest.raises(BadRequest, match="invalid camera status"):
            unpack_status([b"status.c", status])
    # and a model built in Python refuses them too (the base config, not only the parser)
    with pytest.raises(ValueError, match="finite"):
        InspectRequest(id="x", camera="c", template="t", deadline_ms=float("nan"))
