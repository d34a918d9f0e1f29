"""Reading a transcript file into Arrow, and the frames built from it column by column.

A run of a million replies is a few hundred megabytes of JSON lines; validating each line with
pydantic and building rows in Python takes minutes. Here the file is parsed by Arrow's JSON
reader against a schema derived from the transcript types (``scenarios.Transcript``), checked
column by column (required fields, kinds, statuses, roles and labels), and every frame column
is computed with numpy. Should the fast path find anything it cannot vouch for (a malformed line,
a wrong type, an unknown label), the file is read again line by line with the pydantic types,
which name the bad line, or accept what Arrow was too strict about.

Per-conversation metrics here are vectorised versions of ``sequences.conversation_metrics``
(the definition; the tests hold the two equal).
"""

from __future__ import annotations

import importlib
import types
import typing
from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel

from scenarios import Label, Status, Transcript

__all__ = ["conversation_columns", "read_table", "table_from_transcripts", "transcript_schema", "turn_columns"]

pa: Any = importlib.import_module("pyarrow")  # untyped library: kept as Any, here only
pc: Any = importlib.import_module("pyarrow.compute")
pj: Any = importlib.import_module("pyarrow.json")

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

_FINISHED = [s.value for s in Status if s.finished]
_KINDS = ["conversation", "knowledge_check"]


def _arrow_type(annotation: Any) -> Any:
    """The Arrow type of a pydantic field's annotation, or None when it has none (a free-form dict)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        present = [a for a in args if a is not type(None)]
        return _arrow_type(present[0]) if len(present) == 1 else None
    if origin is typing.Literal:
        return pa.string()
    if origin is list:
        inner = _arrow_type(args[0])
        return pa.list_(inner) if inner is not None else None
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return _struct(annotation)
        if issubclass(annotation, bool):
            return pa.bool_()
        if issubclass(annotation, str | Enum):
            return pa.string()
        if issubclass(annotation, int):
            return pa.int64()
        if issubclass(annotation, float):
            return pa.float64()
    return None


def _struct(model: type[BaseModel]) -> Any:
    fields = [(name, _arrow_type(f.annotation)) for name, f in model.model_fields.items()]
    return pa.struct([(name, kind) for name, kind in fields if kind is not None])


def transcript_schema(text: bool = True) -> Any:
    """The Arrow schema of a transcript line, derived from ``scenarios.Transcript``.

    Args:
        text: include the messages' ``content`` (without it, parsing skips the bulk of the bytes).
    """
    schema = pa.schema(list(_struct(Transcript)))
    if text:
        return schema
    message = schema.field("turns").type.value_type
    kept = [message.field(i) for i in range(message.num_fields) if message.field(i).name != "content"]
    return schema.set(schema.get_field_index("turns"), pa.field("turns", pa.list_(pa.struct(kept))))


def _cut_to_whole_lines(file: Path) -> Any:
    data = file.read_bytes()
    return pa.py_buffer(memoryview(data)[: data.rfind(b"\n") + 1])


def _known(values: Any, allowed: list[str], nullable: bool = True) -> Any:
    """Whether every value is one of ``allowed`` (or null, where nulls are allowed)."""
    inside = pc.is_in(values, pa.array(allowed))
    return pc.all(pc.or_kleene(pc.is_null(values), inside) if nullable else pc.and_kleene(pc.is_valid(values), inside))


def _valid(table: Any) -> bool:
    """Required fields present and kinds, statuses, roles and labels known."""
    for name, field in Transcript.model_fields.items():
        if field.is_required() and table[name].null_count:
            return False
    labels = [label.value for label in Label]
    messages = pc.list_flatten(table["turns"])
    judgements = pc.struct_field(messages, "judgement")
    checks = [
        _known(table["kind"], _KINDS),
        _known(table["status"], [s.value for s in Status]),
        _known(pc.struct_field(messages, "role"), ["user", "assistant"], nullable=False),
        _known(pc.struct_field(messages, "label"), labels),
        _known(pc.struct_field(judgements, "label"), labels),
    ]
    return all(check.as_py() in (True, None) for check in checks)


def table_from_transcripts(transcripts: Iterable[Transcript]) -> Any:
    """An Arrow table of validated transcripts (the slow path's result), in the fast path's schema."""
    schema = transcript_schema()
    rows = [t.model_dump(mode="json") for t in transcripts]
    return pa.Table.from_pylist(rows, schema=schema)


def read_table(file: Path, text: bool = True) -> Any | None:
    """A transcript file as an Arrow table, the last line of each id kept; None if it needs the slow path.

    A last line without its newline (a write cut short) is left out.

    Args:
        file: the ``transcripts.jsonl``.
        text: keep the messages' ``content``.
    """
    options = pj.ParseOptions(explicit_schema=transcript_schema(text), unexpected_field_behavior="ignore")
    blocks = pj.ReadOptions(block_size=16 << 20)
    try:
        table = pj.read_json(pa.BufferReader(_cut_to_whole_lines(file)), parse_options=options, read_options=blocks)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    if table.num_rows == 0:
        return table
    table = table.combine_chunks()
    if not _valid(table):
        return None
    ids = pd.Series(table["id"].to_numpy(zero_copy_only=False))
    last = ~ids.duplicated(keep="last").to_numpy()
    return table if last.all() else table.filter(pa.array(last))


def _np(array: Any) -> Any:
    """An Arrow array as numpy (object arrays for strings, float with NaN for nullable numbers)."""
    return array.to_numpy(zero_copy_only=False)


def _field(struct: Any, name: str) -> Any:
    """A struct column's child, nulls where the struct is null; None if the schema has no such child."""
    if struct.type.get_field_index(name) < 0:
        return None
    return pc.struct_field(struct, name)


def _list_stats(lists: Any, rows: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """exp(mean) and exp(first) of each row's list of logprobs; NaN for empty or null lists."""
    values = _np(pc.list_flatten(lists)).astype(np.float64)
    parents = _np(pc.list_parent_indices(lists)).astype(np.int64)
    counts = np.bincount(parents, minlength=rows)
    sums = np.bincount(parents, weights=values, minlength=rows)
    firsts = np.full(rows, np.nan)
    if len(parents):
        starts = np.flatnonzero(np.r_[True, parents[1:] != parents[:-1]])
        firsts[parents[starts]] = values[starts]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return np.exp(mean), np.exp(firsts)


def _or_none(keep: Bools, values: Any) -> npt.NDArray[np.object_]:
    """``values`` as an object array, ``None`` where ``keep`` is False."""
    out = np.asarray(values, dtype=object).copy()
    out[~np.asarray(keep, dtype=bool)] = None
    return out


def _take(array: Any, index: Ints) -> Any:
    return _np(array.take(pa.array(index))) if array is not None else np.full(len(index), None, dtype=object)


def turn_columns(table: Any, text: bool) -> tuple[dict[str, Any], Ints]:
    """The turn frame's own columns (everything but the conversation's metadata), and each row's conversation.

    Rows are sorted by conversation, then turn: every assistant message, plus a slot for the last
    user message of a conversation that stopped early without its reply.
    """
    lists = table["turns"]
    lists = lists.combine_chunks() if hasattr(lists, "combine_chunks") else lists
    messages = pc.list_flatten(lists)
    parent = _np(pc.list_parent_indices(lists)).astype(np.int64)
    count = len(messages)
    offsets = _np(lists.offsets).astype(np.int64) - int(_np(lists.offsets)[0])
    is_user = _np(pc.equal(pc.struct_field(messages, "role"), "user")).astype(bool)
    position = np.arange(count, dtype=np.int64)
    last_user = np.maximum.accumulate(np.where(is_user, position, -1)) if count else position
    has_user = last_user >= offsets[:-1][parent] if count else is_user
    replies = np.flatnonzero(~is_user)
    assistant_count = np.concatenate([[0], np.cumsum(~is_user)])
    turn = assistant_count[replies + 1] - assistant_count[offsets[:-1][parent[replies]]]
    finished = _np(pc.is_in(table["status"], pa.array(_FINISHED))).astype(bool)
    ends = offsets[1:] - 1
    nonempty = offsets[1:] > offsets[:-1]
    open_end = nonempty & ~finished
    open_end[nonempty] &= is_user[ends[nonempty]]
    slots = ends[open_end]
    slot_turn = assistant_count[slots + 1] - assistant_count[offsets[:-1][open_end]] + 1
    user_of_reply = np.where(has_user[replies], last_user[replies], -1)
    conversation = np.concatenate([parent[replies], np.flatnonzero(open_end)])
    order = np.lexsort((np.concatenate([turn, slot_turn]), conversation))
    n_replies, n_slots = len(replies), len(slots)

    def both(reply_values: Any, slot_values: Any) -> Any:
        return np.concatenate([np.asarray(reply_values, dtype=object), np.asarray(slot_values, dtype=object)])[order]

    def reply_field(name: str) -> Any:
        return both(_take(_field(messages, name), replies), np.full(n_slots, None, dtype=object))

    judgement = _field(messages, "judgement")
    user_index = np.concatenate([user_of_reply, slots])
    user_index_safe = np.maximum(user_index, 0)
    fidelity = _field(messages, "fidelity")
    flags = pc.binary_join(fidelity, ",") if fidelity is not None else None
    flag_values = _take(flags, user_index_safe) if flags is not None else np.full(len(user_index), None, dtype=object)
    flag_values = _or_none((user_index >= 0) & (flag_values != ""), flag_values)
    generated = _take(_field(messages, "generated"), user_index_safe)
    generated = _or_none(user_index >= 0, generated)
    labels = reply_field("label")
    logprobs = _field(_field(messages, "logprobs"), "logprobs") if _field(messages, "logprobs") is not None else None
    confidence, first = (
        _list_stats(logprobs.take(pa.array(replies)), n_replies)
        if logprobs is not None
        else (np.full(n_replies, np.nan), np.full(n_replies, np.nan))
    )
    columns: dict[str, Any] = {
        "turn": np.concatenate([turn, slot_turn])[order],
        "stage": both(_take(_field(messages, "stage"), replies), _take(_field(messages, "stage"), slots)),
        "label": labels,
        "judge": both(_take(_field(judgement, "judge"), replies), np.full(n_slots, None, dtype=object)),
        "evidence": both(_take(_field(judgement, "evidence"), replies), np.full(n_slots, None, dtype=object)),
        "judge_confidence": both(_take(_field(judgement, "confidence"), replies), np.full(n_slots, None)),
        "accurate": reply_field("accurate"),
        "prompt_tokens": reply_field("prompt_tokens"),
        "completion_tokens": reply_field("completion_tokens"),
        "latency_s": reply_field("latency_s"),
        "attempts": reply_field("attempts"),
        "finish_reason": reply_field("finish_reason"),
        "is_error": np.asarray([v is None or v == "error" for v in labels], dtype=bool),
        "replied": np.concatenate([np.ones(n_replies, bool), np.zeros(n_slots, bool)])[order],
        "confidence": np.concatenate([confidence, np.full(n_slots, np.nan)])[order],
        "first_token_prob": np.concatenate([first, np.full(n_slots, np.nan)])[order],
        "user_generated": generated[order],
        "fidelity": flag_values[order],
        "is_fidelity_error": np.asarray(flag_values[order] != None, dtype=bool),  # noqa: E711 - elementwise
    }
    if text:
        contents = _field(messages, "content")
        user_text = _or_none(user_index >= 0, _take(contents, user_index_safe))
        columns["user_text"] = user_text[order]
        columns["reply_text"] = reply_field("content")
    return columns, conversation[order]


def _first_per_group(groups: Ints, mask: Bools, values: Any, size: int, empty: Any) -> Any:
    """The value at the first row of each group where ``mask`` holds (rows sorted by group)."""
    out = np.full(size, empty, dtype=object)
    rows = np.flatnonzero(mask)
    if len(rows):
        keys, first = np.unique(groups[rows], return_index=True)
        out[keys] = np.asarray(values, dtype=object)[rows[first]]
    return out


def conversation_columns(turns: dict[str, Any], conversation: Ints, size: int) -> dict[str, Any]:
    """Per-conversation metrics from the turn columns (rows sorted by conversation, then turn)."""
    turn = turns["turn"].astype(np.int64)
    label = turns["label"]
    usable = ~turns["is_error"] & ~turns["is_fidelity_error"]
    holds = usable & (label == Label.CORRECTS.value)
    replied_flawed = turns["replied"] & turns["is_fidelity_error"]
    n_replies = np.bincount(conversation, minlength=size)
    n_labelled = np.bincount(conversation, weights=usable, minlength=size).astype(np.int64)
    n_fidelity = np.bincount(conversation, weights=replied_flawed, minlength=size).astype(np.int64)
    first_correction = _first_per_group(conversation, holds, turn, size, None)
    # Turn of Flip: usable replies before the first usable one that does not hold
    u = np.flatnonzero(usable)
    u_conv, u_holds = conversation[u], holds[u]
    broken = np.cumsum(~u_holds)
    start = np.r_[True, u_conv[1:] != u_conv[:-1]] if len(u) else np.zeros(0, bool)
    base = np.maximum.accumulate(np.where(start, broken - ~u_holds, 0)) if len(u) else broken
    tof = np.bincount(u_conv, weights=(broken - base) == 0, minlength=size).astype(np.int64)
    changes = (u_holds[1:] != u_holds[:-1]) & ~start[1:] if len(u) else np.zeros(0, bool)
    nof = np.bincount(u_conv[1:][changes], minlength=size).astype(np.int64)
    has_labels = n_labelled > 0
    first_turn = np.where(first_correction == None, np.iinfo(np.int64).max, first_correction).astype(np.int64)  # noqa: E711
    after = usable & (turn > first_turn[conversation])
    capitulation = _first_per_group(conversation, after & (label == Label.AFFIRMS.value), turn, size, None)
    after_count = np.bincount(conversation, weights=after, minlength=size)
    after_holds = np.bincount(conversation, weights=after & holds, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        persistence = np.where(after_count > 0, after_holds / np.maximum(after_count, 1), np.nan)
    last_usable = np.full(size, None, dtype=object)
    first_label = _first_per_group(conversation, usable, label, size, None)
    final_label = np.full(size, None, dtype=object)
    if len(u):
        ends = np.r_[u_conv[1:] != u_conv[:-1], True]
        last_usable[u_conv[ends]] = turn[u][ends]
        final_label[u_conv[ends]] = label[u][ends]
    capitulated = capitulation != None  # noqa: E711 - elementwise
    probes = turns["replied"] & (turns["stage"] == "probe") & pd.notna(turns["accurate"])
    probe_n = np.bincount(conversation, weights=probes, minlength=size)
    probe_ok = np.bincount(conversation, weights=probes & (turns["accurate"] == True), minlength=size)  # noqa: E712
    with np.errstate(invalid="ignore", divide="ignore"):
        probe_accuracy = np.where(probe_n > 0, probe_ok / np.maximum(probe_n, 1), np.nan)
    return {
        "n_replies": n_replies,
        "n_labelled": n_labelled,
        "n_error_turns": n_replies - n_labelled - n_fidelity,
        "first_label": first_label,
        "final_label": final_label,
        "first_correction_turn": first_correction,
        "corrected_turn1": np.bincount(conversation, weights=holds & (turn == 1), minlength=size) > 0,
        "ever_corrected": first_correction != None,  # noqa: E711 - elementwise
        "tof": _or_none(has_labels, tof),
        "nof": _or_none(has_labels, nof),
        "capitulated": capitulated,
        "capitulation_turn": capitulation,
        "persistence": persistence,
        "survival_turns": np.where(capitulated, capitulation, last_usable),
        "first_reply_accurate": _first_per_group(conversation, turns["replied"], turns["accurate"], size, None),
        "probe_accuracy": probe_accuracy,
        "prompt_tokens": _sum_or_none(conversation, turns["prompt_tokens"], turns["replied"], size),
        "completion_tokens": _sum_or_none(conversation, turns["completion_tokens"], turns["replied"], size),
        "n_fidelity_errors": n_fidelity,
    }


def _sum_or_none(conversation: Ints, values: Any, replied: Bools, size: int) -> Any:
    present = replied & pd.notna(values)
    numbers = np.where(present, values, 0).astype(np.float64)
    sums = np.bincount(conversation, weights=numbers, minlength=size)
    counts = np.bincount(conversation, weights=present, minlength=size)
    return _or_none(counts > 0, sums.astype(np.int64))
