"""docs/protocol.md against the pydantic models: examples parse, field tables match the fields.

A controller written from the document alone must see what the worker sends; this keeps the two
from drifting apart again.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from pnp_vision.config import PROJECT_ROOT
from pnp_vision.errors import BadRequest
from pnp_vision.inspect.templates import Template
from pnp_vision.protocol.frames import CameraStatus, FrameHeader, pack_status
from pnp_vision.protocol.requests import (
    MAX_DEADLINE_MS,
    MAX_JSON_BYTES,
    InspectRequest,
    InspectResult,
    ModelIdentity,
    OutcomeRequest,
    PingResult,
    ReloadResult,
    Reply,
    StatusResult,
    decode_request,
    peek_id,
)
from pnp_vision.protocol.wire_json import MAX_DEPTH, MAX_STRING_CHARS

DOC = (PROJECT_ROOT / "docs" / "protocol.md").read_text()


def _json_blocks() -> list[Any]:
    blocks = re.findall(r"```json\n(.*?)```", DOC, re.DOTALL)
    out = []
    for block in blocks:
        for text in _split_objects(block):
            out.append(json.loads(text))
    return out


def _split_objects(block: str) -> list[str]:
    """A block may hold more than one JSON object (request, then reply)."""
    decoder, texts, i = json.JSONDecoder(), [], 0
    block = block.strip()
    while i < len(block):
        _, end = decoder.raw_decode(block, i)
        texts.append(block[i:end])
        i = end
        while i < len(block) and block[i].isspace():
            i += 1
    return texts


def _table(heading: str) -> list[str]:
    """Names in the first column of the first table after `heading` (`a` + `b` gives both)."""
    section = DOC[DOC.index(heading) :]
    table = section[section.index("\n|") :]
    table = table[: table.index("\n\n")]
    pairs = re.findall(r"^\| `([a-z_]+)`(?: \+ `([a-z_]+)`)?", table, re.M)
    return [name for pair in pairs for name in pair if name]


def test_every_json_example_is_a_valid_message() -> None:
    checked: dict[str, int] = {}
    for obj in _json_blocks():
        if "kind" in obj:  # a request
            decode_request([json.dumps(obj).encode()])
            kind = "request"
        elif "ok" in obj:  # a reply
            reply = Reply.model_validate(obj)
            result = reply.result
            if result is not None and "results" in result:
                InspectResult.model_validate(result)
            elif result is not None and "uptime_s" in result and "model" in result:
                StatusResult.model_validate(result)
            elif result is not None and "time" in result:
                PingResult.model_validate(result)
            kind = "reply"
        elif "encoding" in obj:
            FrameHeader.model_validate(obj)
            kind = "frame header"
        elif "state" in obj and "session" in obj:
            status = CameraStatus.model_validate(obj)
            # the doc promises every field present: the example shows them all
            assert set(obj) == set(CameraStatus.model_fields), set(CameraStatus.model_fields) - set(
                obj
            )
            assert json.loads(pack_status(status)[1]).keys() == obj.keys()  # and so it is sent
            kind = "camera status"
        elif "question" in obj and "answers" in obj:  # a template of the `templates` reply
            assert set(obj) == set(Template.model_fields), set(Template.model_fields) ^ set(obj)
            Template.model_validate(obj)  # its roi passes as fractions of the frame
            kind = "template"
        else:
            kind = "other"
        checked[kind] = checked.get(kind, 0) + 1
    assert checked.get("request", 0) >= 5 and checked.get("reply", 0) >= 4
    assert checked.get("frame header") == 1 and checked.get("camera status") == 1
    assert checked.get("template", 0) >= 2 and "other" not in checked


def test_the_inspect_table_lists_exactly_the_request_fields() -> None:
    documented = set(_table("### `inspect`")) | set(_table("### Common fields"))
    assert documented == set(InspectRequest.model_fields)


def test_the_outcome_table_lists_exactly_the_request_fields() -> None:
    documented = set(_table("### `outcome`")) | set(_table("### Common fields"))
    assert documented == set(OutcomeRequest.model_fields)


def test_the_reload_reply_and_the_model_identity_show_every_field() -> None:
    reply = next(o for o in _json_blocks() if o.get("id") == "l-1" and "ok" in o)
    result = ReloadResult.model_validate(reply["result"])
    assert set(reply["result"]) == set(ReloadResult.model_fields)
    assert set(reply["result"]["model"]) == set(ModelIdentity.model_fields)
    assert result.model.generation == 2


def test_the_status_example_shows_every_status_field() -> None:
    reply = next(o for o in _json_blocks() if o.get("id") == "s-1" and "ok" in o)
    result = reply["result"]
    assert set(result) == set(StatusResult.model_fields)
    view_fields = set(StatusResult.model_fields["cameras"].annotation.__args__[1].model_fields)
    assert set(result["cameras"]["demo"]) == view_fields


def _row(heading: str, name: str) -> str:
    """The table row of field `name` in the first table after `heading`."""
    section = DOC[DOC.index(heading) :]
    return re.search(rf"^\| `{name}` .*$", section, re.M).group()


def _prose(heading: str) -> str:
    """A section's text without its code blocks."""
    section = DOC[DOC.index(heading) :]
    section = section[: section.find("\n## ", 1)]
    return re.sub(r"```.*?```", "", section, flags=re.DOTALL)


@pytest.mark.parametrize("name", ["deadline_ms", "max_age_ms"])
def test_the_inspect_table_states_each_cap_the_model_enforces(name: str) -> None:
    cap = next(m.le for m in InspectRequest.model_fields[name].metadata if hasattr(m, "le"))
    assert cap == MAX_DEADLINE_MS == 3_600_000
    assert f"0 < x <= {cap}" in _row("### `inspect`", name)
    with pytest.raises(BadRequest, match=name):
        decode_request([json.dumps({"kind": "inspect", "id": "c", "camera": "c",
                                    "template": "t", name: cap + 1}).encode()])  # fmt: skip


def test_an_error_reply_example_carries_its_frame() -> None:
    """An error met after the frame was picked names that frame (inspections.py)."""
    errors = [o for o in _json_blocks() if o.get("ok") is False]
    with_frame = [Reply.model_validate(o) for o in errors if o.get("frame") is not None]
    assert with_frame and all(r.frame and r.frame.seq is not None for r in with_frame)
    assert "`deadline_exceeded`" in _prose("## 2. Errors").split("| code |")[0]


def test_the_camera_status_fields_are_explained() -> None:
    """The fields whose meaning is not plain from the example say what they hold."""
    prose = _prose("## 4. Frames")
    for name in ("state_since", "last_capture_time", "source"):
        assert name in CameraStatus.model_fields and f"`{name}`" in prose, name


def test_the_id_rule_for_unreadable_requests_is_what_the_worker_does() -> None:
    """The doc's examples of JSON no parser reads, each answered with its plain id."""
    rule = _prose("## 2. Errors")
    assert "first 64 KiB" in rule and "top level" in rule and "`1e309`" in rule
    unreadable = [b"1e309", b"NaN", b'"\\ud800"', b"[" * 17 + b"]" * 17, b'"\xff"']
    unreadable.append(b'"' + b"y" * MAX_JSON_BYTES + b'"')  # over 64 KiB
    for value in unreadable:
        spoiled = b'{"id": "a", "x": ' + value + b"}"
        with pytest.raises(BadRequest):
            decode_request([spoiled])
        assert peek_id(spoiled) == "a"
    for hidden in (b'{"x": {"id": "a"}, "y": NaN}', b'{"id": "a\\u0062", "y": NaN}', b' ["a"'):
        assert peek_id(hidden) is None


@pytest.mark.parametrize(
    "fact",
    [
        f"{MAX_JSON_BYTES // 1024} KiB",
        f"{MAX_DEPTH} levels",
        f"{MAX_STRING_CHARS} characters",
        f"0 < x <= {MAX_DEADLINE_MS}",
        "**pixels**",
        "**fractions**",
        "## 7. CURVE",
        "no_worker",
        "*different* request is answered as a new question",
    ],
)
def test_limits_and_units_are_stated(fact: str) -> None:
    assert fact in DOC
