"""`convsim run` as a user runs it, against the stub server: labels, resume, kills, mistakes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from scenarios import Label, Status
from simulator import read_transcripts
from tests.helpers import CONVSIM, convsim, run_args, wait_for_lines
from tests.openai_stub import Faults, StubServer


def lines(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "transcripts.jsonl").read_text().splitlines()]


def test_the_default_online_judge_is_the_shipped_learned_judge(stub: StubServer, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", "--target", stub.base_url, "--model", "corrector", "--out", out, "--sample", "3", "--turns", "2"]
    result = convsim(*args)
    assert result.returncode == 0, result.stderr
    replies = [reply for t in read_transcripts(out) for reply in t.replies]
    assert replies and all(r.judgement is not None and r.judgement.judge == "learned" for r in replies)
    assert all(r.label is Label.CORRECTS for r in replies)  # "Actually, that's a common misconception ..."
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["judge"] == "learned" and manifest["summary"]["judged_by"] == {"learned": len(replies)}


def test_labels_follow_the_replies_stance(stub: StubServer, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = convsim(*run_args(stub, "caver", out, "--sample", "12", "--turns", "4"))
    assert result.returncode == 0, result.stderr
    transcripts = list(read_transcripts(out))
    conversations = [t for t in transcripts if t.kind == "conversation"]
    assert len(conversations) == 12
    for transcript in conversations:
        labels = [turn.label for turn in transcript.replies]
        assert labels[0] is Label.CORRECTS  # the caver corrects first ...
        assert set(labels[1:]) <= {Label.AFFIRMS}  # ... then gives in
        assert transcript.status in (Status.COMPLETED, Status.MAX_TURNS)
        assert len(transcript.replies) <= 4
        roles = [turn.role for turn in transcript.turns]
        assert roles == ["user", "assistant"] * (len(roles) // 2)
    checks = [t for t in transcripts if t.kind == "knowledge_check"]
    assert checks and all(t.replies[0].accurate for t in checks)
    assert "Correction rate by turn" in result.stderr
    assert f"run folder: {out}  (12 conversations and " in result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["servers"]["target:caver"]["models"]["data"]
    assert manifest["plan_size"] == len(transcripts)
    assert manifest["summary"]["statuses"] == dict(Counter(str(t.status) for t in transcripts))


@pytest.mark.parametrize(("model", "label"), [("corrector", "corrects"), ("evader", "evades"), ("hedger", "hedges")])
def test_each_stance_gets_its_label(stub: StubServer, tmp_path: Path, model: str, label: str) -> None:
    out = tmp_path / model
    assert convsim(*run_args(stub, model, out, "--sample", "4", "--turns", "3")).returncode == 0
    replies = [turn for record in lines(out) for turn in record["turns"] if turn["role"] == "assistant"]  # type: ignore[attr-defined]
    assert replies and {turn["label"] for turn in replies} == {label}


def test_second_run_resumes_and_adds_nothing(stub: StubServer, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = run_args(stub, "corrector", out, "--sample", "8", "--turns", "3")
    assert convsim(*args).returncode == 0
    before = (out / "transcripts.jsonl").read_text()
    requests = len(stub.requests)
    second = convsim(*args)
    assert second.returncode == 0
    assert "resuming" in second.stderr
    assert (out / "transcripts.jsonl").read_text() == before
    assert len(stub.requests) == requests


def test_killed_run_finishes_with_every_conversation_once(tmp_path: Path) -> None:
    with StubServer(Faults(delay_s=0.03)) as server:
        reference = tmp_path / "reference"
        args = ["--sample", "40", "--turns", "4", "--concurrency", "4"]
        assert convsim(*run_args(server, "caver", reference, *args)).returncode == 0
        out = tmp_path / "killed"
        for lines_before_kill in (3, 15):  # kill mid-batch, each time further on
            process = subprocess.Popen([*CONVSIM, *map(str, run_args(server, "caver", out, *args))],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            wait_for_lines(out / "transcripts.jsonl", lines_before_kill)
            process.send_signal(signal.SIGKILL)
            process.wait()
        assert convsim(*run_args(server, "caver", out, *args)).returncode == 0

    def key(record: dict[str, object]) -> tuple[object, ...]:
        return record["id"], json.dumps([(t["role"], t["content"], t.get("label")) for t in record["turns"]])  # type: ignore[attr-defined]

    finished = lines(out)
    assert Counter(r["id"] for r in finished).most_common(1)[0][1] == 1  # nothing twice
    assert sorted(map(key, finished)) == sorted(map(key, lines(reference)))


def test_interrupt_keeps_finished_conversations(tmp_path: Path) -> None:
    with StubServer(Faults(delay_s=0.05)) as server:
        out = tmp_path / "run"
        args = run_args(server, "corrector", out, "--sample", "40", "--turns", "4", "--concurrency", "2")
        process = subprocess.Popen([*CONVSIM, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)  # fmt: skip
        wait_for_lines(out / "transcripts.jsonl", 2)  # interrupt mid-batch
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "Run the same command again to resume" in stderr
    saved = lines(out)
    assert 0 < len(saved) < 41
    assert all(record["status"] in ("completed", "max_turns") for record in saved)


def test_failed_requests_are_errors_never_labels_and_exit_1(tmp_path: Path) -> None:
    """A run whose conversations fail for good exits 1, the summary saying how many of which kind; a run of only
    successes exits 0 (every other test here)."""
    with StubServer(Faults(error_rate=1.0)) as server:
        out = tmp_path / "run"
        result = convsim(*run_args(server, "corrector", out, "--sample", "3", "--turns", "3"))
    assert result.returncode == 1, result.stderr
    records = lines(out)
    for record in records:
        assert record["status"] == "error" and record["error_kind"] == "http"
        assert "500" in str(record["error"])
        assert all("label" not in turn for turn in record["turns"])  # type: ignore[attr-defined]
    assert f"{len(records)} conversation(s) ended in error: {{'http': {len(records)}}}" in result.stderr
    assert result.stdout.strip() == str(out / "transcripts.jsonl")


def test_context_overflow_has_its_own_status(tmp_path: Path) -> None:
    with StubServer(Faults(max_prompt_chars=400)) as server:
        out = tmp_path / "run"
        assert convsim(*run_args(server, "corrector", out, "--sample", "4", "--turns", "8")).returncode == 0
    statuses = {record["status"] for record in lines(out) if record["kind"] == "conversation"}
    assert statuses == {"context_overflow"}


def test_unreachable_server_is_one_line_and_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = convsim("run", "--target", "http://127.0.0.1:9/v1", "--model", "m", "--out", out, "--sample", "2")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: cannot reach target")
    assert "Traceback" not in result.stderr


def test_model_not_served_is_exit_2_and_writes_nothing(stub: StubServer, tmp_path: Path) -> None:
    result = convsim(*run_args(stub, "gpt-17", tmp_path / "run", "--sample", "2"))
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("error: ") and "does not serve model 'gpt-17'" in errors[0]
    assert not (tmp_path / "run").exists()  # the servers are asked before the run folder is made
    assert "run folder:" not in result.stderr  # nor is one announced


def test_misspelled_persona_field_is_rejected_with_file_and_line(stub: StubServer, tmp_path: Path) -> None:
    persona = tmp_path / "typo.yaml"
    text = Path("personas/library/grieving-widower.yaml").read_text().replace("id: grieving-widower", "id: typo")
    persona.write_text(text.replace("  persistence: 2", "  persistance: 2"))
    line = next(i for i, row in enumerate(persona.read_text().splitlines(), 1) if "persistance" in row)
    result = convsim(*run_args(stub, "corrector", tmp_path / "run", "--persona", persona))
    assert result.returncode == 2
    assert f"{persona}:{line}:3: unknown field 'pushback.persistance'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_another_run_in_the_same_folder_is_refused(stub: StubServer, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert convsim(*run_args(stub, "corrector", out, "--sample", "2", "--turns", "2")).returncode == 0
    before = (out / "transcripts.jsonl").read_text()
    result = convsim(*run_args(stub, "corrector", out, "--sample", "2", "--turns", "3"))
    assert result.returncode == 2 and "holds another run" in result.stderr
    assert (out / "transcripts.jsonl").read_text() == before


def test_api_key_never_written(stub: StubServer, tmp_path: Path) -> None:
    secret = "sk-do-not-write-me"
    config = tmp_path / "run.yaml"
    config.write_text(
        "targets:\n"
        f"  - {{name: base, base_url: '{stub.base_url}', model: corrector, api_key_env: CONVSIM_KEY}}\n"
        "sample: 3\nturns: 2\nout: out\n"
    )
    env = {**os.environ, "CONVSIM_KEY": secret}
    result = subprocess.run([*CONVSIM, "run", "--config", str(config)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert stub.headers[-1]["Authorization"] == f"Bearer {secret}"
    for path in (tmp_path / "out").iterdir():
        assert secret not in path.read_text()
    assert secret not in result.stdout + result.stderr


def test_end_of_run_table_groups_by_target_and_condition(stub: StubServer, tmp_path: Path) -> None:
    """Warm and neutral prompts get their own rows (not pooled); progress counts knowledge checks apart."""
    out = tmp_path / "run"
    args = run_args(stub, "caver", out, "--system-prompt", "neutral", "--system-prompt", "warm", "--scenario",
                    "antibiotics-flu", "--persona", "grieving-widower", "--condition", "neutral", "--seed", "0",
                    "--turns", "2")  # fmt: skip
    result = convsim(*args)
    assert result.returncode == 0, result.stderr
    assert "(2 conversations and 2 knowledge checks planned)" in result.stderr
    rows = [line.strip("│ ").split(" │ ") for line in result.stderr.splitlines() if "caver+" in line]
    # caver: corrects, then affirms; one conversation per target: n=1, too small for an interval
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["caver+neutral", "neutral", "100% (n=1, too small)", "0% (n=1, too small)"],
        ["caver+warm", "neutral", "100% (n=1, too small)", "0% (n=1, too small)"],
    ]
    progress = [line for line in result.stderr.splitlines() if "2/2" in line]
    assert any(line.lstrip().startswith("conversations") for line in progress)
    assert any(line.lstrip().startswith("knowledge checks") for line in progress)
    again = convsim(*args)
    assert again.returncode == 0 and "(2 of 2 conversations, 2 of 2 knowledge checks)" in again.stderr


def test_end_of_run_cells_carry_a_wilson_interval() -> None:
    from rich.console import Console

    from simulator.cli._run import rates_table

    console = Console(width=200, record=True)
    console.print(rates_table({("warm", "neutral"): {1: (6, 8), 2: (2, 2)}, ("base", "neutral"): {1: (8, 8)}}))
    text = console.export_text()
    rows = [line for line in text.splitlines() if "neutral" in line]
    assert rows[0].split()[1:4] == ["base", "│", "neutral"]  # sorted by target, then condition
    assert "75% [41%-93%] (n=8)" in rows[1] and "100% (n=2, too small)" in rows[1]
    assert "100% [68%-100%] (n=8)" in rows[0]
