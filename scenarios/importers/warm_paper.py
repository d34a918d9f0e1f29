"""The warm-model paper's released prompt files as scenarios, each prompt replayed verbatim."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from personas import FileError
from scenarios.conditions import Condition
from scenarios.flow import Flow, Stage, StageKind
from scenarios.importers.readers import DatasetError, Row, read_csv, require_columns, row_error
from scenarios.importers.shaping import (
    GENERIC_ANECDOTE,
    GENERIC_AUTHORITY,
    IMPORT_FLOW,
    answer_clause,
    clause,
    escape,
    short_answers,
    stem_id,
    title,
    validate_scenario,
)
from scenarios.library import builtin_flows
from scenarios.model import Domain, Scenario

__all__ = ["WarmPaperColumns", "import_warm_paper", "warm_paper_columns"]


@dataclass(frozen=True)
class WarmPaperColumns:
    """Where one of the warm-model paper's prompt files keeps each item's parts.

    Its QA files (trivia, TruthfulQA) have short answers, its MedQA files an answer and a wrong
    answer, its disinformation files a true and a false statement.
    """

    question: str
    correct: str
    incorrect: str
    template: str
    domain: Domain

    def statements(self, row: Mapping[str, str]) -> tuple[str, str]:
        """The row's truth and false belief, each as a sentence."""
        correct, incorrect = (" ".join(row[column].split()) for column in (self.correct, self.incorrect))
        if self.domain is Domain.DISINFORMATION:
            return correct, incorrect
        return f"The answer is {correct.rstrip('.')}.", f"The answer is {incorrect.rstrip('.')}."

    def clauses(self, row: Mapping[str, str]) -> tuple[str, str]:
        """The row's correct answer and false belief as clauses completing "I (don't) think ..."."""
        if self.domain is Domain.DISINFORMATION:
            context = [row[self.question], row[self.correct], row[self.incorrect]]
            return clause(row[self.correct], context), clause(row[self.incorrect], context)
        return answer_clause(row[self.correct]), answer_clause(row[self.incorrect])


_WARM_PAPER_FILES = (
    WarmPaperColumns("content_key", "correct_answer", "incorrect_answer", "prompt_template", Domain.FACTUAL),
    WarmPaperColumns("question", "answer", "wrong_answer", "prompt_type", Domain.MEDICAL),
    WarmPaperColumns("prompt_disinfo", "ground_truth", "ground_false", "prompt_template", Domain.DISINFORMATION),
)
_WARM_PAPER_TEMPLATES = {
    "original": Condition.ORIGINAL,
    "original_neutral": Condition.NEUTRAL,
    "incorrect": Condition.FALSE_BELIEF,
    "correct": Condition.DENIED_CORRECT,
}
_WARM_PAPER_CONTEXTS = {
    "emotion:sad": "warm-sad",
    "emotion:happy": "warm-happy",
    "emotion:anger": "warm-angry",
    "relation:close": "warm-close",
    "relation:hierarchical_up": "warm-deferential",
    "relation:hierarchical_down": "warm-instrumental",
    "stake:high": "warm-high-stakes",
    "stake:low": "warm-low-stakes",
}
_UNMODIFIED = "unmodified"
_PANDAS_NONE = " (the paper's files write some answers, such as None, as empty cells: fill it in)"


def warm_paper_columns(path: Path, header: Iterable[str]) -> WarmPaperColumns:
    """The layout of one of the warm-model paper's prompt files, from its header.

    Raises:
        DatasetError: the header is none of the paper's.
    """
    names = list(header)
    for columns in _WARM_PAPER_FILES:
        if columns.question in names:
            require_columns(path, names, (columns.correct, columns.incorrect, columns.template, "amendment_type"))
            return columns
    wanted = " or ".join(repr(columns.question) for columns in _WARM_PAPER_FILES)
    raise DatasetError([row_error(path, 1, f"not one of the warm-model paper's prompt files: no column {wanted}")])


def _warm_paper_condition(template: str, amendment: str) -> tuple[Condition, str] | str:
    """The condition and the persona reference of a row, or what is wrong with it."""
    if template not in _WARM_PAPER_TEMPLATES:
        return f"unknown prompt template {template!r}; known: {', '.join(_WARM_PAPER_TEMPLATES)}"
    base = _WARM_PAPER_TEMPLATES[template]
    if amendment == _UNMODIFIED:
        return base, ""
    if amendment not in _WARM_PAPER_CONTEXTS:
        return f"unknown amendment_type {amendment!r}; known: {', '.join([_UNMODIFIED, *_WARM_PAPER_CONTEXTS])}"
    emotional = Condition.EMOTIONAL if base is Condition.NEUTRAL else Condition(f"emotional+{base}")
    return emotional, f"preset:warm-paper/{_WARM_PAPER_CONTEXTS[amendment]}"


def _opening_flow(prompt: str) -> Flow:
    """The ``pushback`` flow whose first turn is ``prompt``, sent verbatim."""
    flow = builtin_flows()[IMPORT_FLOW]
    opening = Stage(kind=StageKind.SAY, user=escape(prompt), next=flow.stages[flow.start].next, verbatim=True)
    return flow.model_copy(update={"stages": {**flow.stages, flow.start: opening}})


def import_warm_paper(paths: Sequence[Path]) -> list[Scenario]:
    """Scenarios from the warm-model paper's prompt files (``<dataset>_<model>_outputs.csv``), one per row.

    Each row's ``prompt`` is the first turn, verbatim; the built-in ``pushback`` flow follows
    (``--turns 1`` is the paper's single-turn protocol). The row's condition comes from its
    prompt template (``original``, ``original_neutral``, ``incorrect``, ``correct``: the
    conditions ``original``, ``neutral``, ``false_belief``, ``denied_correct``) and its
    ``amendment_type``: a context makes it the ``emotional+`` form, played with the
    ``warm-paper`` preset's persona for that context. The correct and incorrect answers give the
    truth, the false belief and the correct answer. Row N of ``F.csv`` becomes ``f-NNNN``.

    Args:
        paths: the CSV files.

    Returns:
        The scenarios, file by file, in row order.

    Raises:
        DatasetError: a file is missing, malformed or not one of the paper's, two files have the
            same name, or a row is empty or has an unknown template or context.
    """
    errors: list[FileError] = []
    scenarios: list[Scenario] = []
    stems: dict[str, Path] = {}
    for path in paths:
        prefix = stem_id(path)
        if prefix in stems:
            errors.append(row_error(path, 1, f"same scenario ids as {stems[prefix]}; import it into another folder"))
            continue
        stems[prefix] = path
        header, rows = read_csv(path)
        require_columns(path, header, ("prompt",))
        columns = warm_paper_columns(path, header)
        for number, (line, row) in enumerate(rows, 1):
            needed = ("prompt", columns.question, columns.correct, columns.incorrect)
            empty = [name for name in needed if not row[name].strip()]
            case = _warm_paper_condition(row[columns.template].strip(), row["amendment_type"].strip())
            errors += [
                row_error(path, line, f"column {name!r} is empty{_PANDAS_NONE if name != 'prompt' else ''}")
                for name in empty
            ]
            if isinstance(case, str):
                errors.append(row_error(path, line, case))
            if empty or isinstance(case, str):
                continue
            truth, _ = columns.statements(row)
            correct_answer, belief = columns.clauses(row)
            question = row[columns.question].strip()
            data: Row = {
                "id": f"{prefix}-{number:04d}",
                "domain": columns.domain,
                "title": title(question),
                "question": question,
                "truth": truth,
                "false_belief": belief,
                "correct_answer": correct_answer,
                "correction": {
                    "references": [truth],
                    "markers": short_answers([row[columns.correct]]),
                    "belief_markers": short_answers([row[columns.incorrect]]),
                },
                "anecdote": GENERIC_ANECDOTE,
                "authority": GENERIC_AUTHORITY,
                "flow": _opening_flow(row["prompt"]),
                "condition": case[0],
                "persona": case[1],
                "source": f"warm-model paper {path.name} line {line}",
            }
            scenario = validate_scenario(data, path, line, {"question": columns.question}, errors)
            if scenario is not None:
                scenarios.append(scenario)
    if errors:
        raise DatasetError(errors)
    return scenarios
