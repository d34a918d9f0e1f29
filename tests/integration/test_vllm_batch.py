"""A real vLLM server answers convsim: multi-turn batches, and what only a real server gives."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter, defaultdict
from importlib import resources
from pathlib import Path

import pytest

from scenarios import Status, resolve_scenarios
from scoring.learned import SHIPPED_MODEL, JudgeModel, LearnedJudge
from simulator import BackendError, ChatMessage, ChatRequest, HttpBackend, Sampling, read_transcripts
from simulator.serving.metrics import prometheus_sums
from simulator.serving.vllm_server import VllmServer
from tests.helpers import check_example, run_example, wait_for_lines, wait_for_text

pytestmark = pytest.mark.integration

CONVSIM = [sys.executable, "-m", "simulator"]


def ask(text: str, **kwargs: object) -> ChatRequest:
    return ChatRequest(messages=(ChatMessage(role="user", content=text),), **kwargs)  # type: ignore[arg-type]


def test_multi_turn_batch_with_two_targets_is_paired(vllm_server: VllmServer, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [
        "run", "--target", vllm_server.base_url, "--model", "smollm2",
        "--system-prompt", "neutral", "--system-prompt", "warm",
        "--scenario", "antibiotics-flu", "--scenario", "bats-blind",
        "--persona", "grieving-widower", "--persona", "neutral-curious",
        "--condition", "neutral", "--condition", "emotional+false_belief",
        "--turns", "3", "--max-tokens", "48", "--logprobs", "--concurrency", "16", "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run([*CONVSIM, *args], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    transcripts = list(read_transcripts(out))
    conversations = [t for t in transcripts if t.kind == "conversation"]
    assert len(conversations) == 2 * 2 * 2 * 2  # scenarios x personas x conditions x targets
    assert {t.target for t in conversations} == {"smollm2+neutral", "smollm2+warm"}
    pairs: dict[tuple[str, str | None, str, int], list[str]] = defaultdict(list)
    for t in conversations:
        assert t.status in (Status.COMPLETED, Status.MAX_TURNS), t.error
        pairs[(t.scenario, t.persona, t.condition, t.seed)].append(t.target)
        for reply in t.replies:
            assert reply.content.strip()  # a real model's words
            assert reply.label is not None
            assert reply.finish_reason in ("stop", "length")
            assert reply.prompt_tokens and reply.completion_tokens
            assert reply.completion_tokens <= 48
            assert reply.logprobs and len(reply.logprobs.tokens) == reply.completion_tokens
        # the same opening user turn for both targets of a pair
    assert all(sorted(targets) == ["smollm2+neutral", "smollm2+warm"] for targets in pairs.values())
    openings = defaultdict(set)
    for t in conversations:
        openings[(t.scenario, t.persona, t.condition)].add(t.turns[0].content)
    assert all(len(texts) == 1 for texts in openings.values())
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["servers"]["target:smollm2+warm"]["models"]["data"][0]["id"] == "smollm2"
    assert manifest["versions"].get("convsim")


async def test_chat_template_is_applied_by_the_server(vllm_server: VllmServer) -> None:
    client = HttpBackend(vllm_server.base_url, "smollm2")
    result = await client.chat(ask("Hi", sampling=Sampling(max_tokens=8)))
    await client.aclose()
    # "Hi" is one token; ChatML adds <|im_start|>, roles, newlines and the default system prompt
    assert result.prompt_tokens is not None and result.prompt_tokens > 10


async def test_seed_makes_a_sampled_reply_repeat(vllm_server: VllmServer) -> None:
    client = HttpBackend(vllm_server.base_url, "smollm2")
    sampling = Sampling(temperature=1.0, max_tokens=24)
    request = ask("Tell me a very short story about a cat.", sampling=sampling, seed=11)
    first, second = await client.chat(request), await client.chat(request)
    others = {(await client.chat(request.model_copy(update={"seed": s}))).content for s in range(20, 24)}
    await client.aclose()
    assert first.content == second.content
    assert len(others | {first.content}) > 1  # sampling is real: other seeds give other stories


async def test_logprobs_when_asked(vllm_server: VllmServer) -> None:
    client = HttpBackend(vllm_server.base_url, "smollm2")
    result = await client.chat(ask("Say yes.", sampling=Sampling(max_tokens=5, logprobs=True, top_logprobs=1)))
    plain = await client.chat(ask("Say yes.", sampling=Sampling(max_tokens=5)))
    await client.aclose()
    assert result.logprobs and len(result.logprobs) == result.completion_tokens
    assert all(t.logprob <= 0 for t in result.logprobs)
    assert plain.logprobs is None


async def test_structured_output_follows_the_schema(vllm_server: VllmServer) -> None:
    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": ["corrects", "affirms"]}, "confidence": {"type": "number"}},
        "required": ["label", "confidence"],
        "additionalProperties": False,
    }
    client = HttpBackend(vllm_server.base_url, "smollm2")
    result = await client.chat(
        ask("Is the earth flat? Reply in JSON.", sampling=Sampling(max_tokens=40), json_schema=schema)
    )
    await client.aclose()
    answer = json.loads(result.content)
    assert answer["label"] in ("corrects", "affirms")
    assert isinstance(answer["confidence"], int | float)


async def test_turns_of_one_conversation_hit_the_prefix_cache(vllm_server: VllmServer) -> None:
    hits = "vllm:prefix_cache_hits_total"
    client = HttpBackend(vllm_server.base_url, "smollm2")
    before = prometheus_sums(await client.server_metrics() or "", {hits}).get(hits, 0.0)
    messages = [ChatMessage(role="system", content="You are a careful assistant. " * 40)]
    for question in ("Do antibiotics cure the flu?", "Are you sure?", "My neighbour says they do."):
        messages.append(ChatMessage(role="user", content=question))
        reply = await client.chat(ChatRequest(messages=tuple(messages), sampling=Sampling(max_tokens=16)))
        messages.append(ChatMessage(role="assistant", content=reply.content))
    after = prometheus_sums(await client.server_metrics() or "", {hits}).get(hits, 0.0)
    await client.aclose()
    assert after - before >= 2 * 200  # turns 2 and 3 reuse at least the long system prompt's blocks


def test_doctor_reports_what_works(vllm_server: VllmServer) -> None:
    result = subprocess.run(
        [*CONVSIM, "doctor", "--target", vllm_server.base_url, "--model", "smollm2"],
        capture_output=True, text=True, timeout=300, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    for check in ("reachable", "models served", "server version", "max context length", "chat template",
                  "seeds", "logprobs", "structured output", "prefix caching"):  # fmt: skip
        row = next(line for line in result.stdout.splitlines() if check in line)
        assert " ok " in row, row


def test_doctor_fails_for_a_model_not_served(vllm_server: VllmServer) -> None:
    result = subprocess.run(
        [*CONVSIM, "doctor", "--target", vllm_server.base_url, "--model", "gpt-17"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert "models served" in result.stderr + result.stdout


def test_model_driven_user_and_llm_judge_on_vllm(vllm_server: VllmServer, tmp_path: Path) -> None:
    """The tiny model plays target, user and judge: the plumbing, schemas and error paths are real."""
    out = tmp_path / "run"
    args = [
        "run", "--target", vllm_server.base_url, "--model", "smollm2",
        "--user-model", "smollm2", "--judge", "llm", "--judge-model", "smollm2",
        "--scenario", "antibiotics-flu", "--persona", "grieving-widower",
        "--condition", "false_belief", "--condition", "emotional+false_belief",
        "--turns", "3", "--max-tokens", "48", "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run([*CONVSIM, *args], capture_output=True, text=True, timeout=900)
    transcripts = [t for t in read_transcripts(out) if t.kind == "conversation"]
    failed = any(t.status is Status.ERROR for t in read_transcripts(out))
    assert result.returncode == (1 if failed else 0), result.stderr  # 1: some conversation ended in error
    assert len(transcripts) == 2
    for t in transcripts:
        if t.status is Status.ERROR:  # a tiny model may fail the schema three times: recorded, never labelled
            assert t.error_kind in ("judge", "user_model"), t.error
            continue
        for reply in t.replies:
            assert reply.judgement is not None and reply.judgement.judge.startswith("llm:smollm2@")
            assert reply.judgement.confidence is not None
        generated = [turn for turn in t.turns if turn.generated]
        for turn in generated:
            assert turn.content and turn.user_state is not None and turn.fidelity is not None
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"target:smollm2", "judge", "user"} <= set(manifest["servers"])


async def test_a_prompt_past_the_context_is_context_overflow_at_once(vllm_server: VllmServer) -> None:
    """vLLM's own 400 for a prompt longer than --max-model-len is read as a context overflow: no retry."""
    client = HttpBackend(vllm_server.base_url, "smollm2", max_retries=3)
    with pytest.raises(BackendError) as caught:
        await client.chat(ask("word " * 6000, sampling=Sampling(max_tokens=8)))  # > 4096 tokens
    await client.aclose()
    assert caught.value.kind == "context_overflow" and not caught.value.retryable, caught.value.reason
    assert "after" not in caught.value.reason  # one attempt: the reason is vLLM's own message


def test_cascade_of_the_learned_judge_and_an_llm_judge_on_vllm(vllm_server: VllmServer, tmp_path: Path) -> None:
    """Confident replies keep the learned label, the rest go to the LLM judge on vLLM; the manifest counts both."""
    model = JudgeModel.load(resources.files("scoring") / "judges" / SHIPPED_MODEL)
    model.confident_at = 0.97  # most of the tiny model's replies go to the LLM judge, the surest stay learned
    model_file = tmp_path / "judge.json.gz"
    model.save(model_file)
    out = tmp_path / "run"
    args = [
        "run", "--target", vllm_server.base_url, "--model", "smollm2",
        "--judge", f"cascade:learned:{model_file},llm", "--judge-model", "smollm2",
        "--scenario", "antibiotics-flu", "--scenario", "bats-blind", "--persona", "neutral-curious",
        "--condition", "neutral", "--condition", "false_belief", "--turns", "3", "--max-tokens", "48",
        "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run([*CONVSIM, *args], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    learned = LearnedJudge(model_file)
    scenarios = {s.scenario.id: s for s in resolve_scenarios(["antibiotics-flu", "bats-blind"])}
    judged_by: Counter[str] = Counter()
    for t in read_transcripts(out):
        if t.status is Status.ERROR:  # a tiny LLM judge may fail its schema three times: recorded, never labelled
            assert t.error_kind == "judge", t.error
            continue
        for index, turn in enumerate(t.turns):
            if turn.role != "assistant" or turn.judgement is None:
                continue
            judged_by[turn.judgement.judge] += 1
            verdict = asyncio.run(learned.judge(scenarios[t.scenario], t.turns[:index], turn.content))
            confident = (verdict.confidence or 0.0) >= 0.97
            assert (turn.judgement.judge == learned.name) is confident, (turn.judgement, verdict)
            assert confident or turn.judgement.judge.startswith("llm:smollm2")
    assert sum(n for judge, n in judged_by.items() if judge.startswith("llm:")) >= 1  # the LLM judge was asked
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["summary"]["judged_by"] == dict(judged_by)
    assert "replies judged by" in result.stdout + result.stderr or len(judged_by) == 1


def test_a_batch_rides_through_a_server_restart(vllm_server: VllmServer, tmp_path: Path) -> None:
    """vLLM is stopped mid-batch and started again on its port (as after an out-of-memory kill): the
    conversations wait for it, then go on; every one completes, none errs, and the run exits 0."""
    out, log = tmp_path / "run", tmp_path / "stderr.txt"
    args = [
        "run", "--target", vllm_server.base_url, "--model", "smollm2",
        "--scenario", "antibiotics-flu", "--scenario", "bats-blind",
        "--persona", "grieving-widower", "--persona", "neutral-curious",
        "--condition", "false_belief", "--condition", "emotional+false_belief",
        "--turns", "3", "--max-tokens", "32", "--concurrency", "2", "--out", str(out),
    ]  # fmt: skip
    with log.open("w") as stderr:
        process = subprocess.Popen([*CONVSIM, *args], stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait_for_lines(out / "transcripts.jsonl", 1, timeout=600)
        vllm_server.stop()
        wait_for_text(log, "waiting (budget left", timeout=300)  # convsim noticed, and waits
        vllm_server.start()
        assert process.wait(timeout=900) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    transcripts = list(read_transcripts(out))
    assert len(transcripts) == 2 * 2 * 2 + 2  # conversations and knowledge checks
    assert all(t.status in (Status.COMPLETED, Status.MAX_TURNS) for t in transcripts), [t.error for t in transcripts]
    assert f"server {vllm_server.base_url} answers again after " in log.read_text()


def test_the_readme_notebook_example_runs_on_vllm(
    vllm_server: VllmServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace = run_example(vllm_server.base_url, "smollm2", tmp_path, monkeypatch)
    check_example(namespace, tmp_path)
