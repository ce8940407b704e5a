"""Tests of helpers.plots: each plot is checked through the data on its returned Figure."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import same_color
from matplotlib.figure import Figure

from helpers import paths, plots

EXITS = ["exit_1", "exit_2", "final"]


def _heights(ax) -> list[float]:
    return [p.get_height() for p in ax.patches]


def _sweep(thresholds, accuracy, cost) -> pd.DataFrame:
    return pd.DataFrame({"threshold": thresholds, "accuracy": accuracy, "relative_cost": cost,
                         "predicted_speedup": 1 / np.asarray(cost)})


# --------------------------------------------------------------------------- palette and saving


def test_exit_palette_is_sequential_with_black_final():
    colours = plots.exit_palette(4)
    assert len(colours) == 4
    assert same_color(colours[-1], "black")
    assert not any(same_color(c, "black") for c in colours[:-1])
    assert len({tuple(c) for c in colours}) == 4
    assert same_color(plots.exit_palette(1)[0], "black")
    with pytest.raises(ValueError):
        plots.exit_palette(0)


def test_save_fig_writes_a_png_and_creates_the_folder(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    folder = tmp_path / "a" / "b"
    assert plots.save_fig(fig, "line", folder=folder) is None
    assert (folder / "line.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_save_fig_defaults_to_the_figures_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "figures_dir", lambda: tmp_path / "figures")
    plots.save_fig(plt.figure(), "empty")
    assert (tmp_path / "figures" / "empty.png").is_file()


@pytest.mark.parametrize("name", ["sub/line", "", "line.png", "..\\line"])
def test_save_fig_rejects_bad_names(tmp_path, name):
    with pytest.raises(ValueError):
        plots.save_fig(plt.figure(), name, folder=tmp_path)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- data


def test_class_balance_has_one_bar_per_class_and_split():
    counts = {"train": {"daisy": 7, "roses": 5}, "val": {"daisy": 2, "roses": 1}, "test": {"daisy": 3, "roses": 1}}
    for given in (counts, pd.DataFrame(counts)):
        fig = plots.plot_class_balance(given)
        assert isinstance(fig, Figure)
        (ax,) = fig.axes
        assert _heights(ax) == [7, 5, 2, 1, 3, 1]  # split by split, classes in order
        assert [t.get_text() for t in ax.get_xticklabels()] == ["daisy", "roses"]
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "val", "test"]


def test_sample_grid_shows_images_of_the_right_class_in_each_row():
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 2])
    # pixel value encodes the image's index, so every shown image can be traced back
    images = np.repeat(np.arange(len(labels), dtype=np.uint8), 4 * 4 * 3).reshape(-1, 4, 4, 3)
    fig = plots.plot_sample_grid(images, labels, ["a", "b", "c"], per_class=2, seed=1)
    assert len(fig.axes) == 6
    grid = np.array(fig.axes).reshape(3, 2)
    assert [row[0].get_ylabel() for row in grid] == ["a", "b", "c"]
    for c, row in enumerate(grid):
        shown = [int(ax.images[0].get_array()[0, 0, 0]) for ax in row if ax.images]
        assert len(shown) == min(2, np.sum(labels == c))
        assert all(labels[i] == c for i in shown)
        assert len(set(shown)) == len(shown)


# --------------------------------------------------------------------------- training


def test_learning_curves_one_panel_per_run_and_two_lines_per_exit():
    epochs = np.arange(3)
    multi = pd.DataFrame({"epoch": epochs, "loss": [3.0, 2.0, 1.0], "val_loss": [3.1, 2.1, 1.1]})
    for k, name in enumerate(EXITS):
        multi[f"{name}_accuracy"] = [0.1 * k + 0.1, 0.1 * k + 0.2, 0.1 * k + 0.3]
        multi[f"val_{name}_accuracy"] = [0.1 * k + 0.05, 0.1 * k + 0.15, 0.1 * k + 0.25]
        multi[f"{name}_loss"] = [1.0, 0.9, 0.8]
    plain = pd.DataFrame({"epoch": epochs, "final_accuracy": [0.4, 0.5, 0.6],
                          "val_final_accuracy": [0.35, 0.45, 0.55], "loss": [1.0, 0.8, 0.7]})
    fig = plots.plot_learning_curves({"multi": multi, "plain": plain})
    ax_multi, ax_plain = fig.axes
    assert [ax_multi.get_title(), ax_plain.get_title()] == ["multi", "plain"]
    assert len(ax_multi.lines) == 6 and len(ax_plain.lines) == 2
    solid = [ln for ln in ax_multi.lines if ln.get_linestyle() == "-"]
    dashed = [ln for ln in ax_multi.lines if ln.get_linestyle() == "--"]
    assert [ln.get_label() for ln in solid] == EXITS
    assert len(dashed) == 3
    np.testing.assert_array_equal(solid[0].get_xdata(), [1, 2, 3])  # epoch + 1
    np.testing.assert_allclose(solid[2].get_ydata(), multi["val_final_accuracy"])
    np.testing.assert_allclose(dashed[2].get_ydata(), multi["final_accuracy"])
    assert same_color(solid[2].get_color(), "black")
    assert same_color(solid[0].get_color(), dashed[0].get_color())
    val_plain, train_plain = ax_plain.lines
    np.testing.assert_allclose(val_plain.get_ydata(), plain["val_final_accuracy"])
    np.testing.assert_allclose(train_plain.get_ydata(), plain["final_accuracy"])


def test_learning_curves_order_exits_by_depth_and_reject_missing_columns():
    history = pd.DataFrame({"epoch": [0]})
    for name in ("exit_10", "final", "exit_2"):
        history[f"{name}_loss"] = [1.0]
        history[f"val_{name}_loss"] = [1.0]
    fig = plots.plot_learning_curves({"run": history}, metric="loss")
    solid = [ln.get_label() for ln in fig.axes[0].lines if ln.get_linestyle() == "-"]
    assert solid == ["exit_2", "exit_10", "final"]
    with pytest.raises(ValueError, match="accuracy"):
        plots.plot_learning_curves({"empty": pd.DataFrame()})


# --------------------------------------------------------------------------- exits


def test_exit_accuracy_skips_exits_a_model_does_not_have():
    accs = {"multi": {"exit_1": 0.5, "exit_2": 0.7, "final": 0.9}, "plain": {"final": 0.95}}
    fig = plots.plot_exit_accuracy(accs, EXITS)
    (ax,) = fig.axes
    assert _heights(ax) == pytest.approx([0.5, 0.7, 0.9, 0.95])
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["50.0%", "70.0%", "90.0%", "95.0%"]
    # the plain model's only bar sits in the "final" group, right of the multi-exit bar
    final_multi, final_plain = ax.patches[2], ax.patches[3]
    assert final_multi.get_x() < final_plain.get_x() < 2.5
    with pytest.raises(ValueError, match="exit_3"):
        plots.plot_exit_accuracy({"m": {"exit_3": 0.1}}, EXITS)


def _result(threshold, fractions, accuracy, cost):
    return {"threshold": threshold, "accuracy": accuracy, "relative_cost": cost,
            "predicted_speedup": 1 / cost, "exit_fractions": np.asarray(fractions)}


def test_exit_histograms_bar_heights_are_the_exit_fractions():
    results = [_result(0.3, [0.5, 0.25, 0.25], 0.88, 0.4321), _result(0.0, [0.0, 0.0, 1.0], 0.9, 1.1)]
    fig = plots.plot_exit_histograms(results, EXITS, final_accuracy=0.9)
    assert len(fig.axes) == 2
    assert _heights(fig.axes[0]) == pytest.approx([0.5, 0.25, 0.25])
    assert _heights(fig.axes[1]) == pytest.approx([0.0, 0.0, 1.0])
    title = fig.axes[0].get_title()
    assert "τ = 0.30" in title and "88.0%" in title and "drop 2.0 pts" in title and "0.43×" in title
    assert "τ = 0.00" in fig.axes[1].get_title()
    assert same_color(fig.axes[0].patches[-1].get_facecolor(), "black")
    with pytest.raises(ValueError, match="3 exit names"):
        plots.plot_exit_histograms([_result(0.5, [1.0, 0.0], 0.9, 0.5)], EXITS, 0.9)


def test_exit_histograms_accept_evaluate_threshold_results():
    evaluation = pytest.importorskip("helpers.evaluation")
    logits = np.array([[[9, 0], [9, 0]], [[0, 0], [0, 9]], [[0, 0], [0, 0]]], dtype=np.float32)  # (N=3, E=2, K=2)
    labels = np.array([0, 1, 1])
    result = evaluation.evaluate_threshold(logits, labels, [0.5, 1.0], 0.5)
    fig = plots.plot_exit_histograms([result], ["exit_1", "final"], final_accuracy=2 / 3)
    assert _heights(fig.axes[0]) == pytest.approx([1 / 3, 2 / 3])


def test_exit_examples_rows_per_exit_with_coloured_titles():
    labels = np.array([0, 1, 0, 1, 0, 1])
    predictions = np.array([0, 0, 0, 1, 1, 1])
    exit_index = np.array([0, 0, 2, 2, 2, 0])  # nobody leaves at exit_2
    images = np.repeat(np.arange(6, dtype=np.uint8), 2 * 2 * 3).reshape(-1, 2, 2, 3)
    fig = plots.plot_exit_examples(images, exit_index, EXITS, predictions, labels, ["cat", "dog"], per_exit=2)
    grid = np.array(fig.axes).reshape(3, 2)
    assert [row[0].get_ylabel().split("\n")[0] for row in grid] == EXITS
    assert [t.get_text() for t in grid[1, 0].texts] == ["(none)"]
    assert not any(ax.images for ax in grid[1])
    shown = 0
    for e in (0, 2):
        for ax in grid[e]:
            i = int(ax.images[0].get_array()[0, 0, 0])
            assert exit_index[i] == e
            title = ax.title
            assert title.get_text().split("\n")[0] == ["cat", "dog"][predictions[i]]
            wanted = plots.RIGHT_COLOUR if predictions[i] == labels[i] else plots.WRONG_COLOUR
            assert same_color(title.get_color(), wanted)
            shown += 1
    assert shown == 4


# --------------------------------------------------------------------------- thresholds and trade-off


def test_accuracy_vs_threshold_two_shared_axes_one_line_per_model():
    sweeps = {"a": _sweep([0.5, 0.0, 1.0], [0.8, 0.9, 0.6], [0.6, 1.1, 0.3]),
              "b": _sweep([0.0, 1.0], [0.85, 0.7], [1.05, 0.4])}
    fig = plots.plot_accuracy_vs_threshold(sweeps)
    ax_acc, ax_cost = fig.axes
    assert ax_acc.get_shared_x_axes().joined(ax_acc, ax_cost)
    assert [ln.get_label() for ln in ax_acc.lines] == ["a", "b"]
    np.testing.assert_allclose(ax_acc.lines[0].get_xdata(), [0.0, 0.5, 1.0])  # sorted by tau
    np.testing.assert_allclose(ax_acc.lines[0].get_ydata(), [0.9, 0.8, 0.6])
    np.testing.assert_allclose(ax_cost.lines[1].get_ydata(), [1.05, 0.4])
    assert [ln.get_label() for ln in ax_cost.lines] == ["a", "b", "plain network"]


def test_tradeoff_curves_baseline_star_and_operating_points():
    sweeps = {"a": _sweep([0.0, 1.0, 0.5], [0.9, 0.6, 0.85], [1.1, 0.3, 0.6])}
    fig = plots.plot_tradeoff(sweeps, baseline=(1.0, 0.92), operating_points={"a": (0.6, 0.85)})
    (ax,) = fig.axes
    assert ax.get_xlabel() == "relative cost (MACs / plain network, heads included)"
    curve = next(ln for ln in ax.lines if ln.get_label() == "a")
    np.testing.assert_allclose(curve.get_xdata(), [0.3, 0.6, 1.1])  # sorted by cost
    np.testing.assert_allclose(curve.get_ydata(), [0.6, 0.85, 0.9])
    (star,) = [ln for ln in ax.lines if ln.get_marker() == "*"]
    assert star.get_label() == "plain VGG11"
    assert (list(star.get_xdata()), list(star.get_ydata())) == ([1.0], [0.92])
    (point,) = [ln for ln in ax.lines if ln.get_marker() == "D"]
    assert (list(point.get_xdata()), list(point.get_ydata())) == ([0.6], [0.85])
    assert same_color(point.get_color(), curve.get_color())
    assert point.get_label() == "a: 85.0% at 0.60×"
    # one legend entry for the model: its curve and its point together
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a; τ*: 85.0% at 0.60×", "plain VGG11"]
    plt.close(fig)
    fig = plots.plot_tradeoff(sweeps, operating_points={"not a model": (0.5, 0.8)})
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["a", "not a model: 80.0% at 0.50×"]


def test_tradeoff_legend_moves_beside_the_axes_only_when_it_would_cover_curves():
    def legend_right_of_axes(n_models):
        names = [f"m{i}" for i in range(n_models)]
        sweeps = {n: _sweep([0.0, 1.0], [0.9, 0.6], [1.1, 0.3]) for n in names}
        fig = plots.plot_tradeoff(sweeps, baseline=(1.0, 0.92), operating_points={n: (0.6, 0.8) for n in names})
        (ax,) = fig.axes
        fig.canvas.draw()
        legend, axes = ax.get_legend().get_window_extent(), ax.get_window_extent()
        assert len(ax.get_legend().get_texts()) == n_models + 1  # every model (curve and point) and the star
        return legend.x0 >= axes.x1

    few = plots.LEGEND_INSIDE_MAX - 1  # models + star within the limit
    assert not legend_right_of_axes(few)
    assert legend_right_of_axes(few + 1)


def test_tradeoff_without_baseline_has_no_star():
    fig = plots.plot_tradeoff({"a": _sweep([0.0, 1.0], [0.9, 0.6], [1.1, 0.3])})
    assert [ln.get_marker() for ln in fig.axes[0].lines] == ["o"]


# --------------------------------------------------------------------------- errors


LABELS = np.array([0, 0, 0, 1, 1, 2])
PREDICTIONS = np.array([0, 1, 0, 1, 1, 0])


def test_confusion_matrix_values_match_hand_computed_fractions():
    expected = np.array([[2 / 3, 1 / 3, 0], [0, 1, 0], [1, 0, 0]])
    fig = plots.plot_confusion_matrix(LABELS, PREDICTIONS, ["a", "b", "c"])
    ax = fig.axes[0]
    assert ax.get_title() == "confusion matrix"
    cells = np.asarray(ax.collections[0].get_array()).reshape(3, 3)
    np.testing.assert_allclose(cells, expected)
    assert [t.get_text() for t in ax.texts] == [f"{v:.2f}" for v in expected.ravel()]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]


def test_confusion_matrix_counts_and_bad_input():
    fig = plots.plot_confusion_matrix(LABELS, PREDICTIONS, ["a", "b", "c"], normalize=False)
    assert [t.get_text() for t in fig.axes[0].texts] == ["2", "1", "0", "0", "2", "0", "1", "0", "0"]
    empty_row = plots.confusion_matrix([0, 0], [0, 1], 3)
    np.testing.assert_allclose(empty_row, [[0.5, 0.5, 0], [0, 0, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match="predictions"):
        plots.plot_confusion_matrix([0, 1], [0, 3], ["a", "b", "c"])


def test_model_colours_stay_distinct_beyond_ten_models():
    ten = [f"m{i}" for i in range(10)]
    assert list(plots._model_colours(ten).values()) == list(plt.get_cmap("tab10").colors)
    eleven = plots._model_colours(ten + ["m10"])
    assert len(set(eleven.values())) == 11
    assert plots._model_colours(ten + ["m10"]) == eleven  # stable for the same list


def test_batch_size_sweep_plots_measured_and_predicted_per_label():
    sweep = pd.DataFrame({"measured_speedup": [1.1, 1.4, 1.6], "predicted_speedup": [2.0, 2.0, 2.0],
                          "full_img_s": [100.0, 200.0, 250.0], "early_exit_img_s": [110.0, 280.0, 400.0]},
                         index=pd.Index([1, 16, 256], name="batch_size"))
    fig = plots.plot_batch_size_sweep({"float32": sweep, "mixed_bfloat16": sweep * 0.5})
    ax, ax_rate = fig.axes
    rates = {line.get_label(): list(line.get_ydata()) for line in ax_rate.get_lines()}
    assert rates["float32: early exit"] == [110.0, 280.0, 400.0]
    assert rates["mixed_bfloat16: plain network"] == [50.0, 100.0, 125.0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["float32: measured"].get_ydata()) == [1.1, 1.4, 1.6]
    assert list(lines["mixed_bfloat16: predicted by MACs"].get_ydata()) == [1.0, 1.0, 1.0]
    assert list(lines["float32: measured"].get_xdata()) == [1, 16, 256]
    assert same_color(lines["float32: measured"].get_color(), lines["float32: predicted by MACs"].get_color())
    assert any(list(line.get_ydata()) == [1.0, 1.0] for line in ax.get_lines())  # break-even
    assert ax.get_xscale() == "log"
    for a in (ax, ax_rate):  # ticks at the batch sizes measured, labelled as plain numbers
        assert [t.get_text() for t in a.get_xticklabels()] == ["1", "16", "256"]
    plt.close(fig)
    with pytest.raises(ValueError):
        plots.plot_batch_size_sweep({})


def test_plot_threshold_sweep_draws_measured_and_predicted_and_the_band():
    sweep = pd.DataFrame({"accuracy": [0.83, 0.84, 0.80], "measured_speedup": [1.8, 1.2, 2.3],
                          "predicted_speedup": [2.0, 1.3, 2.6], "full_accuracy": [0.835] * 3},
                         index=pd.Index([0.4, 0.1, 0.6], name="threshold"))  # unsorted on purpose
    fig = plots.plot_threshold_sweep(sweep, operating=0.4)
    ax, ax_acc = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["measured"].get_xdata()) == [0.1, 0.4, 0.6]  # sorted by threshold
    assert list(lines["measured"].get_ydata()) == [1.2, 1.8, 2.3]
    assert list(lines["predicted by MACs"].get_ydata()) == [1.3, 2.0, 2.6]
    assert list(lines["τ* = 0.4: 1.80×"].get_ydata()) == [1.8]
    acc = {line.get_label(): line for line in ax_acc.get_lines()}
    assert list(acc["early exit, measured"].get_xdata()) == [1.2, 1.8, 2.3]
    assert list(acc["early exit, predicted by MACs"].get_xdata()) == [1.3, 2.0, 2.6]
    assert list(acc["early exit, measured"].get_ydata()) == [0.84, 0.83, 0.80]
    assert list(acc["plain network: 83.5%"].get_ydata()) == [0.835, 0.835]
    assert list(acc["τ*: 83.0% at 1.80×"].get_xdata()) == [1.8]
    (band,) = [p for p in ax_acc.patches if p.get_label() == "within 1 point of it"]
    assert band.get_y() == pytest.approx(0.825) and band.get_height() == pytest.approx(0.01)
    plt.close(fig)
    with pytest.raises(ValueError, match="not one of the sweep's thresholds"):
        plots.plot_threshold_sweep(sweep, operating=0.5)
    with pytest.raises(ValueError, match="no rows"):
        plots.plot_threshold_sweep(sweep.iloc[:0])


def test_plot_exit_subsets_marks_every_exit_and_the_chosen_subset_on_both_splits():
    study = pd.DataFrame({"early_exits": [1, 2, 0], "val_drop": [0.9, 0.5, 0.0], "val_relative_cost": [0.4, 0.5, 1.0],
                          "test_drop": [2.0, 0.3, 0.0], "test_relative_cost": [0.45, 0.48, 1.0],
                          "chosen": [True, False, False]},
                         index=pd.Index(["exit_2", "exit_1+exit_2", "none"], name="exits"))
    fig = plots.plot_exit_subsets(study)
    for ax, split in zip(fig.axes, ("val", "test"), strict=True):
        dots = {c.get_label(): c.get_offsets() for c in ax.collections if c.get_label() and not c.get_label().startswith("cost")}
        np.testing.assert_allclose(dots["a subset of the exits"],
                                   study[[f"{split}_relative_cost", f"{split}_drop"]].to_numpy())
        np.testing.assert_allclose(dots["every exit"], study.loc[["exit_1+exit_2"], [f"{split}_relative_cost", f"{split}_drop"]])
        np.testing.assert_allclose(dots["chosen on validation: exit_2"],
                                   study.loc[["exit_2"], [f"{split}_relative_cost", f"{split}_drop"]])
        assert any(list(line.get_ydata()) == [1.0, 1.0] for line in ax.get_lines())  # the tolerance, in points
        assert any(list(line.get_xdata()) == [0.5, 0.5] for line in ax.get_lines())  # the budget
    plt.close(fig)
    with pytest.raises(ValueError, match="no rows"):
        plots.plot_exit_subsets(study.iloc[:0])
