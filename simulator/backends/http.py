"""An async client for OpenAI-compatible chat completions, as vLLM serves them.

It speaks HTTP through aiohttp, which costs about a fifth of httpx's CPU per request (measured
side by side: bench/overhead.py and the README's performance section), so that one client process
keeps many GPU servers busy.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import time
import urllib.request
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from asyncio_throttle.throttler import Throttler
from multidict import CIMultiDictProxy
from yarl import URL

from simulator.backends.base import BackendError, ChatRequest, ChatResult, TokenLogprob, redact
from simulator.backends.outage import Outage, Outages

__all__ = ["HttpBackend", "back_off", "normalise_base_url", "served_models"]

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_OVERFLOW_HINTS = ("maximum context length", "max_model_len", "maximum model length", "context length", "too long")


def normalise_base_url(url: str) -> str:
    """``http://host:8000`` and ``http://host:8000/v1/`` both become ``http://host:8000/v1``."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def served_models(listing: Any) -> list[str]:
    """The model ids in an OpenAI ``/v1/models`` answer."""
    entries = listing.get("data", []) if isinstance(listing, dict) else []
    return [str(m.get("id")) for m in entries if isinstance(m, dict)]


def _retry_after(headers: CIMultiDictProxy[str]) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _error_text(raw: bytes) -> str:
    try:
        body = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")[:300]
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message", error))[:300]
        return str(error)[:300]
    return str(body)[:300]


async def back_off(failure: BackendError, attempt: int, backoff: float, max_backoff: float) -> None:
    """Wait before attempt ``attempt + 1``: what the server asked (``Retry-After``), else exponential
    backoff with full jitter (mean ``backoff``, doubling each attempt); never more than ``max_backoff``."""
    delay = failure.retry_after
    if delay is None:
        delay = random.uniform(0, min(max_backoff, backoff * 2**attempt))
    await asyncio.sleep(min(delay, max_backoff))


class HttpBackend:
    """Chat completions over HTTP with timeouts, retries, a concurrency limit and a rate limit.

    Retries 408/409/425/429/5xx answers, connection errors and timeouts with exponential
    backoff and full jitter, honouring ``Retry-After``. A 400 that says the prompt is too
    long becomes a ``context_overflow`` error at once. After a connection error, the server is
    asked whether it serves the model (``GET /v1/models``); if it does not answer, it is down: an
    :class:`~simulator.backends.outage.Outage` begins, no request is sent, the server is polled
    with backoff, and every waiting request is sent again once it answers (its failed attempt not
    counted), for up to ``outage_wait`` seconds; past that, requests fail until it answers again.
    The API key is read from the environment variable named by ``api_key_env`` and sent only in
    the request header; a ``user:password@`` in the base URL is sent as Basic auth when there is
    no key.

    Args:
        base_url: the server's OpenAI-compatible root, for example ``http://127.0.0.1:8000/v1``.
        model: the served model or LoRA adapter name.
        timeout: seconds allowed for one request.
        max_retries: attempts after the first before giving up.
        backoff: the first retry's mean delay in seconds; it doubles each time up to ``max_backoff``.
        concurrency: requests in flight at once.
        rps: requests started per second at most (``None``: no limit).
        outage_wait: seconds to wait for a server that stopped answering (0, the default: fail at once;
            a run passes its config's ``outage_wait``).
        outages: the run's outages, told when this server's start and end.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        concurrency: int = 64,
        rps: float | None = None,
        outage_wait: float = 0.0,
        outages: Outages | None = None,
    ) -> None:
        self.base_url = normalise_base_url(base_url)
        self.outage_wait = outage_wait
        self.outages = outages or Outages()
        self._outage: Outage | None = None  # while the server is down
        self._poll: asyncio.Task[None] | None = None
        self.model = model
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        url = URL(self.base_url)
        self._headers = {"Content-Type": "application/json"}
        key = os.environ.get(api_key_env) if api_key_env else None
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        elif url.user is not None:
            credentials = f"{url.user}:{url.password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        self._api = url.with_user(None).with_password(None)  # .../v1: chat completions, models
        self._root = self._api.with_path(self._api.path.removesuffix("/v1"))  # /version, /metrics (behind any prefix)
        # HTTP(S)_PROXY and NO_PROXY as curl and the openai client read them; looked up once here, as
        # aiohttp's trust_env would look them up in a thread for every request
        bypass = url.host is None or urllib.request.proxy_bypass(url.host)
        self._proxy = None if bypass else urllib.request.getproxies().get(url.scheme)
        self.timeout = timeout
        self._concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None  # opened on first use, inside the event loop
        self._slots = asyncio.Semaphore(concurrency)
        # One request per 1/rps seconds: exact for fractional rates, and no bursts.
        self._throttler = Throttler(rate_limit=1, period=1.0 / rps) if rps else None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._concurrency),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers=self._headers,
            )
        return self._session

    @property
    def name(self) -> str:
        """``model@base_url``."""
        return f"{self.model}@{self.base_url}"

    def payload(self, request: ChatRequest) -> dict[str, Any]:
        """The JSON body of a chat completion request."""
        sampling = request.sampling
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [m.model_dump() for m in request.messages],
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if sampling.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = sampling.top_logprobs
        if request.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": request.json_schema, "strict": True},
            }
        return body

    async def chat(self, request: ChatRequest) -> ChatResult:
        """Send one chat completion, retrying what can be retried.

        Raises:
            BackendError: after the last retry, or at once for a context overflow or a
                4xx answer that retrying cannot cure.
        """
        body = json.dumps(self.payload(request)).encode()
        started = time.perf_counter()
        attempt = 0
        while True:
            if self._outage is not None and not await self._outage.wait():
                raise BackendError("connection", self._outage.describe())
            try:
                return await self._send(body, started, attempt + 1)
            except BackendError as failure:
                if not failure.retryable:
                    raise
                if failure.kind == "connection" and await self._down():
                    continue  # sent again once the server answers; this attempt does not count
                if attempt == self.max_retries:
                    raise BackendError(failure.kind, f"{failure.reason} (after {attempt + 1} attempts)") from None
                await back_off(failure, attempt, self.backoff, self.max_backoff)
                attempt += 1

    async def _down(self) -> bool:
        """After a connection error: whether the server is down (then an outage is on until a poll finds it
        serving the model again); never with no ``outage_wait``."""
        if self.outage_wait <= 0:
            return False
        if self._outage is None:
            if await self.serves_model():
                return False
            if self._outage is None:  # not begun by another request meanwhile
                outage = self._outage = Outage(redact(self.base_url), self.outage_wait, self.outages)
                self._poll = asyncio.create_task(self._wait_out(outage))
        return True

    async def _wait_out(self, outage: Outage) -> None:
        await self.until_serving(self.backoff, min(self.max_backoff, 10.0))
        self._outage = None
        outage.end()

    async def attempt(self, request: ChatRequest) -> ChatResult:
        """Send one chat completion once, without retrying (for callers that retry elsewhere).

        Raises:
            BackendError: with ``retryable`` set when another attempt may succeed.
        """
        return await self._send(json.dumps(self.payload(request)).encode(), time.perf_counter(), 1)

    async def _send(self, body: bytes, started: float, attempts: int) -> ChatResult:
        try:
            async with self._slots:
                if self._throttler is not None:
                    async with self._throttler:
                        pass
                async with self._client().post(self._api / "chat/completions", data=body, proxy=self._proxy) as answer:
                    status, headers, raw = answer.status, answer.headers, await answer.read()
        except TimeoutError:
            raise BackendError("timeout", f"no answer within {self.timeout}s", retryable=True) from None
        except aiohttp.ClientError as exc:
            reason = f"{type(exc).__name__}: {exc or 'connection failed'}"
            raise BackendError("connection", reason, retryable=True) from None
        if status == 200:
            try:
                return self._result(json.loads(raw), started, attempts)
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                reason = f"unreadable chat completion: {exc!r}"[:300]
                raise BackendError("malformed", reason, retryable=True, status=status) from None
        text = _error_text(raw)
        if status == 400 and any(h in text.lower() for h in _OVERFLOW_HINTS):
            raise BackendError("context_overflow", text, status=status)
        raise BackendError(
            "http",
            f"HTTP {status}: {text}",
            retryable=status in _RETRY_STATUS,
            status=status,
            retry_after=_retry_after(headers),
        )

    def _result(self, body: dict[str, Any], started: float, attempts: int) -> ChatResult:
        choice = body["choices"][0]
        content = choice["message"]["content"]
        if not isinstance(content, str):
            raise TypeError(f"message content is {type(content).__name__}, not text")
        usage = body.get("usage") or {}
        logprobs = None
        if choice.get("logprobs") and choice["logprobs"].get("content") is not None:
            logprobs = [
                TokenLogprob(token=item["token"], logprob=float(item["logprob"]))
                for item in choice["logprobs"]["content"]
            ]
        return ChatResult(
            content=content,
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            latency_s=time.perf_counter() - started,
            attempts=attempts,
            logprobs=logprobs,
        )

    def _url(self, path: str) -> URL:
        """``path`` under the base URL (``/models``) or the server root (``/version``), without credentials."""
        return (self._api if path.startswith("/models") else self._root) / path.lstrip("/")

    async def _get(self, url: URL, timeout: float | None = None) -> tuple[int, bytes]:
        wait = aiohttp.ClientTimeout(total=timeout) if timeout else None
        async with self._client().get(url, proxy=self._proxy, timeout=wait) as response:
            return response.status, await response.read()

    async def serves_model(self) -> bool:
        """The server answers ``GET /v1/models`` (within 10 s, or ``timeout`` if shorter) and lists the model."""
        try:
            return self.model in served_models(await self.get_json("/models", timeout=min(10.0, self.timeout)))
        except BackendError:
            return False

    async def until_serving(self, interval: float, max_interval: float) -> None:
        """Poll :meth:`serves_model` with backoff (``interval`` first, doubling up to ``max_interval``)
        until the server serves the model."""
        delay = interval
        while True:
            await asyncio.sleep(delay)
            if await self.serves_model():
                return
            delay = min(delay * 2, max_interval)

    async def get_json(self, path: str, timeout: float | None = None) -> Any:
        """GET a JSON document under the base URL (``/models``) or the server root (``/version``), within
        ``timeout`` seconds if given (else the request timeout).

        Raises:
            BackendError: the server cannot be reached or answers with an error.
        """
        url = self._url(path)
        where = str(url)
        try:
            status, raw = await self._get(url, timeout)
        except TimeoutError:
            raise BackendError("timeout", f"{where}: no answer") from None
        except aiohttp.ClientError as exc:
            raise BackendError("connection", f"{self.base_url}: {type(exc).__name__}: {exc}") from None
        if not 200 <= status < 300:
            raise BackendError("http", f"{where}: HTTP {status}")
        try:
            return json.loads(raw)
        except ValueError:
            raise BackendError("malformed", f"{where}: not JSON") from None

    async def server_metrics(self) -> str | None:
        """The server's Prometheus ``/metrics`` text (vLLM serves one), or None if it has none."""
        try:
            status, raw = await self._get(self._url("/metrics"))
        except (TimeoutError, aiohttp.ClientError):
            return None
        return raw.decode("utf-8", "replace") if status == 200 else None

    async def aclose(self) -> None:
        """Stop polling a server that is down; close the connection pool."""
        if self._poll is not None:
            self._poll.cancel()
            await asyncio.gather(self._poll, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
