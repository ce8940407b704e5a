"""The early-exit engine gives exactly the reference's exits and predictions, in graph mode.

The reference is ``helpers.evaluation``: evaluate every exit on the whole batch with
``model(x)``, then take the first exit whose rule fires. The engine computes each
stage only for the samples still undecided; both must agree sample by sample.

The model is a tiny VGG11 (32 px, width 1/8) with random weights whose heads' logits
are scaled up, so that the samples' entropies spread and every threshold sends
samples to several different exits (an untrained model is uniformly unsure).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from numpy.testing import assert_allclose, assert_array_equal

from helpers import models
from helpers.calibration import softmax
from helpers.evaluation import evaluate_threshold
from helpers.inference import OUTPUT_KEYS, EarlyExitEngine, build_stages, compute_dtypes, with_precision
from helpers.policies import first_exit, leave_mask, leave_mask_per_exit

THRESHOLDS = (0.0, 0.3, 0.6, 0.9, 1.0)


def all_logits(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """The reference's input: every exit on the whole batch, ``(N, E, K)``."""
    return np.stack([np.asarray(o) for o in model(images, training=False)], axis=1)


@pytest.fixture(scope="module")
def model(spread_model) -> keras.Model:
    return spread_model(num_classes=3)


@pytest.fixture(scope="module")
def images(mixed_images) -> np.ndarray:
    """124 images: 60 synthetic colour-class images and 64 of uniform noise."""
    return mixed_images(20, 64)


@pytest.fixture(scope="module")
def engine(model) -> EarlyExitEngine:
    return EarlyExitEngine(model)


@pytest.fixture(scope="module")
def logits(engine, images) -> np.ndarray:
    """Every exit of the network the engine runs (the model with its batch norms folded)."""
    return all_logits(engine.model, images)


def assert_matches_reference(out: dict, logits: np.ndarray, threshold: float, rule=None) -> None:
    mask = leave_mask(logits, threshold) if rule is None else leave_mask(logits, threshold, rule)
    exit_index = first_exit(mask)
    chosen = logits[np.arange(len(logits)), exit_index]  # (N, K) logits each sample left with
    assert_array_equal(out["exit"], exit_index + 1)
    assert_array_equal(out["label"], chosen.argmax(-1))
    assert_allclose(out["probabilities"], softmax(chosen), rtol=1e-5, atol=1e-6)


def test_the_test_model_uses_several_exits(logits):
    used = set()
    for t in THRESHOLDS:
        used |= set(first_exit(leave_mask(logits, t)).tolist())
    assert len(used) >= 4, f"only exits {sorted(used)} used: the test would not test much"


@pytest.mark.parametrize("batch_size", [1, 7, 64])
@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_matches_reference(engine, images, logits, threshold, batch_size):
    out = engine.predict(images, threshold, batch_size=batch_size)
    assert out["label"].dtype == np.int32 and out["exit"].dtype == np.int32
    assert out["probabilities"].dtype == np.float32
    assert out["probabilities"].shape == (len(images), 3)
    assert_matches_reference(out, logits, threshold)


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_agrees_with_evaluate_threshold(model, engine, images, logits, threshold):
    from helpers.cost import relative_costs

    labels = np.zeros(len(images), dtype=np.int32)
    ref = evaluate_threshold(logits, labels, relative_costs(model), threshold)
    out = engine.predict(images, threshold)
    assert_array_equal(out["exit"] - 1, ref["exit_index"])
    assert_array_equal(out["label"], ref["predictions"])


def test_everyone_leaves_at_exit_1(engine, images, logits):
    out = engine(images, 1.0)  # tau = 1 accepts every sample at the first exit
    assert_array_equal(out["exit"].numpy(), np.ones(len(images)))
    assert_allclose(out["probabilities"].numpy(), softmax(logits[:, 0]), rtol=1e-5, atol=1e-6)
    assert_array_equal(out["label"].numpy(), logits[:, 0].argmax(-1))


def test_nobody_leaves_early(engine, images, logits):
    out = engine(images, 0.0)  # tau = 0: nobody is below, everyone reaches the final classifier
    assert_array_equal(out["exit"].numpy(), np.full(len(images), engine.num_outputs))
    assert_array_equal(out["label"].numpy(), logits[:, -1].argmax(-1))


def test_large_batch(engine, images, logits):
    big = np.concatenate([images] * 17)  # 2108 images in one call
    out = engine(big, 0.6)
    assert_matches_reference({k: v.numpy() for k, v in out.items()}, np.concatenate([logits] * 17), 0.6)


def test_empty_batch(engine):
    out = engine.early_exit_fn(tf.zeros([0, 32, 32, 3], tf.uint8), tf.constant(0.5))
    assert out["label"].shape == (0,) and out["probabilities"].shape == (0, 3)
    empty = engine.predict(np.zeros((0, 32, 32, 3), np.uint8), 0.5)
    assert empty["exit"].shape == (0,) and empty["probabilities"].shape == (0, 3)


def test_no_retracing_across_batch_sizes(model, images):
    engine = EarlyExitEngine(model)
    for n in (1, 7, 64, 124, 3):
        for t in (0.0, 0.6, 1.0):
            engine(images[:n], t)
        engine.full_fn(images[:n])
        engine.all_exits_fn(images[:n])
    assert engine.early_exit_fn.experimental_get_tracing_count() == 1
    assert engine.full_fn.experimental_get_tracing_count() == 1
    assert engine.all_exits_fn.experimental_get_tracing_count() == 1


def test_concrete_functions_compute_what_the_tf_functions_do(model, images):
    engine = EarlyExitEngine(model)
    t = tf.constant(0.6)
    for n in (1, 7, 124):
        x = tf.constant(images[:n])
        via_fn, via_concrete = engine.early_exit_fn(x, t), engine.concrete("early_exit")(x, t)
        assert set(via_concrete) == set(OUTPUT_KEYS)
        for k in OUTPUT_KEYS:
            assert_array_equal(via_concrete[k].numpy(), via_fn[k].numpy())
        assert_array_equal(engine.concrete("full")(x).numpy(), engine.full_fn(x).numpy())
        assert_array_equal(engine.concrete("all_exits")(x).numpy(), engine.all_exits_fn(x).numpy())
    assert engine.concrete("full") is engine.concrete("full")  # traced once, kept
    assert engine.early_exit_fn.experimental_get_tracing_count() == 1
    with pytest.raises(ValueError, match="unknown variant 'plain'"):
        engine.concrete("plain")


def test_full_and_all_exits_match_the_model(engine, images, logits):
    assert_allclose(engine.all_exits_fn(images).numpy(), logits, rtol=1e-5, atol=1e-5)
    assert_allclose(engine.full_fn(images).numpy(), logits[:, -1], rtol=1e-5, atol=1e-5)


def test_logits_up_to_stops_after_the_output_asked_for(engine, images, logits):
    x = tf.convert_to_tensor(images[:5])
    for last in range(engine.num_outputs):
        got = engine.logits_up_to(x, last).numpy()
        assert got.shape == (5, last + 1, engine.num_classes)
        np.testing.assert_allclose(got, logits[:5, : last + 1], rtol=1e-5, atol=1e-5)
    for bad in (-1, engine.num_outputs):
        with pytest.raises(ValueError, match="output index"):
            engine.logits_up_to(x, bad)


def max_probability_exit(logits, threshold):
    """A custom rule: leave when the top class probability reaches ``threshold``."""
    return tf.reduce_max(tf.nn.softmax(logits, axis=-1), axis=-1) >= threshold


@pytest.mark.parametrize("threshold", [0.5, 0.9, 0.99])
def test_custom_rule_is_honoured(model, images, logits, threshold):
    engine = EarlyExitEngine(model, rule=max_probability_exit)
    out = engine.predict(images, threshold, batch_size=32)
    assert_matches_reference(out, logits, threshold, rule=max_probability_exit)
    default = EarlyExitEngine(model).predict(images, threshold, batch_size=32)
    assert not np.array_equal(out["exit"], default["exit"]), "the custom rule made no difference"


def test_custom_rules_that_never_or_always_fire(model, images):
    never = EarlyExitEngine(model, rule=lambda z, t: tf.zeros(tf.shape(z)[:1], tf.bool))
    always = EarlyExitEngine(model, rule=lambda z, t: tf.ones(tf.shape(z)[:1], tf.bool))
    assert (never.predict(images, 0.5)["exit"] == never.num_outputs).all()
    assert (always.predict(images, 0.5)["exit"] == 1).all()


def test_threshold_is_validated(engine, images):
    with pytest.raises(ValueError, match=r"threshold must be a number in \[0, 1\]"):
        engine(images, 1.5)
    with pytest.raises(ValueError, match="threshold"):
        engine.predict(images, float("nan"))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"threshold must be a number in \[0, 1\]"):
        engine(images, tf.constant(-0.1))


PER_EXIT = [(0.9, 0.0, 0.6, 0.3, 0.0), (0.0, 0.0, 0.0, 0.0, 0.9), (0.3, 0.6, 0.9, 1.0, 0.5)]


@pytest.mark.parametrize("thresholds", PER_EXIT)
@pytest.mark.parametrize("batch_size", [1, 64])
def test_per_exit_thresholds_match_the_reference(model, engine, images, logits, thresholds, batch_size):
    from helpers.budget import evaluate_per_exit
    from helpers.cost import relative_costs

    out = engine.predict(images, list(thresholds), batch_size=batch_size)
    exit_index = first_exit(leave_mask_per_exit(logits, thresholds))
    assert_array_equal(out["exit"], exit_index + 1)
    assert len(np.unique(out["exit"])) >= 2, "every sample at one exit: the case would test little"
    chosen = logits[np.arange(len(images)), exit_index]
    assert_array_equal(out["label"], chosen.argmax(-1))
    assert_allclose(out["probabilities"], softmax(chosen), rtol=1e-5, atol=1e-6)
    ref = evaluate_per_exit(logits, np.zeros(len(images), np.int32), relative_costs(model), thresholds)
    assert_array_equal(out["exit"] - 1, ref["exit_index"])
    for j, t in enumerate(thresholds):  # a threshold of 0 closes its exit: nobody leaves there
        if t == 0.0:
            assert not (out["exit"] == j + 1).any()
    assert engine.early_exit_per_exit_fn.experimental_get_tracing_count() <= 1  # one trace for every batch size


def test_equal_per_exit_thresholds_are_the_single_threshold(engine, images):
    for t in (0.3, 0.6):
        single, per_exit = engine.predict(images, t), engine.predict(images, [t] * (engine.num_outputs - 1))
        for k in OUTPUT_KEYS:
            assert_array_equal(per_exit[k], single[k])
    out = engine(images, tf.constant([0.6] * (engine.num_outputs - 1)))  # a tensor picks the function by its shape
    assert_array_equal(out["exit"].numpy(), engine.predict(images, 0.6)["exit"])


def test_per_exit_thresholds_are_validated(model, engine, images):
    early = engine.num_outputs - 1
    with pytest.raises(ValueError, match=rf"need one threshold per early exit \({early}, for exit_1, "):
        engine.predict(images, [0.5] * (early + 1))
    with pytest.raises(ValueError, match="one threshold per early exit"):
        engine(images, [[0.5] * early])
    with pytest.raises(ValueError, match=r"threshold must be a number in \[0, 1\]"):
        engine.predict(images, [0.5] * (early - 1) + [1.5])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"threshold must be a number in \[0, 1\]"):
        engine(images, tf.constant([0.5] * (early - 1) + [-0.1]))
    with pytest.raises(ValueError, match="need a stateless rule"):
        EarlyExitEngine(model, rule="patience").predict(images, [2] * early)


def test_images_are_validated(engine, images):
    with pytest.raises(ValueError, match=r"uint8 \[N, 32, 32, 3\]"):
        engine.predict(images.astype(np.float32), 0.5)
    with pytest.raises(ValueError, match=r"uint8 \[N, 32, 32, 3\]"):
        engine.predict(np.zeros((2, 64, 64, 3), np.uint8), 0.5)


def test_exits_after_some_blocks_only(images, spread_model):
    model = spread_model(3, exits_after=(2, 3), scales=(40, 120, 300), seed=3)
    preprocess, stages = build_stages(model)
    assert [s.exit_name for s in stages] == ["exit_1", "exit_2", "final"]
    assert [[b.name for b in s.blocks] for s in stages] == [["block_1", "block_2"], ["block_3"], ["block_4", "block_5"]]
    engine = EarlyExitEngine(model)
    logits = all_logits(engine.model, images)
    for t in THRESHOLDS:
        assert_matches_reference(engine.predict(images, t, batch_size=50), logits, t)


def test_plain_network(images):
    keras.utils.set_random_seed(0)
    model = models.build_vgg11(3, 32, 0.125, head=None)
    engine = EarlyExitEngine(model)
    out = engine.predict(images, 0.9)
    assert (out["exit"] == 1).all()
    assert_array_equal(out["label"], np.asarray(model(images)).argmax(-1))


def test_rejects_models_without_the_named_structure():
    inputs = keras.Input((32, 32, 3), dtype="uint8")
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs)))
    with pytest.raises(ValueError, match="preprocess"):
        EarlyExitEngine(keras.Model(inputs, outputs))


def test_mixed_bfloat16_really_runs_in_bfloat16(model, images):
    mixed = with_precision(model, "mixed_bfloat16")
    dtypes = compute_dtypes(mixed)
    assert dtypes["bfloat16"] > dtypes["float32"]  # only the heads' logits layers stay float32
    assert dtypes["float32"] == len(models.output_names(model))
    assert compute_dtypes(model) == {"float32": sum(dtypes.values())}
    engine = EarlyExitEngine(mixed)
    assert engine.full_fn(images[:2]).dtype == tf.float32
    logits = all_logits(mixed, images)
    for t in (0.0, 0.6, 0.9, 1.0):
        out = engine.predict(images, t, batch_size=16)
        mask = leave_mask(logits, t)
        agree = (out["exit"] - 1 == first_exit(mask)).mean()
        assert agree >= 0.98, f"only {agree:.1%} of the exits agree at tau={t}"


def test_precision_round_trip_keeps_the_weights(model, images):
    back = with_precision(with_precision(model, "mixed_bfloat16"), "float32")
    assert with_precision(model, "float32") is model
    assert_allclose(all_logits(back, images), all_logits(model, images), rtol=1e-6, atol=1e-6)


def test_results_come_back_in_input_order(engine, images):
    """Shuffling the batch shuffles the results the same way: nothing is mixed up by the stitching."""
    order = np.random.default_rng(5).permutation(len(images))
    for t in (0.3, 0.6, 0.9):
        out = engine.predict(images, t, batch_size=len(images))
        shuffled = engine.predict(images[order], t, batch_size=len(images))
        for key in ("label", "exit"):
            assert_array_equal(shuffled[key], out[key][order])
        # float32 rounding depends on where an image sits in its sub-batch (seen up to 3e-6
        # relative in CI); a mixed-up row would differ by far more
        assert_allclose(shuffled["probabilities"], out["probabilities"][order], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("keep", [[2, 4], ["exit_1", "exit_5"], [3]])
def test_a_subset_of_exits_matches_the_reference_on_those_exits(model, images, keep):
    # Removing heads (models.select_exits) gives the reference computed on the kept exits'
    # logits alone: the engine's exit numbers count the kept outputs.
    kept = models.select_exits(model, keep)
    engine = EarlyExitEngine(kept)
    assert engine.exit_names == kept.output_names
    columns = [model.output_names.index(n) for n in kept.output_names]
    logits = all_logits(EarlyExitEngine(model).model, images)[:, columns]
    assert_allclose(engine.all_exits_fn(images).numpy(), logits, rtol=1e-5, atol=1e-5)
    for t in THRESHOLDS:
        assert_matches_reference(engine.predict(images, t, batch_size=50), logits, t)
    per_exit = [0.3, 0.6, 0.9][: len(keep)]
    out = engine.predict(images, per_exit, batch_size=50)
    assert_array_equal(out["exit"], first_exit(leave_mask_per_exit(logits, per_exit)) + 1)
