"""The learned judge's held-out discipline (splits by question) and its one-line errors; no embedding model needed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from scoring import learned
from scoring.agreement import group_folds
from scoring.judge_data import LabelledReply, read_sycon_labelled
from scoring.learned import FEATURES, JudgeModel, ModelFileError, fit_judge_model
from simulator.cli import app

REPO = Path(__file__).resolve().parents[1]
SYCON = REPO.parent / "shared" / "data" / "sycon-false-presuppositions"
runner = CliRunner()


def _items(n_groups: int = 12, per_group: int = 5) -> tuple[np.ndarray, list[LabelledReply]]:
    """Feature rows where ``sent_diff_top3`` decides the label; several replies per question."""
    rng = np.random.default_rng(0)
    rows, items = [], []
    for g in range(n_groups):
        for k in range(per_group):
            corrects = (g + k) % 2 == 0
            row = rng.normal(size=len(FEATURES))
            row[FEATURES.index("sent_diff_top3")] += 4.0 if corrects else -4.0
            rows.append(row)
            items.append(
                LabelledReply(question=f"Q{g}?", belief="B.", correction="C.", reply=f"r{k}", turn=k + 1,
                              binary=corrects)
            )  # fmt: skip
    return np.stack(rows), items


def test_hyper_parameter_search_never_puts_a_question_on_both_sides(monkeypatch: pytest.MonkeyPatch) -> None:
    splits: list[tuple[set[str], set[str]]] = []

    def spying(items: Sequence[Any], k: int = 5, seed: int = 0) -> list[tuple[list[Any], list[Any]]]:
        folds = group_folds(items, k, seed)
        splits.extend(({i.group for i in train}, {i.group for i in test}) for train, test in folds)
        return folds

    monkeypatch.setattr(learned, "group_folds", spying)
    x, items = _items()
    model, selection = fit_judge_model(x, items, seed=0)
    assert splits and len(splits) == 5 * len(learned._L2_GRID)
    assert all(train and test and not train & test for train, test in splits)
    assert all(train | test == {i.group for i in items} for train, test in splits)
    assert selection["cv_kappa"] > 0.6  # 1 informative feature of 55
    assert "turn_1" not in model.features  # the turn is not a feature unless asked for


def test_sycon_folds_keep_every_question_on_one_side() -> None:
    if not (SYCON / "labeled").is_dir():
        pytest.skip(f"SYCON-Bench labelled data not found at {SYCON} (it lives in the shared data folder)")
    items = read_sycon_labelled(SYCON).items
    folds = group_folds(items, 5, seed=0)
    tested = [(item.model, item.group, item.turn) for _, test in folds for item in test]
    assert sorted(tested) == sorted((item.model, item.group, item.turn) for item in items)  # each held out once
    for train, test in folds:
        held_out = {item.group for item in test}
        assert len(held_out) == 40 and not held_out & {item.group for item in train}
        # every judged turn of a question, from every model, falls in the same fold
        assert len(test) == sum(item.group in held_out for item in items)


def _model_file(tmp_path: Path) -> Path:
    x, items = _items(n_groups=3)
    model, _ = fit_judge_model(x, items)
    path = tmp_path / "judge.json"
    model.save(path)
    return path


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: "{truncated", "not a learned-judge model"),
        (lambda data: json.dumps([1, 2]), "no `format: convsim-learned-judge`"),
        (lambda data: json.dumps({**data, "version": 7}), "model format version 7"),
        (lambda data: json.dumps({**data, "weights": data["weights"][1:]}), "do not match"),
        (lambda data: json.dumps({**data, "scale": [0.0] * len(data["scale"])}), "every scale positive"),
        (lambda data: json.dumps({**data, "bias": [float("nan"), 0.0]}), "finite numbers"),
        (lambda data: json.dumps({**data, "threshold": 3}), "threshold"),
    ],
)
def test_a_bad_model_file_is_one_line_error(tmp_path: Path, damage: Any, message: str) -> None:
    good = _model_file(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text(damage(json.loads(good.read_text())))
    with pytest.raises(ModelFileError, match=message):
        JudgeModel.load(bad)
    data = tmp_path / "labelled.jsonl"
    data.write_text(json.dumps({"question": "Q?", "belief": "B.", "correction": "C.", "reply": "r", "label": 1}) + "\n")
    result = runner.invoke(app, ["judge-eval", str(data), "--judge", f"learned:{bad}"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: cannot use learned:{bad}: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_judge_train_rejects_single_label_data_before_embedding(tmp_path: Path) -> None:
    data = tmp_path / "labelled.jsonl"
    rows = [{"question": f"Q{i}?", "belief": "B.", "correction": "C.", "reply": "Yes.", "label": 0} for i in range(6)]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "judge.json"
    result = runner.invoke(app, ["judge-train", str(data), "--out", str(out)])
    assert result.exit_code == 2 and not out.exists()
    expected = f"error: cannot train a judge on {data}: the training items need at least two different labels\n"
    assert result.stderr == expected
