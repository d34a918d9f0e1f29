"""`convsim score`: re-judge a stored run offline with any judge, beside the transcripts."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scenarios import REPLY_LABELS, LoadedScenario, Transcript
from scoring import Judge, JudgeError
from scoring.agreement import cohen_kappa, confusion_matrix
from simulator.manifest import run_scenarios
from simulator.store import read_transcripts

__all__ = ["Rescore", "rescore", "slug"]


@dataclass
class Rescore:
    """What re-judging found: how many replies, and agreement with the labels given online."""

    judge: str
    output: Path
    replies: int
    failed: int
    agreement: float
    kappa: float
    confusion: dict[str, dict[str, int]]


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")[:80] or "judge"


async def _judge_transcript(
    judge: Judge,
    scenario: LoadedScenario,
    transcript: Transcript,
    limit: asyncio.Semaphore,
    judged: Callable[[], None],
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    reply_index = 0
    for position, turn in enumerate(transcript.turns):
        if turn.role != "assistant":
            continue
        reply_index += 1
        row: dict[str, object] = {"id": transcript.id, "turn": reply_index, "online": turn.label}
        async with limit:
            try:
                judgement = await judge.judge(scenario, transcript.turns[:position], turn.content)
            except JudgeError as exc:
                row |= {"label": None, "error": str(exc)}
            else:
                row |= judgement.model_dump(mode="json", exclude_none=True)
        rows.append(row)
        judged()
    return rows


async def rescore(
    folder: Path,
    judge: Judge,
    name: str,
    *,
    concurrency: int = 16,
    on_progress: Callable[[int, int], None] | None = None,
) -> Rescore:
    """Label every reply of a run again; write ``RUN/scores/<name>.jsonl``; never touch the transcripts.

    Each output line is ``{id, turn, online, label, judge, evidence, confidence}``, where
    ``turn`` counts assistant replies from 1 and ``online`` is the label given during the run.
    ``on_progress(judged, total)`` is called before the first reply and after each.

    Raises:
        FileErrors: the run's manifest or a scenario it names cannot be used.
    """
    scenarios = run_scenarios(folder)
    limit = asyncio.Semaphore(concurrency)
    transcripts = list(read_transcripts(folder))
    total = sum(1 for t in transcripts for turn in t.turns if turn.role == "assistant")
    done = 0

    def judged() -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done, total)

    if on_progress is not None:
        on_progress(0, total)
    results = await asyncio.gather(
        *(_judge_transcript(judge, scenarios[t.scenario], t, limit, judged) for t in transcripts)
    )
    rows = [row for rows in results for row in rows]
    out = folder / "scores" / f"{slug(name)}.jsonl"
    out.parent.mkdir(exist_ok=True)
    temporary = out.with_suffix(".jsonl.tmp")
    temporary.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    temporary.replace(out)
    both = [(str(r["online"]), str(r["label"])) for r in rows if r.get("online") and r.get("label")]
    online, new = [a for a, _ in both], [b for _, b in both]
    return Rescore(
        judge=judge.name,
        output=out,
        replies=len(rows),
        failed=sum(1 for r in rows if r.get("label") is None),
        agreement=sum(a == b for a, b in both) / len(both) if both else float("nan"),
        kappa=cohen_kappa(online, new),
        confusion=confusion_matrix(online, new, [str(label) for label in REPLY_LABELS]),
    )
