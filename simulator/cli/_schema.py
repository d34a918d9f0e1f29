"""JSON Schemas of the files users write, and `convsim config schema`."""

from __future__ import annotations

import json

import typer
from pydantic import BaseModel

from simulator.config import RunConfig

__all__ = ["config_app", "print_schema"]

config_app = typer.Typer(help="The run config file (`convsim run --config FILE`).", no_args_is_help=True)


def print_schema(model: type[BaseModel]) -> None:
    """Print a model's JSON Schema on stdout, for editors' YAML validation."""
    print(json.dumps(model.model_json_schema(), indent=2))


@config_app.command()
def schema() -> None:
    """Print the run config JSON Schema (for editors' YAML validation)."""
    print_schema(RunConfig)
