"""Tests of helpers.evaluation on hand-made logits whose entropies are known."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hand_made import COSTS, H_MID, LABELS, LOGITS

from helpers import data, evaluation, models
from helpers.policies import entropy_from_logits


def test_the_hand_made_entropies():
    h = np.asarray(entropy_from_logits(LOGITS))  # (N, E)
    assert H_MID == pytest.approx(0.8113, abs=1e-4)
    np.testing.assert_allclose(
        h, [[0, 0, 0], [1, H_MID, 0], [1, 1, 0], [H_MID, 0, 0]], atol=1e-6
    )


def test_evaluate_threshold_half():
    # tau = 0.5: sample 0 leaves at exit_1 (H ~ 0); 1 has H = 1, 0.811 then the final exit;
    # 2 reaches the final exit; 3 has 0.811 at exit_1 and ~0 at exit_2.
    r = evaluation.evaluate_threshold(LOGITS, LABELS, COSTS, 0.5)
    np.testing.assert_array_equal(r["exit_index"], [0, 2, 2, 1])
    np.testing.assert_array_equal(r["predictions"], [0, 0, 1, 1])  # exit_1: 0, final: 0, final: 1, exit_2: 1
    assert r["accuracy"] == 0.5  # samples 0 and 2 right
    np.testing.assert_allclose(r["exit_fractions"], [0.25, 0.25, 0.5])
    assert r["relative_cost"] == pytest.approx((0.3 + 1.1 + 1.1 + 0.6) / 4)  # 0.775
    assert r["predicted_speedup"] == pytest.approx(4 / 3.1)
    assert r["threshold"] == 0.5


def test_evaluate_threshold_high():
    # tau = 0.9: H = 0.811 is now confident enough, so samples 1 and 3 leave earlier.
    r = evaluation.evaluate_threshold(LOGITS, LABELS, COSTS, 0.9)
    np.testing.assert_array_equal(r["exit_index"], [0, 1, 2, 0])
    np.testing.assert_array_equal(r["predictions"], [0, 1, 1, 0])
    assert r["accuracy"] == 1.0
    np.testing.assert_allclose(r["exit_fractions"], [0.5, 0.25, 0.25])
    assert r["relative_cost"] == pytest.approx((0.3 + 0.6 + 1.1 + 0.3) / 4)  # 0.575


def test_threshold_zero_is_the_final_exit():
    r = evaluation.evaluate_threshold(LOGITS, LABELS, COSTS, 0.0)
    np.testing.assert_array_equal(r["exit_index"], [2, 2, 2, 2])
    final_accuracy = evaluation.exit_accuracies(LOGITS, LABELS)[-1]
    assert r["accuracy"] == final_accuracy == 0.5
    assert r["relative_cost"] == pytest.approx(COSTS[-1])
    np.testing.assert_array_equal(r["exit_fractions"], [0, 0, 1])


def test_threshold_one_is_the_first_exit():
    r = evaluation.evaluate_threshold(LOGITS, LABELS, COSTS, 1.0)  # the uniform rows leave too
    np.testing.assert_array_equal(r["exit_index"], [0, 0, 0, 0])
    np.testing.assert_array_equal(r["predictions"], [0, 0, 0, 0])
    assert r["accuracy"] == 0.5
    assert r["relative_cost"] == pytest.approx(COSTS[0])


def test_evaluate_threshold_rejects_bad_input():
    with pytest.raises(ValueError, match="need one cost per exit"):
        evaluation.evaluate_threshold(LOGITS, LABELS, COSTS[:2], 0.5)
    with pytest.raises(ValueError, match="threshold"):
        evaluation.evaluate_threshold(LOGITS, LABELS, COSTS, 1.5)


def test_exit_accuracies():
    # exit_1 predicts 0 everywhere (argmax of a tie is 0); exit_2 predicts 1, 1, 0, 1; final 1, 0, 1, 0.
    np.testing.assert_allclose(evaluation.exit_accuracies(LOGITS, LABELS), [0.5, 0.25, 0.5])
    # the same, image by image (labels 0, 1, 1, 0)
    np.testing.assert_array_equal(
        evaluation.correct(LOGITS, LABELS),
        [[True, False, False], [False, True, False], [False, False, True], [True, False, True]],
    )


def test_sweep_table():
    table = evaluation.sweep(LOGITS, LABELS, COSTS, thresholds=[0.0, 0.5, 0.9, 1.0])
    assert list(table.columns) == [
        "threshold", "accuracy", "relative_cost", "predicted_speedup",
        "frac_exit_1", "frac_exit_2", "frac_exit_3",
    ]
    assert table.shape == (4, 7)
    np.testing.assert_allclose(table["accuracy"], [0.5, 0.5, 1.0, 0.5])
    np.testing.assert_allclose(table["relative_cost"], [1.1, 0.775, 0.575, 0.3])
    np.testing.assert_allclose(table[["frac_exit_1", "frac_exit_2", "frac_exit_3"]].sum(axis=1), 1.0)
    named = evaluation.sweep(LOGITS, LABELS, COSTS, [0.5], exit_names=["exit_1", "exit_2", "final"])
    assert "frac_final" in named.columns
    assert len(evaluation.sweep(LOGITS, LABELS, COSTS)) == len(evaluation.DEFAULT_THRESHOLDS)


def test_sweep_cost_never_grows_with_the_threshold(rng):
    logits = rng.normal(0, 2.5, size=(300, 5, 4)).astype(np.float32)
    labels = rng.integers(0, 4, size=300)
    costs = [0.1, 0.3, 0.55, 0.8, 1.05]
    table = evaluation.sweep(logits, labels, costs)
    cost = table["relative_cost"].to_numpy()
    assert np.all(np.diff(cost) <= 1e-12)
    assert cost[0] == pytest.approx(1.05) and cost[-1] == pytest.approx(0.1)
    assert cost[0] > cost[len(cost) // 2] > cost[-1]  # the sweep does something in between


def test_choose_threshold_picks_the_cheapest_within_tolerance():
    sweep = pd.DataFrame(
        {
            "threshold": [0.0, 0.2, 0.4, 0.6, 0.8],
            "accuracy": [0.90, 0.90, 0.895, 0.88, 0.70],
            "relative_cost": [1.10, 0.80, 0.60, 0.50, 0.30],
        }
    )
    assert evaluation.choose_threshold(sweep, 0.90, tolerance=0.01) == 0.4  # 0.88 is 2 points down
    assert evaluation.choose_threshold(sweep, 0.90, tolerance=0.02) == 0.6  # exactly at the limit
    assert evaluation.choose_threshold(sweep, 0.90, tolerance=0.0) == 0.2
    assert evaluation.choose_threshold(sweep, 0.95, tolerance=0.0) == 0.0  # nothing qualifies


def test_the_stable_rule_stops_at_the_first_threshold_out_of_tolerance():
    sweep = pd.DataFrame(
        {
            "threshold": [0.0, 0.2, 0.4, 0.6, 0.8],
            "accuracy": [0.90, 0.90, 0.87, 0.895, 0.70],  # 0.6 passes on a bump after 0.4 failed
            "relative_cost": [1.10, 0.80, 0.60, 0.50, 0.30],
        }
    )
    assert evaluation.choose_threshold(sweep, 0.90, tolerance=0.01, rule="cheapest") == 0.6
    assert evaluation.choose_threshold(sweep, 0.90, tolerance=0.01, rule="stable") == 0.2
    assert evaluation.DEFAULT_THRESHOLD_RULE == "stable"  # the published tau* are the stable rule's
    assert evaluation.choose_threshold(sweep, 0.90, tolerance=0.01) == 0.2
    assert evaluation.choose_threshold(sweep, 0.90, tolerance=0.03, rule="stable") == 0.6  # 0.87 passes now
    # by cost, not by row order or threshold direction
    shuffled = sweep.iloc[[3, 0, 4, 2, 1]]
    assert evaluation.choose_threshold(shuffled, 0.90, tolerance=0.01, rule="stable") == 0.2
    assert evaluation.choose_threshold(sweep, 0.95, tolerance=0.0, rule="stable") == 0.0  # nothing qualifies
    with pytest.raises(ValueError, match="unknown threshold rule"):
        evaluation.choose_threshold(sweep, 0.9, rule="safest")


def test_threshold_rule_study_scores_each_choice_on_the_other_half(rng):
    n, e, k = 64, 3, 4
    labels = np.repeat(np.arange(k), n // k)
    logits = rng.normal(size=(n, e, k)) * np.array([1.0, 2.0, 4.0])[None, :, None]
    logits[np.arange(n), -1, labels] += 3.0  # a good final exit, noisy early ones
    costs = [0.3, 0.6, 1.0]
    study = evaluation.threshold_rule_study(logits, labels, costs, 0.01, repeats=4, seed=7)
    assert len(study) == 8 and list(study["rule"][:2]) == ["cheapest", "stable"]
    # the same choice and score by hand, for the second repeat
    first, second, _ = data.stratified_split_indices(labels, (0.5, 0.5, 0.0), 7 + 1)
    assert len(first) == len(second) == 32 and set(labels[first]) == set(range(k))
    val_sweep = evaluation.sweep(logits[first], labels[first], costs)
    final_first = evaluation.exit_accuracies(logits[first], labels[first])[-1]
    final_second = evaluation.exit_accuracies(logits[second], labels[second])[-1]
    for rule in ("cheapest", "stable"):
        t = evaluation.choose_threshold(val_sweep, final_first, 0.01, rule)
        row = study[(study["repeat"] == 1) & (study["rule"] == rule)].iloc[0]
        at = evaluation.evaluate_threshold(logits[second], labels[second], costs, t)
        assert row["threshold"] == t
        assert row["drop"] == pytest.approx(final_second - at["accuracy"])
        assert row["relative_cost"] == pytest.approx(at["relative_cost"])
        assert row["within"] == (row["drop"] <= 0.01 + 1e-9)
    # a stable choice never costs less than the cheapest one on the same half
    pivot = study.pivot(index="repeat", columns="rule", values="relative_cost")
    assert np.all(pivot["stable"] >= pivot["cheapest"] - 1e-12)


def test_rule_study_summary_by_hand():
    study = pd.DataFrame({"repeat": [0, 0, 1, 1], "rule": ["stable", "cheapest"] * 2,
                          "drop": [0.0, 0.02, 0.01, 0.04], "relative_cost": [0.6, 0.4, 0.5, 0.3],
                          "within": [True, False, True, False]})
    summary = evaluation.rule_study_summary(study)
    assert list(summary.index) == ["stable", "cheapest"]
    assert summary.loc["stable"].to_dict() == pytest.approx(
        {"within": 1.0, "mean_drop": 0.005, "drop_p95": 0.0095, "mean_cost": 0.55})
    assert summary.loc["cheapest"].to_dict() == pytest.approx(
        {"within": 0.0, "mean_drop": 0.03, "drop_p95": 0.039, "mean_cost": 0.35})


def test_threshold_rule_study_refuses_bad_input(rng):
    logits, labels = rng.normal(size=(10, 2, 3)), np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 2])
    with pytest.raises(ValueError, match="at least two images"):
        evaluation.threshold_rule_study(logits, labels, [0.5, 1.0])
    with pytest.raises(ValueError, match="repeats"):
        evaluation.threshold_rule_study(logits, np.array([0, 1, 2] * 3 + [0]), [0.5, 1.0], repeats=0)
    with pytest.raises(ValueError, match="unknown threshold rules"):
        evaluation.threshold_rule_study(logits, np.array([0, 1, 2] * 3 + [0]), [0.5, 1.0], rules=["safest"])


def test_choose_threshold_breaks_cost_ties_by_accuracy_then_threshold():
    sweep = pd.DataFrame(
        {
            "threshold": [0.0, 0.3, 0.5, 0.7],
            "accuracy": [0.9, 0.89, 0.9, 0.9],
            "relative_cost": [1.0, 0.5, 0.5, 0.5],
        }
    )
    assert evaluation.choose_threshold(sweep, 0.9, tolerance=0.02) == 0.5


def test_collect_logits_matches_predict(tiny_model):
    images = data.synthetic_images(n_per_class=5, num_classes=3, image_size=32, seed=2)
    names = models.output_names(tiny_model)
    ds = data.make_dataset(images, batch_size=4, output_names=names)  # dict labels, as for training
    logits, labels = evaluation.collect_logits(tiny_model, ds)

    assert logits.shape == (15, 6, 3) and logits.dtype == np.float32
    np.testing.assert_array_equal(labels, images.labels)
    expected = np.stack(tiny_model.predict(images.images, verbose=0), axis=1)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


def test_collect_logits_of_a_bfloat16_model_are_computed_in_float32(tiny_model):
    """A model trained under mixed_bfloat16 is evaluated in float32 unless asked otherwise."""
    from helpers.inference import with_precision

    images = data.synthetic_images(n_per_class=5, num_classes=3, image_size=32, seed=2)
    mixed = with_precision(tiny_model, "mixed_bfloat16")
    ds = data.make_dataset(images, batch_size=8)
    as_float32, _ = evaluation.collect_logits(mixed, ds)
    as_built, _ = evaluation.collect_logits(mixed, ds, precision=None)
    expected = np.stack(tiny_model.predict(images.images, verbose=0), axis=1)  # the float32 original
    np.testing.assert_allclose(as_float32, expected, rtol=1e-5, atol=1e-5)
    assert np.abs(as_built - expected).max() > 1e-3  # bfloat16 keeps 8 bits of mantissa


def test_collect_logits_of_a_plain_model():
    plain = models.build_vgg11(3, 32, 0.125, head=None)
    images = data.synthetic_images(n_per_class=2, num_classes=3, image_size=32, seed=2)
    logits, labels = evaluation.collect_logits(plain, data.make_dataset(images, batch_size=4))
    assert logits.shape == (6, 1, 3)
    np.testing.assert_allclose(logits[:, 0], plain.predict(images.images, verbose=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(labels, images.labels)


def test_limits_forgive_rounding_and_nothing_more():
    from helpers.limits import at_least, at_most

    assert not 1 - 0.8 >= 0.2 and at_least(1 - 0.8, 0.2)  # a saving of exactly 20 % in floats
    assert not 0.1 + 0.2 <= 0.3 and at_most(0.1 + 0.2, 0.3)  # a cost of exactly 0.3 in floats
    assert not at_most(0.3 + 1e-6, 0.3) and not at_least(0.2 - 1e-6, 0.2)  # a real difference, one in a million, is not forgiven
    np.testing.assert_array_equal(at_most(np.array([0.49, 0.5, 0.51]), 0.5), [True, True, False])


def _final_only(name: str, test_final: list[list[float]]) -> evaluation.Analysis:
    """A one-exit analysis of three test images of class 0 (validation: the same logits)."""
    logits = np.array(test_final, dtype=np.float32)[:, None, :]
    labels = np.zeros(len(logits), dtype=np.int64)
    return evaluation.Analysis(name, ["final"], ["a", "b"], np.array([1.0]), logits, labels, logits, labels,
                               0.0, 0.01)


def test_networks_ensemble_accuracy_averages_the_final_exits_probabilities():
    # a is right on images 0 and 1, b on 1 and 2; on image 0 a is surer (p = 0.88) than b
    # is wrong (p of class 0 = 0.27), on image 2 b is surer (0.95) than a is wrong (0.27):
    # the averaged probabilities get all three right
    a = _final_only("a", [[2, 0], [2, 0], [0, 1]])
    b = _final_only("b", [[0, 1], [2, 0], [3, 0]])
    assert evaluation.exit_accuracies(*a.split_data("test"))[-1] == pytest.approx(2 / 3)
    assert evaluation.networks_ensemble_accuracy([a, b]) == 1.0
    assert evaluation.networks_ensemble_accuracy([a]) == pytest.approx(2 / 3)
    # a confident wrong network outweighs an unsure right one
    c = _final_only("c", [[0, 9], [0, 9], [0, 9]])
    assert evaluation.networks_ensemble_accuracy([a, c], split="val") == 0.0


def test_networks_ensemble_accuracy_errors():
    with pytest.raises(ValueError, match="no network"):
        evaluation.networks_ensemble_accuracy([])
    a = _final_only("a", [[2, 0], [2, 0], [0, 1]])
    other = _final_only("other", [[2, 0], [2, 0]])
    with pytest.raises(ValueError, match="other test images"):
        evaluation.networks_ensemble_accuracy([a, other])


def test_a_closed_exit_sends_its_leavers_on_to_the_next_open_one():
    # tau = 0.9 with exit_1 closed: samples 0 and 3 (sure at exit_1) and sample 1 (H = 0.811 at
    # exit_2) leave at exit_2; sample 2 (uniform at exit_2) reaches the final exit.
    r = evaluation.evaluate_threshold(LOGITS, LABELS, COSTS, 0.9, closed=[0])
    np.testing.assert_array_equal(r["exit_index"], [1, 1, 2, 1])
    np.testing.assert_array_equal(r["predictions"], [1, 1, 1, 1])
    assert r["accuracy"] == 0.5
    np.testing.assert_allclose(r["exit_fractions"], [0, 0.75, 0.25])
    assert r["relative_cost"] == pytest.approx((0.6 + 0.6 + 1.1 + 0.6) / 4)
    # tau = 0.5 with exit_2 closed: sample 0 still leaves at exit_1, sample 3 (which left at
    # exit_2 with every exit open) now reaches the final exit, which gets it right.
    r = evaluation.evaluate_threshold(LOGITS, LABELS, COSTS, 0.5, closed=[1])
    np.testing.assert_array_equal(r["exit_index"], [0, 2, 2, 2])
    assert r["accuracy"] == 0.75
    assert r["relative_cost"] == pytest.approx((0.3 + 3 * 1.1) / 4)
    nobody_closed = evaluation.evaluate_threshold(LOGITS, LABELS, COSTS, 0.5, closed=[])
    np.testing.assert_array_equal(nobody_closed["exit_index"], [0, 2, 2, 1])


@pytest.mark.parametrize("closed", [[2], [-1], [3]])
def test_only_early_exits_can_close(closed):
    with pytest.raises(ValueError, match="early exits"):
        evaluation.evaluate_threshold(LOGITS, LABELS, COSTS, 0.5, closed=closed)


def test_a_sweep_with_a_closed_exit_never_leaves_there():
    table = evaluation.sweep(LOGITS, LABELS, COSTS, [0.0, 0.5, 0.9, 1.0], closed=[0])
    assert (table["frac_exit_1"] == 0).all()
    assert table["relative_cost"].min() == pytest.approx(0.6)  # tau = 1: everybody at exit_2


def test_closed_exit_comparison_by_hand():
    # Validation = test = the hand-made example (final exit 50 % right). Every exit open: every
    # threshold keeps 50 % or more, so the stable rule walks down to tau = 1 (all leave at
    # exit_1, cost 0.3). exit_1 closed: tau = 0.025 already sends samples 0 and 3 wrongly out
    # at exit_2 (25 %), so the rule stops at tau = 0, where everybody reaches the final exit.
    a = evaluation.Analysis("hand", ["exit_1", "exit_2", "final"], ["a", "b"], COSTS, LOGITS, LABELS, LOGITS,
                            LABELS, 1.0, 0.01)
    table = a.closed_exit_comparison(["exit_1"])
    assert list(table.index) == ["every exit", "without exit_1"]
    assert table.loc["every exit", "threshold"] == 1.0
    assert table.loc["every exit", "test_relative_cost"] == pytest.approx(0.3)
    assert table.loc["every exit", "test_drop"] == pytest.approx(0.0)
    assert table.loc["without exit_1", "threshold"] == 0.0
    assert table.loc["without exit_1", "val_relative_cost"] == pytest.approx(1.1)
    assert table.loc["without exit_1", "test_frac_final"] == 1.0
    assert table.loc["without exit_1", "test_frac_exit_1"] == 0.0
    with pytest.raises(ValueError, match="early exits to close"):
        a.closed_exit_comparison(["final"])
    with pytest.raises(ValueError, match="early exits to close"):
        a.closed_exit_comparison([])


def test_removing_an_exit_decides_as_closing_it_but_stops_paying_for_its_head():
    # Say exit_1's head costs 0.05 of the plain network: without it, exit_2 costs 0.55 and the
    # final exit 1.05 (models.select_exits and cost.relative_costs would give these).
    a = evaluation.Analysis("hand", ["exit_1", "exit_2", "final"], ["a", "b"], COSTS, LOGITS, LABELS, LOGITS,
                            LABELS, 1.0, 0.01)
    without = a.with_exits(["exit_2"], [0.55, 1.05])
    assert without.exit_names == ["exit_2", "final"]
    np.testing.assert_array_equal(without.test_logits, LOGITS[:, 1:])
    assert without.threshold == 0.0  # chosen again on validation: as with exit_1 closed (above)
    table = a.closed_exit_comparison(["exit_1"], removed_costs=[0.55, 1.05])
    assert list(table.index) == ["every exit", "without exit_1", "removed exit_1"]
    closed, removed = table.loc["without exit_1"], table.loc["removed exit_1"]
    assert removed["threshold"] == closed["threshold"] == 0.0
    assert removed["test_drop"] == closed["test_drop"]
    assert removed["val_relative_cost"] == pytest.approx(1.05) and closed["val_relative_cost"] == pytest.approx(1.1)
    assert removed["test_frac_exit_1"] == 0.0 and removed["test_frac_final"] == 1.0
    with pytest.raises(ValueError, match="2 kept outputs need 2 costs"):
        a.with_exits(["exit_2"], [0.55])
    with pytest.raises(ValueError, match="distinct early exits"):
        a.with_exits(["final"], [1.0])
    with pytest.raises(ValueError, match="distinct early exits"):
        a.with_exits(["exit_2", "exit_2"], [0.55, 1.05])


def test_exit_subset_study_by_hand():
    # The hand-made example with exit_1's head costing 0.05 and exit_2's 0.05 (final 1.0 without heads).
    a = evaluation.Analysis("hand", ["exit_1", "exit_2", "final"], ["a", "b"], COSTS, LOGITS, LABELS, LOGITS,
                            LABELS, 1.0, 0.01)
    costs = {(): [1.0], ("exit_1",): [0.3, 1.05], ("exit_2",): [0.55, 1.05], ("exit_1", "exit_2"): list(COSTS)}
    study = a.exit_subset_study(costs)
    assert set(study.index) == {"none", "exit_1", "exit_2", "exit_1+exit_2"}
    both, only_2, none = study.loc["exit_1+exit_2"], study.loc["exit_2"], study.loc["none"]
    assert both["threshold"] == a.threshold == 1.0 and both["test_relative_cost"] == pytest.approx(0.3)
    # exit_2 alone decides as exit_1 closed (tau = 0: everybody at the final exit), one head cheaper
    assert only_2["threshold"] == 0.0 and only_2["val_relative_cost"] == pytest.approx(1.05)
    assert none["val_relative_cost"] == pytest.approx(1.0) and none["test_drop"] == 0.0
    # exit_1 alone: tau = 1 sends everybody out there, as with both exits, for the same cost:
    # the tie goes to fewer heads
    assert study.loc["exit_1", "val_relative_cost"] == pytest.approx(0.3)
    assert study["chosen"].sum() == 1 and study.index[study["chosen"]][0] == "exit_1"
    assert list(study["val_relative_cost"]) == sorted(study["val_relative_cost"])
    with pytest.raises(ValueError, match="no subsets"):
        a.exit_subset_study({})


def test_policy_study_by_hand():
    # Validation = test = the hand-made example (final exit 50 % right), the tolerance lets
    # anything down to 49 % pass. entropy: the recorded tau* = 1 (everybody out at exit_1, cost
    # 0.3). max_prob: samples 0 (sure) and 3 (p = 3/4) leave right at exit_1, sample 1 at exit_2
    # (p = 3/4), and below p = 1/2 all four leave at exit_1; all of these keep 50 % or more, so the
    # stable rule walks down to the cheapest, everybody at exit_1: cost 0.3 again. patience: p = 2
    # lets sample 2 out wrong at exit_2 (exits 1 and 2 agree on class 0) and falls to 25 %, so the
    # rule stops at p = 3: everybody at the final exit, cost 1.1.
    a = evaluation.Analysis("hand", ["exit_1", "exit_2", "final"], ["a", "b"], COSTS, LOGITS, LABELS, LOGITS,
                            LABELS, 1.0, 0.01)
    study = a.policy_study()
    assert list(study.index) == ["entropy", "max_prob", "patience"]
    assert study.loc["entropy", "threshold"] == 1.0
    assert study.loc["patience", "threshold"] == 3 and isinstance(study.loc["patience", "threshold"], int)
    np.testing.assert_allclose(study["val_relative_cost"], [0.3, 0.3, 1.1])
    np.testing.assert_allclose(study["test_drop"], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(study["test_predicted_speedup"], [1 / 0.3, 1 / 0.3, 1 / 1.1])
    assert study["chosen"].tolist() == [True, False, False]  # entropy and max_prob tie: the first listed
    assert a.policy_study(["max_prob", "entropy"])["chosen"].tolist() == [True, False]
    # entropy's row is the recorded tau*: with tau* = 0 (nobody leaves early) max_prob is cheaper
    recorded_zero = dataclasses.replace(a, threshold=0.0)
    study = recorded_zero.policy_study(["entropy", "max_prob"])
    assert study.loc["entropy", "val_relative_cost"] == pytest.approx(1.1)
    assert study["chosen"].tolist() == [False, True]
    with pytest.raises(ValueError, match="distinct policies"):
        a.policy_study(["entropy", "entropy"])
    with pytest.raises(ValueError, match="unknown"):
        a.policy_study(["confidence"])
