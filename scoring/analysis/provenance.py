"""What produced a run, read from its ``manifest.json``: targets, judge, turns, seeds, version.

Only the fields a report names are read (pydantic, unknown fields ignored), so manifests of
older or newer convsim versions still load; a run without a manifest is said to have none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scenarios import builtin_system_prompts
from scoring.analysis.frames import Frames
from scoring.judge_error import JudgeErrorRates

__all__ = ["PROVENANCE_COLUMNS", "RunManifest", "judge_agreement", "prompt_name", "provenance", "target_prompts"]

PROVENANCE_COLUMNS = (
    "run", "target", "model", "system_prompt", "sampling", "judge", "judge_agreement", "turns", "seeds", "convsim",
)  # fmt: skip
_SHOWN_PROMPT = 120  # characters of a system prompt's own text shown in the report


class _Endpoint(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = ""


class _Target(_Endpoint):
    name: str
    system_prompt: str = ""
    sampling: dict[str, Any] = Field(default_factory=dict)


class _Config(BaseModel):
    model_config = ConfigDict(extra="ignore")
    targets: list[_Target] = Field(default_factory=list)
    judge: str = ""
    judge_model: _Endpoint | None = None
    turns: int | None = None
    seeds: list[int] = Field(default_factory=list)
    sample: int | None = None


class RunManifest(BaseModel):
    """The parts of a run's manifest that say what produced it."""

    model_config = ConfigDict(extra="ignore")
    config: _Config = Field(default_factory=_Config)
    versions: dict[str, str] = Field(default_factory=dict)


def _parsed(manifest: Mapping[str, Any]) -> RunManifest | None:
    try:
        return RunManifest.model_validate(manifest)
    except ValidationError:
        return None


def prompt_name(text: str) -> str:
    """A system prompt as a report shows it: a built-in prompt's name, else its text (shortened), or ``none``."""
    if not text:
        return "none"
    for name, builtin in builtin_system_prompts().items():
        if builtin == text:
            return name
    return text if len(text) <= _SHOWN_PROMPT else text[: _SHOWN_PROMPT - 1] + "…"


def target_prompts(manifest: Mapping[str, Any]) -> dict[str, str]:
    """Each target's full system prompt text, by target name (empty when the manifest names none)."""
    parsed = _parsed(manifest)
    return {t.name: t.system_prompt for t in parsed.config.targets} if parsed else {}


def _sampling(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in values.items()) or "-"


NOT_MEASURED = "not measured here"
"""What :func:`judge_agreement` says of a judge whose agreement is not known."""


def judge_agreement(judge: str, judge_error: JudgeErrorRates | None = None) -> str:
    """What is known of a judge's agreement with reference labels, in a few words.

    The rates given (``analyze --judge-error``) when they are this judge's; for the shipped
    ``learned`` judge, the held-out kappas recorded when it was trained; else :data:`NOT_MEASURED`.
    """
    if judge_error is not None and judge_error.judge == judge:
        return f"kappa {judge_error.kappa:.2f} on {judge_error.reference} ({judge_error.n:,} replies)"
    if judge == "learned":
        from scoring.learned import LearnedJudge  # reads the shipped model (2 MB) only when it is named

        training = LearnedJudge().model.training
        held_out = training.get("held_out", {})
        by_model = list(held_out.get("by_model_kappa", {}).values())
        parts = [f"kappa {held_out['by_question_kappa']:.2f} by question"] if held_out.get("by_question_kappa") else []
        parts += [f"mean kappa {sum(by_model) / len(by_model):.2f} leaving one model out"] if by_model else []
        if parts:
            return f"held out on {training.get('data', 'its training data')}: {', '.join(parts)}"
    return NOT_MEASURED


def provenance(frames: Frames, judge_error: JudgeErrorRates | None = None) -> pd.DataFrame:
    """One row per run and target: model, system prompt, sampling, judge and its agreement, turns, seeds, version.

    Targets come from each run's manifest; a run without one (or whose manifest names no target)
    gets a row per target seen in its transcripts, with ``no manifest`` where the manifest would have spoken.
    """
    records: list[dict[str, Any]] = []
    agreements: dict[str, str] = {}
    for run in frames.runs:
        parsed = _parsed(frames.manifests[run]) if run in frames.manifests else None
        if parsed is None or not parsed.config.targets:
            seen = frames.conversations.loc[frames.conversations["run"] == run, ["target", "model"]].drop_duplicates()
            records += [{"run": run, "target": t, "model": m, **dict.fromkeys(PROVENANCE_COLUMNS[3:], "no manifest")}
                        for t, m in seen.itertuples(index=False)]  # fmt: skip
            continue
        config = parsed.config
        judge = config.judge + (f" ({config.judge_model.model})" if config.judge_model else "")
        if config.judge not in agreements:
            agreements[config.judge] = judge_agreement(config.judge, judge_error)
        seeds = ", ".join(map(str, config.seeds)) + (f"; sample {config.sample}" if config.sample else "")
        shared = {"judge": judge or "-", "judge_agreement": agreements[config.judge],
                  "turns": "-" if config.turns is None else str(config.turns), "seeds": seeds or "-",
                  "convsim": parsed.versions.get("convsim", "-")}  # fmt: skip
        for target in config.targets:
            records.append({"run": run, "target": target.name, "model": target.model,
                            "system_prompt": prompt_name(target.system_prompt), "sampling": _sampling(target.sampling),
                            **shared})  # fmt: skip
    return pd.DataFrame.from_records(records, columns=list(PROVENANCE_COLUMNS))
