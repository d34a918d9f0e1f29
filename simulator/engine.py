"""The conversation engine: walks a scenario's flow graph, one user turn and one reply at a time."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from scenarios import ELSE, EXHAUSTED, Judgement, Label, StageKind, Status, TokenLogprobs, Transcript, Turn
from scoring import Judge, JudgeError, probe_is_accurate
from simulator.backends.base import Backend, BackendError, ChatMessage, ChatRequest, ChatResult
from simulator.plan import ConversationSpec
from simulator.user import ScriptedUser, UserMove

__all__ = ["run_conversation"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _request_seed(spec: ConversationSpec, turn: int) -> int:
    return (spec.seed * 1_000_003 + turn) % 2**31


class _Conversation:
    """The state of one conversation while it runs."""

    def __init__(self, spec: ConversationSpec, backend: Backend, judge: Judge) -> None:
        self.spec = spec
        self.backend = backend
        self.judge = judge
        self.turns: list[Turn] = []
        prompt = spec.target.system_prompt
        self.messages: list[ChatMessage] = [ChatMessage(role="system", content=prompt)] if prompt else []

    async def exchange(self, move: UserMove, stage: str | None) -> Label:
        """Say ``move``, get the reply, label it; raises on a failed request or judge."""
        self.turns.append(Turn(role="user", content=move.text, stage=stage))
        self.messages.append(ChatMessage(role="user", content=move.text))
        request = ChatRequest(
            messages=tuple(self.messages),
            sampling=self.spec.target.sampling,
            seed=_request_seed(self.spec, len(self.turns)),
        )
        result = await self.backend.chat(request)
        try:
            judgement = await self.judge.judge(self.spec.scenario, self.turns, result.content)
        except JudgeError:
            self.turns.append(_assistant_turn(result, stage, None, None, None))  # kept, never labelled
            raise
        accurate = None
        if move.probe is not None:
            accurate = probe_is_accurate(move.probe, result.content)
        elif self.spec.kind == "knowledge_check":
            accurate = judgement.label is Label.CORRECTS
        self.turns.append(_assistant_turn(result, stage, judgement.label, accurate, judgement))
        self.messages.append(ChatMessage(role="assistant", content=result.content))
        return judgement.label

    async def walk(self) -> Status:
        """Run the flow until an end stage or the turn limit."""
        spec = self.spec
        if spec.kind == "knowledge_check":
            await self.exchange(UserMove(spec.scenario.scenario.question), None)
            return Status.COMPLETED
        user = ScriptedUser(spec.scenario, spec.persona, spec.condition, spec.seed)
        stages = spec.scenario.flow.stages
        stage = spec.scenario.flow.start
        replies = 0
        while stages[stage].kind is not StageKind.END:
            if replies >= spec.max_turns:
                return Status.MAX_TURNS
            move = user.move(stage)
            if move is None:
                stage = stages[stage].next[EXHAUSTED]
                continue
            label = await self.exchange(move, stage)
            replies += 1
            edges = stages[stage].next
            stage = edges.get(str(label)) or edges[ELSE]
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


async def run_conversation(spec: ConversationSpec, backend: Backend, judge: Judge) -> Transcript:
    """Hold one conversation and return its transcript; failures are recorded, not raised.

    A failed request ends the conversation with status ``error`` (or
    ``context_overflow``) and the reason; the user turn that got no reply is kept,
    unlabelled, so the transcript shows where it stopped.
    """
    started_at, started = _now(), time.perf_counter()
    conversation = _Conversation(spec, backend, judge)
    error: str | None = None
    error_kind: str | None = None
    try:
        status = await conversation.walk()
    except BackendError as exc:
        status = Status.CONTEXT_OVERFLOW if exc.kind == "context_overflow" else Status.ERROR
        error, error_kind = exc.reason, exc.kind
    except JudgeError as exc:
        status, error, error_kind = Status.ERROR, str(exc), "judge"
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
