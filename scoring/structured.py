"""Structured answers from a model: a chat that replies in JSON following a schema, asked until it validates.

The LLM judge asks it for verdicts, the model-driven simulated user for its next message.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from pydantic import BaseModel, ValidationError

__all__ = ["ChatFailed", "JsonChat", "NoValidAnswer", "ask_structured"]


class JsonChat(Protocol):
    """A model that answers a system and a user message with JSON that follows a schema."""

    @property
    def name(self) -> str:
        """The model and where it is served, e.g. ``judge-70b@http://host:8000/v1``."""
        ...

    async def json_reply(self, system: str, user: str, schema: dict[str, object]) -> str:
        """The model's answer (a JSON text) at temperature 0.

        Raises:
            ChatFailed: the model's server gave no answer (after its own retries).
        """
        ...


AnswerT = TypeVar("AnswerT", bound=BaseModel)


class ChatFailed(Exception):
    """A :class:`JsonChat`'s server gave no answer at all (unreachable, timed out, an HTTP error)."""


class NoValidAnswer(Exception):
    """A model gave no answer that validates, in every try, or its server gave none."""


async def ask_structured(
    chat: JsonChat, system: str, user: str, schema: dict[str, object], model: type[AnswerT], attempts: int
) -> AnswerT:
    """Ask until the answer validates as ``model``, at most ``attempts`` times.

    Raises:
        NoValidAnswer: every answer was invalid (the message shows the last one), or the server
            failed (the message says how; the chat has retried already, so this does not).
    """
    problem = ""
    for _ in range(attempts):
        try:
            text = await chat.json_reply(system, user, schema)
        except ChatFailed as exc:
            raise NoValidAnswer(f"no answer: its server failed: {exc}") from None
        try:
            return model.model_validate_json(text)
        except ValidationError as exc:
            problem = f"invalid answer {text[:120]!r}: {exc.errors()[0]['msg']}"
    raise NoValidAnswer(f"no valid answer in {attempts} tries; last: {problem}")
