"""The `convsim` command: its subcommands, wired together."""

from __future__ import annotations

import typer

from simulator.cli import _analyze, _judges, _personas, _run, _scenarios, _schema, _servers

app = typer.Typer(
    name="convsim",
    help="Multi-turn conversations between simulated users and target models, labelled turn by turn.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(_run.run)
app.command()(_run.replay)
app.command()(_run.merge)
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(_servers.serve)
app.command()(_servers.doctor)
app.command()(_judges.score)
app.command()(_analyze.analyze)
app.command()(_analyze.show)
app.command()(_analyze.view)
app.command("judge-eval")(_judges.judge_eval)
app.command("judge-train")(_judges.judge_train)
app.add_typer(_personas.app, name="personas")
app.add_typer(_scenarios.app, name="scenarios")
app.add_typer(_schema.config_app, name="config")


def main() -> None:
    """Entry point of the `convsim` console script."""
    app()
