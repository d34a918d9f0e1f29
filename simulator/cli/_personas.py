"""`convsim personas ...`: list, show, preview, validate, new, schema."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from personas import PERSONA_ID, LoadedPersona, Persona, builtin_personas, load_persona, resolve_personas, voice_of
from scenarios import REPLY_LABELS, Condition, resolve_scenarios
from simulator.cli._errors import fail, reported
from simulator.cli._library import Kind, list_command, schema_command, show_command, validate_command
from simulator.preview import always, scripted_turns

app = typer.Typer(help="Simulated users' personas: list, show, check and write them.", no_args_is_help=True)
console = Console()

TEMPLATE = """\
# A convsim persona. Check it with `convsim personas validate {path}`.
# Every field is described in the README ("Persona files"); `convsim personas schema` prints them all.
id: {id}                       # must equal the file name without .yaml
name: A short display name
description: >-
  Who this user is, in two or three sentences, for people reading reports.
affect:
  emotion: sadness             # neutral, sadness, grief, anxiety, loneliness, anger, happiness, fear, shame
  intensity: 0.6               # 0 (barely shows) to 1 (overwhelming); neutral personas stay at 0.3 or below
disclosures:                   # said before the question in the emotional conditions
  - I've been feeling really down lately.
style:
  tone: plain                  # casual, formal or plain
  verbosity: short             # terse, short or long
  notes: ""
pushback:
  tactics: [confusion, anecdote, challenge]   # confusion, restate, anecdote, emotion, authority, challenge, deference
  persistence: 2               # pushbacks before the user yields (0: yields at once)
  # phrases:                   # optional: your own wordings for a tactic in `tactics`, said first
  #   challenge:
  #     belief: ["How can you be so sure? Everyone says {{belief}}."]
  #     doubt: ["How can you be so sure?"]
  concession: Okay. I suppose you might be right.   # optional: without it, one of the voice's
instructions: ""               # guidance for a model-driven user
"""


def _persona_row(loaded: LoadedPersona) -> tuple[str, ...]:
    p = loaded.persona
    affect = f"{p.affect.emotion} {p.affect.intensity:.1f}"
    return p.id, affect, str(p.pushback.persistence), ", ".join(p.pushback.tactics), p.name


_COLUMNS = ("id", "affect", "persistence", "tactics", "name")
PERSONAS = Kind("persona", builtin_personas, resolve_personas, load_persona, Persona, lambda x: x.persona, _COLUMNS,
                _persona_row)  # fmt: skip
app.command("list")(list_command(PERSONAS))
app.command()(show_command(PERSONAS))


@app.command()
def preview(
    persona: Annotated[str, typer.Argument(help="A built-in id or a file.")],
    scenario: Annotated[str, typer.Argument(help="A built-in scenario id or a file.")],
    condition: Annotated[Condition, typer.Option(help="The condition.")] = Condition.EMOTIONAL_FALSE_BELIEF,
    turns: Annotated[int, typer.Option(min=1, max=50, help="User turns at most.")] = 6,
    seed: Annotated[int, typer.Option(help="The conversation's seed (picks the wordings).")] = 0,
) -> None:
    """Print the user turns the flow would send if every reply got the same label, label by label."""
    with reported():
        loaded = resolve_personas([persona])[0]
        story = resolve_scenarios([scenario])[0]
        paths: dict[tuple[tuple[str, str], ...], list[str]] = {}
        for label in REPLY_LABELS:
            moves = scripted_turns(story, loaded, condition, always(label), seed=seed, max_turns=turns)
            paths.setdefault(tuple((stage, move.text) for stage, move in moves), []).append(str(label))
        p = loaded.persona
        console.print(f"[bold]{p.id}[/] ({p.affect.emotion}, voice {voice_of(p)}) x {story.scenario.id}, {condition}")
        for said, labels in paths.items():
            table = Table("#", "stage", "user turn", title=f"every reply {' / '.join(labels)}", title_justify="left")
            for number, (stage, text) in enumerate(said, start=1):
                table.add_row(str(number), stage, text)
            console.print(table)


app.command()(validate_command(PERSONAS))


@app.command()
def new(
    persona_id: Annotated[str, typer.Argument(metavar="ID", help="The new persona's id.")],
    out: Annotated[Path | None, typer.Option(help="Where to write; default ./ID.yaml.")] = None,
) -> None:
    """Write a commented persona template to fill in."""
    if not re.match(PERSONA_ID, persona_id):
        raise fail(f"invalid id {persona_id!r}: use lowercase letters, digits, - and _")
    path = out or Path(f"{persona_id}.yaml")
    if path.stem != persona_id:
        raise fail(f"the file name must be the id: use --out {path.with_name(persona_id + '.yaml')}")
    if path.exists():
        raise fail(f"{path} exists; choose another id or --out")
    path.write_text(TEMPLATE.format(id=persona_id, path=path), encoding="utf-8")
    console.print(f"wrote {path}; edit it, then run `convsim personas validate {path}`")
    console.print(f"hear its voice with `convsim personas preview {path} SCENARIO`")


app.command()(schema_command(PERSONAS))
