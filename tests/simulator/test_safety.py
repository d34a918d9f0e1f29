"""Safety: YAML cannot run code, names cannot leave the run folder, secrets are never written."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from personas import FileErrors, load_persona
from scenarios import load_scenario
from simulator.backends.base import BackendError, redact
from simulator.cli import app
from simulator.config import RunConfig, load_config
from simulator.rescore import slug
from tests import openai_stub
from tests.helpers import CONVSIM, REPO, run_args
from tests.openai_stub import Faults, StubServer

runner = CliRunner()
PERSONA = (REPO / "personas/library/grieving-widower.yaml").read_text(encoding="utf-8")


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()}


# ---------------------------------------------------------------- YAML tags


def payloads(mark: Path) -> list[str]:
    """YAML that would create ``mark`` if a loader built the Python objects it names."""
    command = f"touch {mark}"
    return [
        f"name: !!python/object/apply:os.system [{command!r}]\n",
        f"!!python/object/apply:os.system [{command!r}]\n",
        f"name: !!python/object/apply:subprocess.check_call [[touch, {mark}]]\n",
        f"name: !!python/object/new:subprocess.Popen [[touch, {mark}]]\n",
        f"name: !!python/object/apply:builtins.exec [\"open({str(mark)!r}, 'w')\"]\n",
        f"name: !!python/object/apply:os.system {{args: [{command!r}]}}\n",
        f"? !!python/object/apply:os.system [{command!r}]\n: key\n",
        f"disclosures:\n  - !!python/object/apply:os.system [{command!r}]\n",
        f"a: &run !!python/object/apply:os.system [{command!r}]\nname: *run\n",
        "name: !!python/name:os.system\n",
        "name: !!python/module:os\n",
        "name: !!python/object:os._wrap_close {}\n",
        "name: !!python/tuple [1, 2]\n",
    ]


@pytest.mark.parametrize("index", range(13))
def test_python_yaml_tags_are_refused_and_run_nothing(tmp_path: Path, index: int) -> None:
    mark = tmp_path / "pwned"
    text = payloads(mark)[index]
    for load, name in ((load_persona, "p.yaml"), (load_scenario, "s.yaml"), (load_config, "run.yaml")):
        path = tmp_path / name
        path.write_text(PERSONA + text if load is load_persona and text.startswith("name") else text)
        with pytest.raises(FileErrors) as caught:
            load(path)
        assert any("tag" in error.message for error in caught.value.errors), caught.value
        assert all(error.path == str(path) and error.line >= 1 for error in caught.value.errors)
    for args in (
        ["personas", "validate", str(tmp_path / "p.yaml")],
        ["scenarios", "validate", str(tmp_path / "s.yaml")],
        ["run", "--config", str(tmp_path / "run.yaml")],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "tag" in result.stderr, result.output
    assert not mark.exists()


def test_python_yaml_tag_refused_by_the_command_line(tmp_path: Path) -> None:
    mark = tmp_path / "pwned"
    config = tmp_path / "run.yaml"
    config.write_text(f"out: !!python/object/apply:os.system ['touch {mark}']\n")
    result = subprocess.run([*CONVSIM, "run", "--config", str(config)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"{config}:1:6: unsafe or unknown YAML tag 'tag:yaml.org,2002:python/object/apply:os.system'"
    )
    assert not mark.exists()


# ---------------------------------------------------------------- identifiers and output names

HOSTILE_IDS = ["../x", "..", ".", "a/../../x", "/etc/passwd", "x/y", "..\\x", "x\x00", "~root", "-rf", "X"]


@pytest.mark.parametrize("hostile", HOSTILE_IDS)
def test_hostile_persona_and_scenario_ids_are_refused(tmp_path: Path, hostile: str) -> None:
    persona = tmp_path / "p.yaml"
    persona.write_text(PERSONA.replace("id: grieving-widower", f"id: {json.dumps(hostile)}"))
    scenario = tmp_path / "s.yaml"
    scenario.write_text((REPO / "scenarios/library/5g-coronavirus.yaml").read_text().replace(
        "id: 5g-coronavirus", f"id: {json.dumps(hostile)}"))  # fmt: skip
    for load, path in ((load_persona, persona), (load_scenario, scenario)):
        with pytest.raises(FileErrors) as caught:
            load(path)
        assert any(e.line == 2 or e.line == 1 for e in caught.value.errors)
        assert any("pattern" in e.message or "id" in e.message for e in caught.value.errors)
    result = runner.invoke(app, ["personas", "new", hostile, "--out", str(tmp_path / "new.yaml")])
    assert result.exit_code == 2 and not (tmp_path / "new.yaml").exists()


def test_imported_scenario_ids_cannot_leave_the_output_folder(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text(
        "id,question,truth,false_belief\n"
        "../../escaped,Is the sky green?,No it is blue.,the sky is green\n"
        "ok-one,Is water dry?,No it is wet.,water is dry\n"
    )
    out = tmp_path / "deep" / "er" / "out"
    before = files_under(tmp_path)
    result = runner.invoke(
        app, ["scenarios", "import", "table", str(table), "--out", str(out),
              "--map", "id=id", "--map", "question=question", "--map", "truth=truth",
              "--map", "false_belief=false_belief"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert files_under(tmp_path) == before  # nothing written, in out or outside it
    assert not list(tmp_path.rglob("escaped*"))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_score_file_names_stay_in_the_scores_folder(name: str) -> None:
    scores = Path("/run/scores")
    for file in (f"{slug(name)}.jsonl", f"{slug(name)}.cache.jsonl"):
        path = scores / file
        assert path.parent == scores and "/" not in file and "\x00" not in file
        assert os.path.normpath(path).startswith(str(scores) + "/") and file not in (".", "..")


@given(st.integers(1, 10_000), st.integers(1, 10_000))
def test_shard_folders_stay_in_runs(index: int, count: int) -> None:
    if index > count:
        index, count = count, index
    folder = RunConfig(shard=f"{index}/{count}").output_dir()
    assert folder.parent == Path("runs") and folder.name.endswith(f"-shard-{index}-of-{count}")


@pytest.mark.parametrize("shard", ["1/2/../../x", "../1/2", "1/2 ", "-1/2", "1/0", "0/0"])
def test_hostile_shards_are_refused(tmp_path: Path, shard: str) -> None:
    result = runner.invoke(app, ["run", "--target", "http://127.0.0.1:9/v1", "--model", "m", "--shard", shard,
                                 "--out", str(tmp_path / "run")])  # fmt: skip
    assert result.exit_code == 2 and "shard" in result.stderr
    assert not (tmp_path / "run").exists()


def test_hostile_judge_and_target_names_write_only_inside_the_run(
    stub: StubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Judge names become score files, target names replay folders: neither can leave the run folder,
    even when the server serves models with such names."""
    judges = ["../../../escaped", "/tmp/escaped", "..", "x/../../../../escaped"]
    targets = ["../../escaped", "a/../../../escaped", "..", ".hidden", "x/.."]
    for name in judges:
        monkeypatch.setitem(openai_stub.JUDGES, name, openai_stub.JUDGES["gullible-judge"])
    for name in targets:
        monkeypatch.setitem(openai_stub.SCRIPTS, name, openai_stub.SCRIPTS["corrector"])
    run = tmp_path / "a" / "run"
    result = runner.invoke(app, [*run_args(stub, "corrector", run, "--sample", "2", "--turns", "2")])
    assert result.exit_code == 0, result.output
    outside = files_under(tmp_path) - files_under(run)

    for judge_model in judges:
        result = runner.invoke(app, ["score", str(run), "--judge", "llm", "--judge-model", judge_model,
                                     "--judge-target", stub.base_url])  # fmt: skip
        assert result.exit_code == 0, result.output
    scores = sorted(path.name for path in (run / "scores").iterdir())
    assert len(scores) == 2 * len(judges) and all(name.startswith("llm_") for name in scores), scores
    result = runner.invoke(app, ["score", str(run), "--judge", "llm", "--judge-model", "not-served/../../x",
                                 "--judge-target", stub.base_url])  # fmt: skip
    assert result.exit_code == 2 and result.stderr.startswith("error: "), result.output
    assert "does not serve model 'not-served/../../x' (judge)" in result.stderr  # asked before judging anything
    assert runner.invoke(app, ["score", str(run), "--judge", "learned:../../../escaped"]).exit_code == 2

    codes = []
    for model in targets:
        result = runner.invoke(app, ["replay", str(run), "--target", stub.base_url, "--model", model])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        codes.append(result.exit_code)
    for prompts in (["neutral", ".."], ["neutral", "../../../escaped"]):
        args = ["replay", str(run), "--target", stub.base_url, "--model", "caver"]
        result = runner.invoke(app, [*args, *(f"--system-prompt={p}" for p in prompts)])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        codes.append(result.exit_code)
    assert codes == [2, 0, 2, 2, 0, 0, 0]  # names that are not names are refused; the others replay
    replays = sorted(path.name for path in (run / "replays").iterdir())
    text_prompt = "caver+prompt-" + hashlib.sha256(b"../../../escaped").hexdigest()[:8]  # a text prompt: its hash
    assert replays == ["a_.._.._.._escaped", "caver+neutral+caver+..", f"caver+neutral+{text_prompt}", "x_.."], replays
    assert files_under(tmp_path) - files_under(run) == outside  # nothing written outside the run
    assert not list(tmp_path.rglob("escaped*")) and not Path("/tmp/escaped.jsonl").exists()


# ---------------------------------------------------------------- secrets

SECRET = "sk-live-0123456789abcdef"
PASSWORD = "hunter2-in-the-url"


def assert_no_secret(*texts: str, folder: Path | None = None) -> None:
    for text in texts:
        assert SECRET not in text and PASSWORD not in text
    for path in files_under(folder) if folder else []:
        data = path.read_text(encoding="utf-8", errors="replace")
        assert SECRET not in data and PASSWORD not in data, path


def test_no_key_or_url_password_when_requests_fail(tmp_path: Path) -> None:
    """With a key set and user:password@ in the base URL, failed requests leave neither in the transcripts,
    the manifest, the output or the error messages; the key is still sent."""
    env = {**os.environ, "CONVSIM_TEST_KEY": SECRET}
    with StubServer(Faults(error_rate=1.0)) as server:
        url = server.base_url.replace("http://", f"http://convsim:{PASSWORD}@")
        config = tmp_path / "run.yaml"
        config.write_text(
            f"targets: [{{name: t, base_url: '{url}', model: corrector, api_key_env: CONVSIM_TEST_KEY, "
            "max_retries: 1}]\nsample: 3\nturns: 2\nout: out\n"
        )
        result = subprocess.run([*CONVSIM, "run", "--config", str(config)], capture_output=True, text=True, env=env,
                                timeout=120)  # fmt: skip
        assert result.returncode == 1, result.stderr  # every conversation failed
        assert server.headers and all(h.get("Authorization") for h in server.headers)  # still sent
        server.faults = Faults()
        flags = subprocess.run([*CONVSIM, "run", "--target", url, "--model", "corrector", "--sample", "2",
                                "--turns", "2", "--out", str(tmp_path / "flags")],
                               capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
        assert flags.returncode == 0, flags.stderr
    records = [json.loads(line) for line in (tmp_path / "out" / "transcripts.jsonl").read_text().splitlines()]
    assert records and all(r["status"] == "error" and "HTTP 500" in r["error"] for r in records)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["config"]["targets"][0]["base_url"].startswith("http://***@127.0.0.1:")
    assert "***@" in json.dumps(json.loads((tmp_path / "flags" / "manifest.json").read_text())["command"])
    for folder in (tmp_path / "out", tmp_path / "flags"):
        assert_no_secret(result.stdout, result.stderr, flags.stdout, flags.stderr, folder=folder)


def test_no_key_or_url_password_when_the_server_is_unreachable(tmp_path: Path) -> None:
    env = {**os.environ, "CONVSIM_TEST_KEY": SECRET}
    url = f"http://convsim:{PASSWORD}@127.0.0.1:9/v1"
    config = tmp_path / "run.yaml"
    config.write_text(f"targets: [{{name: t, base_url: '{url}', model: m, api_key_env: CONVSIM_TEST_KEY}}]\nout: out\n")
    results = [
        subprocess.run([*CONVSIM, "run", "--config", str(config)], capture_output=True, text=True, env=env),
        subprocess.run([*CONVSIM, "run", "--target", url, "--model", "m", "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, env=env),
        subprocess.run([*CONVSIM, "doctor", "--target", url, "--api-key-env", "CONVSIM_TEST_KEY"],
                       capture_output=True, text=True, env=env),
    ]  # fmt: skip
    for result in results:
        assert result.returncode == 2, result.stderr
        assert "error: cannot reach" in result.stderr and "***@127.0.0.1:9" in result.stderr
        assert_no_secret(result.stdout, result.stderr)
    for folder in (tmp_path / "out", tmp_path / "o"):
        assert_no_secret(folder=folder)


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("http://u:p@h:1/v1", "http://***@h:1/v1"),
        ("cannot reach https://user:pa%40ss@host/v1 (https://user:p@ss@host: refused)",
         "cannot reach https://***@host/v1 (https://***@host: refused)"),
        ("http://host:8000/v1 and mail a@b", "http://host:8000/v1 and mail a@b"),
        ("2http://k@h/", "2http://***@h/"),
    ],
)  # fmt: skip
def test_redact_removes_url_credentials(text: str, redacted: str) -> None:
    assert redact(text) == redacted
    assert BackendError("connection", text).reason == redacted
    assert redact({"a": [text, (text,)], text: 1}) == {"a": [redacted, (redacted,)], redacted: 1}
