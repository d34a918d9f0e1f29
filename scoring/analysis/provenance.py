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

__all__ = ["PROVENANCE_COLUMNS", "RunManifest", "prompt_name", "provenance", "target_prompts"]

PROVENANCE_COLUMNS = ("run", "target", "model", "system_prompt", "sampling", "judge", "turns", "seeds", "convsim")
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


def provenance(frames: Frames) -> pd.DataFrame:
    """One row per run and target: model, system prompt, sampling, judge, turns, seeds, convsim version.

    Targets come from each run's manifest; a run without one (or whose manifest names no target)
    gets a row per target seen in its transcripts, with ``no manifest`` where the manifest would have spoken.
    """
    records: list[dict[str, Any]] = []
    for run in frames.runs:
        parsed = _parsed(frames.manifests[run]) if run in frames.manifests else None
        if parsed is None or not parsed.config.targets:
            seen = frames.conversations.loc[frames.conversations["run"] == run, ["target", "model"]].drop_duplicates()
            records += [{"run": run, "target": t, "model": m, **dict.fromkeys(PROVENANCE_COLUMNS[3:], "no manifest")}
                        for t, m in seen.itertuples(index=False)]  # fmt: skip
            continue
        config = parsed.config
        judge = config.judge + (f" ({config.judge_model.model})" if config.judge_model else "")
        seeds = ", ".join(map(str, config.seeds)) + (f"; sample {config.sample}" if config.sample else "")
        for target in config.targets:
            records.append({"run": run, "target": target.name, "model": target.model,
                            "system_prompt": prompt_name(target.system_prompt), "sampling": _sampling(target.sampling),
                            "judge": judge or "-", "turns": "-" if config.turns is None else str(config.turns),
                            "seeds": seeds or "-", "convsim": parsed.versions.get("convsim", "-")})  # fmt: skip
    return pd.DataFrame.from_records(records, columns=list(PROVENANCE_COLUMNS))
