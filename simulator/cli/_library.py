"""The commands persona and scenario libraries share: list, show, validate, schema; made for each kind.

No ``from __future__ import annotations`` here: typer reads the commands' annotations, which name
each kind's own words, so they must be evaluated where the command is made.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

import typer
import yaml
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from personas import load_all, yaml_files
from simulator.cli._errors import reported
from simulator.cli._schema import print_schema

__all__ = ["Kind", "list_command", "schema_command", "show_command", "validate_command"]

LoadedT = TypeVar("LoadedT")
console = Console()


@dataclass(frozen=True)
class Kind(Generic[LoadedT]):
    """One kind of library item, as the shared commands need it.

    Attributes:
        noun: what an item is called (``persona``).
        library: the built-in items by id.
        resolve: references (ids, files) to items.
        load_file: loads one file.
        model: the item's model (its schema, and what ``show`` prints).
        item: an item's model instance.
        columns: the ``list`` table's columns.
        row: an item's ``list`` row.
        checks: what ``validate`` checks besides the schema, for its help.
    """

    noun: str
    library: Callable[[], Mapping[str, LoadedT]]
    resolve: Callable[[list[str]], list[LoadedT]]
    load_file: Callable[[Path], LoadedT]
    model: type[BaseModel]
    item: Callable[[LoadedT], BaseModel]
    columns: tuple[str, ...]
    row: Callable[[LoadedT], tuple[str, ...]]
    checks: str = ""


def list_command(kind: Kind[Any]) -> Callable[[], None]:
    """``list``: the built-in items as a table."""

    def list_items() -> None:
        with reported():
            table = Table(*kind.columns)
            table.columns[0].no_wrap = True
            for loaded in kind.library().values():
                table.add_row(*kind.row(loaded))
            console.print(table)

    list_items.__doc__ = f"List the built-in {kind.noun}s."
    return list_items


def show_command(kind: Kind[Any]) -> Callable[[str], None]:
    """``show``: one item as YAML, under the name of its file."""

    def show(ref: Annotated[str, typer.Argument(metavar=kind.noun.upper(), help="A built-in id or a file.")]) -> None:
        with reported():
            loaded = kind.resolve([ref])[0]
            console.print(f"# {loaded.source}", style="dim")
            print(yaml.safe_dump(kind.item(loaded).model_dump(mode="json", exclude_defaults=True), sort_keys=False))

    show.__doc__ = f"Print a {kind.noun} as YAML."
    return show


def validate_command(kind: Kind[Any]) -> Callable[[list[Path] | None], None]:
    """``validate``: files and folders of files checked, every problem printed."""

    def validate(
        paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders; none checks the library.")] = None,
    ) -> None:
        with reported():
            count = len(load_all(kind.load_file, yaml_files(paths))) if paths else len(kind.library())
            console.print(f"{count} {kind.noun}(s) valid")

    checks = f": schema, {kind.checks}" if kind.checks else ""
    validate.__doc__ = (
        f"Check {kind.noun} files (every .yaml file of a folder){checks}; "
        "print every problem as file:line:column, exit 2 if any."
    )
    return validate


def schema_command(kind: Kind[Any]) -> Callable[[], None]:
    """``schema``: the item's JSON Schema."""

    def schema() -> None:
        print_schema(kind.model)

    schema.__doc__ = f"Print the {kind.noun} JSON Schema (for editors' YAML validation)."
    return schema
