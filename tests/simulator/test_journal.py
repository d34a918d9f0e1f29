"""The turn journal: finished exchanges kept while a conversation runs, a torn line cut back, compaction."""

from __future__ import annotations

import json
from pathlib import Path

from scenarios import Label, Status, Turn
from simulator.journal import Exchange, Journal, finished_exchanges


def exchange(number: int) -> Exchange:
    return (
        Turn(role="user", content=f"question {number}", stage="open"),
        Turn(role="assistant", content=f"answer {number}", stage="open", label=Label.CORRECTS, attempts=1),
    )


def test_exchanges_come_back_after_a_kill_in_order(tmp_path: Path) -> None:
    journal = Journal(tmp_path).open({})
    for number in range(3):
        journal.record("a", number, exchange(number))
    journal.record("b", 0, exchange(7))
    # killed here: no close()
    assert len((tmp_path / "journal.jsonl").read_text().splitlines()) == 4
    again = Journal(tmp_path).open({})
    assert again.exchanges("a") == [exchange(n) for n in range(3)]
    assert again.exchanges("a") == []  # given once
    assert again.exchanges("b") == [exchange(7)]


def test_a_torn_last_line_is_cut_back(tmp_path: Path) -> None:
    journal = Journal(tmp_path).open({})
    journal.record("a", 0, exchange(0))
    journal.record("a", 1, exchange(1))
    path = tmp_path / "journal.jsonl"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 20])  # the second line torn by a kill mid-write
    again = Journal(tmp_path).open({})
    assert again.exchanges("a") == [exchange(0)]
    assert path.read_bytes().endswith(b"\n") and path.read_bytes().count(b"\n") == 1
    again.record("a", 1, exchange(1))
    assert Journal(tmp_path).open({}).exchanges("a") == [exchange(0), exchange(1)]


def test_a_finished_conversation_leaves_the_journal(tmp_path: Path) -> None:
    """Its exchanges go once its transcript line is written (done), or when the store holds its line."""
    journal = Journal(tmp_path).open({})
    journal.record("done", 0, exchange(0))
    journal.finish("done")
    journal.record("written", 0, exchange(0))  # killed after its transcript line, before finish()
    journal.record("failed", 0, exchange(0))  # likewise, but its line is an error: kept for --retry-errors
    journal.record("open", 0, exchange(0))
    again = Journal(tmp_path).open({"written": Status.COMPLETED, "failed": Status.ERROR})
    kept = [json.loads(line)["id"] for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    assert kept == ["failed", "open"]  # compacted on opening
    assert again.exchanges("done") == again.exchanges("written") == []
    assert again.exchanges("open") == [exchange(0)]
    again.finish("open")
    again.finish("failed")
    again.close()
    assert not (tmp_path / "journal.jsonl").exists()  # nothing left: the file goes


def test_a_rewritten_exchange_replaces_what_followed(tmp_path: Path) -> None:
    """A conversation that went on afresh from an exchange (its journal no longer fit it) writes on from
    there: the later lines replace the earlier ones from that exchange on."""
    journal = Journal(tmp_path).open({})
    for number in range(3):
        journal.record("a", number, exchange(number))
    journal.record("a", 1, exchange(9))
    journal.close()
    assert Journal(tmp_path).open({}).exchanges("a") == [exchange(0), exchange(9)]


def test_finished_exchanges_stop_at_the_first_unanswered_or_unlabelled_turn() -> None:
    first, second = exchange(0), exchange(1)
    unlabelled = Turn(role="assistant", content="kept", stage="open")
    assert finished_exchanges([*first, *second]) == [first, second]
    assert finished_exchanges([*first, second[0]]) == [first]  # the request failed
    assert finished_exchanges([*first, second[0], unlabelled]) == [first]  # the judge failed
    assert finished_exchanges([]) == []
