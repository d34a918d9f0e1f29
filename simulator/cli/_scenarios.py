"""`convsim scenarios ...`: list, show, validate, schema, graph, import."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from scenarios import LoadedScenario, Scenario, builtin_scenarios, load_scenario, resolve_scenarios
from scenarios.importers import (
    TABLE_FIELDS,
    import_sycon,
    import_table,
    import_truthfulqa,
    import_warm_paper,
    write_scenarios,
)
from simulator.cli._errors import reported
from simulator.cli._library import Kind, list_command, schema_command, show_command, validate_command

app = typer.Typer(help="Scenarios: list, show, check and draw them.", no_args_is_help=True)
console = Console()


def _scenario_row(loaded: LoadedScenario) -> tuple[str, ...]:
    s = loaded.scenario
    return s.id, str(s.domain), s.flow if isinstance(s.flow, str) else "(own)", s.title


SCENARIOS = Kind("scenario", builtin_scenarios, resolve_scenarios, load_scenario, Scenario, lambda x: x.scenario,
                 ("id", "domain", "flow", "title"), _scenario_row, checks="flow graph, templates")  # fmt: skip
app.command("list")(list_command(SCENARIOS))
app.command()(show_command(SCENARIOS))
app.command()(validate_command(SCENARIOS))
app.command()(schema_command(SCENARIOS))


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


import_app = typer.Typer(help="Build scenario files from published datasets.", no_args_is_help=True)
app.add_typer(import_app, name="import")

OutOption = Annotated[Path, typer.Option("--out", help="Folder for the scenario files (one per item).")]
OverwriteOption = Annotated[bool, typer.Option(help="Replace scenario files that exist.")]


def _write(scenarios: list[Scenario], out: Path, overwrite: bool) -> None:
    paths = write_scenarios(scenarios, out, overwrite=overwrite)
    console.print(f"wrote {len(paths)} scenario(s) to {out}; run them with `convsim run --scenario {out}`")


@import_app.command("sycon")
def import_sycon_command(
    folder: Annotated[Path, typer.Argument(help="SYCON-Bench's false-presuppositions folder.")],
    out: OutOption = Path("scenarios-sycon"),
    overwrite: OverwriteOption = False,
) -> None:
    """SYCON-Bench false presuppositions: the question, then its four pushbacks verbatim (the 5-turn protocol)."""
    with reported():
        _write(import_sycon(folder), out, overwrite)


@import_app.command("truthfulqa")
def import_truthfulqa_command(
    csv_file: Annotated[Path, typer.Argument(metavar="FILE", help="TruthfulQA.csv.")],
    out: OutOption = Path("scenarios-truthfulqa"),
    overwrite: OverwriteOption = False,
) -> None:
    """TruthfulQA: each question's (best) incorrect answer becomes the user's false belief."""
    with reported():
        _write(import_truthfulqa(csv_file), out, overwrite)


@import_app.command("warm-paper")
def import_warm_paper_command(
    csv_files: Annotated[list[Path], typer.Argument(metavar="CSV...", help="The paper's *_outputs.csv files.")],
    out: OutOption = Path("scenarios-warm-paper"),
    overwrite: OverwriteOption = False,
) -> None:
    """The warm-model paper's prompt files: each row's prompt as the first turn, verbatim, in its condition."""
    with reported():
        _write(import_warm_paper(csv_files), out, overwrite)


def _pairs(items: list[str] | None, flag: str) -> dict[str, str]:
    pairs = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{flag} takes FIELD=VALUE, not {item!r}")
        pairs[key] = value
    return pairs


@import_app.command("table")
def import_table_command(
    table: Annotated[Path, typer.Argument(metavar="FILE", help="A .csv or .jsonl file.")],
    mapping: Annotated[list[str], typer.Option("--map", help=f"FIELD=COLUMN; fields: {', '.join(TABLE_FIELDS)}.")],
    default: Annotated[list[str] | None, typer.Option(help="FIELD=VALUE for fields no column holds.")] = None,
    out: OutOption = Path("scenarios-imported"),
    overwrite: OverwriteOption = False,
) -> None:
    """Any CSV or JSONL table, with a column for each scenario field you map."""
    with reported():
        try:
            scenarios = import_table(table, _pairs(mapping, "--map"), _pairs(default, "--default"))
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        _write(scenarios, out, overwrite)
