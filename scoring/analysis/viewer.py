"""A static transcript viewer: one self-contained HTML file, no server.

The page embeds the conversations as JSON and draws everything with its own inline JavaScript:
filters (series, condition, persona, status, a label some reply got, free text), a sortable
table with a colour key for its label squares, each conversation's turns coloured by label with
the judge's evidence and the target's system prompt, and a decay curve (correction rate by turn,
one line per series, Wilson intervals as whiskers, none under ``MIN_N`` replies) whose points
filter the table down to the conversations behind them. Series keep the colours of the report's
figures (``palette``). Rates follow the analysis rules: conversations that ended in error,
error turns and fidelity failures do not count.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from scenarios import Transcript
from scoring.analysis.frames import read_manifest, read_run, run_names
from scoring.analysis.palette import ERROR_COLOR, LABEL_COLORS, series_styles
from scoring.analysis.provenance import target_prompts
from scoring.analysis.sequences import conversation_metrics
from scoring.analysis.stats import MIN_N, normal_quantile
from scoring.analysis.viewer_assets import CSS, SCRIPT

__all__ = ["conversation_records", "page_settings", "render_viewer", "write_viewer"]


def _flawed(turn: Any) -> bool:
    return bool(getattr(turn, "fidelity", None))


def _record(run: str, t: Transcript) -> dict[str, Any]:
    turns: list[dict[str, Any]] = []
    labels: list[str | None] = []
    flawed = False
    for turn in t.turns:
        entry: dict[str, Any] = {"role": turn.role, "content": turn.content, "stage": turn.stage}
        if turn.role == "user":
            flawed = _flawed(turn)
            if flawed:
                entry["fidelity"] = list(getattr(turn, "fidelity", []))
        else:
            label = turn.label.value if turn.label is not None else None
            labels.append(None if flawed else label)
            entry |= {"label": label or "error", "usable": not flawed and label not in (None, "error")}
            if turn.judgement is not None:
                entry["evidence"] = turn.judgement.evidence
                entry["judge"] = turn.judgement.judge
            if turn.accurate is not None:
                entry["accurate"] = turn.accurate
        turns.append(entry)
    if t.turns and t.turns[-1].role == "user" and not t.status.finished:
        labels.append(None)
    m = conversation_metrics(labels)
    return {
        "run": run, "id": t.id, "kind": t.kind, "status": t.status.value, "error": t.error,
        "error_kind": t.error_kind, "persona": t.persona, "affect": t.affect, "scenario": t.scenario,
        "domain": t.domain, "condition": t.condition, "target": t.target, "model": t.model, "seed": t.seed,
        "labels": [label or "error" for label in labels], "usable": [label not in (None, "error") for label in labels],
        "tof": m.tof, "nof": m.nof, "first_correction": m.first_correction_turn,
        "capitulation": m.capitulation_turn, "turns": turns,
    }  # fmt: skip


def conversation_records(run_dirs: Sequence[Path], limit: int | None = None) -> list[dict[str, Any]]:
    """The viewer's data: one JSON-ready record per transcript, with a ``series`` name.

    The series is the target, or ``run / target`` when a target name appears in more than one run.

    Args:
        run_dirs: run folders (or their ``transcripts.jsonl``).
        limit: keep at most this many transcripts per run (the first ones).
    """
    records: list[dict[str, Any]] = []
    for name, path in zip(run_names(run_dirs), run_dirs, strict=True):
        for count, transcript in enumerate(read_run(path)):
            if limit is not None and count >= limit:
                break
            records.append(_record(name, transcript))
    runs_of: dict[str, set[str]] = {}
    for r in records:
        runs_of.setdefault(r["target"], set()).add(r["run"])
    collide = any(len(runs) > 1 for runs in runs_of.values())
    for r in records:
        r["series"] = f"{r['run']} / {r['target']}" if collide else r["target"]
    return records


def _json_for_script(data: Any) -> str:
    """JSON safe inside a ``<script>`` element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page_settings(records: Sequence[dict[str, Any]], prompts: dict[str, dict[str, str]]) -> dict[str, Any]:
    """What the page draws with besides the records: colours, the interval's z and smallest n, system prompts.

    Args:
        records: the viewer's records (:func:`conversation_records`).
        prompts: each run's targets' system prompts, by run and target name.
    """
    return {
        "series_colors": {name: style.color for name, style in series_styles(r["series"] for r in records).items()},
        "label_colors": {**LABEL_COLORS, "error": ERROR_COLOR},
        "z": normal_quantile(0.95),
        "min_n": MIN_N,
        "prompts": prompts,
    }


def render_viewer(
    records: Iterable[dict[str, Any]], title: str, prompts: dict[str, dict[str, str]] | None = None
) -> str:
    """The viewer page for these records (``prompts``: system prompts by run and target, shown with each transcript)."""
    listed = list(records)
    data = _json_for_script(listed)
    settings = _json_for_script(page_settings(listed, prompts or {}))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{html.escape(title)}</h1><span id="count"></span></header>'
        '<section id="filters">'
        '<input id="f-search" type="search" placeholder="search id, persona, scenario, text">'
        '<select id="f-series"></select><select id="f-condition"></select><select id="f-persona"></select>'
        '<select id="f-status"></select><select id="f-label"></select><select id="f-kind"></select>'
        '<button id="clear">clear filters</button><span id="point-filter"></span></section>'
        '<main><div id="left"><div id="plot-box"><svg id="plot" role="img" aria-label="decay curve"></svg>'
        '<div id="legend"></div></div><div id="label-key"></div>'
        '<table id="rows"><thead></thead><tbody></tbody></table><p id="more"></p></div>'
        '<div id="detail"><p class="hint">Click a conversation to read it.</p></div></main>'
        f'<script id="data" type="application/json">{data}</script>'
        f'<script id="settings" type="application/json">{settings}</script>'
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def write_viewer(run_dirs: Sequence[Path], out: Path, limit: int | None = None) -> Path:
    """Write the viewer for these runs to ``out`` and return its path."""
    records = conversation_records(run_dirs, limit)
    names = run_names(run_dirs)
    title = "convsim transcripts: " + ", ".join(names)
    prompts = {name: target_prompts(read_manifest(path) or {}) for name, path in zip(names, run_dirs, strict=True)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_viewer(records, title, prompts), encoding="utf-8")
    return out
