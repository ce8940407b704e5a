"""Analytic compute cost: multiply-accumulates (MACs) per layer and per exit.

Counting rules, per image (batch size 1):

=====================================  =============================================
layer                                  MACs
=====================================  =============================================
Conv2D                                 H_out * W_out * C_out * k_h * k_w * C_in / groups
Dense                                  inputs * units (times any leading spatial dims)
BatchNormalization                     one per output element (scale and shift)
MaxPooling2D, AveragePooling2D         one per output element per window position
GlobalAverage/MaxPooling2D             one per input element
Rescaling, Normalization               one per element
Add                                    one per output element per extra input
ReLU, Activation, Dropout, Flatten,    0
Concatenate, Reshape, ZeroPadding2D
=====================================  =============================================

Biases and activation functions are not counted; they are a rounding error next to
the convolutions. A layer of another type must define ``count_macs()`` or the count
refuses to guess (``TypeError``).

The cost of *reaching* exit e during early-exit inference is the cost of every
layer that the outputs ``1..e`` depend on: the backbone up to exit e's block *and
every head evaluated on the way*, its own included. Relative costs divide by the
plain network (the layers that the final output alone needs, i.e. no heads).
"""

from __future__ import annotations

import dataclasses
import math

import keras
from keras import layers

FREE_LAYERS = (
    layers.InputLayer, layers.ReLU, layers.Activation, layers.Dropout, layers.Flatten,
    layers.Concatenate, layers.Reshape, layers.ZeroPadding2D,
)


def _elements(shape) -> int:
    return math.prod(int(d) for d in shape[1:])


def layer_macs(layer: keras.layers.Layer) -> int:
    """MACs of one call of ``layer`` on one image (nested models are summed)."""
    if isinstance(layer, keras.Model):
        return sum(layer_macs(inner) for inner in layer.layers)
    if hasattr(layer, "count_macs"):
        return int(layer.count_macs())
    if isinstance(layer, FREE_LAYERS):
        return 0
    if isinstance(layer, layers.Conv2D):  # also covers Conv2D subclasses with the same formula
        kh, kw = layer.kernel_size
        c_in = int(layer.input.shape[-1])
        return _elements(layer.output.shape) * kh * kw * c_in // layer.groups
    if isinstance(layer, layers.Dense):
        return _elements(layer.input.shape) * layer.units
    if isinstance(layer, layers.BatchNormalization):
        return _elements(layer.output.shape)
    if isinstance(layer, (layers.MaxPooling2D, layers.AveragePooling2D)):
        ph, pw = layer.pool_size
        return _elements(layer.output.shape) * ph * pw
    if isinstance(layer, (layers.GlobalAveragePooling2D, layers.GlobalMaxPooling2D)):
        return _elements(layer.input.shape)
    if isinstance(layer, (layers.Rescaling, layers.Normalization)):
        return _elements(layer.output.shape)
    if isinstance(layer, layers.Add):
        return _elements(layer.output.shape) * (len(layer.input) - 1)
    raise TypeError(
        f"no MAC rule for layer {layer.name!r} of type {type(layer).__name__}; "
        "add one in helpers.cost.layer_macs or give the layer a count_macs() method"
    )


def _layers_used(model: keras.Model, outputs) -> list[keras.layers.Layer]:
    return keras.Model(model.inputs, outputs).layers


@dataclasses.dataclass
class ExitCost:
    """The cost of one exit.

    Attributes:
        name: output name (``exit_1`` ... ``final``).
        block: the backbone block its head reads.
        head_macs: MACs of this exit's own head.
        cumulative_macs: MACs to reach and evaluate this exit in early-exit
            inference: backbone so far plus every head evaluated on the way.
        relative_cost: ``cumulative_macs`` over the plain network's MACs.
    """

    name: str
    block: str
    head_macs: int
    cumulative_macs: int
    relative_cost: float


def plain_macs(model: keras.Model) -> int:
    """MACs of the plain network inside ``model``: the final output's layers, no exit heads."""
    return sum(layer_macs(layer) for layer in _layers_used(model, model.outputs[-1]))


def exit_costs(model: keras.Model) -> list[ExitCost]:
    """Cumulative cost of every exit of a multi-exit model (see module docstring)."""
    from helpers.models import exit_positions

    names = list(model.output_names)
    blocks = exit_positions(model)
    reference = plain_macs(model)
    result = []
    for k, name in enumerate(names):
        used = _layers_used(model, model.outputs[: k + 1])
        total = sum(layer_macs(layer) for layer in used)
        head = layer_macs(model.get_layer(name))
        result.append(ExitCost(name, blocks[name], head, total, total / reference))
    return result


def relative_costs(model: keras.Model) -> list[float]:
    """``relative_cost`` of every exit, in output order."""
    return [c.relative_cost for c in exit_costs(model)]


def subset_costs(model: keras.Model) -> dict[tuple[str, ...], list[float]]:
    """``relative_costs`` of the network with every subset of its early exits, the others' heads removed.

    Args:
        model: a multi-exit model (``helpers.models.select_exits`` builds each subset).

    Returns:
        For every subset of the early exits, from none to all (keys: the kept exits'
        names in output order), the relative costs of its kept outputs, final last.
    """
    from itertools import combinations

    from helpers.models import select_exits

    early = list(model.output_names)[:-1]
    return {
        kept: relative_costs(select_exits(model, list(kept)))
        for k in range(len(early) + 1)
        for kept in combinations(early, k)
    }


def cost_table(model: keras.Model):
    """``exit_costs`` as a pandas DataFrame (MACs in millions) for display."""
    import pandas as pd

    rows = [
        {
            "exit": c.name,
            "after": c.block,
            "head MMACs": c.head_macs / 1e6,
            "cumulative MMACs": c.cumulative_macs / 1e6,
            "relative cost": c.relative_cost,
        }
        for c in exit_costs(model)
    ]
    return pd.DataFrame(rows).set_index("exit")


def layer_table(model: keras.Model):
    """MACs of every top-level layer (blocks, heads, classifier) as a DataFrame."""
    import pandas as pd

    rows = [
        {"layer": layer.name, "MMACs": layer_macs(layer) / 1e6}
        for layer in model.layers
        if not isinstance(layer, layers.InputLayer)
    ]
    return pd.DataFrame(rows).set_index("layer")
