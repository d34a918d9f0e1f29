"""The end-of-run summary: correction rate by turn, per target and condition, errors and simulator fidelity."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from scenarios import Label, Status, Transcript

__all__ = ["CorrectionRates", "RunTotals", "correction_rate_by_turn", "fidelity_summary", "run_totals"]

CorrectionRates = dict[tuple[str, str], dict[int, tuple[int, int]]]
"""(target, condition) -> turn (1-based) -> (replies that correct, replies with a usable label)."""


def correction_rate_by_turn(transcripts: Iterable[Transcript]) -> CorrectionRates:
    """Count corrections among labelled replies, by target, condition and turn.

    Knowledge checks and replies without a usable label (errors) are left out.
    """
    counts: CorrectionRates = defaultdict(lambda: defaultdict(lambda: (0, 0)))
    for transcript in transcripts:
        if transcript.kind != "conversation":
            continue
        for turn_index, reply in enumerate(transcript.replies, start=1):
            if reply.label is None or reply.label is Label.ERROR:
                continue
            group = counts[transcript.target, transcript.condition]
            corrected, labelled = group[turn_index]
            group[turn_index] = (corrected + (reply.label is Label.CORRECTS), labelled + 1)
    return {group: dict(by_turn) for group, by_turn in counts.items()}


def fidelity_summary(transcripts: Iterable[Transcript]) -> tuple[int, Counter[str]]:
    """Model-written user turns, and how many of them failed each fidelity check.

    These are failures of the simulator, to be reported apart from the target's.
    """
    generated = 0
    failures: Counter[str] = Counter()
    for transcript in transcripts:
        for turn in transcript.turns:
            if turn.generated:
                generated += 1
                failures.update(turn.fidelity or [])
    return generated, failures


@dataclass
class RunTotals:
    """What the transcripts of a run add up to.

    Attributes:
        rates: correction rate by target, condition and turn (:func:`correction_rate_by_turn`).
        errors: conversations that ended in an error (status ``error``, not a context overflow), by
            ``error_kind``.
        generated: model-written user turns.
        fidelity_failures: how many of those failed each fidelity check (:func:`fidelity_summary`).
        judged_by: labelled replies by the judge that labelled them (``judgement.judge``): with a
            cascade, how many each of its judges labelled.
    """

    rates: CorrectionRates
    errors: Counter[str]
    generated: int
    fidelity_failures: Counter[str]
    judged_by: Counter[str]


def run_totals(transcripts: Iterable[Transcript]) -> RunTotals:
    """Every end-of-run figure in one pass, one transcript in memory at a time."""
    errors: Counter[str] = Counter()
    generated = 0
    failures: Counter[str] = Counter()
    judged_by: Counter[str] = Counter()

    def counted() -> Iterator[Transcript]:
        nonlocal generated
        for transcript in transcripts:
            if transcript.status is Status.ERROR and transcript.error_kind:
                errors[transcript.error_kind] += 1
            more, failed = fidelity_summary([transcript])
            generated += more
            failures.update(failed)
            judged_by.update(reply.judgement.judge for reply in transcript.replies if reply.judgement is not None)
            yield transcript

    rates = correction_rate_by_turn(counted())
    return RunTotals(rates, errors, generated, failures, judged_by)
