"""Tests of helpers.overthinking: the oracle and overthinking counts on constructed predictions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers import overthinking
from helpers.evaluation import Analysis

# Six samples, E = 3 exits, K = 3 classes, given by the argmax at each exit.
PREDICTIONS = np.array(
    [
        [0, 0, 0],  # label 0: right everywhere -> oracle exit 1; wasteful
        [1, 0, 0],  # label 0: right from exit 2 -> oracle exit 2; wasteful
        [0, 1, 1],  # label 0: right only at exit 1 -> destructive
        [2, 2, 1],  # label 1: right only at the final exit -> not overthinking
        [2, 2, 2],  # label 1: never right -> the oracle sends it to the final exit
        [1, 1, 0],  # label 1: right at exits 1 and 2, wrong at the final -> destructive
    ]
)
LABELS = np.array([0, 0, 0, 1, 1, 1])
COSTS = np.array([0.2, 0.5, 1.05])


def logits_of(predictions: np.ndarray, k: int = 3) -> np.ndarray:
    """One-hot logits (scaled by 4) with the given argmax, ``(N, E, K)``."""
    return 4.0 * np.eye(k, dtype=np.float32)[predictions]


LOGITS = logits_of(PREDICTIONS)


def test_correct_matrix_and_oracle_exits():
    np.testing.assert_array_equal(overthinking.correct_matrix(LOGITS, LABELS).sum(axis=1), [3, 2, 1, 1, 0, 2])
    np.testing.assert_array_equal(overthinking.oracle_exits(LOGITS, LABELS), [0, 1, 0, 2, 2, 0])
    np.testing.assert_array_equal(overthinking.oracle_exits(LOGITS, LABELS, unsolved="first"), [0, 1, 0, 2, 0, 0])
    with pytest.raises(ValueError, match="unsolved"):
        overthinking.oracle_exits(LOGITS, LABELS, unsolved="never")


def test_oracle_accuracy_and_cost_by_hand():
    r = overthinking.oracle(LOGITS, LABELS, COSTS)
    assert r["accuracy"] == pytest.approx(5 / 6)  # every sample but number 4
    assert r["relative_cost"] == pytest.approx((0.2 + 0.5 + 0.2 + 1.05 + 1.05 + 0.2) / 6)  # 0.5333
    np.testing.assert_allclose(r["exit_fractions"], [3 / 6, 1 / 6, 2 / 6])
    cheapest = overthinking.oracle(LOGITS, LABELS, COSTS, unsolved="first")
    assert cheapest["relative_cost"] == pytest.approx((0.2 + 0.5 + 0.2 + 1.05 + 0.2 + 0.2) / 6)
    assert cheapest["accuracy"] == r["accuracy"]


def test_saving_fraction():
    oracle_cost = 3.2 / 6
    assert overthinking.saving_fraction(0.6, oracle_cost) == pytest.approx(0.4 / (1 - oracle_cost))  # 0.857
    assert overthinking.saving_fraction(oracle_cost, oracle_cost) == pytest.approx(1.0)
    assert overthinking.saving_fraction(1.05, oracle_cost) == pytest.approx(-0.05 / (1 - oracle_cost))
    assert overthinking.saving_fraction(0.9, 0.5, reference=1.05) == pytest.approx(0.15 / 0.55)
    assert math.isnan(overthinking.saving_fraction(0.9, 1.0))  # the oracle saves nothing
    assert math.isnan(overthinking.saving_fraction(0.9, 1.2))


def test_overthinking_counts_by_hand():
    r = overthinking.overthinking(LOGITS, LABELS)
    assert r["overthinking"] == pytest.approx(4 / 6)  # samples 0, 1, 2, 5
    assert r["wasteful"] == pytest.approx(2 / 6)  # 0 and 1
    assert r["destructive"] == pytest.approx(2 / 6)  # 2 and 5
    assert r["final_error"] == pytest.approx(3 / 6)  # 2, 4 and 5
    assert r["destructive_share_of_errors"] == pytest.approx(2 / 3)
    np.testing.assert_allclose(r["destructive_per_exit"], [2 / 6, 1 / 6])  # exit 1: 2 and 5; exit 2: 5
    np.testing.assert_array_equal(r["destructive_indices"], [2, 5])
    np.testing.assert_array_equal(r["first_correct_exit"], [0, 1, 0, 2, -1, 0])


def test_overthinking_without_final_errors_and_bad_shapes():
    r = overthinking.overthinking(logits_of(np.array([[0, 0], [1, 0]])), np.array([0, 0]))
    assert r["destructive"] == 0 and math.isnan(r["destructive_share_of_errors"]) and r["wasteful"] == 0.5
    with pytest.raises(ValueError, match=r"\(N, E, K\)"):
        overthinking.overthinking(LOGITS[:, 0], LABELS)
    with pytest.raises(ValueError, match="one label per sample"):
        overthinking.oracle(LOGITS, LABELS[:3], COSTS)


def test_oracle_table():
    analysis = Analysis("m", ["exit_1", "exit_2", "final"], ["a", "b", "c"], COSTS,
                        LOGITS, LABELS, LOGITS, LABELS, threshold=0.5, tolerance=0.01)
    table = overthinking.oracle_table(analysis, thresholds={"entropy": 0.0, "patience": 1})
    assert list(table.index) == ["oracle", "entropy", "max_prob", "patience"]
    assert table.loc["oracle", "relative_cost"] == pytest.approx(3.2 / 6)
    assert table.loc["oracle", "saving_fraction"] == pytest.approx(1.0)
    # entropy tau = 0: everyone reaches the final exit, cost 1.05 > 1: a negative saving
    assert table.loc["entropy", "accuracy"] == pytest.approx(3 / 6)
    assert table.loc["entropy", "saving_fraction"] == pytest.approx(-0.05 / (1 - 3.2 / 6))
    # patience p = 1: everyone leaves at exit 1 (cost 0.2), accuracy 3/6
    assert table.loc["patience", "relative_cost"] == pytest.approx(0.2)
    assert table.loc["patience", "saving_fraction"] == pytest.approx(0.8 / (1 - 3.2 / 6))
    assert table.loc["max_prob", "threshold"] == analysis.operating_threshold("max_prob")
