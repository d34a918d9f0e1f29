"""The engine, driven directly: a user, an in-memory target and judge, no server, no CLI."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from personas import builtin_personas
from scenarios import (
    Condition,
    Judgement,
    Label,
    LoadedScenario,
    Status,
    Transcript,
    Turn,
    builtin_scenarios,
)
from scoring import JudgeError
from simulator import ChatRequest, ChatResult, ConversationSpec, TargetConfig, build_plan, run_conversation
from simulator.backends.base import BackendError
from simulator.journal import Exchange
from simulator.users import KnowledgeCheckUser, ReplayUser, ScriptedUser, User, UserModelError, UserMove, user_for


class Target:
    """Answers from a list (cycling), records what it was sent; fails at request ``fail_at`` (from 1)."""

    name = "memory"

    def __init__(self, replies: Sequence[str] = ("Actually, that is a myth.",), fail_at: int | None = None) -> None:
        self.replies = list(replies)
        self.fail_at = fail_at
        self.requests: list[ChatRequest] = []

    async def chat(self, request: ChatRequest) -> ChatResult:
        self.requests.append(request)
        if len(self.requests) == self.fail_at:
            raise BackendError("server_error", "HTTP 500 from the test target")
        return ChatResult(content=self.replies[(len(self.requests) - 1) % len(self.replies)], finish_reason="stop")

    async def aclose(self) -> None:
        return None


class Judge:
    """Labels replies from a list (the last one repeats); raises at reply ``fail_at`` (from 1)."""

    name = "listed"

    def __init__(self, *labels: Label, fail_at: int | None = None) -> None:
        self.labels = list(labels) or [Label.CORRECTS]
        self.fail_at = fail_at
        self.judged = 0

    async def judge(self, scenario: LoadedScenario, history: Sequence[Turn], reply: str) -> Judgement:
        self.judged += 1
        if self.judged == self.fail_at:
            raise JudgeError("the test judge gave up")
        return Judgement(label=self.labels[min(self.judged, len(self.labels)) - 1], judge=self.name)


def spec(max_turns: int = 6, prompt: str = "Be brief.", persona: str = "grieving-widower") -> ConversationSpec:
    scenario = builtin_scenarios()["antibiotics-flu"]
    target = TargetConfig(name="memory", model="m", system_prompt=prompt)
    people = [builtin_personas()[persona]]
    return build_plan([scenario], people, [Condition.FALSE_BELIEF], [target], [0], max_turns, "listed")[0]


def hold(conversation: ConversationSpec, user: User, target: Target, judge: Judge, **kwargs: object) -> Transcript:
    return asyncio.run(run_conversation(conversation, user, target, judge, **kwargs))  # type: ignore[arg-type]


def test_a_scripted_user_walks_the_flow_by_the_labels() -> None:
    conversation, target = spec(), Target()
    transcript = hold(conversation, user_for(conversation), target, Judge(Label.AFFIRMS, Label.CORRECTS))
    stages = [turn.stage for turn in transcript.turns if turn.role == "user"]
    assert stages[:2] == ["open", "followup"]  # an affirming reply leads to a follow-up
    assert stages[2] == "pushback"  # a correction draws pushback
    assert [turn.role for turn in transcript.turns] == ["user", "assistant"] * len(stages)
    assert transcript.status in (Status.COMPLETED, Status.MAX_TURNS)
    first = target.requests[0].messages
    assert [m.role for m in first] == ["system", "user"] and first[0].content == "Be brief."
    assert len(target.requests[-1].messages) == 1 + 2 * len(stages) - 1  # the whole history every time


def test_the_same_user_and_replies_give_the_same_turns() -> None:
    conversation = spec()
    first = hold(conversation, user_for(conversation), Target(), Judge())
    second = hold(conversation, user_for(conversation), Target(), Judge())
    assert [t.content for t in first.turns] == [t.content for t in second.turns]


def test_a_user_with_more_to_say_stops_at_the_turn_limit() -> None:
    conversation = spec(max_turns=2)
    transcript = hold(conversation, user_for(conversation), Target(), Judge())
    assert transcript.status is Status.MAX_TURNS
    assert sum(turn.role == "assistant" for turn in transcript.turns) == 2


def test_a_knowledge_check_asks_the_question_once_and_marks_accuracy() -> None:
    conversation = replace(spec(max_turns=1), kind="knowledge_check", persona=None)
    user = user_for(conversation)
    assert isinstance(user, KnowledgeCheckUser)
    transcript = hold(conversation, user, Target(), Judge(Label.HEDGES))
    assert transcript.status is Status.COMPLETED
    assert [t.content for t in transcript.turns if t.role == "user"] == [conversation.scenario.scenario.question]
    assert transcript.turns[-1].accurate is False and transcript.turns[-1].label is Label.HEDGES


def test_a_replay_sends_its_script_whatever_the_replies() -> None:
    script = (("first words", "open"), ("second words", "pushback"), ("third", None))
    conversation = replace(spec(max_turns=3), replay=script)
    user = user_for(conversation)
    assert isinstance(user, ReplayUser)
    transcript = hold(conversation, user, Target(), Judge(Label.AFFIRMS, Label.REFUSES, Label.EVADES))
    assert [(t.content, t.stage) for t in transcript.turns if t.role == "user"] == list(script)
    assert transcript.status is Status.COMPLETED


def test_a_failed_request_ends_in_error_and_keeps_the_unanswered_turn() -> None:
    conversation = spec()
    transcript = hold(conversation, user_for(conversation), Target(fail_at=2), Judge())
    assert (transcript.status, transcript.error_kind) == (Status.ERROR, "server_error")
    assert "HTTP 500" in (transcript.error or "")
    assert [t.role for t in transcript.turns] == ["user", "assistant", "user"]


def test_a_failing_judge_is_an_error_and_the_reply_stays_unlabelled() -> None:
    conversation = spec()
    transcript = hold(conversation, user_for(conversation), Target(), Judge(fail_at=2))
    assert (transcript.status, transcript.error_kind) == (Status.ERROR, "judge")
    assert transcript.turns[-1].role == "assistant" and transcript.turns[-1].label is None


class Speaker(ScriptedUser):
    """A scripted user whose unfixed turns come with a user model's state, or fail."""

    def __init__(self, conversation: ConversationSpec, state: dict[str, object] | None, fail: bool = False) -> None:
        super().__init__(conversation.scenario, conversation.persona, conversation.condition, conversation.seed)
        self.state, self.fail = state, fail

    async def write(self, move: UserMove, turns: Sequence[Turn]) -> UserMove:
        if move.fixed:
            return move
        if self.fail:
            raise UserModelError("the user model gave no valid answer")
        return replace(move, text="My own words.", state=self.state, fidelity=("dropped_belief",))


def test_a_written_turn_records_its_state_and_fidelity_and_may_end_the_chat() -> None:
    conversation = spec()
    state = {"holds_belief": False, "affect": "tired", "wants_to_stop": True}
    transcript = hold(conversation, Speaker(conversation, state), Target(), Judge())
    written = transcript.turns[2]
    assert (written.content, written.generated, written.user_state) == ("My own words.", True, state)
    assert written.fidelity == ["dropped_belief"]
    assert transcript.status is Status.COMPLETED and len(transcript.turns) == 4  # it wanted to stop


def test_a_user_model_failure_is_recorded_as_such() -> None:
    conversation = spec()
    transcript = hold(conversation, Speaker(conversation, None, fail=True), Target(), Judge())
    assert (transcript.status, transcript.error_kind) == (Status.ERROR, "user_model")
    assert len(transcript.turns) == 2  # the opening and its reply


def test_resumed_exchanges_are_taken_as_they_were_and_only_new_ones_are_told() -> None:
    conversation = spec(max_turns=4)
    whole = hold(conversation, user_for(conversation), Target(), Judge())
    before: list[Exchange] = [(whole.turns[0], whole.turns[1]), (whole.turns[2], whole.turns[3])]
    told: list[int] = []
    target = Target()
    resumed = hold(
        conversation, user_for(conversation), target, Judge(),
        resume=before, on_exchange=lambda number, _: told.append(number),
    )  # fmt: skip
    assert [t.content for t in resumed.turns] == [t.content for t in whole.turns]
    assert told == [2, 3] and len(target.requests) == 2


def test_a_user_with_nothing_to_say_holds_no_exchange() -> None:
    class Silent(User):
        def next_move(self, last_label: Label | None) -> UserMove | None:
            return None

    conversation, target = spec(), Target()
    transcript = hold(conversation, Silent(), target, Judge())
    assert (transcript.status, transcript.turns, target.requests) == (Status.COMPLETED, [], [])
