"""Tests of the plots of issue #6 (policies, oracle, budget, overthinking, calibration, explorer), through their data."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import same_color

from helpers import calibration, plots

EXITS = ["exit_1", "exit_2", "final"]


def _sweep(thresholds, accuracy, cost) -> pd.DataFrame:
    return pd.DataFrame({"threshold": thresholds, "accuracy": accuracy, "relative_cost": cost,
                         "predicted_speedup": 1 / np.asarray(cost)})


def _pixel_ids(n: int, size: int = 2) -> np.ndarray:
    """Images whose pixel value is their index, so a shown image can be traced back."""
    return np.repeat(np.arange(n, dtype=np.uint8), size * size * 3).reshape(-1, size, size, 3)


# --------------------------------------------------------------------------- trade-off with policies and oracle


def test_tradeoff_extra_points_are_drawn_and_listed():
    fig = plots.plot_tradeoff({"a": _sweep([0.0, 1.0], [0.9, 0.6], [1.1, 0.3])},
                              extra_points={"oracle": (0.42, 0.95)})
    (ax,) = fig.axes
    (point,) = [ln for ln in ax.lines if ln.get_marker() == "P"]
    assert (list(point.get_xdata()), list(point.get_ydata())) == ([0.42], [0.95])
    assert point.get_label() == "oracle: 95.0% at 0.42×"
    assert "oracle: 95.0% at 0.42×" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_tradeoff_policies_one_curve_per_policy_and_the_oracle():
    sweeps = {"entropy": _sweep([0.0, 0.5, 1.0], [0.9, 0.88, 0.6], [1.1, 0.6, 0.3]),
              "max_prob": _sweep([1.0, 0.9, 0.0], [0.9, 0.86, 0.6], [1.1, 0.65, 0.3]),
              "patience": _sweep([3, 2, 1], [0.9, 0.8, 0.6], [1.1, 0.7, 0.3])}
    fig = plots.plot_tradeoff_policies(sweeps, oracle=(0.4, 0.96), baseline=(1.0, 0.91))
    ax = fig.axes[0]
    assert ax.get_title() == "exit policies against the oracle"
    curves = [ln for ln in ax.lines if ln.get_marker() == "o"]
    assert [ln.get_label() for ln in curves] == ["entropy", "max_prob", "patience"]
    np.testing.assert_allclose(curves[1].get_xdata(), [0.3, 0.65, 1.1])  # sorted by cost
    np.testing.assert_allclose(curves[2].get_ydata(), [0.6, 0.8, 0.9])
    (oracle,) = [ln for ln in ax.lines if ln.get_marker() == "P"]
    assert (list(oracle.get_xdata()), list(oracle.get_ydata())) == ([0.4], [0.96])
    assert len([ln for ln in ax.lines if ln.get_marker() == "*"]) == 1
    no_oracle = plots.plot_tradeoff_policies(sweeps)
    assert not [ln for ln in no_oracle.axes[0].lines if ln.get_marker() == "P"]


def test_calibration_tradeoff_before_solid_after_dashed():
    before, after = _sweep([0.0, 1.0], [0.9, 0.6], [1.1, 0.3]), _sweep([0.0, 0.5, 1.0], [0.9, 0.85, 0.6], [1.1, 0.5, 0.3])
    fig = plots.plot_calibration_tradeoff(before, after)
    ax = fig.axes[0]
    raw, scaled = (next(ln for ln in ax.lines if ln.get_label() == n) for n in ("uncalibrated", "temperature-scaled"))
    assert raw.get_linestyle() == "-" and scaled.get_linestyle() == "--"
    np.testing.assert_allclose(scaled.get_xdata(), [0.3, 0.5, 1.1])
    np.testing.assert_allclose(scaled.get_ydata(), [0.6, 0.85, 0.9])
    assert "calibration" in ax.get_title()


# --------------------------------------------------------------------------- budget


def test_budget_plot_lines_follow_the_table():
    table = pd.DataFrame({"budget": [0.7, 0.4], "test_accuracy": [0.9, 0.8], "test_cost": [0.68, 0.41],
                          "per_exit_test_accuracy": [0.91, 0.83], "per_exit_test_cost": [0.69, 0.4]})
    fig = plots.plot_budget(table, final_accuracy=0.92)
    ax_acc, ax_cost = fig.axes
    single, per_exit = ax_acc.lines[:2]
    np.testing.assert_allclose(single.get_xdata(), [0.4, 0.7])  # sorted by budget
    np.testing.assert_allclose(single.get_ydata(), [0.8, 0.9])
    np.testing.assert_allclose(per_exit.get_ydata(), [0.83, 0.91])
    assert per_exit.get_linestyle() == "--"
    assert list(ax_acc.lines[2].get_ydata()) == [0.92, 0.92]  # the final classifier's line
    identity = next(ln for ln in ax_cost.lines if ln.get_label() == "cost = budget")
    np.testing.assert_allclose(identity.get_ydata(), [0.4, 0.7])
    np.testing.assert_allclose(ax_cost.lines[0].get_ydata(), [0.41, 0.68])
    only_single = plots.plot_budget(table[["budget", "test_accuracy", "test_cost"]])
    assert len(only_single.axes[0].lines) == 1
    with pytest.raises(ValueError, match="empty"):
        plots.plot_budget(table.iloc[:0])


# --------------------------------------------------------------------------- overthinking


def test_overthinking_bars():
    summaries = {"flowers": {"overthinking": 0.6, "wasteful": 0.5, "destructive": 0.1, "final_error": 0.15},
                 "cifar": {"overthinking": 0.7, "wasteful": 0.55, "destructive": 0.15, "final_error": 0.2}}
    fig = plots.plot_overthinking(summaries)
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([0.6, 0.5, 0.1, 0.15, 0.7, 0.55, 0.15, 0.2])  # model by model
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["flowers", "cifar"]


def test_overthinking_examples_show_the_destructive_samples():
    exit_predictions = np.array([[0, 0, 1], [1, 1, 1], [2, 0, 1], [0, 1, 2]])  # (N=4, E=3)
    labels = np.array([0, 1, 0, 1])  # destructive: 0 (right at exit_1), 2 (right at exit_2), 3 (exit_2)
    images = _pixel_ids(4)
    fig = plots.plot_overthinking_examples(images, exit_predictions, labels, [0, 2, 3], ["a", "b", "c"], EXITS)
    shown = [ax for ax in fig.axes if ax.images]
    assert [int(ax.images[0].get_array()[0, 0, 0]) for ax in shown] == [0, 2, 3]
    assert [ax.get_title() for ax in shown] == ["exit_1: a", "exit_2: a", "exit_2: b"]
    assert [ax.get_xlabel() for ax in shown] == ["final: b", "final: b", "final: c"]
    assert all(same_color(ax.title.get_color(), plots.RIGHT_COLOUR) for ax in shown)
    assert all(same_color(ax.xaxis.label.get_color(), plots.WRONG_COLOUR) for ax in shown)
    empty = plots.plot_overthinking_examples(images, exit_predictions, labels, [], ["a", "b", "c"], EXITS)
    assert [t.get_text() for t in empty.axes[0].texts] == ["(none)"]
    with pytest.raises(ValueError, match="not destructively overthought"):
        plots.plot_overthinking_examples(images, exit_predictions, labels, [1], ["a", "b", "c"], EXITS)
    many = plots.plot_overthinking_examples(_pixel_ids(20), np.tile([0, 1, 1], (20, 1)), np.zeros(20, int),
                                            np.arange(20), ["a", "b"], EXITS, max_images=6)
    assert len([ax for ax in many.axes if ax.images]) == 6


# --------------------------------------------------------------------------- calibration


def test_reliability_panels_bars_and_ece_titles():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.7, 0.3], [0.5, 0.5]])
    labels = np.array([0, 1, 0, 1])
    raw = calibration.reliability_bins(probs, labels, n_bins=5)  # ECE 0.4
    sure = calibration.reliability_bins([[1.0, 0.0]], [0], n_bins=5)  # ECE 0
    fig = plots.plot_reliability([raw, sure], ["exit_1", "final"], calibrated=[sure, sure])
    ax1, ax2 = fig.axes
    assert [p.get_height() for p in ax1.patches] == pytest.approx([0.0, 1.0, 0.5])  # filled bins only
    assert [p.get_x() for p in ax1.patches] == pytest.approx([0.4, 0.6, 0.8])
    assert [p.get_width() for p in ax1.patches] == pytest.approx([0.2, 0.2, 0.2])
    assert ax1.get_title() == "exit_1\nECE 40.0% → 0.0% after scaling"
    assert ax2.get_title().startswith("final\nECE 0.0%")
    after = next(ln for ln in ax1.lines if ln.get_label() == "after temperature scaling")
    assert (list(after.get_xdata()), list(after.get_ydata())) == ([1.0], [1.0])
    diagonal = next(ln for ln in ax1.lines if ln.get_label() == "perfect calibration")
    assert list(diagonal.get_ydata()) == [0, 1]
    plain = plots.plot_reliability([raw], ["exit_1"])
    assert plain.axes[0].get_title() == "exit_1\nECE 40.0%"
    with pytest.raises(ValueError, match="2 exits"):
        plots.plot_reliability([raw], ["exit_1", "final"])


# --------------------------------------------------------------------------- exit histograms and the explorer state


def test_exit_histograms_name_the_threshold_and_print_integers():
    result = {"threshold": 2, "accuracy": 0.8, "relative_cost": 0.5, "exit_fractions": np.array([0.2, 0.3, 0.5])}
    fig = plots.plot_exit_histograms([result], EXITS, final_accuracy=0.9, threshold_name="p")
    assert fig.axes[0].get_title().startswith("p = 2\n")


def test_threshold_state_histogram_title_and_examples():
    exit_index = np.array([0, 0, 2, 2, 2, 0])
    predictions = np.array([0, 1, 0, 1, 1, 1])
    labels = np.array([0, 0, 0, 1, 1, 1])
    result = {"threshold": 0.35, "policy": "entropy", "accuracy": 4 / 6, "relative_cost": 0.6,
              "exit_fractions": np.array([0.5, 0.0, 0.5]), "exit_index": exit_index, "predictions": predictions}
    fig = plots.plot_threshold_state(result, EXITS, 0.9, _pixel_ids(6), labels, ["cat", "dog"], per_exit=2)
    hist, *cells = fig.axes
    assert [p.get_height() for p in hist.patches] == pytest.approx([0.5, 0.0, 0.5])
    assert hist.get_title() == "entropy: τ = 0.35\naccuracy 66.7% (final alone 90.0%)\nrelative cost 0.60× plain"
    assert len(cells) == 3 * 2
    grid = np.array(cells).reshape(3, 2)
    assert [row[0].get_ylabel() for row in grid] == EXITS
    assert not any(ax.images for ax in grid[1])  # nobody leaves at exit_2
    for e in (0, 2):
        for ax in grid[e]:
            i = int(ax.images[0].get_array()[0, 0, 0])
            assert exit_index[i] == e
            right = predictions[i] == labels[i]
            assert same_color(ax.title.get_color(), plots.RIGHT_COLOUR if right else plots.WRONG_COLOUR)
    only_hist = plots.plot_threshold_state(result | {"threshold": 3, "policy": "patience"}, EXITS, 0.9,
                                           threshold_name="p")
    assert len(only_hist.axes) == 1 and only_hist.axes[0].get_title().startswith("patience: p = 3\n")
    with pytest.raises(ValueError, match="labels and class_names"):
        plots.plot_threshold_state(result, EXITS, 0.9, _pixel_ids(6))


def test_threshold_format_keeps_the_digits_that_matter():
    result = {"threshold": 0.995, "accuracy": 0.8, "relative_cost": 0.5, "exit_fractions": np.array([0.2, 0.3, 0.5])}
    fig = plots.plot_exit_histograms([result, result | {"threshold": 0.3}], EXITS, final_accuracy=0.9)
    assert fig.axes[0].get_title().startswith("τ = 0.995\n")
    assert fig.axes[1].get_title().startswith("τ = 0.30\n")


# --------------------------------------------------------------------------- threshold rule study


def test_rule_study_plot_shows_every_halving_and_the_means():
    study = pd.DataFrame({"repeat": [0, 0, 1, 1, 2, 2], "rule": ["cheapest", "stable"] * 3,
                          "drop": [0.02, 0.0, 0.015, 0.01, -0.005, 0.005],
                          "relative_cost": [0.4, 0.5, 0.42, 0.48, 0.38, 0.52],
                          "within": [False, True, False, True, True, True]})
    fig = plots.plot_rule_study({"m1": study, "m2": study.iloc[:4]}, tolerance=0.01)
    first, second = fig.axes
    dots, means = first.collections[0::2], first.collections[1::2]
    assert [len(c.get_offsets()) for c in dots] == [3, 3] and len(second.collections[0].get_offsets()) == 2
    cheapest = dots[0].get_offsets()
    np.testing.assert_allclose(cheapest[:, 1], [0.4, 0.42, 0.38])  # costs exactly, drops jittered a little
    np.testing.assert_allclose(cheapest[:, 0], [0.02, 0.015, -0.005], atol=0.002)
    np.testing.assert_allclose(means[1].get_offsets(), [[0.005, 0.5]])
    labels = [t.get_text() for t in first.get_legend().get_texts()]
    assert labels == ["cheapest: 33% within, cost 0.40", "stable: 100% within, cost 0.50"]
    (line,) = first.lines
    assert line.get_xdata()[0] == 0.01
    with pytest.raises(ValueError, match="no rule studies"):
        plots.plot_rule_study({}, 0.01)
