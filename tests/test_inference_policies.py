"""The early-exit engine with the max_prob and patience policies gives the NumPy reference's exits.

Patience carries a per-sample state (previous label, run length) through the stages;
the engine splits it with the samples that stay, so it must agree with the reference
that sees all exits of every sample at once.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from numpy.testing import assert_allclose, assert_array_equal

from helpers.calibration import softmax
from helpers.folding import fold_batchnorm
from helpers.inference import EarlyExitEngine
from helpers.policies import first_exit, leave_mask


@pytest.fixture(scope="module")
def model(spread_model) -> keras.Model:
    return spread_model(num_classes=3)


@pytest.fixture(scope="module")
def images(mixed_images) -> np.ndarray:
    return mixed_images(12, 40)


@pytest.fixture(scope="module")
def logits(model, images) -> np.ndarray:
    """Every exit of the network the engines run: the model with its batch norms folded."""
    return np.stack([np.asarray(o) for o in fold_batchnorm(model)(images, training=False)], axis=1)


def check(out: dict, logits: np.ndarray, exit_index: np.ndarray) -> None:
    chosen = logits[np.arange(len(logits)), exit_index]
    assert_array_equal(out["exit"], exit_index + 1)
    assert_array_equal(out["label"], chosen.argmax(-1))
    assert_allclose(out["probabilities"], softmax(chosen), rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def patience_engine(model) -> EarlyExitEngine:
    return EarlyExitEngine(model, "patience")


def test_patience_spreads_the_test_samples(logits, patience_reference):
    used = {int(e) for p in range(1, 7) for e in patience_reference(logits, p)}
    assert len(used) >= 3, f"patience only uses exits {sorted(used)}: the test would not test much"


@pytest.mark.parametrize("batch_size", [1, 7, 52])
@pytest.mark.parametrize("p", [1, 2, 3, 6])
def test_patience_engine_matches_numpy(patience_engine, images, logits, p, batch_size, patience_reference):
    out = patience_engine.predict(images, p, batch_size=batch_size)
    reference = patience_reference(logits, p)
    assert_array_equal(first_exit(leave_mask(logits, p, "patience")), reference)
    check(out, logits, reference)


def test_patience_engine_is_traced_once_and_validates_p(patience_engine, images):
    for p in (1, 2, 4):
        patience_engine(images[:5], p)
    assert patience_engine.early_exit_fn.experimental_get_tracing_count() == 1
    with pytest.raises(ValueError, match="patience must be an integer >= 1"):
        patience_engine.predict(images, 0.5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="patience must be an integer >= 1"):
        patience_engine(images, tf.constant(1.5))


@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.9, 0.99, 1.0])
def test_max_prob_engine_matches_reference(model, images, logits, threshold):
    engine = EarlyExitEngine(model, "max_prob")
    out = engine.predict(images, threshold, batch_size=16)
    confidence = softmax(logits.astype(np.float64)).max(-1)  # (N, E)
    mask = confidence > threshold
    mask[:, -1] = True
    if threshold == 0.0:
        mask[:] = True
    check(out, logits, first_exit(mask))
