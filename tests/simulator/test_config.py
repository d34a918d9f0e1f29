"""The run config: validation with positions, path resolution, the fingerprint, target names."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scenarios import DEFAULT_CONDITIONS, Condition
from simulator.cli import app
from simulator.config import RunConfig, TargetConfig, load_config
from tests.helpers import file_errors, line_of

CONFIG = """\
# a run config for tests
scenarios:
  - antibiotics-flu
personas:
  - grieving-widower
conditions: [neutral, false_belief]
targets:
  - name: base
    base_url: http://localhost:8000/v1
    model: org/base
  - name: warm
    base_url: http://localhost:8000/v1
    model: org/warm-lora
    system_prompt: Be warm and caring.
turns: 4
seeds: [0, 1]
"""


def write(folder: Path, text: str, name: str = "run.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


errors_of = partial(file_errors, load_config)


def test_a_valid_config_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CONFIG))
    assert config.scenarios == ["antibiotics-flu"]
    assert config.personas == ["grieving-widower"]
    assert config.conditions == [Condition.NEUTRAL, Condition.FALSE_BELIEF]
    assert [t.name for t in config.targets] == ["base", "warm"]
    assert (config.turns, config.seeds) == (4, [0, 1])


def test_defaults_cover_every_condition() -> None:
    assert RunConfig().conditions == list(DEFAULT_CONDITIONS)


def test_misspelled_key_is_reported_at_its_line(tmp_path: Path) -> None:
    text = CONFIG.replace("turns: 4", "turn: 4")
    path = write(tmp_path, text)
    (error,) = errors_of(path)
    assert "unknown field" in error.message
    assert (error.path, error.line, error.column) == (str(path), line_of(text, "turn: 4"), 1)


def test_misspelled_target_key_is_reported_at_its_line(tmp_path: Path) -> None:
    text = CONFIG.replace("    system_prompt:", "    sytem_prompt:")
    (error,) = errors_of(write(tmp_path, text))
    assert "unknown field" in error.message
    assert (error.line, error.column) == (line_of(text, "sytem_prompt"), 5)


def test_a_misspelt_optional_field_gets_did_you_mean(tmp_path: Path) -> None:
    text = CONFIG.replace("turns: 4", "turns: 4\nconcurency: 4").replace(
        "    model: org/base", "    model: org/base\n    sampling: {temprature: 0.2}"
    )
    path = write(tmp_path, text)
    assert sorted(str(e) for e in errors_of(path)) == [
        f"{path}:{line_of(text, 'temprature')}:16: unknown field 'targets.0.sampling.temprature': "
        "did you mean 'temperature'?",
        f"{path}:{line_of(text, 'concurency')}:1: unknown field 'concurency': did you mean 'concurrency'?",
    ]


def test_an_unknown_field_names_the_config_schema_command(tmp_path: Path) -> None:
    (error,) = errors_of(write(tmp_path, CONFIG + "colour: red\n"))
    assert error.message == "unknown field 'colour' (check the spelling; `convsim config schema` lists the fields)"


def test_config_schema_prints_the_run_config_json_schema() -> None:
    result = CliRunner().invoke(app, ["config", "schema"])
    assert result.exit_code == 0, result.output
    properties = json.loads(result.stdout)["properties"]
    assert {"targets", "turns", "sample", "concurrency"} <= set(properties)


def test_bad_value_is_reported_at_its_line(tmp_path: Path) -> None:
    text = CONFIG.replace("conditions: [neutral, false_belief]", "conditions: [neutral, sad]")
    (error,) = errors_of(write(tmp_path, text))
    assert error.line == line_of(text, "conditions:")


def test_missing_scenario_file_names_the_config_and_the_entry_line(tmp_path: Path) -> None:
    text = CONFIG.replace("  - antibiotics-flu", "  - antibiotics-flu\n  - mine/missing.yaml")
    path = write(tmp_path, text)
    (error,) = errors_of(path)
    assert error.path == str(path)
    assert error.line == line_of(text, "mine/missing.yaml")
    assert "mine/missing.yaml" in error.message
    assert "does not exist" in error.message


def test_missing_persona_and_scenario_files_are_reported_together(tmp_path: Path) -> None:
    text = CONFIG.replace("  - antibiotics-flu", "  - gone.yaml").replace("  - grieving-widower", "  - gone.yml")
    errors = errors_of(write(tmp_path, text))
    assert [e.line for e in errors] == [line_of(text, "gone.yaml"), line_of(text, "gone.yml")]


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "study"
    write(folder / "scenarios", "id: x\n", name="x.yaml")
    write(folder / "personas", "id: p\n", name="p.yaml")
    text = (
        CONFIG.replace("  - antibiotics-flu", "  - antibiotics-flu\n  - scenarios/x.yaml").replace(
            "  - grieving-widower", "  - personas/p.yaml"
        )
        + "out: results\n"
    )
    path = write(folder, text)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(path)
    assert config.scenarios == ["antibiotics-flu", str(folder / "scenarios" / "x.yaml")]
    assert config.personas == [str(folder / "personas" / "p.yaml")]
    assert config.out == folder / "results"


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    scenario = write(tmp_path / "elsewhere", "id: x\n", name="x.yaml")
    config = load_config(write(tmp_path / "study", CONFIG.replace("  - antibiotics-flu", f"  - {scenario}")))
    assert config.scenarios == [str(scenario)]


def test_a_plain_folder_name_resolves_against_the_config_folder(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    folder = tmp_path / "study"
    (folder / "mine").mkdir(parents=True)
    path = write(folder, CONFIG.replace("  - antibiotics-flu", "  - mine"))
    monkeypatch.chdir(tmp_path)
    assert load_config(path).scenarios == [str(folder / "mine")]


# --- fingerprint ---------------------------------------------------------------------------------


def fingerprint(tmp_path: Path, text: str) -> str:
    return load_config(write(tmp_path, text)).fingerprint()


@pytest.mark.parametrize(
    "extra",
    ["concurrency: 7\n", "rps: 2.5\n", "out: somewhere/else\n"],
    ids=["concurrency", "rps", "out"],
)
def test_fingerprint_ignores_how_and_where_a_run_goes(tmp_path: Path, extra: str) -> None:
    assert fingerprint(tmp_path, CONFIG + extra) == fingerprint(tmp_path, CONFIG)


def test_fingerprint_ignores_target_urls_and_timeouts(tmp_path: Path) -> None:
    moved = CONFIG.replace("http://localhost:8000/v1", "http://gpu-9:9000/v1").replace(
        "    model: org/base", "    model: org/base\n    timeout: 30\n    max_retries: 1\n    api_key_env: KEY"
    )
    assert fingerprint(tmp_path, moved) == fingerprint(tmp_path, CONFIG)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("turns: 4", "turns: 5"),
        ("seeds: [0, 1]", "seeds: [0, 2]"),
        ("conditions: [neutral, false_belief]", "conditions: [neutral]"),
        ("system_prompt: Be warm and caring.", "system_prompt: Be brief."),
        ("  - grieving-widower", "  - neutral-curious"),
    ],
    ids=["turns", "seeds", "conditions", "system_prompt", "personas"],
)
def test_fingerprint_changes_with_what_defines_the_plan(tmp_path: Path, old: str, new: str) -> None:
    assert fingerprint(tmp_path, CONFIG.replace(old, new)) != fingerprint(tmp_path, CONFIG)


def test_default_output_folder_uses_the_fingerprint(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CONFIG))
    assert config.output_dir() == Path("runs") / f"run-{config.fingerprint()}"


# --- targets ---------------------------------------------------------------------------------------


def test_duplicate_target_names_are_rejected(tmp_path: Path) -> None:
    text = CONFIG.replace("  - name: warm", "  - name: base")
    (error,) = errors_of(write(tmp_path, text))
    assert "given twice: base" in error.message
    assert error.line in (line_of(text, "targets:"), line_of(text, "targets:") + 1)


def test_target_identity_leaves_out_where_it_is_served() -> None:
    target = TargetConfig(name="t", base_url="http://a/v1", model="m", api_key_env="SECRET_ENV")
    assert set(target.identity()) == {"name", "model", "system_prompt", "sampling"}


def test_missing_config_file(tmp_path: Path) -> None:
    (error,) = errors_of(tmp_path / "absent.yaml")
    assert "no such config file" in error.message
