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

Three policies are registered in ``EXIT_POLICIES`` (their rules in ``POLICIES``):

- ``entropy`` (default): leave when the normalised entropy is below tau. A *higher*
  tau lets *more* samples leave early (tau = 0: nobody, tau = 1: everybody).
- ``max_prob``: leave when the largest softmax probability is above tau. Here a
  *higher* tau means *fewer* early exits (tau = 1: nobody, tau = 0: everybody); the
  threshold is still a number in [0, 1]. Rows with NaN or infinite logits have
  confidence 0, so they only leave at tau = 0.
- ``patience``: leave once the same label has been predicted by ``p`` consecutive
  exits (the exit itself and the ``p - 1`` before it). The threshold is the
  integer ``p >= 1``: ``p = 1`` leaves at the first exit, ``p >= E`` (the number of
  outputs) sends everybody to the final classifier; a sample that never collects
  ``p`` agreeing exits in a row also goes there. A row with non-finite logits has no
  label and breaks the run.

Patience needs a memory across exits, so it is a *stateful* rule: an object with
``initial_state(batch_size)`` and ``step(logits, threshold, state) -> (leave, state)``
(``StatefulRule``), where the state is a tuple of per-sample tensors. ``leave_mask``
and the early-exit engine carry that state from one exit to the next (the engine
splits it along with the samples that stay). Every ``ExitPolicy`` also knows how its
threshold is validated, in which direction it moves the exits and which thresholds a
sweep should try (``ExitPolicy.grid``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import tensorflow as tf

ExitRule = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


@runtime_checkable
class StatefulRule(Protocol):
    """An exit rule that remembers something about the exits a sample has already passed."""

    def initial_state(self, batch_size) -> tuple[tf.Tensor, ...]:
        """Per-sample state before the first exit (each tensor has ``batch_size`` rows)."""

    def step(self, logits, threshold, state: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, tuple[tf.Tensor, ...]]:
        """``(leave bool[batch], new state)`` for one exit's ``logits`` ``[batch, K]``."""


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


def max_prob_from_logits(logits) -> tf.Tensor:
    """Largest softmax probability of each row, float32 in [1/K, 1]; rows with NaN or infinite logits get 0.

    Args:
        logits: ``(..., K)`` logits.

    Returns:
        ``(...)`` float32 confidences.
    """
    z = tf.cast(tf.convert_to_tensor(logits), tf.float64)
    finite = tf.reduce_all(tf.math.is_finite(z), axis=-1)
    safe = tf.where(finite[..., None], z, tf.zeros_like(z))
    top = tf.reduce_max(tf.nn.softmax(safe, axis=-1), axis=-1)
    return tf.cast(tf.where(finite, top, tf.zeros_like(top)), tf.float32)


def max_prob_exit(logits, threshold) -> tf.Tensor:
    """True where a sample should leave: top softmax probability above ``threshold`` (or tau <= 0).

    Note the direction: a *higher* tau lets *fewer* samples leave early.
    """
    threshold = tf.cast(threshold, tf.float32)
    return tf.logical_or(max_prob_from_logits(logits) > threshold, threshold <= 0.0)


def _labels_or_minus_one(logits) -> tf.Tensor:
    """Argmax of each row (int32), -1 for rows with NaN or infinite logits."""
    z = tf.convert_to_tensor(logits)
    finite = tf.reduce_all(tf.math.is_finite(z), axis=-1)
    safe = tf.where(finite[..., None], z, tf.zeros_like(z))
    label = tf.argmax(safe, axis=-1, output_type=tf.int32)
    return tf.where(finite, label, -tf.ones_like(label))


class PatienceRule:
    """Leave once ``p`` consecutive exits (this one included) predict the same label.

    The state is ``(label, run)``: the label predicted at the previous exit (-1
    before the first exit) and how many exits in a row have predicted it. The
    threshold is ``p``, an integer >= 1 (passed as a number; compared as ``run >= p``).
    """

    name = "patience"

    def initial_state(self, batch_size) -> tuple[tf.Tensor, tf.Tensor]:
        """``(label = -1, run = 0)`` for every sample."""
        shape = tf.reshape(tf.cast(batch_size, tf.int32), [1])
        return tf.fill(shape, tf.constant(-1, tf.int32)), tf.zeros(shape, tf.int32)

    def step(self, logits, threshold, state) -> tuple[tf.Tensor, tuple[tf.Tensor, tf.Tensor]]:
        """Update the runs with one exit's ``logits`` ``[batch, K]``; leave where ``run >= p``."""
        previous, run = state
        label = _labels_or_minus_one(logits)
        run = tf.where(label < 0, tf.zeros_like(run), tf.where(label == previous, run + 1, tf.ones_like(run)))
        leave = tf.cast(run, tf.float32) >= tf.cast(threshold, tf.float32)
        return leave, (label, run)

    def __repr__(self) -> str:
        return "PatienceRule()"


patience_exit = PatienceRule()


def is_stateful(rule) -> bool:
    """Whether ``rule`` carries state across exits (has ``initial_state`` and ``step``)."""
    return isinstance(rule, StatefulRule)


def check_patience(threshold) -> int:
    """Return ``threshold`` as an int, or raise ``ValueError`` unless it is an integer >= 1."""
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        value = float("nan")
    if not math.isfinite(value) or value < 1 or value != int(value):
        raise ValueError(
            f"patience must be an integer >= 1 (the number of consecutive exits that must agree), got {threshold!r}"
        )
    return int(value)


@dataclasses.dataclass(frozen=True)
class ExitPolicy:
    """An exit rule with what the analysis needs to know about its threshold.

    Attributes:
        name: registry name (``--policy``).
        rule: the rule, ``rule(logits, threshold)`` or a ``StatefulRule``.
        threshold_name: symbol used in plots and reports (``τ`` or ``p``).
        earlier_when: ``"higher"`` if raising the threshold lets more samples leave
            early (entropy), ``"lower"`` if lowering it does (max_prob, patience).
        default_threshold: used when no threshold is given and none was chosen on validation.
        integer: the threshold is an integer (patience) instead of a number in [0, 1].
        description: one line for listings.
    """

    name: str
    rule: ExitRule | StatefulRule
    threshold_name: str = "τ"
    earlier_when: str = "higher"
    default_threshold: float = 0.5
    integer: bool = False
    description: str = ""

    def check(self, threshold) -> float | int:
        """The validated threshold (``ValueError`` if it is out of range)."""
        return check_patience(threshold) if self.integer else check_threshold(threshold)

    @property
    def bounds(self) -> tuple[float, float]:
        """The allowed range of the threshold."""
        return (1.0, math.inf) if self.integer else (0.0, 1.0)

    def grid(self, num_exits: int) -> np.ndarray:
        """The thresholds a sweep tries by default (from "everybody leaves early" to "nobody does" or back)."""
        if self.integer:
            return np.arange(1, max(int(num_exits), 1) + 1)
        base = np.round(np.linspace(0.0, 1.0, 41), 4)
        if self.name == "max_prob":  # trained networks are often > 99% sure: look closely near 1
            base = np.union1d(base, [0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999])
        return base

    def fine_grid(self, num_exits: int) -> np.ndarray:
        """A finer grid for searches (budget targeting): 401 steps, or every integer for patience."""
        if self.integer:
            return self.grid(num_exits)
        grid = np.round(np.linspace(0.0, 1.0, 401), 6)
        if self.name == "max_prob":
            grid = np.union1d(grid, np.round(1.0 - np.logspace(-5, -2.4, 27), 8))
        return grid

    def nobody_early(self, num_exits: int) -> float | int:
        """A threshold at which every sample reaches the final classifier."""
        if self.integer:
            return max(int(num_exits), 1)
        return 0.0 if self.earlier_when == "higher" else 1.0


EXIT_POLICIES: dict[str, ExitPolicy] = {
    p.name: p
    for p in (
        ExitPolicy("entropy", entropy_exit, "τ", "higher", 0.5,
                   description="leave when the normalised entropy is below τ"),
        ExitPolicy("max_prob", max_prob_exit, "τ", "lower", 0.9,
                   description="leave when the largest softmax probability is above τ"),
        ExitPolicy("patience", patience_exit, "p", "lower", 2, integer=True,
                   description="leave once p consecutive exits predict the same label"),
    )
}
"""The registered exit policies, by name."""

POLICIES: dict[str, ExitRule | StatefulRule] = {name: p.rule for name, p in EXIT_POLICIES.items()}
"""The registered exit rules, by name (what ``get_policy`` returns)."""


def get_policy(name: str) -> ExitRule | StatefulRule:
    """The exit rule called ``name`` (see ``POLICIES``)."""
    try:
        return POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown exit policy {name!r}; choose one of {sorted(POLICIES)}") from None


def resolve_policy(rule: str | ExitRule | StatefulRule | ExitPolicy) -> ExitPolicy:
    """The ``ExitPolicy`` of a policy name, a registered rule, or any other rule.

    An unregistered rule gets a generic policy: threshold in [0, 1], the default grid
    of ``helpers.evaluation``, direction ``"higher"`` (only used for plots and fallbacks).

    Raises:
        ValueError: an unknown name. TypeError: not a rule at all.
    """
    if isinstance(rule, ExitPolicy):
        return rule
    if isinstance(rule, str):
        get_policy(rule)  # the error message lists the names
        return EXIT_POLICIES[rule]
    for policy in EXIT_POLICIES.values():
        if policy.rule is rule:
            return policy
    if not (callable(rule) or is_stateful(rule)):
        raise TypeError(
            f"an exit rule must be a policy name, a function rule(logits, threshold) -> bool[batch] "
            f"or a StatefulRule, got {rule!r}"
        )
    return ExitPolicy(getattr(rule, "__name__", type(rule).__name__), rule, description="custom rule")


def leave_mask(
    logits: np.ndarray, threshold: float, rule: ExitRule | StatefulRule | str = entropy_exit
) -> np.ndarray:
    """Apply ``rule`` to every exit: bool ``(N, E)``; the last exit always accepts.

    Args:
        logits: ``(N, E, K)`` logits of all exits, final last.
        threshold: the rule's threshold.
        rule: an exit rule, a ``StatefulRule`` (its state is carried from exit to
            exit) or a policy name.

    Returns:
        ``mask[i, e]``: whether sample ``i`` would leave at exit ``e`` if it got there.
    """
    if isinstance(rule, str):
        rule = get_policy(rule)
    logits = np.asarray(logits)
    n, e, k = logits.shape
    if is_stateful(rule):
        state = rule.initial_state(n)
        columns = []
        for j in range(e):
            leave, state = rule.step(logits[:, j], threshold, state)
            columns.append(np.asarray(leave))
        mask = np.stack(columns, axis=1)
    else:  # a stateless rule works row by row: all exits in one call
        mask = np.asarray(rule(logits.reshape(n * e, k), threshold))
    mask = mask.reshape(n, e).astype(bool)
    mask[:, -1] = True
    return mask


def leave_mask_per_exit(
    logits: np.ndarray, thresholds: Sequence[float], rule: ExitRule | str = entropy_exit
) -> np.ndarray:
    """``leave_mask`` with one threshold per exit (stateless rules only).

    Args:
        logits: ``(N, E, K)`` logits.
        thresholds: ``E - 1`` thresholds (one per early exit) or ``E`` (the last is ignored).
        rule: a stateless exit rule or a policy name.

    Returns:
        bool ``(N, E)``, last column True.
    """
    if isinstance(rule, str):
        rule = get_policy(rule)
    if is_stateful(rule):
        raise ValueError("per-exit thresholds need a stateless rule (entropy or max_prob), not patience")
    logits = np.asarray(logits)
    n, e, _ = logits.shape
    thresholds = list(thresholds)
    if len(thresholds) not in (e - 1, e):
        raise ValueError(f"need one threshold per early exit ({e - 1}), got {len(thresholds)}")
    mask = np.ones((n, e), dtype=bool)
    for j in range(e - 1):
        mask[:, j] = np.asarray(rule(logits[:, j], thresholds[j])).reshape(n)
    return mask


def first_exit(mask: np.ndarray) -> np.ndarray:
    """Index (0-based) of the first True in each row of an ``(N, E)`` mask whose last column is True."""
    mask = np.asarray(mask, dtype=bool)
    if not mask[:, -1].all():
        raise ValueError("the last exit must accept every sample")
    return mask.argmax(axis=1)
