"""Writing imported scenarios as YAML files, all or none, each proven to load."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import yaml

from personas import FileError, FileErrors
from scenarios.importers.readers import DatasetError
from scenarios.library import load_scenario
from scenarios.model import Scenario

__all__ = ["write_scenarios"]


def _dump(scenario: Scenario) -> str:
    data = scenario.model_dump(mode="json", exclude_defaults=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def write_scenarios(scenarios: list[Scenario], out: Path, *, overwrite: bool = False) -> list[Path]:
    """Write each scenario as ``out/<id>.yaml``, all or none, each proven to load.

    The files are written to a temporary folder inside ``out`` and loaded there with
    :func:`scenarios.load_scenario` (schema, flow and template checks); only when every
    one loads are they moved into ``out``.

    Args:
        scenarios: the scenarios to write; their ids must differ.
        out: the folder to write into (created if need be).
        overwrite: replace files that exist already, instead of refusing.

    Returns:
        The paths written, in the order of ``scenarios``.

    Raises:
        DatasetError: two scenarios share an id, a file exists and ``overwrite`` is
            false, or a written file does not load (nothing is written then).
    """
    out.mkdir(parents=True, exist_ok=True)
    targets = [out / f"{scenario.id}.yaml" for scenario in scenarios]
    errors: list[FileError] = []
    seen: set[Path] = set()
    for target in targets:
        if target in seen:
            errors.append(FileError(str(target), 1, 1, f"scenario id {target.stem!r} given twice"))
        elif target.exists() and not overwrite:
            errors.append(FileError(str(target), 1, 1, "file exists; pass overwrite=True to replace it"))
        seen.add(target)
    if errors:
        raise DatasetError(errors)
    with tempfile.TemporaryDirectory(dir=out, prefix=".convsim-import-") as staging:
        staged = [Path(staging) / target.name for target in targets]
        for scenario, path, target in zip(scenarios, staged, targets, strict=True):
            path.write_text(_dump(scenario), encoding="utf-8")
            try:
                load_scenario(path)
            except FileErrors as exc:
                errors += [dataclasses.replace(error, path=str(target)) for error in exc.errors]
        if errors:
            raise DatasetError(errors)
        for path, target in zip(staged, targets, strict=True):
            os.replace(path, target)
    return targets
