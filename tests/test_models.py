"""Tests of helpers.models: the VGG11-BN backbone, exit heads and multi-exit assembly."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

from helpers import models

EXIT_NAMES = ["exit_1", "exit_2", "exit_3", "exit_4", "exit_5", "final"]


def _images(n: int = 2, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_vgg11_outputs_are_named_logits(tiny_model):
    assert models.output_names(tiny_model) == EXIT_NAMES
    assert tiny_model.name == "vgg11_conv_exits"
    assert tiny_model.inputs[0].dtype == "uint8"
    outputs = tiny_model(_images(2), training=False)  # raw uint8 images go straight in
    assert len(outputs) == 6
    for out in outputs:
        assert tuple(out.shape) == (2, 3)
        assert keras.backend.standardize_dtype(out.dtype) == "float32"
        assert np.all(np.isfinite(np.asarray(out)))


def test_vgg11_rescales_inside_the_model(tiny_model):
    # The preprocess layer maps uint8 [0, 255] to [0, 1]: the first block sees x / 255.
    images = _images(2)
    block_input = keras.Model(tiny_model.inputs[0], tiny_model.get_layer("preprocess").output)
    np.testing.assert_allclose(np.asarray(block_input(images)), images / 255.0, rtol=1e-6)


def test_vgg11_width_scales_blocks_and_heads(tiny_model):
    # width 1/8: blocks 8, 16, 2x32, 2x64, 2x64 filters; conv heads 128/8 = 16 filters.
    convs = [
        tiny_model.get_layer(f"block_{b}").get_layer(f"conv{j}").filters
        for b, n in zip(range(1, 6), (1, 1, 2, 2, 2), strict=True)
        for j in range(1, n + 1)
    ]
    assert convs == [8, 16, 32, 32, 64, 64, 64, 64]
    assert tiny_model.get_layer("exit_1").get_layer("conv").filters == 16
    # Feature-map sizes: 32 -> 16 -> 8 -> 4 -> 2 -> 1 after the five max-pools.
    sides = [tiny_model.get_layer(f"block_{b}").output.shape[1] for b in range(1, 6)]
    assert sides == [16, 8, 4, 2, 1]


def test_plain_vgg11_bn_parameter_count():
    """VGG11-BN ("A" with batch norm), width 1, 10 classes, counted by hand.

    3x3 convs without bias (C_in * C_out * 9):
        block 1:  3 * 64 * 9                       =     1,728
        block 2:  64 * 128 * 9                     =    73,728
        block 3:  128 * 256 * 9 + 256 * 256 * 9    =   294,912 +   589,824
        block 4:  256 * 512 * 9 + 512 * 512 * 9    = 1,179,648 + 2,359,296
        block 5:  2 * 512 * 512 * 9                = 4,718,592
        total                                      = 9,217,728
    Batch norm: 4 numbers per channel (gamma, beta trainable; mean, variance not)
        channels 64 + 128 + 2*256 + 4*512 = 2,752  ->  11,008 (5,504 trainable)
    Final dense: 512 * 10 + 10 = 5,130.  Global average pooling, ReLU, pooling: 0.
    The count does not depend on the input size (global pooling before the dense layer).
    """
    conv = 1_728 + 73_728 + 294_912 + 589_824 + 1_179_648 + 2_359_296 + 4_718_592
    assert conv == 9_217_728
    bn = 4 * (64 + 128 + 256 + 256 + 512 + 512 + 512 + 512)
    dense = 512 * 10 + 10
    model = models.build_vgg11(num_classes=10, input_size=32, width=1.0, head=None)
    assert model.count_params() == conv + bn + dense == 9_233_866
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == conv + bn // 2 + dense == 9_228_362


def test_head_parameter_counts():
    # conv head on 8 channels, 16 filters, 3 classes: 3*3*8*16 + 16 (conv) + 16*3 + 3 (dense).
    conv_head = models.exit_head("exit_1", (16, 16, 8), 3, kind="conv", conv_filters=16)
    assert conv_head.count_params() == 3 * 3 * 8 * 16 + 16 + 16 * 3 + 3
    # pool head: only the dense layer, 8*3 + 3.
    pool_head = models.exit_head("exit_1", (16, 16, 8), 3, kind="pool")
    assert pool_head.count_params() == 8 * 3 + 3


def test_strided_head_parameters_and_macs():
    from helpers import cost

    # 3x3 conv, stride 2, 8 -> 16 channels, no bias; batch norm (4 per channel, half trainable);
    # dense 16 -> 3.
    head = models.exit_head("exit_1", (16, 16, 8), 3, kind="strided", conv_filters=16)
    assert head.count_params() == 3 * 3 * 8 * 16 + 4 * 16 + 16 * 3 + 3
    assert tuple(head.get_layer("conv").output.shape) == (None, 8, 8, 16)  # a quarter of the positions
    conv = (8 * 8 * 16) * (3 * 3 * 8)  # output elements x k_h x k_w x C_in = 73,728
    bn, gap, dense = 8 * 8 * 16, 8 * 8 * 16, 16 * 3
    assert cost.layer_macs(head) == conv + bn + gap + dense == 75_824
    # the same conv head at stride 1 costs four times the convolution
    conv_head = models.exit_head("exit_1", (16, 16, 8), 3, kind="conv", conv_filters=16)
    assert cost.layer_macs(conv_head.get_layer("conv")) == 4 * conv


def _donor_and_student(head="strided"):
    keras.utils.set_random_seed(0)
    donor = models.build_vgg11(3, 32, 0.125, head=None)
    student = models.build_vgg11(3, 32, 0.125, head=head, head_filters=32)
    return donor, student


def test_freeze_backbone_copies_and_freezes_all_but_the_heads():
    donor, student = _donor_and_student()
    copied = models.freeze_backbone(student, donor)
    assert copied == ["block_1", "block_2", "block_3", "block_4", "block_5", "final"]  # preprocess has no weights
    for name in copied:
        assert not student.get_layer(name).trainable
        for mine, theirs in zip(student.get_layer(name).weights, donor.get_layer(name).weights, strict=True):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    assert all(student.get_layer(f"exit_{e}").trainable for e in range(1, 6))
    # only the heads' weights are left to train
    head_weights = sum(len(student.get_layer(f"exit_{e}").trainable_weights) for e in range(1, 6))
    assert len(student.trainable_weights) == head_weights == 5 * 5  # conv kernel, bn gamma and beta, dense kernel and bias
    images = _images(4)
    np.testing.assert_allclose(student(images)[-1], donor(images), rtol=1e-5, atol=1e-6)


def test_freeze_backbone_keeps_the_final_classifier_through_training():
    donor, student = _donor_and_student()
    models.freeze_backbone(student, donor)
    images, labels = _images(8), np.arange(8) % 3
    before = [w.numpy().copy() for w in student.get_layer("exit_1").weights]
    student.compile("adam", loss=[keras.losses.SparseCategoricalCrossentropy(from_logits=True)] * 6)
    student.fit(images, [labels] * 6, epochs=2, verbose=0)
    after = [w.numpy() for w in student.get_layer("exit_1").weights]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))  # the heads learn
    # the frozen batch norm keeps the donor's statistics, so the final output is still the donor's
    np.testing.assert_allclose(student.predict(images, verbose=0)[-1], donor.predict(images, verbose=0),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("donor_kwargs", "message"),
    [
        (dict(width=0.25), r"layer 'block_1' has weights of shapes .* build the model with the backbone's"),
        (dict(input_size=64), r"inputs of shape \(32, 32, 3\), the backbone model .* \(64, 64, 3\)"),
        (dict(num_classes=4), r"layer 'final' has weights of shapes"),
    ],
)
def test_freeze_backbone_refuses_a_donor_that_does_not_fit(donor_kwargs, message):
    student = models.build_vgg11(3, 32, 0.125, head="strided")
    donor = models.build_vgg11(**(dict(num_classes=3, input_size=32, width=0.125, head=None) | donor_kwargs))
    with pytest.raises(ValueError, match=message):
        models.freeze_backbone(student, donor)


def test_freeze_backbone_names_a_missing_layer():
    student = models.build_vgg11(3, 32, 0.125, head="pool")
    donor = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(2, 3, name="conv")], name="other")
    with pytest.raises(ValueError, match=r"the backbone model 'other' has no layer 'block_1' to copy; its layers: \['conv'\]"):
        models.freeze_backbone(student, donor)


def test_same_backbone_tells_the_donor_from_a_changed_or_other_one():
    donor, student = _donor_and_student()
    assert not models.same_backbone(student, donor)  # fresh weights of its own
    models.freeze_backbone(student, donor)
    assert models.same_backbone(student, donor)
    block = donor.get_layer("block_5")
    weights = block.get_weights()
    weights[-1] = weights[-1] + 1e-3  # one batch-norm statistic of the deepest block moves
    block.set_weights(weights)
    assert not models.same_backbone(student, donor)
    assert not models.same_backbone(student, models.build_vgg11(3, 64, 0.125, head=None))
    assert not models.same_backbone(student, models.build_vgg11(3, 32, 0.25, head=None))
    other = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(2, 3, name="conv")])
    assert not models.same_backbone(student, other)


def test_exits_after_subset():
    model = models.build_vgg11(3, 32, 0.125, head="pool", exits_after=(2, 4))
    assert models.output_names(model) == ["exit_1", "exit_2", "final"]
    assert models.exit_positions(model) == {"exit_1": "block_2", "exit_2": "block_4", "final": "block_5"}
    assert model.name == "vgg11_pool_exits"
    assert all(tuple(o.shape) == (1, 3) for o in model(_images(1)))


def test_exit_positions_default(tiny_model):
    assert models.block_names(tiny_model) == [f"block_{b}" for b in range(1, 6)]
    expected = {f"exit_{b}": f"block_{b}" for b in range(1, 6)} | {"final": "block_5"}
    assert models.exit_positions(tiny_model) == expected


def test_plain_model_has_one_output():
    model = models.build_vgg11(3, 32, 0.125, head=None, exits_after=(1, 2))  # exits ignored
    assert models.output_names(model) == ["final"]
    assert model.name == "vgg11_plain"
    assert models.exit_positions(model) == {"final": "block_5"}
    assert not any(layer.name.startswith("exit_") for layer in model.layers)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_size": 48}, "divisible by 32"),
        ({"input_size": 33}, "divisible by 32"),
        ({"width": 0}, "width must be positive"),
        ({"width": -0.5}, "width must be positive"),
        ({"head": "dense"}, "unknown exit head kind 'dense'"),
    ],
)
def test_build_vgg11_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.build_vgg11(**({"num_classes": 3, "input_size": 32, "width": 0.125} | kwargs))


@pytest.mark.parametrize("exits_after", [(2, 1), (1, 1), (0,), (6,)])
def test_build_vgg11_rejects_bad_exit_positions(exits_after):
    with pytest.raises(ValueError, match="exits_after must be sorted, unique block numbers in 1..5"):
        models.build_vgg11(3, 32, 0.125, exits_after=exits_after)


def test_exit_head_rejects_unknown_kind():
    with pytest.raises(ValueError, match="choose one of"):
        models.exit_head("exit_1", (4, 4, 8), 3, kind="attention")


def test_tiny_width_keeps_at_least_one_filter():
    model = models.build_vgg11(3, 32, width=0.001, head="conv")
    assert model.get_layer("block_1").get_layer("conv1").filters == 1
    assert model.get_layer("exit_1").get_layer("conv").filters == 1


def test_save_and_load_roundtrip(tiny_model, tmp_path):
    images = _images(4)
    before = tiny_model.predict(images, verbose=0)
    path = tmp_path / "model.keras"
    tiny_model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    after = loaded.predict(images, verbose=0)

    assert models.output_names(loaded) == EXIT_NAMES
    assert models.exit_positions(loaded) == models.exit_positions(tiny_model)
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)


def test_select_exits_keeps_the_outputs_asked_for_and_drops_the_other_heads(tiny_model, tiny_images):
    kept = models.select_exits(tiny_model, [4, "exit_2"])  # any order, names or numbers
    assert kept.output_names == ["exit_2", "exit_4", "final"]
    assert models.exit_positions(kept) == {"exit_2": "block_2", "exit_4": "block_4", "final": "block_5"}
    layer_names = {layer.name for layer in kept.layers}
    assert {"exit_1", "exit_3", "exit_5"}.isdisjoint(layer_names) and {"exit_2", "exit_4"} <= layer_names
    full = tiny_model(tiny_images.images, training=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # called like the model itself: no input-structure warning
        outputs = kept(tiny_images.images, training=False)
    for name, out in zip(kept.output_names, outputs, strict=True):
        np.testing.assert_array_equal(out, full[tiny_model.output_names.index(name)])
    assert kept.get_layer("block_3") is tiny_model.get_layer("block_3")  # shared, not copied
    assert models.select_exits(tiny_model, []).output_names == ["final"]


@pytest.mark.parametrize(("exits", "message"), [
    ([6], "is the final classifier"),
    (["final"], "is the final classifier"),
    ([0], "out of range"),
    ([7], "out of range"),
    (["exit_9"], "unknown exit 'exit_9'"),
    ([2, "exit_2"], "given twice"),
    ([2.0], "names or 1-based numbers"),
])
def test_select_exits_rejects_bad_exits(tiny_model, exits, message):
    with pytest.raises(ValueError, match=message):
        models.select_exits(tiny_model, exits)


def test_parse_exits():
    assert models.parse_exits("2, 3,exit_4") == [2, 3, "exit_4"]
    assert models.parse_exits("none") == models.parse_exits("") == []
    with pytest.raises(ValueError, match="comma-separated"):
        models.parse_exits("2,,3")
