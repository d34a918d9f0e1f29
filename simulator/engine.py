"""The conversation engine: a user, a target and a judge, one user turn and one labelled reply at a time.

The engine is handed its participants; which user plays a conversation is chosen elsewhere
(:func:`simulator.users.user_for`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from scenarios import Judgement, Label, Status, TokenLogprobs, Transcript, Turn
from scoring import Judge, JudgeError, probe_is_accurate
from simulator.backends.base import Backend, BackendError, ChatMessage, ChatRequest, ChatResult
from simulator.journal import Exchange
from simulator.plan import ConversationSpec
from simulator.users import User, UserModelError, UserMove

__all__ = ["run_conversation"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _request_seed(spec: ConversationSpec, turn: int) -> int:
    return (spec.seed * 1_000_003 + turn) % 2**31


class _Conversation:
    """The state of one conversation while it runs.

    ``resume`` holds exchanges finished before (journalled, or kept in an error's transcript): they
    are taken as they were while the conversation reaches them; ``on_exchange(number, exchange)`` is
    told of every new one.
    """

    def __init__(
        self,
        spec: ConversationSpec,
        user: User,
        backend: Backend,
        judge: Judge,
        resume: Sequence[Exchange],
        on_exchange: Callable[[int, Exchange], None] | None,
    ) -> None:
        self.spec = spec
        self.user = user
        self.backend = backend
        self.judge = judge
        self.resume = list(resume)
        self.on_exchange = on_exchange
        self.turns: list[Turn] = []
        prompt = spec.target.system_prompt
        self.messages: list[ChatMessage] = [ChatMessage(role="system", content=prompt)] if prompt else []

    async def say(self, move: UserMove) -> Label:
        """Say ``move`` (in the user's words) and get the labelled reply, or take the exchange finished
        before at this point; raises on a failed request, judge or user model."""
        number = len(self.turns) // 2
        if number < len(self.resume):
            said, reply = self.resume[number]
            label = reply.label
            sent = self.spec.target.style.wrap(move.text, first=number == 0)
            if label is not None and said.stage == move.stage and (said.generated or said.content == sent):
                self.turns += (said, reply)
                self.messages += (ChatMessage(role="user", content=said.content),
                                  ChatMessage(role="assistant", content=reply.content.strip()))  # fmt: skip
                return label
            del self.resume[number:]  # it does not fit this conversation (the scripts changed): go on afresh
        return await self.exchange(await self.user.write(move, self.turns))

    async def exchange(self, move: UserMove) -> Label:
        """Say ``move``, get the reply, label it; raises on a failed request or judge."""
        style = self.spec.target.style
        text = style.wrap(move.text, first=not self.turns)
        said = Turn(role="user", content=text, stage=move.stage)
        if move.state is not None:
            said.generated = True
            said.user_state = move.state
            said.fidelity = list(move.fidelity)
        self.turns.append(said)
        self.messages.append(ChatMessage(role="user", content=text))
        request = ChatRequest(
            messages=tuple(self.messages),
            sampling=self.spec.target.sampling,
            seed=_request_seed(self.spec, len(self.turns)) if style.seed else None,
        )
        result = await self.backend.chat(request)
        try:
            judgement = await self.judge.judge(self.spec.scenario, self.turns, result.content)
        except JudgeError:
            self.turns.append(_assistant_turn(result, move.stage, None, None, None))  # kept, never labelled
            raise
        accurate = None
        if move.probe is not None:
            accurate = probe_is_accurate(move.probe, result.content)
        elif self.spec.kind == "knowledge_check":
            accurate = judgement.label is Label.CORRECTS
        reply = _assistant_turn(result, move.stage, judgement.label, accurate, judgement)
        self.turns.append(reply)
        self.messages.append(ChatMessage(role="assistant", content=result.content.strip()))  # as sent back
        if self.on_exchange is not None:
            self.on_exchange(len(self.turns) // 2 - 1, (said, reply))
        return judgement.label

    async def walk(self) -> Status:
        """Take the user's moves until it has no more to say (or says it wants to stop), or the turn limit."""
        label: Label | None = None
        replies = 0
        while (move := self.user.next_move(label)) is not None:
            if replies >= self.spec.max_turns:
                return Status.MAX_TURNS
            label = await self.say(move)
            replies += 1
            if (self.turns[-2].user_state or {}).get("wants_to_stop"):
                return Status.COMPLETED
        return Status.COMPLETED


def _assistant_turn(
    result: ChatResult, stage: str | None, label: Label | None, accurate: bool | None, judgement: Judgement | None
) -> Turn:
    logprobs = None
    if result.logprobs is not None:
        logprobs = TokenLogprobs(
            tokens=[t.token for t in result.logprobs], logprobs=[round(t.logprob, 4) for t in result.logprobs]
        )
    return Turn.model_validate(
        {
            "role": "assistant",
            "content": result.content,
            "stage": stage,
            "label": label,
            "judgement": judgement,
            "accurate": accurate,
            "finish_reason": result.finish_reason,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "latency_s": round(result.latency_s, 4),
            "attempts": result.attempts,
            "logprobs": logprobs,
        }
    )


async def run_conversation(
    spec: ConversationSpec,
    user: User,
    target: Backend,
    judge: Judge,
    *,
    resume: Sequence[Exchange] = (),
    on_exchange: Callable[[int, Exchange], None] | None = None,
) -> Transcript:
    """Hold one conversation and return its transcript; failures are recorded, not raised.

    A failed request ends the conversation with status ``error`` (or
    ``context_overflow``) and the reason; the user turn that got no reply is kept,
    unlabelled, so the transcript shows where it stopped. ``user`` says the user turns
    (:func:`simulator.users.user_for` chooses it for ``spec``), ``target`` answers them and ``judge``
    labels each reply. ``resume``: exchanges finished before
    (:mod:`simulator.journal`), taken as they were; ``on_exchange(number, exchange)`` is told of
    each new finished exchange (numbered from 0), so that it can be journalled.
    """
    started_at, started = _now(), time.perf_counter()
    conversation = _Conversation(spec, user, target, judge, resume, on_exchange)
    error: str | None = None
    error_kind: str | None = None
    try:
        status = await conversation.walk()
    except BackendError as exc:
        status = Status.CONTEXT_OVERFLOW if exc.kind == "context_overflow" else Status.ERROR
        error, error_kind = exc.reason, exc.kind
    except JudgeError as exc:
        status, error, error_kind = Status.ERROR, str(exc), "judge"
    except UserModelError as exc:
        status, error, error_kind = Status.ERROR, str(exc), "user_model"
    persona = spec.persona.persona if spec.persona else None
    return Transcript(
        id=spec.id,
        kind=spec.kind,
        status=status,
        persona=persona.id if persona else None,
        affect=str(persona.affect.emotion) if persona else None,
        scenario=spec.scenario.scenario.id,
        domain=str(spec.scenario.scenario.domain),
        condition=str(spec.condition),
        target=spec.target.name,
        model=spec.target.model,
        seed=spec.seed,
        max_turns=spec.max_turns,
        turns=conversation.turns,
        error=error,
        error_kind=error_kind,
        started_at=started_at,
        finished_at=_now(),
        duration_s=round(time.perf_counter() - started, 4),
    )
