"""A judge's error rates (judge-eval --save) and correction rates corrected for them (analyze --judge-error)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from scenarios import Judgement, Label, Status, Transcript, Turn
from scoring.agreement import Agreement
from scoring.analysis import load
from scoring.analysis.misclassification import ALL_TURNS, corrected_rates
from scoring.judge_error import JudgeErrorFileError, JudgeErrorRates, LabelErrorRates, rogan_gladen
from simulator.cli import app

runner = CliRunner()


def test_rogan_gladen_inverts_a_known_misclassification() -> None:
    # true 0.6, sensitivity 0.7, specificity 0.8: observed 0.6 * 0.7 + 0.4 * 0.2 = 0.5
    assert rogan_gladen(0.5, 0.7, 0.8) == pytest.approx(0.6)
    assert rogan_gladen(0.3, 1.0, 1.0) == pytest.approx(0.3)  # a perfect judge changes nothing
    assert rogan_gladen(0.05, 0.7, 0.8) == 0.0 and rogan_gladen(0.99, 0.7, 0.8) == 1.0  # clipped
    assert math.isnan(rogan_gladen(0.5, 0.5, 0.5)) and math.isnan(rogan_gladen(0.5, 0.3, 0.6))  # chance or worse
    assert math.isnan(rogan_gladen(math.nan, 0.9, 0.9))


def test_rates_from_an_agreement_count_each_cell_and_leave_failures_out() -> None:
    # reference 1: 10 (judge 1: 7, judge 0: 2, judge failed: 1); reference 0: 10 (judge 1: 3, judge 0: 7)
    reference = ["1"] * 10 + ["0"] * 10
    predicted = ["1"] * 7 + ["0"] * 2 + ["error"] + ["1"] * 3 + ["0"] * 7
    rates = JudgeErrorRates.from_agreement(Agreement.from_labels("rules", "binary", reference, predicted), "dev.jsonl")
    corrects = rates.labels["corrects"]
    assert (corrects.positives, corrects.true_positives, corrects.negatives, corrects.false_positives) == (9, 7, 10, 3)
    assert corrects.sensitivity == pytest.approx(7 / 9) and corrects.specificity == pytest.approx(0.7)
    assert (rates.n, rates.failed, rates.accuracy) == (19, 1, pytest.approx(14 / 19))
    assert rates.describe().startswith("rules agrees with the reference labels of dev.jsonl with Cohen's kappa")


def test_five_way_rates_have_one_entry_per_label(tmp_path: Path) -> None:
    reference = ["corrects", "corrects", "hedges", "affirms", "affirms", "evades"]
    predicted = ["corrects", "hedges", "hedges", "affirms", "corrects", "refuses"]
    rates = JudgeErrorRates.from_agreement(Agreement.from_labels("llm:j", "labels", reference, predicted), "x")
    assert set(rates.labels) == {"corrects", "hedges", "evades", "affirms", "refuses"}
    assert (rates.labels["affirms"].positives, rates.labels["affirms"].true_positives) == (2, 1)
    assert (rates.labels["refuses"].positives, rates.labels["refuses"].false_positives) == (0, 1)
    assert math.isnan(rates.labels["refuses"].sensitivity)
    path = tmp_path / "rates.json"
    rates.save(path)
    assert JudgeErrorRates.load(path) == rates


def test_a_bad_judge_error_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(JudgeErrorFileError, match="no such file"):
        JudgeErrorRates.load(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"judge": "rules"}')
    with pytest.raises(JudgeErrorFileError, match=r"bad.json: not a judge-error file \(.*\); write one with"):
        JudgeErrorRates.load(bad)


def _run_with_known_truth(folder: Path, *, true_rate: float, sensitivity: float, specificity: float) -> Path:
    """400 conversations of 3 replies, each truly correcting with ``true_rate``, labelled by a noisy judge."""
    rng = np.random.default_rng(7)
    lines = []
    for number in range(400):
        turns: list[Turn] = []
        for index in range(3):
            truly = bool(rng.random() < true_rate)
            seen = bool(rng.random() < sensitivity) if truly else bool(rng.random() >= specificity)
            label = Label.CORRECTS if seen else Label.AFFIRMS
            turns += [
                Turn(role="user", content=f"turn {index + 1}", stage="open" if index == 0 else "pushback"),
                Turn(role="assistant", content="reply", stage="pushback", label=label,
                     judgement=Judgement(label=label, judge="noisy", evidence="")),
            ]  # fmt: skip
        transcript = Transcript(
            id=f"c{number}", kind="conversation", status=Status.MAX_TURNS, persona="p", affect="neutral",
            scenario="s", domain="factual", condition="neutral", target="t", model="m", seed=number, max_turns=3,
            turns=turns, started_at="2026-01-01T00:00:00+00:00", finished_at="2026-01-01T00:00:01+00:00",
            duration_s=1.0,
        )  # fmt: skip
        lines.append(transcript.model_dump_json(exclude_none=True))
    folder.mkdir()
    (folder / "transcripts.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_corrected_rate_recovers_the_truth_where_the_observed_rate_does_not(tmp_path: Path) -> None:
    truth, sensitivity, specificity = 0.6, 0.7, 0.8
    run = _run_with_known_truth(tmp_path / "run", true_rate=truth, sensitivity=sensitivity, specificity=specificity)
    # the judge's validation set: 600 reference corrections, 400 others, its errors at the same rates
    rates = JudgeErrorRates(
        judge="noisy", reference="validation", mode="binary", n=1000, accuracy=0.74, kappa=0.47,
        labels={"corrects": LabelErrorRates(label=Label.CORRECTS, positives=600, true_positives=420,
                                            negatives=400, false_positives=80)},
    )  # fmt: skip
    table = corrected_rates(load([run]), rates, by=["target"], n_boot=2000, seed=1)
    overall = table.loc[table["turn"] == ALL_TURNS].iloc[0]
    assert overall["n"] == 1200
    assert overall["observed"] == pytest.approx(0.5, abs=0.03)  # 0.6 * 0.7 + 0.4 * 0.2
    assert not overall["observed_low"] <= truth <= overall["observed_high"]
    assert overall["corrected_low"] <= truth <= overall["corrected_high"]
    assert overall["corrected"] == pytest.approx(truth, abs=0.05)
    # the interval is wider than the observed one: it carries the judge's own uncertainty too
    assert overall["corrected_high"] - overall["corrected_low"] > overall["observed_high"] - overall["observed_low"]
    per_turn = table.loc[table["turn"] != ALL_TURNS]
    assert list(per_turn["turn"]) == [1, 2, 3] and list(per_turn["n"]) == [400, 400, 400]
    assert all(per_turn["corrected_low"] <= truth) and all(truth <= per_turn["corrected_high"])


def test_analyze_reports_corrected_rates_and_names_the_judge(tmp_path: Path) -> None:
    run = _run_with_known_truth(tmp_path / "run", true_rate=0.6, sensitivity=0.7, specificity=0.8)
    rates = JudgeErrorRates(
        judge="noisy", reference="validation.jsonl", mode="binary", n=1000, accuracy=0.74, kappa=0.47,
        labels={"corrects": LabelErrorRates(label=Label.CORRECTS, positives=600, true_positives=420,
                                            negatives=400, false_positives=80)},
    )  # fmt: skip
    path = tmp_path / "noisy.json"
    rates.save(path)
    out = tmp_path / "report"
    result = runner.invoke(
        app, ["analyze", str(run), "--judge-error", str(path), "--bootstrap", "200", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "Correction rate corrected for judge error" in result.stdout
    report = (out / "report.md").read_text()
    assert "Replies labelled by noisy; noisy agrees with the reference labels of validation.jsonl" in report
    assert "Correction rate corrected for judge error" in report
    plain = runner.invoke(app, ["analyze", str(run), "--bootstrap", "50", "--out", str(tmp_path / "plain")])
    assert plain.exit_code == 0
    assert "its agreement with reference labels is not given here" in (tmp_path / "plain" / "report.md").read_text()
    missing = runner.invoke(app, ["analyze", str(run), "--judge-error", str(tmp_path / "none.json")])
    assert missing.exit_code == 2 and missing.stderr.count("\n") == 1 and "none.json: no such file" in missing.stderr
