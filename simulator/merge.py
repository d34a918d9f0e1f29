"""`convsim merge`: join the output folders of one plan's shards into one run."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simulator.manifest import MANIFEST, ManifestMismatch
from simulator.store import TRANSCRIPTS, StoreError, read_transcripts

__all__ = ["merge_runs"]


def _manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"{folder} is not a run folder: {exc}") from None
    return manifest


def merge_runs(parts: Sequence[Path], out: Path) -> int:
    """Write the conversations of ``parts`` into ``out`` once each; return how many.

    Raises:
        ManifestMismatch: the parts come from different plans (their fingerprints differ).
        StoreError: a part is not a run folder, or ``out`` already holds transcripts.
    """
    manifests = [_manifest(part) for part in parts]
    fingerprints = {str(m.get("fingerprint")) for m in manifests}
    if len(fingerprints) != 1:
        listing = ", ".join(f"{part} ({m.get('fingerprint')})" for part, m in zip(parts, manifests, strict=True))
        raise ManifestMismatch(f"these runs come from different plans and cannot be merged: {listing}")
    if (out / TRANSCRIPTS).exists():
        raise StoreError(f"{out / TRANSCRIPTS} exists; merge into a new folder")
    out.mkdir(parents=True, exist_ok=True)
    latest = {t.id: t for part in parts for t in read_transcripts(part)}
    ordered = sorted(latest.values(), key=lambda t: t.id)
    temporary = out / (TRANSCRIPTS + ".tmp")
    temporary.write_text("".join(t.model_dump_json(exclude_none=True) + "\n" for t in ordered), encoding="utf-8")
    os.replace(temporary, out / TRANSCRIPTS)
    merged = dict(manifests[0])
    merged["config"] = {**(merged.get("config") or {}), "shard": None}
    merged["merged_from"] = [str(part) for part in parts]
    merged["summary"] = {
        "statuses": dict(Counter(str(t.status) for t in ordered)),
        "errors": dict(Counter(t.error_kind for t in ordered if t.error_kind)),
    }
    (out / MANIFEST).write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
    return len(ordered)
