"""Tests of the max_prob and patience policies, the policy registry and policy-aware evaluation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from helpers import evaluation, policies
from helpers.policies import EXIT_POLICIES, first_exit, leave_mask

# --------------------------------------------------------------------------- max_prob


def test_max_prob_hand_values():
    logits = np.array([[math.log(3), 0.0], [0.0, 0.0], [np.nan, 1.0], [0.0, 0.0]], dtype=np.float32)
    logits4 = np.zeros((1, 4), dtype=np.float32)
    conf = np.asarray(policies.max_prob_from_logits(logits))
    np.testing.assert_allclose(conf, [0.75, 0.5, 0.0, 0.5], atol=1e-7)  # softmax(ln 3, 0) = (3/4, 1/4)
    assert float(policies.max_prob_from_logits(logits4)[0]) == pytest.approx(0.25)


def test_max_prob_exit_is_strict_and_goes_the_other_way():
    z = np.array([[math.log(3), 0.0], [20.0, 0.0], [0.0, 0.0], [np.inf, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(policies.max_prob_exit(z, 0.6)), [True, True, False, False])
    np.testing.assert_array_equal(np.asarray(policies.max_prob_exit(z, 0.75)), [False, True, False, False])
    assert np.asarray(policies.max_prob_exit(z, 0.0)).all()  # tau = 0: everybody leaves, broken rows too
    assert not np.asarray(policies.max_prob_exit(z[[0, 2, 3]], 1.0)).any()  # tau = 1: nobody
    # a higher tau never lets a sample leave earlier (the opposite of entropy)
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(200, 4, 5)).astype(np.float32)
    exits = [first_exit(leave_mask(logits, t, "max_prob")) for t in (0.3, 0.6, 0.9)]
    assert np.all(exits[0] <= exits[1]) and np.all(exits[1] <= exits[2])
    assert exits[0].mean() < exits[2].mean()


# --------------------------------------------------------------------------- patience


def one_hot_logits(sequences, k: int = 3, scale: float = 5.0) -> np.ndarray:
    """``(N, E, K)`` logits whose argmax at exit e is ``sequences[i][e]``; None gives a NaN row."""
    n, e = len(sequences), len(sequences[0])
    logits = np.zeros((n, e, k), dtype=np.float32)
    for i, seq in enumerate(sequences):
        for j, label in enumerate(seq):
            if label is None:
                logits[i, j] = np.nan
            else:
                logits[i, j, label] = scale
    return logits


SEQUENCES = [
    [0, 0, 0, 0],  # always the same label
    [0, 1, 1, 2],  # two agreeing in the middle
    [2, 2, 1, 1],  # two at the start, two at the end
    [None, 1, 1, 1],  # a broken first exit breaks the run
]


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        (1, [0, 0, 0, 1]),  # p = 1: the first exit with a label
        (2, [1, 2, 1, 2]),
        (3, [2, 3, 3, 3]),  # row 1 and 2 never get 3 in a row: final exit
        (4, [3, 3, 3, 3]),
        (9, [3, 3, 3, 3]),
    ],
)
def test_patience_on_hand_made_sequences(p, expected):
    np.testing.assert_array_equal(first_exit(leave_mask(one_hot_logits(SEQUENCES), p, "patience")), expected)


@pytest.mark.parametrize("p", [1, 2, 3, 4, 5])
def test_patience_matches_a_numpy_reference(p, patience_reference):
    rng = np.random.default_rng(p)
    logits = rng.normal(0, 1, size=(300, 5, 3)).astype(np.float32)
    logits[:, :, 0] += np.linspace(0, 1.5, 5)  # deeper exits agree more often
    np.testing.assert_array_equal(first_exit(leave_mask(logits, p, "patience")), patience_reference(logits, p))


def test_patience_state_is_label_and_run():
    rule = policies.patience_exit
    state = rule.initial_state(2)
    np.testing.assert_array_equal(state[0], [-1, -1])
    np.testing.assert_array_equal(state[1], [0, 0])
    leave, state = rule.step(np.array([[5.0, 0.0], [0.0, 5.0]], np.float32), 2.0, state)
    leave, state = rule.step(np.array([[5.0, 0.0], [5.0, 0.0]], np.float32), 2.0, state)
    np.testing.assert_array_equal(leave, [True, False])
    np.testing.assert_array_equal(state[0], [0, 0])
    np.testing.assert_array_equal(state[1], [2, 1])


@pytest.mark.parametrize("good", [1, 2.0, np.int64(3), 10])
def test_check_patience_accepts_integers(good):
    value = policies.check_patience(good)
    assert isinstance(value, int) and value == int(good)


@pytest.mark.parametrize("bad", [0, -1, 1.5, 0.5, float("nan"), float("inf"), "two", None])
def test_check_patience_rejects(bad):
    with pytest.raises(ValueError, match="patience must be an integer >= 1"):
        policies.check_patience(bad)


# --------------------------------------------------------------------------- registry


def test_registry_and_resolution():
    assert sorted(policies.POLICIES) == ["entropy", "max_prob", "patience"]
    assert policies.get_policy("max_prob") is policies.max_prob_exit
    assert policies.get_policy("patience") is policies.patience_exit
    assert policies.resolve_policy("patience") is EXIT_POLICIES["patience"]
    assert policies.resolve_policy(policies.max_prob_exit).name == "max_prob"
    assert policies.resolve_policy(EXIT_POLICIES["entropy"]) is EXIT_POLICIES["entropy"]

    def custom(logits, threshold):
        return np.asarray(logits).max(-1) > threshold

    spec = policies.resolve_policy(custom)
    assert spec.name == "custom" and spec.rule is custom and spec.check(0.5) == 0.5
    with pytest.raises(ValueError, match="unknown exit policy 'margin'"):
        policies.resolve_policy("margin")
    with pytest.raises(TypeError, match="exit rule"):
        policies.resolve_policy(3)


def test_policy_directions_grids_and_checks():
    entropy, max_prob, patience = (EXIT_POLICIES[n] for n in ("entropy", "max_prob", "patience"))
    assert (entropy.earlier_when, max_prob.earlier_when, patience.earlier_when) == ("higher", "lower", "lower")
    np.testing.assert_array_equal(entropy.grid(6), evaluation.DEFAULT_THRESHOLDS)
    assert 0.999 in max_prob.grid(6) and max_prob.grid(6).min() == 0.0 and max_prob.grid(6).max() == 1.0
    np.testing.assert_array_equal(patience.grid(4), [1, 2, 3, 4])
    assert (entropy.nobody_early(4), max_prob.nobody_early(4), patience.nobody_early(4)) == (0.0, 1.0, 4)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        max_prob.check(1.5)
    assert patience.check(2.0) == 2 and patience.bounds == (1.0, math.inf)


def test_leave_mask_per_exit():
    logits = one_hot_logits([[0, 0, 0]], scale=2.0)  # entropy 0.73 (K = 3) at every exit
    h = float(policies.entropy_from_logits(logits[0, 0]))
    np.testing.assert_array_equal(policies.leave_mask_per_exit(logits, [h - 0.1, h + 0.1]), [[False, True, True]])
    np.testing.assert_array_equal(policies.leave_mask_per_exit(logits, [h + 0.1, h - 0.1, 0.0]), [[True, False, True]])
    with pytest.raises(ValueError, match="one threshold per early exit"):
        policies.leave_mask_per_exit(logits, [0.5])
    with pytest.raises(ValueError, match="stateless"):
        policies.leave_mask_per_exit(logits, [1, 2], "patience")


# --------------------------------------------------------------------------- evaluation with policies

# The hand-made example of test_evaluation.py: N = 4, E = 3, K = 2.
SURE_0, SURE_1, UNIFORM = [20.0, 0.0], [0.0, 20.0], [0.0, 0.0]
THREE_QUARTERS_1, THREE_QUARTERS_0 = [0.0, math.log(3)], [math.log(3), 0.0]  # max prob 0.75
LOGITS = np.array(
    [
        [SURE_0, SURE_1, SURE_1],  # argmax 0, 1, 1; label 0
        [UNIFORM, THREE_QUARTERS_1, SURE_0],  # argmax 0, 1, 0; label 1
        [UNIFORM, UNIFORM, SURE_1],  # argmax 0, 0, 1; label 1
        [THREE_QUARTERS_0, SURE_1, SURE_0],  # argmax 0, 1, 0; label 0
    ],
    dtype=np.float32,
)
LABELS = np.array([0, 1, 1, 0])
COSTS = [0.3, 0.6, 1.1]


def test_evaluate_threshold_max_prob():
    # tau = 0.7: max probs are ~1 (sure), 0.75 and 0.5 (uniform)
    r = evaluation.evaluate_threshold(LOGITS, LABELS, COSTS, 0.7, "max_prob")
    np.testing.assert_array_equal(r["exit_index"], [0, 1, 2, 0])
    assert r["accuracy"] == 1.0 and r["policy"] == "max_prob"
    assert r["relative_cost"] == pytest.approx((0.3 + 0.6 + 1.1 + 0.3) / 4)
    # tau = 0.8: the 0.75 rows stay too
    r = evaluation.evaluate_threshold(LOGITS, LABELS, COSTS, 0.8, policies.max_prob_exit)
    np.testing.assert_array_equal(r["exit_index"], [0, 2, 2, 1])


def test_sweep_patience_default_grid():
    table = evaluation.sweep(LOGITS, LABELS, COSTS, rule="patience")
    np.testing.assert_array_equal(table["threshold"], [1, 2, 3])
    # p = 1: all at exit 1 (predicts 0 everywhere); p = 2: exits [2, 2, 1, 2]; p = 3: all final
    np.testing.assert_allclose(table["accuracy"], [0.5, 0.25, 0.5])
    np.testing.assert_allclose(table["relative_cost"], [0.3, (1.1 * 3 + 0.6) / 4, 1.1])
    np.testing.assert_allclose(table["frac_exit_2"], [0.0, 0.25, 0.0])
    with pytest.raises(ValueError, match="patience must be an integer"):
        evaluation.evaluate_threshold(LOGITS, LABELS, COSTS, 0.5, "patience")


def test_choose_threshold_works_in_both_directions():
    # max_prob: a higher tau costs more
    sweep = pd.DataFrame({"threshold": [0.0, 0.5, 0.8, 0.95, 1.0],
                          "accuracy": [0.60, 0.80, 0.895, 0.90, 0.90],
                          "relative_cost": [0.30, 0.45, 0.60, 0.80, 1.10]})
    assert evaluation.choose_threshold(sweep, 0.90, tolerance=0.01) == 0.8
    assert evaluation.choose_threshold(sweep, 0.95, tolerance=0.0) == 1.0  # nothing qualifies: most expensive
    patience = pd.DataFrame({"threshold": [1, 2, 3], "accuracy": [0.5, 0.88, 0.9], "relative_cost": [0.3, 0.7, 1.1]})
    chosen = evaluation.choose_threshold(patience, 0.9, tolerance=0.02)
    assert chosen == 2 and isinstance(chosen, int)


def test_analysis_with_policies():
    a = evaluation.Analysis("m", ["exit_1", "exit_2", "final"], ["a", "b"], np.asarray(COSTS),
                            LOGITS, LABELS, LOGITS, LABELS, threshold=0.9, tolerance=0.0, rule="cheapest")
    assert a.operating_threshold("entropy") == 0.9
    # max_prob on validation: the final exit has accuracy 0.5, and so has "everyone leaves at exit 1"
    # (tau < 0.5, cost 0.3), the cheapest: ties on cost go to the smallest threshold, 0
    assert a.operating_threshold("max_prob") == 0.0
    assert a.at(policy="max_prob")["relative_cost"] == pytest.approx(0.3)
    a.tolerance = -0.5  # now demand accuracy 1.0: tau in [0.5, 0.75) (exits 0, 1, 2, 0) is the cheapest
    assert 0.5 <= a.operating_threshold("max_prob") < 0.75
    assert a.at(policy="max_prob")["accuracy"] == 1.0
    # The stable rule does not jump over the thresholds that fail: "nobody leaves early" (max_prob
    # tau = 1, accuracy 0.5) fails already, so it falls back to that most expensive threshold.
    a.rule = "stable"
    assert a.operating_threshold("max_prob") == 1.0
    a.rule = "cheapest"
    assert a.at(2, policy="patience")["accuracy"] == 0.25
    assert list(a.sweep(policy="patience")["threshold"]) == [1, 2, 3]
    assert a.at(0.9)["exit_index"].tolist() == [0, 1, 2, 0]  # entropy, as before
