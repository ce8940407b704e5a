"""ResNet18 for CIFAR-10 and spatial pyramid pooling: hand-computed values and invariants.

The reference numbers are computed by hand in the tests: SPP outputs on small
arrays, parameter counts of the standard CIFAR ResNet18, MACs layer by layer.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from helpers import cost, resnet
from helpers.inference import EarlyExitEngine
from helpers.layers import SpatialPyramidPooling, _bin_edges
from helpers.policies import first_exit, leave_mask

# ---------------------------------------------------------------------------- SPP


def test_spp_on_a_4x4_map_by_hand():
    # one image, one channel, values 0..15 in row-major order
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    out = np.asarray(SpatialPyramidPooling((1, 2, 4))(x))
    expected = [15]  # 1x1: the global max
    expected += [5, 7, 13, 15]  # 2x2: max of each quadrant, row-major
    expected += list(range(16))  # 4x4: every pixel is its own bin
    assert out.shape == (1, 21)
    assert_array_equal(out[0], expected)


def test_spp_keeps_channels_together_within_a_bin():
    x = np.zeros((2, 4, 4, 3), np.float32)
    x[0, 0, 0] = [1, 2, 3]  # top-left pixel of image 0, three channels
    x[1, 3, 3, 2] = 9  # bottom-right pixel of image 1, channel 2
    out = np.asarray(SpatialPyramidPooling((1, 2))(x))
    assert out.shape == (2, 3 * 5)
    assert_array_equal(out[0], [1, 2, 3, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    assert_array_equal(out[1], [0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9])


def test_spp_bins_overlap_when_the_grid_does_not_divide_the_map():
    assert _bin_edges(4, 2) == [(0, 2), (2, 4)]
    assert _bin_edges(5, 2) == [(0, 3), (2, 5)]  # the middle row is in both bins
    assert _bin_edges(3, 3) == [(0, 1), (1, 2), (2, 3)]
    x = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)
    out = np.asarray(SpatialPyramidPooling((2,))(x))
    # bins rows/cols [0,3) and [2,5): maxima at (2,2)=12, (2,4)=14, (4,2)=22, (4,4)=24
    assert_array_equal(out[0], [12, 14, 22, 24])


def test_spp_macs_count_every_element_of_every_bin():
    inp = keras.Input((8, 8, 6))
    layer = SpatialPyramidPooling((1, 2, 4))
    keras.Model(inp, layer(inp))
    assert layer.count_macs() == 3 * 8 * 8 * 6  # each level tiles the map exactly once


@pytest.mark.parametrize("levels", [(), (0, 1), (-2,)])
def test_spp_rejects_bad_levels(levels):
    with pytest.raises(ValueError, match="positive grid sizes"):
        SpatialPyramidPooling(levels)


def test_spp_rejects_a_map_smaller_than_its_grid():
    with pytest.raises(ValueError, match="at least that many rows"):
        SpatialPyramidPooling((1, 2, 4))(np.zeros((1, 2, 2, 1), np.float32))


def test_spp_serialises_with_the_model(tmp_path):
    inp = keras.Input((4, 4, 2))
    model = keras.Model(inp, keras.layers.Dense(3)(SpatialPyramidPooling((1, 2), name="spp")(inp)))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.get_layer("spp").levels == (1, 2)
    x = np.random.default_rng(0).normal(size=(3, 4, 4, 2)).astype(np.float32)
    assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-6)


# ---------------------------------------------------------------------------- ResNet18


def test_plain_resnet18_has_the_standard_parameter_count():
    # 11 173 962 trainable parameters: the CIFAR ResNet18 of the PyTorch reference
    # implementations (kuangliu/pytorch-cifar) with 10 classes.
    model = resnet.build_resnet18(10)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 11_173_962
    assert model.output_names == ["final"]
    assert [b.output.shape[1:] for b in (model.get_layer(f"block_{i}") for i in range(1, 5))] == [
        (32, 32, 64), (16, 16, 128), (8, 8, 256), (4, 4, 512)
    ]


def _conv(h, w, c_out, k, c_in):
    return h * w * c_out * k * k * c_in


def test_plain_resnet18_macs_by_hand():
    convs = _conv(32, 32, 64, 3, 3)  # stem
    convs += 4 * _conv(32, 32, 64, 3, 64)  # stage 1: two blocks of two convs
    for size, c in ((16, 128), (8, 256), (4, 512)):  # stages 2-4
        convs += _conv(size, size, c, 3, c // 2) + 3 * _conv(size, size, c, 3, c) + _conv(size, size, c, 1, c // 2)
    bn = 5 * 32 * 32 * 64 + 5 * (16 * 16 * 128 + 8 * 8 * 256 + 4 * 4 * 512)  # stem+4 in stage 1; 5 per later stage
    adds = 2 * (32 * 32 * 64 + 16 * 16 * 128 + 8 * 8 * 256 + 4 * 4 * 512)
    expected = convs + bn + adds + 32 * 32 * 3 + 4 * 4 * 512 + 512 * 10  # + normalise, pooling, dense
    assert convs == 555_417_600
    assert cost.plain_macs(resnet.build_resnet18(10)) == expected


def test_exit_heads_cost_by_hand():
    model = resnet.build_resnet18(10, exits_after=(2,), pooling="avg")
    avg = model.get_layer("exit_1")
    assert cost.layer_macs(avg) == 16 * 16 * 128 + 128 * 10  # global average pooling + dense
    model = resnet.build_resnet18(10, exits_after=(2,), pooling="spp")
    spp = model.get_layer("exit_1")
    assert cost.layer_macs(spp) == 3 * 16 * 16 * 128 + 21 * 128 * 10  # three pyramid levels + dense
    costs = cost.exit_costs(model)
    plain = cost.plain_macs(model)
    backbone_to_stage_2 = sum(cost.layer_macs(model.get_layer(n)) for n in ("preprocess", "block_1", "block_2"))
    assert costs[0].cumulative_macs == backbone_to_stage_2 + cost.layer_macs(spp)
    assert costs[-1].cumulative_macs == plain + cost.layer_macs(spp)  # the final exit pays every head


def test_multi_exit_variants_and_width():
    model = resnet.build_resnet18(10, width=0.5, exits_after=(2, 3), pooling="spp")
    assert model.name == "resnet18_3exits_spp"
    assert model.output_names == ["exit_1", "exit_2", "final"]
    assert model.get_layer("block_4").output.shape[-1] == 256
    assert model.get_layer("exit_2").get_layer("spp").output.shape[-1] == 21 * 128
    outs = model(np.zeros((2, 32, 32, 3), np.uint8))
    assert [tuple(o.shape) for o in outs] == [(2, 10)] * 3


def test_cost_fractions_of_the_stages():
    """The exit placement of helpers.experiments rests on these fractions of the plain cost."""
    costs = cost.exit_costs(resnet.build_resnet18(10, width=0.5, exits_after=(1, 2, 3)))
    fractions = [c.relative_cost for c in costs]
    assert fractions == sorted(fractions)
    assert 0.25 < fractions[0] < 0.3 and 0.5 < fractions[1] < 0.55 and 0.74 < fractions[2] < 0.78


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"exits_after": (4,)}, "stages 1, 2 or 3"),
        ({"exits_after": (0,)}, "stages 1, 2 or 3"),
        ({"pooling": "max"}, "unknown pooling"),
        ({"width": 0}, "width must be positive"),
        ({"input_size": 4}, "at least 8"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        resnet.build_resnet18(10, **kwargs)


def test_saved_model_with_spp_heads_reloads(tmp_path):
    keras.utils.set_random_seed(0)
    model = resnet.build_resnet18(10, width=0.125, exits_after=(1, 2), pooling="spp")
    model.save(tmp_path / "r.keras")
    loaded = keras.models.load_model(tmp_path / "r.keras", compile=False)
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    for a, b in zip(loaded(x), model(x), strict=True):
        assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


def test_early_exit_engine_matches_the_reference_on_a_resnet(mixed_images):
    """The engine runs ResNet stages like VGG blocks: same exits and labels as evaluating everything."""
    keras.utils.set_random_seed(0)
    model = resnet.build_resnet18(3, width=0.125, exits_after=(1, 2, 3), pooling="spp")
    for name, scale in zip(model.output_names, (0.3, 1, 3, 10), strict=True):  # spread the confidences
        dense = model.get_layer(name).get_layer("logits")
        kernel, bias = dense.get_weights()
        dense.set_weights([kernel * scale, bias])
    images = mixed_images(10, 34)
    logits = np.stack([np.asarray(o) for o in model(images, training=False)], axis=1)
    engine = EarlyExitEngine(model)
    seen_exits = set()
    for threshold in (0.0, 0.2, 0.5, 0.8, 1.0):
        out = engine.predict(images, threshold, batch_size=16)
        exit_index = first_exit(leave_mask(logits, threshold))
        assert_array_equal(out["exit"], exit_index + 1)
        assert_array_equal(out["label"], logits[np.arange(len(images)), exit_index].argmax(-1))
        seen_exits |= set(out["exit"].tolist())
    assert seen_exits == {1, 2, 3, 4}  # the thresholds sent samples to every exit
