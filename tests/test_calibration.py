"""Tests of helpers.calibration: ECE and temperature scaling against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers import calibration
from helpers.evaluation import Analysis, choose_on_validation, exit_accuracies

# Four two-class predictions: confidences 0.9 (right), 0.9 (wrong), 0.7 (right), 0.5 (wrong;
# argmax of a tie is class 0).
PROBS = np.array([[0.9, 0.1], [0.9, 0.1], [0.7, 0.3], [0.5, 0.5]])
LABELS = np.array([0, 1, 0, 1])


def test_ece_by_hand():
    # bins of 0.2: (0.8, 1]: conf 0.9, acc 1/2 -> |0.4| * 2/4; (0.6, 0.8]: 0.7 vs 1 -> 0.3 * 1/4;
    # (0.4, 0.6]: 0.5 vs 0 -> 0.5 * 1/4. ECE = 0.2 + 0.075 + 0.125 = 0.4
    assert calibration.expected_calibration_error(PROBS, LABELS, n_bins=5) == pytest.approx(0.4)
    # 15 bins group these four confidences the same way
    assert calibration.expected_calibration_error(PROBS, LABELS) == pytest.approx(0.4)
    # a tie predicted at 0.5 and right half of the time is perfectly calibrated
    assert calibration.expected_calibration_error([[0.5, 0.5], [0.5, 0.5]], [0, 1]) == 0.0
    # one sure and right prediction: confidence 1 in the last bin, no gap
    assert calibration.expected_calibration_error([[1.0, 0.0]], [0]) == 0.0


def test_reliability_bins_by_hand():
    bins = calibration.reliability_bins(PROBS, LABELS, n_bins=5)
    np.testing.assert_allclose(bins["edges"], [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_array_equal(bins["counts"], [0, 0, 1, 1, 2])
    np.testing.assert_allclose(bins["accuracy"], [np.nan, np.nan, 0.0, 1.0, 0.5])
    np.testing.assert_allclose(bins["confidence"], [np.nan, np.nan, 0.5, 0.7, 0.9])
    assert bins["n"] == 4 and bins["ece"] == pytest.approx(0.4)
    # a confidence on an edge belongs to the bin it closes: 0.6 -> (0.4, 0.6]
    edge = calibration.reliability_bins([[0.6, 0.4]], [0], n_bins=5)
    np.testing.assert_array_equal(edge["counts"], [0, 0, 1, 0, 0])


def test_reliability_rejects_logits_and_bad_shapes():
    with pytest.raises(ValueError, match="softmax"):
        calibration.reliability_bins([[2.0, -1.0]], [0])
    with pytest.raises(ValueError, match="one label per row"):
        calibration.reliability_bins(PROBS, LABELS[:2])
    with pytest.raises(ValueError, match="n_bins"):
        calibration.reliability_bins(PROBS, LABELS, n_bins=0)


def test_nll_by_hand():
    # logits (ln 3, 0) -> p = (3/4, 1/4): NLL of label 0 is -ln 0.75, of label 1 -ln 0.25
    z = np.array([[math.log(3), 0.0], [math.log(3), 0.0]])
    assert calibration.nll(z, [0, 1]) == pytest.approx(-(math.log(0.75) + math.log(0.25)) / 2)
    assert calibration.nll(2 * z, [0, 1], temperature=2.0) == pytest.approx(calibration.nll(z, [0, 1]))


def test_fit_temperature_hand_computed_optimum():
    # every sample has logits (2, 0) and 3 of 4 are class 0: the NLL is minimal where
    # sigmoid(2 / T) = 3/4, i.e. 2 / T = ln 3, T = 2 / ln 3 = 1.8205
    logits = np.tile([2.0, 0.0], (4, 1))
    t = calibration.fit_temperature(logits, [0, 0, 0, 1])
    assert t == pytest.approx(2 / math.log(3), rel=1e-5)


def calibrated_source(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits z and labels drawn from softmax(z): calibrated by construction (T = 1)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2.0, size=(n, k))
    p = calibration.softmax(z)
    labels = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    return z, labels


def test_fit_temperature_recovers_a_known_temperature():
    z, labels = calibrated_source(20000, 5, seed=0)
    over = 2.5 * z  # an over-confident network: the right temperature is 2.5
    t = calibration.fit_temperature(over, labels)
    assert t == pytest.approx(2.5, rel=0.05)
    grid = np.linspace(1.0, 4.0, 601)  # brute force, step 0.005
    brute = grid[np.argmin([calibration.nll(over, labels, g) for g in grid])]
    assert abs(t - brute) <= 0.005
    # calibrating lowers the ECE of the over-confident logits
    before = calibration.expected_calibration_error(calibration.softmax(over), labels)
    after = calibration.expected_calibration_error(calibration.softmax(over, t), labels)
    assert after < before / 3


def test_fit_temperature_edge_cases():
    separable = np.array([[5.0, 0.0], [0.0, 5.0]])
    assert calibration.fit_temperature(separable, [0, 1]) == pytest.approx(0.05)  # NLL falls as T -> 0
    with pytest.raises(ValueError, match="finite"):
        calibration.fit_temperature(np.array([[np.nan, 0.0]]), [0])
    with pytest.raises(ValueError, match="bounds"):
        calibration.fit_temperature(separable, [0, 1], bounds=(2.0, 1.0))


def test_fit_and_apply_temperatures_per_exit():
    z, labels = calibrated_source(8000, 4, seed=1)
    logits = np.stack([0.5 * z, 2.0 * z], axis=1)  # under-confident exit 1, over-confident exit 2
    temps = calibration.fit_temperatures(logits, labels)
    np.testing.assert_allclose(temps, [0.5, 2.0], rtol=0.08)
    scaled = calibration.apply_temperatures(logits, [0.5, 2.0])
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, np.stack([z, z], axis=1), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(scaled.argmax(-1), logits.argmax(-1))  # accuracy unchanged
    with pytest.raises(ValueError, match="positive"):
        calibration.apply_temperatures(logits, [1.0, 0.0])
    with pytest.raises(ValueError, match="one temperature per exit"):
        calibration.apply_temperatures(logits, [1.0])


def test_calibration_table_and_calibrated_analysis():
    z, labels = calibrated_source(3000, 3, seed=2)
    logits = np.stack([0.5 * z, 3.0 * z, 1.0 * z], axis=1).astype(np.float32)
    analysis = Analysis("m", ["exit_1", "exit_2", "final"], ["a", "b", "c"], np.array([0.3, 0.6, 1.1]),
                        logits[:1500], labels[:1500], logits[1500:], labels[1500:], threshold=0.5, tolerance=0.01)
    table = calibration.calibration_table(analysis)
    np.testing.assert_allclose(table["temperature"], [0.5, 3.0, 1.0], rtol=0.15)
    assert table.loc["exit_2", "ece_after"] < table.loc["exit_2", "ece_before"]
    assert table.loc["exit_2", "ece_before"] == pytest.approx(
        calibration.expected_calibration_error(calibration.softmax(logits[1500:, 1]), labels[1500:]))
    calibrated, temps = calibration.calibrated_analysis(analysis)
    assert calibrated.name == "m (calibrated)" and analysis.name == "m"
    # the temperatures are the ones fitted on validation, and both splits are scaled by them
    np.testing.assert_allclose(temps, table["temperature"])
    np.testing.assert_allclose(calibrated.val_logits, calibration.apply_temperatures(analysis.val_logits, temps))
    np.testing.assert_allclose(calibrated.test_logits, calibration.apply_temperatures(analysis.test_logits, temps))
    np.testing.assert_array_equal(calibrated.val_labels, analysis.val_labels)
    np.testing.assert_allclose(exit_accuracies(calibrated.test_logits, calibrated.test_labels),
                               exit_accuracies(analysis.test_logits, analysis.test_labels))
    reliability = calibration.exit_reliability(analysis.test_logits, analysis.test_labels)
    assert len(reliability) == 3 and reliability[1]["ece"] == pytest.approx(table.loc["exit_2", "ece_before"])
    # given temperatures are used as they are
    given, used = calibration.calibrated_analysis(analysis, [1.0, 2.0, 1.0])
    np.testing.assert_array_equal(used, [1.0, 2.0, 1.0])
    np.testing.assert_allclose(given.test_logits[:, 1], analysis.test_logits[:, 1] / 2.0, rtol=1e-6)


def test_calibrated_analysis_chooses_tau_again_on_the_scaled_validation_logits():
    # Early exits that see the labels through noise, exit 1 over-confident (x3) and exit 2
    # under-confident (x0.5): on the raw logits exit 1's confident mistakes push tau* to 0,
    # on the calibrated ones tau* opens up. Keeping the old tau*, or choosing on the raw
    # validation logits, fails.
    z, labels = calibrated_source(3000, 3, seed=2)
    rng = np.random.default_rng(3)
    logits = np.stack([3.0 * (z + rng.normal(0, 2.0, z.shape)), 0.5 * (z + rng.normal(0, 1.0, z.shape)), z],
                      axis=1).astype(np.float32)
    analysis = Analysis("m", ["exit_1", "exit_2", "final"], ["a", "b", "c"], np.array([0.3, 0.6, 1.1]),
                        logits[:1500], labels[:1500], logits[1500:], labels[1500:], threshold=0.5, tolerance=0.01)
    calibrated, temps = calibration.calibrated_analysis(analysis)
    assert temps[0] > 3.0 and temps[1] < 1.0  # cools exit 1, sharpens exit 2
    raw = choose_on_validation(analysis.val_logits, analysis.val_labels, analysis.costs, analysis.tolerance)
    rechosen = choose_on_validation(calibration.apply_temperatures(analysis.val_logits, temps), analysis.val_labels,
                                    analysis.costs, analysis.tolerance)
    assert raw == 0.0 and rechosen > 0.5  # the premise: calibration moves tau*
    assert calibrated.threshold == rechosen
