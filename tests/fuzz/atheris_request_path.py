"""Coverage-guided fuzzing (atheris) of the worker's request path up to the model.

Bytes -> multipart frames -> `decode_request` -> template lookup and parameter checks ->
the reply the worker would send. Properties: only pnp-vision errors escape (never a crash),
every reply is a valid protocol message, and an accepted parameter value always matches its
declared rule and can't smuggle text (newlines, chat markers) into the prompt.

    python tests/fuzz/atheris_request_path.py CORPUS_DIR -runs=5000   (run by test_atheris.py)
"""

from __future__ import annotations

import re
import sys

import atheris

with atheris.instrument_imports(include=["pnp_vision"]):
    from pnp_vision.config import PROJECT_ROOT
    from pnp_vision.errors import PnpVisionError
    from pnp_vision.inspect.templates import Question, TemplateSet
    from pnp_vision.protocol.requests import (
        InspectRequest,
        PingResult,
        decode_reply,
        decode_request,
        encode_reply,
        error_reply,
        ok_reply,
    )

TEMPLATES = TemplateSet.load(PROJECT_ROOT / "prompts")


def _reply_roundtrips(reply) -> None:
    again = decode_reply(encode_reply(reply))
    assert again.ok == reply.ok and again.id == reply.id


def one_input(data: bytes) -> None:
    # first byte: how many image bytes follow the JSON frame as a second frame (0: none)
    if not data:
        return
    extra = data[0] % 8
    body = data[1:]
    frames = [body[: len(body) - extra], body[len(body) - extra :]] if extra else [body]
    try:
        request, _image = decode_request(frames)
        if isinstance(request, InspectRequest):
            for spec in request.question_list():
                template = TEMPLATES.get(spec.template)
                text = TEMPLATES.render(Question(template=spec.template, params=spec.params))
                for name, value in spec.params.items():
                    rule = template.params[name]
                    assert rule.choices is None or value in rule.choices
                    assert rule.pattern is None or re.fullmatch(rule.pattern, value)
                assert "\n" not in text and "<|" not in text and "{" not in text
        _reply_roundtrips(ok_reply(request.id, PingResult(time=0.0, uptime_s=0.0)))
    except PnpVisionError as exc:
        assert str(exc)
        _reply_roundtrips(error_reply(None, exc))


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
