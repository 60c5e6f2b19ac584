"""A deterministic corpus of hostile messages: the classes that once killed the worker.

Requests: deep nesting, lone surrogate escapes, invalid UTF-8, non-finite and huge numbers,
overlong strings, oversize JSON and requests, wrong multipart shapes, pixel bombs, each placed
in every part of a request (top level, `id`, `params`, an extra field, `questions`). Frames: the
same classes in frame headers and camera statuses, plus wrong shapes, lying payloads and
messages over the subscriber's size limit. Shared by the fuzz tests and `bench/soak_hostile.py`.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass

# Where a hostile value goes: a JSON fragment template per location of a valid request.
_BASES = {
    "ping": '{"version": 1, "kind": "ping", "id": %s}',
    "inspect_params": (
        '{"kind": "inspect", "id": "h", "camera": "fz", "template": "part_marking", '
        '"params": {"marking": %s}}'
    ),
    "inspect_params_obj": (
        '{"kind": "inspect", "id": "h", "camera": "fz", "template": "part_marking", "params": %s}'
    ),
    "extra_field": '{"kind": "status", "id": "h", "extra": %s}',
    "questions": (
        '{"kind": "inspect", "id": "h", "camera": "fz", '
        '"questions": [{"template": "tombstone", "params": %s}]}'
    ),
    "deadline": (
        '{"kind": "inspect", "id": "h", "camera": "fz", "template": "tombstone", "deadline_ms": %s}'
    ),
    "max_age": (
        '{"kind": "inspect", "id": "h", "camera": "fz", "template": "tombstone", "max_age_ms": %s}'
    ),
    "camera": '{"kind": "inspect", "id": "h", "camera": %s, "template": "tombstone"}',
    "roi": (
        '{"kind": "inspect", "id": "h", "camera": "fz", "template": "tombstone", '
        '"roi": [%s, 0, 8, 8]}'
    ),
    "seq": (
        '{"kind": "inspect", "id": "h", "camera": "fz", "template": "tombstone", '
        '"frame": "seq", "seq": %s}'
    ),
    "top_level": "%s",
}


def _deep(depth: int, kind: str) -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    if kind == "object":
        return '{"a":' * depth + "1" + "}" * depth
    return '[{"a":' * (depth // 2) + "1" + "}]" * (depth // 2)


def _hostile_values() -> dict[str, bytes]:
    """Fragments that are each unacceptable wherever they appear (bytes: some are not UTF-8)."""
    values: dict[str, bytes] = {}
    for depth in (17, 40, 200, 1000, 3000, 10000):
        for kind in ("array", "object", "mixed"):
            values[f"deep_{kind}_{depth}"] = _deep(depth, kind).encode()
    for escape in ("\\ud800", "\\udfff", "\\udc00", "\\ud83d", "a\\ud800b", "\\ud800\\ud800"):
        values[f"surrogate_{escape}"] = f'"{escape}"'.encode()
    invalid_utf8 = {
        "ff": b'"\xff"',
        "overlong_nul": b'"\xc0\x80"',
        "encoded_surrogate": b'"\xed\xa0\x80"',
        "truncated": b'"\xe2\x82"',
        "continuation": b'"\x80abc"',
        "latin1": b'"caf\xe9"',
        "five_byte": b'"\xf8\x88\x80\x80\x80"',
    }
    values.update({f"utf8_{k}": v for k, v in invalid_utf8.items()})
    for number in ("NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" * 5000):
        values[f"number_{number[:12]}"] = number.encode()
    values["long_string"] = b'"' + b"x" * 20_000 + b'"'
    return values


@dataclass(frozen=True)
class Hostile:
    """One hostile request: its frames after the envelope, and what must come back."""

    name: str
    frames: list[bytes]
    # the reply's `id`: the request's own where a top-level `"id"` string can be read without
    # parsing the message (docs/protocol.md, section 2), else None
    id: str | None
    reply: bool = True  # False: over max_message_bytes, dropped by ZeroMQ (no reply possible)


def pixel_bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid PNG of a few hundred bytes whose header promises width x height gray pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = zlib.compress(b"\x00" * (width + 1) * 4, 9)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def hostile_requests(max_request_bytes: int, max_message_bytes: int) -> list[Hostile]:
    """At least 500 requests the worker must answer `bad_request` (or drop, when oversize)."""
    corpus: list[Hostile] = []
    for value_name, value in _hostile_values().items():
        for base_name, base in _BASES.items():
            body = base.encode().replace(b"%s", value)
            # every base but these two has the plain id "h" before the hostile value
            rid = None if base_name in ("ping", "top_level") else "h"
            corpus.append(Hostile(f"{base_name}/{value_name}", [body], rid))
            # the same with REQ framing (an empty delimiter in front)
            if base_name in ("ping", "top_level"):
                corpus.append(Hostile(f"req/{base_name}/{value_name}", [b"", body], None))
    ping = b'{"kind": "ping", "id": "shape"}'
    image_req = b'{"kind": "inspect", "id": "img", "image": true, "template": "tombstone"}'
    shapes: dict[str, tuple[list[bytes], str | None]] = {
        "empty_frame": ([b""], None),
        "two_empty": ([b"", b""], None),
        "unexpected_image": ([ping, b"\x89PNG"], "shape"),
        "three_frames": ([ping, b"a", b"b"], "shape"),
        "image_missing": ([image_req], "img"),
        "image_empty": ([image_req, b""], "img"),
        "image_garbage": ([image_req, b"not an image at all"], "img"),
        "image_bomb": ([image_req, pixel_bomb_png()], "img"),
        "image_bomb_wide": ([image_req, pixel_bomb_png(60_000, 2_000)], "img"),
        "json_array": ([b"[1, 2, 3]"], None),
        "json_string": ([b'"ping"'], None),
        "json_null": ([b"null"], None),
        "bom": ([b"\xef\xbb\xbf" + ping], None),  # not JSON's first byte: nothing is read
        "nul_bytes": ([b"\x00" * 64], None),
        "truncated": ([ping[:-3]], None),  # the id's own string is cut
        "duplicate_trailing": ([ping + ping], "shape"),
        "json_over_64k": (
            [b'{"kind": "ping", "id": "big", "pad": "' + b"y" * 70_000 + b'"}'],
            "big",
        ),
        "number_beyond_double": ([b'{"kind": "ping", "id": "e309", "x": 1e309}'], "e309"),
        "id_after_deep_value": (
            [b'{"kind": "ping", "x": ' + _deep(40, "mixed").encode() + b', "id": "late"}'],
            "late",
        ),
        "id_nested_only": ([b'{"kind": "ping", "x": {"id": "inner"}, "y": NaN}'], None),
        "id_escaped": ([b'{"kind": "ping", "id": "a\\"b", "y": NaN}'], None),
        "request_over_limit": ([image_req, b"\x89PNG" + b"\0" * max_request_bytes], "img"),
    }
    corpus += [Hostile(f"shape/{k}", frames, rid) for k, (frames, rid) in shapes.items()]
    corpus.append(
        Hostile(
            "shape/over_max_message_bytes", [ping, b"\0" * (max_message_bytes + 1)], None, False
        )
    )
    # a valid JSON text with every field of the wrong type
    for field in ("id", "kind", "camera", "template", "params", "frame", "seq", "roi", "image"):
        for value in ("true", "[]", "-1", "0.5", '"\\u0000"', '"a\\nb"'):
            body = b'{"kind": "inspect", "id": "t", "camera": "fz", "template": "tombstone"}'
            obj = json.loads(body)
            obj[field] = json.loads(value)
            if field == "params" and value == "[]":
                continue  # not hostile as such; covered above
            rid = None if field == "id" else "t"
            corpus.append(Hostile(f"type/{field}/{value}", [json.dumps(obj).encode()], rid))
    return corpus


# ---------------------------------------------------------------------------------------------
# Frames


def frame_header(camera: str, seq: int, width: int, height: int, **extra: object) -> bytes:
    header = {
        "version": 1,
        "camera": camera,
        "session": "fuzz",
        "seq": seq,
        "capture_time": 1.0e9,
        "width": width,
        "height": height,
        "channels": 3,
        "encoding": "raw-bgr8",
        **extra,
    }
    return json.dumps(header).encode()


def hostile_frames(camera: str, max_message_bytes: int) -> list[tuple[str, list[bytes]]]:
    """At least 100 frame/status messages the subscriber must drop (and log), not die on."""
    topic = f"frame.{camera}".encode()
    status_topic = f"status.{camera}".encode()
    w, h = 4, 3
    payload = b"\x10" * (w * h * 3)
    good = frame_header(camera, 7, w, h)
    out: list[tuple[str, list[bytes]]] = []
    for number in (b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999"):
        raw = good.replace(b'"capture_time": 1000000000.0', b'"capture_time": ' + number)
        out.append((f"frame/capture_time/{number.decode()}", [topic, raw, payload]))
        raw = good[:-1] + b', "source_seq": 1, "source_time": ' + number + b"}"
        out.append((f"frame/source_time/{number.decode()}", [topic, raw, payload]))
    for value_name, value in _hostile_values().items():
        placed = {
            "extra": good[:-1] + b', "extra": ' + value + b"}",
            "session": good.replace(b'"session": "fuzz"', b'"session": ' + value),
            "top": value,
        }
        for where, raw in placed.items():
            out.append((f"frame/{where}/{value_name}", [topic, raw, payload]))
        status = (
            b'{"version": 1, "camera": "' + camera.encode() + b'", "session": "fuzz", '
            b'"state": "streaming", "time": 1.0, "fps": ' + value + b"}"
        )
        out.append((f"status/fps/{value_name}", [status_topic, status]))
    shapes: dict[str, list[bytes]] = {
        "one_part": [topic],
        "two_parts": [topic, good],
        "four_parts": [topic, good, payload, payload],
        "empty_topic": [b"", good, payload],
        "unknown_topic": [b"frames.x", good, payload],
        "topic_mismatch": [b"frame.other", good, payload],
        "short_payload": [topic, good, payload[:-1]],
        "long_payload": [topic, good, payload + b"\0"],
        "empty_payload": [topic, frame_header(camera, 7, w, h, encoding="png"), b""],
        "jpeg_garbage": [topic, frame_header(camera, 7, w, h, encoding="jpeg"), b"\xff\xd8xx"],
        "png_bomb": [
            topic,
            frame_header(camera, 7, 16384, 16384, encoding="png"),
            pixel_bomb_png(16384, 16384),
        ],
        "png_lies": [topic, frame_header(camera, 7, w, h, encoding="png"), pixel_bomb_png(8, 8)],
        "status_three_parts": [status_topic, b"{}", b"x"],
        "status_garbage": [status_topic, b"\xff\xfe"],
        "negative_seq": [topic, frame_header(camera, -1, w, h), payload],
        "huge_seq": [topic, frame_header(camera, 10**30, w, h), payload],
        "zero_width": [topic, frame_header(camera, 7, 0, h), b""],
        "version_2": [topic, good.replace(b'"version": 1', b'"version": 2'), payload],
    }
    out += [(f"shape/{k}", v) for k, v in shapes.items()]
    # over the size limit: ZeroMQ drops the connection; the subscriber must reconnect
    big = frame_header(camera, 7, 2048, 2048)
    for i in range(3):
        out.append((f"oversize/{i}", [topic, big, b"\0" * (max_message_bytes + 1)]))
    return out
