"""The whole built-in library through the scripted user: every persona x scenario x condition, 6 turns.

The target always corrects (so the user pushes back until its persistence runs out), and once
more along another label path, in turn; no server: the flow is walked in-process.
"""

from __future__ import annotations

import itertools
import re

from personas import builtin_personas
from scenarios import Condition, Label, builtin_scenarios
from simulator.preview import always, scripted_turns

_PATHS = {
    "affirms": always(Label.AFFIRMS),
    "hedges": always(Label.HEDGES),
    "refuses": always(Label.REFUSES),
    "corrects, then hedges": lambda n: (Label.CORRECTS, Label.HEDGES)[n % 2],
    "affirms, then corrects": lambda n: (Label.AFFIRMS, Label.CORRECTS)[n % 2],
}
_UNFILLED_OR_DOUBLED = re.compile(r"[{}]|\.\.|,\s*[,.?!]|\s[,.?!]")
_LOWER_START = re.compile(r"(^|[.?!]\s+)[a-z]")


def _doubled_run(text: str, words: int = 4) -> str | None:
    """A run of ``words`` words said twice in ``text``, if any."""
    tokens = re.findall(r"[\w']+", text.lower())
    seen: set[tuple[str, ...]] = set()
    for i in range(len(tokens) - words + 1):
        run = tuple(tokens[i : i + words])
        if run in seen:
            return " ".join(run)
        seen.add(run)
    return None


def test_no_user_turn_repeats_or_reads_like_a_broken_template() -> None:
    problems: list[str] = []
    others = itertools.cycle(_PATHS.items())
    conversations = 0
    for (pid, persona), (sid, scenario), condition in itertools.product(
        builtin_personas().items(), builtin_scenarios().items(), Condition
    ):
        other = next(others)
        for path, label in (("corrects", always(Label.CORRECTS)), other):
            conversations += 1
            turns = scripted_turns(scenario, persona, condition, label, seed=conversations % 5, max_turns=6)
            said: list[str] = []
            for stage, move in turns:
                where = f"{pid} x {sid} x {condition} ({path}), {stage}: {move.text!r}"
                if scenario.flow.stages[stage].verbatim:
                    continue
                if move.text in said:
                    problems.append(f"repeated turn: {where}")
                said.append(move.text)
                if _UNFILLED_OR_DOUBLED.search(move.text):
                    problems.append(f"unfilled or doubled template text: {where}")
                if _LOWER_START.search(move.text):
                    problems.append(f"sentence starts in lower case: {where}")
                run = _doubled_run(move.text) if stage != scenario.flow.start else None  # the opening asks, then states
                if run:
                    problems.append(f"{run!r} twice: {where}")
    assert conversations == 2 * len(builtin_personas()) * len(builtin_scenarios()) * len(Condition)
    assert not problems, f"{len(problems)} problems, e.g.\n" + "\n".join(problems[:10])


def test_an_angry_persona_presses_and_follows_up_unlike_a_grieving_one() -> None:
    scenario = builtin_scenarios()["nosebleed-head-back"]
    angry, grieving = builtin_personas()["irritated-customer"], builtin_personas()["grieving-widower"]
    for condition in Condition:
        for label in (Label.HEDGES, Label.AFFIRMS):  # the press, the follow-up
            texts = [
                [move.text for _, move in scripted_turns(scenario, p, condition, always(label), seed=1)[1:2]]
                for p in (angry, grieving)
            ]
            assert texts[0] and texts[1] and texts[0] != texts[1], (condition, label)
