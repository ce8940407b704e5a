"""Tests of helpers.budget: budget-targeted thresholds, single and per exit, on hand-made data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hand_made import COSTS, H_MID, LABELS, LOGITS, THREE_QUARTERS_0

from helpers import budget
from helpers.policies import entropy_from_logits


def test_choose_for_budget_on_a_synthetic_sweep():
    sweep = pd.DataFrame({
        "threshold": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
        "accuracy": [0.90, 0.90, 0.89, 0.89, 0.80, 0.60],
        "relative_cost": [1.10, 0.80, 0.60, 0.50, 0.40, 0.30],
    })
    assert budget.choose_for_budget(sweep, 0.65) == 0.6  # 0.4 and 0.6 tie on accuracy: the cheaper
    assert budget.choose_for_budget(sweep, 0.80) == 0.2  # exactly at the budget counts
    assert budget.choose_for_budget(sweep, 2.00) == 0.2  # 0.0 and 0.2 tie: the cheaper
    assert budget.choose_for_budget(sweep, 0.45) == 0.8
    with pytest.raises(ValueError, match="cheapest candidate costs 0.300"):
        budget.choose_for_budget(sweep, 0.25)


@pytest.mark.parametrize(("b", "expected"), [(0.3, 1.0), (0.5, 1.0), (0.6, 0.9), (0.8, 0.9), (1.2, 0.9)])
def test_threshold_for_budget_on_given_thresholds(b, expected):
    assert budget.threshold_for_budget(LOGITS, LABELS, COSTS, b, thresholds=[0.0, 0.5, 0.9, 1.0]) == expected


def test_threshold_for_budget_default_grid_is_fine():
    # every tau in (0.811, 1) gives accuracy 1.0 at cost 0.575; the grid has steps of 0.0025
    t = budget.threshold_for_budget(LOGITS, LABELS, COSTS, 0.6)
    assert t == pytest.approx(0.8125)
    assert float(entropy_from_logits(np.array(THREE_QUARTERS_0))) < t  # just above H_MID = 0.8113
    assert H_MID < t


def test_threshold_for_budget_patience_and_max_prob():
    # patience: p = 1 (acc 0.5, cost 0.3), p = 2 (0.25, 0.975), p = 3 (0.5, 1.1)
    t = budget.threshold_for_budget(LOGITS, LABELS, COSTS, 1.1, "patience")
    assert t == 1 and isinstance(t, int)  # ties with p = 3 on accuracy: the cheaper
    # max_prob: tau in [0.5, 0.75) keeps the uniform rows and lets the 0.75 rows out: acc 1.0, cost 0.575
    t = budget.threshold_for_budget(LOGITS, LABELS, COSTS, 0.6, "max_prob")
    assert 0.5 <= t < 0.75


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_budget_must_be_positive(bad):
    with pytest.raises(ValueError, match="budget must be a positive"):
        budget.threshold_for_budget(LOGITS, LABELS, COSTS, bad)


def test_budget_below_the_first_exit_is_an_error():
    with pytest.raises(ValueError, match=r"below the cost of the first exit \(0.300\)"):
        budget.threshold_for_budget(LOGITS, LABELS, COSTS, 0.2)
    with pytest.raises(ValueError, match="no threshold meets the budget"):
        budget.threshold_for_budget(LOGITS, LABELS, COSTS, 0.5, thresholds=[0.0, 0.5])


# --------------------------------------------------------------------------- per-exit thresholds

# Four samples, all of class 0, K = 2. Logits [a, 0] are right, [0, a] wrong; their normalised
# entropies are 0.058 (a = 5), 0.528 (a = 2) and 0.957 (a = 0.5).
R5, R2, W2, W05 = [5.0, 0.0], [2.0, 0.0], [0.0, 2.0], [0.0, 0.5]
PER_EXIT_LOGITS = np.array(
    [
        [R5, R5, R5],  # sure and right at exit 1
        [W2, R2, R5],  # wrong at exit 1 (H 0.53), right at exit 2 (H 0.53)
        [W05, R2, R5],  # wrong and unsure at exit 1, right at exit 2
        [W05, W05, R5],  # only the final exit is right
    ],
    dtype=np.float32,
)
PER_EXIT_LABELS = np.zeros(4, dtype=int)
H5, H2, H05 = (float(entropy_from_logits(np.array(z))) for z in (R5, R2, W05))


def test_the_per_exit_example_entropies():
    h = np.asarray(entropy_from_logits(PER_EXIT_LOGITS))
    np.testing.assert_allclose(h[:, 0], [0.058, 0.527, 0.957, 0.957], atol=1e-3)
    # binary entropy of sigmoid(2) = 0.8808, in bits
    p = 1 / (1 + math.exp(-2))
    assert H2 == pytest.approx(-(p * math.log2(p) + (1 - p) * math.log2(1 - p)), abs=1e-6)


def test_evaluate_per_exit_by_hand():
    r = budget.evaluate_per_exit(PER_EXIT_LOGITS, PER_EXIT_LABELS, COSTS, [0.3, 0.7])
    np.testing.assert_array_equal(r["exit_index"], [0, 1, 1, 2])
    assert r["accuracy"] == 1.0
    assert r["relative_cost"] == pytest.approx((0.3 + 0.6 + 0.6 + 1.1) / 4)  # 0.65
    assert r["thresholds"] == [0.3, 0.7]
    with pytest.raises(ValueError, match="stateless"):
        budget.evaluate_per_exit(PER_EXIT_LOGITS, PER_EXIT_LABELS, COSTS, [1, 2], "patience")


def test_per_exit_thresholds_beat_a_single_one():
    # One threshold for both exits at budget 0.7: tau in (0.53, 0.96] lets sample 1 out wrong at exit 1
    # (accuracy 0.75, cost 0.575); tau <= 0.53 sends 1, 2, 3 to the final exit (cost 0.9 > 0.7).
    single = budget.threshold_for_budget(PER_EXIT_LOGITS, PER_EXIT_LABELS, COSTS, 0.7)
    assert H2 < single <= H05
    per_exit = budget.per_exit_thresholds_for_budget(PER_EXIT_LOGITS, PER_EXIT_LABELS, COSTS, 0.7)
    assert per_exit.shape == (2,)
    assert H5 < per_exit[0] <= H2 < per_exit[1] <= H05  # strict at exit 1, lenient at exit 2
    r = budget.evaluate_per_exit(PER_EXIT_LOGITS, PER_EXIT_LABELS, COSTS, per_exit)
    assert r["accuracy"] == 1.0 and r["relative_cost"] == pytest.approx(0.65)


def test_budget_table():
    table = budget.budget_table(PER_EXIT_LOGITS, PER_EXIT_LABELS, PER_EXIT_LOGITS, PER_EXIT_LABELS, COSTS,
                                [0.2, 0.7, 1.2])
    assert list(table["budget"]) == [0.7, 1.2]  # 0.2 is below the first exit: skipped
    row = table.iloc[0]
    assert row["test_accuracy"] == 0.75 and row["test_cost"] == pytest.approx(0.575)
    assert row["per_exit_test_accuracy"] == 1.0 and row["per_exit_gain"] == pytest.approx(0.25)
    assert table.iloc[1]["test_accuracy"] == 1.0  # a big budget: everyone right with one threshold
    patience = budget.budget_table(LOGITS, LABELS, LOGITS, LABELS, COSTS, [1.1], "patience")
    assert "per_exit_gain" not in patience.columns and patience.iloc[0]["threshold"] == 1
