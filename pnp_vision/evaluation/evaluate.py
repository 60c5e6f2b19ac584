"""Score an inspector on a labelled recording: accuracy, confusion, confidence and latency.

This is the tool that picks a model, a pixel budget and a confidence bar for a rig, so it asks
the questions exactly as the worker does: all questions about one frame in one `inspect` call
(one image encoding), through the normal `Inspector`. Nothing here knows how the model works.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pnp_vision.config import DEFAULT_MIN_CONFIDENCE
from pnp_vision.errors import ConfigError
from pnp_vision.evaluation import metrics
from pnp_vision.evaluation.labels import LabelledFrame, load_labels
from pnp_vision.logs import kv

log = logging.getLogger(__name__)


class _Result(Protocol):
    answer: str
    confident: bool
    probabilities: dict[str, float]
    timings: Any


class _Inspector(Protocol):
    def inspect(self, image: Any, questions: list[Any]) -> list[_Result]: ...


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


@dataclass
class TemplateStats:
    """Counts for one template; `confusion[truth][predicted]` over the template's answers."""

    template: str
    answers: list[str]
    total: int = 0
    correct: int = 0
    below_bar: int = 0
    correct_confident: int = 0
    confident_wrong: int = 0
    trained: bool | None = None  # from the answers: False if the model folder did not learn it
    # familiarity, where the folder has a statistic for the template: answers whose view was
    # familiar / unfamiliar, and of each how many were right and how many confident and wrong
    familiar: int = 0
    unfamiliar: int = 0
    correct_familiar: int = 0
    correct_unfamiliar: int = 0
    confident_wrong_unfamiliar: int = 0  # 0 by the service's rule; counted to prove it
    latencies_ms: list[float] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)  # probability of the given answer
    hits: list[bool] = field(default_factory=list)
    eligible: list[bool] = field(default_factory=list)  # may be confident: trained, familiar
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.confusion = {t: dict.fromkeys(self.answers, 0) for t in self.answers}

    def add(
        self,
        truth: str,
        predicted: str,
        confident: bool,
        latency_ms: float,
        confidence: float | None = None,
        trained: bool | None = None,
        familiar: bool | None = None,
    ) -> None:
        self.total += 1
        self.correct += truth == predicted
        self.below_bar += not confident
        self.correct_confident += confident and truth == predicted
        self.confident_wrong += confident and truth != predicted
        self.confusion[truth][predicted] += 1
        self.latencies_ms.append(latency_ms)
        if confidence is not None:
            self.confidences.append(confidence)
            self.hits.append(truth == predicted)
            self.eligible.append(trained is not False and familiar is not False)
        if trained is not None:
            self.trained = trained
        if familiar is True:
            self.familiar += 1
            self.correct_familiar += truth == predicted
        elif familiar is False:
            self.unfamiliar += 1
            self.correct_unfamiliar += truth == predicted
            self.confident_wrong_unfamiliar += confident and truth != predicted

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def below_bar_share(self) -> float:
        return self.below_bar / self.total if self.total else 0.0

    @property
    def confident_accuracy(self) -> float | None:
        """Accuracy of the answers that cleared the bar (the ones a machine acts on)."""
        confident = self.total - self.below_bar
        return self.correct_confident / confident if confident else None

    @property
    def confident_wrong_share(self) -> float:
        """Answers a machine would act on that are wrong, as a share of all answers."""
        return self.confident_wrong / self.total if self.total else 0.0

    @property
    def familiar_share(self) -> float | None:
        """Share of answers whose view was familiar (None: the folder has no statistic)."""
        judged = self.familiar + self.unfamiliar
        return self.familiar / judged if judged else None

    @property
    def ece(self) -> float | None:
        return metrics.expected_calibration_error(self.confidences, self.hits)

    def _familiarity(self) -> dict[str, Any] | None:
        """Familiar vs unfamiliar answers: how many, and how right (None: not judged)."""
        if not self.familiar + self.unfamiliar:
            return None
        return {
            "familiar_share": self.familiar_share,
            "familiar": self.familiar,
            "unfamiliar": self.unfamiliar,
            "accuracy_familiar": self.correct_familiar / self.familiar if self.familiar else None,
            "accuracy_unfamiliar": (
                self.correct_unfamiliar / self.unfamiliar if self.unfamiliar else None
            ),
            "confident_wrong_familiar_share": (
                (self.confident_wrong - self.confident_wrong_unfamiliar) / self.familiar
                if self.familiar
                else None
            ),
            "confident_wrong_unfamiliar": self.confident_wrong_unfamiliar,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "questions": self.total,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "below_bar": self.below_bar,
            "below_bar_share": self.below_bar_share,
            "confident_accuracy": self.confident_accuracy,
            "confident_wrong": self.confident_wrong,
            "confident_wrong_share": self.confident_wrong_share,
            "trained": self.trained,
            "familiarity": self._familiarity(),
            "ece": self.ece,
            "reliability": metrics.reliability(self.confidences, self.hits),
            "coverage": metrics.coverage(self.confidences, self.hits, eligible=self.eligible),
            "latency_ms_p50": _percentile(self.latencies_ms, 50),
            "latency_ms_p95": _percentile(self.latencies_ms, 95),
            "confusion": self.confusion,
        }


@dataclass
class EvalReport:
    model: str
    recording: str
    min_confidence: float
    frames: int = 0
    skipped_frames: list[str] = field(default_factory=list)
    frame_latencies_ms: list[float] = field(default_factory=list)
    templates: dict[str, TemplateStats] = field(default_factory=dict)

    @property
    def questions(self) -> int:
        return sum(s.total for s in self.templates.values())

    @property
    def accuracy(self) -> float:
        return sum(s.correct for s in self.templates.values()) / self.questions if self else 0.0

    @property
    def confident_wrong_share(self) -> float:
        wrong = sum(s.confident_wrong for s in self.templates.values())
        return wrong / self.questions if self else 0.0

    def __bool__(self) -> bool:
        return self.questions > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "recording": self.recording,
            "min_confidence": self.min_confidence,
            "frames": self.frames,
            "skipped_frames": self.skipped_frames,
            "questions": self.questions,
            "accuracy": self.accuracy,
            "confident_wrong_share": self.confident_wrong_share,
            "frame_latency_ms_p50": _percentile(self.frame_latencies_ms, 50),
            "frame_latency_ms_p95": _percentile(self.frame_latencies_ms, 95),
            "templates": {name: s.as_dict() for name, s in sorted(self.templates.items())},
        }


def _read_frame(path: Path) -> np.ndarray | None:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return image if image is not None and image.size else None


def evaluate(
    inspector: _Inspector,
    recording: Path,
    answers_of: Callable[[str], list[str]],
    *,
    model_name: str = "",
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    templates: Iterable[str] | None = None,
    frames: list[LabelledFrame] | None = None,
) -> EvalReport:
    """Ask every labelled question of `recording` and compare with its label.

    `answers_of(template)` gives a template's answer set (the confusion matrix axes);
    `templates` keeps only those templates. A frame file that is missing or unreadable is
    logged and listed in `skipped_frames`, as the replay camera does; a label whose answer is
    not one of its template's answers is a `ConfigError`.
    """
    from pnp_vision.inspect import Question

    recording = Path(recording)
    wanted = set(templates) if templates is not None else None
    report = EvalReport(model_name, str(recording), min_confidence)
    for frame in frames if frames is not None else load_labels(recording):
        labelled = [q for q in frame.questions if wanted is None or q.template in wanted]
        if not labelled:
            continue
        image = _read_frame(recording / frame.file)
        if image is None:
            log.warning("eval skipping unreadable frame %s", kv(file=frame.file, seq=frame.seq))
            report.skipped_frames.append(frame.file)
            continue
        for q in labelled:
            if q.template not in report.templates:
                report.templates[q.template] = TemplateStats(q.template, answers_of(q.template))
            if q.answer not in report.templates[q.template].answers:
                raise ConfigError(
                    f"{recording}: frame {frame.file}: label {q.answer!r} is not an answer of"
                    f" template {q.template!r} ({', '.join(answers_of(q.template))})"
                )
        questions = [Question(template=q.template, params=q.params) for q in labelled]
        started = time.perf_counter()
        results = inspector.inspect(image, questions)
        report.frame_latencies_ms.append((time.perf_counter() - started) * 1000.0)
        report.frames += 1
        for q, result in zip(labelled, results, strict=True):
            report.templates[q.template].add(
                q.answer,
                result.answer,
                bool(result.confident),
                float(result.timings.total_ms),
                confidence=float(result.probabilities[result.answer]),
                trained=getattr(result, "trained", None),
                familiar=getattr(result, "familiar", None),
            )
    return report


def evaluate_folders(
    model: Path, folders: dict[str, Path], min_confidence: float
) -> dict[str, Any]:
    """`pnp-vision eval --json` of every recording in `folders`, by name, with one model load:
    the folder opened as the worker and `eval` open it (`open_inspector`: a taught template
    answers through the folder's own adapter, with its own calibration and familiarity)."""
    from pnp_vision.config import PROJECT_ROOT
    from pnp_vision.inspect.runtime import setup_runtime

    setup_runtime()  # before anything imports mlx
    from pnp_vision.inspect import TemplateSet
    from pnp_vision.inspect.adapters import open_inspector

    templates = TemplateSet.load(PROJECT_ROOT / "prompts")
    inspector = open_inspector(model, templates, min_confidence=min_confidence)
    return {
        name: evaluate(
            inspector,
            folder,
            lambda t: list(templates.get(t).answers),
            model_name=str(model),
            min_confidence=min_confidence,
        ).as_dict()
        for name, folder in folders.items()
    }
