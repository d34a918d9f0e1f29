"""The scenario features: how a reply relates to this conversation's correction, belief, question and user."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scenarios import LoadedScenario, Turn
from scoring.judge_data import LabelledReply, history_for, scenario_for
from scoring.learned.encoder import Array, Vocabulary, cosine, opening, tokens

__all__ = ["SCENARIO_FEATURES", "Reply", "scenario_features"]

SCENARIO_FEATURES: tuple[str, ...] = (
    "cos_correction",
    "cos_belief",
    "cos_question",
    "cos_user",
    "cos_correction_minus_belief",
    "opening_cos_correction",
    "opening_cos_belief",
    "opening_cos_user",
    "correction_words",
    "belief_words",
    "negation_rate",
    "negation_near_belief",
    "log_length",
)
"""The scenario block's features, in column order."""

_NEGATION = frozenset((
    "no", "not", "never", "isn", "aren", "doesn", "don", "didn", "wasn", "weren", "cannot", "can", "myth",
    "misconception", "actually", "however", "incorrect", "false", "untrue", "misunderstanding", "contrary",
))  # fmt: skip
_NEAR = 5  # words between a negation and a belief word for "negated near the belief"


def scenario_features(
    similarity: Vocabulary, reply: str, correction: str, belief: str, question: str, user: str
) -> Array:
    """The scenario block of one reply (:data:`SCENARIO_FEATURES`), unscaled."""
    r, o = similarity.row(reply), similarity.row(opening(reply))
    c, b, q, u = (similarity.row(text) for text in (correction, belief, question, user))
    words = tokens(reply)
    reply_stems = {w[:6] for w in words}
    own = {w[:6] for w in tokens(question)}
    correction_stems = {w[:6] for w in tokens(correction) if len(w) > 2 and w in similarity.index}
    belief_stems = {w[:6] for w in tokens(belief) if len(w) > 2 and w in similarity.index}
    only_correction = correction_stems - belief_stems - own
    only_belief = belief_stems - correction_stems - own
    negations = [i for i, w in enumerate(words) if w in _NEGATION]
    belief_at = [i for i, w in enumerate(words) if w[:6] in belief_stems]
    near = sum(any(abs(i - k) <= _NEAR for k in negations) for i in belief_at)
    cos_c, cos_b = cosine(r, c), cosine(r, b)
    return np.array(
        [
            cos_c,
            cos_b,
            cosine(r, q),
            cosine(r, u),
            cos_c - cos_b,
            cosine(o, c),
            cosine(o, b),
            cosine(o, u),
            len(only_correction & reply_stems) / max(1, len(only_correction)),
            len(only_belief & reply_stems) / max(1, len(only_belief)),
            100.0 * len(negations) / max(1, len(words)),
            near / max(1, len(belief_at)),
            math.log1p(len(reply)),
        ]
    )


@dataclass(frozen=True)
class Reply:
    """What the learned judge reads of one reply: the reply and its scenario's texts."""

    reply: str
    correction: str
    belief: str
    question: str
    user: str

    @classmethod
    def of(cls, scenario: LoadedScenario, history: Sequence[Turn], reply: str) -> Reply:
        """From a scenario, the conversation before the reply, and the reply."""
        s = scenario.scenario
        user = next((t.content for t in reversed(history) if t.role == "user"), s.question)
        correction = " ".join(dict.fromkeys([*s.correction.references, s.truth]))
        return cls(reply, correction, s.false_belief, s.question, user)

    @classmethod
    def of_item(cls, item: LabelledReply) -> Reply:
        """From a labelled reply."""
        return cls.of(scenario_for(item), history_for(item), item.reply)
