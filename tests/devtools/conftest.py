"""Fixtures shared by the generator's tests."""

from __future__ import annotations

import pytest

from pnp_vision.devtools import synthetic_marking as sm


@pytest.fixture
def drawn_shapes(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Every (shapes, pose matrix) the marking scenes draw, in order: what a label's points
    must match (a frame that hides the only cue it asks about is drawn again, so a frame's
    label belongs to its last drawing)."""
    calls: list[tuple] = []
    real = sm.draw_shapes

    def spy(img, shapes, m):
        calls.append((shapes, m))
        return real(img, shapes, m)

    monkeypatch.setattr(sm, "draw_shapes", spy)
    return calls
