"""Finding scenarios and flows: the built-in library, user files, and the checks beyond the schema."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from personas import (
    FileError,
    FileErrors,
    Located,
    id_errors,
    load_packaged,
    parse_yaml,
    read_text,
    resolve_refs,
    template_fields,
    validate_data,
)
from scenarios.flow import Flow, StageKind, UserText
from scenarios.model import TEMPLATE_VARIABLES, Scenario

__all__ = ["LoadedScenario", "builtin_flows", "builtin_scenarios", "load_scenario", "resolve_scenarios"]

_BELIEF_VARIABLES = {"belief", "belief_statement"}
_SCHEMA = "convsim scenarios schema"


class LoadedScenario(BaseModel):
    """A validated scenario with its flow resolved, its source and the hash of its file."""

    model_config = ConfigDict(frozen=True)

    scenario: Scenario
    flow: Flow
    source: str
    sha256: str

    def user_text(self, stage: str) -> str | UserText | None:
        """The user text a stage gives: the scenario's override, else the flow's own."""
        return self.scenario.templates.get(stage, self.flow.stages[stage].user)


@cache
def builtin_flows() -> dict[str, Flow]:
    """The flows that ship with convsim, by name (the file stem)."""
    flows: dict[str, Flow] = {}
    errors: list[FileError] = []
    for entry in sorted(resources.files("scenarios").joinpath("flows").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            located = parse_yaml(entry.read_text(encoding="utf-8"), f"scenarios/flows/{entry.name}")
            flow = validate_data(located, Flow, schema=_SCHEMA)
            errors += [located.error(loc, msg) for loc, msg in flow.problems()]
            flows[entry.name.removesuffix(".yaml")] = flow
    if errors:
        raise FileErrors(errors)
    return flows


def _templates(scenario: Scenario, flow: Flow) -> Iterator[tuple[tuple[str | int, ...], str, bool]]:
    """Every template in a scenario: (location, text, whether it may use the belief)."""
    if isinstance(scenario.flow, Flow):
        for name, stage in scenario.flow.stages.items():
            yield from _user_texts(("flow", "stages", name, "user"), stage.user)
    for name, text in scenario.templates.items():
        yield from _user_texts(("templates", name), text)
    for i, followup in enumerate(scenario.followups):
        yield ("followups", i), followup, False
    for i, probe in enumerate(scenario.probes):
        yield ("probes", i, "question"), probe.question, False


def _user_texts(
    where: tuple[str | int, ...], text: str | UserText | None
) -> Iterator[tuple[tuple[str | int, ...], str, bool]]:
    if isinstance(text, UserText):
        yield (*where, "belief"), text.belief, True
        yield (*where, "doubt"), text.doubt, False
    elif text is not None:
        yield where, text, False


def _safe_fields(text: str) -> list[str]:
    try:
        return template_fields(text)
    except ValueError:
        return []


def _problems(scenario: Scenario, flow: Flow) -> list[tuple[tuple[str | int, ...], str]]:
    found: list[tuple[tuple[str | int, ...], str]] = []
    if isinstance(scenario.flow, Flow):
        found += [(("flow", *loc), message) for loc, message in flow.problems()]
    known = TEMPLATE_VARIABLES | set(scenario.vars)
    for where, text, may_use_belief in _templates(scenario, flow):
        try:
            names = set(template_fields(text))
        except ValueError as exc:
            found.append((where, str(exc)))
            continue
        for name in sorted(names - known):
            found.append((where, f"undefined template variable {{{name}}}; define it under `vars`"))
        used = sorted(names & _BELIEF_VARIABLES)
        if used and not may_use_belief:
            found.append(
                (
                    where,
                    f"uses {{{used[0]}}}: give `belief:` and `doubt:` wordings, since some conditions "
                    "have no false belief",
                )
            )
    for name in scenario.templates:
        if name not in flow.stages:
            found.append((("templates", name), f"no stage {name!r} in the flow"))
        elif flow.stages[name].kind is StageKind.END:
            found.append((("templates", name), f"stage {name!r} is an end stage and says nothing"))
    kinds = {stage.kind for stage in flow.stages.values()}
    mentioned = {name for _, text, _ in _templates(scenario, flow) for name in _safe_fields(text)}
    for field in ("anecdote", "authority"):
        if not getattr(scenario, field) and (StageKind.PUSHBACK in kinds or field in mentioned):
            why = "the flow has a pushback stage" if StageKind.PUSHBACK in kinds else f"a template uses {{{field}}}"
            found.append(((), f"missing field {field!r}: {why}"))
    if StageKind.FOLLOWUP in kinds and not scenario.followups:
        found.append((("followups",), "the flow has a followup stage, so give at least one follow-up"))
    if StageKind.PROBE in kinds and not scenario.probes:
        found.append((("probes",), "the flow has a probe stage, so give at least one probe"))
    return found


_TEXT_FIELDS = ("anecdote", "authority", "followups", "probes", "flow", "templates", "vars")
_TEXT_DEFINITIONS: dict[str, Any] = {
    name: (Scenario.model_fields[name].annotation, Scenario.model_fields[name]) for name in _TEXT_FIELDS
}
_ScenarioTexts = create_model("_ScenarioTexts", __config__=ConfigDict(extra="ignore"), **_TEXT_DEFINITIONS)
"""The parts of a scenario that its flow and templates are checked on, validated alone."""


def _texts(located: Located) -> Scenario | None:
    """The flow and template parts of a scenario that is invalid elsewhere, if they are valid themselves."""
    try:
        texts = _ScenarioTexts.model_validate(located.data)
    except ValidationError:
        return None  # already reported as field errors
    return Scenario.model_construct(**{name: getattr(texts, name) for name in _TEXT_FIELDS})


def _flow_of(located: Located, scenario: Scenario) -> Flow | FileError:
    if isinstance(scenario.flow, Flow):
        return scenario.flow
    if scenario.flow in builtin_flows():
        return builtin_flows()[scenario.flow]
    return located.error(("flow",), f"no built-in flow {scenario.flow!r}; known: {', '.join(builtin_flows())}")


def _load(text: str, source: str) -> LoadedScenario:
    """Every mistake of the file at once: field errors, the id, the flow and the templates."""
    located: Located = parse_yaml(text, source)
    errors = id_errors(located)
    valid: Scenario | None = None
    try:
        valid = validate_data(located, Scenario, schema=_SCHEMA)
    except FileErrors as exc:
        errors += exc.errors
    checked = valid or _texts(located)
    flow = None if checked is None else _flow_of(located, checked)
    if isinstance(flow, FileError):
        errors.append(flow)
    elif checked is not None and flow is not None:
        errors += [located.error(loc, message) for loc, message in _problems(checked, flow)]
    if errors:
        raise FileErrors(errors)
    assert valid is not None and isinstance(flow, Flow), "no errors: the scenario and its flow are valid"
    return LoadedScenario(scenario=valid, flow=flow, source=source, sha256=hashlib.sha256(text.encode()).hexdigest())


def load_scenario(path: Path) -> LoadedScenario:
    """Load and validate one scenario file; its ``id`` must equal the file name's stem.

    Raises:
        FileErrors: every problem, each with file, line and column.
    """
    return _load(read_text(path, "scenario file"), str(path))


@cache
def builtin_scenarios() -> dict[str, LoadedScenario]:
    """The scenarios that ship with convsim, by id."""
    return load_packaged("scenarios", "library", _load, _scenario_id)


def resolve_scenarios(refs: Iterable[str]) -> list[LoadedScenario]:
    """Turn built-in ids, files and folders of files into scenarios; no refs means the library.

    Raises:
        FileErrors: all problems in all files at once (an unknown id counts as one).
    """
    return resolve_refs(refs, "scenario", builtin_scenarios, load_scenario, _scenario_id)


def _scenario_id(loaded: LoadedScenario) -> str:
    return loaded.scenario.id
