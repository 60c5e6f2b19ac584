"""Constrained answers: score exactly a template's answers after the assistant prefix.

Where the answers' first tokens differ, the last prompt position's logits decide: one forward
pass, the LM head on one position. Where they share a first token, each answer's whole token
sequence is scored on top of the cached prompt (and trimmed off again). When one answer's
tokens are a prefix of another's (`NO` / `NOT_SURE`), every answer is scored up to the
end-of-turn token, so "NO" means "NO and stop", not "anything that starts with NO".
The probabilities are a softmax over the answers' total log-probabilities.

Where the architecture can (`Adapter.packs_questions`), several one-pass questions about one
image are scored together: prefix and every question's suffix in one packed forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pnp_vision.errors import ConfigError
from pnp_vision.inspect.models.base import Adapter, ImageInputs, PromptCache


@dataclass(frozen=True)
class AnswerPlan:
    answers: tuple[str, ...]
    sequences: tuple[tuple[int, ...], ...]
    one_pass: bool  # distinct first tokens: the last prompt position decides

    @property
    def first_tokens(self) -> list[int]:
        return [seq[0] for seq in self.sequences]


def plan_answers(tokenizer: Any, answers: tuple[str, ...]) -> AnswerPlan:
    """How to score `answers` with this tokenizer; ConfigError if it cannot tell them apart."""
    sequences = [tuple(tokenizer.encode(a, add_special_tokens=False)) for a in answers]
    for answer, seq in zip(answers, sequences, strict=True):
        if not seq:
            raise ConfigError(f"answer {answer!r} encodes to no tokens")
    if len(set(sequences)) != len(sequences):
        raise ConfigError(f"answers {list(answers)} encode to identical token sequences")
    if len({seq[0] for seq in sequences}) == len(sequences):
        return AnswerPlan(answers, tuple(sequences), one_pass=True)
    ambiguous = any(
        a != b and b[: len(a)] == a for a in sequences for b in sequences
    )  # one answer is a prefix of another: make each end explicitly
    if ambiguous:
        end = tokenizer.eos_token_id
        if end is None:
            raise ConfigError(f"answers {list(answers)} overlap and the tokenizer has no eos")
        sequences = [(*seq, int(end)) for seq in sequences]
    return AnswerPlan(answers, tuple(sequences), one_pass=False)


def score_answers(
    adapter: Adapter,
    cache: PromptCache,
    suffix: list[int],
    inputs: ImageInputs,
    plan: AnswerPlan,
    probes: tuple[int, ...] = (),
) -> tuple[Any, list[float] | None]:
    """Log-probabilities (mx array, one per answer) of the answers after prefix + `suffix`,
    and the logits of the `probes` tokens there (familiarity's answer state; None if none).

    The cache comes back at the length it had after `suffix` (answer tokens trimmed off).
    """
    import mlx.core as mx

    hidden = adapter.forward(cache, suffix, inputs)
    last = adapter.logits(hidden[:, -1:, :])[0, 0].astype(mx.float32)
    state = last[mx.array(probes)].tolist() if probes else None
    logprobs = last - mx.logsumexp(last)
    if plan.one_pass:
        return logprobs[mx.array(plan.first_tokens)], state
    base = cache.offset
    totals = []
    for seq in plan.sequences:
        total = logprobs[seq[0]]
        if len(seq) > 1:
            steps = adapter.logits(adapter.forward(cache, list(seq[:-1]), inputs))[0]
            steps = steps.astype(mx.float32)
            steps = steps - mx.logsumexp(steps, axis=-1, keepdims=True)
            total = total + mx.sum(steps[mx.arange(len(seq) - 1), mx.array(seq[1:])])
            mx.eval(total)
            cache.trim_to(base)
        totals.append(total)
    return mx.stack(totals), state


def softmax(logprobs: list[float]) -> list[float]:
    """Probabilities over the answer set from total log-probabilities (stable, in float64)."""
    import math

    top = max(logprobs)
    weights = [math.exp(v - top) for v in logprobs]
    total = sum(weights)
    return [w / total for w in weights]
