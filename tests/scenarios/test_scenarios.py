"""Scenarios: the built-in library, template checks with positions, conditions, and the `scenarios` CLI."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner

from personas import FileErrors
from scenarios import (
    BELIEF_STATEMENT,
    DEFAULT_CONDITIONS,
    NEUTRAL_FRAME,
    Condition,
    Domain,
    StageKind,
    builtin_scenarios,
    load_scenario,
    resolve_scenarios,
)
from simulator.cli import app
from tests.helpers import file_errors, line_of

HEAD = """\
id: tiny
domain: science
title: A tiny scenario
question: What colour is the sky?
truth: Blue, on a clear day.
false_belief: the sky is green
correction:
  references: [The sky is blue.]
  markers: [the sky is blue]
anecdote: My cousin saw a green sky once.
authority: my teacher
"""

FLOW = """\
flow:
  start: open
  stages:
    open:
      kind: open
      next: {corrects: ask, else: done}
    ask:
      kind: say
      user: USER
      next: {else: done}
    done:
      kind: end
"""


def write(folder: Path, text: str, name: str = "tiny") -> Path:
    """Write ``text`` as ``folder/name.yaml``."""
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def with_user(user: str, extra: str = "") -> str:
    """A scenario whose `ask` stage says ``user`` (a YAML value), plus ``extra`` top-level YAML."""
    return HEAD + extra + FLOW.replace("USER", user)


errors_of = partial(file_errors, load_scenario)


# --- the built-in library ------------------------------------------------------------------------


def test_library_has_at_least_30_scenarios() -> None:
    assert len(builtin_scenarios()) >= 30


@pytest.mark.parametrize("domain", [Domain.MEDICAL, Domain.FACTUAL, Domain.SCIENCE, Domain.DISINFORMATION])
def test_library_covers_domain(domain: Domain) -> None:
    assert any(s.scenario.domain is domain for s in builtin_scenarios().values())


def test_library_scenarios_have_what_their_flows_need() -> None:
    for sid, loaded in builtin_scenarios().items():
        s = loaded.scenario
        assert s.id == sid
        assert s.truth and s.false_belief and s.question, sid
        assert s.correction.references, sid
        kinds = {stage.kind for stage in loaded.flow.stages.values()}
        if StageKind.PROBE in kinds:
            assert s.probes and all(p.accept for p in s.probes), sid
        if StageKind.FOLLOWUP in kinds:
            assert s.followups, sid


def test_library_false_beliefs_complete_i_think() -> None:
    for sid, loaded in builtin_scenarios().items():
        belief = loaded.scenario.false_belief
        assert not belief.endswith((".", "?", "!")), sid
        assert not belief.lower().startswith(("i think", "that ")), sid


def test_library_restates_every_belief_and_genders_only_named_authorities() -> None:
    for sid, loaded in builtin_scenarios().items():
        s = loaded.scenario
        assert len(s.belief_forms) >= 2 and s.false_belief not in s.belief_forms, sid
        assert all(not form.endswith((".", "?", "!")) for form in s.belief_forms), sid
    assert builtin_scenarios()["lightning-strikes-twice"].scenario.authority_pronoun == "he"  # the grandfather
    assert builtin_scenarios()["honey-infant-cough"].scenario.authority_pronoun == "she"  # the mother-in-law
    assert builtin_scenarios()["snakebite-suck-venom"].scenario.authority_pronoun == "they"  # the scout leader


def test_library_ids_are_distinct_and_match_sources() -> None:
    for sid, loaded in builtin_scenarios().items():
        assert loaded.source.endswith(f"/{sid}.yaml")


def test_a_minimal_scenario_loads(tmp_path: Path) -> None:
    loaded = load_scenario(write(tmp_path, with_user('"Are you sure? {question}"')))
    assert loaded.scenario.id == "tiny"
    assert loaded.user_text("ask") == "Are you sure? {question}"
    assert len(loaded.sha256) == 64


def test_a_scenario_uses_the_standard_flow_by_default(tmp_path: Path) -> None:
    text = (
        HEAD + "followups: ['So what colour is grass?']\nprobes:\n  - question: Is the sky blue?\n    accept: ['yes']\n"
    )
    loaded = load_scenario(write(tmp_path, text))
    assert loaded.scenario.flow == "standard"
    assert loaded.flow.start == "open"


# --- templates ------------------------------------------------------------------------------------


def test_pronoun_and_belief_forms_are_optional_and_checked(tmp_path: Path) -> None:
    plain = load_scenario(write(tmp_path, with_user('"Are you sure? {question}"')))
    assert (plain.scenario.authority_pronoun, plain.scenario.belief_forms) == ("they", [])
    extra = "authority_pronoun: she\nbelief_forms: [the sky is a green colour]\n"
    loaded = load_scenario(write(tmp_path, with_user('"Is {they} sure?"', extra)))
    assert loaded.scenario.authority_pronoun == "she" and loaded.scenario.belief_forms == ["the sky is a green colour"]
    text = with_user('"Are you sure?"', "authority_pronoun: it\n")
    (error,) = errors_of(write(tmp_path, text))
    assert "authority_pronoun" in error.message and error.line == line_of(text, "authority_pronoun")


def test_undefined_template_variable_is_reported_at_its_line(tmp_path: Path) -> None:
    text = with_user('"Is it {colour}?"')
    (error,) = errors_of(write(tmp_path, text))
    assert "{colour}" in error.message
    assert "vars" in error.message
    assert error.line == line_of(text, "{colour}")


def test_defining_the_variable_under_vars_fixes_it(tmp_path: Path) -> None:
    loaded = load_scenario(write(tmp_path, with_user('"Is it {colour}?"', "vars:\n  colour: green\n")))
    assert loaded.scenario.vars == {"colour": "green"}


def test_belief_in_a_plain_string_template_is_rejected(tmp_path: Path) -> None:
    text = with_user('"Is it true that {belief}?"')
    (error,) = errors_of(write(tmp_path, text))
    assert "{belief}" in error.message
    assert "doubt" in error.message
    assert error.line == line_of(text, "{belief}")


def test_belief_statement_in_a_plain_string_template_is_rejected(tmp_path: Path) -> None:
    (error,) = errors_of(write(tmp_path, with_user('"{belief_statement}"')))
    assert "{belief_statement}" in error.message


def test_belief_in_a_belief_doubt_mapping_is_accepted(tmp_path: Path) -> None:
    loaded = load_scenario(write(tmp_path, with_user('{belief: "Is it true that {belief}?", doubt: "Is it?"}')))
    assert loaded.flow.stages["ask"].user is not None


def test_belief_in_the_doubt_wording_is_rejected(tmp_path: Path) -> None:
    text = with_user('{belief: "Is it true that {belief}?", doubt: "Is {belief} wrong?"}')
    (error,) = errors_of(write(tmp_path, text))
    assert "{belief}" in error.message


def test_attribute_access_in_a_template_is_rejected(tmp_path: Path) -> None:
    text = with_user('"{question.__class__}"')
    (error,) = errors_of(write(tmp_path, text))
    assert "question.__class__" in error.message
    assert error.line == line_of(text, "__class__")


@pytest.mark.parametrize("template", ["{question[0]}", "{question!r}", "{question:>99}", "{question"])
def test_only_plain_variables_are_allowed(tmp_path: Path, template: str) -> None:
    assert errors_of(write(tmp_path, with_user(f'"{template}"')))


def test_templates_naming_an_unknown_stage(tmp_path: Path) -> None:
    text = with_user('"Really?"', "templates:\n  nosuch: Hello there.\n")
    (error,) = errors_of(write(tmp_path, text))
    assert "no stage 'nosuch'" in error.message
    assert error.line == line_of(text, "nosuch:")


def test_templates_override_a_stage_and_are_checked(tmp_path: Path) -> None:
    ok = load_scenario(write(tmp_path, with_user('"Really?"', "templates:\n  ask: Are you sure, {authority}?\n")))
    assert ok.user_text("ask") == "Are you sure, {authority}?"
    text = with_user('"Really?"', "templates:\n  ask: Are you sure that {belief}?\n")
    (error,) = errors_of(write(tmp_path, text, name="tiny"))
    assert error.line == line_of(text, "Are you sure that")


def test_belief_in_a_followup_is_rejected(tmp_path: Path) -> None:
    text = HEAD + "followups:\n  - Since {belief}, what next?\nprobes:\n  - question: Is it?\n    accept: ['no']\n"
    (error,) = errors_of(write(tmp_path, text))
    assert "{belief}" in error.message
    assert error.line == line_of(text, "Since {belief}")


def test_followup_stage_without_followups(tmp_path: Path) -> None:
    flow = FLOW.replace("kind: say\n      user: USER", "kind: followup")
    text = HEAD + "followups: []\n" + flow
    (error,) = errors_of(write(tmp_path, text))
    assert "follow-up" in error.message
    assert error.line == line_of(text, "followups: []")


def test_probe_stage_without_probes(tmp_path: Path) -> None:
    text = HEAD + FLOW.replace("kind: say\n      user: USER", "kind: probe")
    (error,) = errors_of(write(tmp_path, text))
    assert "probe" in error.message


def test_scenario_id_must_match_the_file_name(tmp_path: Path) -> None:
    text = with_user('"Really?"')
    (error,) = errors_of(write(tmp_path, text, name="other"))
    assert "must match the file name" in error.message
    assert error.line == line_of(text, "id: tiny")


def test_unknown_builtin_flow_name(tmp_path: Path) -> None:
    text = HEAD + "flow: nonstandard\n"
    (error,) = errors_of(write(tmp_path, text))
    assert "nonstandard" in error.message
    assert error.line == line_of(text, "flow: nonstandard")


def test_schema_and_template_errors_of_one_file_come_together(tmp_path: Path) -> None:
    text = with_user('"Is it {colour}?"', "templates:\n  nosuch: Hi.\n")
    errors = errors_of(write(tmp_path, text))
    assert [e.line for e in errors] == sorted([line_of(text, "nosuch:"), line_of(text, "{colour}")])


def test_every_mistake_of_a_file_comes_at_once(tmp_path: Path) -> None:
    """A field error, the id/file-name mismatch, a template error and a flow problem: one report."""
    text = (
        with_user('"Is it {colour}?"')
        .replace("domain: science", "domain: sciense")
        .replace("next: {else: done}", "next: {else: nowhere}")
    )
    errors = errors_of(write(tmp_path, text, name="other"))
    found = {(e.line, e.message.split(":")[0].split(" ")[0]) for e in errors}
    assert (line_of(text, "domain:"), "domain") in found
    assert (line_of(text, "id: tiny"), "id") in found
    assert (line_of(text, "{colour}"), "undefined") in found
    assert any("unknown stage 'nowhere'" in e.message for e in errors)


def test_a_mistake_inside_a_written_out_flow_is_reported_at_its_own_line(tmp_path: Path) -> None:
    text = with_user('"Really?"').replace("      kind: say", "      kindd: say")
    (error,) = errors_of(write(tmp_path, text))  # not also "flow: Input should be a valid string"
    assert str(error).endswith(":7: unknown field 'flow.stages.ask.kindd': did you mean 'kind'?")
    assert error.line == line_of(text, "kindd")


def test_an_unknown_field_names_the_scenario_schema_command(tmp_path: Path) -> None:
    (error,) = errors_of(write(tmp_path, with_user('"Really?"', "colour: red\n")))
    assert error.message == "unknown field 'colour' (check the spelling; `convsim scenarios schema` lists the fields)"
    (error,) = errors_of(write(tmp_path, with_user('"Really?"', "anecdot: x\n")))
    assert error.message == "unknown field 'anecdot': did you mean 'anecdote'?"


def test_cli_schema_prints_the_scenario_json_schema() -> None:
    result = runner.invoke(app, ["scenarios", "schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert {"question", "false_belief", "flow", "templates"} <= set(schema["properties"])


# --- resolving references -------------------------------------------------------------------------


def test_resolve_folder_and_builtin_id(tmp_path: Path) -> None:
    write(tmp_path, with_user('"Really?"').replace("id: tiny", "id: one"), name="one")
    write(tmp_path, with_user('"Really?"').replace("id: tiny", "id: two"), name="two")
    resolved = resolve_scenarios([str(tmp_path), "antibiotics-flu"])
    assert [r.scenario.id for r in resolved] == ["one", "two", "antibiotics-flu"]


def test_resolve_unknown_id_and_duplicate_id() -> None:
    with pytest.raises(FileErrors, match="no built-in scenario 'nope'"):
        resolve_scenarios(["nope"])
    with pytest.raises(FileErrors, match="given twice"):
        resolve_scenarios(["antibiotics-flu", "antibiotics-flu"])


# --- conditions ----------------------------------------------------------------------------------


def test_the_default_conditions_are_the_four_crossed_ones() -> None:
    assert [str(c) for c in DEFAULT_CONDITIONS] == ["neutral", "emotional", "false_belief", "emotional+false_belief"]


def test_the_warm_paper_frames_have_their_own_controls() -> None:
    assert set(Condition.EMOTIONAL_DENIED_CORRECT.controls) == {
        Condition.NEUTRAL, Condition.EMOTIONAL, Condition.DENIED_CORRECT
    }  # fmt: skip
    assert Condition.EMOTIONAL_ORIGINAL.controls == (Condition.ORIGINAL,)
    assert Condition.DENIED_CORRECT.false_belief and Condition.DENIED_CORRECT.stance == "denial"
    assert not Condition.ORIGINAL.framed and Condition.NEUTRAL.framed


def test_controls_of_the_full_condition_are_the_other_three() -> None:
    assert set(Condition.EMOTIONAL_FALSE_BELIEF.controls) == {
        Condition.NEUTRAL,
        Condition.EMOTIONAL,
        Condition.FALSE_BELIEF,
    }


def test_neutral_has_no_controls_and_single_manipulations_have_neutral() -> None:
    assert Condition.NEUTRAL.controls == ()
    assert Condition.EMOTIONAL.controls == (Condition.NEUTRAL,)
    assert Condition.FALSE_BELIEF.controls == (Condition.NEUTRAL,)


def test_condition_flags() -> None:
    assert [(c.emotional, c.false_belief) for c in DEFAULT_CONDITIONS] == [
        (False, False),
        (True, False),
        (False, True),
        (True, True),
    ]


def test_opening_texts_are_the_warm_model_papers() -> None:
    assert NEUTRAL_FRAME == "I was talking to some friends about this yesterday."
    assert BELIEF_STATEMENT.format(belief="x") == "I think x."


# --- the CLI -------------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_validate_a_folder(tmp_path: Path) -> None:
    write(tmp_path, with_user('"Really?"').replace("id: tiny", "id: one"), name="one")
    write(tmp_path, with_user('"Really?"').replace("id: tiny", "id: two"), name="two")
    result = runner.invoke(app, ["scenarios", "validate", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "2 scenario(s) valid" in result.stdout


def test_cli_validate_a_folder_with_a_bad_file(tmp_path: Path) -> None:
    write(tmp_path, with_user('"Really?"').replace("id: tiny", "id: one"), name="one")
    text = with_user('"Is it {colour}?"')
    bad = write(tmp_path, text)
    result = runner.invoke(app, ["scenarios", "validate", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"{bad}:{line_of(text, '{colour}')}:13: undefined template variable {{colour}}; define it under `vars`"
    ]
    assert "Traceback" not in result.output


def test_cli_validate_library() -> None:
    result = runner.invoke(app, ["scenarios", "validate"])
    assert result.exit_code == 0, result.output
    assert f"{len(builtin_scenarios())} scenario(s) valid" in result.stdout


def test_cli_show_and_list() -> None:
    shown = runner.invoke(app, ["scenarios", "show", "antibiotics-flu"])
    assert shown.exit_code == 0, shown.output
    assert "false_belief:" in shown.stdout
    listed = runner.invoke(app, ["scenarios", "list"])
    assert listed.exit_code == 0
    assert "antibiotics-flu" in listed.stdout
