"""Exit rules: when is an exit confident enough to let a sample leave?

The default rule is *normalised entropy*: for probabilities p over K classes,

    H(p) = -sum_k p_k log p_k / log K        (0 log 0 = 0)

lies in [0, 1] for every K (0: one-hot, 1: uniform), so a threshold tau means the
same thing for 5 flower classes and for 10 CIFAR classes. A sample leaves at an
exit when H < tau. Hence tau = 0 lets nobody leave early (everyone reaches the
final classifier) and tau = 1 lets everybody leave at the first exit (the uniform
distribution included: tau >= 1 accepts everything).

A rule is a function ``rule(logits, threshold) -> bool[batch]`` written with
TensorFlow ops, so the same function serves the NumPy analysis and the graph-mode
early-exit engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import tensorflow as tf

ExitRule = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def check_threshold(threshold: float) -> float:
    """Return ``threshold`` as a float, or raise ``ValueError`` if it is not in [0, 1]."""
    value = float(threshold)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"threshold must be a number in [0, 1], got {threshold!r}")
    return value


def normalized_entropy(probs) -> tf.Tensor:
    """Entropy of probability vectors divided by log K, in [0, 1].

    Args:
        probs: ``(..., K)`` probabilities (rows sum to 1); exact zeros are fine.

    Returns:
        ``(...)`` float32 normalised entropies: exactly 1.0 for uniform rows.
    """
    # float64 inside, float32 out: the rounding error (~1e-16) vanishes in the cast, so a
    # uniform distribution gives exactly 1.0 and a one-hot exactly 0.0.
    p = tf.cast(tf.convert_to_tensor(probs), tf.float64)
    k = p.shape[-1]
    if k is None or k < 2:
        raise ValueError(f"normalised entropy needs at least 2 classes, got shape {p.shape}")
    h = -tf.reduce_sum(tf.math.xlogy(p, p), axis=-1) / math.log(k)
    return tf.cast(tf.clip_by_value(h, 0.0, 1.0), tf.float32)


def entropy_from_logits(logits) -> tf.Tensor:
    """Normalised entropy of ``softmax(logits)``; rows with NaN or infinite logits get 1.

    A non-finite row is treated as "no information" (maximal uncertainty), so it
    never leaves early and reaches the final classifier.
    """
    z = tf.cast(tf.convert_to_tensor(logits), tf.float64)
    finite = tf.reduce_all(tf.math.is_finite(z), axis=-1)
    safe = tf.where(finite[..., None], z, tf.zeros_like(z))
    h = normalized_entropy(tf.nn.softmax(safe, axis=-1))
    return tf.where(finite, h, tf.ones_like(h))  # float32


def entropy_exit(logits, threshold) -> tf.Tensor:
    """True where a sample should leave: normalised entropy below ``threshold`` (or tau >= 1)."""
    threshold = tf.cast(threshold, tf.float32)
    return tf.logical_or(entropy_from_logits(logits) < threshold, threshold >= 1.0)


POLICIES: dict[str, ExitRule] = {"entropy": entropy_exit}


def get_policy(name: str) -> ExitRule:
    """The exit rule called ``name`` (see ``POLICIES``)."""
    try:
        return POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown exit policy {name!r}; choose one of {sorted(POLICIES)}") from None


def leave_mask(logits: np.ndarray, threshold: float, rule: ExitRule = entropy_exit) -> np.ndarray:
    """Apply ``rule`` to every exit: bool ``(N, E)``; the last exit always accepts.

    Args:
        logits: ``(N, E, K)`` logits of all exits, final last.
        threshold: the rule's threshold.
        rule: an exit rule.
    """
    logits = np.asarray(logits)
    n, e, _ = logits.shape
    mask = np.stack([np.asarray(rule(logits[:, j], threshold)) for j in range(e)], axis=1)
    mask[:, -1] = True
    return mask.reshape(n, e)


def first_exit(mask: np.ndarray) -> np.ndarray:
    """Index (0-based) of the first True in each row of an ``(N, E)`` mask whose last column is True."""
    mask = np.asarray(mask, dtype=bool)
    if not mask[:, -1].all():
        raise ValueError("the last exit must accept every sample")
    return mask.argmax(axis=1)
