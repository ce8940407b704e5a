"""The joint (weighted) cross-entropy over all exits, and compiling a model with it.

The loss of a multi-exit network is one scalar::

    L = w_final * CE(final) + sum_e  lambda_e * CE(exit_e)

Keras computes exactly this when each output gets a sparse cross-entropy and
``loss_weights`` holds the weights, so training stays a plain ``model.fit``.

Self-distillation adds, for every early exit, the final classifier as a teacher::

    L += beta * sum_e  T^2 * KL(softmax(final / T) || softmax(exit_e / T))

with the teacher held fixed (no gradient flows into the final classifier through
this term). ``self_distilling`` makes the training twin of a model that carries
what this term needs as extra outputs, so training still is ``model.fit``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np

DISTILL_SUFFIX = "_distill"
"""Name suffix of the training-only outputs of ``self_distilling``: ``exit_1_distill`` ..."""


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


@keras.saving.register_keras_serializable(package="helpers")
class SelfDistillationLoss(keras.losses.Loss):
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))`` per sample.

    ``y_pred`` is ``[student logits, teacher logits]`` concatenated on the last axis
    (``(batch, 2K)``, as the ``*_distill`` outputs of ``self_distilling`` carry them);
    ``y_true`` (the labels) is ignored. The ``T^2`` keeps the gradient's scale
    independent of the temperature (Hinton et al., 2015).
    """

    def __init__(self, temperature: float = 3.0, name: str = "self_distillation", **kwargs):
        if not np.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"the distillation temperature must be positive, got {temperature}")
        super().__init__(name=name, **kwargs)
        self.temperature = float(temperature)

    def call(self, y_true, y_pred):
        ops = keras.ops
        student, teacher = ops.split(ops.cast(y_pred, "float32"), 2, axis=-1)
        log_s = ops.log_softmax(student / self.temperature, axis=-1)
        log_t = ops.log_softmax(teacher / self.temperature, axis=-1)
        return self.temperature**2 * ops.sum(ops.exp(log_t) * (log_t - log_s), axis=-1)  # (batch,)

    def get_config(self) -> dict:
        return super().get_config() | {"temperature": self.temperature}


def self_distilling(model: keras.Model) -> keras.Model:
    """The training twin of a multi-exit ``model``, for self-distillation.

    It shares every layer (and so every weight) with ``model`` and has the same
    outputs, followed by one more per early exit, ``exit_e_distill``: that exit's
    logits and the final classifier's, the latter behind ``stop_gradient``,
    concatenated (``(batch, 2K)``, float32). Train the twin, save ``model``.

    Raises:
        ValueError: ``model`` has no early exit.
    """
    names = list(model.output_names)
    if len(names) < 2:
        raise ValueError(f"self-distillation needs early exits, but {model.name} has only {names}")
    outputs = list(model.outputs)
    teacher = keras.ops.stop_gradient(outputs[-1])
    extra = [
        keras.layers.Concatenate(dtype="float32", name=f"{name}{DISTILL_SUFFIX}")([out, teacher])
        for name, out in zip(names[:-1], outputs[:-1], strict=True)
    ]
    return keras.Model(model.inputs, outputs + extra, name=f"{model.name}{DISTILL_SUFFIX}")


def distillation_loss(student: np.ndarray, teacher: np.ndarray, temperature: float) -> float:
    """Reference implementation of ``SelfDistillationLoss`` in NumPy, averaged over the batch."""
    def log_softmax(z):
        z = np.asarray(z, dtype=np.float64) / temperature
        z = z - z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    log_s, log_t = log_softmax(student), log_softmax(teacher)
    return float(temperature**2 * (np.exp(log_t) * (log_t - log_s)).sum(axis=-1).mean())


def compile_multi_exit(
    model: keras.Model,
    weights: float | Sequence[float] | Mapping[str, float] = 1.0,
    optimizer: keras.optimizers.Optimizer | str = "adam",
    *,
    distill_weight: float = 0.0,
    temperature: float = 3.0,
    soft_labels: bool = False,
    label_smoothing: float = 0.0,
) -> dict[str, float]:
    """Compile ``model`` with the joint cross-entropy and per-exit accuracy metrics.

    Each output gets a sparse categorical cross-entropy on logits and a
    ``SparseCategoricalAccuracy`` metric (so Keras logs ``exit_1_accuracy`` ...
    ``final_accuracy``; a plain single-output model logs ``final_accuracy`` too).
    The ``*_distill`` outputs of a ``self_distilling`` twin get a
    ``SelfDistillationLoss(temperature)`` weighted ``distill_weight`` (Keras logs it
    as ``exit_1_distill_loss`` ...). With ``soft_labels`` the labels are probability
    vectors ``(batch, K)`` (one-hot, or mixed by CutMix or MixUp) and the loss and
    metric are the categorical ones; accuracy then counts the label's largest class.
    ``label_smoothing`` (needs ``soft_labels``) moves that share of every label's mass
    to the uniform distribution over the K classes inside each exit's cross-entropy.
    Returns the loss weights of the exits.

    Raises:
        ValueError: bad weights, ``distill_weight`` is positive for a model without
            ``*_distill`` outputs (or negative), or ``label_smoothing`` is outside [0, 1)
            or set without ``soft_labels``.
    """
    all_names = list(model.output_names)
    names = [n for n in all_names if not n.endswith(DISTILL_SUFFIX)]
    distilled = [n for n in all_names if n.endswith(DISTILL_SUFFIX)]
    if not np.isfinite(distill_weight) or distill_weight < 0:
        raise ValueError(f"the distillation weight must be finite and non-negative, got {distill_weight}")
    if distill_weight > 0 and not distilled:
        raise ValueError(
            f"distill_weight={distill_weight} needs the training twin of the model: "
            "compile helpers.losses.self_distilling(model) instead"
        )
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"label smoothing must be in [0, 1), got {label_smoothing}")
    if label_smoothing and not soft_labels:
        raise ValueError("label smoothing needs soft_labels=True: it smooths one-hot labels, not class indices")
    loss_weights = exit_loss_weights(names, weights)

    def cross_entropy(**kwargs):
        if soft_labels:
            return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing, **kwargs)
        return keras.losses.SparseCategoricalCrossentropy(**kwargs)

    accuracy = keras.metrics.CategoricalAccuracy if soft_labels else keras.metrics.SparseCategoricalAccuracy
    if len(names) == 1:  # plain network: Keras wants a bare loss, not a dict of one
        model.compile(
            optimizer=optimizer,
            loss=cross_entropy(from_logits=True),
            metrics=[accuracy(name=f"{names[0]}_accuracy")],
        )
        return loss_weights
    model.compile(
        optimizer=optimizer,
        loss={n: cross_entropy(from_logits=True) for n in names}
        | {n: SelfDistillationLoss(temperature) for n in distilled},
        loss_weights=loss_weights | {n: float(distill_weight) for n in distilled},
        metrics={n: [accuracy(name="accuracy")] for n in names},
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
