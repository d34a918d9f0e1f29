"""The run configuration: a YAML file whose every field is also a CLI flag."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from personas import FileError, FileErrors, parse_yaml, preset_personas, read_text, validate_data
from scenarios import DEFAULT_CONDITIONS, Condition, system_prompt
from simulator.backends.base import Sampling
from simulator.backends.http import normalise_base_url
from simulator.presets import SYCON_PRESETS, RequestStyle, check_preset, sycon_protocol

__all__ = ["EMBEDDED_TARGET", "Endpoint", "RunConfig", "TargetConfig", "load_config", "replica_urls"]

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,63}$")]


def replica_urls(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The replica URLs a ``base_url`` names: a list, or one string with commas between URLs.

    Raises:
        ValueError: an empty URL, or one given twice.
    """
    urls = tuple(url.strip() for url in (value.split(",") if isinstance(value, str) else value))
    if not urls or not all(urls):
        raise ValueError(f"empty server URL in {value!r}; give URL or URL1,URL2 (replicas of one model)")
    seen = [normalise_base_url(url) for url in urls]
    twice = sorted({url for url in seen if seen.count(url) > 1})
    if twice:
        raise ValueError(f"replica URL given twice: {', '.join(twice)}")
    return urls


class Endpoint(BaseModel):
    """Where a model is served, for any role: target, user model or judge.

    Attributes:
        base_url: an OpenAI-compatible server (``http://host:8000/v1``); several replicas of one
            model as a list or ``URL1,URL2`` (:class:`~simulator.backends.pool.ReplicaPool` balances
            them); ``None`` for the embedded demo model.
        model: the served model or LoRA adapter name.
        api_key_env: the environment variable holding the API key, if the server wants one.
            The key itself is never written anywhere.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | tuple[str, ...] | None = None
    model: str
    api_key_env: str | None = None
    timeout: float = Field(120.0, gt=0)
    max_retries: int = Field(6, ge=0, le=50)

    @field_validator("base_url", mode="before")
    @classmethod
    def _replicas(cls, value: object) -> object:
        """``URL1,URL2`` or a list: a tuple of replicas; one URL stays a string."""
        if not isinstance(value, str | list | tuple) or not all(isinstance(url, str) for url in value):
            return value  # None, or a type error for pydantic to report
        urls = replica_urls(value)
        return urls[0] if len(urls) == 1 else urls

    @property
    def replicas(self) -> tuple[str, ...]:
        """The server URLs of this endpoint: one, several replicas, or none (the embedded model)."""
        if self.base_url is None:
            return ()
        return (self.base_url,) if isinstance(self.base_url, str) else self.base_url


class TargetConfig(Endpoint):
    """A model under test: where it is served, and how it is asked.

    Attributes:
        name: how the target is called in transcripts and reports.
        system_prompt: the system message: a built-in name (``neutral``, ``warm``), the
            text itself, or empty for none.
        style: text around the user's turns, and whether a seed is sent (a published
            protocol's framing; a preset sets it).
    """

    name: Name
    system_prompt: str = ""
    sampling: Sampling = Sampling()
    style: RequestStyle = RequestStyle()

    @field_validator("system_prompt")
    @classmethod
    def _expand_builtin_prompt(cls, value: str) -> str:
        return system_prompt(value)

    def with_sampling(self, changes: dict[str, Any]) -> TargetConfig:
        """This target with some sampling parameters changed (validated)."""
        sampling = {**self.sampling.model_dump(), **changes}
        return TargetConfig.model_validate({**self.model_dump(), "sampling": sampling})

    def identity(self) -> dict[str, Any]:
        """What makes two targets the same model under test (the URL is where, not what)."""
        identity = self.model_dump(include={"name", "model", "system_prompt", "sampling"}, mode="json")
        if self.style != RequestStyle():  # the default style adds nothing, so older ids stay valid
            identity["style"] = self.style.model_dump(mode="json")
        return identity


SYCON_PERSONA = "neutral-curious"
"""The one persona of a ``sycon`` run: SYCON-Bench's user says only the benchmark's words."""

EMBEDDED_TARGET = TargetConfig(name="smollm2-demo", model="SmolLM2-135M-Instruct", sampling=Sampling(max_tokens=64))
"""The target used when none is given: the tiny embedded model, no server needed."""


class RunConfig(BaseModel):
    """Everything that defines a batch. Relative paths are relative to the config file.

    Attributes:
        scenarios: built-in scenario ids, files or folders; empty for the whole library.
        personas: built-in persona ids or files; empty for the whole library.
        conditions: the user-side conditions to cross with personas and scenarios.
        targets: models under test; empty for the embedded demo model.
        judge: the online judge: ``learned`` (the judge shipped in the package, the default),
            ``learned:FILE``, ``rules``, ``llm`` (the model at ``judge_model``) or
            ``cascade:learned,llm`` (the learned judge where it is confident, the LLM judge elsewhere).
        user_model: drives the simulated user where the flow leaves the words to it; without
            it, the user is scripted.
        turns: the most target replies in one conversation.
        seeds: one conversation per seed for every combination.
        sample: draw this many conversations from the plan (with ``sample_seed``).
        knowledge_check: also ask each target each scenario's question alone.
        concurrency: conversations in flight (per run), or ``auto``: per target, as many as its
            server sustains, following a vLLM server's queue (:mod:`simulator.limiter`; from 8 up
            to 256; a server without vLLM's ``/metrics`` stays at 8).
        outage_wait: seconds to wait for a server (every replica of a pool) that stopped answering
            before its conversations end as errors; 0 fails them at once.
        out: the output folder; by default ``runs/run-<hash of this config>`` (with
            ``-shard-I-of-N``), so that running the same command again resumes the same run.
        retry_errors: run again the conversations that ended in an error.
        shard: ``I/N``: run only the I-th of N disjoint parts of the plan (N jobs, one plan);
            ``convsim merge`` joins the parts.
        preset: ``warm-paper``: the warm-model paper's protocol: its four frames (original,
            neutral frame, stated incorrect belief, denied correct answer), each with and
            without its eight interpersonal contexts (the ``warm-*`` personas: sad, happy,
            angry, close, deferential, instrumental, high and low stakes), then pushback turns.
            ``sycon[:gemma|:qwen|:api][:prompt0..4]``: SYCON-Bench's false-presupposition
            protocol (:mod:`simulator.presets`) for every target: its system prompt (unless the
            target has one), framing and sampling, no seed; the ``neutral`` condition, one
            persona, and no knowledge check unless asked.
    """

    model_config = ConfigDict(extra="forbid")

    scenarios: list[str] = Field(default_factory=list)
    personas: list[str] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=lambda: list(DEFAULT_CONDITIONS))
    targets: list[TargetConfig] = Field(default_factory=list)
    judge: str = "learned"
    judge_model: Endpoint | None = None
    user_model: Endpoint | None = None
    turns: int = Field(6, ge=1, le=100)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    sample: int | None = Field(None, ge=1)
    sample_seed: int = 0
    knowledge_check: bool = True
    concurrency: Annotated[int, Field(ge=1, le=4096)] | Literal["auto"] = 32
    rps: float | None = Field(None, gt=0)
    outage_wait: float = Field(600.0, ge=0)
    out: Path | None = None
    retry_errors: bool = False
    shard: tuple[int, int] | None = None
    preset: Annotated[str, AfterValidator(check_preset)] | None = None

    @model_validator(mode="after")
    def _apply_preset(self) -> RunConfig:
        """``warm-paper``: the paper's four frames, with and without its interpersonal contexts;
        ``sycon...``: SYCON-Bench's protocol."""
        if self.preset == "warm-paper":
            if "conditions" not in self.model_fields_set:
                self.conditions = list(Condition)
            if not self.personas:
                self.personas = [f"preset:warm-paper/{persona}" for persona in preset_personas("warm-paper")]
        elif self.preset in SYCON_PRESETS:
            if not self.scenarios:
                raise ValueError(
                    "the sycon presets send SYCON-Bench's items: import them with `convsim scenarios import sycon "
                    "DIR --out FOLDER`, then give --scenario FOLDER"
                )
            protocol = sycon_protocol(self.preset)
            if "conditions" not in self.model_fields_set:
                self.conditions = [Condition.NEUTRAL]
            if "knowledge_check" not in self.model_fields_set:
                self.knowledge_check = False
            self.personas = self.personas or [SYCON_PERSONA]
            self.targets = [
                target.model_copy(
                    update={
                        "system_prompt": target.system_prompt or protocol.system_prompt,
                        "sampling": protocol.sampling,
                        "style": protocol.style,
                    }
                )
                for target in self.targets
            ]
        return self

    @field_validator("shard", mode="before")
    @classmethod
    def _parse_shard(cls, value: object) -> object:
        if isinstance(value, str):
            index, sep, count = value.partition("/")
            if not sep or not index.isdigit() or not count.isdigit():
                raise ValueError(f"shard must be I/N, as in 2/8, not {value!r}")
            return int(index), int(count)
        return value

    @field_validator("shard")
    @classmethod
    def _shard_in_range(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not 1 <= value[0] <= value[1]:
            raise ValueError(f"shard {value[0]}/{value[1]} is not one of 1/{value[1]} .. {value[1]}/{value[1]}")
        return value

    @field_validator("targets")
    @classmethod
    def _unique_target_names(cls, targets: list[TargetConfig]) -> list[TargetConfig]:
        names = [t.name for t in targets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"target names must differ; given twice: {', '.join(dupes)}")
        return targets

    def fingerprint(self) -> str:
        """A short hash of what defines the run's plan (not where or how fast it runs)."""
        plan = self.model_dump(
            mode="json",
            include={
                "scenarios",
                "personas",
                "conditions",
                "judge",
                "turns",
                "seeds",
                "sample",
                "sample_seed",
                "knowledge_check",
                "preset",
            },
        )
        plan["targets"] = [t.identity() for t in self.targets]
        plan["judge_model"] = self.judge_model.model if self.judge_model else None
        plan["user_model"] = self.user_model.model if self.user_model else None
        return hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def max_concurrency(self) -> int:
        """The most conversations (and requests to one endpoint) in flight: ``concurrency``, or the
        ceiling of ``auto`` for each target server (each replica counts)."""
        if self.concurrency == "auto":
            from simulator.limiter import AUTO_MAXIMUM

            return AUTO_MAXIMUM * max(1, sum(max(1, len(target.replicas)) for target in self.targets))
        return self.concurrency

    def output_dir(self) -> Path:
        """Where the run writes: ``out``, or ``runs/run-<fingerprint>``."""
        if self.out is not None:
            return self.out
        suffix = f"-shard-{self.shard[0]}-of-{self.shard[1]}" if self.shard else ""
        return Path("runs") / f"run-{self.fingerprint()}{suffix}"


def load_config(path: Path) -> RunConfig:
    """Load a run config; scenario and persona files it names must exist.

    Raises:
        FileErrors: every problem, each with file, line and column.
    """
    located = parse_yaml(read_text(path, "config file"), str(path))
    config = validate_data(located, RunConfig, schema="convsim config schema")
    base = path.parent
    errors: list[FileError] = []
    for field in ("scenarios", "personas"):
        refs: list[str] = getattr(config, field)
        resolved = []
        for i, ref in enumerate(refs):
            full = base / ref  # an absolute ref stays absolute
            if not ref.startswith("preset:") and (ref.endswith((".yaml", ".yml")) or "/" in ref or full.is_dir()):
                if not full.exists():
                    errors.append(
                        located.error((field, i), f"{field[:-1]} file {ref!r} does not exist (looked in {base})")
                    )
                ref = str(full)
            resolved.append(ref)
        setattr(config, field, resolved)
    if config.out is not None and not config.out.is_absolute():
        config.out = base / config.out
    if errors:
        raise FileErrors(errors)
    return config
