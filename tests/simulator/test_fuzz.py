"""Fuzzing the persona, scenario and run-config loaders: any input is a valid object or one-line errors.

Every error must name the file, a line >= 1 (inside the file) and a column >= 1, fit on one line,
and the CLI (`personas validate`, `scenarios validate`, `run --config`) must exit 2 printing
``path:line:col: message`` lines and never a traceback.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from personas import FileErrors, load_persona
from scenarios import load_scenario
from simulator.cli import _run as run_cli
from simulator.cli import app
from simulator.config import load_config
from tests.helpers import REPO

PERSONA = (REPO / "personas/library/grieving-widower.yaml").read_text(encoding="utf-8")
SCENARIO = (REPO / "scenarios/library/alkaline-diet-cancer.yaml").read_text(encoding="utf-8")  # its own flow
CONFIG = """\
# a run config
scenarios: [5g-coronavirus, alkaline-diet-cancer.yaml]
personas: [grieving-widower.yaml, health-anxious-parent]
conditions: [neutral, false_belief]
targets:
  - name: base
    base_url: http://127.0.0.1:9/v1
    model: corrector
    timeout: 5
    max_retries: 1
    system_prompt: warm
    sampling: {temperature: 0.0, max_tokens: 64}
judge: rules
judge_model: {model: judge, base_url: http://127.0.0.1:9/v1}
turns: 3
seeds: [0, 1]
sample: 2
shard: 1/2
concurrency: 4
out: out
"""

SETTINGS = settings(
    max_examples=int(os.environ.get("CONVSIM_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
runner = CliRunner()


# ---------------------------------------------------------------- mutations


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value in nested dicts and lists (the root included)."""
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _paths(value, (*prefix, index))


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


JUNK_TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    JUNK_TEXT,
    st.sampled_from(["", " ", "{", "{belief", "{nope}", "{0}", "yes", "no", "1/0", "0/0", "..", "../x", "~", "null"]),
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(JUNK_TEXT, inner, max_size=3), max_leaves=6
)


@st.composite
def structured_mutation(draw: st.DrawFn, text: str) -> str:
    """A valid file with 1-3 structural edits: delete, rename, retype or add a key, or replace a value."""
    data = yaml.safe_load(text)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(data) if p]
        path = draw(st.sampled_from(paths))
        parent = _get(data, path[:-1])
        key = path[-1]
        operation = draw(st.sampled_from(["delete", "rename", "retype", "add", "wrap"]))
        if operation == "delete":
            del parent[key]
        elif operation == "rename" and isinstance(parent, dict):
            parent[draw(JUNK_TEXT | st.sampled_from(["id", "name", "personas", "stages", "next"]))] = parent.pop(key)
        elif operation == "retype":
            parent[key] = draw(VALUES)
        elif operation == "add":
            container = parent[key] if isinstance(parent[key], dict | list) else parent
            if isinstance(container, dict):
                container[draw(JUNK_TEXT)] = draw(VALUES)
            else:
                container.append(draw(VALUES))
        else:  # wrap a value in a list or a mapping
            parent[key] = draw(st.sampled_from([[parent[key]], {"value": parent[key]}]))
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=draw(st.booleans()))


@st.composite
def text_mutation(draw: st.DrawFn, text: str) -> str:
    """A valid file's text cut short, with junk inserted, a line dropped or doubled, or re-indented."""
    for _ in range(draw(st.integers(1, 3))):
        lines = text.splitlines(keepends=True)
        operation = draw(st.sampled_from(["truncate", "insert", "drop", "double", "indent", "yaml"]))
        at = draw(st.integers(0, len(text)))
        row = draw(st.integers(0, max(0, len(lines) - 1)))
        if operation == "truncate":
            text = text[:at]
        elif operation == "insert":
            text = text[:at] + draw(JUNK_TEXT) + text[at:]
        elif operation == "drop" and lines:
            text = "".join(lines[:row] + lines[row + 1 :])
        elif operation == "double" and lines:
            text = "".join(lines[: row + 1] + lines[row:])
        elif operation == "indent" and lines:
            lines[row] = draw(st.sampled_from([" ", "   ", "\t", ""])) + lines[row].lstrip()
            text = "".join(lines)
        else:  # YAML syntax that is valid elsewhere, and tags
            junk = draw(
                st.sampled_from(
                    [
                        "&a x", "*a", "*nope", "!!int zz", "!!float zz", "!!bool maybe", "!!timestamp zz",
                        "!!binary '%%'", "!!set {a}", "!!omap [a: 1]", "!!python/name:os.getcwd", "!custom 1",
                        "? [a, b]\n: c\n", "<<: *a", "[" * 400, "{" * 400, "- " * 300, "9" * 5000, "'unclosed",
                        '"\\x', "|\n  block", ">-\n", "---\n", "...\n", "%YAML 1.1\n", "\x00", "\x85", "\ufeff",
                    ]
                )
            )  # fmt: skip
            text = text[:at] + junk + text[at:]
    return text


ARBITRARY = st.text(max_size=400) | st.binary(max_size=200).map(lambda b: b.decode("latin-1"))


def any_input(seed: str) -> st.SearchStrategy[str]:
    return st.one_of(ARBITRARY, structured_mutation(seed), text_mutation(seed))


# ---------------------------------------------------------------- checks

LINE = re.compile(r"^(?P<path>.+):(?P<line>\d+):(?P<col>\d+): \S")
YAML_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def check_loader(load: Callable[[Path], object], path: Path, text: str) -> list[str]:
    """Load ``path``: either an object, or errors with this file, a line in it and a column, one line each."""
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load(path)
    except FileErrors as exc:
        errors = exc.errors
    else:
        return []
    assert errors
    lines = len(YAML_LINE_BREAK.split(text))  # YAML counts \r, \x85, \u2028 and \u2029 as line breaks too
    for error in errors:
        assert error.path == str(path), error
        assert 1 <= error.line <= lines + 1, (error, lines)
        assert error.column >= 1, error
        assert len(str(error).splitlines()) == 1, repr(str(error))
        assert error.message.strip(), error
    return [str(error) for error in errors]


def check_cli(args: list[str], expected: list[str]) -> None:
    """The CLI prints exactly the loader's errors as ``path:line:col: message`` and exits 2; no traceback."""
    result = runner.invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if not expected:
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 2, result.output
    printed = result.stderr.splitlines()
    assert printed == expected
    assert all(LINE.match(line) for line in printed), printed
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="convsim-fuzz-") as name:
        yield Path(name)


@SETTINGS
@given(text=any_input(PERSONA))
def test_persona_loader_and_cli(folder: Path, text: str) -> None:
    path = folder / "grieving-widower.yaml"
    expected = check_loader(load_persona, path, text)
    check_cli(["personas", "validate", str(path)], expected)


@SETTINGS
@given(text=any_input(SCENARIO))
def test_scenario_loader_and_cli(folder: Path, text: str) -> None:
    path = folder / "alkaline-diet-cancer.yaml"
    expected = check_loader(load_scenario, path, text)
    check_cli(["scenarios", "validate", str(path)], expected)


@SETTINGS
@given(text=any_input(CONFIG))
def test_run_config_loader_and_cli(folder: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    run = folder / "config"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir()
    (run / "alkaline-diet-cancer.yaml").write_text(SCENARIO, encoding="utf-8")
    (run / "grieving-widower.yaml").write_text(PERSONA, encoding="utf-8")
    path = run / "run.yaml"
    expected = check_loader(load_config, path, text)
    if expected:
        # a valid config would start a run: only the ones the loader refuses go through the CLI
        check_cli(["run", "--config", str(path)], expected)
    else:
        # a valid config goes as far as the plan and the output folder, not to the servers
        monkeypatch.chdir(run)
        monkeypatch.setattr(run_cli, "_finish", lambda prepared: None)
        result = runner.invoke(app, ["run", "--config", str(path)])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert result.exit_code in (0, 2), result.output
        if result.exit_code == 2:
            assert all(line.startswith("error: ") or LINE.match(line) for line in result.stderr.splitlines())


@pytest.mark.parametrize(
    "text",
    [
        "[" * 700 + "]" * 700,  # deeper than Python's recursion limit allows PyYAML
        "a:\n" + "".join("  " * depth + "a:\n" for depth in range(1, 1500)),
        "id: &x [*x]\n",  # an alias inside its own anchor
        "id: !!timestamp not-a-date\n",
        "id: !!int zz\n",
        "id: !!float zz\n",
        "id: !!bool maybe\n",
        "id: " + "9" * 5000 + "\n",  # more digits than int() takes
        "id: x\nname: \x00\n",
        "id: x\nname: \ufffe\n",
        '"a\\nb": 1\n',  # a key with a newline in it
        'vars:\n  "a\\nb": 1\n',
        "base: &b {id: x}\nother:\n  <<: *b\n",
    ],
)
def test_hostile_yaml_is_a_file_error(tmp_path: Path, text: str) -> None:
    for load, name in ((load_persona, "x.yaml"), (load_scenario, "x.yaml"), (load_config, "run.yaml")):
        assert check_loader(load, tmp_path / name, text)  # refused, one line each
    expected = check_loader(load_persona, tmp_path / "x.yaml", text)
    check_cli(["personas", "validate", str(tmp_path / "x.yaml")], expected)


def test_unreadable_files_are_file_errors(tmp_path: Path) -> None:
    binary = tmp_path / "grieving-widower.yaml"
    binary.write_bytes(b"id: \xff\xfe\x00 not utf-8\n")
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    for path in (binary, folder, tmp_path / "missing.yaml"):
        for load in (load_persona, load_scenario, load_config):
            with pytest.raises(FileErrors) as caught:
                load(path)
            assert all(e.path == str(path) and e.line >= 1 and e.column >= 1 for e in caught.value.errors)
            assert "\n" not in str(caught.value)
        result = runner.invoke(app, ["personas", "validate", str(path)])
        assert result.exit_code == 2 and result.stderr.startswith(f"{path}:1:1: ")
