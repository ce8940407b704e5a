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

from helpers.limits import at_least, at_most
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


def correct(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """bool ``(N, E)``: whether exit ``e`` classifies sample ``i`` correctly (top-1 of its logits)."""
    return np.asarray(logits).argmax(-1) == np.asarray(labels)[:, None]


def exit_accuracies(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Top-1 accuracy of each exit, ``(E,)``."""
    return correct(logits, labels).mean(axis=0)


def ensemble_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of the ensemble of all exits: the class with the highest softmax probability
    averaged over the exits (the earlier ResNet18 course project's ensemble).

    It needs every exit of every sample, so it costs the whole network plus every head:
    the last entry of ``helpers.cost.relative_costs``.
    """
    from helpers.calibration import softmax

    mean_probs = softmax(np.asarray(logits, dtype=np.float64)).mean(axis=1)  # (N, K)
    return float((mean_probs.argmax(-1) == np.asarray(labels)).mean())


def accuracy_interval(correct, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for an accuracy measured on ``len(correct)`` independent images.

    A test split of a few hundred images pins an accuracy down only to a few points:
    this is the range of true accuracies the measurement is compatible with. Wilson's
    interval (unlike the textbook ``p ± z·sqrt(p(1-p)/n)``) stays inside [0, 1] and
    keeps its coverage near 0 % and 100 %.

    Args:
        correct: ``(N,)`` booleans (or 0/1), whether each image was classified correctly.
        confidence: the interval's confidence level, strictly between 0 and 1.

    Returns:
        ``(low, high)``, fractions.

    Raises:
        ValueError: no images, values other than 0/1, or a confidence outside (0, 1).
    """
    from statistics import NormalDist

    correct = np.asarray(correct)
    if correct.ndim != 1 or correct.size == 0:
        raise ValueError(f"need a 1-D array of at least one image, got shape {correct.shape}")
    if not np.isin(correct, (0, 1)).all():
        raise ValueError("correct must hold booleans or 0/1, one per image")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    n = correct.size
    p = float(correct.mean())
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # at p = 0 (or 1) the bound is exactly 0 (or 1); the formula leaves a rounding error there
    low = 0.0 if p == 0.0 else max(0.0, float(centre - half))
    high = 1.0 if p == 1.0 else min(1.0, float(centre + half))
    return low, high


def paired_test(correct_a, correct_b) -> dict:
    """Exact McNemar test: do two models' accuracies on the *same* images differ by more than chance?

    Only the images on which the two disagree carry information: ``a_only`` that model
    A got right and B wrong, ``b_only`` the reverse. If the two were equally accurate,
    each disagreement would go either way with probability 1/2; the p-value is the
    two-sided binomial probability of a split at least as uneven as the one observed.
    Comparing two accuracies on the same images this way is far more sensitive than
    comparing their two separate intervals.

    Args:
        correct_a, correct_b: ``(N,)`` booleans (or 0/1) for the same N images, in the same order.

    Returns:
        A dict with ``a_only``, ``b_only`` (counts), ``difference`` (A's accuracy minus
        B's, a fraction) and ``p_value`` (1.0 when the two never disagree).

    Raises:
        ValueError: arrays of different lengths, empty, or with values other than 0/1.
    """
    a, b = np.asarray(correct_a), np.asarray(correct_b)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise ValueError(f"need two 1-D arrays over the same images, got shapes {a.shape} and {b.shape}")
    if not (np.isin(a, (0, 1)).all() and np.isin(b, (0, 1)).all()):
        raise ValueError("correct_a and correct_b must hold booleans or 0/1, one per image")
    a, b = a.astype(bool), b.astype(bool)
    a_only, b_only = int((a & ~b).sum()), int((b & ~a).sum())
    n, k = a_only + b_only, min(a_only, b_only)
    term = total = 1  # C(n, 0); then C(n, i) by the recurrence, exact in integers, linear in k
    for i in range(k):
        term = term * (n - i) // (i + 1)
        total += term
    tail = total / 2**n  # Python divides the two integers exactly to the nearest float
    return {"a_only": a_only, "b_only": b_only, "difference": float(a.mean() - b.mean()),
            "p_value": min(1.0, 2 * tail)}


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
    closed: Sequence[int] = (),
) -> dict:
    """Early-exit outcome at one threshold.

    Args:
        logits: ``(N, E, K)`` logits of all exits.
        labels: ``(N,)`` true labels.
        costs: relative cost of reaching each exit (``helpers.cost.relative_costs``).
        threshold: the exit rule's threshold (validated by the policy: a number in
            [0, 1], or an integer >= 1 for patience).
        rule: the exit rule or policy name.
        closed: 0-based early exits where nobody leaves: their heads still run (the
            costs stay as they are, and a stateful rule still sees their logits), but
            a sample that would leave there goes on to the next open exit.

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
    mask = leave_mask(logits, threshold, policy.rule)
    mask[:, _closed_exits(closed, logits.shape[1])] = False
    exit_index = first_exit(mask)
    return {"threshold": threshold, "policy": policy.name} | outcome(logits, labels, costs, exit_index)


def _closed_exits(closed: Sequence[int], num_exits: int) -> list[int]:
    """``closed`` as a list of early-exit indices, or ``ValueError`` (the final classifier cannot close)."""
    closed = [int(j) for j in closed]
    bad = [j for j in closed if not 0 <= j < num_exits - 1]
    if bad:
        raise ValueError(f"closed exits must be 0-based early exits (0 to {num_exits - 2}); "
                         f"the final classifier always takes who is left, got {bad}")
    return closed


def sweep(
    logits: np.ndarray,
    labels: np.ndarray,
    costs: Sequence[float],
    thresholds: Sequence[float] | None = None,
    rule: Rule = entropy_exit,
    exit_names: Sequence[str] | None = None,
    closed: Sequence[int] = (),
):
    """``evaluate_threshold`` for every threshold, as a pandas DataFrame.

    Args:
        logits, labels, costs: as for ``evaluate_threshold``.
        thresholds: the thresholds to try; default the policy's grid
            (``DEFAULT_THRESHOLDS`` for entropy, p = 1..E for patience).
        rule: the exit rule or policy name.
        exit_names: names for the ``frac_`` columns (default ``exit_1`` ...).
        closed: early exits where nobody leaves (see ``evaluate_threshold``).

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
        r = evaluate_threshold(logits, labels, costs, t, policy, closed)
        row = {k: r[k] for k in ("threshold", "accuracy", "relative_cost", "predicted_speedup")}
        row |= {f"frac_{n}": f for n, f in zip(names, r["exit_fractions"], strict=True)}
        rows.append(row)
    return pd.DataFrame(rows)


THRESHOLD_RULES = ("cheapest", "stable")
"""How ``choose_threshold`` picks among the thresholds within tolerance (see there)."""

DEFAULT_THRESHOLD_RULE = "stable"
"""The rule that chooses every published tau*. ``threshold_rule_study`` on the validation
splits of our flowers models found the stable rule within tolerance on held-out images more
often than the cheapest, with a smaller mean drop (notebook 06)."""


def choose_threshold(
    val_sweep, final_accuracy: float, tolerance: float = 0.01, rule: str = DEFAULT_THRESHOLD_RULE,
) -> float:
    """A threshold whose validation accuracy is within ``tolerance`` of the final exit's.

    Works for every policy whatever the direction of its threshold, since it ranks
    by cost, not by threshold.

    Args:
        val_sweep: a ``sweep`` DataFrame computed on the validation split.
        final_accuracy: the final classifier's accuracy on the validation split.
        tolerance: allowed accuracy drop (0.01 = one percentage point).
        rule: ``"cheapest"``: the cheapest threshold within tolerance, wherever it lies.
            ``"stable"``: walking from the most expensive threshold to cheaper ones, the
            last one before the first that falls out of tolerance, so that every more
            expensive threshold qualifies too. A cheap threshold that passes on a bump of
            a noisy sweep, after more expensive ones failed, is likely to fail on new images
            (``threshold_rule_study`` measures how often).

    Returns:
        The chosen threshold (ties on cost go to the most accurate, then the
        smallest). If no threshold qualifies (impossible when the sweep contains the
        policy's "nobody leaves early" threshold), the most expensive one, which is
        tau = 0 for an entropy sweep.

    Raises:
        ValueError: an unknown ``rule``.
    """
    if rule not in THRESHOLD_RULES:
        raise ValueError(f"unknown threshold rule {rule!r}; choose one of {THRESHOLD_RULES}")
    by_cost = val_sweep.sort_values(["relative_cost", "accuracy"], ascending=[False, False])
    passes = at_least(by_cost["accuracy"], final_accuracy - tolerance).to_numpy()
    if rule == "stable":  # keep the run of qualifying thresholds from the most expensive one
        passes = np.logical_and.accumulate(passes)
    ok = by_cost[passes]
    if ok.empty:
        return _number(by_cost["threshold"].iloc[0]) if len(by_cost) else 0.0
    best = ok.sort_values(["relative_cost", "accuracy", "threshold"], ascending=[True, False, True])
    return _number(best["threshold"].iloc[0])


def choose_on_validation(
    logits: np.ndarray, labels: np.ndarray, costs: Sequence[float], tolerance: float = 0.01,
    rule: str = DEFAULT_THRESHOLD_RULE, policy: Rule = "entropy", closed: Sequence[int] = (),
) -> float | int:
    """The threshold chosen on validation as every tau* is: ``choose_threshold`` on the
    policy's ``sweep`` of these validation logits, against their final exit's accuracy.

    Args:
        logits: ``(N, E, K)`` validation logits of every exit; labels: ``(N,)``; costs: ``(E,)``.
        tolerance, rule: as for ``choose_threshold``.
        policy: the exit policy whose default grid is swept.
        closed: early exits where nobody leaves (see ``evaluate_threshold``).
    """
    final = float(exit_accuracies(logits, labels)[-1])
    return choose_threshold(sweep(logits, labels, costs, rule=policy, closed=closed), final, tolerance, rule)


def threshold_rule_study(
    logits: np.ndarray,
    labels: np.ndarray,
    costs: Sequence[float],
    tolerance: float = 0.01,
    rules: Sequence[str] = THRESHOLD_RULES,
    repeats: int = 200,
    seed: int = 0,
    policy: Rule = "entropy",
):
    """How each threshold rule fares on images it did not choose on, from one split alone.

    The split (the validation split: the test split stays unseen) is cut into two
    stratified halves ``repeats`` times; each rule chooses its threshold on one half
    (``choose_threshold``) and is scored on the other: the drop below the final
    exit's accuracy there, and the mean cost. A rule whose held-out drop exceeds its
    tolerance on average picks thresholds that only looked good on the images it chose on.

    Args:
        logits: ``(N, E, K)`` logits of every exit; labels: ``(N,)``; costs: ``(E,)``.
        tolerance: the drop allowed when choosing.
        rules: the rules to compare (``THRESHOLD_RULES``).
        repeats: the number of random halvings.
        seed: seed of the halvings.
        policy: the exit policy (its default grid is swept).

    Returns:
        A DataFrame with one row per repeat and rule: ``repeat``, ``rule``, ``threshold``,
        ``drop`` (final-exit accuracy minus accuracy at the threshold, on the other half),
        ``relative_cost`` (on the other half) and ``within`` (``drop`` at most ``tolerance``).

    Raises:
        ValueError: fewer than two images of some class, ``repeats`` < 1, or an unknown rule.
    """
    import pandas as pd

    from helpers.data import stratified_split_indices

    logits, labels = np.asarray(logits), np.asarray(labels)
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if unknown := set(rules) - set(THRESHOLD_RULES):
        raise ValueError(f"unknown threshold rules {sorted(unknown)}; choose from {THRESHOLD_RULES}")
    counts = np.bincount(labels)
    if counts[counts > 0].min() < 2:
        raise ValueError("every class needs at least two images to appear in both halves")
    rows = []
    for repeat in range(repeats):
        first, second, _ = stratified_split_indices(labels, (0.5, 0.5, 0.0), seed + repeat)
        chosen_on, scored_on = (logits[first], labels[first]), (logits[second], labels[second])
        val_sweep = sweep(*chosen_on, costs, rule=policy)
        final_chosen = float(exit_accuracies(*chosen_on)[-1])
        final_scored = float(exit_accuracies(*scored_on)[-1])
        for rule in rules:
            t = choose_threshold(val_sweep, final_chosen, tolerance, rule)
            r = evaluate_threshold(*scored_on, costs, t, policy)
            drop = final_scored - r["accuracy"]
            rows.append({"repeat": repeat, "rule": rule, "threshold": t, "drop": drop,
                         "relative_cost": r["relative_cost"], "within": bool(at_most(drop, tolerance))})
    return pd.DataFrame(rows)


def rule_study_summary(study):
    """One row per rule of a ``threshold_rule_study``: ``within`` (the share of halvings whose
    held-out drop stayed within tolerance), ``mean_drop``, ``drop_p95`` (its 95th percentile)
    and ``mean_cost``, rules in the study's order."""
    grouped = study.groupby("rule", sort=False)
    return grouped.agg(within=("within", "mean"), mean_drop=("drop", "mean"),
                       drop_p95=("drop", lambda d: float(np.quantile(d, 0.95))),
                       mean_cost=("relative_cost", "mean"))


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
        rule: the ``choose_threshold`` rule that chose it.
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
    rule: str = DEFAULT_THRESHOLD_RULE

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

    def sweep(
        self, split: str = "test", thresholds: Sequence[float] | None = None, policy: Rule = "entropy",
        closed: Sequence[int] = (),
    ):
        """``sweep`` on ``split`` with ``policy`` (default grid: the policy's) and ``closed`` exits."""
        return sweep(*self._split(split), self.costs, thresholds, policy, exit_names=self.exit_names, closed=closed)

    def with_exits(self, keep: Sequence[str], costs: Sequence[float], policy: Rule = "entropy") -> Analysis:
        """The analysis of the same network with only the early exits ``keep`` (by name), the others' heads removed.

        The logits of the kept outputs are this analysis's; the costs are not, since a
        removed head is no longer paid for: pass those of the network without the other
        heads, ``helpers.cost.relative_costs(helpers.models.select_exits(model, keep))``.
        The threshold is chosen again on validation, by this analysis's ``tolerance``
        and ``rule`` (``policy`` must be the entropy rule for it to be a tau*).

        Raises:
            ValueError: an unknown or repeated name, the final classifier among ``keep``,
                or not one cost per kept output.
        """
        early = self.exit_names[:-1]
        unknown = [n for n in keep if n not in early]
        if unknown or len(set(keep)) != len(keep):
            raise ValueError(f"keep names distinct early exits, from {early}; got {list(keep)}")
        index = [i for i, n in enumerate(early) if n in keep] + [len(self.exit_names) - 1]
        costs = np.asarray(costs, dtype=float)
        if costs.shape != (len(index),):
            raise ValueError(f"{len(index)} kept outputs need {len(index)} costs, got {costs.shape}")
        sub = Analysis(
            self.name, [self.exit_names[i] for i in index], self.class_names, costs, self.val_logits[:, index],
            self.val_labels, self.test_logits[:, index], self.test_labels, self.threshold, self.tolerance, self.rule,
        )
        return dataclasses.replace(sub, threshold=self._chosen_threshold(sub, policy))

    def exit_subset_study(self, subset_costs: dict[tuple[str, ...], Sequence[float]], policy: Rule = "entropy"):
        """Every subset of the early exits deployed, each with its threshold chosen on validation.

        For each subset (``with_exits``: the other heads removed, their cost no longer
        paid), the threshold is chosen on validation as tau* is, then scored on
        validation and on test. Choosing the subset too by the same criterion, the
        cheapest operating point on validation within ``tolerance`` of the final exit,
        is one more choice made on the same validation images: ``chosen`` marks it.

        Args:
            subset_costs: relative costs of each subset, keyed by the kept exits' names
                (``helpers.cost.subset_costs(model)``); every key must name early exits
                of this analysis.
            policy: the exit rule.

        Returns:
            A DataFrame indexed by the kept exits (``exit_1+exit_3``, ``none``), with
            columns ``early_exits`` (how many), ``threshold``, ``val_drop``,
            ``val_relative_cost``, ``test_drop``, ``test_relative_cost`` (drops in points
            below the final exit on that split), ``test_predicted_speedup`` and ``chosen``
            (bool, one row), sorted by validation cost.
        """
        import pandas as pd

        if not subset_costs:
            raise ValueError("no subsets to study: pass helpers.cost.subset_costs(model)")
        rows = {}
        for kept, costs in subset_costs.items():
            sub = self.with_exits(list(kept), costs, policy)
            row, _ = self._operating_point(sub, policy, threshold=sub.threshold)
            rows["+".join(kept) or "none"] = {"early_exits": len(kept)} | row
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.index.name = "exits"
        # the cheapest on validation (all are within tolerance there, or at tau = 0); ties: the
        # smaller validation drop, then fewer heads
        table = table.sort_values(["val_relative_cost", "val_drop", "early_exits"], kind="stable")
        table["chosen"] = np.arange(len(table)) == 0
        return table

    def policy_study(self, policies: Sequence[str] = ("entropy", "max_prob", "patience")):
        """Each exit policy at its own operating point, chosen on validation as tau* is.

        For each policy, ``operating_threshold`` (tau* itself for entropy; for the others
        ``choose_threshold`` with this analysis's ``tolerance`` and ``rule``), scored on
        validation and on test. Choosing the policy too by the same criterion, the
        cheapest operating point on validation, is one more choice made on the same
        validation images: ``chosen`` marks it (on a tie, the first listed).

        Args:
            policies: policy names (``helpers.policies``), the first the default.

        Returns:
            A DataFrame indexed by policy, with columns ``threshold``, ``val_drop``,
            ``val_relative_cost``, ``test_drop``, ``test_relative_cost`` (drops in points
            below the final exit on that split), ``test_predicted_speedup`` and ``chosen``
            (bool, one row).
        """
        import pandas as pd

        names = [resolve_policy(p).name for p in policies]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"name one or more distinct policies, got {list(policies)}")
        rows = {n: self._operating_point(self, n, threshold=self.operating_threshold(n))[0] for n in names}
        table = pd.DataFrame.from_dict(rows, orient="index")
        table["threshold"] = pd.Series({n: row["threshold"] for n, row in rows.items()}, dtype=object)  # patience: int
        table["chosen"] = False
        table.loc[table["val_relative_cost"].astype(float).idxmin(), "chosen"] = True  # idxmin: the first of a tie
        return table

    def closed_exit_comparison(
        self, closed: Sequence[str], policy: Rule = "entropy", removed_costs: Sequence[float] | None = None,
    ):
        """The operating point with every exit open and with the exits ``closed`` (by name) letting nobody leave.

        For each setting the threshold is chosen on validation as the published one is
        (``choose_threshold`` with this analysis's ``tolerance`` and ``rule``), then
        scored on validation and on test. A closed exit's head still runs and is still
        counted, so the costs are those of the same network. With ``removed_costs``, the
        relative costs of the network without those heads
        (``helpers.cost.relative_costs(helpers.models.select_exits(model, kept))``), a
        third setting removes them instead (``with_exits``): nobody leaves there either,
        and their heads are no longer paid for.

        Returns:
            A DataFrame indexed by ``every exit``, ``without <names>`` and, with
            ``removed_costs``, ``removed <names>``, with columns ``threshold``,
            ``val_drop`` and ``test_drop`` (points below the final exit on that split),
            ``val_relative_cost``, ``test_relative_cost``, ``test_predicted_speedup`` and
            one ``test_frac_<exit>`` column per exit.
        """
        import pandas as pd

        unknown = [n for n in closed if n not in self.exit_names[:-1]]
        if unknown or not closed:
            raise ValueError(f"name one or more early exits to close, from {self.exit_names[:-1]}; got {list(closed)}")
        index = [self.exit_names.index(n) for n in closed]
        settings = [("every exit", self, [], None), (f"without {', '.join(closed)}", self, index, None)]
        if removed_costs is not None:
            kept = [n for n in self.exit_names[:-1] if n not in closed]
            sub = self.with_exits(kept, removed_costs, policy)
            settings.append((f"removed {', '.join(closed)}", sub, [], sub.threshold))
        rows = {}
        for label, analysis, shut, threshold in settings:
            row, test = self._operating_point(analysis, policy, shut, threshold)
            fractions = dict.fromkeys(self.exit_names, 0.0) | dict(zip(analysis.exit_names, test["exit_fractions"], strict=True))
            rows[label] = row | {f"test_frac_{n}": float(f) for n, f in fractions.items()}
        return pd.DataFrame.from_dict(rows, orient="index")

    def _chosen_threshold(self, analysis: Analysis, policy: Rule, closed: Sequence[int] = ()) -> float | int:
        """The threshold ``analysis`` (this one, or one of its subsets) gets on validation with ``closed`` exits.

        Chosen as tau* is (``choose_on_validation``), with this analysis's ``tolerance`` and
        ``rule``; a subset's final exit is this analysis's, so the accuracy to stay within
        the tolerance of is the same.
        """
        return choose_on_validation(analysis.val_logits, analysis.val_labels, analysis.costs, self.tolerance,
                                    self.rule, policy, closed)

    def _operating_point(
        self, analysis: Analysis, policy: Rule, closed: Sequence[int] = (), threshold: float | int | None = None,
    ) -> tuple[dict, dict]:
        """``analysis`` at ``threshold`` (default: ``_chosen_threshold``), scored on validation and test.

        Returns:
            ``(row, test)``: ``row`` holds ``threshold``, ``val_drop`` and ``test_drop``
            (points below the final exit), ``val_relative_cost``, ``test_relative_cost`` and
            ``test_predicted_speedup``; ``test`` is ``evaluate_threshold``'s result on test.
        """
        final = {s: float(exit_accuracies(*self._split(s))[-1]) for s in ("val", "test")}
        t = self._chosen_threshold(analysis, policy, closed) if threshold is None else threshold
        at = {s: evaluate_threshold(*analysis._split(s), analysis.costs, t, policy, closed) for s in ("val", "test")}
        row = {
            "threshold": t,
            "val_drop": 100 * (final["val"] - at["val"]["accuracy"]),
            "val_relative_cost": at["val"]["relative_cost"],
            "test_drop": 100 * (final["test"] - at["test"]["accuracy"]),
            "test_relative_cost": at["test"]["relative_cost"],
            "test_predicted_speedup": at["test"]["predicted_speedup"],
        }
        return row, at["test"]

    def operating_threshold(self, policy: Rule = "entropy") -> float | int:
        """The policy's operating threshold: ``threshold`` for entropy, else chosen on validation like it.

        The choice is ``choose_on_validation`` with this analysis's ``tolerance`` and ``rule``.
        """
        spec = resolve_policy(policy)
        if spec.name == "entropy":
            return self.threshold
        return self._chosen_threshold(self, spec)

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
        meta = {k: getattr(self, k) for k in ("name", "exit_names", "class_names", "threshold", "tolerance", "rule")}
        (folder / "analysis.json").write_text(json.dumps(meta, indent=1))
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> Analysis:
        """Read what ``save`` wrote."""
        folder = Path(folder)
        meta = json.loads((folder / "analysis.json").read_text())
        with np.load(folder / "analysis.npz") as arrays:
            return cls(**meta, **{k: arrays[k] for k in arrays.files})


def networks_ensemble_accuracy(analyses: Sequence[Analysis], split: str = "test") -> float:
    """Accuracy on ``split`` of several networks' final exits averaged: a ceiling, not a model.

    The class with the highest softmax probability averaged over the final classifiers
    of ``analyses`` (as ``ensemble_accuracy`` averages the exits of one network). It
    costs every network in full, so it is not something to deploy here: it shows how
    far the networks of our recipes get together on the same images, beside what one
    of them gets.

    Raises:
        ValueError: no analysis, or their ``split`` labels differ (not the same images).
    """
    if not analyses:
        raise ValueError("no network to average")
    labels = analyses[0].split_data(split)[1]
    finals = []
    for a in analyses:
        logits, other = a.split_data(split)
        if not np.array_equal(other, labels):
            raise ValueError(f"{a.name} was analysed on other {split} images than {analyses[0].name}")
        finals.append(logits[:, -1])
    return ensemble_accuracy(np.stack(finals, axis=1), labels)


def analyse(
    model, splits, name: str, tolerance: float = 0.01, batch_size: int = 128, rule: str = DEFAULT_THRESHOLD_RULE,
) -> Analysis:
    """Collect every exit's logits on the validation and test splits and choose tau* on validation.

    Args:
        model: a trained multi-exit (or plain) model.
        splits: the ``helpers.data.Splits`` the model was trained with.
        name: a name for tables and legends.
        tolerance: accuracy drop allowed at tau* (0.01 = 1 point), on validation.
        batch_size: inference batch size.
        rule: how ``choose_threshold`` picks tau* among the thresholds within tolerance.
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
    threshold = choose_on_validation(val_logits, val_labels, costs, tolerance, rule)
    return Analysis(
        name, list(model.output_names), list(splits.class_names), costs,
        val_logits, val_labels, test_logits, test_labels, threshold, tolerance, rule,
    )
