"""Backbones and exits: VGG11 with batch norm, exit heads, and multi-exit assembly.

A multi-exit model here is a Keras functional model built from named sub-models:

    images (uint8) -> preprocess -> block_1 -> block_2 -> ... -> block_B -> final
                                        \\-> exit_1     \\-> exit_2

``block_i`` are the backbone stages, ``exit_j`` the early-exit heads (each attached
to the output of one block) and ``final`` the network's own classifier. Every
output is a logits tensor named after its head, early exits first, ``final`` last.
Keeping stages and heads as separate named layers is what lets ``helpers.cost``
count the cost of each exit and ``helpers.inference`` run the network stage by
stage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np
from keras import layers

VGG11_BLOCKS: tuple[tuple[int, ...], ...] = ((64,), (128,), (256, 256), (512, 512), (512, 512))
"""Filters of the conv layers in each of VGG11's five blocks (configuration "A")."""

HEAD_KINDS = ("conv", "pool", "strided")


def _scaled(filters: int, width: float) -> int:
    return max(1, int(round(filters * width)))


def vgg_block(index: int, in_shape: Sequence[int], filters: Sequence[int]) -> keras.Model:
    """One VGG block: (3x3 conv, batch norm, ReLU) per entry of ``filters``, then 2x2 max-pool.

    Args:
        index: 1-based block number, used in the name ``block_{index}``.
        in_shape: ``(H, W, C)`` of the block's input.
        filters: output channels of each conv layer.
    """
    x = inp = keras.Input(tuple(in_shape), name=f"block_{index}_in")
    for j, f in enumerate(filters, start=1):
        # momentum 0.9 (Keras: 0.99): with ~35 steps per epoch on tf_flowers, the slower
        # moving statistics lag far behind the weights and validation accuracy sits at chance.
        # synchronized: under a multi-replica strategy the statistics cover the global batch,
        # so training matches one device (no effect on a single device).
        x = layers.Conv2D(f, 3, padding="same", use_bias=False, name=f"conv{j}")(x)
        x = layers.BatchNormalization(momentum=0.9, synchronized=True, name=f"bn{j}")(x)
        x = layers.ReLU(name=f"relu{j}")(x)
    x = layers.MaxPooling2D(2, name="pool")(x)
    return keras.Model(inp, x, name=f"block_{index}")


def exit_head(
    name: str,
    in_shape: Sequence[int],
    num_classes: int,
    kind: str = "conv",
    conv_filters: int = 128,
) -> keras.Model:
    """A classifier head returning logits.

    Args:
        name: layer name, e.g. ``exit_1``.
        in_shape: ``(H, W, C)`` of the feature map it reads.
        num_classes: number of classes K.
        kind: ``"conv"``, the earlier VGG11 course project's head (3x3 conv with
            ``conv_filters`` filters, ReLU, global average pooling, dense);
            ``"pool"``, the cheap head (global average pooling, dense); or
            ``"strided"``, a 3x3 conv with stride 2 (batch norm, ReLU) before the pooling:
            a nonlinear layer like the conv head's at a quarter of the positions.
        conv_filters: filters of the conv and strided heads.
    """
    if kind not in HEAD_KINDS:
        raise ValueError(f"unknown exit head kind {kind!r}; choose one of {HEAD_KINDS}")
    x = inp = keras.Input(tuple(in_shape), name=f"{name}_in")
    if kind == "conv":
        x = layers.Conv2D(conv_filters, 3, padding="same", activation="relu", name="conv")(x)
    elif kind == "strided":
        x = layers.Conv2D(conv_filters, 3, strides=2, padding="same", use_bias=False, name="conv")(x)
        x = layers.BatchNormalization(momentum=0.9, name="bn")(x)
        x = layers.ReLU(name="relu")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    # Logits in float32 even under a mixed-precision policy: softmax and entropy need the range.
    x = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inp, x, name=name)


def final_classifier(in_shape: Sequence[int], num_classes: int, dropout: float = 0.3) -> keras.Model:
    """The network's own classifier: global average pooling, dropout, dense (logits)."""
    x = inp = keras.Input(tuple(in_shape), name="final_in")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inp, x, name="final")


def assemble(
    input_size: int,
    preprocess: keras.layers.Layer,
    blocks: Sequence[keras.Model],
    exits_after: Sequence[int],
    make_head: Callable[[str, Sequence[int]], keras.Model],
    final: keras.Model,
    name: str,
) -> keras.Model:
    """Chain ``blocks`` and attach a head after each block listed in ``exits_after``.

    Args:
        input_size: side of the square uint8 input images.
        preprocess: layer mapping uint8 images to the first block's input.
        blocks: backbone stages, applied in order.
        exits_after: 1-based block numbers after which an early exit is attached
            (sorted, unique); empty for a plain network.
        make_head: ``make_head(name, in_shape)`` builds an exit head.
        final: the final classifier, applied after the last block.
        name: model name.
    """
    exits_after = list(exits_after)
    if exits_after != sorted(set(exits_after)) or any(not 1 <= b <= len(blocks) for b in exits_after):
        raise ValueError(
            f"exits_after must be sorted, unique block numbers in 1..{len(blocks)}, got {exits_after}"
        )
    images = keras.Input((input_size, input_size, 3), dtype="uint8", name="images")
    x = preprocess(images)
    outputs = []
    for b, block in enumerate(blocks, start=1):
        x = block(x)
        if b in exits_after:
            head = make_head(f"exit_{len(outputs) + 1}", tuple(x.shape[1:]))
            outputs.append(head(x))
    outputs.append(final(x))
    return keras.Model(images, outputs, name=name)


def build_vgg11(
    num_classes: int = 5,
    input_size: int = 96,
    width: float = 1.0,
    head: str | None = "conv",
    exits_after: Sequence[int] = (1, 2, 3, 4, 5),
    head_filters: int = 128,
    dropout: float = 0.3,
    name: str | None = None,
) -> keras.Model:
    """VGG11 with batch normalisation, optionally with early exits.

    Blocks of 64, 128, 2x256, 2x512, 2x512 filters (times ``width``), each ending
    in a 2x2 max-pool; the model takes raw uint8 images and rescales them to [0, 1]
    itself. Outputs are logits: ``exit_1`` ... ``exit_E`` then ``final``.

    Args:
        num_classes: number of classes K.
        input_size: side of the square input; must be divisible by 32.
        width: multiplier of every block's filters (the heads keep ``head_filters``
            times ``width``).
        head: ``"conv"`` (the earlier course project's head), ``"pool"`` (cheap
            head), ``"strided"`` (see ``exit_head``) or ``None`` for the plain VGG11
            with only the final classifier.
        exits_after: block numbers (1..5) that get an exit; default all five.
        head_filters: filters of the conv or strided head before ``width`` scaling.
        dropout: dropout rate before the final classifier's dense layer.
        name: model name; default ``vgg11_plain`` or ``vgg11_{head}_exits``.
    """
    if input_size % 32:
        raise ValueError(f"input_size must be divisible by 32 (five 2x2 max-pools), got {input_size}")
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    if head is None:
        exits_after = ()
    elif head not in HEAD_KINDS:
        raise ValueError(f"unknown exit head kind {head!r}; choose one of {HEAD_KINDS} or None")
    blocks = []
    shape = (input_size, input_size, 3)
    for i, filters in enumerate(VGG11_BLOCKS, start=1):
        block = vgg_block(i, shape, [_scaled(f, width) for f in filters])
        blocks.append(block)
        shape = tuple(block.output.shape[1:])

    def make_head(head_name: str, in_shape: Sequence[int]) -> keras.Model:
        return exit_head(head_name, in_shape, num_classes, head, _scaled(head_filters, width))

    return assemble(
        input_size,
        layers.Rescaling(1.0 / 255, name="preprocess"),
        blocks,
        exits_after,
        make_head,
        final_classifier(shape, num_classes, dropout),
        name or ("vgg11_plain" if head is None else f"vgg11_{head}_exits"),
    )


def output_names(model: keras.Model) -> list[str]:
    """Names of the model's outputs, in order (early exits first, ``final`` last)."""
    return list(model.output_names)


def block_names(model: keras.Model) -> list[str]:
    """Names of the backbone stages ``block_1``, ``block_2``, ... in order."""
    names = [layer.name for layer in model.layers if layer.name.startswith("block_")]
    return sorted(names, key=lambda n: int(n.split("_")[1]))


def exit_positions(model: keras.Model) -> dict[str, str]:
    """For each output, the block after which its head is attached.

    Found from the graph: the last block among the layers the output depends on.
    """
    blocks = block_names(model)
    result = {}
    for name, out in zip(output_names(model), model.outputs, strict=True):
        used = {layer.name for layer in keras.Model(model.inputs, out).layers}
        result[name] = [b for b in blocks if b in used][-1]
    return result


def freeze_backbone(model: keras.Model, donor: keras.Model) -> list[str]:
    """Copy every layer but the exit heads from ``donor`` into ``model`` and freeze them.

    This turns a trained network (plain or multi-exit) into the fixed backbone of
    ``model``, whose exit heads then train alone: the final classifier keeps the
    donor's predictions exactly, whatever the heads learn. Frozen batch-norm layers
    also keep the donor's statistics (Keras runs a non-trainable one in inference mode).
    A saved model keeps these layers frozen: set their ``trainable`` back to fine-tune it all.

    Args:
        model: the model to train, with the same preprocessing, blocks and final
            classifier as ``donor`` (its heads may differ, or the donor may have none).
        donor: the trained network.

    Returns:
        The names of the copied (now frozen) layers.

    Raises:
        ValueError: ``donor`` lacks one of those layers, or its weights have other shapes.
    """
    copied = []
    for layer, source in _backbone_pairs(model, donor):
        layer.set_weights(source.get_weights())
        layer.trainable = False
        copied.append(layer.name)
    return copied


def _backbone_pairs(model: keras.Model, donor: keras.Model) -> list[tuple[keras.layers.Layer, keras.layers.Layer]]:
    """Each layer of ``model`` that holds weights, exit heads excepted, with its namesake in ``donor``.

    Raises:
        ValueError: the two take other input sizes, ``donor`` lacks one of those layers,
            or its weights have other shapes.
    """
    mine_in, theirs_in = tuple(model.inputs[0].shape[1:]), tuple(donor.inputs[0].shape[1:])
    if mine_in != theirs_in:  # convolutions would take any size, but the donor learnt at its own
        raise ValueError(
            f"the model takes inputs of shape {mine_in}, the backbone model {donor.name!r} {theirs_in}: "
            "build the model at the backbone's image size"
        )
    heads = set(output_names(model)[:-1])  # every output but the final one is named after its head
    pairs = []
    for layer in model.layers:
        if not layer.weights or layer.name in heads:
            continue
        try:
            source = donor.get_layer(layer.name)
        except ValueError:
            raise ValueError(
                f"the backbone model {donor.name!r} has no layer {layer.name!r} to copy; "
                f"its layers: {[x.name for x in donor.layers]}"
            ) from None
        mine = [tuple(w.shape) for w in layer.weights]
        theirs = [tuple(w.shape) for w in source.weights]
        if mine != theirs:
            raise ValueError(
                f"layer {layer.name!r} has weights of shapes {mine}, the backbone model {donor.name!r} "
                f"{theirs}: build the model with the backbone's image size, width and classes"
            )
        pairs.append((layer, source))
    return pairs


def same_backbone(model: keras.Model, donor: keras.Model) -> bool:
    """Whether every layer of ``model`` but its exit heads holds exactly ``donor``'s weights.

    True for a model whose backbone ``freeze_backbone`` took from ``donor`` (frozen
    layers never change); false once ``donor`` has been trained again, or when it lacks
    a layer or has other shapes.
    """
    try:
        pairs = _backbone_pairs(model, donor)
    except ValueError:  # another input size, a missing layer or other shapes: not this donor
        return False
    return all(
        np.array_equal(a, b)
        for layer, source in pairs
        for a, b in zip(layer.get_weights(), source.get_weights(), strict=True)
    )


def select_exits(model: keras.Model, exits: Sequence[str | int]) -> keras.Model:
    """The same network with only some of its early exits: the others' heads are gone.

    Deploying a subset of the exits is not the same as letting nobody leave at the
    others (a threshold of 0 with the entropy rule): a closed exit's head still runs
    for every sample that reaches it, while here it is not part of the network at
    all, so ``helpers.cost`` does not count it and ``helpers.inference`` never runs it.

    The result shares its layers (and weights) with ``model``; its outputs are the kept
    early exits, in backbone order, then ``final``, under their original names
    (``exit_2`` stays ``exit_2``). Numbering is the new model's own: for
    ``helpers.inference.EarlyExitEngine`` and an export of it, exit 1 is its first
    output, whatever its name (``exit_names`` maps one to the other).

    Args:
        model: a multi-exit model of ``helpers.models`` or ``helpers.resnet``.
        exits: the early exits to keep, by output name (``"exit_2"``) or 1-based number
            (``2``) among ``model``'s outputs; empty keeps the final classifier only.

    Raises:
        ValueError: an exit is unknown, is the final classifier (always kept) or is given twice.
    """
    names = output_names(model)
    early = names[:-1]
    chosen = []
    for e in exits:
        if isinstance(e, (int, np.integer)) and not isinstance(e, bool):
            if not 1 <= e <= len(names):
                raise ValueError(f"exit number {e} is out of range: {model.name!r} has outputs 1 to {len(names)} ({', '.join(names)})")
            name = names[e - 1]
        elif isinstance(e, str):
            name = e
        else:
            raise ValueError(f"exits are output names or 1-based numbers, got {e!r}")
        if name == names[-1]:
            raise ValueError(f"{name!r} is the final classifier, which every model keeps; name early exits only")
        if name not in early:
            raise ValueError(f"unknown exit {name!r}; the early exits of {model.name!r} are: {', '.join(early) or 'none'}")
        if name in chosen:
            raise ValueError(f"exit {name!r} is given twice")
        chosen.append(name)
    kept = [i for i, n in enumerate(early) if n in chosen] + [len(names) - 1]
    suffix = "_".join(early[i].split("_")[-1] for i in kept[:-1]) or "none"
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs  # called like the model, without a warning
    return keras.Model(inputs, [model.outputs[i] for i in kept], name=f"{model.name}_exits_{suffix}")


def parse_exits(text: str) -> list[str | int]:
    """A command line's ``--exits`` value: comma-separated output names or 1-based numbers.

    ``"2,3,exit_4"`` gives ``[2, 3, "exit_4"]``; ``""`` or ``"none"`` keeps no early exit.
    ``select_exits`` checks them against the model.
    """
    parts = [p.strip() for p in text.split(",")]
    if parts in ([""], ["none"]):
        return []
    if "" in parts:
        raise ValueError(f"--exits takes comma-separated exit names or numbers (like 2,3,4), got {text!r}")
    return [int(p) if p.isdigit() else p for p in parts]
