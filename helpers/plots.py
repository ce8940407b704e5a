"""Plots for the lessons: data, training curves, exits, thresholds and the cost/accuracy trade-off.

Every function returns a ``matplotlib.figure.Figure`` and leaves showing it to
the caller (a notebook shows the figure a cell returns); ``save_fig`` writes it
to ``figures/``. Nothing here changes matplotlib's global style: the styling is
applied to each figure's own axes.

Colours: exits are coloured by depth with a sequential colormap (``exit_palette``),
the final classifier in black; models are coloured with a qualitative palette.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D
from matplotlib.ticker import (
    LogLocator,
    MaxNLocator,
    NullFormatter,
    NullLocator,
    PercentFormatter,
    ScalarFormatter,
)

from helpers import paths

RIGHT_COLOUR = "tab:green"
EXTRA_POINT_COLOURS = ("gold", "tab:cyan", "tab:pink")
WRONG_COLOUR = "tab:red"
COST_LABEL = "relative cost (MACs / plain network, heads included)"
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg")


# --------------------------------------------------------------------------- shared styling


def exit_palette(n: int, cmap: str = "viridis") -> list[tuple[float, float, float, float]]:
    """Colours for ``n`` exits ordered by depth; the last one (the final classifier) is black.

    Args:
        n: number of exits, final classifier included.
        cmap: a sequential matplotlib colormap for the early exits.

    Returns:
        ``n`` RGBA tuples.
    """
    if n < 1:
        raise ValueError(f"need at least one exit, got n={n}")
    early = plt.get_cmap(cmap)(np.linspace(0.15, 0.85, n - 1)) if n > 1 else []
    return [tuple(float(v) for v in c) for c in early] + [(0.0, 0.0, 0.0, 1.0)]


def _model_colours(names: Sequence[str]) -> dict[str, tuple]:
    """One qualitative colour per model name, stable across figures for the same list.

    tab10 for up to ten models; tab20 beyond, so that up to twenty get distinct colours.
    """
    cycle = plt.get_cmap("tab10" if len(names) <= 10 else "tab20").colors
    return {name: cycle[i % len(cycle)] for i, name in enumerate(names)}


def _style(ax: Axes, grid_axis: str = "y") -> None:
    """Light grid behind the data and no top/right frame."""
    ax.grid(True, axis=grid_axis, alpha=0.3)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)


def _percent_axis(ax: Axes, axis: str = "y") -> None:
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(PercentFormatter(1.0))


def _subplot_grid(n: int, max_cols: int, cell: tuple[float, float], **kwargs) -> tuple[Figure, list[Axes]]:
    """``n`` panels in rows of at most ``max_cols``; unused cells are removed."""
    ncols = min(n, max_cols)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(cell[0] * ncols, cell[1] * nrows), squeeze=False, **kwargs
    )
    flat = list(axes.ravel())
    for ax in flat[n:]:
        fig.delaxes(ax)
    return fig, flat[:n]


def _grouped_bars(
    ax: Axes,
    table: pd.DataFrame,
    colours: Mapping[str, object],
    fmt: Callable[[float], str],
    width: float = 0.8,
) -> None:
    """One group of bars per row of ``table``, one bar per column; NaN cells are skipped.

    Each bar is labelled with ``fmt(height)``; the legend names the columns.
    """
    positions = np.arange(len(table.index))
    n = max(len(table.columns), 1)
    bar_width = width / n
    for j, column in enumerate(table.columns):
        values = table[column].to_numpy(dtype=float)
        present = ~np.isnan(values)
        if not present.any():
            continue
        offset = (j - (n - 1) / 2) * bar_width
        bars = ax.bar(positions[present] + offset, values[present], bar_width,
                      label=str(column), color=colours[column])
        ax.bar_label(bars, labels=[fmt(v) for v in values[present]], fontsize=8, padding=2)
    ax.set_xticks(positions, [str(i) for i in table.index])
    _style(ax)


def _bare(ax: Axes) -> None:
    """No ticks and no frame (image cells that keep their y label)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _image_grid(nrows: int, ncols: int, cell: float = 1.6) -> tuple[Figure, np.ndarray]:
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols, cell * nrows + 0.3), squeeze=False)
    for ax in axes.ravel():
        _bare(ax)
    return fig, axes


def _pick(indices: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``k`` of ``indices`` at random, without replacement, in increasing order."""
    if len(indices) <= k:
        return np.asarray(indices)
    return np.sort(rng.choice(indices, size=k, replace=False))


# --------------------------------------------------------------------------- saving


def save_fig(fig: Figure, name: str, folder: str | Path | None = None, dpi: int = 120) -> None:
    """Write ``fig`` to ``<folder>/<name>.png``.

    Returns nothing, so that a notebook cell ending in ``save_fig(...)`` shows the
    figure and not a machine-specific path.

    Args:
        fig: the figure.
        name: file name without extension and without a folder (``"tradeoff"``).
        folder: where to write; default ``helpers.paths.figures_dir()``. Created if missing.
        dpi: resolution.
    """
    if not name or "/" in name or "\\" in name:
        raise ValueError(f"figure name must be a plain file name without folders, got {name!r}; "
                         "pass the folder as folder=...")
    if name.lower().endswith(_IMAGE_SUFFIXES):
        raise ValueError(f"give the figure name without extension (got {name!r}); it is saved as PNG")
    folder = Path(folder) if folder is not None else paths.figures_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight")


# --------------------------------------------------------------------------- data


def plot_class_balance(counts: Mapping[str, Mapping[str, int]] | pd.DataFrame) -> Figure:
    """Grouped bars: number of images per class in each split.

    Args:
        counts: a DataFrame with class names as index and split names as columns
            (``pd.DataFrame({split: imageset.class_counts()})``), or the mapping
            ``{split: {class: count}}`` it is built from.

    Returns:
        The figure (one bar per class and split, labelled with its count).
    """
    table = counts if isinstance(counts, pd.DataFrame) else pd.DataFrame(counts)
    set2 = plt.get_cmap("Set2").colors
    colours = {split: set2[j % len(set2)] for j, split in enumerate(table.columns)}
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(table.index)), 3.8))
    _grouped_bars(ax, table, colours, lambda v: f"{v:.0f}")
    ax.set_ylabel("images")
    ax.set_title("images per class and split")
    ax.legend(title="split", frameon=False)
    ax.margins(y=0.1)
    return fig


def plot_sample_grid(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    per_class: int = 4,
    seed: int = 0,
    title: str = "example images per class",
) -> Figure:
    """Random example images: one row per class, ``per_class`` images each.

    Args:
        images: uint8 ``(N, H, W, 3)``.
        labels: int ``(N,)`` indices into ``class_names``.
        class_names: class names in label order (the row labels).
        per_class: images per row (fewer if a class has fewer images).
        seed: seed of the random choice.
        title: the figure's title.

    Returns:
        The figure (``len(class_names) * per_class`` axes).
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    fig, axes = _image_grid(len(class_names), per_class)
    for c, name in enumerate(class_names):
        chosen = _pick(np.flatnonzero(labels == c), per_class, rng)
        for j, ax in enumerate(axes[c]):
            if j < len(chosen):
                ax.imshow(images[chosen[j]])
        axes[c, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=11)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- training


def _exit_order(name: str) -> tuple[int, int]:
    """Sort key: ``exit_1``, ``exit_2``, ..., ``exit_10``, anything else, then ``final``."""
    if name == "final":
        return (2, 0)
    match = re.fullmatch(r"exit_(\d+)", name)
    return (0, int(match.group(1))) if match else (1, 0)


def _history_outputs(history: pd.DataFrame, metric: str) -> list[str]:
    """The outputs with a training ``<output>_<metric>`` column, deepest last."""
    suffix = f"_{metric}"
    names = [c[: -len(suffix)] for c in history.columns
             if c.endswith(suffix) and not c.startswith("val_") and len(c) > len(suffix)]
    return sorted(names, key=_exit_order)


def plot_learning_curves(histories: Mapping[str, pd.DataFrame], metric: str = "accuracy") -> Figure:
    """Per-exit learning curves of several runs, one panel per run.

    Args:
        histories: run name -> the DataFrame of its ``history.csv`` (Keras CSVLogger:
            ``epoch``, ``<output>_<metric>``, ``val_<output>_<metric>``, ...).
        metric: ``"accuracy"`` or ``"loss"``; the per-output columns are plotted.

    Returns:
        The figure: validation solid, training dashed, same colour per exit.
    """
    if not histories:
        raise ValueError("no histories to plot; pass {run name: history DataFrame}")
    outputs = {run: _history_outputs(history, metric) for run, history in histories.items()}
    for run, history in histories.items():
        if "epoch" not in history.columns or not outputs[run]:
            raise ValueError(
                f"history of {run!r} has no 'epoch' and '<output>_{metric}' columns "
                f"(columns: {list(history.columns)}); is the run trained, and is the metric right?"
            )
    # one colour per output name across all runs, so the panels share one legend
    names = sorted({n for run_outputs in outputs.values() for n in run_outputs}, key=_exit_order)
    colours = dict(zip(names, exit_palette(len(names)), strict=True))
    fig, axes = _subplot_grid(len(histories), 3, (4.4, 3.4), sharey=True, layout="constrained")
    for ax, (run, history) in zip(axes, histories.items(), strict=True):
        epochs = history["epoch"].to_numpy() + 1
        for name in outputs[run]:
            val = f"val_{name}_{metric}"
            if val in history.columns:
                ax.plot(epochs, history[val], color=colours[name], lw=1.8, label=name)
            ax.plot(epochs, history[f"{name}_{metric}"], color=colours[name], lw=1.2, ls="--")
        ax.set_title(run)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _style(ax, "both")
        if metric == "accuracy":
            _percent_axis(ax)
    axes[0].set_ylabel(metric)
    handles = [Line2D([], [], color=colours[n], lw=1.8, label=n) for n in names]
    handles += [Line2D([], [], color="grey", lw=1.8, label="validation"),
                Line2D([], [], color="grey", lw=1.2, ls="--", label="train")]
    fig.legend(handles=handles, loc="outside right upper", fontsize=9, frameon=False)
    return fig


# --------------------------------------------------------------------------- exits


def plot_exit_accuracy(accuracies: Mapping[str, Mapping[str, float]], exit_names: Sequence[str]) -> Figure:
    """Grouped bars: the accuracy of every exit of several models.

    Args:
        accuracies: model name -> {exit name -> accuracy in [0, 1]}; a model lacks the
            exits it does not have (a plain model has only ``final``).
        exit_names: the exits, in the order of the x axis.

    Returns:
        The figure (one bar per model and exit it has, labelled in %).
    """
    for model, accs in accuracies.items():
        unknown = set(accs) - set(exit_names)
        if unknown:
            raise ValueError(f"model {model!r} has accuracies for {sorted(unknown)}, "
                             f"which are not in exit_names {list(exit_names)}")
    table = pd.DataFrame({m: {e: accs.get(e, np.nan) for e in exit_names} for m, accs in accuracies.items()},
                         index=list(exit_names), columns=list(accuracies))
    width = max(6.0, 1.4 * len(exit_names), 0.5 * len(exit_names) * len(accuracies) + 1.5)
    fig, ax = plt.subplots(figsize=(width, 3.8))
    _grouped_bars(ax, table, _model_colours(list(accuracies)), lambda v: f"{v:.1%}")
    ax.set_ylim(0, 1.1)
    _percent_axis(ax)
    ax.set_ylabel("accuracy")
    ax.set_title("accuracy of each exit")
    ax.legend(frameon=False, fontsize=9, loc="upper left")
    return fig


def _format_threshold(threshold) -> str:
    """``0.30`` for a number in [0, 1] (``0.995`` when two decimals are not enough), ``2`` for an integer."""
    if isinstance(threshold, (int, np.integer)) and not isinstance(threshold, bool):
        return str(int(threshold))
    text = f"{float(threshold):.2f}"
    if abs(float(text) - float(threshold)) > 1e-9:  # 0.995 or 0.9999: show the digits that matter
        text = f"{float(threshold):.4f}".rstrip("0")
    return text


def plot_exit_histograms(
    results: Sequence[dict], exit_names: Sequence[str], final_accuracy: float, threshold_name: str = "τ"
) -> Figure:
    """Where the samples leave, for a few thresholds: one panel per threshold.

    Args:
        results: dicts from ``helpers.evaluation.evaluate_threshold`` (``threshold``,
            ``accuracy``, ``relative_cost``, ``exit_fractions``).
        exit_names: the exits, in order.
        final_accuracy: the final classifier's accuracy, the reference for the drop.
        threshold_name: symbol of the threshold in the titles (``"p"`` for patience).

    Returns:
        The figure; each bar is the fraction of samples leaving at an exit.
    """
    if not results:
        raise ValueError("no threshold results to plot")
    colours = exit_palette(len(exit_names))
    fig, axes = _subplot_grid(len(results), 4, (3.6, 3.4), sharey=True)
    for ax, result in zip(axes, results, strict=True):
        fractions = np.asarray(result["exit_fractions"], dtype=float)
        if fractions.shape != (len(exit_names),):
            raise ValueError(f"result at threshold {result['threshold']} has {fractions.size} exit "
                             f"fractions but there are {len(exit_names)} exit names")
        bars = ax.bar(range(len(exit_names)), fractions, color=colours)
        ax.bar_label(bars, labels=[f"{f:.0%}" for f in fractions], fontsize=8, padding=2)
        ax.set_xticks(range(len(exit_names)), list(exit_names), rotation=30, ha="right")
        drop = 100 * (final_accuracy - result["accuracy"])
        ax.set_title(
            f"{threshold_name} = {_format_threshold(result['threshold'])}\n"
            f"accuracy {result['accuracy']:.1%} (drop {drop:.1f} pts)\n"
            f"cost {result['relative_cost']:.2f}× plain, heads included",
            fontsize=9,
        )
        ax.set_ylim(0, 1.12)
        _percent_axis(ax)
        _style(ax)
    axes[0].set_ylabel("samples leaving here")
    fig.tight_layout()
    return fig


def plot_exit_examples(
    images: np.ndarray,
    exit_index: np.ndarray,
    exit_names: Sequence[str],
    predictions: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    per_exit: int = 5,
    seed: int = 0,
) -> Figure:
    """Random images that left at each exit, titled with their prediction.

    Args:
        images: uint8 ``(N, H, W, 3)``.
        exit_index: 0-based exit of each image ``(N,)`` (``evaluate_threshold``'s ``exit_index``).
        exit_names: the exits, in order (the row labels).
        predictions: predicted class of each image ``(N,)``.
        labels: true class of each image ``(N,)``.
        class_names: class names in label order.
        per_exit: images per row at most.
        seed: seed of the random choice.

    Returns:
        The figure: one row per exit; titles green when right, red (with the true
        class) when wrong; an exit no image left at shows "(none)".
    """
    exit_index, predictions, labels = (np.asarray(a) for a in (exit_index, predictions, labels))
    rng = np.random.default_rng(seed)
    fig, axes = _image_grid(len(exit_names), per_exit, cell=1.7)
    for e, name in enumerate(exit_names):
        members = np.flatnonzero(exit_index == e)
        axes[e, 0].set_ylabel(f"{name}\n{len(members)} images", rotation=0, ha="right", va="center")
        if len(members) == 0:
            axes[e, 0].text(0.5, 0.5, "(none)", ha="center", va="center", color="grey",
                            transform=axes[e, 0].transAxes)
        for ax, i in zip(axes[e], _pick(members, per_exit, rng), strict=False):
            ax.imshow(images[i])
            right = predictions[i] == labels[i]
            title = class_names[predictions[i]] + ("" if right else f"\n(true: {class_names[labels[i]]})")
            ax.set_title(title, fontsize=9, color=RIGHT_COLOUR if right else WRONG_COLOUR)
    fig.suptitle("where images leave (title: prediction)")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- thresholds and trade-off


def plot_accuracy_vs_threshold(sweeps: Mapping[str, pd.DataFrame]) -> Figure:
    """Accuracy (top) and relative cost (bottom) against the threshold τ, one line per model.

    Args:
        sweeps: model name -> a ``helpers.evaluation.sweep`` DataFrame.

    Returns:
        The figure with two axes sharing x; the bottom one has a dotted line at the
        plain network's cost (1.0).
    """
    fig, (ax_acc, ax_cost) = plt.subplots(2, 1, figsize=(6.4, 5.6), sharex=True)
    colours = _model_colours(list(sweeps))
    for model, df in sweeps.items():
        df = df.sort_values("threshold")
        ax_acc.plot(df["threshold"], df["accuracy"], color=colours[model], lw=1.8, label=model)
        ax_cost.plot(df["threshold"], df["relative_cost"], color=colours[model], lw=1.8, label=model)
    ax_cost.axhline(1.0, color="grey", ls=":", lw=1.2, label="plain network")
    ax_acc.set_ylabel("accuracy")
    _percent_axis(ax_acc)
    ax_acc.set_title("accuracy and cost against the exit threshold")
    ax_acc.legend(frameon=False, fontsize=9)
    ax_cost.set_ylabel("relative cost\n(× plain network)")
    ax_cost.set_xlabel("entropy threshold τ (0: everyone reaches the final exit)")
    ax_cost.annotate("plain network", (1.0, 1.0), xycoords=("axes fraction", "data"), xytext=(0, 3),
                     textcoords="offset points", ha="right", va="bottom", fontsize=8, color="grey")
    for ax in (ax_acc, ax_cost):
        _style(ax, "both")
    fig.tight_layout()
    return fig


LEGEND_INSIDE_MAX = 8
"""The trade-off legend sits in the lower right corner up to this many entries, beside the axes beyond."""


def plot_tradeoff(
    sweeps: Mapping[str, pd.DataFrame],
    baseline: tuple[float, float] | None = None,
    baseline_label: str = "plain VGG11",
    operating_points: Mapping[str, tuple[float, float]] | None = None,
    extra_points: Mapping[str, tuple[float, float]] | None = None,
) -> Figure:
    """Accuracy against relative cost: one curve per model, a baseline and chosen operating points.

    Args:
        sweeps: model name -> a ``helpers.evaluation.sweep`` DataFrame.
        baseline: ``(cost, accuracy)`` of the reference network, typically ``(1.0, plain accuracy)``;
            drawn as a star with dotted guide lines.
        baseline_label: legend label of the baseline.
        operating_points: label -> ``(cost, accuracy)`` of chosen thresholds, drawn as
            diamonds and listed in the legend with their accuracy and cost. A point
            labelled with a model's name takes that model's colour and shares its legend
            entry (curve and diamond side by side), so the legend has one line per model.
        extra_points: label -> ``(cost, accuracy)`` of reference points that are not on
            a curve (the oracle), drawn as large "P" markers and listed in the legend.

    Returns:
        The figure.
    """
    fig, ax = plt.subplots(figsize=(6.8, 4.6))
    colours = _model_colours(list(sweeps))
    legend: dict = {}  # model name, or (kind, label) for the rest -> (handle, text), in drawing order
    for model, df in sweeps.items():
        df = df.sort_values(["relative_cost", "accuracy"])
        (line,) = ax.plot(df["relative_cost"], df["accuracy"], color=colours[model], lw=1.5,
                          marker="o", ms=3.5, label=model)
        legend[model] = (line, model)
    if baseline is not None:
        cost, acc = baseline
        ax.axhline(acc, color="grey", ls=":", lw=1.0)
        ax.axvline(cost, color="grey", ls=":", lw=1.0)
        (star,) = ax.plot([cost], [acc], ls="none", marker="*", ms=16, color="black", label=baseline_label, zorder=5)
        legend[("baseline",)] = (star, baseline_label)
    def at(cost: float, acc: float) -> str:  # how every point reads in the legend
        return f"{acc:.1%} at {cost:.2f}×"

    for k, (label, (cost, acc)) in enumerate((extra_points or {}).items()):
        colour = EXTRA_POINT_COLOURS[k % len(EXTRA_POINT_COLOURS)]
        text = f"{label}: {at(cost, acc)}"
        (point,) = ax.plot([cost], [acc], ls="none", marker="P", ms=13, color=colour, markeredgecolor="black",
                           label=text, zorder=7)
        legend[("extra", label)] = (point, text)
    for label, (cost, acc) in (operating_points or {}).items():
        colour = colours.get(label, "tab:red")
        # listed in the legend rather than written beside the point: close points would overlap
        text = f"{label}: {at(cost, acc)}"
        (point,) = ax.plot([cost], [acc], ls="none", marker="D", ms=8, color=colour, markeredgecolor="black",
                           zorder=6, label=text)
        if label in sweeps:  # one legend entry for the model: its curve and its point side by side
            line, _ = legend[label]
            legend[label] = ((line, point), f"{label}; τ*: {at(cost, acc)}")
        else:
            legend[("point", label)] = (point, text)
    handles, texts = zip(*legend.values(), strict=True) if legend else ((), ())
    ax.set_xlabel(COST_LABEL)
    ax.set_ylabel("accuracy")
    _percent_axis(ax)
    ax.set_title("accuracy against compute")
    pairs = {tuple: HandlerTuple(ndivide=None, pad=0.6)}
    if len(handles) > LEGEND_INSIDE_MAX:  # inside, it would hide curves: beside the axes
        fig.set_size_inches(10.0, fig.get_size_inches()[1])  # wider, for the legend
        ax.legend(handles, texts, handler_map=pairs, frameon=False, fontsize=8, loc="center left",
                  bbox_to_anchor=(1.01, 0.5))
    else:
        ax.legend(handles, texts, handler_map=pairs, frameon=False, fontsize=8 if operating_points else 9,
                  loc="lower right")
    _style(ax, "both")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- errors


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int,
                     normalize: bool = True) -> np.ndarray:
    """Counts (or row fractions) of true class (rows) against predicted class (columns).

    Args:
        labels: true classes ``(N,)``.
        predictions: predicted classes ``(N,)``.
        num_classes: number of classes K.
        normalize: divide each row by its number of samples (an empty row stays 0).

    Returns:
        ``(K, K)`` int counts, or float fractions whose non-empty rows sum to 1.
    """
    labels, predictions = np.asarray(labels, dtype=int), np.asarray(predictions, dtype=int)
    if labels.shape != predictions.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} differ in shape")
    for what, a in (("labels", labels), ("predictions", predictions)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"{what} must be class indices in [0, {num_classes}), "
                             f"got values from {a.min()} to {a.max()}")
    counts = np.zeros((num_classes, num_classes), dtype=int)
    np.add.at(counts, (labels, predictions), 1)
    if not normalize:
        return counts
    rows = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)


def plot_confusion_matrix(
    labels: np.ndarray, predictions: np.ndarray, class_names: Sequence[str], normalize: bool = True
) -> Figure:
    """Heatmap of the confusion matrix, true class in rows, with the values written in the cells.

    Args:
        labels: true classes ``(N,)``.
        predictions: predicted classes ``(N,)``.
        class_names: class names in label order.
        normalize: show each row as fractions of that class's samples (else counts).

    Returns:
        The figure (the heatmap axes and its colour bar).
    """
    import seaborn as sns

    matrix = confusion_matrix(labels, predictions, len(class_names), normalize)
    size = max(4.0, 0.9 * len(class_names) + 1.5)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    sns.heatmap(
        matrix, ax=ax, annot=True, fmt=".2f" if normalize else "d", cmap="Blues", square=True,
        vmin=0, vmax=1 if normalize else None, xticklabels=list(class_names), yticklabels=list(class_names),
        cbar_kws={"label": "fraction of the true class" if normalize else "images"},
    )
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("confusion matrix")
    ax.tick_params(axis="y", rotation=0)
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- policies, oracle and budget


def plot_tradeoff_policies(
    sweeps: Mapping[str, pd.DataFrame],
    oracle: tuple[float, float] | None = None,
    baseline: tuple[float, float] | None = None,
    baseline_label: str = "plain VGG11",
    operating_points: Mapping[str, tuple[float, float]] | None = None,
    title: str = "exit policies against the oracle",
) -> Figure:
    """The cost/accuracy curves of several exit policies on one model, with the oracle's point.

    Args:
        sweeps: policy name -> its ``helpers.evaluation.sweep`` DataFrame (same model and split).
        oracle: ``(cost, accuracy)`` of the oracle (``helpers.overthinking.oracle``).
        baseline: ``(cost, accuracy)`` of the plain network.
        baseline_label: legend label of the baseline.
        operating_points: label -> ``(cost, accuracy)`` of chosen thresholds.
        title: the axes title.

    Returns:
        The figure of ``plot_tradeoff`` (one curve per policy, the oracle as a "P").
    """
    extra = {"oracle": oracle} if oracle is not None else None
    fig = plot_tradeoff(sweeps, baseline, baseline_label, operating_points, extra_points=extra)
    fig.axes[0].set_title(title)
    return fig


def plot_calibration_tradeoff(
    before: pd.DataFrame,
    after: pd.DataFrame,
    baseline: tuple[float, float] | None = None,
    baseline_label: str = "plain VGG11",
    labels: tuple[str, str] = ("uncalibrated", "temperature-scaled"),
) -> Figure:
    """Cost/accuracy curve of one policy before and after per-exit temperature scaling.

    Args:
        before: ``sweep`` on the raw logits.
        after: ``sweep`` on ``helpers.calibration.apply_temperatures`` logits.
        baseline: ``(cost, accuracy)`` of the plain network.
        baseline_label: legend label of the baseline.
        labels: legend labels of the two curves.

    Returns:
        The figure (two curves, the calibrated one dashed).
    """
    fig = plot_tradeoff({labels[0]: before, labels[1]: after}, baseline, baseline_label)
    ax = fig.axes[0]
    next(ln for ln in ax.lines if ln.get_label() == labels[1]).set_linestyle("--")
    ax.legend(frameon=False, fontsize=9, loc="lower right")
    ax.set_title("accuracy against compute, before and after calibration")
    return fig


def plot_budget(table: pd.DataFrame, final_accuracy: float | None = None) -> Figure:
    """Budget-targeted thresholds on test: accuracy (left) and actual cost (right) against the budget.

    Args:
        table: ``helpers.budget.budget_table`` (``budget``, ``test_accuracy``,
            ``test_cost`` and optionally the ``per_exit_`` columns).
        final_accuracy: the final classifier's test accuracy, drawn as a dotted line.

    Returns:
        The figure: single threshold solid, per-exit thresholds dashed; the right
        panel has the line "cost = budget".
    """
    if table.empty:
        raise ValueError("the budget table is empty: no budget was reachable")
    table = table.sort_values("budget")
    fig, (ax_acc, ax_cost) = plt.subplots(1, 2, figsize=(10.0, 3.8))
    b = table["budget"].to_numpy()
    ax_acc.plot(b, table["test_accuracy"], marker="o", lw=1.8, color="tab:blue", label="one threshold")
    ax_cost.plot(b, table["test_cost"], marker="o", lw=1.8, color="tab:blue", label="one threshold")
    if "per_exit_test_accuracy" in table.columns:
        ax_acc.plot(b, table["per_exit_test_accuracy"], marker="s", lw=1.8, ls="--", color="tab:orange",
                    label="one threshold per exit")
        ax_cost.plot(b, table["per_exit_test_cost"], marker="s", lw=1.8, ls="--", color="tab:orange",
                     label="one threshold per exit")
    if final_accuracy is not None:
        ax_acc.axhline(final_accuracy, color="grey", ls=":", lw=1.2, label="final classifier alone")
    ax_cost.plot(b, b, color="grey", ls=":", lw=1.2, label="cost = budget")
    ax_acc.set_ylabel("test accuracy")
    _percent_axis(ax_acc)
    ax_cost.set_ylabel("test relative cost")
    for ax in (ax_acc, ax_cost):
        ax.set_xlabel("budget (mean relative cost, chosen on validation)")
        ax.legend(frameon=False, fontsize=9)
        _style(ax, "both")
    ax_acc.set_title("accuracy at a compute budget")
    ax_cost.set_title("cost actually spent on test")
    fig.tight_layout()
    return fig


def plot_overthinking(summaries: Mapping[str, Mapping[str, float]]) -> Figure:
    """Grouped bars: overthinking, wasteful, destructive and final-error fractions of several models.

    Args:
        summaries: model name -> ``helpers.overthinking.overthinking`` dict.

    Returns:
        The figure (one group per statistic, one bar per model, labelled in %).
    """
    if not summaries:
        raise ValueError("no overthinking summaries to plot")
    stats = {"overthinking": "some earlier exit right", "wasteful": "…and the final right",
             "destructive": "…but the final wrong", "final_error": "final wrong"}
    table = pd.DataFrame({m: {label: float(s[key]) for key, label in stats.items()} for m, s in summaries.items()},
                         index=list(stats.values()), columns=list(summaries))
    fig, ax = plt.subplots(figsize=(max(6.5, 1.2 * len(stats) * max(len(summaries), 1) + 1.5), 3.8))
    _grouped_bars(ax, table, _model_colours(list(summaries)), lambda v: f"{v:.1%}")
    _percent_axis(ax)
    ax.set_ylabel("fraction of samples")
    ax.set_title("overthinking: right earlier than the final classifier")
    ax.legend(frameon=False, fontsize=9)
    ax.margins(y=0.12)
    return fig


def plot_overthinking_examples(
    images: np.ndarray,
    exit_predictions: np.ndarray,
    labels: np.ndarray,
    indices: Sequence[int],
    class_names: Sequence[str],
    exit_names: Sequence[str],
    max_images: int = 8,
    seed: int = 0,
) -> Figure:
    """Destructive overthinking: images an earlier exit got right and the final classifier got wrong.

    Args:
        images: uint8 ``(N, H, W, 3)``.
        exit_predictions: ``(N, E)`` predicted class at every exit (``logits.argmax(-1)``).
        labels: ``(N,)`` true classes.
        indices: the samples to choose from (``overthinking(...)["destructive_indices"]``).
        class_names: class names in label order.
        exit_names: the exits, final last.
        max_images: at most this many images (a seeded random choice).
        seed: seed of the choice.

    Returns:
        The figure: each image titled with its first correct exit and prediction
        (green) and the final prediction (red); "(none)" when there is no example.
    """
    exit_predictions, labels = np.asarray(exit_predictions), np.asarray(labels)
    chosen = _pick(np.asarray(indices, dtype=int), max_images, np.random.default_rng(seed))
    ncols = max(1, min(len(chosen), 4))
    nrows = max(1, math.ceil(len(chosen) / ncols))
    fig, axes = _image_grid(nrows, ncols, cell=2.0)
    flat = list(axes.ravel())
    if not len(chosen):
        flat[0].text(0.5, 0.5, "(none)", ha="center", va="center", color="grey", transform=flat[0].transAxes)
    for ax, i in zip(flat, chosen, strict=False):
        right = np.flatnonzero(exit_predictions[i, :-1] == labels[i])
        if not len(right) or exit_predictions[i, -1] == labels[i]:
            raise ValueError(f"sample {i} is not destructively overthought (no earlier exit right, or final right)")
        first = int(right[0])
        ax.imshow(images[i])
        ax.set_title(f"{exit_names[first]}: {class_names[labels[i]]}", fontsize=9, color=RIGHT_COLOUR)
        ax.set_xlabel(f"{exit_names[-1]}: {class_names[exit_predictions[i, -1]]}", fontsize=9, color=WRONG_COLOUR)
    fig.suptitle("destructive overthinking: right early (top), wrong at the end (bottom)")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- calibration


def plot_reliability(
    reliability: Sequence[Mapping],
    exit_names: Sequence[str],
    calibrated: Sequence[Mapping] | None = None,
) -> Figure:
    """Reliability diagrams, one panel per exit, with the ECE in each title.

    Args:
        reliability: per exit, ``helpers.calibration.reliability_bins`` of the raw
            probabilities (``edges``, ``accuracy``, ``confidence``, ``counts``, ``ece``).
        exit_names: the exits, in order.
        calibrated: the same after temperature scaling (drawn as a line with dots).

    Returns:
        The figure: bars = accuracy per confidence bin (empty bins have none), the
        diagonal = perfect calibration.
    """
    if len(reliability) != len(exit_names):
        raise ValueError(f"{len(reliability)} reliability results for {len(exit_names)} exits")
    if calibrated is not None and len(calibrated) != len(exit_names):
        raise ValueError(f"{len(calibrated)} calibrated results for {len(exit_names)} exits")
    colours = exit_palette(len(exit_names))
    fig, axes = _subplot_grid(len(exit_names), 3, (3.4, 3.4), sharey=True)
    for j, (ax, name, rel) in enumerate(zip(axes, exit_names, reliability, strict=True)):
        edges = np.asarray(rel["edges"])
        acc = np.asarray(rel["accuracy"], dtype=float)
        filled = ~np.isnan(acc)
        ax.bar(edges[:-1][filled], acc[filled], width=np.diff(edges)[filled], align="edge",
               color=colours[j], alpha=0.75, edgecolor="white", label="accuracy per bin")
        ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1.2, label="perfect calibration")
        title = f"{name}\nECE {rel['ece']:.1%}"
        if calibrated is not None:
            cal = calibrated[j]
            cal_acc = np.asarray(cal["accuracy"], dtype=float)
            cal_conf = np.asarray(cal["confidence"], dtype=float)
            ok = ~np.isnan(cal_acc)
            ax.plot(cal_conf[ok], cal_acc[ok], color="tab:red", marker="o", ms=3.5, lw=1.2,
                    label="after temperature scaling")
            title += f" → {cal['ece']:.1%} after scaling"
        ax.set_title(title, fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (max probability)")
        _style(ax, "both")
    axes[0].set_ylabel("accuracy")
    axes[0].legend(frameon=False, fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- threshold explorer


def plot_threshold_state(
    result: Mapping,
    exit_names: Sequence[str],
    final_accuracy: float,
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    per_exit: int = 3,
    seed: int = 0,
    threshold_name: str = "τ",
) -> Figure:
    """One state of the threshold explorer: exit histogram and figures (left), example images per exit (right).

    Args:
        result: ``helpers.evaluation.evaluate_threshold`` output (``threshold``,
            ``accuracy``, ``relative_cost``, ``exit_fractions``, ``exit_index``,
            ``predictions``; ``policy`` if present).
        exit_names: the exits, in order.
        final_accuracy: the final classifier's accuracy on the same split.
        images: uint8 ``(N, H, W, 3)`` of that split, or None for the histogram only.
        labels: ``(N,)`` true classes (needed with ``images``).
        class_names: class names in label order (needed with ``images``).
        per_exit: example images per exit.
        seed: seed of the choice of examples.
        threshold_name: symbol of the threshold (``"p"`` for patience).

    Returns:
        The figure; its first axes is the histogram, then ``len(exit_names) *
        per_exit`` image axes row by row (when ``images`` is given).
    """
    fractions = np.asarray(result["exit_fractions"], dtype=float)
    if fractions.shape != (len(exit_names),):
        raise ValueError(f"{fractions.size} exit fractions for {len(exit_names)} exits")
    e = len(exit_names)
    with_images = images is not None
    if with_images and (labels is None or class_names is None):
        raise ValueError("images need labels and class_names")
    fig = plt.figure(figsize=(4.2 + (1.3 * per_exit if with_images else 0), max(3.6, 1.25 * e if with_images else 0)))
    grid = fig.add_gridspec(e, 1 + (per_exit if with_images else 0),
                            width_ratios=[3.2] + [1.0] * (per_exit if with_images else 0))
    ax = fig.add_subplot(grid[:, 0])
    bars = ax.bar(range(e), fractions, color=exit_palette(e))
    ax.bar_label(bars, labels=[f"{f:.0%}" for f in fractions], fontsize=8, padding=2)
    ax.set_xticks(range(e), list(exit_names), rotation=30, ha="right")
    ax.set_ylim(0, 1.12)
    _percent_axis(ax)
    _style(ax)
    ax.set_ylabel("samples leaving here")
    policy = f"{result['policy']}: " if "policy" in result else ""
    ax.set_title(
        f"{policy}{threshold_name} = {_format_threshold(result['threshold'])}\n"
        f"accuracy {result['accuracy']:.1%} (final alone {final_accuracy:.1%})\n"
        f"relative cost {result['relative_cost']:.2f}× plain",
        fontsize=9,
    )
    if with_images:
        exit_index = np.asarray(result["exit_index"])
        predictions = np.asarray(result["predictions"])
        labels = np.asarray(labels)
        rng = np.random.default_rng(seed)
        for j in range(e):
            chosen = _pick(np.flatnonzero(exit_index == j), per_exit, rng)
            for k in range(per_exit):
                cell = fig.add_subplot(grid[j, 1 + k])
                _bare(cell)
                if k == 0:
                    cell.set_ylabel(exit_names[j], rotation=0, ha="right", va="center", fontsize=8)
                if k < len(chosen):
                    i = chosen[k]
                    cell.imshow(images[i])
                    right = predictions[i] == labels[i]
                    cell.set_title(class_names[predictions[i]], fontsize=7,
                                   color=RIGHT_COLOUR if right else WRONG_COLOUR)
    fig.tight_layout()
    return fig


def plot_rule_study(studies: Mapping[str, pd.DataFrame], tolerance: float) -> Figure:
    """Held-out drop against held-out cost of each threshold rule, one panel per model.

    Args:
        studies: model name -> ``helpers.evaluation.threshold_rule_study`` DataFrame.
        tolerance: the drop the rules were allowed when choosing (a dashed line).

    Returns:
        The figure: one dot per halving and rule (drops are whole images, so dots are
        jittered a little sideways); the legend gives each rule's share of halvings
        within tolerance and its mean cost.
    """
    from helpers.evaluation import rule_study_summary

    if not studies:
        raise ValueError("no rule studies to plot")
    fig, axes = _subplot_grid(len(studies), 3, (4.6, 3.8), sharey=True)
    rules = list(dict.fromkeys(r for study in studies.values() for r in study["rule"]))
    colours = _model_colours(rules)
    jitter = np.random.default_rng(0)
    for ax, (name, study) in zip(axes, studies.items(), strict=True):
        summary = rule_study_summary(study)
        for rule, rows in study.groupby("rule", sort=False):
            mean = summary.loc[rule]
            drop = rows["drop"].to_numpy() + jitter.uniform(-0.0015, 0.0015, len(rows))
            label = f"{rule}: {mean['within']:.0%} within, cost {mean['mean_cost']:.2f}"
            ax.scatter(drop, rows["relative_cost"], s=10, alpha=0.45, color=colours[rule], label=label)
            ax.scatter([mean["mean_drop"]], [mean["mean_cost"]], s=90, marker="X",
                       color=colours[rule], edgecolor="black", linewidth=0.8, zorder=3)
        ax.axvline(tolerance, color="black", linestyle="--", linewidth=1)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_xlabel("accuracy drop on the other half (final minus early exit)")
        ax.set_title(name, fontsize=10)
        ax.legend(frameon=False, fontsize=8, loc="upper right")
        _style(ax, "both")
    axes[0].set_ylabel("relative cost on the other half")
    fig.suptitle("tau chosen on one half of the validation split, scored on the other (x: means; dashed: tolerance)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def plot_batch_size_sweep(sweeps: Mapping[str, pd.DataFrame]) -> Figure:
    """Early exit against the plain network at each batch size: speed-up, and throughput.

    Args:
        sweeps: label (e.g. a precision) -> ``helpers.benchmark.batch_size_sweep`` DataFrame.

    Returns:
        The figure. Left: per label, the measured speed-up of early exit (solid), the
        speed-up the MAC count predicts for the same exits (dashed, same colour) and the
        break-even line at 1, below which early exit is slower than the plain network.
        Right: the throughput of both (early exit solid, plain network dotted), which
        compares the labels with each other too.
    """
    if not sweeps:
        raise ValueError("no batch-size sweeps to plot")
    fig, (ax, ax_rate) = plt.subplots(1, 2, figsize=(11, 4.0))
    colours = _model_colours(list(sweeps))
    for label, sweep in sweeps.items():
        sizes = sweep.index.to_numpy()
        ax.plot(sizes, sweep["measured_speedup"], marker="o", color=colours[label], label=f"{label}: measured")
        ax.plot(sizes, sweep["predicted_speedup"], linestyle="--", color=colours[label],
                label=f"{label}: predicted by MACs")
        ax_rate.plot(sizes, sweep["early_exit_img_s"], marker="o", color=colours[label], label=f"{label}: early exit")
        ax_rate.plot(sizes, sweep["full_img_s"], marker=".", linestyle=":", color=colours[label],
                     label=f"{label}: plain network")
    ax.axhline(1.0, color="grey", linewidth=1)
    ax.annotate("break-even: the plain network", xy=(0.01, 1.0), xycoords=("axes fraction", "data"),
                xytext=(0, 3), textcoords="offset points", fontsize=8, color="grey")
    ax.set_ylabel("speed-up of early exit over the plain network")
    ax.set_ylim(bottom=0)
    ax_rate.set_ylabel("images per second")
    ax_rate.set_yscale("log")
    ax_rate.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax_rate.yaxis.set_major_formatter(ScalarFormatter())  # 200, not 2×10²
    ax_rate.yaxis.set_minor_formatter(NullFormatter())
    measured = sorted({int(b) for sweep in sweeps.values() for b in sweep.index})
    for a in (ax, ax_rate):
        a.set_xscale("log", base=2)
        a.set_xticks(measured, [str(b) for b in measured])  # the batch sizes measured, as numbers
        a.xaxis.set_minor_locator(NullLocator())
        a.set_xlabel("batch size")
        a.legend(frameon=False, fontsize=8)
        _style(a, "both")
    fig.tight_layout()
    return fig


def plot_threshold_sweep(sweep: pd.DataFrame, operating: float | None = None, tolerance: float = 0.01) -> Figure:
    """Early exit measured against what its MACs predict, threshold by threshold.

    Args:
        sweep: a ``helpers.benchmark.threshold_sweep`` DataFrame.
        operating: tau*, marked on both panels when given.
        tolerance: accuracy below the final classifier that the right panel shades
            (one point by default).

    Returns:
        The figure. Left: the measured speed-up of early exit over the plain network
        (solid) and the one the MACs of the exits taken predict (dashed), against the
        threshold. Right: accuracy against speed-up, measured (solid) and predicted
        (dashed), with the final classifier's accuracy (``full``: the same network
        without its exit heads, dotted) and the band within ``tolerance`` of it
        shaded: where the measured curve leaves the band is the fastest early exit
        that keeps the final classifier's accuracy on these images.
    """
    if len(sweep) == 0:
        raise ValueError("the threshold sweep has no rows")
    sweep = sweep.sort_index()
    taus = sweep.index.to_numpy(dtype=float)
    full = float(sweep["full_accuracy"].iloc[0])
    fig, (ax, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax.plot(taus, sweep["measured_speedup"], marker="o", color="tab:blue", label="measured")
    ax.plot(taus, sweep["predicted_speedup"], ls="--", color="tab:blue", label="predicted by MACs")
    ax.axhline(1.0, color="grey", lw=1)
    ax.set_xlabel("threshold τ")
    ax.set_ylabel("speed-up of early exit over the plain network")
    ax.set_ylim(bottom=0)
    ax_acc.plot(sweep["measured_speedup"], sweep["accuracy"], marker="o", color="tab:blue", label="early exit, measured")
    ax_acc.plot(sweep["predicted_speedup"], sweep["accuracy"], ls="--", color="tab:blue",
                label="early exit, predicted by MACs")
    ax_acc.axhline(full, color="grey", ls=":", lw=1.0, label=f"plain network: {full:.1%}")
    ax_acc.axhspan(full - tolerance, full, color="grey", alpha=0.15, lw=0,
                   label=f"within {100 * tolerance:g} point of it")
    ax_acc.set_xlabel("speed-up over the plain network")
    ax_acc.set_ylabel("accuracy")
    _percent_axis(ax_acc)
    if operating is not None:
        match = np.flatnonzero(np.isclose(taus, operating))
        if not len(match):
            raise ValueError(f"tau* {operating:g} is not one of the sweep's thresholds {taus.tolist()}")
        row = sweep.iloc[match[0]]
        ax.axvline(operating, color="black", ls=":", lw=1.0)
        ax.plot([operating], [row["measured_speedup"]], ls="none", marker="D", ms=8, color="tab:blue",
                markeredgecolor="black", zorder=6, label=f"τ* = {operating:g}: {row['measured_speedup']:.2f}×")
        ax_acc.plot([row["measured_speedup"]], [row["accuracy"]], ls="none", marker="D", ms=8, color="tab:blue",
                    markeredgecolor="black", zorder=6, label=f"τ*: {row['accuracy']:.1%} at {row['measured_speedup']:.2f}×")
    for a in (ax, ax_acc):
        a.legend(frameon=False, fontsize=8)
        _style(a, "both")
    fig.tight_layout()
    return fig


def plot_exit_subsets(study: pd.DataFrame, tolerance: float = 0.01, budget: float = 0.5) -> Figure:
    """Every subset of the early exits, at its threshold chosen on validation: cost against drop, on both splits.

    Args:
        study: an ``helpers.evaluation.Analysis.exit_subset_study`` DataFrame.
        tolerance: the accuracy drop the threshold was chosen within (one point by default).
        budget: a relative cost to mark (half of the plain network by default).

    Returns:
        The figure. Left: validation, where every subset's threshold was chosen, so
        every point lies at or under the dashed tolerance line. Right: the same
        subsets on test. One dot per subset; the subset with every exit (ringed) and
        the one chosen on validation (diamond) are marked; the lower left corner
        (cost at most ``budget``, drop at most ``tolerance``) is shaded.
    """
    if len(study) == 0:
        raise ValueError("the exit subset study has no rows")
    every = study["early_exits"] == study["early_exits"].max()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, split, title in zip(axes, ("val", "test"), ("validation (where each threshold was chosen)", "test"),
                                strict=True):
        x, y = study[f"{split}_relative_cost"], study[f"{split}_drop"]
        ax.fill_between([0, budget], [-100, -100], [100 * tolerance] * 2, color="tab:green", alpha=0.12, lw=0,
                        label=f"cost ≤ {budget:g}, within {100 * tolerance:g} point")
        ax.scatter(x, y, s=22, color="tab:blue", alpha=0.7, label="a subset of the exits")
        ax.scatter(x[every], y[every], s=110, facecolors="none", edgecolors="black", lw=1.5, label="every exit")
        chosen = study["chosen"]
        ax.scatter(x[chosen], y[chosen], s=80, marker="D", color="tab:orange", edgecolors="black", zorder=5,
                   label=f"chosen on validation: {study.index[chosen][0]}")
        ax.axhline(100 * tolerance, color="grey", ls="--", lw=1)
        ax.axvline(budget, color="grey", ls=":", lw=1)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel("relative cost (heads included)")
        ax.set_title(title, fontsize=10)
        _style(ax, "both")
    low = min(-1.0, float(study[["val_drop", "test_drop"]].min().min()) - 0.5)
    high = max(2.0, float(study[["val_drop", "test_drop"]].max().max()) + 0.5)
    axes[0].set_ylim(low, high)
    axes[0].set_ylabel("points below the final exit")
    axes[0].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig
