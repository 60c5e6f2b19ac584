"""Plain-text rendering of an `EvalReport`: one table row per template, then each confusion."""

from __future__ import annotations

from pnp_vision.evaluation import metrics
from pnp_vision.evaluation.evaluate import EvalReport, TemplateStats


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _trained(value: bool | None) -> str:
    return {True: "yes", False: "NO", None: "-"}[value]


def _rows(report: EvalReport) -> list[list[str]]:
    rows = [
        ["template", "trained", "n", "accuracy", "below bar", "acc. confident", "conf. wrong",
         "familiar", "ECE", "p50 ms", "p95 ms"]
    ]  # fmt: skip
    for name, stats in sorted(report.templates.items()):
        d = stats.as_dict()
        rows.append(
            [
                name,
                _trained(stats.trained),
                str(stats.total),
                _pct(stats.accuracy),
                _pct(stats.below_bar_share),
                _pct(stats.confident_accuracy),
                _pct(stats.confident_wrong_share),
                _pct(stats.familiar_share),
                "-" if stats.ece is None else f"{stats.ece:.3f}",
                _ms(d["latency_ms_p50"]),
                _ms(d["latency_ms_p95"]),
            ]
        )
    return rows


def _familiarity_rows(judged: list[TemplateStats]) -> list[list[str]]:
    rows = [["template", "familiar", "acc. familiar", "acc. unfamiliar", "conf. wrong familiar"]]
    for stats in judged:
        f = stats.as_dict()["familiarity"]
        rows.append(
            [
                stats.template,
                f"{stats.familiar}/{stats.familiar + stats.unfamiliar}",
                _pct(f["accuracy_familiar"]),
                _pct(f["accuracy_unfamiliar"]),
                _pct(f["confident_wrong_familiar_share"]),
            ]
        )
    return rows


def _reliability(stats: TemplateStats) -> list[str]:
    rows = [[f"{stats.template}: confidence", "answers", "mean conf.", "accuracy"]]
    for row in metrics.reliability(stats.confidences, stats.hits):
        if row["answers"]:
            rows.append(
                [
                    f"{row['lo']:.1f}-{row['hi']:.1f}",
                    str(row["answers"]),
                    _pct(row["confidence"]),
                    _pct(row["accuracy"]),
                ]
            )
    return _table(rows)


def _coverage(stats: TemplateStats) -> list[str]:
    rows = [[f"{stats.template}: bar", "coverage", "accuracy", "conf. wrong"]]
    for row in metrics.coverage(stats.confidences, stats.hits, eligible=stats.eligible):
        rows.append(
            [
                f"{row['bar']:g}",
                _pct(row["coverage"]),
                _pct(row["accuracy"]),
                _pct(row["confident_wrong_share"]),
            ]
        )
    if stats.trained is False:  # the same rule as the summary's "trained NO" line
        return [*_table(rows), f"{stats.template}: not trained, never confident at any bar"]
    return _table(rows)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def _confusion(stats: TemplateStats) -> list[str]:
    rows = [[f"{stats.template} (true \\ answered)", *stats.answers]]
    rows += [
        [truth, *(str(stats.confusion[truth][p]) for p in stats.answers)] for truth in stats.answers
    ]
    return _table(rows)


def render_text(report: EvalReport) -> str:
    """The table people read: per template accuracy, share below the bar, confident-and-wrong
    share, calibration error, latency; then per template its confusion matrix, reliability
    table (accuracy per confidence bin) and accuracy vs coverage at candidate bars."""
    d = report.as_dict()
    lines = [
        f"model {report.model}",
        f"recording {report.recording}: {report.frames} frames, {report.questions} questions,"
        f" min confidence {report.min_confidence:g}",
    ]
    if report.skipped_frames:
        lines.append(f"skipped {len(report.skipped_frames)} unreadable frame(s)")
    lines += ["", *_table(_rows(report))]
    lines.append(
        f"overall accuracy {_pct(report.accuracy)}, confident and wrong"
        f" {_pct(report.confident_wrong_share)}; per frame (all its questions in one call):"
        f" p50 {_ms(d['frame_latency_ms_p50'])} ms, p95 {_ms(d['frame_latency_ms_p95'])} ms"
    )
    if any(s.trained is False for s in report.templates.values()):
        lines.append(
            "trained NO: the model folder did not learn the template; its answers are never"
            " confident"
        )
    judged = [s for _, s in sorted(report.templates.items()) if s.familiar_share is not None]
    if judged:
        lines += ["", *_table(_familiarity_rows(judged))]
        lines.append(
            "familiar: the share of answers whose view looked like the template's training views"
            " to the model; an unfamiliar answer is never confident"
        )
    for _, stats in sorted(report.templates.items()):
        lines += ["", *_confusion(stats), "", *_reliability(stats), "", *_coverage(stats)]
    return "\n".join(lines)
