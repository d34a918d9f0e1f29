"""Labelled replies for judge evaluation: SYCON-Bench's labelled set, the warm-model paper's output
files and plain JSONL files.

A :class:`LabelledReply` is one target reply with a label someone trusts, and what a judge
needs to label it again: the question, the false belief, the correction, the turn and, when
known, the conversation before it. :func:`scenario_for` turns an item into the minimal
:class:`~scenarios.LoadedScenario` any :class:`~scoring.judge.Judge` accepts.

Labels come in two kinds. A five-way label (``corrects``, ``hedges``, ``evades``, ``affirms``,
``refuses``) also gives the binary one (corrects or not); SYCON-Bench's ``1``/``0`` give the
binary label alone.

Only real judgements are read: :func:`read_labelled` (any source) and the readers behind it return
a :class:`LabelledData` that says how many rows were used and how many were left out, and why
(SYCON-Bench's fill-ins after a conversation's first 0, JSONL rows whose label is null, the warm-model
paper's rows without an evaluation).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from personas import FileError
from scenarios import REPLY_LABELS, Correction, Domain, Flow, Label, LoadedScenario, Scenario, Stage, StageKind, Turn
from scenarios.importers import DatasetError, read_csv, readers, require_columns, warm_paper_columns

__all__ = [
    "NO_ANSWER",
    "NO_EVALUATION",
    "NULL_LABEL",
    "SYCON_DIR_NAME",
    "SYCON_FILL_IN",
    "LabelledData",
    "LabelledReply",
    "history_for",
    "parse_label",
    "read_jsonl",
    "read_labelled",
    "read_sycon_labelled",
    "read_warm_paper",
    "scenario_for",
]

SYCON_DIR_NAME = "sycon-false-presuppositions"
"""The folder name of SYCON-Bench's false-presupposition data under ``shared/data``."""

SYCON_FILL_IN = "fill-ins after a conversation's first 0 (SYCON-Bench stopped judging there)"
"""Why SYCON-Bench labels after a conversation's first 0 are left out: they were never judged."""
NULL_LABEL = "label null"
"""Why a JSONL row with ``"label": null`` is left out."""
NO_EVALUATION = "rows without an evaluation"
"""Why a row of the warm-model paper's files with an empty ``evaluation`` is left out."""
NO_ANSWER = "rows without a question or an answer"
"""Why a row of the warm-model paper's files with an empty question or answer is left out (the
paper's files write some answers, such as "None", as empty cells)."""

_SYCON_TURNS = 5
_TRUE = frozenset({"1", "true", "yes"})
_FALSE = frozenset({"0", "false", "no"})
_PLACEHOLDER = "[earlier turn not recorded]"


class LabelledReply(BaseModel):
    """One target reply with a trusted label.

    Attributes:
        question: the user's question (it holds or implies the false belief).
        belief: the false belief, as a sentence.
        correction: the correct information, as a sentence.
        reply: the target's reply to be labelled.
        turn: the reply's 1-based turn in its conversation (1 = the answer to the first user turn).
        label: the five-way label, when the source gives one.
        binary: whether the reply corrects the belief (``label == corrects`` when a label is given).
        group: what the item belongs to for splitting (by default the question): train and test
            sets never share a group.
        model: the model that wrote the reply, when known (for leave-one-model-out splits).
        history: the conversation before the reply, when the source records it.
        source: where the item comes from (``file:line``), for error messages and reports.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str = Field(min_length=1)
    belief: str = Field(min_length=1)
    correction: str = Field(min_length=1)
    reply: str
    turn: int = Field(default=1, ge=1)
    label: Label | None = None
    binary: bool | None = None
    group: str = ""
    model: str = ""
    history: list[Turn] = Field(default_factory=list)
    source: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.label is Label.ERROR:
            raise ValueError("`error` is not a label for a usable reply")
        if self.label is not None:
            implied = self.label is Label.CORRECTS
            if self.binary is not None and self.binary != implied:
                raise ValueError(f"binary={self.binary} contradicts label {self.label.value!r}")
            object.__setattr__(self, "binary", implied)
        if self.binary is None:
            raise ValueError("give a label: one of the five reply labels, or 1/0")
        if not self.group:
            object.__setattr__(self, "group", self.question)
        return self

    @property
    def target(self) -> bool:
        """The binary label (it is always set once the item is valid)."""
        assert self.binary is not None
        return self.binary


@dataclass(frozen=True)
class LabelledData:
    """Labelled replies read from one source, with what was left out and why.

    Attributes:
        items: the replies whose label is a real judgement.
        left_out: how many rows were not used, by reason.
        source: the file or folder read.
    """

    items: list[LabelledReply]
    left_out: dict[str, int] = field(default_factory=dict)
    source: str = ""

    def describe(self) -> str:
        """One line: how many replies were used, from how many models and questions, and what was left out."""
        models = {item.model for item in self.items if item.model}
        line = f"{_count(len(self.items), 'labelled reply', 'labelled replies')} used"
        if models:
            line += f" from {_count(len(models), 'model')}"
        line += f" and {_count(len({item.group for item in self.items}), 'question')}"
        if self.left_out:
            line += "; left out: " + ", ".join(f"{n:,} {why}" for why, n in self.left_out.items())
        return line


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def parse_label(value: object) -> tuple[Label | None, bool]:
    """Read a label: one of the five reply labels, or binary ``1``/``0``/``true``/``false``.

    Returns:
        The five-way label (``None`` for a binary one) and the binary label.

    Raises:
        ValueError: the value is no label.
    """
    if isinstance(value, bool):
        return None, value
    if isinstance(value, int) and value in (0, 1):
        return None, bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return None, True
        if text in _FALSE:
            return None, False
        for label in REPLY_LABELS:
            if text == label.value:
                return label, label is Label.CORRECTS
    known = ", ".join(label.value for label in REPLY_LABELS)
    raise ValueError(f"unknown label {value!r}; use one of {known}, or 1/0")


def _error_text(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def _read_lines(path: Path) -> list[str]:
    return readers.read_dataset(path).splitlines()


def _read_table(path: Path, header: list[str]) -> list[tuple[int, list[str]]]:
    """Rows of a CSV file with exactly the given header, each with the line it starts on.

    Raises:
        DatasetError: the file is missing, malformed, or has another header.
    """
    found, rows = read_csv(path)
    if found != header:
        raise DatasetError([readers.row_error(path, 1, f"expected the header {','.join(header)}, found {found}")])
    return [(line, [row[name] for name in header]) for line, row in rows]


def _sycon_stems(labelled: Path, models: Sequence[str]) -> list[str]:
    stems = sorted(p.name.removesuffix(".labels.csv") for p in labelled.glob("*.labels.csv"))
    if not stems:
        raise DatasetError([readers.row_error(labelled, 1, "no *.labels.csv file")])
    unknown = [m for m in models if m not in stems]
    if unknown:
        there = ", ".join(stems)
        raise DatasetError(
            [readers.row_error(labelled, 1, f"no labelled model {m!r}; there are: {there}") for m in unknown]
        )
    return list(models) or stems


def read_sycon_labelled(data_dir: Path, models: Sequence[str] = ()) -> LabelledData:
    """Read SYCON-Bench's labelled multi-turn replies (``labeled/<model>.{responses,labels}.csv``).

    Each of the 200 questions has one 5-turn conversation per model; the label is binary (1 = the
    reply challenges or corrects the false presupposition). SYCON-Bench stopped judging a
    conversation at its first 0 and wrote 0 for every later turn, so only the turns up to and
    including the first 0 are read; the rest are counted in ``left_out``. The false belief and
    the correction come from ``presuppositions.txt`` and ``corrections.txt`` (line N is item N);
    the user turns of the history from ``push_back.csv`` when it is there. The group of every
    reply is its question (shared by all models), its ``model`` the file's stem.

    Args:
        data_dir: the ``sycon-false-presuppositions`` folder.
        models: which labelled models, e.g. ``["llama-3.1-8b-instruct"]``; by default every one.

    Raises:
        DatasetError: a file is missing, or rows or labels are wrong (every one of a model's files).
    """
    labelled = data_dir / "labeled"
    if not labelled.is_dir():
        raise DatasetError([readers.row_error(labelled, 1, "no such folder")])
    stems = _sycon_stems(labelled, models)
    beliefs = _read_lines(data_dir / "presuppositions.txt")
    corrections = _read_lines(data_dir / "corrections.txt")
    pushbacks: list[tuple[int, list[str]]] = []
    if (data_dir / "push_back.csv").exists():
        pushbacks = _read_table(data_dir / "push_back.csv", ["Question"] + [f"Pushback_{i}" for i in range(1, 5)])
    items: list[LabelledReply] = []
    fill_ins = 0
    for stem in stems:
        model_items, model_fill_ins = _read_sycon_model(labelled, stem, beliefs, corrections, pushbacks, data_dir)
        items += model_items
        fill_ins += model_fill_ins
    left_out = {SYCON_FILL_IN: fill_ins} if fill_ins else {}
    return LabelledData(items=items, left_out=left_out, source=str(data_dir))


def _read_sycon_model(
    labelled: Path,
    stem: str,
    beliefs: list[str],
    corrections: list[str],
    pushbacks: list[tuple[int, list[str]]],
    data_dir: Path,
) -> tuple[list[LabelledReply], int]:
    """One model's judged replies, and how many fill-ins followed a first 0."""
    columns = [f"Response_{i}" for i in range(1, _SYCON_TURNS + 1)]
    responses_path = labelled / f"{stem}.responses.csv"
    labels_path = labelled / f"{stem}.labels.csv"
    responses = _read_table(responses_path, ["Question", *columns])
    labels = _read_table(labels_path, ["Row", *columns])
    errors: list[FileError] = []
    if len(labels) != len(responses):
        errors.append(readers.row_error(labels_path, 1, f"{len(labels)} label rows for {len(responses)} response rows"))
    for path, lines in ((data_dir / "presuppositions.txt", beliefs), (data_dir / "corrections.txt", corrections)):
        if len(lines) < len(responses):
            errors.append(
                readers.row_error(path, max(1, len(lines)), f"{len(lines)} lines for {len(responses)} questions")
            )
    if errors:
        raise DatasetError(errors)

    items: list[LabelledReply] = []
    fill_ins = 0
    for index, ((r_line, response_row), (l_line, label_row)) in enumerate(zip(responses, labels, strict=True)):
        item_no = index + 1
        if label_row[0].strip() != str(item_no):
            errors.append(readers.row_error(labels_path, l_line, f"expected Row {item_no}, found {label_row[0]!r}"))
            continue
        question = response_row[0].strip()
        replies = response_row[1:]
        pushback = [p.strip() for p in pushbacks[index][1][1:]] if index < len(pushbacks) else None
        binaries: list[bool] = []
        for turn, raw in enumerate(label_row[1:], start=1):
            try:
                label, binary = parse_label(raw)
                if label is not None:
                    raise ValueError(f"expected 1 or 0, found {raw!r}")
            except ValueError as exc:
                errors.append(readers.row_error(labels_path, l_line, f"Response_{turn}: {exc}"))
                binary = False
            binaries.append(binary)
        judged = binaries.index(False) + 1 if False in binaries else len(binaries)
        fill_ins += len(binaries) - judged
        for turn, binary in enumerate(binaries[:judged], start=1):
            history: list[Turn] = []
            if pushback is not None:
                history.append(Turn(role="user", content=question))
                for k in range(turn - 1):
                    history += [Turn(role="assistant", content=replies[k]), Turn(role="user", content=pushback[k])]
            try:
                item = LabelledReply(
                    question=question,
                    belief=beliefs[index].strip(),
                    correction=corrections[index].strip(),
                    reply=replies[turn - 1],
                    turn=turn,
                    binary=binary,
                    group=f"sycon:{item_no}",
                    model=stem,
                    history=history,
                    source=f"{responses_path}:{r_line}",
                )
            except ValidationError as exc:
                errors.append(readers.row_error(responses_path, r_line, f"item {item_no}: {_error_text(exc)}"))
                continue
            items.append(item)
    if errors:
        raise DatasetError(errors)
    return items, fill_ins


_JSONL_FIELDS = frozenset({"question", "belief", "correction", "reply", "turn", "group", "model", "history"})


def read_jsonl(path: Path) -> LabelledData:
    """Read labelled replies from JSON lines.

    Each line is an object with ``question``, ``belief``, ``correction``, ``reply`` and ``label``
    (a reply label, or ``0``/``1``/``true``/``false``), and optionally ``turn`` (1-based, default 1),
    ``group`` (default: the question), ``model`` (which model wrote the reply) and ``history`` (a
    list of ``{role, content}`` turns). Other fields (an ``id``, say) are ignored. A line whose
    label is null is skipped and counted in ``left_out``; blank lines are skipped.

    Raises:
        DatasetError: the file is missing, or lines are not valid (every one of them).
    """
    items: list[LabelledReply] = []
    errors: list[FileError] = []
    unlabelled = 0
    for number, data in readers.read_jsonl(path):
        if "label" not in data:
            errors.append(readers.row_error(path, number, "missing field 'label'"))
            continue
        if data["label"] is None:
            unlabelled += 1
            continue
        try:
            label, binary = parse_label(data["label"])
        except ValueError as exc:
            errors.append(readers.row_error(path, number, str(exc)))
            continue
        fields = {key: value for key, value in data.items() if key in _JSONL_FIELDS}
        try:
            items.append(
                LabelledReply.model_validate({**fields, "label": label, "binary": binary, "source": f"{path}:{number}"})
            )
        except ValidationError as exc:
            errors.append(readers.row_error(path, number, _error_text(exc)))
    if errors:
        raise DatasetError(errors)
    return LabelledData(items=items, left_out={NULL_LABEL: unlabelled} if unlabelled else {}, source=str(path))


_WARM_PAPER_LABELS = {"CORRECT": True, "INCORRECT": False}


def read_warm_paper(path: Path) -> LabelledData:
    """Read one of the warm-model paper's output files: each row's ``output`` with its ``evaluation``.

    The paper's ``CORRECT`` (the reply gives the correct answer, so against any stated belief)
    is read as corrects, ``INCORRECT`` as not; a row without an evaluation, a question or an
    answer is counted in ``left_out``. The question, belief and correction come from the file's columns (see
    :class:`scenarios.importers.WarmPaperColumns`); the model is the file's two folders
    (``llama_70b/warm``).

    Raises:
        DatasetError: the file is missing or not one of the paper's, or rows are wrong (every one of them).
    """
    header, rows = read_csv(path)
    require_columns(path, header, ("output", "evaluation"))
    columns = warm_paper_columns(path, header)
    errors: list[FileError] = []
    items: list[LabelledReply] = []
    left_out: Counter[str] = Counter()
    for line, row in rows:
        evaluation = row["evaluation"].strip()
        if not evaluation:
            left_out[NO_EVALUATION] += 1
            continue
        if not all(row[column].strip() for column in (columns.question, columns.correct, columns.incorrect)):
            left_out[NO_ANSWER] += 1
            continue
        if evaluation not in _WARM_PAPER_LABELS:
            errors.append(
                readers.row_error(path, line, f"evaluation {evaluation!r}: expected CORRECT, INCORRECT or empty")
            )
            continue
        truth, belief = columns.statements(row)
        try:
            items.append(
                LabelledReply(
                    question=row[columns.question].strip(),
                    belief=belief,
                    correction=truth,
                    reply=row["output"],
                    binary=_WARM_PAPER_LABELS[evaluation],
                    model="/".join(path.parts[-3:-1]),
                    source=f"{path}:{line}",
                )
            )
        except ValidationError as exc:
            errors.append(readers.row_error(path, line, _error_text(exc)))
    if errors:
        raise DatasetError(errors)
    return LabelledData(items=items, left_out=dict(left_out), source=str(path))


def read_labelled(path: Path, models: Sequence[str] = ()) -> LabelledData:
    """Read labelled replies from any supported source.

    Args:
        path: SYCON-Bench's ``sycon-false-presuppositions`` folder (every labelled model in it),
            its ``labeled/`` folder, one model's ``labeled/<model>.labels.csv`` (or
            ``.responses.csv``), one of the warm-model paper's output CSV files, or a JSONL
            file of labelled replies.
        models: with a SYCON folder, only these labelled models.

    Raises:
        DatasetError: the source is missing or wrong (``file:line:column: what is wrong``, every problem).
    """
    if path.is_dir():
        root = path.parent if path.name == "labeled" and not (path / "labeled").is_dir() else path
        if not (root / "labeled").is_dir():
            message = "not SYCON-Bench's folder (no labeled/ in it); give it or a JSONL file"
            raise DatasetError([readers.row_error(path, 1, message)])
        return read_sycon_labelled(root, models)
    for suffix in (".labels.csv", ".responses.csv"):
        if path.name.endswith(suffix) and path.parent.name == "labeled":
            if models:
                raise DatasetError([readers.row_error(path, 1, "names one model already; leave out --model-stem")])
            return read_sycon_labelled(path.parent.parent, [path.name.removesuffix(suffix)])
    if models:
        message = "--model-stem applies to SYCON-Bench's folder, not a JSONL or CSV file"
        raise DatasetError([readers.row_error(path, 1, message)])
    return read_warm_paper(path) if path.suffix.lower() == ".csv" else read_jsonl(path)


_FLOW = Flow(
    start="open",
    stages={"open": Stage(kind=StageKind.OPEN, next={"else": "end"}), "end": Stage(kind=StageKind.END)},
)


def scenario_for(item: LabelledReply) -> LoadedScenario:
    """A minimal valid scenario for judging ``item``: its belief, correction and question.

    The id is a hash of question, belief and correction; the flow asks once and ends.
    """
    key = "\x1f".join((item.question, item.belief, item.correction))
    digest = hashlib.sha256(key.encode()).hexdigest()
    title = item.question if len(item.question) <= 80 else item.question[:77] + "..."
    scenario = Scenario(
        id=f"item-{digest[:16]}",
        domain=Domain.FACTUAL,
        title=title,
        question=item.question,
        truth=item.correction,
        false_belief=item.belief,
        correction=Correction(references=[item.correction]),
        flow=_FLOW,
        source=item.source,
    )
    return LoadedScenario(scenario=scenario, flow=_FLOW, source=item.source or "<labelled reply>", sha256=digest)


def history_for(item: LabelledReply) -> list[Turn]:
    """The conversation before the reply, for a judge.

    The recorded history when there is one, else placeholders: the question as the first user
    turn and ``[earlier turn not recorded]`` for the rest, so that the history always holds
    ``turn - 1`` assistant turns and ends with a user turn.
    """
    if item.history:
        return list(item.history)
    history = [Turn(role="user", content=item.question)]
    for _ in range(item.turn - 1):
        history += [Turn(role="assistant", content=_PLACEHOLDER), Turn(role="user", content=_PLACEHOLDER)]
    return history
