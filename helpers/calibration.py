"""Calibration of each exit: reliability diagrams, expected calibration error, temperature scaling.

An exit is *calibrated* when, among the samples it gives confidence c (its largest
softmax probability), a fraction c is classified correctly. Exits of a multi-exit
network usually are not, and not in the same way: a shallow exit may be
under-confident and the final classifier over-confident. A single threshold then
means something different at every exit ("max probability above 0.9" may be 80%
right at one exit and 99% at another). Once each exit is calibrated, a confidence
of 0.9 means "right 9 times out of 10" everywhere, so one threshold asks for the
same reliability at every exit.

*Expected calibration error* (ECE, Naeini et al. 2015; Guo et al. 2017): split the
confidences into ``n_bins`` equal-width bins ``(b/n, (b+1)/n]`` (a confidence of
exactly 0 goes to the first bin), then

    ECE = sum_b (n_b / N) * |accuracy_b - mean confidence_b|

*Temperature scaling* (Guo et al. 2017) divides an exit's logits by one number
T > 0 fitted on the validation split to minimise the negative log-likelihood: T > 1
softens over-confident predictions, T < 1 sharpens under-confident ones. Dividing by
T never changes the argmax, so each exit's accuracy stays the same; only its
confidences (and entropies), hence where samples leave, change. The NLL is convex in
1/T, so a golden-section search on log T finds the minimum without scipy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

DEFAULT_BINS = 15
TEMPERATURE_BOUNDS = (0.05, 20.0)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` in float64 (numerically stable)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _check_probs(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"probs must be (N, K) with K >= 2, got shape {probs.shape}")
    if labels.shape != (len(probs),):
        raise ValueError(f"need one label per row of probs ({len(probs)}), got shape {labels.shape}")
    if len(probs) == 0:
        raise ValueError("need at least one sample")
    if not np.all(np.isfinite(probs)) or probs.min() < 0 or np.abs(probs.sum(axis=1) - 1).max() > 1e-3:
        raise ValueError("probs must be probabilities (non-negative rows summing to 1); "
                         "for logits, pass softmax(logits)")
    return probs, labels


def reliability_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = DEFAULT_BINS) -> dict:
    """Per-bin accuracy and confidence for a reliability diagram, and the ECE.

    Args:
        probs: ``(N, K)`` predicted probabilities.
        labels: ``(N,)`` true labels.
        n_bins: number of equal-width confidence bins on [0, 1].

    Returns:
        A dict: ``edges`` ``(n_bins + 1,)``, ``counts`` ``(n_bins,)``, ``accuracy``
        and ``confidence`` ``(n_bins,)`` (NaN for empty bins), ``ece`` and ``n``.
    """
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    probs, labels = _check_probs(probs, labels)
    n_bins = int(n_bins)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # bin b holds confidences in (edges[b], edges[b + 1]]; 0 goes to bin 0
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    counts = np.bincount(which, minlength=n_bins)
    sums_correct = np.bincount(which, weights=correct.astype(float), minlength=n_bins)
    sums_conf = np.bincount(which, weights=confidence, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(counts > 0, sums_correct / counts, np.nan)
        mean_conf = np.where(counts > 0, sums_conf / counts, np.nan)
    filled = counts > 0
    ece = float(np.sum(counts[filled] / len(probs) * np.abs(accuracy[filled] - mean_conf[filled])))
    return {"edges": edges, "counts": counts, "accuracy": accuracy, "confidence": mean_conf,
            "ece": ece, "n": int(len(probs))}


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = DEFAULT_BINS) -> float:
    """ECE with ``n_bins`` equal-width confidence bins (see the module docstring)."""
    return reliability_bins(probs, labels, n_bins)["ece"]


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / temperature)``."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    labels = np.asarray(labels)
    top = z.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(z)), labels]))


def fit_temperature(
    logits: np.ndarray,
    labels: np.ndarray,
    bounds: tuple[float, float] = TEMPERATURE_BOUNDS,
    tol: float = 1e-7,
) -> float:
    """The temperature T > 0 minimising ``nll(logits, labels, T)`` (golden-section search on log T).

    Args:
        logits: ``(N, K)`` logits of one exit (finite).
        labels: ``(N,)`` true labels.
        bounds: search range of T; the result is clipped to it (a perfectly separated
            set, whose NLL keeps falling as T -> 0, returns the lower bound; an exit
            no better than chance, best predicting uniform probabilities, the upper).
        tol: stop when the bracket on log T is narrower than this.

    Returns:
        The fitted temperature.
    """
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    if logits.ndim != 2 or logits.shape[1] < 2 or labels.shape != (len(logits),) or len(logits) == 0:
        raise ValueError(f"need logits (N, K) with K >= 2 and one label per row, got {logits.shape} and {labels.shape}")
    if not np.all(np.isfinite(logits)):
        raise ValueError("logits must be finite to fit a temperature (drop NaN/inf rows first)")
    lo, hi = (float(b) for b in bounds)
    if not 0 < lo < hi:
        raise ValueError(f"bounds must satisfy 0 < low < high, got {bounds}")
    a, b = math.log(lo), math.log(hi)
    ratio = (math.sqrt(5) - 1) / 2

    def f(u: float) -> float:
        return nll(logits, labels, math.exp(u))

    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = f(c), f(d)
    while b - a > tol:
        if fc <= fd:  # the minimum is in [a, d]
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = f(c)
        else:  # in [c, b]
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = f(d)
    u = (a + b) / 2
    best = min((f(u), u), (f(math.log(lo)), math.log(lo)), (f(math.log(hi)), math.log(hi)))[1]
    return float(math.exp(best))


def fit_temperatures(logits: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = TEMPERATURE_BOUNDS) -> np.ndarray:
    """One temperature per exit, fitted independently: ``(E,)`` for ``(N, E, K)`` logits."""
    logits = np.asarray(logits)
    if logits.ndim != 3:
        raise ValueError(f"logits must be (N, E, K), got shape {logits.shape}")
    return np.array([fit_temperature(logits[:, j], labels, bounds) for j in range(logits.shape[1])])


def apply_temperatures(logits: np.ndarray, temperatures: Sequence[float]) -> np.ndarray:
    """Divide each exit's logits by its temperature: ``(N, E, K)`` float32.

    Args:
        logits: ``(N, E, K)``.
        temperatures: ``(E,)`` positive temperatures.
    """
    logits = np.asarray(logits)
    temps = np.asarray(temperatures, dtype=np.float64)
    if logits.ndim != 3 or temps.shape != (logits.shape[1],):
        raise ValueError(f"need (N, E, K) logits and one temperature per exit, got {logits.shape} and {temps.shape}")
    if not np.all(np.isfinite(temps)) or temps.min() <= 0:
        raise ValueError(f"temperatures must be positive numbers, got {temps.tolist()}")
    return (logits / temps[None, :, None]).astype(np.float32)


def exit_reliability(logits: np.ndarray, labels: np.ndarray, n_bins: int = DEFAULT_BINS) -> list[dict]:
    """``reliability_bins`` of every exit of ``(N, E, K)`` logits."""
    logits = np.asarray(logits)
    return [reliability_bins(softmax(logits[:, j]), labels, n_bins) for j in range(logits.shape[1])]


def calibration_table(analysis, temperatures: Sequence[float] | None = None, split: str = "test",
                      n_bins: int = DEFAULT_BINS):
    """Per exit: fitted temperature, ECE and NLL on ``split`` before and after temperature scaling.

    Args:
        analysis: a ``helpers.evaluation.Analysis``.
        temperatures: ``(E,)``; default fitted on the validation split.
        split: where ECE and NLL are measured.
        n_bins: ECE bins.

    Returns:
        A DataFrame indexed by exit name: ``temperature``, ``ece_before``, ``ece_after``,
        ``nll_before``, ``nll_after``.
    """
    import pandas as pd

    temps = fit_temperatures(analysis.val_logits, analysis.val_labels) if temperatures is None else np.asarray(temperatures)
    logits, labels = analysis.split_data(split)
    rows = {}
    for j, name in enumerate(analysis.exit_names):
        z = logits[:, j]
        rows[name] = {
            "temperature": float(temps[j]),
            "ece_before": expected_calibration_error(softmax(z), labels, n_bins),
            "ece_after": expected_calibration_error(softmax(z, temps[j]), labels, n_bins),
            "nll_before": nll(z, labels),
            "nll_after": nll(z, labels, temps[j]),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def calibrated_analysis(analysis, temperatures: Sequence[float] | None = None):
    """A copy of ``analysis`` whose logits are temperature-scaled per exit, with tau* chosen again.

    Args:
        analysis: a ``helpers.evaluation.Analysis``.
        temperatures: ``(E,)``; default fitted on its validation split.

    Returns:
        ``(calibrated, temperatures)``: the new ``Analysis`` (name suffixed
        ``" (calibrated)"``, entropy tau* re-chosen on the scaled validation logits with
        the same tolerance and rule) and the temperatures used.
    """
    from helpers.evaluation import choose_on_validation

    temps = fit_temperatures(analysis.val_logits, analysis.val_labels) if temperatures is None else np.asarray(temperatures)
    scaled = dataclasses.replace(
        analysis,
        name=f"{analysis.name} (calibrated)",
        val_logits=apply_temperatures(analysis.val_logits, temps),
        test_logits=apply_temperatures(analysis.test_logits, temps),
    )
    scaled.threshold = choose_on_validation(scaled.val_logits, scaled.val_labels, scaled.costs, scaled.tolerance,
                                            scaled.rule)
    return scaled, temps
