"""Casting: which simulated user plays a planned conversation."""

from __future__ import annotations

from scoring.structured import JsonChat
from simulator.plan import ConversationSpec
from simulator.users.fixed import KnowledgeCheckUser, ReplayUser
from simulator.users.model_driven import ModelUser
from simulator.users.move import User
from simulator.users.scripted import ScriptedUser

__all__ = ["user_for"]


def user_for(spec: ConversationSpec, user_chat: JsonChat | None = None) -> User:
    """The user of ``spec``: the knowledge check's question, a replayed script, or the scenario's
    scripted user (written by the model ``user_chat``, when given)."""
    if spec.kind == "knowledge_check":
        return KnowledgeCheckUser(spec.scenario.scenario.question)
    if spec.replay is not None:
        return ReplayUser(spec.replay)
    scripted = ScriptedUser(spec.scenario, spec.persona, spec.condition, spec.seed)
    return scripted if user_chat is None else ModelUser(user_chat, scripted)
