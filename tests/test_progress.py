"""Progress lines: a bar on a terminal, a line per tenth in logs."""

from __future__ import annotations

import io

from pnp_vision.progress import Progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_one_line_per_tenth() -> None:
    out = io.StringIO()
    with Progress("eval", 200, stream=out) as bar:
        for _ in range(200):
            bar.advance()
    lines = out.getvalue().splitlines()
    assert len(lines) == 11  # 0/10 ... 10/10 of the way
    assert lines[-1].startswith("eval: 200/200 in ")
    assert "left" in lines[5] and "left" not in lines[-1]


def test_a_terminal_gets_one_bar_redrawn_in_place() -> None:
    out = _Tty()
    with Progress("record", 4, stream=out, width=8) as bar:
        for _ in range(4):
            bar.advance(note="seq 7")
    text = out.getvalue()
    assert text.count("\r") == 4 and text.endswith("\n") and text.count("\n") == 1
    assert "[####....] record: 2/4" in text and "[########] record: 4/4" in text
    assert "(seq 7)" in text


def test_an_interrupted_bar_ends_its_line() -> None:
    out = _Tty()
    with Progress("train", 10, stream=out) as bar:
        bar.advance(3)
    assert out.getvalue().endswith("\n")


def test_an_unknown_total_logs_now_and_then() -> None:
    out = io.StringIO()
    bar = Progress("record", 0, stream=out)
    for _ in range(250):
        bar.advance()
    counts = [line.split(":")[1].split()[0] for line in out.getvalue().splitlines()]
    assert counts == ["1/?", "10/?", "100/?", "200/?"]
