"""Budget-targeted thresholds: the most accurate exit threshold that costs at most a given budget.

Instead of "lose at most one point of accuracy" (``helpers.evaluation.choose_threshold``)
one can ask "spend at most half of the plain network": a target *mean relative cost*
``budget`` (1.0 = the plain network, heads excluded; see ``helpers.cost``).

``threshold_for_budget`` tries every threshold of a fine grid on the *validation*
split and keeps, among those whose mean validation cost is at most the budget, the
one with the best validation accuracy (ties: the cheaper, then the first in grid
order). Choosing on validation and reporting on test keeps the test split honest;
the test cost can therefore land slightly above or below the budget.

A single threshold for every exit is the simplest rule. ``per_exit_thresholds_for_budget``
gives each early exit its own threshold, found by coordinate ascent on validation:
starting from the best single threshold, it changes one exit's threshold at a time
whenever that raises validation accuracy within the budget (or, at equal accuracy,
lowers the cost), until a full round changes nothing. ``budget_table`` compares both
on the test split; on a small validation set the extra freedom can overfit, which
is why the comparison is made on test.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from helpers.evaluation import Rule, correct, evaluate_threshold, outcome, sweep
from helpers.limits import SLACK, at_most
from helpers.policies import first_exit, is_stateful, leave_mask_per_exit, resolve_policy


def _check_budget(budget: float, costs: np.ndarray) -> float:
    budget = float(budget)
    if not np.isfinite(budget) or budget <= 0:
        raise ValueError(f"budget must be a positive mean relative cost (e.g. 0.5 of the plain network), got {budget!r}")
    if not at_most(costs[0], budget):
        raise ValueError(
            f"budget {budget:.3f} is below the cost of the first exit ({costs[0]:.3f}): no threshold can meet it; "
            f"raise the budget to at least {costs[0]:.3f}"
        )
    return budget


def choose_for_budget(val_sweep, budget: float) -> float | int:
    """From a validation ``sweep`` table, the threshold with the best accuracy whose cost is <= ``budget``.

    Args:
        val_sweep: a ``helpers.evaluation.sweep`` DataFrame (``threshold``, ``accuracy``,
            ``relative_cost``) computed on the validation split.
        budget: target mean relative cost.

    Returns:
        The threshold (ties on accuracy: the cheaper, then the first row).

    Raises:
        ValueError: no row meets the budget (the message gives the cheapest cost).
    """
    if val_sweep.empty:
        raise ValueError("the sweep is empty: no candidate thresholds")
    ok = val_sweep[at_most(val_sweep["relative_cost"], float(budget))]
    if ok.empty:
        raise ValueError(
            f"no threshold meets the budget {float(budget):.3f} on validation: the cheapest candidate costs "
            f"{val_sweep['relative_cost'].min():.3f}; raise the budget or add cheaper thresholds"
        )
    best = ok.assign(_row=np.arange(len(ok))).sort_values(
        ["accuracy", "relative_cost", "_row"], ascending=[False, True, True])
    value = best["threshold"].iloc[0]
    return int(value) if isinstance(value, (int, np.integer)) else float(value)


def threshold_for_budget(
    val_logits: np.ndarray,
    val_labels: np.ndarray,
    costs: Sequence[float],
    budget: float,
    policy: Rule = "entropy",
    thresholds: Sequence[float] | None = None,
) -> float | int:
    """The threshold with the best validation accuracy among those whose mean validation cost is <= ``budget``.

    Args:
        val_logits: ``(N, E, K)`` validation logits of every exit.
        val_labels: ``(N,)`` validation labels.
        costs: relative cost of reaching each exit ``(E,)``.
        budget: target mean relative cost (1.0 = the plain network).
        policy: policy name or rule.
        thresholds: candidates; default the policy's ``fine_grid`` (401 values in
            [0, 1], more near 1 for max_prob; p = 1..E for patience).

    Returns:
        The threshold (ties on accuracy: the cheaper, then the first candidate;
        see ``choose_for_budget``).

    Raises:
        ValueError: the budget is not positive or below the first exit's cost, or no
            candidate meets it (the message gives the cheapest validation cost).
    """
    spec = resolve_policy(policy)
    val_logits = np.asarray(val_logits)
    costs = np.asarray(costs, dtype=np.float64)
    if costs.shape != (val_logits.shape[1],):
        raise ValueError(f"need one cost per exit ({val_logits.shape[1]}), got {costs.shape}")
    budget = _check_budget(budget, costs)
    grid = list(spec.fine_grid(val_logits.shape[1]) if thresholds is None else thresholds)
    if not grid:
        raise ValueError("no candidate thresholds given")
    t = choose_for_budget(sweep(val_logits, val_labels, costs, grid, spec), budget)
    return int(t) if spec.integer else float(t)


def evaluate_per_exit(
    logits: np.ndarray,
    labels: np.ndarray,
    costs: Sequence[float],
    thresholds: Sequence[float],
    policy: Rule = "entropy",
) -> dict:
    """Early-exit outcome with one threshold per early exit (stateless policies).

    Args:
        logits: ``(N, E, K)``.
        labels: ``(N,)``.
        costs: ``(E,)`` relative costs.
        thresholds: ``E - 1`` thresholds, one per early exit, each in [0, 1].
        policy: ``entropy``, ``max_prob`` or a stateless rule.

    Returns:
        The dict of ``helpers.evaluation.outcome`` plus ``thresholds`` and ``policy``.
    """
    spec = resolve_policy(policy)
    if is_stateful(spec.rule):
        raise ValueError(f"per-exit thresholds need a stateless policy (entropy or max_prob), not {spec.name}")
    logits = np.asarray(logits)
    thresholds = [spec.check(t) for t in thresholds]
    mask = leave_mask_per_exit(logits, thresholds, spec.rule)
    return {"thresholds": thresholds[: logits.shape[1] - 1], "policy": spec.name} | outcome(
        logits, labels, costs, first_exit(mask)
    )


def per_exit_thresholds_for_budget(
    val_logits: np.ndarray,
    val_labels: np.ndarray,
    costs: Sequence[float],
    budget: float,
    policy: Rule = "entropy",
    grid: Sequence[float] | None = None,
    max_rounds: int = 5,
) -> np.ndarray:
    """One threshold per early exit, by coordinate ascent on validation accuracy within the budget.

    Starts from ``threshold_for_budget`` (the same threshold at every exit), then
    repeatedly tries every ``grid`` value at one exit at a time, keeping a change
    when it stays within the budget and raises validation accuracy (or keeps it and
    lowers the cost). Stops after a round without change or ``max_rounds`` rounds.
    The result is never worse on validation than the single threshold.

    Args:
        val_logits, val_labels, costs, budget: as for ``threshold_for_budget``.
        policy: a stateless policy (``entropy`` or ``max_prob``).
        grid: candidate thresholds per exit (default: the policy's ``grid``, 41 values).
        max_rounds: at most this many rounds over the exits.

    Returns:
        float ``(E - 1,)`` thresholds.
    """
    spec = resolve_policy(policy)
    if is_stateful(spec.rule):
        raise ValueError(f"per-exit thresholds need a stateless policy (entropy or max_prob), not {spec.name}")
    val_logits = np.asarray(val_logits)
    val_labels = np.asarray(val_labels)
    costs = np.asarray(costs, dtype=np.float64)
    n, e, _ = val_logits.shape
    budget = _check_budget(budget, costs)
    start = float(threshold_for_budget(val_logits, val_labels, costs, budget, spec))
    grid = np.union1d(spec.grid(e) if grid is None else np.asarray(grid, dtype=float), [start])
    # leave[j][g]: who would leave at exit j with threshold grid[g] (computed once)
    leave = np.stack([np.asarray(spec.rule(val_logits[:, j], t)).reshape(n)
                      for j in range(e - 1) for t in grid]).reshape(e - 1, len(grid), n)
    right = correct(val_logits, val_labels)  # (N, E)
    rows = np.arange(n)

    def score(choice: np.ndarray) -> tuple[float, float]:
        mask = np.ones((n, e), dtype=bool)
        mask[:, :-1] = leave[np.arange(e - 1), choice].T
        exit_index = first_exit(mask)
        return float(right[rows, exit_index].mean()), float(costs[exit_index].mean())

    choice = np.full(e - 1, int(np.flatnonzero(grid == start)[0]))
    best_acc, best_cost = score(choice)
    for _ in range(max_rounds):
        changed = False
        for j in range(e - 1):
            for g in range(len(grid)):
                if g == choice[j]:
                    continue
                trial = choice.copy()
                trial[j] = g
                acc, cost = score(trial)
                better = acc > best_acc + SLACK or (acc >= best_acc - SLACK and cost < best_cost - SLACK)
                if at_most(cost, budget) and better:
                    choice, best_acc, best_cost, changed = trial, acc, cost, True
        if not changed:
            break
    return grid[choice].astype(float)


def budget_table(
    val_logits: np.ndarray,
    val_labels: np.ndarray,
    test_logits: np.ndarray,
    test_labels: np.ndarray,
    costs: Sequence[float],
    budgets: Sequence[float],
    policy: Rule = "entropy",
    per_exit: bool = True,
):
    """For each budget: the single threshold (and per-exit thresholds) chosen on validation, scored on test.

    Args:
        val_logits, val_labels: the validation split (where thresholds are chosen).
        test_logits, test_labels: the test split (where they are scored).
        costs: ``(E,)`` relative costs.
        budgets: target mean relative costs; budgets no threshold meets are skipped.
        policy: policy name or rule.
        per_exit: also search per-exit thresholds (stateless policies only).

    Returns:
        A DataFrame with one row per budget: ``budget``, ``threshold``,
        ``val_accuracy``, ``val_cost``, ``test_accuracy``, ``test_cost`` and, with
        ``per_exit``, ``per_exit_thresholds`` (list), ``per_exit_val_accuracy``,
        ``per_exit_val_cost``, ``per_exit_test_accuracy``, ``per_exit_test_cost`` and
        ``per_exit_gain`` (test accuracy minus the single threshold's).
    """
    import pandas as pd

    spec = resolve_policy(policy)
    costs = np.asarray(costs, dtype=np.float64)
    per_exit = per_exit and not is_stateful(spec.rule)
    rows = []
    for b in budgets:
        try:
            t = threshold_for_budget(val_logits, val_labels, costs, b, spec)
        except ValueError:
            continue
        val = evaluate_threshold(val_logits, val_labels, costs, t, spec)
        test = evaluate_threshold(test_logits, test_labels, costs, t, spec)
        row = {"budget": float(b), "threshold": t, "val_accuracy": val["accuracy"], "val_cost": val["relative_cost"],
               "test_accuracy": test["accuracy"], "test_cost": test["relative_cost"]}
        if per_exit:
            ts = per_exit_thresholds_for_budget(val_logits, val_labels, costs, b, spec)
            pval = evaluate_per_exit(val_logits, val_labels, costs, ts, spec)
            ptest = evaluate_per_exit(test_logits, test_labels, costs, ts, spec)
            row |= {"per_exit_thresholds": [float(x) for x in ts],
                    "per_exit_val_accuracy": pval["accuracy"], "per_exit_val_cost": pval["relative_cost"],
                    "per_exit_test_accuracy": ptest["accuracy"], "per_exit_test_cost": ptest["relative_cost"],
                    "per_exit_gain": ptest["accuracy"] - test["accuracy"]}
        rows.append(row)
    return pd.DataFrame(rows)
