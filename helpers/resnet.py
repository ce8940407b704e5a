"""ResNet18 for 32x32 images (CIFAR-10), plain or with early exits.

The CIFAR variant of ResNet18 (He et al., 2016, as commonly adapted to 32x32
inputs): a 3x3 stem convolution without max-pool, then four stages of two basic
blocks with 64, 128, 256 and 512 filters, the last three halving the resolution
(32 -> 16 -> 8 -> 4). It is assembled like the VGG11 of ``helpers.models``:

    images (uint8) -> preprocess -> block_1 -> block_2 -> block_3 -> block_4 -> final
                                        \\-> exit_1      \\-> exit_2 ...

``block_1`` is the stem and stage 1, ``block_2..block_4`` the other stages, so an
exit "after stage s" reads ``block_s``; ``helpers.cost`` and the early-exit engine
work on it unchanged. Exit heads pool the feature map, by global average pooling
or by spatial pyramid pooling (``helpers.layers.SpatialPyramidPooling``), and
classify it with one dense layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from helpers.layers import SpatialPyramidPooling
from helpers.models import _scaled, assemble, final_classifier

RESNET18_STAGES: tuple[int, ...] = (64, 128, 256, 512)
"""Filters of ResNet18's four stages (two basic blocks each)."""

CIFAR10_MEAN = (125.3, 123.0, 113.9)
CIFAR10_STD = (63.0, 62.1, 66.7)
"""Per-channel mean and standard deviation of the CIFAR-10 training images (0-255 scale)."""

POOLINGS = ("avg", "spp")
SPP_LEVELS = (1, 2, 4)


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, relu: bool = True):
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    # momentum 0.9 (Keras: 0.99) as in helpers.models: statistics that keep up with short runs
    x = layers.BatchNormalization(momentum=0.9, synchronized=True, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def basic_block(x, filters: int, stride: int, name: str):
    """Two 3x3 conv + batch norm layers with a shortcut: identity, or 1x1 conv + batch norm
    where the block changes the resolution or the number of channels."""
    shortcut = x
    if stride != 1 or int(x.shape[-1]) != filters:
        shortcut = _conv_bn(x, filters, 1, stride, f"{name}_shortcut", relu=False)
    y = _conv_bn(x, filters, 3, stride, f"{name}_a")
    y = _conv_bn(y, filters, 3, 1, f"{name}_b", relu=False)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ReLU(name=f"{name}_out")(y)


def resnet_stage(index: int, in_shape: Sequence[int], filters: int, stem_filters: int | None = None) -> keras.Model:
    """Stage ``index`` (1-based) as a model named ``block_{index}``: two basic blocks.

    Stage 1 keeps the resolution and starts with the 3x3 stem (``stem_filters``);
    stages 2-4 halve it in their first block.
    """
    x = inp = keras.Input(tuple(in_shape), name=f"block_{index}_in")
    if stem_filters is not None:
        x = _conv_bn(x, stem_filters, 3, 1, "stem")
    x = basic_block(x, filters, 1 if index == 1 else 2, "unit1")
    x = basic_block(x, filters, 1, "unit2")
    return keras.Model(inp, x, name=f"block_{index}")


def pooling_head(name: str, in_shape: Sequence[int], num_classes: int, pooling: str = "avg") -> keras.Model:
    """An exit head: pooling, then a dense layer returning logits.

    Args:
        name: layer name, e.g. ``exit_1``.
        in_shape: ``(H, W, C)`` of the feature map it reads.
        num_classes: number of classes K.
        pooling: ``"avg"`` (global average pooling: ``C`` features) or ``"spp"``
            (spatial pyramid max pooling over 1x1, 2x2 and 4x4 grids: ``21 C`` features).
    """
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
    x = inp = keras.Input(tuple(in_shape), name=f"{name}_in")
    if pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="gap")(x)
    else:
        x = SpatialPyramidPooling(SPP_LEVELS, name="spp")(x)
    # logits in float32 even under a mixed-precision policy
    x = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inp, x, name=name)


def build_resnet18(
    num_classes: int = 10,
    input_size: int = 32,
    width: float = 1.0,
    exits_after: Sequence[int] = (),
    pooling: str = "avg",
    name: str | None = None,
) -> keras.Model:
    """ResNet18 for small images, optionally with early exits.

    The model takes raw uint8 images and normalises them per channel itself
    (CIFAR-10 statistics). Outputs are logits: ``exit_1`` ... ``exit_E`` then ``final``.

    Args:
        num_classes: number of classes K.
        input_size: side of the square input; at least 8 (and 32 for SPP heads after
            stage 3, whose 4x4 grid needs a 4x4 map).
        width: multiplier of every stage's filters (1.0: 64-128-256-512).
        exits_after: stages (1..3) after which an early exit is attached; empty for
            the plain ResNet18.
        pooling: the exit heads' pooling, ``"avg"`` or ``"spp"``.
        name: model name; default ``resnet18_plain`` or ``resnet18_{E}exits_{pooling}``.
    """
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    if input_size < 8:
        raise ValueError(f"input_size must be at least 8 (three stride-2 stages), got {input_size}")
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
    exits_after = tuple(exits_after)
    if any(not 1 <= s <= 3 for s in exits_after):
        raise ValueError(
            f"early exits go after stages 1, 2 or 3 (stage 4 feeds the final classifier), got {exits_after}"
        )
    filters = [_scaled(f, width) for f in RESNET18_STAGES]
    blocks = []
    shape: tuple[int, ...] = (input_size, input_size, 3)
    for i, f in enumerate(filters, start=1):
        stage = resnet_stage(i, shape, f, stem_filters=filters[0] if i == 1 else None)
        blocks.append(stage)
        shape = tuple(stage.output.shape[1:])

    def make_head(head_name: str, in_shape: Sequence[int]) -> keras.Model:
        return pooling_head(head_name, in_shape, num_classes, pooling)

    preprocess = layers.Normalization(
        mean=list(CIFAR10_MEAN), variance=[s * s for s in CIFAR10_STD], name="preprocess"
    )
    default_name = "resnet18_plain" if not exits_after else f"resnet18_{len(exits_after) + 1}exits_{pooling}"
    return assemble(
        input_size, preprocess, blocks, exits_after, make_head,
        final_classifier(shape, num_classes, dropout=0.0), name or default_name,
    )
