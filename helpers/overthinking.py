"""The oracle exit and overthinking (after Shallow-Deep Networks, Kaya et al., ICML 2019).

Everything works on the logits of all exits, ``(N, E, K)``, final last.

*The oracle* knows the labels: each sample leaves at the earliest exit that
classifies it correctly. Samples that no exit gets right go to the final classifier
(``unsolved="final"``, the default: the oracle then behaves like the network would
without early exit on its hopeless cases); ``unsolved="first"`` sends them to exit 1
instead, the absolute cost minimum. No exit policy can be more accurate than the
oracle (its accuracy is the fraction of samples that *some* exit gets right) and no
policy reaching that accuracy can be cheaper, so its (cost, accuracy) point is the
physical limit of early exit on that model.

*How much of the oracle's saving a policy achieves*, with the plain network's cost
as the reference (``reference=1.0``)::

    saving_fraction = (reference - policy cost) / (reference - oracle cost)

1 means the policy saves as much compute as the oracle, 0 nothing, a negative value
that it costs more than the reference (heads included, a policy that lets nobody
leave costs more than the plain network). A value above 1 is possible only by giving
up accuracy (the policy sends samples out earlier than their first correct exit), so
compare policies at an accuracy close to the oracle's or the final classifier's. It
is undefined (NaN) when the oracle itself saves nothing. Pass ``reference=costs[-1]`` to measure savings against the
multi-exit network run to the end instead.

*Overthinking*: a sample is overthought when some exit before the final one already
classifies it correctly. Kaya et al. split it in two: *wasteful* (the final
classifier is right too: the later layers only cost time) and *destructive* (the
final classifier is wrong: going deeper changed a right answer into a wrong one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from helpers.evaluation import correct, outcome


def _check(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.ndim != 3:
        raise ValueError(f"logits must be (N, E, K), got shape {logits.shape}")
    if labels.shape != (logits.shape[0],):
        raise ValueError(f"need one label per sample ({logits.shape[0]}), got shape {labels.shape}")
    return logits, labels


def correct_matrix(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """bool ``(N, E)``: whether exit ``e`` classifies sample ``i`` correctly."""
    return correct(*_check(logits, labels))


def oracle_exits(logits: np.ndarray, labels: np.ndarray, unsolved: str = "final") -> np.ndarray:
    """0-based earliest correct exit of each sample ``(N,)``.

    Args:
        logits: ``(N, E, K)``.
        labels: ``(N,)``.
        unsolved: where samples no exit gets right go: ``"final"`` (the last exit) or ``"first"``.
    """
    if unsolved not in ("final", "first"):
        raise ValueError(f"unsolved must be 'final' or 'first', got {unsolved!r}")
    correct = correct_matrix(logits, labels)
    solved = correct.any(axis=1)
    fallback = correct.shape[1] - 1 if unsolved == "final" else 0
    return np.where(solved, correct.argmax(axis=1), fallback)


def oracle(logits: np.ndarray, labels: np.ndarray, costs: Sequence[float], unsolved: str = "final") -> dict:
    """The oracle's outcome: accuracy, mean relative cost and exits (see the module docstring).

    Returns:
        The dict of ``helpers.evaluation.outcome`` (``accuracy``, ``relative_cost``,
        ``predicted_speedup``, ``exit_fractions``, ``exit_index``, ``predictions``).
    """
    return outcome(logits, labels, costs, oracle_exits(logits, labels, unsolved))


def saving_fraction(policy_cost: float, oracle_cost: float, reference: float = 1.0) -> float:
    """Share of the oracle's compute saving that a policy achieves: ``(ref - policy) / (ref - oracle)``.

    Args:
        policy_cost: the policy's mean relative cost.
        oracle_cost: the oracle's mean relative cost.
        reference: the cost savings are measured from (1.0: the plain network).

    Returns:
        The fraction (1: as much as the oracle; negative: dearer than the reference),
        NaN when the oracle saves nothing (``oracle_cost >= reference``).
    """
    gap = float(reference) - float(oracle_cost)
    if not gap > 0:
        return float("nan")
    return (float(reference) - float(policy_cost)) / gap


def overthinking(logits: np.ndarray, labels: np.ndarray) -> dict:
    """Overthinking statistics (see the module docstring).

    Returns:
        A dict with the fractions of all samples ``overthinking`` (some earlier exit
        right), ``wasteful`` (and the final right), ``destructive`` (and the final
        wrong), ``final_error``; ``destructive_share_of_errors`` (destructive /
        final errors; NaN without errors); ``destructive_per_exit`` ``(E - 1,)``
        (fraction right at that exit but wrong at the final one);
        ``destructive_indices`` (sample indices) and ``first_correct_exit``
        ``(N,)`` (0-based, -1 when no exit is right).
    """
    correct = correct_matrix(logits, labels)
    early = correct[:, :-1].any(axis=1)
    final = correct[:, -1]
    destructive = early & ~final
    errors = float((~final).mean())
    first = np.where(correct.any(axis=1), correct.argmax(axis=1), -1)
    return {
        "overthinking": float(early.mean()),
        "wasteful": float((early & final).mean()),
        "destructive": float(destructive.mean()),
        "final_error": errors,
        "destructive_share_of_errors": float(destructive.sum() / (~final).sum()) if errors > 0 else float("nan"),
        "destructive_per_exit": (correct[:, :-1] & ~final[:, None]).mean(axis=0),
        "destructive_indices": np.flatnonzero(destructive),
        "first_correct_exit": first,
    }


def oracle_table(analysis, split: str = "test", policies: Sequence[str] = ("entropy", "max_prob", "patience"),
                 thresholds: Mapping[str, float] | None = None, reference: float = 1.0):
    """The oracle against each policy at its operating threshold, on one split.

    Args:
        analysis: a ``helpers.evaluation.Analysis``.
        split: ``"val"`` or ``"test"``.
        policies: policy names.
        thresholds: policy name -> threshold; missing policies use
            ``Analysis.operating_threshold`` (chosen on validation).
        reference: the cost savings are measured from (1.0: the plain network).

    Returns:
        A DataFrame indexed by ``oracle`` and the policies, with ``threshold``,
        ``accuracy``, ``relative_cost`` and ``saving_fraction`` (1 for the oracle).
    """
    import pandas as pd

    logits, labels = analysis.split_data(split)
    best = oracle(logits, labels, analysis.costs)
    rows = {"oracle": {"threshold": np.nan, "accuracy": best["accuracy"], "relative_cost": best["relative_cost"],
                       "saving_fraction": saving_fraction(best["relative_cost"], best["relative_cost"], reference)}}
    for name in policies:
        t = (thresholds or {}).get(name)
        r = analysis.at(t, split, name)
        rows[name] = {"threshold": r["threshold"], "accuracy": r["accuracy"], "relative_cost": r["relative_cost"],
                      "saving_fraction": saving_fraction(r["relative_cost"], best["relative_cost"], reference)}
    return pd.DataFrame.from_dict(rows, orient="index")
