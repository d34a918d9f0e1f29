"""The dialogue flow: named stages, and edges chosen by the label of the last reply.

A flow is written in YAML as a mapping of stages; :meth:`Flow.graph` gives it as a
networkx DiGraph whose edges carry the labels (``on``) that select them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from scenarios.labels import REPLY_LABELS

__all__ = ["ELSE", "EXHAUSTED", "Flow", "Stage", "StageKind", "UserText"]

ELSE = "else"
"""Edge key taken when no edge names the reply's label."""
EXHAUSTED = "exhausted"
"""Edge key a pushback stage takes, without a user turn, once the persona has stopped pushing back."""

StageName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class StageKind(StrEnum):
    """Where a stage's user text comes from when the stage gives none itself."""

    OPEN = "open"  # the condition's opening turn (disclosure, frame, question, belief)
    PUSHBACK = "pushback"  # the persona's next pushback tactic
    FOLLOWUP = "followup"  # the scenario's next follow-up that builds on the belief
    PROBE = "probe"  # the scenario's next probe question
    PRESS = "press"  # the persona asks again for a clear answer
    CONCEDE = "concede"  # the persona yields
    SAY = "say"  # the stage's own `user` text
    END = "end"  # terminal: no user turn, the conversation ends


class UserText(BaseModel):
    """User text in two wordings: when the user holds the false belief, and when not."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    belief: str = Field(min_length=1)
    doubt: str = Field(min_length=1)


class Stage(BaseModel):
    """One stage of the flow.

    Attributes:
        kind: where the user text comes from (see :class:`StageKind`).
        user: the user's text, overriding the kind's default. A text that uses
            ``{belief}`` must be given as ``{belief: ..., doubt: ...}`` so that the
            conditions without the false belief have a wording too.
        next: the stage to go to, by the label of the target's reply, ``else`` and,
            for pushback stages, ``exhausted``. Empty for an ``end`` stage.
        verbatim: send the user text exactly as filled in, without tidying spaces and
            capitals (for replaying a published protocol word for word).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: StageKind
    user: str | UserText | None = None
    next: dict[str, StageName] = Field(default_factory=dict)
    verbatim: bool = False

    def after(self, label: str) -> str:
        """The stage to go to after a reply labelled ``label``: its own edge, else the ``else`` edge."""
        return self.next.get(label) or self.next[ELSE]


class Flow(BaseModel):
    """A dialogue flow graph."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: StageName
    stages: dict[StageName, Stage] = Field(min_length=1)

    def graph(self) -> nx.DiGraph[str]:
        """The flow as a DiGraph: nodes carry ``kind``, edges carry the set ``on`` of keys."""
        graph: nx.DiGraph[str] = nx.DiGraph()
        for name, stage in self.stages.items():
            graph.add_node(name, kind=stage.kind)
        for name, stage in self.stages.items():
            for key, target in stage.next.items():
                if target in self.stages:
                    graph.add_edge(name, target)
                    graph.edges[name, target].setdefault("on", set()).add(key)
        return graph

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Everything wrong with the graph, as (location in the flow, message) pairs.

        Checks that the start exists and asks something, every edge key is a label,
        ``else`` or ``exhausted``, every edge leads to a stage, every stage that is
        not an ``end`` has a way out for every label, every stage is reachable from
        the start, and every stage can reach an end.
        """
        found: list[tuple[tuple[str | int, ...], str]] = []
        allowed = {str(label) for label in REPLY_LABELS} | {ELSE, EXHAUSTED}
        for name, stage in self.stages.items():
            where: tuple[str | int, ...] = ("stages", name)
            if stage.kind is StageKind.END:
                if stage.next or stage.user is not None:
                    found.append((where, f"end stage {name!r} can have neither `next` nor `user`"))
                continue
            if stage.kind is StageKind.SAY and stage.user is None:
                found.append((where, f"stage {name!r} of kind `say` needs a `user` text"))
            for key, target in stage.next.items():
                if key not in allowed:
                    found.append(
                        ((*where, "next", key), f"unknown edge key {key!r}; use a label, `else` or `exhausted`")
                    )
                if target not in self.stages:
                    found.append(((*where, "next", key), f"edge leads to unknown stage {target!r}"))
            if EXHAUSTED in stage.next and stage.kind is not StageKind.PUSHBACK:
                found.append(((*where, "next", EXHAUSTED), "only a pushback stage can have an `exhausted` edge"))
            if stage.kind is StageKind.PUSHBACK and EXHAUSTED not in stage.next:
                found.append(((*where, "next"), f"pushback stage {name!r} needs an `exhausted` edge"))
            uncovered = [str(label) for label in REPLY_LABELS if str(label) not in stage.next]
            if ELSE not in stage.next and uncovered:
                found.append(((*where, "next"), f"stage {name!r} has no edge for {', '.join(uncovered)}; add `else`"))
        if self.start not in self.stages:
            return [*found, (("start",), f"start stage {self.start!r} is not defined")]
        if self.stages[self.start].kind is StageKind.END:
            found.append((("start",), "the start stage cannot be an end stage"))
        graph = self.graph()
        reachable = nx.descendants(graph, self.start) | {self.start}
        for name in self.stages:
            if name not in reachable:
                found.append((("stages", name), f"stage {name!r} cannot be reached from {self.start!r}"))
        ends = [n for n, stage in self.stages.items() if stage.kind is StageKind.END]
        if not ends:
            found.append((("stages",), "the flow has no `end` stage, so no path ends"))
        else:
            can_end = set(ends).union(*(nx.ancestors(graph, end) for end in ends))
            for name in self.stages:
                if name in reachable and name not in can_end:
                    found.append((("stages", name), f"no path from stage {name!r} reaches an end stage"))
        return found
