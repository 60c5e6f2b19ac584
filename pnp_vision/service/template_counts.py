"""Per template: questions answered, error replies by code, reply times (for `status`).

A worker-wide count mixes a slow or failing check in with the healthy ones; an operator needs
to see which template is slow or refused. Reply times are kept for the latest `WINDOW` answers
of each template, so the percentiles follow the model as it is now. I/O thread only.
"""

from __future__ import annotations

from collections import deque

from pnp_vision.protocol.requests import InspectRequest, Reply, TemplateCounts

WINDOW = 200
MAX_NAMES = 256  # a client naming ever new (unknown) templates must not grow this without end
MAX_CAMERAS = 64  # cameras counted apart per template


class PerTemplate:
    def __init__(self) -> None:
        self._answered: dict[str, int] = {}
        self._errors: dict[str, dict[str, int]] = {}
        self._ms: dict[str, deque[float]] = {}
        self._unfamiliar: dict[str, dict[str, int]] = {}

    def count(self, request: InspectRequest, reply: Reply, ms: float | None) -> None:
        """An inspect reply: every question of it counts for its template."""
        answers = (reply.result or {}).get("results") or []
        for i, spec in enumerate(request.question_list()):
            name = spec.template
            new = name not in self._answered and name not in self._errors
            if new and len(self._answered) + len(self._errors) >= MAX_NAMES:
                continue
            if reply.ok:
                self._answered[name] = self._answered.get(name, 0) + 1
                if ms is not None:
                    self._ms.setdefault(name, deque(maxlen=WINDOW)).append(ms)
                if i < len(answers) and answers[i].get("familiar") is False:
                    cameras = self._unfamiliar.setdefault(name, {})
                    camera = request.camera or ""
                    if camera not in cameras and len(cameras) >= MAX_CAMERAS:
                        camera = "(other)"  # inline images may name any camera: stay bounded
                    cameras[camera] = cameras.get(camera, 0) + 1
            elif reply.error is not None:
                codes = self._errors.setdefault(name, {})
                codes[reply.error.code.value] = codes.get(reply.error.code.value, 0) + 1

    def snapshot(self) -> dict[str, TemplateCounts]:
        names = sorted(set(self._answered) | set(self._errors))
        return {
            name: TemplateCounts(
                answered=self._answered.get(name, 0),
                errors=dict(self._errors.get(name, {})),
                p50_ms=_percentile(self._ms.get(name), 0.50),
                p95_ms=_percentile(self._ms.get(name), 0.95),
                unfamiliar=dict(self._unfamiliar.get(name, {})),
            )
            for name in names
        }


def _percentile(values: deque[float] | None, q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)
