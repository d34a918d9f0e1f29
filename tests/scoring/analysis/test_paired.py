"""Paired differences of two targets (per condition, per turn) and turn statistics, against hand counts."""

from __future__ import annotations

import re
import statistics

import pandas as pd
import pytest

from scoring.analysis import Frames, load, paired_by_turn, paired_comparison, turn_statistics
from scoring.analysis.report import SMALL_N, Table, formatted
from scoring.analysis.stats import mcnemar_exact
from tests.helpers import CONDITIONS, LABELS, write_run

BASE, WARM = {"target": "base"}, {"target": "warm"}


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Frames:
    return load([write_run(tmp_path_factory.mktemp("study") / "run")])


def _pairs_at(turn: int, condition: str | None) -> list[tuple[bool, bool]]:
    """(base corrects, warm corrects) at a turn, for the pairs where both replied then."""
    out = []
    for (target, cond, persona), base in LABELS.items():
        if target != "base" or condition not in (None, cond):
            continue
        warm = LABELS[("warm", cond, persona)]
        if len(base) >= turn and len(warm) >= turn:
            out.append((base[turn - 1] == "C", warm[turn - 1] == "C"))
    return out


def test_paired_difference_by_turn_matches_hand_counts(frames: Frames) -> None:
    table = paired_by_turn(frames, BASE, WARM, n_boot=300, seed=1)
    assert set(table["condition"]) == {*CONDITIONS, "all"}
    for row in table.to_dict("records"):
        pairs = _pairs_at(row["turn"], None if row["condition"] == "all" else row["condition"])
        a = sum(x for x, _ in pairs) / len(pairs)
        b = sum(y for _, y in pairs) / len(pairs)
        only_a, only_b = sum(x and not y for x, y in pairs), sum(y and not x for x, y in pairs)
        assert (row["pairs"], row["only_a"], row["only_b"]) == (len(pairs), only_a, only_b)
        assert (row["rate_a"], row["rate_b"], row["difference"]) == pytest.approx((a, b, a - b))
        assert row["p_value"] == pytest.approx(mcnemar_exact(only_a, only_b))
        assert row["low"] <= row["difference"] + 1e-12 and row["difference"] <= row["high"] + 1e-12
    pooled = table.set_index(["condition", "turn"])
    # turn 1 pooled: base C C C C C H C E, warm C C E C A C A H -> 6/8 vs 4/8
    assert pooled.loc[("all", 1), "difference"] == pytest.approx(0.25)
    assert pooled.loc[("all", 1), "low"] < pooled.loc[("all", 1), "high"]
    # neutral at turn 1: both arms correct in both pairs, so every resample gives 0
    assert pooled.loc[("neutral", 1), ["difference", "low", "high"]].tolist() == [0.0, 0.0, 0.0]
    assert table.equals(paired_by_turn(frames, BASE, WARM, n_boot=300, seed=1))  # seeded: reproducible


def test_paired_comparison_has_a_paired_bootstrap_interval(frames: Frames) -> None:
    table = paired_comparison(frames, BASE, WARM, outcome="corrected_turn1", n_boot=300, seed=2)
    pooled = table.loc[table["condition"] == "all"].iloc[0]
    assert (pooled["pairs"], pooled["only_a"], pooled["only_b"]) == (8, 3, 1)
    assert pooled["difference"] == pytest.approx(0.25) and pooled["p_value"] == pytest.approx(0.625)
    # the paired interval: differences of resampled pairs, each pair's difference in {-1, 0, 1}
    assert -1 <= pooled["low"] < 0.25 < pooled["high"] <= 1
    assert table.equals(paired_comparison(frames, BASE, WARM, outcome="corrected_turn1", n_boot=300, seed=2))


def _first(letters: str, letter: str, after: int = 0) -> int | None:
    index = letters.find(letter, after)
    return None if index < 0 else index + 1


def test_turn_of_first_correction_and_capitulation(frames: Frames) -> None:
    table = turn_statistics(frames, by=["target"], n_boot=300, seed=0).set_index(["target", "measure"])
    for target in ("base", "warm"):
        letters = [s for (t, _, _), s in LABELS.items() if t == target]
        first = [f for s in letters if (f := _first(s, "C")) is not None]
        capitulation = [c for s in letters if "C" in s and (c := _first(s, "A", s.index("C"))) is not None]
        for measure, turns in (("first_correction", first), ("capitulation", capitulation)):
            row = table.loc[(target, measure)]
            assert row["n"] == len(turns)
            assert row["mean"] == pytest.approx(statistics.mean(turns))
            assert row["median"] == pytest.approx(statistics.median(turns))
            assert row["mean_low"] <= row["mean"] <= row["mean_high"]
            assert row["median_low"] <= row["median"] <= row["median_high"]
    # base capitulations at turns 3, 4, 2 and 3 (CCAA, CCCA, CAAA, ECA); warm at 2, 3 and 4 (CAAA, CCAA, HACA)
    assert table.loc[("base", "capitulation"), ["n", "mean", "median"]].tolist() == [4, 3.0, 3.0]
    assert table.loc[("warm", "capitulation"), ["n", "mean", "median"]].tolist() == [3, 3.0, 3.0]


def test_small_groups_say_n_too_small() -> None:
    frame = pd.DataFrame({"group": ["two", "eight"], "n": [2, 8], "rate": [1.0, 0.5], "low": [0.34, 0.21],
                          "high": [1.0, 0.79]})  # fmt: skip
    rows = formatted(Table("t", frame, n_column="n"))
    assert rows[0] == ["two", "2", "100.0%", SMALL_N, SMALL_N]
    assert rows[1] == ["eight", "8", "50.0%", "21.0%", "79.0%"]
    assert not re.search(r"100\.0% \[100\.0%", " ".join(rows[0]))


def test_medians_from_counts_match_numpy() -> None:
    import numpy as np

    from scoring.analysis.stats import medians_from_counts

    values = np.array([1.0, 2.0, 4.0, 6.0])
    counts = np.array([[1, 1, 1, 0], [2, 0, 0, 2], [0, 0, 3, 0], [1, 0, 2, 1]], dtype=np.float64)
    expected = [np.median(np.repeat(values, row.astype(int))) for row in counts]
    assert medians_from_counts(counts, values).tolist() == expected == [2.0, 3.5, 4.0, 4.0]
