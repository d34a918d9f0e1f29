"""Transcript dumps as tidy pandas frames: one row per reply, one row per conversation.

``load(run_dirs)`` reads each run's ``transcripts.jsonl`` (when an id appears more than once, its
last line wins, as in the transcript store) and its ``manifest.json`` if present. Several runs
concatenate; the ``run`` column names the run folder. Files are parsed by Arrow against a schema
derived from ``scenarios.Transcript`` and every column is computed with numpy (``columnar``), so
a million replies load in seconds; a file the fast path cannot vouch for is read line by line
with the pydantic types instead, which name a bad line (``ValueError: FILE:LINE: ...``).

Turn frame (``TURN_COLUMNS``), one row per reply slot of every transcript (knowledge checks too):

=================  ==========================================================================
run                the run folder's name (made unique when two folders share a name)
id                 the conversation's stable id
kind               ``conversation`` or ``knowledge_check``
status             how the conversation ended: completed, max_turns, context_overflow, error
error_kind         why it stopped early (connection, timeout, http, malformed, judge, ...), or NA
persona, affect    the simulated user and its emotion (NA for knowledge checks)
scenario, domain   the false belief talked about, and its domain
condition          neutral, emotional, false_belief or emotional+false_belief
target, model      the target's name in the run, and the served model
seed, max_turns    the conversation's seed and turn limit
turn               1-based index of the reply in the conversation
stage              the flow stage the reply answered (open, pushback, probe, ...)
label              corrects, hedges, evades, affirms, refuses; NA (or ``error``) for no usable reply
judge              the judge that gave the label
evidence           the judge's evidence
judge_confidence   the judge's own confidence, when it gave one
accurate           probe replies and knowledge checks: the answer holds the truth (nullable boolean)
prompt_tokens      as the server reported them (nullable integer)
completion_tokens  as the server reported them (nullable integer)
latency_s          seconds the request took
attempts           requests it took (retries included)
finish_reason      the server's finish reason
is_error           True when the reply has no usable label (a failed request, or a label ``error``)
replied            False for the last user turn of a failed conversation, which got no reply
confidence         exp(mean token logprob) of the reply, where logprobs were recorded
first_token_prob   exp(logprob of the first token), where logprobs were recorded
user_generated     the user message was written by a user model (nullable boolean)
fidelity           what that generated user message got wrong (comma-separated flags such as
                   broke_character, dropped_belief, contradicted_scenario), or NA
is_fidelity_error  True when the user message had a fidelity flag: a simulator failure, so the
                   reply is left out like an error turn (and counted apart from error turns)
=================  ==========================================================================

Conversation frame (``CONVERSATION_COLUMNS``), one row per transcript:

=====================  ======================================================================
run ... max_turns      as in the turn frame; ``error`` holds the failure's message
n_replies              reply slots (error turns included)
n_labelled             replies with a usable label
n_error_turns          reply slots without a usable label
is_error               the conversation ended with status ``error``
first_label            label of the first usable reply
final_label            label of the last usable reply
first_correction_turn  turn of the first ``corrects`` (nullable integer)
corrected_turn1        the first reply corrects
ever_corrected         some reply corrects
tof, nof               SYCON-Bench Turn of Flip and Number of Flips (see ``sequences``)
capitulated            some reply corrects and a later one affirms
capitulation_turn      turn of that first later ``affirms`` (nullable integer)
persistence            share of the usable replies after the first correction that still correct
survival_turns         turn of capitulation, else of the last usable reply (Kaplan-Meier time)
knowledge_accurate     the knowledge check of the same run, scenario and target was accurate
probe_accuracy         share of this conversation's probe replies that were accurate
prompt_tokens          sum over the replies
completion_tokens      sum over the replies
duration_s             wall time of the conversation
started_at             ISO time the conversation started
n_fidelity_errors      replies that answered a user message with a fidelity flag (left out of
                       the label sequence, like error turns, but not counted in n_error_turns)
=====================  ======================================================================
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scenarios import Transcript
from scoring.analysis.columnar import conversation_columns, pa, read_table, table_from_transcripts, turn_columns

__all__ = [
    "CONVERSATION_COLUMNS",
    "TRANSCRIPTS",
    "TURN_COLUMNS",
    "Frames",
    "load",
    "read_manifest",
    "read_run",
    "run_names",
]

TRANSCRIPTS = "transcripts.jsonl"
MANIFEST = "manifest.json"

_META = (
    "run", "id", "kind", "status", "error_kind", "persona", "affect", "scenario", "domain",
    "condition", "target", "model", "seed", "max_turns",
)  # fmt: skip
TURN_COLUMNS: tuple[str, ...] = (
    *_META,
    "turn", "stage", "label", "judge", "evidence", "judge_confidence", "accurate",
    "prompt_tokens", "completion_tokens", "latency_s", "attempts", "finish_reason",
    "is_error", "replied", "confidence", "first_token_prob", "user_generated", "fidelity", "is_fidelity_error",
)  # fmt: skip
"""The turn frame's columns, in order (a stable interface: add at the end, never rename)."""

CONVERSATION_COLUMNS: tuple[str, ...] = (
    *_META,
    "error", "n_replies", "n_labelled", "n_error_turns", "is_error", "first_label", "final_label",
    "first_correction_turn", "corrected_turn1", "ever_corrected", "tof", "nof", "capitulated",
    "capitulation_turn", "persistence", "survival_turns", "knowledge_accurate", "probe_accuracy",
    "prompt_tokens", "completion_tokens", "duration_s", "started_at", "n_fidelity_errors",
)  # fmt: skip
"""The conversation frame's columns, in order (a stable interface: add at the end, never rename)."""

_TEXT_COLUMNS = ("user_text", "reply_text")

_STR = "str"
_STRINGS = ("run", "id", "kind", "status", "error_kind", "persona", "affect", "scenario", "domain", "condition",
            "target", "model")  # fmt: skip
_INT = "Int64"
_FLOAT = "float64"
_BOOL = "boolean"
_TURN_TYPES: dict[str, str] = {
    **dict.fromkeys((*_STRINGS, "stage", "label", "judge", "evidence", "finish_reason"), _STR),
    "seed": "int64", "max_turns": "int64", "turn": "int64", "judge_confidence": _FLOAT, "accurate": _BOOL,
    "prompt_tokens": _INT, "completion_tokens": _INT, "latency_s": _FLOAT, "attempts": _INT,
    "is_error": "bool", "replied": "bool", "confidence": _FLOAT, "first_token_prob": _FLOAT,
    "user_generated": _BOOL, "fidelity": _STR, "is_fidelity_error": "bool",
}  # fmt: skip
_CONVERSATION_TYPES: dict[str, str] = {
    **dict.fromkeys((*_STRINGS, "error", "first_label", "final_label", "started_at"), _STR),
    "seed": "int64", "max_turns": "int64", "n_replies": "int64", "n_labelled": "int64",
    "n_error_turns": "int64", "is_error": "bool", "first_correction_turn": _INT, "corrected_turn1": "bool",
    "ever_corrected": "bool", "tof": _INT, "nof": _INT, "capitulated": "bool", "capitulation_turn": _INT,
    "persistence": _FLOAT, "survival_turns": _INT, "knowledge_accurate": _BOOL, "probe_accuracy": _FLOAT,
    "prompt_tokens": _INT, "completion_tokens": _INT, "duration_s": _FLOAT, "n_fidelity_errors": "int64",
}  # fmt: skip


@dataclass
class Frames:
    """A run's (or several runs') transcripts as frames.

    Attributes:
        turns: one row per reply slot, columns ``TURN_COLUMNS`` (plus ``user_text`` and
            ``reply_text`` when loaded with ``text=True``).
        conversations: one row per transcript, columns ``CONVERSATION_COLUMNS``.
        manifests: each run's ``manifest.json``, by run name (absent runs are left out).
    """

    turns: pd.DataFrame
    conversations: pd.DataFrame
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def runs(self) -> list[str]:
        """The run names, in load order."""
        return list(dict.fromkeys(self.conversations["run"]))

    def to_parquet(self, folder: Path) -> list[Path]:
        """Write ``turns.parquet`` and ``conversations.parquet`` into ``folder``; return the paths."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / "turns.parquet", folder / "conversations.parquet"]
        self.turns.to_parquet(paths[0], index=False)
        self.conversations.to_parquet(paths[1], index=False)
        return paths

    def to_csv(self, folder: Path) -> list[Path]:
        """Write ``turns.csv`` and ``conversations.csv`` into ``folder``; return the paths."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / "turns.csv", folder / "conversations.csv"]
        self.turns.to_csv(paths[0], index=False)
        self.conversations.to_csv(paths[1], index=False)
        return paths


def _transcript_file(path: Path) -> Path:
    return path / TRANSCRIPTS if path.is_dir() else path


def read_run(path: Path) -> Iterator[Transcript]:
    """Every transcript of a run (its folder or its ``.jsonl``); the last line of an id wins.

    Transcripts come in the order of their winning lines. A last line without its newline
    (a write cut short) is skipped.

    Raises:
        ValueError: a line is not a transcript (the message names the file and line).
    """
    file = _transcript_file(path)
    latest: dict[str, tuple[int, Transcript]] = {}
    with file.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith("\n") or not line.strip():
                continue
            try:
                transcript = Transcript.model_validate_json(line)
            except ValueError as exc:
                raise ValueError(f"{file}:{number}: not a transcript line ({_first_line(exc)})") from None
            latest.pop(transcript.id, None)  # re-insert: dict order follows the last line
            latest[transcript.id] = (number, transcript)
    for _, transcript in latest.values():
        yield transcript


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The ``manifest.json`` beside a run's transcripts (its folder or its ``.jsonl``), or None."""
    manifest = _transcript_file(path).parent / MANIFEST
    if not manifest.exists():
        return None
    loaded: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
    return loaded


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200]


def run_names(paths: Sequence[Path]) -> list[str]:
    """A unique, short name per run: the folder's name, with parent folders added where names collide.

    A run given as ``DIR/transcripts.jsonl`` is named after ``DIR``; another ``.jsonl`` file after its stem.
    """
    bases = [p.parent if p.name == TRANSCRIPTS else p.with_suffix("") if p.suffix == ".jsonl" else p for p in paths]
    parts = [b.resolve().parts for b in bases]
    for depth in range(1, max((len(p) for p in parts), default=1) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [str(b) for b in bases]


def _frames_for(file: Path, run: str, text: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One run's turn and conversation frames (columnar: see ``columnar``)."""
    table = read_table(file, text)
    if table is None:  # the careful path: names a bad line, or accepts what Arrow was too strict about
        table = table_from_transcripts(read_run(file))
    size = table.num_rows
    meta = {name: table[name].to_numpy(zero_copy_only=False) for name in _META[1:]}
    turn_values, conversation = turn_columns(table, text)
    conversation_values = conversation_columns(turn_values, conversation, size)
    rows = pa.array(conversation)  # the metadata is taken in Arrow: no Python strings per row
    turns = pd.DataFrame(
        {
            "run": np.full(len(conversation), run, dtype=object),
            **{k: table[k].take(rows).to_pandas() for k in _META[1:]},
            **turn_values,
        }
    )
    first_accurate = conversation_values.pop("first_reply_accurate")
    is_check = meta["kind"] == "knowledge_check"
    conversations = pd.DataFrame(
        {
            "run": np.full(size, run, dtype=object),
            **meta,
            "error": table["error"].to_numpy(zero_copy_only=False),
            "is_error": meta["status"] == "error",
            "knowledge_accurate": np.where(is_check, first_accurate, None),
            "duration_s": table["duration_s"].to_numpy(zero_copy_only=False),
            "started_at": table["started_at"].to_numpy(zero_copy_only=False),
            **conversation_values,
        }
    )
    return turns, conversations


def _typed(frame: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    for column, dtype in types.items():
        if column in frame.columns and frame[column].dtype != dtype:
            frame[column] = frame[column].astype(dtype)  # type: ignore[call-overload]
    return frame


def _with_knowledge(conversations: pd.DataFrame) -> pd.DataFrame:
    checks = conversations[conversations["kind"] == "knowledge_check"]
    if checks.empty:
        return conversations
    scored = checks.loc[checks["knowledge_accurate"].notna()].astype({"knowledge_accurate": bool})
    known = scored.groupby(["run", "scenario", "target"], dropna=False)["knowledge_accurate"].all()
    keys = pd.MultiIndex.from_frame(conversations[["run", "scenario", "target"]])
    mapped = known.reindex(keys).to_numpy()
    is_conversation = (conversations["kind"] == "conversation").to_numpy()
    conversations.loc[is_conversation, "knowledge_accurate"] = mapped[is_conversation]
    return conversations


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame(columns=columns)
    joined = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return joined[columns]


def load(run_dirs: Iterable[Path | str], *, text: bool = False) -> Frames:
    """Load runs into frames.

    Args:
        run_dirs: run folders (or their ``transcripts.jsonl`` files).
        text: also keep each reply slot's user message and reply (``user_text``, ``reply_text``).

    Returns:
        The turn and conversation frames, with each run's manifest.

    Raises:
        FileNotFoundError: a run has no transcript file.
        ValueError: a line is not a transcript.
    """
    paths = [Path(p) for p in run_dirs]
    names = run_names(paths)
    turn_frames: list[pd.DataFrame] = []
    conversation_frames: list[pd.DataFrame] = []
    manifests: dict[str, dict[str, Any]] = {}
    for name, path in zip(names, paths, strict=True):
        file = _transcript_file(path)
        if not file.exists():
            raise FileNotFoundError(f"{path}: no {TRANSCRIPTS} here")
        manifest = read_manifest(path)
        if manifest is not None:
            manifests[name] = manifest
        turns, conversations = _frames_for(file, name, text)
        turn_frames.append(turns)
        conversation_frames.append(conversations)
    turn_columns_ = [*TURN_COLUMNS, *_TEXT_COLUMNS] if text else list(TURN_COLUMNS)
    turns = _typed(_concat(turn_frames, turn_columns_), _TURN_TYPES)
    conversations = _typed(_concat(conversation_frames, list(CONVERSATION_COLUMNS)), _CONVERSATION_TYPES)
    return Frames(turns=turns, conversations=_with_knowledge(conversations), manifests=manifests)
