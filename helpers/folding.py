"""Fold every batch normalisation into the convolution before it, for inference.

At inference a batch normalisation is a fixed per-channel affine map,
``y = gamma * (x - mean) / sqrt(var + eps) + beta``. After a convolution it can be
merged into that convolution's kernel and bias (Ioffe and Szegedy, 2015, section 3.2;
every inference compiler does it): the folded network computes the same function with
one pass less over every activation map. That pass is cheap in MACs but not in time:
a 128x128x32 map of a batch of 256 images holds half a gigabyte, and reading and
writing it again takes time that the MAC count of ``helpers.cost`` (one operation
per element for a normalisation, a small share of any block) barely sees. The early
blocks, which every image runs, have the largest maps: folding makes the plain
network and early exit faster alike (notebook 03 measures by how much), which is why
it does not by itself bring the measured speed-up of early exit up to the predicted one.

The folded model computes in float32 what the original does up to rounding (about
1e-6 relative), so a sample whose exit rule sits within rounding of the threshold can
leave at a neighbouring exit; ``helpers.inference.EarlyExitEngine`` folds by default
and its tests compare it with the reference computed on the folded model.
"""

from __future__ import annotations

import copy
from typing import Any

import keras
import numpy as np

FOLDABLE_AXES = (-1, 3)
"""The batch-normalisation axes that can be folded: the channels of ``channels_last`` maps."""


def _name(layer_config: dict) -> str:
    return layer_config.get("name") or layer_config["config"]["name"]


def _histories(node: Any):
    """Every ``keras_history`` list (``[layer, node_index, tensor_index]``) inside a serialised node."""
    if isinstance(node, dict):
        if "keras_history" in node:
            yield node["keras_history"]
        for value in node.values():
            yield from _histories(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _histories(value)


def _output_refs(inner: dict) -> list:
    outputs = inner.get("output_layers") or []
    return [outputs] if outputs and isinstance(outputs[0], str) else outputs


def _foldable_conv(bn: dict, by_name: dict, uses: dict) -> str | None:
    """The name of the convolution that ``bn`` (a serialised layer) can be folded into, or ``None``."""
    axis = bn["config"].get("axis")
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    nodes = bn.get("inbound_nodes") or []
    if axis not in FOLDABLE_AXES or len(nodes) != 1:
        return None
    sources = list(_histories(nodes[0]))
    if len(sources) != 1:
        return None
    conv = by_name.get(sources[0][0])
    if conv is None or conv.get("class_name") != "Conv2D" or len(conv.get("inbound_nodes") or []) != 1:
        return None
    c = conv["config"]
    plain = c.get("activation") == "linear" and c.get("groups", 1) == 1 and c.get("data_format") == "channels_last"
    return _name(conv) if plain and uses[_name(conv)] == 1 else None


def _fold_config(layer_config: dict, path: tuple[str, ...], pairs: dict) -> None:
    """Remove the foldable batch normalisations from a serialised functional model, in place.

    Each removed normalisation's convolution gets a bias, and whatever read the
    normalisation reads the convolution instead. ``pairs[path + (conv,)]`` records the
    normalisation folded into ``conv``; nested models are handled recursively.
    """
    inner = layer_config.get("config", {})
    layers = inner.get("layers")
    if layers is None:
        return
    for sub in layers:
        _fold_config(sub, path + (_name(sub),), pairs)
    by_name = {_name(sub): sub for sub in layers}
    uses = {name: 0 for name in by_name}
    for sub in layers:
        for history in _histories(sub.get("inbound_nodes") or []):
            uses[history[0]] += 1
    for ref in _output_refs(inner):
        uses[ref[0]] += 1
    renamed = {}
    for bn in layers:
        if bn.get("class_name") == "BatchNormalization":
            conv = _foldable_conv(bn, by_name, uses)
            if conv is not None:
                renamed[_name(bn)] = conv
                by_name[conv]["config"]["use_bias"] = True
                pairs[path + (conv,)] = _name(bn)
    if not renamed:
        return
    inner["layers"] = [sub for sub in layers if _name(sub) not in renamed]
    for sub in inner["layers"]:
        for history in _histories(sub.get("inbound_nodes") or []):
            history[0] = renamed.get(history[0], history[0])
    for ref in _output_refs(inner):
        ref[0] = renamed.get(ref[0], ref[0])


def _folded_weights(conv: keras.layers.Conv2D, bn: keras.layers.BatchNormalization) -> list[np.ndarray]:
    """Kernel and bias of ``conv`` followed by ``bn`` (inference statistics), computed in float64."""
    kernel = np.asarray(conv.kernel, np.float64)
    bias = np.asarray(conv.bias, np.float64) if conv.use_bias else 0.0
    mean = np.asarray(bn.moving_mean, np.float64)
    variance = np.asarray(bn.moving_variance, np.float64)
    gamma = np.asarray(bn.gamma, np.float64) if bn.scale else 1.0
    beta = np.asarray(bn.beta, np.float64) if bn.center else 0.0
    scale = gamma / np.sqrt(variance + bn.epsilon)
    return [(kernel * scale).astype(np.float32), ((bias - mean) * scale + beta).astype(np.float32)]


def _copy_weights(original: keras.Model, folded: keras.Model, path: tuple[str, ...], pairs: dict) -> None:
    """Set the weights of ``folded`` from ``original``: folded where ``pairs`` says, copied elsewhere."""
    for layer in folded.layers:
        source = original.get_layer(layer.name)
        where = path + (layer.name,)
        if isinstance(layer, keras.Model):
            _copy_weights(source, layer, where, pairs)
        elif where in pairs:
            layer.set_weights(_folded_weights(source, original.get_layer(pairs[where])))
        elif source.weights:
            layer.set_weights(source.get_weights())


def fold_batchnorm(model: keras.Model) -> keras.Model:
    """A copy of ``model`` with every ``Conv2D -> BatchNormalization`` pair merged into the Conv2D.

    A normalisation is folded when it normalises the channels (last axis) of a
    convolution's output that nothing else reads, and the convolution is a plain one
    (no activation, one group); other normalisations stay. Layer names, dtype policies
    and nested sub-models are kept, so ``helpers.inference.build_stages`` finds the
    same structure. The copy is for inference: it computes what ``model(x,
    training=False)`` computes, up to rounding.

    Args:
        model: a functional Keras model (nested functional sub-models allowed).

    Returns:
        The folded copy, or ``model`` itself when it has nothing to fold.
    """
    config = copy.deepcopy(keras.saving.serialize_keras_object(model))
    pairs: dict[tuple[str, ...], str] = {}
    _fold_config(config, (), pairs)
    if not pairs:
        return model
    folded = keras.saving.deserialize_keras_object(config)
    _copy_weights(model, folded, (), pairs)
    return folded
