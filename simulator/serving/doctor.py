"""`convsim doctor`: what an OpenAI-compatible endpoint (each of its replicas) can do for convsim."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulator.backends.base import BackendError, ChatMessage, ChatRequest, Sampling, redact
from simulator.backends.http import HttpBackend
from simulator.config import replica_urls
from simulator.serving.metrics import prometheus_sums

__all__ = ["CHECKS", "Check", "diagnose", "diagnose_replicas"]

_HITS = "vllm:prefix_cache_hits_total"

_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}, "confidence": {"type": "number"}},
    "required": ["answer", "confidence"],
    "additionalProperties": False,
}


@dataclass
class Check:
    """One capability: whether it works (``None``: could not tell), what was seen, and if convsim needs it."""

    name: str
    ok: bool | None
    detail: str
    required: bool = False


def _ask(text: str, **kwargs: Any) -> ChatRequest:
    sampling = kwargs.pop("sampling", Sampling(max_tokens=16))
    return ChatRequest(messages=(ChatMessage(role="user", content=text),), sampling=sampling, **kwargs)


CHECKS = (
    "reachable", "models served", "server version", "max context length", "chat template", "seeds", "logprobs",
    "structured output", "prefix caching",
)  # fmt: skip
"""The checks :func:`diagnose` makes, in order."""


class _Checks(list[Check]):
    """The checks made so far; each one is told to ``on_check`` as it is added."""

    def __init__(self, on_check: Callable[[Check], None] | None) -> None:
        super().__init__()
        self.on_check = on_check

    def append(self, check: Check) -> None:
        """Add a check and tell it."""
        super().append(check)
        if self.on_check is not None:
            self.on_check(check)


async def diagnose(
    base_url: str, model: str | None, api_key_env: str | None = None, on_check: Callable[[Check], None] | None = None
) -> list[Check]:
    """Probe an endpoint; stops early when it cannot be reached or serves no model.

    ``on_check(check)`` is called as each check (one of :data:`CHECKS`) is done.
    """
    probe = HttpBackend(base_url, model or "", api_key_env=api_key_env, timeout=60, max_retries=1)
    checks = _Checks(on_check)
    try:
        try:
            listing = await probe.get_json("/models")
        except BackendError as exc:
            checks.append(Check("reachable", False, exc.reason, required=True))
            return checks
        checks.append(Check("reachable", True, redact(probe.base_url), required=True))
        entries = [m for m in listing.get("data", []) if isinstance(m, dict)]
        bases = [m["id"] for m in entries if not m.get("parent")]
        adapters = [f"{m['id']} (on {m['parent']})" for m in entries if m.get("parent")]
        served = ", ".join(bases) + (f"; LoRA adapters: {', '.join(adapters)}" if adapters else "")
        chosen = model or (bases[0] if bases else None)
        ids = [m["id"] for m in entries]
        checks.append(Check("models served", chosen in ids, served or "none", required=True))
        if chosen not in ids:
            return checks
        assert chosen is not None
        probe.model = chosen
        try:
            version = (await probe.get_json("/version")).get("version", "?")
            checks.append(Check("server version", True, f"vLLM {version}"))
        except BackendError:
            checks.append(Check("server version", None, "no /version (not vLLM?)"))
        entry = next(m for m in entries if m["id"] == chosen)
        length = entry.get("max_model_len")
        checks.append(Check("max context length", length is not None, f"{length} tokens" if length else "not reported"))
        await _generation_checks(probe, checks)
        checks.append(await _prefix_cache_check(probe))
    finally:
        await probe.aclose()
    return checks


async def diagnose_replicas(
    target: str,
    model: str | None,
    api_key_env: str | None = None,
    on_check: Callable[[str, Check], None] | None = None,
) -> dict[str, list[Check]]:
    """Probe every replica that ``target`` names (``URL`` or ``URL1,URL2,...``), all at once.

    ``on_check(url, check)`` is called as each check of each replica is done.

    Raises:
        ValueError: ``target`` names an empty URL, or one twice.
    """
    urls = replica_urls(target)

    def told(url: str) -> Callable[[Check], None] | None:
        return None if on_check is None else lambda check: on_check(url, check)

    found = await asyncio.gather(*(diagnose(url, model, api_key_env, told(url)) for url in urls))
    return dict(zip(urls, found, strict=True))


async def _generation_checks(probe: HttpBackend, checks: list[Check]) -> None:
    try:
        reply = await probe.chat(_ask("Say hello."))
        checks.append(Check("chat template", True, f"replied {reply.content[:40]!r}", required=True))
    except BackendError as exc:
        checks.append(Check("chat template", False, exc.reason, required=True))
        return
    sampled = Sampling(temperature=1.0, max_tokens=24)
    try:
        first = await probe.chat(_ask("Tell me a short story.", sampling=sampled, seed=7))
        second = await probe.chat(_ask("Tell me a short story.", sampling=sampled, seed=7))
        same = first.content == second.content
        checks.append(Check("seeds", same, "same seed, same reply" if same else "same seed gave different replies"))
    except BackendError as exc:
        checks.append(Check("seeds", False, exc.reason))
    try:
        result = await probe.chat(_ask("Say yes.", sampling=Sampling(max_tokens=4, logprobs=True, top_logprobs=1)))
        ok = bool(result.logprobs)
        checks.append(Check("logprobs", ok, f"{len(result.logprobs or [])} token logprobs" if ok else "none returned"))
    except BackendError as exc:
        checks.append(Check("logprobs", False, exc.reason))
    try:
        request = _ask("Is water wet? Answer in JSON.", sampling=Sampling(max_tokens=40), json_schema=_SCHEMA)
        result = await probe.chat(request)
        answer = json.loads(result.content)
        ok = isinstance(answer, dict) and answer.get("answer") in ("yes", "no") and "confidence" in answer
        checks.append(Check("structured output", ok, f"{result.content[:50]}"))
    except (BackendError, ValueError) as exc:
        checks.append(Check("structured output", False, str(exc)[:80]))


async def _prefix_cache_check(probe: HttpBackend) -> Check:
    before_text = await probe.server_metrics()
    if before_text is None:
        return Check("prefix caching", None, "no /metrics to read")
    before = prometheus_sums(before_text, {_HITS}).get(_HITS)
    if before is None:
        return Check("prefix caching", None, "no vllm:prefix_cache_hits_total metric")
    prompt = "Remember this list: " + ", ".join(f"item {i}" for i in range(120)) + ". Which came first?"
    for _ in range(2):
        await probe.chat(_ask(prompt, sampling=Sampling(max_tokens=2)))
    after = prometheus_sums(await probe.server_metrics() or "", {_HITS}).get(_HITS, 0.0)
    hits = after - before
    return Check("prefix caching", hits > 0, f"{hits:.0f} cached tokens on a repeated prompt")
