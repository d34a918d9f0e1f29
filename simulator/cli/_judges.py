"""`convsim score`, `judge-eval` and `judge-train`: judges applied to stored runs and labelled data, and trained."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from scenarios import REPLY_LABELS
from scoring.judge import Judge
from scoring.judge_data import LabelledData, read_labelled
from simulator.cli._errors import SOME_FAILED, fail, reported
from simulator.cli._progress import progress_bar
from simulator.config import Endpoint, RunConfig
from simulator.preflight import check_servers
from simulator.roles import JUDGES, Roles, judge_identity, make_judge

if TYPE_CHECKING:
    from scoring.agreement import Agreement  # with pandas: imported when a command runs, not at start-up

console = Console(stderr=True, soft_wrap=True)

JudgeOption = Annotated[str, typer.Option(help=f"The judge: {JUDGES}.")]
JudgeModelOption = Annotated[str | None, typer.Option(help="The LLM judge's model.")]
JudgeTargetOption = Annotated[str | None, typer.Option(help="The LLM judge's server URL.")]
DATA_HELP = (
    "SYCON-Bench's folder (every model in labeled/), its labeled/ folder, one model's labeled/MODEL.labels.csv, "
    "or a JSONL of labelled replies."
)
ModelStemOption = Annotated[
    list[str] | None, typer.Option(help="Only this SYCON model's replies (labeled/MODEL.*.csv); repeat for several.")
]


def _config(judge: str, judge_model: str | None, judge_target: str | None) -> RunConfig:
    endpoint = Endpoint(base_url=judge_target, model=judge_model) if judge_model else None
    return RunConfig(judge=judge, judge_model=endpoint)


@asynccontextmanager
async def _judge(config: RunConfig, cache: Path | None = None) -> AsyncIterator[Judge]:
    """The judge ``config`` names, its server asked first whether it serves the judge's model."""
    chosen, backend = make_judge(config, cache_file=cache)
    try:
        if backend is not None:
            await check_servers(Roles({}, chosen, backend))
        yield chosen
    finally:
        if backend is not None:
            await backend.aclose()


def score(
    run: Annotated[Path, typer.Argument(help="A run folder.")],
    judge: JudgeOption = "rules",
    judge_model: JudgeModelOption = None,
    judge_target: JudgeTargetOption = None,
    concurrency: Annotated[int, typer.Option(help="Replies judged at once.")] = 16,
) -> None:
    """Re-judge every reply of a run; write RUN/scores/JUDGE.jsonl and report where the judges disagree.

    Exit status: 0 every reply judged, 1 some could not be (label null), 2 bad input or an unreachable judge.
    """
    from simulator.rescore import rescore, slug  # with pandas: imported when the command runs, not at start-up

    with reported():
        config = _config(judge, judge_model, judge_target)
        name = judge_identity(config)
        cache = run / "scores" / f"{slug(name)}.cache.jsonl" if judge == "llm" else None

        async def go() -> int:
            async with _judge(config, cache) as chosen:
                if cache is not None:  # once the judge's server answered: nothing is written before
                    cache.parent.mkdir(parents=True, exist_ok=True)
                with progress_bar(console, transient=True) as progress:
                    task = progress.add_task("replies judged", total=None)

                    def advance(done: int, total: int) -> None:
                        progress.update(task, completed=done, total=total)

                    result = await rescore(run, chosen, name, concurrency=concurrency, on_progress=advance)
            console.print(f"{result.replies} replies judged by {result.judge} -> {result.output}")
            if result.failed:
                console.print(f"[yellow]{result.failed} replies could not be judged (label null, see error)[/yellow]")
            console.print(f"agreement with the online labels: {result.agreement:.1%}, Cohen's kappa {result.kappa:.3f}")
            labels = [str(label) for label in REPLY_LABELS]
            table = Table("online \\ rescored", *labels, title="Where the judges disagree")
            for online in labels:
                row = result.confusion.get(online, {})
                table.add_row(online, *(str(row.get(label, 0)) for label in labels))
            console.print(table)
            return result.failed

        if asyncio.run(go()):
            raise typer.Exit(SOME_FAILED)


def _labelled(data: Path, models: list[str] | None) -> LabelledData:
    """The judged replies of ``data`` (one line and exit 2 if there are none, or the data is wrong)."""
    read = read_labelled(data, models or ())  # DatasetError: every problem on its own line, exit 2 (reported())
    if not read.items:
        raise fail(f"{data}: no labelled replies ({read.describe()})")
    return read


def _trained_on(judge: Judge) -> str:
    """The name of the data a learned judge (or a cascade's learned judge) was trained on, if known."""
    from scoring.cascade import CascadeJudge
    from scoring.learned import LearnedJudge

    first = judge.first if isinstance(judge, CascadeJudge) else judge
    return str(first.model.training.get("data", "")) if isinstance(first, LearnedJudge) else ""


def judge_eval(
    data: Annotated[Path, typer.Argument(help=DATA_HELP)],
    judge: JudgeOption = "rules",
    judge_model: JudgeModelOption = None,
    judge_target: JudgeTargetOption = None,
    model_stem: ModelStemOption = None,
    concurrency: Annotated[int, typer.Option(help="Replies judged at once.")] = 16,
    out: Annotated[
        Path | None, typer.Option(help="Write every reply with its reference label, the judge's and its evidence.")
    ] = None,
    save: Annotated[
        Path | None, typer.Option(help="Save the judge's sensitivity and specificity per label, for --judge-error.")
    ] = None,
) -> None:
    """Accuracy, Cohen's kappa, the confusion matrix and agreement by turn of a judge against labelled replies."""
    from scoring.agreement import evaluate, format_agreement, write_judged
    from scoring.judge_error import JudgeErrorRates

    with reported():
        read = _labelled(data, model_stem)

        async def go() -> Agreement:
            async with _judge(_config(judge, judge_model, judge_target)) as chosen:
                console.print(read.describe())
                trained_on = _trained_on(chosen)
                if trained_on and trained_on == Path(read.source).name:
                    console.print(
                        f"[yellow]note: {chosen.name} was trained on {trained_on}: this agreement is not held out; "
                        "bench/judge_agreement.py measures it on data it was not trained on[/yellow]"
                    )
                return await evaluate(chosen, read.items, concurrency=concurrency)

        agreement = asyncio.run(go())
        print(format_agreement(agreement, read.items))
        if out is not None:
            write_judged(out, read.items, agreement)
            console.print(f"wrote {out}: every reply with its reference label, the judge's label and evidence")
        if save is not None:
            JudgeErrorRates.from_agreement(agreement, str(data)).save(save)
            console.print(f"wrote {save}: use it with convsim analyze RUN --judge-error {save}")


def judge_train(
    data: Annotated[Path, typer.Argument(help=DATA_HELP)],
    out: Annotated[Path, typer.Option(help="The judge file to write (JSON; gzip-compressed if it ends in .gz).")],
    model_stem: ModelStemOption = None,
    seed: Annotated[int, typer.Option(help="Seed of the cross-validation folds.")] = 0,
) -> None:
    """Distil labelled replies into a learned judge that runs on a CPU; use it with --judge learned:FILE."""
    with reported():
        try:
            import sklearn  # noqa: F401 - training needs it, judging does not

            from scoring.learned import train_learned_judge
        except ImportError:
            raise fail("judge-train needs scikit-learn: pip install 'convsim[local]'") from None
        read = _labelled(data, model_stem)
        try:
            report = train_learned_judge(read.items, out, seed, source=Path(read.source).name)
        except (ValueError, OSError) as exc:
            raise fail(f"cannot train a judge on {data}: {exc}") from None
        console.print(read.describe())
        held_out = "by question: too few questions to tell"
        if report.by_question_kappa is not None:
            held_out = f"kappa by question (5 folds) {report.by_question_kappa:.3f}"
        if report.by_model_kappa:
            kappas = list(report.by_model_kappa.values())
            worst = min(report.by_model_kappa, key=report.by_model_kappa.__getitem__)
            held_out += (
                f", leave one model out mean {sum(kappas) / len(kappas):.3f} "
                f"(worst {report.by_model_kappa[worst]:.3f}, {worst})"
            )
        console.print(
            f"wrote {report.path}: {report.mode} judge on {report.n:,} replies; held out: {held_out}; "
            f"cascade threshold {report.confident_at:.2f}; {report.seconds:.0f} s"
        )
        console.print(f"check it on data it was not trained on: convsim judge-eval OTHER --judge learned:{report.path}")
