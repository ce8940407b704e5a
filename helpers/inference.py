"""Real early exit at inference: samples that have left are not computed any further.

``helpers.evaluation`` answers "what would early exit do?" by evaluating every exit
on every sample and picking the first confident one afterwards. That saves no time
at all. ``EarlyExitEngine`` runs the network the way a deployed early-exit model
must run:

1. preprocess the whole batch and run the backbone up to the first exit;
2. evaluate that exit's head; the samples whose exit rule fires are *finalised*:
   their positions in the batch and their logits are set aside;
3. only the remaining samples (split off with ``tf.dynamic_partition``, the
   one-op equivalent of ``tf.boolean_mask`` for both halves) go through the next
   stage, and so on; the final classifier takes whoever is left;
4. a ``tf.cond`` on the number of remaining samples skips all later stages once
   everybody has left.

The finalised pieces are stitched back into the original order
(``tf.dynamic_stitch`` with the samples' positions), so the caller sees one row per
input image, as with ``model.predict``; label and probabilities are computed once
from the logits each sample left with. Everything is one ``tf.function`` whose
input signature has an unknown batch dimension: it is traced once and serves
batches of 1 to thousands.

Two implementation notes. An empty batch never reaches a convolution (TensorFlow's
CPU convolution returns a wrongly shaped result for zero images): a ``tf.cond``
returns empty outputs instead. The conditionals stay ordinary ``tf.cond``s, which
TensorFlow lowers to switch/merge ops: after a skip, the untaken stages cost only the
executor's bookkeeping of their (dead) nodes, a fraction of a millisecond for all of
them (measured on this project's VGG11 at batch size 1; keeping the functional
``If`` op instead saves some of that when everybody leaves early but costs more per
stage when samples go deep).

The exit rule is any function ``rule(logits, threshold) -> bool[batch]`` written
with TensorFlow ops (see ``helpers.policies``), a policy name (``entropy``,
``max_prob``, ``patience``), or a *stateful* rule such as patience, which needs to
remember what the earlier exits predicted: its per-sample state (for patience, the
previous label and the length of the current run of agreeing exits) starts with
``initial_state`` and is split with ``tf.dynamic_partition`` along with the samples
that stay, so every stage sees exactly the state of its remaining samples.
Normalised entropy is the default. The last output (the network's own classifier)
accepts every sample that reaches it.

The engine runs a copy of the model with every batch normalisation folded into the
convolution before it (``helpers.folding``): the same function up to rounding, with one
pass less over every activation map, which the large maps of the first blocks feel
most. ``fold_batchnorm=False`` runs the model as it is.

``with_precision`` rebuilds a model under another dtype policy (for example to run
a float32-trained model in ``mixed_bfloat16``, or the reverse), keeping the exit
heads' logits in float32.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from helpers import folding
from helpers.models import block_names, exit_positions, output_names
from helpers.policies import (
    ExitRule,
    StatefulRule,
    entropy_exit,
    is_stateful,
    resolve_policy,
)

FLOAT_POLICIES = ("float32", "float16", "bfloat16", "mixed_float16", "mixed_bfloat16")
"""Dtype policies that ``with_precision`` replaces (integer and string layers are left alone)."""

OUTPUT_KEYS = ("label", "exit", "probabilities")


@dataclasses.dataclass(frozen=True)
class Stage:
    """One step of early-exit inference: run ``blocks``, then evaluate ``head``.

    Attributes:
        exit_name: output name of the head (``exit_1`` ... ``final``).
        blocks: backbone stages to run before the head (may be empty when two heads
            read the same block, like ``exit_5`` and ``final`` in VGG11).
        head: the head (a Keras model returning logits).
    """

    exit_name: str
    blocks: tuple[keras.layers.Layer, ...]
    head: keras.layers.Layer


def build_stages(model: keras.Model) -> tuple[keras.layers.Layer, list[Stage]]:
    """Split a ``helpers.models`` multi-exit model into its preprocessing layer and stages.

    Args:
        model: a model assembled by ``helpers.models.assemble`` (named sub-layers
            ``preprocess``, ``block_1..block_B``, one head per output).

    Returns:
        ``(preprocess, stages)``: one ``Stage`` per output, in output order.

    Raises:
        ValueError: the model does not have that structure (no ``preprocess`` layer,
            no blocks, heads not in backbone order, or blocks after the last head).
    """
    try:
        preprocess = model.get_layer("preprocess")
    except ValueError:
        raise ValueError(
            f"model {model.name!r} has no layer named 'preprocess'; the early-exit engine needs a "
            "model built by helpers.models (preprocess, block_1..block_B, exit heads, final)"
        ) from None
    blocks = block_names(model)
    if not blocks:
        raise ValueError(f"model {model.name!r} has no backbone blocks named block_1, block_2, ...")
    positions = exit_positions(model)
    stages = []
    done = 0  # number of blocks already run
    for name in output_names(model):
        upto = blocks.index(positions[name]) + 1
        if upto < done:
            raise ValueError(
                f"output {name!r} reads {positions[name]}, before the previous exit's block: "
                "the outputs must be ordered along the backbone"
            )
        stage_blocks = tuple(model.get_layer(b) for b in blocks[done:upto])
        stages.append(Stage(name, stage_blocks, model.get_layer(name)))
        done = upto
    if done != len(blocks):
        raise ValueError(
            f"the last output reads {blocks[done - 1]} but the backbone continues to {blocks[-1]}"
        )
    return preprocess, stages


class EarlyExitEngine:
    """Graph-mode early-exit inference for a ``helpers.models`` multi-exit model.

    Three compiled functions share one input signature, ``images``: uint8
    ``[None, H, W, 3]`` at the model's input size (so they are traced once, whatever
    the batch size):

    - ``early_exit_fn(images, threshold)``: dict with ``label`` int32 ``[N]``,
      ``exit`` int32 ``[N]`` (1-based; the final classifier is the last, number of
      outputs) and ``probabilities`` float32 ``[N, K]`` (softmax of the logits the
      sample left with). Only the samples still undecided go through each stage.
    - ``full_fn(images)``: the plain network (backbone and final classifier, no exit
      heads), float32 logits ``[N, K]``.
    - ``early_exit_per_exit_fn(images, thresholds)``: the same as ``early_exit_fn``
      with one threshold per early exit, float32 ``[E - 1]`` (stateless rules only),
      for instance the per-exit thresholds ``helpers.budget.per_exit_thresholds_for_budget``
      chooses on validation. A threshold at which the rule never fires (0 for
      entropy, 1 for max_prob) closes its exit: nobody leaves there, though its head
      still runs for the samples that pass it. To leave a head out altogether, give
      the engine ``helpers.models.select_exits(model, kept)``.
    - ``all_exits_fn(images)``: every head on the whole batch, float32 logits
      ``[N, E, K]`` (E outputs, final last); each block runs once.

    The uncompiled builders ``early_exit``, ``full_logits``, ``all_exit_logits`` and
    ``logits_up_to`` can be called inside other ``tf.function``s (``helpers.export`` does).

    Args:
        model: a multi-exit model from ``helpers.models`` (any dtype policy).
        rule: exit rule ``rule(logits, threshold) -> bool[batch]``, a
            ``helpers.policies.StatefulRule`` (patience) or a policy name; default
            ``helpers.policies.entropy_exit``. The threshold's range is the policy's
            ([0, 1], or an integer >= 1 for patience).
        fold_batchnorm: run a copy of ``model`` whose batch normalisations are folded
            into the convolutions before them (``helpers.folding``): the same function up
            to rounding, one pass less over every activation map. ``self.model`` is the
            network the engine runs, folded or not.

    Example:
        >>> engine = EarlyExitEngine(model)
        >>> out = engine.predict(images, threshold=0.4)   # numpy in, numpy out
        >>> out["exit"]                                      # 1-based exit per image
    """

    def __init__(
        self, model: keras.Model, rule: ExitRule | StatefulRule | str = entropy_exit, fold_batchnorm: bool = True,
    ) -> None:
        if not (isinstance(rule, str) or callable(rule) or is_stateful(rule)):
            raise TypeError(f"rule must be a function rule(logits, threshold) -> bool[batch], got {rule!r}")
        self.policy = resolve_policy(rule)
        rule = self.policy.rule
        shape = tuple(model.inputs[0].shape)
        dtype = keras.backend.standardize_dtype(model.inputs[0].dtype)
        if len(shape) != 4 or shape[-1] != 3 or None in shape[1:] or dtype != "uint8":
            raise ValueError(
                f"the engine needs a model taking uint8 images [N, H, W, 3] of a fixed size; "
                f"{model.name!r} takes {dtype} {list(shape)}"
            )
        build_stages(model)  # a clear error for a model of another structure, before folding it
        self.model = folding.fold_batchnorm(model) if fold_batchnorm else model
        self.rule = rule
        self.preprocess, self.stages = build_stages(self.model)
        self.exit_names = [s.exit_name for s in self.stages]
        self.image_shape: tuple[int, int, int] = (int(shape[1]), int(shape[2]), 3)
        self.num_classes = int(model.outputs[-1].shape[-1])
        self.images_spec = tf.TensorSpec([None, *self.image_shape], tf.uint8, name="images")
        self.threshold_spec = tf.TensorSpec([], tf.float32, name="threshold")
        self.thresholds_spec = tf.TensorSpec([len(self.stages) - 1], tf.float32, name="thresholds")
        self.early_exit_fn = tf.function(self.early_exit, input_signature=[self.images_spec, self.threshold_spec])
        self.early_exit_per_exit_fn = tf.function(
            self.early_exit, input_signature=[self.images_spec, self.thresholds_spec]
        )
        self.full_fn = tf.function(self.full_logits, input_signature=[self.images_spec])
        self.all_exits_fn = tf.function(self.all_exit_logits, input_signature=[self.images_spec])
        self._concrete: dict[str, object] = {}

    def concrete(self, variant: str):
        """The concrete function of ``early_exit``, ``early_exit_per_exit``, ``full`` or ``all_exits`` (traced on first use).

        It takes the same arguments and returns the same outputs as ``early_exit_fn``,
        ``early_exit_per_exit_fn``, ``full_fn`` or ``all_exits_fn``, and skips the Python-side work of a
        ``tf.function`` call (matching the arguments to a trace): a fixed cost per
        call, larger for ``early_exit``'s two inputs and three outputs than for
        ``full``, that weighs at batch size 1 (notebook 03 measures it). The signatures
        of an export (``helpers.export``) are such concrete functions; ``__call__``,
        ``predict`` and ``helpers.benchmark`` call them.
        """
        fns = {"early_exit": self.early_exit_fn, "early_exit_per_exit": self.early_exit_per_exit_fn,
               "full": self.full_fn, "all_exits": self.all_exits_fn}
        if variant not in fns:
            raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(fns)}")
        if variant not in self._concrete:
            self._concrete[variant] = fns[variant].get_concrete_function()
        return self._concrete[variant]

    @property
    def num_outputs(self) -> int:
        """Number of outputs (early exits plus the final classifier)."""
        return len(self.stages)

    # ------------------------------------------------------------------ graph builders

    def full_logits(self, images: tf.Tensor) -> tf.Tensor:
        """Logits of the plain network (no exit heads): float32 ``[N, K]``."""

        def compute() -> tf.Tensor:
            x = self.preprocess(images, training=False)
            for stage in self.stages:
                for block in stage.blocks:
                    x = block(x, training=False)
            return tf.cast(self.stages[-1].head(x, training=False), tf.float32)

        return self._unless_empty(images, compute, tf.zeros([0, self.num_classes]))

    def all_exit_logits(self, images: tf.Tensor) -> tf.Tensor:
        """Logits of every output on the whole batch: float32 ``[N, E, K]`` (final last)."""
        return self._unless_empty(
            images, lambda: self.logits_up_to(images, self.num_outputs - 1),
            tf.zeros([0, self.num_outputs, self.num_classes]),
        )

    def logits_up_to(self, images: tf.Tensor, last: int) -> tf.Tensor:
        """Logits of outputs ``0 .. last`` (0-based) on the whole batch: float32 ``[N, last + 1, K]``.

        Preprocessing, then each stage's blocks and head in turn, stopping after output
        ``last``: every block runs once, with no exit rule and no conditional. Unlike
        ``all_exit_logits`` it does not guard against an empty batch (``helpers.benchmark``
        times it as the straight computation of one exit).
        """
        if not 0 <= last < self.num_outputs:
            raise ValueError(f"last must be an output index from 0 to {self.num_outputs - 1}, got {last!r}")
        x = self.preprocess(images, training=False)
        logits = []
        for stage in self.stages[: last + 1]:
            for block in stage.blocks:
                x = block(x, training=False)
            logits.append(tf.cast(stage.head(x, training=False), tf.float32))
        return tf.stack(logits, axis=1)  # (batch, exits, classes)

    @staticmethod
    def _unless_empty(images: tf.Tensor, compute, empty):
        """``compute()``, or ``empty`` for a batch of zero images.

        TensorFlow's CPU convolution mishandles an empty batch (its output has the
        input's channel count), so empty batches never reach the network.
        """
        return tf.cond(tf.shape(images)[0] > 0, compute, lambda: empty)

    def early_exit(self, images: tf.Tensor, threshold: tf.Tensor) -> dict[str, tf.Tensor]:
        """Early-exit inference, computing only what each sample needs.

        Args:
            images: uint8 ``[N, H, W, 3]``.
            threshold: float32 scalar in the policy's range ([0, 1], or an integer
                >= 1 for patience; checked by a graph assertion), or float32 ``[E - 1]``,
                one threshold per early exit (stateless rules only; the length is
                checked by a graph assertion too, as a loaded signature does not check
                shapes).

        Returns:
            ``{"label": int32 [N], "exit": int32 [N] (1-based), "probabilities": float32 [N, K]}``.
        """
        threshold = tf.convert_to_tensor(threshold, tf.float32)
        if threshold.shape.rank not in (0, 1):
            raise ValueError(f"threshold must be a scalar or one value per early exit, got shape {threshold.shape}")
        if threshold.shape.rank == 1:
            if is_stateful(self.rule):
                raise ValueError(f"per-exit thresholds need a stateless rule (entropy or max_prob), not {self.policy.name}")
            length = tf.debugging.assert_equal(
                tf.size(threshold), len(self.stages) - 1,
                message=f"thresholds must hold one threshold per early exit ({len(self.stages) - 1})",
            )
            with tf.control_dependencies([length]):  # before any exit reads its threshold
                threshold = tf.identity(threshold)
        if self.policy.integer:
            tf.debugging.Assert(
                tf.reduce_all(tf.logical_and(threshold >= 1.0, tf.equal(threshold, tf.round(threshold)))),
                ["patience must be an integer >= 1, got", threshold],
            )
        else:
            tf.debugging.Assert(
                tf.reduce_all(tf.logical_and(threshold >= 0.0, threshold <= 1.0)),
                ["threshold must be a number in [0, 1], got", threshold],
            )
        n = tf.shape(images)[0]

        def compute() -> tuple[tf.Tensor, tf.Tensor]:
            x = self.preprocess(images, training=False)
            state = tuple(self.rule.initial_state(n)) if is_stateful(self.rule) else ()
            parts = self._run_from(0, x, tf.range(n), threshold, state)
            index, logits = parts[0::2], parts[1::2]  # per output: who left there, with which logits
            # Back to the input order: row i of the result comes from wherever index == i.
            chosen = tf.dynamic_stitch(index, logits)  # (batch, classes)
            exits = tf.dynamic_stitch(index, [tf.fill(tf.shape(i), j + 1) for j, i in enumerate(index)])
            return chosen, exits

        empty = (tf.zeros([0, self.num_classes], tf.float32), tf.zeros([0], tf.int32))
        chosen, exits = self._unless_empty(images, compute, empty)
        return {
            "label": tf.argmax(chosen, axis=-1, output_type=tf.int32),  # argmax of logits, as the reference
            "exit": exits,
            "probabilities": tf.nn.softmax(chosen, axis=-1),
        }

    def _run_from(
        self, j: int, x: tf.Tensor, index: tf.Tensor, threshold: tf.Tensor, state: tuple[tf.Tensor, ...] = ()
    ) -> list[tf.Tensor]:
        """Run outputs ``j, j+1, ...`` for the samples ``index`` (positions in the batch) whose features are ``x``.

        ``state`` is a stateful rule's per-sample state for those samples (empty for
        a stateless rule).

        Returns:
            ``[index_j, logits_j, index_j+1, logits_j+1, ...]``: for every output from
            ``j`` on, the positions of the samples that left there and their logits.
        """
        stage = self.stages[j]
        for block in stage.blocks:
            x = block(x, training=False)
        logits = tf.cast(stage.head(x, training=False), tf.float32)  # (remaining, classes)
        if j == len(self.stages) - 1:  # the final classifier takes everybody left
            return [index, logits]
        here = threshold[j] if threshold.shape.rank == 1 else threshold  # this exit's threshold
        if is_stateful(self.rule):
            leave, state = self.rule.step(logits, here, state)
        else:
            leave = self.rule(logits, here)
        leave = tf.reshape(tf.cast(leave, tf.int32), [-1])  # 1: leaves here
        stay_index, leave_index = tf.dynamic_partition(index, leave, 2)
        _, leave_logits = tf.dynamic_partition(logits, leave, 2)
        later = len(self.stages) - 1 - j

        def continue_() -> list[tf.Tensor]:
            stay_x, _ = tf.dynamic_partition(x, leave, 2)
            stay_state = tuple(tf.dynamic_partition(s, leave, 2)[0] for s in state)
            return self._run_from(j + 1, stay_x, stay_index, threshold, stay_state)

        def nobody_left() -> list[tf.Tensor]:
            return [tf.zeros([0], tf.int32), tf.zeros([0, self.num_classes], tf.float32)] * later

        # Skip every later stage once everybody has left (the untaken branch does no work).
        return [leave_index, leave_logits, *tf.cond(tf.size(stay_index) > 0, continue_, nobody_left)]

    # ------------------------------------------------------------------ eager entry points

    def __call__(self, images, threshold) -> dict[str, tf.Tensor]:
        """Run ``early_exit_fn`` (or ``early_exit_per_exit_fn``) on one batch, through its concrete function.

        Args:
            images: uint8 ``[N, H, W, 3]`` (array or tensor).
            threshold: a number in the policy's range (validated with
                ``ExitPolicy.check``), a sequence of such numbers, one per early exit
                (``check_thresholds``), or a float32 tensor of either shape.

        Returns:
            The dict of tensors described in ``early_exit``.
        """
        variant, threshold = self._threshold_argument(threshold)
        return self.concrete(variant)(self.check_images(images), threshold)

    def check_thresholds(self, thresholds) -> list[float]:
        """One threshold per early exit, each validated with ``ExitPolicy.check``.

        Raises:
            ValueError: not ``E - 1`` numbers, a number outside the policy's range, or a
                stateful rule (patience), for which per-exit thresholds are not defined.
        """
        if is_stateful(self.rule):
            raise ValueError(f"per-exit thresholds need a stateless rule (entropy or max_prob), not {self.policy.name}")
        values = list(np.ravel(np.asarray(thresholds, dtype=np.float64)))
        early = len(self.stages) - 1
        if np.ndim(thresholds) != 1 or len(values) != early:
            raise ValueError(
                f"need one threshold per early exit ({early}, for {', '.join(self.exit_names[:-1])}), "
                f"got {np.shape(thresholds)}"
            )
        return [float(self.policy.check(v)) for v in values]

    def _threshold_argument(self, threshold) -> tuple[str, tf.Tensor]:
        """``(variant, float32 tensor)``: ``early_exit`` for one threshold, ``early_exit_per_exit`` for one per early exit."""
        if not tf.is_tensor(threshold):
            if np.ndim(threshold) == 0:
                threshold = self.policy.check(threshold)
            else:
                threshold = self.check_thresholds(threshold)
        threshold = tf.cast(threshold, tf.float32)
        return ("early_exit" if threshold.shape.rank == 0 else "early_exit_per_exit"), threshold

    def check_images(self, images) -> tf.Tensor:
        """``images`` as a tensor, or ``ValueError`` unless they are uint8 ``[N, H, W, 3]`` at the input size."""
        shape = tuple(images.shape)
        dtype = tf.as_dtype(images.dtype)
        if len(shape) != 4 or tuple(shape[1:]) != self.image_shape or dtype != tf.uint8:
            raise ValueError(
                f"images must be uint8 [N, {', '.join(map(str, self.image_shape))}] (the model's input), "
                f"got {dtype.name} {list(shape)}; resize them with helpers.data.load_folder(..., "
                f"image_size={self.image_shape[0]})"
            )
        return tf.convert_to_tensor(images)

    def predict(
        self, images: np.ndarray, threshold: float | Sequence[float], batch_size: int = 256
    ) -> dict[str, np.ndarray]:
        """Early-exit inference on a large array, ``batch_size`` images at a time.

        Args:
            images: uint8 ``(N, H, W, 3)`` at the model's input size.
            threshold: the exit rule's threshold, in the policy's range, or a sequence
                of them, one per early exit (``check_thresholds``).
            batch_size: images per call of the compiled function.

        Returns:
            ``{"label": int32 (N,), "exit": int32 (N,), "probabilities": float32 (N, K)}``.
        """
        variant, t = self._threshold_argument(threshold)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        images = np.asarray(images)
        self.check_images(images[:0])
        parts: dict[str, list[np.ndarray]] = {k: [] for k in OUTPUT_KEYS}
        early_exit = self.concrete(variant)
        for start in range(0, len(images), batch_size):
            out = early_exit(tf.convert_to_tensor(images[start:start + batch_size]), t)
            for k in OUTPUT_KEYS:
                parts[k].append(out[k].numpy())
        if not len(images):
            return {
                "label": np.zeros(0, np.int32),
                "exit": np.zeros(0, np.int32),
                "probabilities": np.zeros((0, self.num_classes), np.float32),
            }
        return {k: np.concatenate(v) for k, v in parts.items()}


# --------------------------------------------------------------------------- precision


def _policy_name(dtype_config) -> str | None:
    if isinstance(dtype_config, dict) and dtype_config.get("class_name") == "DTypePolicy":
        return dtype_config.get("config", {}).get("name")
    return None


def _output_layer_names(layer_config: dict) -> set[str]:
    outputs = layer_config.get("config", {}).get("output_layers") or []
    if outputs and isinstance(outputs[0], str):  # a single output: [name, node, tensor]
        outputs = [outputs]
    return {o[0] for o in outputs}


def _set_policy(
    layer_config: dict, policy: str, keep_float32: Sequence[str] = (), heads: Sequence[str] = ()
) -> None:
    """Replace the floating dtype policies in a serialised layer, recursively (in place).

    Args:
        layer_config: a serialised layer or model (``keras.saving.serialize_keras_object``).
        policy: the new policy name.
        keep_float32: names of this level's layers that get ``float32`` instead.
        heads: names of this level's sub-models whose output layer keeps ``float32``.
    """
    inner = layer_config.get("config", {})
    name = _policy_name(inner.get("dtype"))
    if name in FLOAT_POLICIES:
        inner["dtype"]["config"]["name"] = "float32" if inner.get("name") in keep_float32 else policy
    for sub in inner.get("layers") or []:
        sub_name = sub.get("config", {}).get("name")
        if sub_name in heads:  # the head's logits layer stays float32
            _set_policy(sub, policy, keep_float32=_output_layer_names(sub))
        else:
            _set_policy(sub, policy, keep_float32=[sub_name] if sub_name in keep_float32 else ())


def with_precision(model: keras.Model, precision: str) -> keras.Model:
    """A copy of ``model`` running under the dtype policy ``precision``, with the same weights.

    Every layer with a floating policy gets ``precision``, except the output layer of
    each head (its ``logits`` Dense), which stays float32 as ``helpers.models`` builds
    it. Variables stay float32 under the mixed policies, so the weights copy as they are.

    Args:
        model: a functional Keras model (nested sub-models allowed).
        precision: ``float32``, ``mixed_bfloat16`` or ``mixed_float16``.

    Returns:
        ``model`` itself if every layer already has that policy, else a new model.
    """
    if precision not in ("float32", "mixed_bfloat16", "mixed_float16"):
        raise ValueError(f"unknown precision {precision!r}; choose float32, mixed_bfloat16 or mixed_float16")
    config = copy.deepcopy(keras.saving.serialize_keras_object(model))
    _set_policy(config, precision, heads=output_names(model))
    if config == keras.saving.serialize_keras_object(model):
        return model
    rebuilt = keras.saving.deserialize_keras_object(config)
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def compute_dtypes(model: keras.Model) -> dict[str, int]:
    """How many (leaf) layers compute in each dtype, e.g. ``{"bfloat16": 40, "float32": 7}``."""
    counts: dict[str, int] = {}

    def visit(layer: keras.layers.Layer) -> None:
        if isinstance(layer, keras.Model):
            for inner in layer.layers:
                visit(inner)
        elif not isinstance(layer, keras.layers.InputLayer):
            dtype = keras.backend.standardize_dtype(layer.compute_dtype)
            counts[dtype] = counts.get(dtype, 0) + 1

    visit(model)
    return counts
