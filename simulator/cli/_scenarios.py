"""`convsim scenarios ...`: list, show, validate, graph."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.table import Table

from personas import load_all
from scenarios import LoadedScenario, builtin_scenarios, load_scenario, resolve_scenarios
from simulator.cli._errors import reported

app = typer.Typer(help="Scenarios: list, show, check and draw them.", no_args_is_help=True)
console = Console()


@app.command("list")
def list_scenarios() -> None:
    """List the built-in scenarios."""
    with reported():
        table = Table("id", "domain", "flow", "title")
        table.columns[0].no_wrap = True
        for loaded in builtin_scenarios().values():
            s = loaded.scenario
            table.add_row(s.id, str(s.domain), s.flow if isinstance(s.flow, str) else "(own)", s.title)
        console.print(table)


@app.command()
def show(scenario: Annotated[str, typer.Argument(help="A built-in id or a file.")]) -> None:
    """Print a scenario as YAML."""
    with reported():
        loaded = resolve_scenarios([scenario])[0]
        console.print(f"# {loaded.source}", style="dim")
        print(yaml.safe_dump(loaded.scenario.model_dump(mode="json", exclude_defaults=True), sort_keys=False))


@app.command()
def validate(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders; none checks the library.")] = None,
) -> None:
    """Check scenario files: schema, flow graph, templates. Exit 2 with file:line:column lines if wrong."""
    with reported():
        if not paths:
            count = len(builtin_scenarios())
        else:
            files = [f for p in paths for f in (sorted(p.glob("*.yaml")) if p.is_dir() else [p])]
            count = len(load_all(load_scenario, files))
        console.print(f"{count} scenario(s) valid")


def mermaid(loaded: LoadedScenario) -> str:
    """The scenario's flow as a Mermaid flowchart."""
    graph = loaded.flow.graph()
    lines = ["flowchart TD"]
    # Node ids get a prefix: Mermaid reserves words such as `end`.
    for name, data in graph.nodes(data=True):
        shape = f'(["{name}"])' if str(data["kind"]) == "end" else f'["{name}<br/><small>{data["kind"]}</small>"]'
        lines.append(f"    s_{name}{shape}")
    lines.append(f"    flow_start((start)) --> s_{loaded.flow.start}")
    for source, target, data in graph.edges(data=True):
        lines.append(f"    s_{source} -->|{' / '.join(sorted(data['on']))}| s_{target}")
    return "\n".join(lines)


@app.command()
def graph(scenario: Annotated[str, typer.Argument(help="A built-in id or a file.")]) -> None:
    """Print the scenario's flow graph as Mermaid (paste into any Mermaid viewer)."""
    with reported():
        print(mermaid(resolve_scenarios([scenario])[0]))
