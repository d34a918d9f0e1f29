"""`convsim analyze`, `convsim show`, `convsim view`: read finished runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from scenarios import Transcript
from simulator.cli._errors import fail, reported

if TYPE_CHECKING:  # scoring.analysis (pandas, matplotlib) is imported when a command runs, not at start-up
    from scoring.analysis import Frames
    from scoring.analysis.report import Table as ReportTable

__all__ = ["analyze", "show", "view"]

console = Console(soft_wrap=True)
WIDE = 160  # printed to a file or pipe, tables get this width rather than 80
err = Console(stderr=True, soft_wrap=True)

LABEL_STYLES = {
    "corrects": "bold green",
    "hedges": "yellow",
    "evades": "bright_black",
    "affirms": "bold red",
    "refuses": "magenta",
    "error": "bold white on red",
}
_NOT_GROUPS = {"id", "seed", "max_turns"}


def group_columns() -> list[str]:
    """The columns ``--by`` can name: what a conversation is (target, condition, persona, ...)."""
    from scoring.analysis import TURN_COLUMNS

    return [c for c in TURN_COLUMNS[: TURN_COLUMNS.index("max_turns") + 1] if c not in _NOT_GROUPS]


@contextmanager
def _readable() -> Iterator[None]:
    """Report a missing or unreadable run as one line and exit status 2."""
    with reported():
        try:
            yield
        except (FileNotFoundError, ValueError) as exc:
            raise fail(str(exc)) from None


SHORT_HEADERS = {
    "conversations": "n",
    "excluded": "errors",
    "corrected_turn1": "corr@1",
    "ever_corrected": "ever",
    "capitulated": "capit",
    "persistence": "persist",
    "face_saving": "face-sav",
    "slope": "slope/turn",
}


def _rich_table(table: ReportTable) -> Table:
    from scoring.analysis.report import formatted

    out = Table(title=table.title, box=box.SIMPLE_HEAD)
    for column in table.frame.columns:
        text = table.kind(str(column)) == "str"
        out.add_column(SHORT_HEADERS.get(str(column), str(column)), justify="left" if text else "right",
                       overflow="fold", min_width=None if text else 6)  # fmt: skip
    for row in formatted(table):
        out.add_row(*row)
    return out


def analyze(
    runs: Annotated[list[Path], typer.Argument(help="Run folders (or transcripts.jsonl files); several are compared.")],
    by: Annotated[
        list[str] | None,
        typer.Option("--by", help="Group by this column (repeatable): target, condition, persona, scenario, ..."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for report.md, report.html, figures and frames; default RUN/analysis.")
    ] = None,
    n_boot: Annotated[int, typer.Option("--bootstrap", help="Bootstrap resamples for the intervals.")] = 1000,
    seed: Annotated[int, typer.Option(help="The bootstrap's seed.")] = 0,
    judge_error: Annotated[
        Path | None,
        typer.Option(help="The judge's error rates (judge-eval --save): add rates corrected for them."),
    ] = None,
) -> None:
    """Metrics, plots and a report for one or more runs (base vs. warm in one report)."""
    from scoring.analysis import load
    from scoring.analysis.report import build_report, write_report
    from scoring.judge_error import JudgeErrorFileError, JudgeErrorRates

    columns = group_columns()
    unknown = [column for column in by or [] if column not in columns]
    if unknown:
        raise fail(f"--by {', '.join(unknown)}: not a grouping column; use {', '.join(columns)}")
    with _readable():
        try:
            rates = None if judge_error is None else JudgeErrorRates.load(judge_error)
        except JudgeErrorFileError as exc:
            raise fail(str(exc)) from None
        frames = load(runs)
        if frames.conversations.empty:
            raise fail("no transcripts in " + ", ".join(map(str, runs)))
        report = build_report(frames, by, n_boot=n_boot, seed=seed, judge_error=rates)
        folder = out or (runs[0] if runs[0].is_dir() else runs[0].parent) / "analysis"
        written = write_report(report, frames, folder)
    for note in report.notes:
        err.print(escape(note), style="dim")
    if not console.is_terminal:
        console.width = WIDE
    console.print(_rich_table(report.tables["headline"]))
    console.print(
        "corr@1: corrected at turn 1; ever: corrected at some turn; tof/nof: mean Turn of Flip / Number of Flips; "
        "capit: corrected, then affirmed; face-sav: knew it alone, never corrected; slope: points per turn",
        style="dim",
    )
    if "judge_error" in report.tables:
        console.print(_rich_table(report.tables["judge_error"]))
    _print_exclusions(frames)
    err.print(f"wrote {written[0]}, {written[1]} and {len(written) - 2} more files in {folder}")


def _print_exclusions(frames: Frames) -> None:
    conversations = frames.conversations
    errors = int((conversations["is_error"] & (conversations["kind"] == "conversation")).sum())
    error_turns = int(frames.turns["is_error"].sum())
    fidelity = int(frames.turns["is_fidelity_error"].sum())
    if errors or error_turns or fidelity:
        err.print(
            f"left out: {errors} conversations that ended in error, {error_turns} error turns, "
            f"{fidelity} replies to simulated-user fidelity failures (see the report's 'Left out of the rates')"
        )


def _labels_text(transcript: Transcript) -> Text:
    text = Text()
    for reply in transcript.replies:
        label = reply.label.value if reply.label is not None else "error"
        text.append(label[0].upper() if label != "error" else "x", style=LABEL_STYLES.get(label, ""))
    return text


def _matches(t: Transcript, label: str | None, persona: str | None, target: str | None, condition: str | None) -> bool:
    labels = {r.label.value if r.label is not None else "error" for r in t.replies}
    return (
        (label is None or label in labels)
        and (persona is None or t.persona == persona)
        and (target is None or t.target == target)
        and (condition is None or t.condition == condition)
    )


def _print_list(transcripts: list[Transcript], limit: int) -> None:
    from scoring.analysis.sequences import conversation_metrics

    table = Table(
        title=f"{len(transcripts)} matching conversations" + (f" (first {limit})" if len(transcripts) > limit else "")
    )
    for column in ("id", "target", "condition", "persona", "scenario", "status", "labels", "ToF", "NoF"):
        table.add_column(column, justify="right" if column in ("ToF", "NoF") else "left")
    for t in transcripts[:limit]:
        m = conversation_metrics([r.label.value if r.label is not None else None for r in t.replies])
        table.add_row(t.id, t.target, t.condition, t.persona or "-", t.scenario, t.status.value, _labels_text(t),
                      str(m.tof) if m.tof is not None else "-", str(m.nof) if m.nof is not None else "-")  # fmt: skip
    console.print(table)
    console.print("labels: " + " ".join(f"[{s}]{k[0].upper()}[/]={k}" for k, s in LABEL_STYLES.items() if k != "error")
                  + " [bold white on red]x[/]=error")  # fmt: skip


def _print_transcript(t: Transcript) -> None:
    from scoring.analysis.sequences import conversation_metrics

    m = conversation_metrics([r.label.value if r.label is not None else None for r in t.replies])
    console.print(
        f"[bold]{t.id}[/]  {escape(t.target)} ({escape(t.model)})  {t.condition}  {escape(t.persona or '-')} "
        f"({escape(t.affect or '-')})  {escape(t.scenario)}  seed {t.seed}  [dim]{t.status.value}[/]"
    )
    console.print(f"ToF {m.tof}  NoF {m.nof}  first correction {m.first_correction_turn}  "
                  f"capitulated at {m.capitulation_turn}")  # fmt: skip
    reply = 0
    for turn in t.turns:
        if turn.role == "user":
            flags = getattr(turn, "fidelity", None)
            title = f"user · {turn.stage or ''}" + (f" · fidelity: {', '.join(flags)}" if flags else "")
            panel = Panel(escape(turn.content), title=escape(title), title_align="left", border_style="dim")
            console.print(panel, soft_wrap=False)  # a turn wraps inside its panel, never cut at the width
            continue
        reply += 1
        label = turn.label.value if turn.label is not None else "error"
        style = LABEL_STYLES.get(label, "")
        lines = [escape(turn.content)]
        if turn.judgement is not None and turn.judgement.evidence:
            lines.append(f"[dim]{escape(turn.judgement.judge)}: “{escape(turn.judgement.evidence)}”[/]")
        if turn.accurate is not None:
            lines.append(f"[dim]accurate: {'yes' if turn.accurate else 'no'}[/]")
        title = f"[{style}]{label}[/] · reply {reply} · {escape(turn.stage or '')}"
        panel = Panel("\n".join(lines), title=title, title_align="left", border_style=style.replace("bold ", ""))
        console.print(panel, soft_wrap=False)
    if t.error:
        console.print(f"[bold red]{escape(t.error_kind or 'error')}[/]: {escape(t.error)}")


def show(
    run: Annotated[Path, typer.Argument(help="A run folder (or its transcripts.jsonl).")],
    conversation: Annotated[str | None, typer.Argument(metavar="ID", help="A conversation id (or its start).")] = None,
    label: Annotated[str | None, typer.Option(help="Only conversations with a reply labelled this.")] = None,
    persona: Annotated[str | None, typer.Option(help="Only this persona.")] = None,
    target: Annotated[str | None, typer.Option(help="Only this target.")] = None,
    condition: Annotated[str | None, typer.Option(help="Only this condition.")] = None,
    limit: Annotated[int, typer.Option(help="List at most this many.")] = 50,
) -> None:
    """One transcript in the terminal, turns coloured by label; without ID, the matching conversations."""
    from scoring.analysis import read_run

    with _readable():
        transcripts = [t for t in read_run(run) if _matches(t, label, persona, target, condition)]
    if not console.is_terminal:
        console.width = WIDE
    if conversation is None:
        _print_list(transcripts, limit)
        return
    found = [t for t in transcripts if t.id == conversation] or [
        t for t in transcripts if t.id.startswith(conversation)
    ]
    if not found:
        raise fail(f"no conversation {conversation!r} in {run} (with these filters)")
    if len(found) > 1:
        raise fail(f"{conversation!r} matches {len(found)} conversations: {', '.join(t.id for t in found[:5])} ...")
    _print_transcript(found[0])


def viewer_path(runs: list[Path]) -> Path:
    """The viewer's default file: ``RUN/viewer.html`` for one run; for several, named after them all."""
    from scoring.analysis.frames import run_names

    folder = runs[0] if runs[0].is_dir() else runs[0].parent
    if len(runs) == 1:
        return folder / "viewer.html"
    return folder / f"viewer-{'+'.join(name.replace('/', '_') for name in run_names(runs))}.html"


def view(
    runs: Annotated[list[Path], typer.Argument(help="Run folders (or transcripts.jsonl files).")],
    out: Annotated[
        Path | None,
        typer.Option(help="The HTML file to write; default RUN/viewer.html (several runs: RUN/viewer-RUN+RUN2.html)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many transcripts per run.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the file if it exists.")] = False,
) -> None:
    """Write a static, self-contained HTML transcript viewer (open it in any browser)."""
    from scoring.analysis.viewer import write_viewer

    path = out or viewer_path(runs)
    if path.exists() and not force:
        raise fail(f"{path} exists; give --force to replace it, or --out FILE")
    with _readable():
        write_viewer(runs, path, limit)
    err.print(f"wrote {path}")
