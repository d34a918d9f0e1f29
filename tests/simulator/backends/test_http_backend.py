"""The HTTP client against the stub server: pass-through, retries, timeouts, errors, secrets."""

from __future__ import annotations

import socket

import pytest

from simulator import BackendError, ChatMessage, ChatRequest, HttpBackend, Sampling
from tests.openai_stub import Faults, StubServer

HELLO = ChatRequest(messages=(ChatMessage(role="user", content="Is the earth flat?"),))


def backend(url: str, model: str = "corrector", **kwargs: object) -> HttpBackend:
    options: dict[str, object] = {"backoff": 0.01, "max_backoff": 0.05, **kwargs}
    return HttpBackend(url, model, **options)  # type: ignore[arg-type]


async def test_reply_usage_and_finish_reason(stub: StubServer) -> None:
    client = backend(stub.base_url)
    result = await client.chat(HELLO)
    await client.aclose()
    assert "misconception" in result.content
    assert result.finish_reason == "stop"
    assert result.completion_tokens == len(result.content.split())
    assert result.attempts == 1


async def test_sampling_seed_and_logprobs_are_passed_through(stub: StubServer) -> None:
    client = backend(stub.base_url)
    sampling = Sampling(temperature=0.7, top_p=0.9, max_tokens=33, logprobs=True, top_logprobs=2)
    result = await client.chat(HELLO.model_copy(update={"sampling": sampling, "seed": 1234}))
    await client.aclose()
    sent = stub.requests[-1]
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"], sent["seed"]) == (0.7, 0.9, 33, 1234)
    assert sent["logprobs"] is True and sent["top_logprobs"] == 2
    assert result.logprobs is not None and [t.logprob for t in result.logprobs][:2] == [-0.5, -0.5]


async def test_json_schema_becomes_response_format(stub: StubServer) -> None:
    client = backend(stub.base_url)
    schema = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}
    await client.chat(HELLO.model_copy(update={"json_schema": schema}))
    await client.aclose()
    assert stub.requests[-1]["response_format"]["json_schema"]["schema"] == schema


@pytest.mark.parametrize("base", ["", "/", "/v1", "/v1/"])
async def test_base_url_with_or_without_v1(stub: StubServer, base: str) -> None:
    root = stub.base_url.removesuffix("/v1")
    client = backend(root + base)
    assert (await client.chat(HELLO)).content
    await client.aclose()


async def test_500s_are_retried_until_success() -> None:
    with StubServer(Faults(error_rate=0.5, seed=3)) as server:
        client = backend(server.base_url, max_retries=10)
        results = [await client.chat(HELLO) for _ in range(20)]
        await client.aclose()
    assert all("misconception" in r.content for r in results)
    assert sum(r.attempts for r in results) == len(server.requests) > 20


async def test_429_honours_retry_after() -> None:
    with StubServer(Faults(rate_limit_rate=1.0, retry_after="0")) as server:
        client = backend(server.base_url, max_retries=2)
        with pytest.raises(BackendError) as caught:
            await client.chat(HELLO)
        await client.aclose()
    assert caught.value.kind == "http"
    assert "429" in caught.value.reason and "after 3 attempts" in caught.value.reason
    assert len(server.requests) == 3


async def test_malformed_body_is_an_error_not_a_reply() -> None:
    with StubServer(Faults(malformed_rate=1.0)) as server:
        client = backend(server.base_url, max_retries=1)
        with pytest.raises(BackendError) as caught:
            await client.chat(HELLO)
        await client.aclose()
    assert caught.value.kind == "malformed"


async def test_stall_past_the_timeout() -> None:
    with StubServer(Faults(delay_s=1.0)) as server:
        client = backend(server.base_url, timeout=0.2, max_retries=1)
        with pytest.raises(BackendError) as caught:
            await client.chat(HELLO)
        await client.aclose()
    assert caught.value.kind == "timeout"
    assert len(server.requests) == 2


async def test_closed_connections_are_retried_then_reported() -> None:
    with StubServer(Faults(close_rate=1.0)) as server:
        client = backend(server.base_url, max_retries=2)
        with pytest.raises(BackendError) as caught:
            await client.chat(HELLO)
        await client.aclose()
    assert caught.value.kind == "connection"
    assert len(server.requests) == 3


async def test_context_overflow_is_not_retried() -> None:
    with StubServer(Faults(max_prompt_chars=5)) as server:
        client = backend(server.base_url, max_retries=5)
        with pytest.raises(BackendError) as caught:
            await client.chat(HELLO)
        await client.aclose()
    assert caught.value.kind == "context_overflow"
    assert len(server.requests) == 1


async def test_unknown_model_404_is_not_retried(stub: StubServer) -> None:
    client = backend(stub.base_url, model="no-such-model")
    with pytest.raises(BackendError) as caught:
        await client.chat(HELLO)
    await client.aclose()
    assert "404" in caught.value.reason and len(stub.requests) == 1


async def test_unreachable_server() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = backend(f"http://127.0.0.1:{port}/v1", max_retries=1)
    with pytest.raises(BackendError) as caught:
        await client.chat(HELLO)
    await client.aclose()
    assert caught.value.kind == "connection"


async def test_api_key_is_sent_but_never_in_errors(stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-test-5ecret-value"
    monkeypatch.setenv("CONVSIM_TEST_KEY", secret)
    client = backend(stub.base_url, model="no-such-model", api_key_env="CONVSIM_TEST_KEY")
    with pytest.raises(BackendError) as caught:
        await client.chat(HELLO)
    await client.aclose()
    assert stub.headers[-1]["Authorization"] == f"Bearer {secret}"
    assert secret not in str(caught.value) and secret not in client.name


async def test_concurrency_limit_bounds_requests_in_flight() -> None:
    import asyncio

    with StubServer(Faults(delay_s=0.2)) as server:
        client = backend(server.base_url, concurrency=3)
        await asyncio.gather(*(client.chat(HELLO) for _ in range(12)))
        await client.aclose()
    assert server.peak_in_flight == 3


async def test_rate_limit_spaces_requests() -> None:
    import time

    with StubServer() as server:
        client = backend(server.base_url, rps=10)
        started = time.perf_counter()
        for _ in range(15):
            await client.chat(HELLO)
        elapsed = time.perf_counter() - started
        await client.aclose()
    assert elapsed >= 0.5  # 15 requests at 10 per second need at least one full extra period


async def test_url_credentials_are_sent_as_basic_auth_unless_a_key_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    with StubServer() as server:
        url = server.base_url.replace("http://", "http://alice:pa%3Ass@")
        plain = backend(url)
        await plain.chat(HELLO)
        await plain.aclose()
        monkeypatch.setenv("CONVSIM_TEST_KEY", "sk-key")
        keyed = backend(url, api_key_env="CONVSIM_TEST_KEY")
        await keyed.chat(HELLO)
        await keyed.aclose()
    basic, bearer = (h["Authorization"] for h in server.headers)
    assert base64.b64decode(basic.removeprefix("Basic ")) == b"alice:pa:ss"
    assert bearer == "Bearer sk-key"


async def test_a_server_behind_a_path_prefix_keeps_it_for_every_path() -> None:
    """``http://host/proxy/v1``: models under the base URL, /version and /metrics under ``/proxy``."""
    from aiohttp import web

    seen: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(text='{"data": [], "version": "x"}' if request.path != "/proxy/metrics" else "up 1")

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    client = backend(f"http://127.0.0.1:{port}/proxy/v1")
    try:
        assert await client.get_json("/models") == {"data": [], "version": "x"}
        assert (await client.get_json("/version"))["version"] == "x"
        assert await client.server_metrics() == "up 1"
    finally:
        await client.aclose()
        await runner.cleanup()
    assert seen == ["/proxy/v1/models", "/proxy/version", "/proxy/metrics"]
