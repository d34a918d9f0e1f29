"""Voices: the built-in wordings of the scripted user, several per stage, grouped by persona style."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from personas.files import parse_yaml, validate_data
from personas.model import Emotion, Persona, PlainText, Tactic, TacticPhrases, Text, uses_only

__all__ = ["PressPhrases", "Voice", "Voices", "builtin_voices", "voice_of"]


class PressPhrases(TacticPhrases):
    """Wordings of the press: they may name the question (no authority, no anecdote), and state the
    belief in ``belief`` lines."""

    belief: list[Annotated[Text, uses_only(frozenset({"question", "belief"}))]] = Field(min_length=1)
    doubt: list[Annotated[Text, uses_only(frozenset({"question"}))]] = Field(min_length=1)


class Voice(BaseModel):
    """How personas of one style word what they say when their own file does not.

    Attributes:
        emotions: the persona emotions (``affect.emotion``) that speak in this voice.
        tactics: wordings of every pushback tactic.
        press: asking again for a clear answer after a hedge or an evasion.
        followup: lead-ins said before a scenario's follow-up question.
        again: lead-ins said before a follow-up question asked before.
        concession: what the persona says when it yields (unless its file gives its own).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    emotions: list[Emotion]
    tactics: dict[Tactic, TacticPhrases]
    press: PressPhrases
    followup: list[PlainText] = Field(min_length=2)
    again: list[PlainText] = Field(min_length=2)
    concession: list[PlainText] = Field(min_length=2)

    @model_validator(mode="after")
    def _complete(self) -> Voice:
        missing = sorted(set(Tactic) - set(self.tactics))
        if missing:
            raise ValueError(f"no wordings for tactics: {', '.join(missing)}")
        return self


class Voices(BaseModel):
    """The voices file: voices by name (``neutral`` is the fallback) and belief back-references.

    Attributes:
        voices: every voice; each emotion belongs to exactly one.
        references: clauses that complete "I think ..." and point back at the belief once it has
            been stated in full, for scenarios that give no ``belief_forms``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    voices: dict[str, Voice]
    references: list[Text] = Field(min_length=2)

    @model_validator(mode="after")
    def _every_emotion_once(self) -> Voices:
        if "neutral" not in self.voices:
            raise ValueError("a `neutral` voice is required")
        owners = [emotion for voice in self.voices.values() for emotion in voice.emotions]
        for emotion in Emotion:
            if owners.count(emotion) != 1:
                raise ValueError(f"emotion {emotion} must belong to exactly one voice, not {owners.count(emotion)}")
        return self


@cache
def builtin_voices() -> Voices:
    """The built-in voices (``personas/voices.yaml``)."""
    text = resources.files("personas").joinpath("voices.yaml").read_text(encoding="utf-8")
    return validate_data(
        parse_yaml(text, "personas/voices.yaml"), Voices, schema="the Voices model in personas/voices.py"
    )


def voice_of(persona: Persona) -> str:
    """The name of the voice a persona speaks in, from its ``affect.emotion``."""
    return next(name for name, voice in builtin_voices().voices.items() if persona.affect.emotion in voice.emotions)
