"""The Inspector: a resident model answering templated questions about images.

One call may ask several questions about one image. Questions that need the same image view
(template ROI, pixel budget) and system text form a group: the image is prepared and encoded
once per group, and the system + image prefix is shared. Where the architecture packs questions
and every answer set is decided by its first token, the prefix and all the questions' suffixes
(question text + assistant header) run as one packed forward pass, each suffix seeing only the
prefix and itself. Otherwise the prefix runs once into a KV cache and each question runs its own
suffix and answers on top of it.

Several independent calls (other images, questions and ROIs: requests from several
controllers) can be answered together (`inspect_batch`): the vision tower runs over all their
views at once, and their one-pass questions run as one batched language pass, one row per view.

MLX streams belong to the thread that made them, so an Inspector must be used on the thread
that created it; the worker gives it a dedicated thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from pnp_vision.config import DEFAULT_MIN_CONFIDENCE
from pnp_vision.errors import (
    BadRequest,
    ConfigError,
    ImageError,
    ModelError,
    PnpVisionError,
    Unfamiliar,
)
from pnp_vision.inspect import imageprep
from pnp_vision.inspect.calibration import Calibration
from pnp_vision.inspect.familiarity import Familiarity, probe_tokens, tokens_of
from pnp_vision.inspect.results import InspectionResult, Timings
from pnp_vision.inspect.runtime import Runtime, setup_runtime
from pnp_vision.inspect.scoring import (
    AnswerPlan,
    plan_answers,
    score_answers,
    softmax,
)
from pnp_vision.inspect.templates import Question, Template, TemplateSet
from pnp_vision.logs import kv
from pnp_vision.protocol.requests import MAX_QUESTIONS

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from pnp_vision.inspect.models.base import Adapter

log = logging.getLogger(__name__)

COMPUTE_DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class _Item:
    """One question on its way through a call."""

    index: int
    question: Question
    template: Template
    text: str  # rendered question
    plan: AnswerPlan
    mirror: tuple[bool, bool] = (False, False)  # the view mirrored (the template's `mirror`)
    ids: list[int] = field(default_factory=list)
    language_ms: float = 0.0
    probabilities: list[float] = field(default_factory=list)
    familiarity: float | None = None  # the view's score / the template's threshold
    state: Any = None  # the probe tokens' logits where it answers (familiarity's answer state)
    tokens: Any = None  # the view's vision tokens (kept for familiarity's bank, or a capture)


@dataclass(frozen=True)
class BatchCall:
    """One `inspect` call's arguments, as one member of `Inspector.inspect_batch`."""

    image: Any  # a BGR numpy array, a PIL image or encoded bytes, as `inspect` takes
    questions: Sequence[Question]
    roi: tuple[int, int, int, int] | None = None


@dataclass
class _View:
    """One image view of a call in a batch: the questions on it and its processor inputs."""

    system: str
    members: list[_Item]
    inputs: Any
    prefix: list[int] = field(default_factory=list)


@dataclass
class _Call:
    """A call on its way through a batch; `error` set: it failed alone, its neighbours not."""

    index: int
    items: list[_Item]
    views: list[_View]
    prep_ms: float
    error: Exception | None = None


@dataclass
class _GroupCost:
    prep_ms: float = 0.0
    vision_ms: float = 0.0
    language_ms: float = 0.0  # shared by the group: the prefix, or the packed pass


class Inspector:
    """Loads a local mlx-vlm model folder once and answers `Question`s about images.

    `runtime`: the process's `setup_runtime()` unless given (tests pass variants).
    `calibrated=False` ignores the folder's calibration and familiarity statistic (training
    scores raw answers with it)."""

    def __init__(
        self,
        model_dir: Path,
        templates: TemplateSet,
        *,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        compute_dtype: str = "auto",
        runtime: Runtime | None = None,
        refuse_untrained: bool = False,
        refuse_unfamiliar: bool = False,
        calibrated: bool = True,
    ) -> None:
        if not 0.0 <= min_confidence <= 1.0:
            raise ConfigError(f"min_confidence {min_confidence} must be between 0 and 1")
        if compute_dtype not in COMPUTE_DTYPES:
            raise ConfigError(
                f"compute_dtype {compute_dtype!r} must be one of {', '.join(COMPUTE_DTYPES)}"
            )
        self.runtime = runtime or setup_runtime()  # before anything imports mlx
        from pnp_vision.inspect.loading import load_model
        from pnp_vision.inspect.models import adapter_for, patching
        from pnp_vision.inspect.tuning import tune_model

        self._thread = threading.get_ident()
        self.model_dir = Path(model_dir)
        self.templates = templates
        self.min_confidence = min_confidence
        self.refuse_untrained = refuse_untrained  # calibration: learned templates, temperatures
        self.calibration = Calibration.load(self.model_dir) if calibrated else Calibration()
        self.familiarity = Familiarity.load(self.model_dir) if calibrated else Familiarity()
        self.refuse_unfamiliar = refuse_unfamiliar
        t0 = time.perf_counter()
        self._model, self._processor, self._config = load_model(self.model_dir)
        self.tuning = tune_model(self._model, compute_dtype, device=self.runtime.device)
        self._dtype = self.tuning.compute_dtype
        model_type = self._config["model_type"]
        self.fast_paths = patching.patch_model(self._model, model_type, self.runtime)
        self._adapter = adapter_for(self._model, self._processor, self._config, self.runtime)
        self._tokenizer = self._processor.tokenizer
        self._plans = {t.name: plan_answers(self._tokenizer, tuple(t.answers)) for t in templates}
        # familiarity's answer state: the probe tokens' logits, scored beside the answers'
        self._probes = self.familiarity.probes
        self._capture = False  # `answer_features`: keep every item's tokens and state
        self._ids_cache: dict[tuple[str, str], list[int]] = {}
        log.info(
            "model loaded %s",
            kv(
                path=self.model_dir,
                model_type=model_type,
                dtype=self._dtype,
                load_ms=(time.perf_counter() - t0) * 1e3,
            ),
        )
        log.info("fast paths: %s", "; ".join(self.fast_paths) or "none")

    # -- setup -----------------------------------------------------------------------------
    def _check_thread(self) -> None:
        if threading.get_ident() != self._thread:
            raise ModelError(
                "Inspector used from a different thread than the one that created it"
                " (MLX streams are per thread)"
            )

    # -- public ----------------------------------------------------------------------------
    @property
    def model(self) -> Any:
        """The mlx-vlm model (for benchmarks and reference checks; same thread rules apply)."""
        return self._model

    @property
    def processor(self) -> Any:
        """The mlx-vlm processor (tokenizer + image processor)."""
        return self._processor

    @property
    def adapter(self) -> Adapter:
        """The architecture's adapter (training and benchmarks drive the model through it)."""
        return self._adapter

    def answer_plan(self, template: str) -> AnswerPlan:
        """How a template's answers are scored with this tokenizer (one pass or sequences)."""
        self.templates.get(template)
        return self._plans[template]

    def info(self) -> dict[str, Any]:
        import mlx.core as mx
        from mlx.utils import tree_flatten

        params = tree_flatten(self._model.parameters())
        return {
            "model_type": self._config["model_type"],
            "path": str(self.model_dir),
            "device": str(mx.default_device()),
            "dtype": self._dtype,
            "parameter_bytes": int(sum(a.nbytes for _, a in params)),
            "blas": self.runtime.backend.blas,
            "templates": self.templates.names(),
        }

    def warm_up(self, batch_size: int = 1) -> None:
        """One full inspection of a blank frame, so the first real request is not the slowest.

        With compiled passes (GPUs) and `batch_size` > 1, also batches of 2 .. `batch_size`
        calls of one question of each template: a compiled pass traces once per input shape,
        seconds for a 7B, and a worker that met a new batch size under load stalled on it (16
        controllers on an H100: no answer in 9 s; docs/deployment.md). A template's view has
        one shape at any camera size, so its shapes are all traced here."""
        import numpy as np

        blank = np.full((64, 64, 3), 128, np.uint8)
        asked = [
            Question(template=t.name, params={n: p.choices[0] for n, p in t.params.items()})
            for t in self.templates
            if all(p.choices for p in t.params.values())
        ]
        if not asked:
            return
        self.inspect(blank, asked[:1])
        if not self.runtime.compile or batch_size < 2:
            return
        start = time.perf_counter()
        for question in asked:
            for count in range(2, batch_size + 1):
                self.inspect_batch([BatchCall(blank, [question])] * count)
        log.info(
            "batch shapes warmed %s",
            kv(templates=len(asked), up_to=batch_size, ms=(time.perf_counter() - start) * 1e3),
        )

    def prompt(self, question: Question) -> str:
        """The chat prompt text the model sees for `question` (one image placeholder)."""
        template = self.templates.get(question.template)
        messages = self._adapter.messages(template.system, template.render(question.params))
        return self._tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )

    def inspect(
        self,
        image: np.ndarray | Image.Image | bytes,
        questions: Sequence[Question],
        *,
        roi: tuple[int, int, int, int] | None = None,
    ) -> list[InspectionResult]:
        """Answer every question about `image`, in order.

        Raises ImageError, UnknownTemplate, BadParams (all checked before any model work),
        BadRequest, ModelError. A failure never becomes an answer.
        """
        return [result for _, result in self._inspect_items(image, questions, roi)]

    def answer_features(
        self, image: np.ndarray | Image.Image | bytes, questions: Sequence[Question]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per question, what familiarity looks at: the view's vision tokens (tokens, width)
        and the answer state (the probe tokens' logits where it answers). The statistic is
        fitted on these (`teach/familiarity_fit.py`), so it describes exactly what is scored."""
        import numpy as np

        if not self._probes:
            lm = self.model.language_model
            self._probes = probe_tokens(int(lm.args.vocab_size), int(lm.args.hidden_size))
        self._capture = True
        try:
            items = [item for item, _ in self._inspect_items(image, questions, None)]
        finally:
            self._capture = False
        return [(item.tokens, np.asarray(item.state, np.float32)) for item in items]

    @property
    def probes(self) -> tuple[int, ...]:
        """The probe tokens of the answer state (set by the folder, or a capture)."""
        return self._probes

    def _inspect_items(
        self,
        image: np.ndarray | Image.Image | bytes,
        questions: Sequence[Question],
        roi: tuple[int, int, int, int] | None,
    ) -> list[tuple[_Item, InspectionResult]]:
        self._check_thread()
        start = time.perf_counter()
        items = self._validate(questions)
        source = imageprep.decode(image)
        decode_ms = (time.perf_counter() - start) * 1e3
        groups = _by_view(items)
        results: list[InspectionResult | None] = [None] * len(items)
        for (template_roi, max_pixels, system, view, mirror), members in groups.items():
            cost = self._run_group(
                source, roi, template_roi, max_pixels, system, members, view, mirror
            )
            n = len(members)
            for item in members:
                prep = decode_ms / len(items) + cost.prep_ms / n
                vision = cost.vision_ms / n
                language = cost.language_ms / n + item.language_ms
                results[item.index] = self._result(item, prep, vision, language)
        log.debug(
            "inspect %s",
            kv(questions=len(items), groups=len(groups), ms=(time.perf_counter() - start) * 1e3),
        )
        return [(item, r) for item, r in zip(items, results, strict=True) if r is not None]

    def inspect_batch(self, calls: Sequence[BatchCall]) -> list[list[InspectionResult] | Exception]:
        """Answer several independent calls together: the vision tower over all their views in
        one pass per patch grid, and all their one-pass questions in one batched language pass
        (one row per view), where the architecture can (`Adapter.batches`); else one call
        after another. A single call is exactly `inspect`.

        Returns each call's outcome, in order: its results, or the exception `inspect` raises
        for it alone (bad image, template or params, an unfamiliar view refused, a model
        error): a bad call never fails its neighbours. Should a shared pass fail, every call
        runs again on its own, so only the one that breaks it gets the error. The probabilities
        equal `inspect`'s to float rounding; timings split the shared passes evenly over all
        the batch's questions (a call's `total_ms` is its share)."""
        self._check_thread()
        if len(calls) < 2 or not self._adapter.batches:
            return [self._alone(call) for call in calls]
        start = time.perf_counter()
        outcomes: list[list[InspectionResult] | Exception | None] = [None] * len(calls)
        work: list[_Call] = []
        for i, call in enumerate(calls):
            try:
                work.append(self._prepare_call(i, call))
            except Exception as exc:  # as `inspect` would raise it, for this call only
                outcomes[i] = exc
        try:
            vision_ms, language_ms = self._run_batch(work)
        except Exception as exc:  # a shared pass failed: each call alone finds the culprit
            log.warning(
                "batch failed, each call again on its own %s",
                kv(calls=len(work), error=f"{type(exc).__name__}: {exc}"),
            )
            for w in work:
                outcomes[w.index] = self._alone(calls[w.index])
            return [o if o is not None else ModelError("no outcome") for o in outcomes]
        answered = [w for w in work if w.error is None]
        share = max(1, sum(len(w.items) for w in answered))
        for w in work:
            if w.error is not None:
                outcomes[w.index] = w.error
                continue
            prep = w.prep_ms / len(w.items)
            outcomes[w.index] = [
                self._result(i, prep, vision_ms / share, language_ms / share + i.language_ms)
                for i in w.items
            ]
        log.debug(
            "inspect batch %s",
            kv(calls=len(calls), answered=len(answered), ms=(time.perf_counter() - start) * 1e3),
        )
        return [o if o is not None else ModelError("no outcome") for o in outcomes]

    # -- internals -------------------------------------------------------------------------
    def _alone(self, call: BatchCall) -> list[InspectionResult] | Exception:
        try:
            return self.inspect(call.image, call.questions, roi=call.roi)
        except Exception as exc:
            return exc

    def _prepare_call(self, index: int, call: BatchCall) -> _Call:
        """Checks, decode and image prep of one call of a batch (its own time, its errors)."""
        start = time.perf_counter()
        items = self._validate(call.questions)
        source = imageprep.decode(call.image)
        views = [
            _View(system, members, self._view_inputs(source, call.roi, roi, pixels, size, mirror))
            for (roi, pixels, system, size, mirror), members in _by_view(items).items()
        ]
        return _Call(index, items, views, (time.perf_counter() - start) * 1e3)

    def _run_batch(self, work: list[_Call]) -> tuple[float, float]:
        """Vision for every view of `work`, then the batched language pass (and the KV-cache
        path for views it cannot take); per-call failures go to the call's `error`. Returns
        the shared (vision, language) milliseconds. Raises what a shared pass raises."""
        import mlx.core as mx

        adapter = self._adapter
        t0 = time.perf_counter()
        adapter.encode_batch([v.inputs for w in work for v in w.views])
        features = [v.inputs.features for w in work for v in w.views]
        mx.async_eval(features)  # the device starts on vision ...
        packed: list[_View] = []
        cached: list[tuple[_Call, _View]] = []
        for w in work:
            try:
                for v in w.views:
                    v.prefix = self._shared_prefix(v.system, v.members, v.inputs)
            except PnpVisionError as exc:
                w.error = exc
                continue
            for v in w.views:
                if adapter.packs_questions and all(m.plan.one_pass for m in v.members):
                    packed.append(v)
                else:
                    cached.append((w, v))
        logits, columns, probe_columns = None, [], []
        if packed:
            plans = [m.plan for v in packed for m in v.members]
            tokens, columns, probe_columns = _answer_columns(plans, self._probes)
            rows = [(v.prefix, _suffixes(v), v.inputs) for v in packed]
            logits = adapter.batched_logits(rows, tokens).astype(mx.float32)
            if self.runtime.device == "gpu":  # the CPU would run it now
                mx.async_eval(logits)  # ... while the host queues the language pass
        mx.eval(features)
        t1 = time.perf_counter()
        if logits is not None:
            values = logits.tolist()
            members = [m for v in packed for m in v.members]
            for m, row, cols in zip(members, values, columns, strict=True):
                m.probabilities = softmax([row[c] for c in cols])
                m.state = [row[c] for c in probe_columns]
        for w, v in cached:
            if w.error is not None:
                continue
            try:
                self._score_on_cache(v.prefix, v.members, v.inputs)
            except PnpVisionError as exc:
                w.error = exc
            except Exception as exc:  # mlx / mlx-vlm failures of this call's own passes
                names = ", ".join(sorted({m.template.name for m in v.members}))
                w.error = ModelError(f"model failed answering {names}: {type(exc).__name__}: {exc}")
        for w in work:
            if w.error is None:
                try:
                    for v in w.views:
                        self._judge_familiarity(v.inputs, v.members)
                except Unfamiliar as exc:
                    w.error = exc
        own_ms = sum(m.language_ms for w in work for v in w.views for m in v.members)
        return (t1 - t0) * 1e3, (time.perf_counter() - t1) * 1e3 - own_ms

    def _validate(self, questions: Sequence[Question]) -> list[_Item]:
        if isinstance(questions, Question | dict | str) or not isinstance(questions, Sequence):
            raise BadRequest("questions must be a list of Question")
        if not questions:
            raise BadRequest("no questions given")
        if len(questions) > MAX_QUESTIONS:
            raise BadRequest(f"{len(questions)} questions in one call; at most {MAX_QUESTIONS}")
        items = []
        for i, question in enumerate(questions):
            if not isinstance(question, Question):
                try:
                    question = Question.model_validate(question)
                except ValidationError as exc:
                    raise BadRequest(f"question {i}: {exc}") from exc
            template = self.templates.get(question.template)
            if self.refuse_untrained:
                self.calibration.require(template.name, self.model_dir)
            text = template.render(question.params)
            mirror = template.mirroring(question.params)
            items.append(_Item(i, question, template, text, self._plans[template.name], mirror))
        return items

    def _prompt_ids(self, system: str, text: str) -> list[int]:
        key = (system, text)
        ids = self._ids_cache.get(key)
        if ids is None:
            try:
                rendered = self._tokenizer.apply_chat_template(
                    self._adapter.messages(system, text),
                    tokenize=False,
                    add_generation_prompt=True,
                )
            except Exception as exc:  # a chat template that raises (jinja) is a model problem
                raise ModelError(f"the model's chat template failed: {exc}") from exc
            ids = list(self._tokenizer.encode(rendered, add_special_tokens=False))
            if len(self._ids_cache) > 4096:
                self._ids_cache.clear()
            self._ids_cache[key] = ids
        return ids

    def _run_group(
        self,
        source: np.ndarray | Image.Image,
        roi: tuple[int, int, int, int] | None,
        template_roi: tuple[float, float, float, float] | None,
        max_pixels: int | None,
        system: str,
        members: list[_Item],
        view_size: tuple[int, int] | None = None,
        mirror: tuple[bool, bool] = (False, False),
    ) -> _GroupCost:
        import mlx.core as mx

        cost = _GroupCost()
        t0 = time.perf_counter()
        inputs = self._view_inputs(source, roi, template_roi, max_pixels, view_size, mirror)
        cost.prep_ms = (time.perf_counter() - t0) * 1e3
        adapter = self._adapter
        try:
            t0 = time.perf_counter()
            adapter.encode(inputs)
            mx.async_eval(inputs.features)  # the device starts on vision ...
            prefix = self._shared_prefix(system, members, inputs)
            if adapter.packs_questions and all(item.plan.one_pass for item in members):
                suffixes = [item.ids[len(prefix) :] for item in members]
                plans = [m.plan for m in members]
                tokens, columns, probe_columns = _answer_columns(plans, self._probes)
                logits = adapter.packed_logits(prefix, suffixes, inputs, tokens)
                logits = logits.astype(mx.float32)
                if self.runtime.device == "gpu":  # the CPU would run it now
                    mx.async_eval(logits)  # ... while the host queues the language pass
                mx.eval(inputs.features)
                t1 = time.perf_counter()
                rows = logits.tolist()
                for item, row, cols in zip(members, rows, columns, strict=True):
                    item.probabilities = softmax([row[c] for c in cols])
                    item.state = [row[c] for c in probe_columns]
            else:
                mx.eval(inputs.features)
                t1 = time.perf_counter()
                self._score_on_cache(prefix, members, inputs)
            self._judge_familiarity(inputs, members)
            cost.vision_ms = (t1 - t0) * 1e3
            own_ms = sum(item.language_ms for item in members)
            cost.language_ms = (time.perf_counter() - t1) * 1e3 - own_ms
        except PnpVisionError:
            raise
        except Exception as exc:  # mlx / mlx-vlm failures, translated at this one boundary
            names = ", ".join(sorted({m.template.name for m in members}))
            raise ModelError(
                f"model failed answering {names}: {type(exc).__name__}: {exc}"
            ) from exc
        return cost

    def _view_inputs(
        self,
        source: np.ndarray | Image.Image,
        roi: tuple[int, int, int, int] | None,
        template_roi: tuple[float, float, float, float] | None,
        max_pixels: int | None,
        view_size: tuple[int, int] | None,
        mirror: tuple[bool, bool] = (False, False),
    ) -> Any:
        """The view (ROI crop, resize) as the processor's inputs; ImageError if it refuses."""
        view = imageprep.prepare(
            source, roi=roi, template_roi=template_roi, max_pixels=max_pixels, keep_array=True,
            view_size=view_size, mirror=mirror,
        )  # fmt: skip
        try:
            return self._adapter.preprocess(view, max_pixels)
        except Exception as exc:
            width, height = imageprep.size_of(view)
            raise ImageError(
                f"image of {width}x{height} pixels rejected by the processor: {exc}"
            ) from exc

    def _judge_familiarity(self, inputs: Any, members: list[_Item]) -> None:
        """Each member's familiarity score, from the view's features (made into an array once)
        and its answer state."""
        import numpy as np

        known = [m for m in members if self.familiarity.knows(m.template.name)]
        if not known and not self._capture:
            return
        # the tower's output as it is (mlx) unless a capture keeps it: one conversion less
        tokens = tokens_of(inputs.features) if self._capture else inputs.features
        for item in members:
            if self._capture:
                item.tokens = tokens
            if self.familiarity.knows(item.template.name):
                state = None if item.state is None else np.asarray(item.state, np.float32)
                item.familiarity = self.familiarity.relative_score(
                    item.template.name, tokens, state
                )
        if self.refuse_unfamiliar:
            strange = [m for m in known if m.familiarity is not None and m.familiarity > 1.0]
            if strange:
                raise Unfamiliar(
                    "the view looks like nothing "
                    + ", ".join(f"{m.template.name} (score {m.familiarity:.2f})" for m in strange)
                    + " was trained on; refused because refuse_unfamiliar is set"
                )

    def _shared_prefix(self, system: str, members: list[_Item], inputs: Any) -> list[int]:
        """Sets each member's prompt ids (image expanded); returns the prefix they all share."""
        adapter = self._adapter
        for item in members:
            item.ids = adapter.expand_image(self._prompt_ids(system, item.text), inputs)
        prefix = members[0].ids[: adapter.prefix_length(members[0].ids)]
        for item in members:
            if item.ids[: len(prefix)] != prefix:
                raise ModelError(
                    f"template {item.template.name!r}: prompt does not share the image prefix"
                )
        return prefix

    def _score_on_cache(self, prefix: list[int], members: list[_Item], inputs: Any) -> None:
        """The prefix once into a KV cache, then each question's suffix and answers on top."""
        import mlx.core as mx

        cache = self._adapter.new_cache()
        hidden = self._adapter.forward(cache, prefix, inputs)
        mx.eval(hidden, [(c.keys, c.values) for c in cache.layers if c.keys is not None])
        for item in members:
            t0 = time.perf_counter()
            suffix = item.ids[len(prefix) :]
            logprobs, state = score_answers(
                self._adapter, cache, suffix, inputs, item.plan, self._probes
            )
            item.probabilities = softmax(logprobs.tolist())
            item.state = state
            cache.trim_to(len(prefix))
            item.language_ms = (time.perf_counter() - t0) * 1e3

    def _result(
        self, item: _Item, prep_ms: float, vision_ms: float, language_ms: float
    ) -> InspectionResult:
        raw = dict(zip(item.plan.answers, item.probabilities, strict=True))
        probs, answer, confident, trained = self.calibration.judge(
            item.template.name, raw, self.min_confidence
        )
        familiar = None if item.familiarity is None else item.familiarity <= 1.0
        return InspectionResult(
            template=item.template.name,
            params=dict(item.question.params),
            question=item.text,
            answer=answer,
            probabilities=probs,
            confident=confident and familiar is not False,
            trained=trained,
            familiar=familiar,
            familiarity=None if item.familiarity is None else round(item.familiarity, 4),
            timings=Timings(
                prep_ms=prep_ms,
                vision_ms=vision_ms,
                language_ms=language_ms,
                total_ms=prep_ms + vision_ms + language_ms,
            ),
        )


def _by_view(items: list[_Item]) -> dict[tuple[Any, ...], list[_Item]]:
    """Questions grouped by the image view they need (ROI, pixel budget, view size, mirroring)
    and system text: one image prep, vision pass and shared prefix per group."""
    groups: dict[tuple[Any, ...], list[_Item]] = {}
    for item in items:
        t = item.template
        groups.setdefault((t.roi, t.max_pixels, t.system, t.view, item.mirror), []).append(item)
    return groups


def _suffixes(view: _View) -> list[list[int]]:
    return [m.ids[len(view.prefix) :] for m in view.members]


def _answer_columns(
    plans: list[AnswerPlan], probes: tuple[int, ...] = ()
) -> tuple[tuple[int, ...], list[list[int]], list[int]]:
    """The tokens one logits pass must score for `plans` (their first tokens) and for the
    answer state (`probes`), each plan's columns and the probes' columns."""
    tokens = sorted({t for plan in plans for t in plan.first_tokens} | set(probes))
    column = {t: i for i, t in enumerate(tokens)}
    answers = [[column[t] for t in plan.first_tokens] for plan in plans]
    return tuple(tokens), answers, [column[t] for t in probes]
