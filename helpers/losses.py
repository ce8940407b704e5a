"""The joint (weighted) cross-entropy over all exits, and compiling a model with it.

The loss of a multi-exit network is one scalar::

    L = w_final * CE(final) + sum_e  lambda_e * CE(exit_e)

Keras computes exactly this when each output gets a sparse cross-entropy and
``loss_weights`` holds the weights, so training stays a plain ``model.fit``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np


def exit_loss_weights(
    output_names: Sequence[str], weights: float | Sequence[float] | Mapping[str, float]
) -> dict[str, float]:
    """The weight of every output's cross-entropy.

    Args:
        output_names: the model's outputs, early exits first, ``final`` last.
        weights: either one number lambda for every early exit (final weight 1);
            a sequence with one lambda per early exit (final weight 1); a sequence
            with one weight per output (final last), as in ``[0.3, 0.7]``; or a
            mapping from output name to weight.

    Returns:
        ``{output name: weight}``.

    Raises:
        ValueError: the number of weights matches neither the early exits nor the
            outputs, a name is unknown, or a weight is negative or not finite.
    """
    names = list(output_names)
    n_exits = len(names) - 1
    if isinstance(weights, Mapping):
        unknown = set(weights) - set(names)
        if unknown or set(weights) != set(names):
            raise ValueError(
                f"loss weights must name every output exactly: got {sorted(weights)}, "
                f"outputs are {names}"
            )
        result = {n: float(weights[n]) for n in names}
    elif np.isscalar(weights):
        result = {n: float(weights) for n in names[:-1]} | {names[-1]: 1.0}
    else:
        values = [float(w) for w in weights]
        if len(values) == n_exits:
            values = values + [1.0]
        elif len(values) != len(names):
            raise ValueError(
                f"got {len(values)} loss weights for a model with {n_exits} early exits and "
                f"{len(names)} outputs ({names}); give {n_exits} (one per early exit, final "
                f"weight 1) or {len(names)} (one per output)"
            )
        result = dict(zip(names, values, strict=True))
    bad = {n: w for n, w in result.items() if not np.isfinite(w) or w < 0}
    if bad:
        raise ValueError(f"loss weights must be finite and non-negative, got {bad}")
    return result


def compile_multi_exit(
    model: keras.Model,
    weights: float | Sequence[float] | Mapping[str, float] = 1.0,
    optimizer: keras.optimizers.Optimizer | str = "adam",
) -> dict[str, float]:
    """Compile ``model`` with the joint cross-entropy and per-exit accuracy metrics.

    Each output gets a sparse categorical cross-entropy on logits and a
    ``SparseCategoricalAccuracy`` metric (so Keras logs ``exit_1_accuracy`` ...
    ``final_accuracy``; a plain single-output model logs ``final_accuracy`` too).
    Returns the loss weights used.
    """
    names = list(model.output_names)
    loss_weights = exit_loss_weights(names, weights)
    if len(names) == 1:  # plain network: Keras wants a bare loss, not a dict of one
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name=f"{names[0]}_accuracy")],
        )
        return loss_weights
    model.compile(
        optimizer=optimizer,
        loss={n: keras.losses.SparseCategoricalCrossentropy(from_logits=True) for n in names},
        loss_weights=loss_weights,
        metrics={n: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")] for n in names},
    )
    return loss_weights


def joint_cross_entropy(
    labels: np.ndarray, logits: Sequence[np.ndarray], weights: Mapping[str, float] | Sequence[float]
) -> float:
    """Reference implementation of the joint loss in NumPy (used to test the Keras one).

    Args:
        labels: int array ``(N,)``.
        logits: one ``(N, K)`` array per output, final last.
        weights: one weight per output (a sequence, or a mapping in output order).
    """
    w = list(weights.values()) if isinstance(weights, Mapping) else list(weights)
    total = 0.0
    for wi, z in zip(w, logits, strict=True):
        z = np.asarray(z, dtype=np.float64)
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        total += wi * float(-log_p[np.arange(len(labels)), labels].mean())
    return total
