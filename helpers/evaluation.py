"""Evaluation of a multi-exit model: per-exit accuracy, threshold sweeps, choosing tau.

Everything here works on the logits of *all* exits, collected once per split
(``collect_logits``), so a sweep over a hundred thresholds costs no extra
inference. The real early-exit engine (``helpers.inference``) produces the same
exits and predictions without computing the layers a sample no longer needs.

Every function taking a ``rule`` accepts an exit rule or a policy name
(``"entropy"``, ``"max_prob"``, ``"patience"``; see ``helpers.policies``); a sweep
without explicit thresholds tries the policy's own grid (``ExitPolicy.grid``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from helpers.limits import at_least
from helpers.policies import (
    ExitPolicy,
    ExitRule,
    StatefulRule,
    entropy_exit,
    first_exit,
    leave_mask,
    resolve_policy,
)

DEFAULT_THRESHOLDS = np.round(np.linspace(0.0, 1.0, 41), 4)
"""The entropy policy's default sweep grid (``EXIT_POLICIES["entropy"].grid``)."""

Rule = ExitRule | StatefulRule | ExitPolicy | str


def collect_logits(model, dataset, precision: str | None = "float32") -> tuple[np.ndarray, np.ndarray]:
    """Logits of every exit for a labelled dataset.

    Every reported number starts here, so by default the model runs in float32
    whatever policy it was trained under: a ``mixed_bfloat16`` model's logits depend
    on which bfloat16 kernels the host picks, enough to move a test accuracy by an
    image or two from one machine to another; float32 gives the same numbers
    everywhere (to rounding). The speed of bfloat16 is measured by
    ``helpers.benchmark``, which reports accuracy under both.

    Args:
        model: a model returning one logits tensor per exit (a single tensor for a
            plain model is accepted).
        dataset: a ``tf.data.Dataset`` of ``(images, labels)`` batches (labels may
            be a dict of identical labels, as for training).
        precision: run the model under this dtype policy (``helpers.inference.with_precision``);
            ``None`` runs it as it is.

    Returns:
        ``(logits, labels)``: float32 ``(N, E, K)`` and int ``(N,)``.
    """
    if precision is not None:
        from helpers.inference import with_precision

        model = with_precision(model, precision)
    xs, ys = [], []
    for x, y in dataset:
        if isinstance(y, dict):
            y = next(iter(y.values()))
        out = model(x, training=False)
        out = out if isinstance(out, (list, tuple)) else [out]
        xs.append(np.stack([np.asarray(o, dtype=np.float32) for o in out], axis=1))
        ys.append(np.asarray(y))
    return np.concatenate(xs), np.concatenate(ys)


def exit_accuracies(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Top-1 accuracy of each exit, ``(E,)``."""
    return (np.asarray(logits).argmax(-1) == np.asarray(labels)[:, None]).mean(axis=0)


def ensemble_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of the ensemble of all exits: the class with the highest softmax probability
    averaged over the exits (the earlier ResNet18 course project's ensemble).

    It needs every exit of every sample, so it costs the whole network plus every head:
    the last entry of ``helpers.cost.relative_costs``.
    """
    from helpers.calibration import softmax

    mean_probs = softmax(np.asarray(logits, dtype=np.float64)).mean(axis=1)  # (N, K)
    return float((mean_probs.argmax(-1) == np.asarray(labels)).mean())


def outcome(logits: np.ndarray, labels: np.ndarray, costs: Sequence[float], exit_index: np.ndarray) -> dict:
    """Accuracy, mean cost and exit fractions when sample ``i`` leaves at exit ``exit_index[i]``.

    Args:
        logits: ``(N, E, K)`` logits of all exits.
        labels: ``(N,)`` true labels.
        costs: relative cost of reaching each exit, ``(E,)``.
        exit_index: ``(N,)`` 0-based exit of each sample.

    Returns:
        A dict with ``accuracy``, ``relative_cost``, ``predicted_speedup``,
        ``exit_fractions``, ``exit_index`` and ``predictions``.
    """
    logits = np.asarray(logits)
    costs = np.asarray(costs, dtype=np.float64)
    if costs.shape != (logits.shape[1],):
        raise ValueError(f"need one cost per exit ({logits.shape[1]}), got {costs.shape}")
    exit_index = np.asarray(exit_index)
    predictions = logits[np.arange(len(logits)), exit_index].argmax(-1)
    mean_cost = float(costs[exit_index].mean())
    return {
        "accuracy": float((predictions == np.asarray(labels)).mean()),
        "relative_cost": mean_cost,
        "predicted_speedup": 1.0 / mean_cost,
        "exit_fractions": np.bincount(exit_index, minlength=logits.shape[1]) / len(logits),
        "exit_index": exit_index,
        "predictions": predictions,
    }


def evaluate_threshold(
    logits: np.ndarray,
    labels: np.ndarray,
    costs: Sequence[float],
    threshold: float,
    rule: Rule = entropy_exit,
) -> dict:
    """Early-exit outcome at one threshold.

    Args:
        logits: ``(N, E, K)`` logits of all exits.
        labels: ``(N,)`` true labels.
        costs: relative cost of reaching each exit (``helpers.cost.relative_costs``).
        threshold: the exit rule's threshold (validated by the policy: a number in
            [0, 1], or an integer >= 1 for patience).
        rule: the exit rule or policy name.

    Returns:
        A dict with ``threshold``, ``policy`` (name), ``accuracy``, ``relative_cost``
        (mean over samples), ``predicted_speedup`` (1 / relative cost),
        ``exit_fractions`` (list, one per exit), ``exit_index`` (0-based exit per
        sample) and ``predictions``.
    """
    policy = resolve_policy(rule)
    threshold = policy.check(threshold)
    logits = np.asarray(logits)
    costs = np.asarray(costs, dtype=np.float64)
    if costs.shape != (logits.shape[1],):
        raise ValueError(f"need one cost per exit ({logits.shape[1]}), got {costs.shape}")
    exit_index = first_exit(leave_mask(logits, threshold, policy.rule))
    return {"threshold": threshold, "policy": policy.name} | outcome(logits, labels, costs, exit_index)


def sweep(
    logits: np.ndarray,
    labels: np.ndarray,
    costs: Sequence[float],
    thresholds: Sequence[float] | None = None,
    rule: Rule = entropy_exit,
    exit_names: Sequence[str] | None = None,
):
    """``evaluate_threshold`` for every threshold, as a pandas DataFrame.

    Args:
        logits, labels, costs: as for ``evaluate_threshold``.
        thresholds: the thresholds to try; default the policy's grid
            (``DEFAULT_THRESHOLDS`` for entropy, p = 1..E for patience).
        rule: the exit rule or policy name.
        exit_names: names for the ``frac_`` columns (default ``exit_1`` ...).

    Returns:
        Columns ``threshold``, ``accuracy``, ``relative_cost``, ``predicted_speedup``
        and one ``frac_<exit>`` column per exit.
    """
    import pandas as pd

    policy = resolve_policy(rule)
    e = np.asarray(logits).shape[1]
    if thresholds is None:
        thresholds = policy.grid(e)
    names = list(exit_names) if exit_names else [f"exit_{j + 1}" for j in range(e)]
    rows = []
    for t in thresholds:
        r = evaluate_threshold(logits, labels, costs, t, policy)
        row = {k: r[k] for k in ("threshold", "accuracy", "relative_cost", "predicted_speedup")}
        row |= {f"frac_{n}": f for n, f in zip(names, r["exit_fractions"], strict=True)}
        rows.append(row)
    return pd.DataFrame(rows)


def choose_threshold(val_sweep, final_accuracy: float, tolerance: float = 0.01) -> float:
    """The cheapest threshold whose validation accuracy is within ``tolerance`` of the final exit's.

    Works for every policy whatever the direction of its threshold, since it ranks
    by cost, not by threshold.

    Args:
        val_sweep: a ``sweep`` DataFrame computed on the validation split.
        final_accuracy: the final classifier's accuracy on the validation split.
        tolerance: allowed accuracy drop (0.01 = one percentage point).

    Returns:
        The chosen threshold (ties on cost go to the most accurate, then the
        smallest). If no threshold qualifies (impossible when the sweep contains the
        policy's "nobody leaves early" threshold), the most expensive one, which is
        tau = 0 for an entropy sweep.
    """
    ok = val_sweep[at_least(val_sweep["accuracy"], final_accuracy - tolerance)]
    if ok.empty:
        fallback = val_sweep.sort_values(["relative_cost", "accuracy"], ascending=[False, False])
        return _number(fallback["threshold"].iloc[0]) if len(fallback) else 0.0
    best = ok.sort_values(["relative_cost", "accuracy", "threshold"], ascending=[True, False, True])
    return _number(best["threshold"].iloc[0])


def _number(value) -> float | int:
    """A threshold from a DataFrame cell: int for integer values stored as ints, else float."""
    if isinstance(value, (int, np.integer)):
        return int(value)
    return float(value)


@dataclasses.dataclass
class Analysis:
    """Everything notebooks 03 and 04 need about one trained model, computed once.

    Attributes:
        name: model (experiment) name.
        exit_names: output names, final last.
        class_names: class names in label order.
        costs: relative cost of reaching each exit, ``(E,)``.
        val_logits, test_logits: ``(N, E, K)`` logits of every exit.
        val_labels, test_labels: ``(N,)`` labels.
        threshold: operating threshold tau*, chosen on the validation split.
        tolerance: the accuracy drop (vs the final exit, on validation) allowed when choosing it.
    """

    name: str
    exit_names: list[str]
    class_names: list[str]
    costs: np.ndarray
    val_logits: np.ndarray
    val_labels: np.ndarray
    test_logits: np.ndarray
    test_labels: np.ndarray
    threshold: float
    tolerance: float

    def _split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split not in ("val", "test"):
            raise ValueError(f"split must be 'val' or 'test', got {split!r}")
        return getattr(self, f"{split}_logits"), getattr(self, f"{split}_labels")

    def split_data(self, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
        """``(logits (N, E, K), labels (N,))`` of ``split`` (``"val"`` or ``"test"``)."""
        return self._split(split)

    def exit_accuracy(self, split: str = "test") -> dict[str, float]:
        """Accuracy of every exit on ``split``, by exit name."""
        acc = exit_accuracies(*self._split(split))
        return {n: float(a) for n, a in zip(self.exit_names, acc, strict=True)}

    def sweep(self, split: str = "test", thresholds: Sequence[float] | None = None, policy: Rule = "entropy"):
        """``sweep`` on ``split`` with ``policy`` (default grid: the policy's)."""
        return sweep(*self._split(split), self.costs, thresholds, policy, exit_names=self.exit_names)

    def operating_threshold(self, policy: Rule = "entropy") -> float | int:
        """The policy's operating threshold: ``threshold`` for entropy, else chosen on validation like it.

        The choice is ``choose_threshold`` on the validation sweep with this analysis's ``tolerance``.
        """
        spec = resolve_policy(policy)
        if spec.name == "entropy":
            return self.threshold
        final = float(exit_accuracies(self.val_logits, self.val_labels)[-1])
        return choose_threshold(self.sweep("val", policy=spec), final, self.tolerance)

    def at(self, threshold: float | None = None, split: str = "test", policy: Rule = "entropy") -> dict:
        """``evaluate_threshold`` on ``split`` at ``threshold`` (default: the policy's operating threshold)."""
        t = self.operating_threshold(policy) if threshold is None else threshold
        return evaluate_threshold(*self._split(split), self.costs, t, policy)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the arrays to ``analysis.npz`` and the rest to ``analysis.json`` in ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {k: getattr(self, k) for k in ("costs", "val_logits", "val_labels", "test_logits", "test_labels")}
        np.savez_compressed(folder / "analysis.npz", **arrays)
        meta = {k: getattr(self, k) for k in ("name", "exit_names", "class_names", "threshold", "tolerance")}
        (folder / "analysis.json").write_text(json.dumps(meta, indent=1))
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> Analysis:
        """Read what ``save`` wrote."""
        folder = Path(folder)
        meta = json.loads((folder / "analysis.json").read_text())
        with np.load(folder / "analysis.npz") as arrays:
            return cls(**meta, **{k: arrays[k] for k in arrays.files})


def analyse(model, splits, name: str, tolerance: float = 0.01, batch_size: int = 128) -> Analysis:
    """Collect every exit's logits on the validation and test splits and choose tau* on validation.

    Args:
        model: a trained multi-exit (or plain) model.
        splits: the ``helpers.data.Splits`` the model was trained with.
        name: a name for tables and legends.
        tolerance: accuracy drop allowed at tau* (0.01 = 1 point), on validation.
        batch_size: inference batch size.
    """
    from helpers.cost import relative_costs
    from helpers.data import make_dataset
    from helpers.inference import with_precision

    size, given = tuple(model.inputs[0].shape[1:3]), splits.test.images.shape[1:3]
    if size != given:
        raise ValueError(
            f"model {name} takes {size[0]}x{size[1]} images, the splits hold {given[0]}x{given[1]}: "
            "load them at its size (train.prepare_splits(..., image_size=...))"
        )
    as_float32 = with_precision(model, "float32")  # once, for both splits (see collect_logits)
    val_logits, val_labels = collect_logits(as_float32, make_dataset(splits.val, batch_size), precision=None)
    test_logits, test_labels = collect_logits(as_float32, make_dataset(splits.test, batch_size), precision=None)
    costs = np.asarray(relative_costs(model))
    final_val = float(exit_accuracies(val_logits, val_labels)[-1])
    threshold = choose_threshold(sweep(val_logits, val_labels, costs), final_val, tolerance)
    return Analysis(
        name, list(model.output_names), list(splits.class_names), costs,
        val_logits, val_labels, test_logits, test_labels, threshold, tolerance,
    )
