"""The three roles a model can play: target, simulated user, judge; each on its own endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from scoring import Judge, RuleJudge
from scoring.cascade import CascadeJudge
from scoring.llm_judge import LLMJudge
from scoring.structured import ChatFailed
from simulator.backends.base import Backend, BackendError, ChatMessage, ChatRequest, Sampling
from simulator.backends.http import HttpBackend
from simulator.backends.outage import Outages
from simulator.backends.pool import ReplicaPool
from simulator.config import Endpoint, RunConfig

if TYPE_CHECKING:
    from scoring.learned import LearnedJudge

__all__ = ["BackendJsonChat", "RoleError", "Roles", "judge_identity", "make_judge", "open_backend", "open_roles"]


class RoleError(Exception):
    """A role cannot be filled: a missing endpoint, a judge that does not exist, a model not installed."""


class BackendJsonChat:
    """Adapts a :class:`Backend` to the ``JsonChat`` that model-driven judges and users need."""

    def __init__(self, backend: Backend, *, max_tokens: int = 300) -> None:
        self.backend = backend
        self.max_tokens = max_tokens

    @property
    def name(self) -> str:
        """The backend's name."""
        return self.backend.name

    async def json_reply(self, system: str, user: str, schema: dict[str, object]) -> str:
        """Ask at temperature 0 with the schema as structured output; the answer's text."""
        request = ChatRequest(
            messages=(ChatMessage(role="system", content=system), ChatMessage(role="user", content=user)),
            sampling=Sampling(temperature=0.0, max_tokens=self.max_tokens),
            json_schema=schema,
        )
        try:
            return (await self.backend.chat(request)).content
        except BackendError as exc:  # the judge's or user model's server, not the target's: said so
            raise ChatFailed(str(exc)) from None


def open_backend(endpoint: Endpoint, config: RunConfig, outages: Outages | None = None) -> Backend:
    """The backend behind an endpoint: its HTTP server, a pool of its replicas, or the embedded
    model when it has no URL. Servers that stop answering are waited for ``config.outage_wait``
    seconds, and their outages told to ``outages``.

    Raises:
        RoleError: the embedded model is wanted but not installed.
    """
    urls = endpoint.replicas
    if not urls:
        from simulator.backends.embedded import EmbeddedBackend
        from simulator.serving.models import ModelUnavailable, default_model_dir

        try:
            return EmbeddedBackend(default_model_dir())
        except ModelUnavailable as exc:
            raise RoleError(str(exc)) from None

    wait = config.outage_wait
    clients = [
        HttpBackend(url, endpoint.model, api_key_env=endpoint.api_key_env, timeout=endpoint.timeout,
                    max_retries=endpoint.max_retries, concurrency=config.max_concurrency, rps=config.rps,
                    outage_wait=wait, outages=outages)
        for url in urls
    ]  # fmt: skip
    if len(clients) == 1:
        return clients[0]
    # the pool retries elsewhere, and waits when every replica is down
    return ReplicaPool(clients, timeout=endpoint.timeout, max_retries=endpoint.max_retries, outage_wait=wait,
                       outages=outages)  # fmt: skip


def judge_identity(config: RunConfig) -> str:
    """What the judge is, for conversation ids: its kind and model, not where it is served."""
    model = config.judge_model.model if config.judge_model is not None else None

    def one(spec: str) -> str:
        return f"llm:{model}" if spec == "llm" and model is not None else spec

    if config.judge.startswith(CASCADE):
        return CASCADE + ",".join(one(part) for part in config.judge.removeprefix(CASCADE).split(","))
    return one(config.judge)


@dataclass
class Roles:
    """The backends of a run: one per target, and the judge's and user model's when they have one; and
    the outages of their servers."""

    targets: dict[str, Backend]
    judge: Judge
    judge_backend: Backend | None = None
    user_backend: Backend | None = None
    outages: Outages = field(default_factory=Outages)

    def endpoints(self) -> dict[str, Backend]:
        """Every backend by role name (``target:NAME``, ``judge``, ``user``)."""
        found = {f"target:{name}": backend for name, backend in self.targets.items()}
        found |= {"judge": self.judge_backend} if self.judge_backend else {}
        return found | ({"user": self.user_backend} if self.user_backend else {})

    async def aclose(self) -> None:
        """Close every backend."""
        for backend in self.endpoints().values():
            await backend.aclose()


CASCADE = "cascade:"
JUDGES = "rules, learned, learned:FILE, llm (with --judge-model) or cascade:learned,llm"


def make_judge(
    config: RunConfig, *, cache_file: Path | None = None, outages: Outages | None = None
) -> tuple[Judge, Backend | None]:
    """The judge ``config.judge`` names, and the backend it talks to, if any (its outages told to ``outages``).

    ``rules``; ``learned`` (the judge shipped in the package) or ``learned:FILE``; ``llm`` (the
    model at ``config.judge_model``); ``cascade:FIRST,SECOND``: a learned judge where it is
    confident, the second judge elsewhere.

    Raises:
        RoleError: an unknown judge, ``llm`` without a ``judge_model``, or a model file that cannot be used.
    """
    if config.judge.startswith(CASCADE):
        parts = config.judge.removeprefix(CASCADE).split(",")
        if len(parts) != 2 or not (parts[0] == "learned" or parts[0].startswith("learned:")):
            raise RoleError(f"unknown judge {config.judge!r}; a cascade is cascade:learned[:FILE],JUDGE")
        first = _learned(parts[0])
        second, backend = _one_judge(parts[1], config, cache_file, outages)
        return CascadeJudge(first, second, first.confident_at), backend
    return _one_judge(config.judge, config, cache_file, outages)


def _one_judge(
    spec: str, config: RunConfig, cache_file: Path | None, outages: Outages | None
) -> tuple[Judge, Backend | None]:
    if spec == "rules":
        return RuleJudge(), None
    if spec == "llm":
        if config.judge_model is None:
            raise RoleError("--judge llm needs a judge model: --judge-model NAME [--judge-target URL]")
        backend = open_backend(config.judge_model, config, outages)
        return LLMJudge(BackendJsonChat(backend), cache_file=cache_file), backend
    if spec == "learned" or spec.startswith("learned:"):
        return _learned(spec), None
    raise RoleError(f"unknown judge {spec!r}; use {JUDGES}")


def _learned(spec: str) -> LearnedJudge:
    """``learned`` (the shipped judge) or ``learned:FILE``."""
    from scoring.learned import LearnedJudge, ModelFileError  # numpy: imported when a run needs it

    file = spec.removeprefix("learned:") if spec != "learned" else None
    try:
        return LearnedJudge(None if file is None else Path(file))
    except (ModelFileError, OSError) as exc:
        raise RoleError(f"cannot use {spec}: {exc}") from None


def open_roles(config: RunConfig, outages: Outages | None = None) -> Roles:
    """Open a backend for every role of the run; its servers' outages are told to ``outages``.

    Raises:
        RoleError: a role cannot be filled.
    """
    outages = outages if outages is not None else Outages()
    judge, judge_backend = make_judge(config, outages=outages)
    user_backend = open_backend(config.user_model, config, outages) if config.user_model else None
    targets = {target.name: open_backend(target, config, outages) for target in config.targets}
    return Roles(targets, judge, judge_backend, user_backend, outages)
