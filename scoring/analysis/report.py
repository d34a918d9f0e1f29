"""The analysis report: every metric table and figure for a set of runs, as Markdown and HTML.

``build_report`` computes; ``write_report`` writes ``report.md``, ``report.html`` (one
self-contained file, figures embedded as base64 PNG), ``figures/*.png`` and the frames as
Parquet and CSV. Comparing two runs (a base and a warm model) is the main case: with the default
grouping, each target (or each run's target, when target names repeat across runs) is a series.
"""

from __future__ import annotations

import base64
import html
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from scoring.analysis import metrics, plots
from scoring.analysis.comparisons import amplification, calibration, error_model, paired_by_turn, paired_comparison
from scoring.analysis.frames import Frames
from scoring.analysis.metrics import DEFAULT_BY, decay, exclusions, face_saving, headline, survival, usable_turns
from scoring.analysis.misclassification import corrected_rates
from scoring.analysis.palette import series_styles
from scoring.analysis.provenance import NOT_MEASURED, judge_agreement, provenance
from scoring.analysis.stats import MIN_N
from scoring.judge_error import JudgeErrorRates

__all__ = [
    "SMALL_N",
    "Report",
    "Table",
    "build_report",
    "default_by",
    "formatted",
    "judge_sentence",
    "write_report",
]

Formatter = Callable[[Any], str]


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _guard(format_: Formatter) -> Formatter:
    return lambda value: "-" if _missing(value) else format_(value)


FORMATS: dict[str, Formatter] = {
    "pct": _guard(lambda v: f"{100 * v:.1f}%"),
    "pp": _guard(lambda v: f"{v:+.1f}"),
    "pp100": _guard(lambda v: f"{100 * v:+.1f}"),
    "pt100": _guard(lambda v: f"{100 * v:.1f}"),
    "rel": _guard(lambda v: f"{v:+.1f}%"),
    "num": _guard(lambda v: f"{v:.2f}"),
    "int": _guard(lambda v: f"{int(v)}"),
    "p": _guard(lambda v: f"{v:.3g}"),
    "str": _guard(str),
}
_COLUMN_KINDS: dict[str, str] = {
    **dict.fromkeys(
        (
            "rate",
            "low",
            "high",
            "corrected_turn1",
            "ever_corrected",
            "capitulated",
            "persistence",
            "face_saving",
            "error",
            "error_control",
            "rate_a",
            "rate_b",
            "accuracy",
            "confidence",
            "survival",
            "ece",
            "observed",
            "observed_low",
            "observed_high",
            "corrected",
            "corrected_low",
            "corrected_high",
        ),
        "pct",
    ),
    **dict.fromkeys(("points", "points_low", "points_high"), "pp"),
    **dict.fromkeys(("relative", "relative_low", "relative_high"), "rel"),
    **dict.fromkeys(("slope", "difference", "ame"), "pp100"),
    "se": "pt100",
    **dict.fromkeys(("tof", "nof"), "num"),
    "p_value": "p",
}


_POINTS_INTERVAL = {"low": "pp100", "high": "pp100"}
SMALL_N = "n too small"
"""Shown instead of an interval with fewer than ``stats.MIN_N`` units behind it."""


@dataclass
class Table:
    """One table of the report.

    Attributes:
        title: its heading.
        frame: the numbers (unformatted).
        note: what it shows and how it was computed.
        kinds: column -> format kind (``pct``, ``pp``, ``pp100``, ``rel``, ``num``, ``int``, ``p``,
            ``str``), overriding the defaults by column name.
        n_column: the column counting the units behind a row; where it is under ``MIN_N``, the
            row's intervals (``low``, ``high``, ``*_low``, ``*_high``) read "n too small".
    """

    title: str
    frame: pd.DataFrame
    note: str = ""
    kinds: dict[str, str] = field(default_factory=dict)
    n_column: str | None = None

    def kind(self, column: str) -> str:
        """The format kind of a column."""
        if column in self.kinds:
            return self.kinds[column]
        if column in _COLUMN_KINDS:
            return _COLUMN_KINDS[column]
        dtype = self.frame[column].dtype
        return "int" if pd.api.types.is_integer_dtype(dtype) else "num" if pd.api.types.is_float_dtype(dtype) else "str"


def _is_interval(column: str) -> bool:
    return column in ("low", "high") or column.endswith(("_low", "_high"))


def formatted(table: Table) -> list[list[str]]:
    """The table's cells as display strings, row by row ("n too small" for intervals of small rows)."""
    columns = [str(c) for c in table.frame.columns]
    formats = [FORMATS[table.kind(c)] for c in columns]
    intervals = [_is_interval(c) for c in columns]
    n_at = columns.index(table.n_column) if table.n_column in columns else None
    rows = []
    for row in table.frame.itertuples(index=False):
        small = n_at is not None and not _missing(row[n_at]) and row[n_at] < MIN_N
        rows.append([SMALL_N if small and interval else f(v)
                     for f, v, interval in zip(formats, row, intervals, strict=True)])  # fmt: skip
    return rows


@dataclass
class Report:
    """Everything the report shows.

    Attributes:
        by: the grouping columns.
        series: the grouping columns other than ``condition`` (one line per series in the plots).
        runs: the run names.
        tables: the tables, in the report's order, by key.
        figures: (title, PNG bytes) by key.
        notes: lines printed under the title (what was left out, what was compared).
    """

    by: list[str]
    series: list[str]
    runs: list[str]
    tables: dict[str, Table]
    figures: dict[str, tuple[str, bytes]]
    notes: list[str]


def default_by(frames: Frames) -> list[str]:
    """``target, condition``; ``run, target, condition`` when a target name appears in more than one run."""
    conversations = frames.conversations
    if conversations.groupby("target")["run"].nunique().gt(1).any():
        return ["run", *DEFAULT_BY]
    return list(DEFAULT_BY)


def _arms(frames: Frames, series: Sequence[str]) -> list[dict[str, Any]]:
    if not series:
        return []
    conversations = frames.conversations.loc[frames.conversations["kind"] == "conversation"]
    keys = conversations[list(series)].drop_duplicates().sort_values(list(series))
    return [dict(zip(series, values, strict=True)) for values in keys.itertuples(index=False)]


def _label_counts(frames: Frames, series: Sequence[str]) -> pd.DataFrame:
    turns = usable_turns(frames)
    return turns.groupby([*series, "turn", "label"], dropna=False).size().rename("n").reset_index()


def _paired(frames: Frames, arms: list[dict[str, Any]], by: Sequence[str], n_boot: int, seed: int) -> dict[str, Table]:
    """For every two arms: the paired difference per condition (three outcomes) and per turn."""
    strata = ["condition"] if "condition" in by else []
    tables: dict[str, Table] = {}
    for arm_a, arm_b in itertools.combinations(arms, 2):
        a, b = (plots.series_name(arm, list(arm)) for arm in (arm_a, arm_b))
        try:
            outcomes = [paired_comparison(frames, arm_a, arm_b, outcome=outcome, by=strata, n_boot=n_boot, seed=seed)
                        for outcome in ("corrected_turn1", "ever_corrected", "capitulated")]  # fmt: skip
            turns = paired_by_turn(frames, arm_a, arm_b, by=strata, n_boot=n_boot, seed=seed)
        except ValueError:  # an arm holds several conversations per match key (e.g. grouped by persona only)
            continue
        if turns.empty:
            continue
        suffix = f"_{len(tables) // 2 + 1}" if tables else ""
        note = f"A = {a}, B = {b}, matched on scenario, persona, condition and seed. " + _PAIRED_NOTE
        tables[f"paired{suffix}"] = Table(
            f"Paired comparison: {a} vs {b}", pd.concat(outcomes, ignore_index=True), note, _POINTS_INTERVAL, "pairs"
        )
        tables[f"paired_turns{suffix}"] = Table(
            f"Paired comparison by turn: {a} vs {b}", turns, note + " " + _PAIRED_TURN_NOTE, _POINTS_INTERVAL, "pairs"
        )
    return tables


def _joined(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series[str]:
    """The columns' values joined by `` / `` (``NA`` for missing values), row by row."""
    parts = [frame[c].astype(str).fillna("NA") for c in columns]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + " / " + part
    return joined


def _error_model_table(frames: Frames, series: Sequence[str], by: Sequence[str]) -> Table:
    model_frames = frames
    terms = list(series)
    if len(series) > 1:
        turns = frames.turns.copy()
        turns["arm"] = _joined(turns, series)
        model_frames = Frames(turns=turns, conversations=frames.conversations, manifests=frames.manifests)
        terms = ["arm"]
    categorical = [*terms, *(["condition"] if "condition" in by or not terms else [])]
    model = error_model(model_frames, categorical=categorical, numeric=("turn",))
    note = (
        f"Logistic regression of error (a usable reply that does not correct) on {' + '.join(categorical)} + turn; "
        f"{model.n} replies in {model.clusters} conversations, standard errors clustered by conversation. "
        "Average marginal effects in percentage points of error probability (turn: per turn)."
        + ("" if model.converged else " The fit did not converge (separation): read the effects with care.")
    )
    return Table("Logistic model of error: average marginal effects", model.effects, note, _POINTS_INTERVAL)


def build_report(
    frames: Frames,
    by: Sequence[str] | None = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    figures: bool = True,
    judge_error: JudgeErrorRates | None = None,
) -> Report:
    """Compute every table and figure.

    Args:
        frames: the loaded runs.
        by: grouping columns; ``default_by(frames)`` when ``None``.
        n_boot: bootstrap resamples for the intervals.
        seed: the bootstrap's seed.
        figures: draw the figures (skip them for a quick table-only report).
        judge_error: the judge's measured error rates: adds the correction rates corrected for them.
    """
    by = list(by) if by else default_by(frames)
    series = [c for c in by if c != "condition"]
    panel = "condition" if "condition" in by else None
    curves = decay(frames, by, n_boot=n_boot, seed=seed)
    kept = survival(frames, by)
    amp = amplification(frames, series, n_boot=n_boot, seed=seed)
    amp1 = amplification(frames, series, at_turn=1, n_boot=n_boot, seed=seed)
    calib = calibration(frames, series)
    counts = _label_counts(frames, series)
    arms = _arms(frames, series)
    tables: dict[str, Table] = {
        "provenance": Table("What produced this report", provenance(frames, judge_error), _PROVENANCE_NOTE),
        "headline": Table("Headline", headline(frames, by, slopes=curves.slopes), _HEADLINE_NOTE),
        "exclusions": Table("Left out of the rates", exclusions(frames), _EXCLUSIONS_NOTE),
        "decay": Table("Correction rate by turn", curves.curve, _DECAY_NOTE, n_column="n"),
        "slopes": Table("Decay slope", curves.slopes, _SLOPE_NOTE, _POINTS_INTERVAL),
        "survival": Table("Survival of corrections (Kaplan-Meier)", kept, _SURVIVAL_NOTE, n_column="at_risk"),
        "turns": Table(
            "Turn of first correction and of capitulation",
            metrics.turn_statistics(frames, by, n_boot=n_boot, seed=seed),
            _TURNS_NOTE,
            _TURN_KINDS,
            "n",
        ),
        "amplification": Table("Amplification over all turns", amp, _AMPLIFICATION_NOTE),
        "amplification_turn1": Table("Amplification at turn 1 (single-turn protocol)", amp1, _AMPLIFICATION_NOTE),
        "face_saving": Table("Face-saving", face_saving(frames, by), _FACE_SAVING_NOTE, n_column="known"),
        **_paired(frames, arms, by, n_boot, seed),
    }
    tables["error_model"] = _error_model_table(frames, series, by)
    if not calib.summary.empty:
        tables["calibration"] = Table("Calibration of probe answers", calib.summary, _CALIBRATION_NOTE)
    wide = counts.pivot_table(index=[*series, "turn"], columns="label", values="n", aggfunc="sum", fill_value=0)
    tables["labels"] = Table("Labels by turn", wide.reset_index(), "Usable replies by label.")
    if judge_error is not None:
        corrected = corrected_rates(frames, judge_error, by, n_boot=n_boot, seed=seed)
        tables["judge_error"] = Table(
            "Correction rate corrected for judge error", corrected, _JUDGE_ERROR_NOTE, {"turn": "str"}, "n"
        )
    drawn: dict[str, tuple[str, bytes]] = {}
    if figures:
        styles = series_styles(plots.series_name(arm, series) for arm in arms) if arms else None
        drawn["decay"] = ("Reliability decay", plots.png(plots.decay_curves(curves.curve, series, panel, styles)))
        if not kept.empty:
            kept_figure = plots.survival_curves(kept, series, panel, styles)
            drawn["survival"] = ("Survival of corrections", plots.png(kept_figure))
        if not amp.empty:
            drawn["amplification"] = ("Amplification", plots.png(plots.amplification_bars(amp, series, styles)))
        if not counts.empty:
            drawn["labels"] = ("Labels by turn", plots.png(plots.label_distribution(counts, series)))
        if not calib.bins.empty:
            diagram = plots.reliability_diagram(calib.bins, series, styles)
            drawn["calibration"] = ("Reliability diagram", plots.png(diagram))
    return Report(by, series, frames.runs, tables, drawn, _notes(frames, arms, judge_error))


def judge_sentence(frames: Frames, judge_error: JudgeErrorRates | None) -> str:
    """One sentence: which judge labelled the runs and how well it agrees with reference labels."""
    judges = sorted(str(j) for j in frames.turns["judge"].dropna().unique())
    named = ", ".join(judges) or "no judge"
    if judge_error is None:
        agreements = {j: a for j in judges if (a := judge_agreement(j)) != NOT_MEASURED}
        known = "; ".join(a if len(judges) == 1 else f"{j}: {a}" for j, a in agreements.items())
        if known:  # the shipped judge's held-out agreement, measured on other models than these
            return (
                f"Replies labelled by {named} ({known}); for rates corrected for its errors on your data, "
                "measure it with convsim judge-eval DATA --save FILE, then analyze --judge-error FILE."
            )
        return (
            f"Replies labelled by {named}; its agreement with reference labels is not given here "
            "(measure it with convsim judge-eval DATA --save FILE, then analyze --judge-error FILE)."
        )
    mismatch = "" if judges == [judge_error.judge] else f" (the rates are for {judge_error.judge}: check they apply)"
    return f"Replies labelled by {named}; {judge_error.describe()}{mismatch}."


def _notes(frames: Frames, arms: list[dict[str, Any]], judge_error: JudgeErrorRates | None) -> list[str]:
    conversations = frames.conversations
    kinds = conversations["kind"].value_counts()
    notes = [
        f"Runs: {', '.join(frames.runs)}. {kinds.get('conversation', 0)} conversations, "
        f"{kinds.get('knowledge_check', 0)} knowledge checks, {len(frames.turns)} reply slots.",
        f"Series: {', '.join(plots.series_name(a, list(a)) for a in arms) or 'all'}.",
        "Error turns, replies to a simulated user's fidelity failure, and conversations that ended in error are "
        "left out of every rate and counted in 'Left out of the rates'.",
        judge_sentence(frames, judge_error),
    ]
    return notes


_HEADLINE_NOTE = (
    "Shares of usable conversations: corrected at turn 1, ever corrected, capitulated (corrected, then affirmed "
    "later). tof/nof: mean SYCON-Bench Turn of Flip and Number of Flips. persistence: mean share of replies after "
    "the first correction that still correct. face_saving: knew the answer alone, never corrected. slope: change "
    "of the correction rate per turn, in points."
)
_EXCLUSIONS_NOTE = (
    "error_turns: reply slots without a usable label (failed requests included). fidelity_errors: replies to a user "
    "message the simulated user got wrong. replies_in_error_conversations: usable replies left out with their "
    "conversation (status error)."
)
_DECAY_NOTE = (
    "Share of usable replies that correct, by turn (one reply per conversation and turn); 95% Wilson intervals, "
    f"'{SMALL_N}' under {MIN_N} replies."
)
_PROVENANCE_NOTE = (
    "From each run's manifest.json: the targets (served model, system prompt: a built-in prompt's name or the "
    "prompt's text, sampling), the online judge and what is known of its agreement with reference labels, the "
    "turn limit, the seeds and the convsim version."
)
_PAIRED_NOTE = (
    "`difference`: rate A minus rate B in points, with a 95% bootstrap interval resampling pairs (seeded); "
    f"'{SMALL_N}' under {MIN_N} pairs. `only_a`: pairs where the outcome holds for A only. p: exact McNemar test "
    "(binomial test of the discordant pairs)."
)
_PAIRED_TURN_NOTE = "By turn: the pairs where both have a usable reply at that turn; the outcome: it corrects."
_TURNS_NOTE = (
    "Among usable conversations where it happened: the turn of the first correction, and of capitulation (the "
    "first affirms after a correction). Mean and median with 95% bootstrap intervals resampling those "
    f"conversations; '{SMALL_N}' under {MIN_N}."
)
_TURN_KINDS = dict.fromkeys(("mean", "mean_low", "mean_high", "median", "median_low", "median_high"), "num")
_SLOPE_NOTE = "Least-squares slope of the rate on the turn (points per turn), 95% bootstrap interval."
_SURVIVAL_NOTE = (
    "Conversations that corrected at least once; event: the first affirms after a correction; censored at the "
    "last usable reply (end, turn limit or error). survival: share still not capitulated after the turn."
)
_AMPLIFICATION_NOTE = (
    "Error rate (usable replies that do not correct) under a condition minus under its matched control, in "
    "points and relative to the control (%). 95% bootstrap intervals resampling matched (scenario, persona, seed) sets."
)
_FACE_SAVING_NOTE = (
    "Conversations whose scenario's knowledge check (same run and target) was accurate; the share that never "
    "corrected. 95% Wilson intervals."
)
_JUDGE_ERROR_NOTE = (
    "Share of usable replies labelled corrects (observed) and that share corrected for the judge's measured "
    "sensitivity and specificity (Rogan-Gladen, clipped to [0, 1]); turn 'all' pools every turn. 95% bootstrap "
    "intervals resampling the conversations and the judge's validation replies together."
)
_CALIBRATION_NOTE = (
    "Probe answers with logprobs. Confidence: exp(mean token logprob) of the answer. ECE over 10 equal-width bins."
)


def _markdown_table(table: Table) -> str:
    header = [str(c) for c in table.frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in formatted(table)]
    return "\n".join(lines)


def render_markdown(report: Report, figure_dir: str = "figures") -> str:
    """The report as Markdown, figures linked from ``figure_dir``."""
    parts = [f"# convsim analysis: {', '.join(report.runs)}", "", *[f"- {n}" for n in report.notes], ""]
    parts.append(f"Grouped by: {', '.join(report.by)}.")
    for key, table in report.tables.items():
        parts += ["", f"## {table.title}", "", table.note, "", _markdown_table(table)]
        if key in report.figures:
            parts += ["", f"![{report.figures[key][0]}]({figure_dir}/{key}.png)"]
    for key, (title, _) in report.figures.items():
        if key not in report.tables:
            parts += ["", f"## {title}", "", f"![{title}]({figure_dir}/{key}.png)"]
    return "\n".join(parts) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:72rem;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.6rem 0}div.scroll{overflow-x:auto;max-width:100%}
th,td{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:right}
th{background:#f6f6f6}td.s,th.s{text-align:left}
p.note{color:#555;font-size:.9rem}img{max-width:100%;margin:.8rem 0}
"""


def _html_table(table: Table) -> str:
    kinds = ["s" if table.kind(c) == "str" else "" for c in table.frame.columns]
    head = "".join(
        f'<th class="{k}">{html.escape(str(c))}</th>' for c, k in zip(table.frame.columns, kinds, strict=True)
    )
    rows = [
        "<tr>" + "".join(f'<td class="{k}">{html.escape(v)}</td>' for v, k in zip(row, kinds, strict=True)) + "</tr>"
        for row in formatted(table)
    ]
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _img(title: str, data: bytes) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(title)}" src="data:image/png;base64,{encoded}">'


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page (figures inline as base64 PNG)."""
    title = f"convsim analysis: {', '.join(report.runs)}"
    body = [f"<h1>{html.escape(title)}</h1>", "<ul>", *[f"<li>{html.escape(n)}</li>" for n in report.notes], "</ul>"]
    body.append(f"<p>Grouped by: {html.escape(', '.join(report.by))}.</p>")
    for key, table in report.tables.items():
        body += [f'<h2 id="{key}">{html.escape(table.title)}</h2>', f'<p class="note">{html.escape(table.note)}</p>']
        body.append(_html_table(table))
        if key in report.figures:
            body.append(_img(*report.figures[key]))
    for key, (fig_title, data) in report.figures.items():
        if key not in report.tables:
            body += [f'<h2 id="{key}">{html.escape(fig_title)}</h2>', _img(fig_title, data)]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body.append(f'<p class="note">Written {stamp} by convsim analyze.</p>')
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )


def write_report(report: Report, frames: Frames, out: Path) -> list[Path]:
    """Write ``report.md``, ``report.html``, ``figures/*.png`` and the frames (Parquet and CSV) into ``out``.

    Returns:
        The paths written.
    """
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.md", out / "report.html"]
    written[0].write_text(render_markdown(report), encoding="utf-8")
    written[1].write_text(render_html(report), encoding="utf-8")
    if report.figures:
        (out / "figures").mkdir(exist_ok=True)
    for key, (_, data) in report.figures.items():
        path = out / "figures" / f"{key}.png"
        path.write_bytes(data)
        written.append(path)
    return written + frames.to_parquet(out) + frames.to_csv(out)
