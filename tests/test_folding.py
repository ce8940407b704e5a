"""Folding batch norms into convolutions keeps the function and removes exactly the foldable norms.

The reference is the unfolded Keras model itself. Every test first gives each batch
normalisation statistics far from the identity (a freshly built network has mean 0,
variance 1, gamma 1, beta 0, for which a wrong fold would still look right).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from numpy.testing import assert_allclose

from helpers import models
from helpers.folding import fold_batchnorm
from helpers.inference import EarlyExitEngine, compute_dtypes, with_precision
from helpers.resnet import build_resnet18


def leaves(model: keras.Model) -> list[keras.layers.Layer]:
    out = []
    for layer in model.layers:
        out.extend(leaves(layer) if isinstance(layer, keras.Model) else [layer])
    return out


def count(model: keras.Model, kind: type) -> int:
    return sum(isinstance(layer, kind) for layer in leaves(model))


def randomise_norms(model: keras.Model, seed: int = 0) -> keras.Model:
    """Give every batch norm (and conv bias) values that a trained network could have."""
    rng = np.random.default_rng(seed)
    for layer in leaves(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.moving_mean.shape[0]
            layer.gamma.assign(rng.uniform(-2, 2, c))  # negative scales too
            layer.beta.assign(rng.normal(0, 1, c))
            layer.moving_mean.assign(rng.normal(0, 0.5, c))
            layer.moving_variance.assign(rng.uniform(0.05, 4, c))
        elif isinstance(layer, keras.layers.Conv2D) and layer.use_bias:
            layer.bias.assign(rng.normal(0, 0.3, layer.bias.shape))
    return model


def outputs(model: keras.Model, x: np.ndarray) -> list[np.ndarray]:
    out = model(x, training=False)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def assert_same_function(original: keras.Model, folded: keras.Model, x: np.ndarray) -> None:
    for a, b in zip(outputs(original, x), outputs(folded, x), strict=True):
        assert_allclose(b, a, rtol=1e-4, atol=1e-4 * np.abs(a).max())


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)


@pytest.mark.parametrize("head", ["strided", "conv", "pool"])
def test_vgg11_folds_every_norm_and_keeps_its_outputs(images, head):
    model = randomise_norms(models.build_vgg11(3, 32, 0.125, head=head))
    folded = fold_batchnorm(model)
    assert count(model, keras.layers.BatchNormalization) >= 8
    assert count(folded, keras.layers.BatchNormalization) == 0
    assert count(folded, keras.layers.Conv2D) == count(model, keras.layers.Conv2D)
    assert [layer.name for layer in folded.layers] == [layer.name for layer in model.layers]
    assert folded.output_names == model.output_names
    assert_same_function(model, folded, images)
    assert count(model, keras.layers.BatchNormalization) > 0, "the original is left alone"


def test_resnet18_folds_every_norm_across_its_residual_branches(images):
    model = randomise_norms(build_resnet18(10, 32, 0.25, exits_after=(2, 3)), seed=1)
    folded = fold_batchnorm(model)
    assert count(model, keras.layers.BatchNormalization) >= 20
    assert count(folded, keras.layers.BatchNormalization) == 0  # each follows its own convolution
    assert_same_function(model, folded, images)


def test_folded_weights_by_hand():
    """One 1x1 convolution, one channel: the folded kernel and bias are the textbook formula."""
    inputs = keras.Input((2, 2, 1))
    x = keras.layers.Conv2D(1, 1, use_bias=True, name="conv")(inputs)
    model = keras.Model(inputs, keras.layers.BatchNormalization(epsilon=0.0, name="bn")(x))
    model.get_layer("conv").set_weights([np.full((1, 1, 1, 1), 3.0), np.array([1.0])])
    model.get_layer("bn").set_weights([np.array([2.0]), np.array([0.5]), np.array([4.0]), np.array([16.0])])
    folded = fold_batchnorm(model)
    kernel, bias = folded.get_layer("conv").get_weights()
    # y = 2 * (3x + 1 - 4) / sqrt(16) + 0.5 = 1.5x - 1
    assert kernel.item() == pytest.approx(1.5) and bias.item() == pytest.approx(-1.0)
    assert [layer.name for layer in folded.layers] == [model.layers[0].name, "conv"]


def test_norms_that_cannot_be_folded_stay():
    inputs = keras.Input((8, 8, 3))
    shared = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="shared")(inputs)
    a = keras.layers.BatchNormalization(name="bn_shared")(shared)  # its conv is also read by b
    b = keras.layers.ReLU(name="relu")(shared)
    activated = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="activated")(inputs)
    c = keras.layers.BatchNormalization(name="bn_after_relu")(activated)  # its conv applies an activation
    d = keras.layers.BatchNormalization(axis=1, name="bn_rows")(
        keras.layers.Conv2D(4, 3, padding="same", name="rows")(inputs))  # normalises rows, not channels
    e = keras.layers.BatchNormalization(name="bn_dense")(keras.layers.Dense(4, name="dense")(inputs))
    f = keras.layers.BatchNormalization(name="bn_ok")(keras.layers.Conv2D(4, 3, padding="same", name="ok")(inputs))
    model = randomise_norms(keras.Model(inputs, keras.layers.Concatenate()([a, b, c, d, e, f])), seed=2)
    folded = fold_batchnorm(model)
    kept = {layer.name for layer in folded.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert kept == {"bn_shared", "bn_after_relu", "bn_rows", "bn_dense"}
    assert folded.get_layer("ok").use_bias
    assert_same_function(model, folded, np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32"))


def test_a_model_without_norms_is_returned_as_is():
    model = models.build_vgg11(3, 32, 0.125)
    once = fold_batchnorm(model)
    assert fold_batchnorm(once) is once


def test_mixed_precision_policies_survive(images):
    mixed = with_precision(randomise_norms(models.build_vgg11(3, 32, 0.125, head="strided")), "mixed_bfloat16")
    folded = fold_batchnorm(mixed)
    before, after = compute_dtypes(mixed), compute_dtypes(folded)
    assert after["float32"] == before["float32"]  # the heads' logits layers
    assert after["bfloat16"] == before["bfloat16"] - count(mixed, keras.layers.BatchNormalization)
    for a, b in zip(outputs(mixed, images), outputs(folded, images), strict=True):
        assert np.mean(a.argmax(-1) == b.argmax(-1)) >= 0.8  # bfloat16 rounds the two differently


def test_the_engine_folds_unless_told_not_to(images):
    model = randomise_norms(models.build_vgg11(3, 32, 0.125, head="strided"))
    engine = EarlyExitEngine(model)
    assert count(engine.model, keras.layers.BatchNormalization) == 0
    assert_allclose(engine.full_fn(images).numpy(), outputs(model, images)[-1], rtol=1e-4, atol=1e-3)
    assert EarlyExitEngine(model, fold_batchnorm=False).model is model
