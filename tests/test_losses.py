"""Tests of helpers.losses: loss weights, the compiled joint loss against a NumPy reference."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import data, losses, models

NAMES = ["exit_1", "exit_2", "final"]


# --------------------------------------------------------------------------- exit_loss_weights


def test_weights_from_one_lambda():
    assert losses.exit_loss_weights(NAMES, 0.3) == {"exit_1": 0.3, "exit_2": 0.3, "final": 1.0}
    assert losses.exit_loss_weights(NAMES, 1) == {"exit_1": 1.0, "exit_2": 1.0, "final": 1.0}
    assert losses.exit_loss_weights(NAMES, np.float32(0.5))["exit_2"] == 0.5


def test_weights_one_per_early_exit():
    assert losses.exit_loss_weights(NAMES, [0.2, 0.5]) == {"exit_1": 0.2, "exit_2": 0.5, "final": 1.0}


def test_weights_one_per_output():
    assert losses.exit_loss_weights(NAMES, (0.2, 0.5, 0.7)) == {"exit_1": 0.2, "exit_2": 0.5, "final": 0.7}
    # Two outputs, as in [0.3, 0.7]: the list is per output, not per early exit.
    assert losses.exit_loss_weights(["exit_1", "final"], [0.3, 0.7]) == {"exit_1": 0.3, "final": 0.7}


def test_weights_from_mapping_follow_output_order():
    result = losses.exit_loss_weights(NAMES, {"final": 2, "exit_2": 0.1, "exit_1": 0})
    assert list(result) == NAMES
    assert result == {"exit_1": 0.0, "exit_2": 0.1, "final": 2.0}


def test_weights_for_a_plain_model():
    assert losses.exit_loss_weights(["final"], ()) == {"final": 1.0}
    assert losses.exit_loss_weights(["final"], 0.3) == {"final": 1.0}  # lambda only touches early exits


@pytest.mark.parametrize("weights", [[1.0], [1.0] * 4])
def test_weights_wrong_length(weights):
    with pytest.raises(ValueError) as err:
        losses.exit_loss_weights(NAMES, weights)
    message = str(err.value)
    assert f"got {len(weights)} loss weights" in message
    assert "give 2 (one per early exit, final weight 1) or 3 (one per output)" in message


@pytest.mark.parametrize(
    "weights", [-0.1, [0.2, -1.0], [0.2, float("nan")], [0.2, 0.2, math.inf], {"exit_1": 1, "exit_2": -2, "final": 1}]
)
def test_weights_must_be_finite_and_non_negative(weights):
    with pytest.raises(ValueError, match="finite and non-negative"):
        losses.exit_loss_weights(NAMES, weights)


@pytest.mark.parametrize(
    "weights",
    [{"exit_1": 1, "exit_2": 1, "final": 1, "exit_9": 1}, {"exit_1": 1, "final": 1}, {"exit1": 1, "exit_2": 1, "final": 1}],
)
def test_weights_mapping_must_name_every_output(weights):
    with pytest.raises(ValueError, match=r"must name every output exactly.*outputs are \['exit_1', 'exit_2', 'final'\]"):
        losses.exit_loss_weights(NAMES, weights)


# --------------------------------------------------------------------------- joint_cross_entropy


def test_joint_cross_entropy_hand_value():
    # Two samples, K = 2. Uniform logits: CE = log 2 each. Logits [log 3, 0] with label 0: p = 3/4.
    labels = np.array([0, 1])
    uniform = np.zeros((2, 2))
    skewed = np.array([[math.log(3), 0.0], [math.log(3), 0.0]])  # label 1 there: p = 1/4
    ce_skewed = (-math.log(0.75) - math.log(0.25)) / 2
    assert losses.joint_cross_entropy(labels, [uniform, skewed], [0.3, 1.0]) == pytest.approx(
        0.3 * math.log(2) + ce_skewed, rel=1e-12
    )
    # Shifting logits does not change the loss; huge logits do not overflow.
    assert losses.joint_cross_entropy(labels, [skewed + 1000.0], {"final": 1.0}) == pytest.approx(ce_skewed)


# --------------------------------------------------------------------------- compiled models


@pytest.fixture
def tiny_data() -> data.ImageSet:
    return data.synthetic_images(n_per_class=6, num_classes=3, image_size=32, seed=3)


@pytest.mark.parametrize("weights", [[0.3] * 5 + [1.0], [1.0] * 6, 0.3])
def test_compiled_loss_matches_the_reference(tiny_model, tiny_data, weights):
    used = losses.compile_multi_exit(tiny_model, weights)
    names = models.output_names(tiny_model)
    assert list(used) == names
    # Batches of 7 for 18 images (7, 7, 4): Keras must weight the last, smaller batch by its size.
    ds = data.make_dataset(tiny_data, batch_size=7, output_names=names)
    result = tiny_model.evaluate(ds, return_dict=True, verbose=0)

    logits = tiny_model.predict(tiny_data.images, verbose=0)
    expected = losses.joint_cross_entropy(tiny_data.labels, logits, used)
    assert result["loss"] == pytest.approx(expected, rel=1e-4)
    # One accuracy per exit, equal to the accuracy of that exit's logits.
    for name, z in zip(names, logits, strict=True):
        accuracy = float((z.argmax(-1) == tiny_data.labels).mean())
        assert result[f"{name}_accuracy"] == pytest.approx(accuracy, abs=1e-6)


def test_compiled_loss_weights_matter(tiny_model, tiny_data):
    names = models.output_names(tiny_model)
    ds = data.make_dataset(tiny_data, batch_size=64, output_names=names)
    losses.compile_multi_exit(tiny_model, 1.0)
    all_one = tiny_model.evaluate(ds, return_dict=True, verbose=0)["loss"]
    losses.compile_multi_exit(tiny_model, 0.0)
    final_only = tiny_model.evaluate(ds, return_dict=True, verbose=0)["loss"]
    logits = tiny_model.predict(tiny_data.images, verbose=0)
    assert final_only == pytest.approx(
        losses.joint_cross_entropy(tiny_data.labels, logits[-1:], [1.0]), rel=1e-4
    )
    assert all_one > final_only  # five more positive cross-entropies


def test_plain_model_compiles_and_logs_final_accuracy(tiny_data):
    model = models.build_vgg11(3, 32, 0.125, head=None)
    assert losses.compile_multi_exit(model, ()) == {"final": 1.0}
    ds = data.make_dataset(tiny_data, batch_size=64, output_names=model.output_names)
    result = model.evaluate(ds, return_dict=True, verbose=0)
    logits = model.predict(tiny_data.images, verbose=0)
    assert set(result) >= {"loss", "final_accuracy"}
    assert result["loss"] == pytest.approx(losses.joint_cross_entropy(tiny_data.labels, [logits], [1.0]), rel=1e-4)
    assert result["final_accuracy"] == pytest.approx(float((logits.argmax(-1) == tiny_data.labels).mean()))


# --------------------------------------------------------------------------- self-distillation


def test_distillation_loss_hand_value():
    # K = 2. Teacher p = [3/4, 1/4], student uniform: KL = 3/4 log(3/2) + 1/4 log(1/2).
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    teacher = np.array([[math.log(3), 0.0]])
    student = np.zeros((1, 2))
    assert losses.distillation_loss(student, teacher, 1.0) == pytest.approx(kl, rel=1e-12)
    # At T = 2 the teacher logits must be twice as far apart for the same p; the loss is T^2 KL.
    assert losses.distillation_loss(student, 2 * teacher, 2.0) == pytest.approx(4 * kl, rel=1e-12)
    # A student that agrees with its teacher has nothing to learn, at any shift of its logits.
    assert losses.distillation_loss(teacher + 5.0, teacher, 3.0) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_keras_distillation_loss_matches_the_reference(rng, temperature):
    student, teacher = rng.normal(0, 3, (2, 8, 5)).astype("float32")
    loss = losses.SelfDistillationLoss(temperature)
    value = float(loss(np.zeros(8, "int32"), np.concatenate([student, teacher], axis=1)))
    assert value == pytest.approx(losses.distillation_loss(student, teacher, temperature), rel=1e-5)
    assert value > 0
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, losses.SelfDistillationLoss) and again.temperature == temperature


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan")])
def test_distillation_temperature_must_be_positive(temperature):
    with pytest.raises(ValueError, match="temperature must be positive"):
        losses.SelfDistillationLoss(temperature)


def test_self_distilling_twin_shares_the_model_and_carries_exit_and_final_logits(tiny_model, tiny_data):
    twin = losses.self_distilling(tiny_model)
    names = models.output_names(tiny_model)
    assert list(twin.output_names) == names + [f"{n}_distill" for n in names[:-1]]
    assert {id(v) for v in twin.trainable_variables} == {id(v) for v in tiny_model.trainable_variables}
    logits = tiny_model.predict(tiny_data.images, verbose=0)
    outputs = twin.predict(tiny_data.images, verbose=0)
    for got, want in zip(outputs[:6], logits, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    for e, got in enumerate(outputs[6:]):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, np.concatenate([logits[e], logits[-1]], axis=1), rtol=1e-6)


def test_the_teacher_gets_no_gradient_from_distillation(tiny_model, tiny_data):
    twin = losses.self_distilling(tiny_model)
    loss = losses.SelfDistillationLoss(3.0)
    with tf.GradientTape() as tape:
        outputs = twin({"images": tiny_data.images}, training=False)
        total = sum(loss(tiny_data.labels, z) for z in outputs[6:])
    final_vars = tiny_model.get_layer("final").trainable_variables
    exit_vars = tiny_model.get_layer("exit_1").trainable_variables
    grads = tape.gradient(total, final_vars + exit_vars)
    assert all(g is None or not np.any(g.numpy()) for g in grads[: len(final_vars)])
    assert all(g is not None and np.any(g.numpy()) for g in grads[len(final_vars):])


def test_compiled_twin_adds_the_weighted_distillation_to_the_joint_loss(tiny_model, tiny_data):
    twin = losses.self_distilling(tiny_model)
    used = losses.compile_multi_exit(twin, 0.5, distill_weight=0.7, temperature=2.0)
    names = models.output_names(tiny_model)
    assert list(used) == names  # the exits' weights; the distillation terms are not exits
    ds = data.make_dataset(tiny_data, batch_size=7, output_names=twin.output_names)
    result = twin.evaluate(ds, return_dict=True, verbose=0)
    logits = tiny_model.predict(tiny_data.images, verbose=0)
    expected = losses.joint_cross_entropy(tiny_data.labels, logits, used) + 0.7 * sum(
        losses.distillation_loss(z, logits[-1], 2.0) for z in logits[:-1]
    )
    assert result["loss"] == pytest.approx(expected, rel=1e-4)
    # Keras logs each term unweighted (and averages it over batches: one batch here).
    one_batch = twin.evaluate(data.make_dataset(tiny_data, 64, output_names=twin.output_names), return_dict=True, verbose=0)
    kd = losses.distillation_loss(logits[0], logits[-1], 2.0)
    assert one_batch["exit_1_distill_loss"] == pytest.approx(kd, rel=1e-4)
    assert "exit_1_distill_accuracy" not in result


def test_distillation_needs_the_twin_and_early_exits(tiny_model):
    with pytest.raises(ValueError, match=r"compile helpers.losses.self_distilling\(model\) instead"):
        losses.compile_multi_exit(tiny_model, 1.0, distill_weight=1.0)
    with pytest.raises(ValueError, match="distillation weight must be finite and non-negative"):
        losses.compile_multi_exit(losses.self_distilling(tiny_model), 1.0, distill_weight=-1.0)
    with pytest.raises(ValueError, match="self-distillation needs early exits"):
        losses.self_distilling(models.build_vgg11(3, 32, 0.125, head=None))


@pytest.mark.parametrize("plain", [False, True])
def test_soft_label_loss_on_one_hot_labels_equals_the_sparse_loss(tiny_data, plain):
    model = models.build_vgg11(3, 32, 0.125, head=None) if plain else models.build_vgg11(3, 32, 0.125)
    names = models.output_names(model)
    used = losses.compile_multi_exit(model, () if plain else 0.3, soft_labels=True)
    ds = data.make_dataset(tiny_data, batch_size=7, output_names=names, num_classes=3)
    result = model.evaluate(ds, return_dict=True, verbose=0)
    logits = model.predict(tiny_data.images, verbose=0)
    logits = [logits] if plain else logits
    assert result["loss"] == pytest.approx(losses.joint_cross_entropy(tiny_data.labels, logits, used), rel=1e-4)
    final = float((logits[-1].argmax(-1) == tiny_data.labels).mean())
    assert result["final_accuracy"] == pytest.approx(final, abs=1e-6)


def test_soft_label_loss_is_the_mixture_of_the_two_losses(tiny_data):
    # Cross-entropy is linear in the label: a 30/70 label costs 0.3 CE(a) + 0.7 CE(b).
    model = models.build_vgg11(3, 32, 0.125, head=None)
    losses.compile_multi_exit(model, (), soft_labels=True)
    a, b = np.eye(3)[tiny_data.labels], np.eye(3)[(tiny_data.labels + 1) % 3]
    mixed = model.evaluate(tiny_data.images, 0.3 * a + 0.7 * b, batch_size=64, verbose=0, return_dict=True)["loss"]
    logits = model.predict(tiny_data.images, verbose=0)
    expected = 0.3 * losses.joint_cross_entropy(tiny_data.labels, [logits], [1.0])
    expected += 0.7 * losses.joint_cross_entropy((tiny_data.labels + 1) % 3, [logits], [1.0])
    assert mixed == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("plain", [False, True])
def test_label_smoothing_mixes_the_uniform_label_into_every_exit(tiny_data, plain):
    # Smoothing eps turns a one-hot label into (1 - eps) one-hot + eps / K everywhere, and
    # cross-entropy is linear in the label: the loss is (1 - eps) CE(y) + eps / K sum_k CE(k).
    model = models.build_vgg11(3, 32, 0.125, head=None) if plain else models.build_vgg11(3, 32, 0.125)
    names = models.output_names(model)
    eps, k = 0.2, 3
    for weight in model.weights:  # a fresh model's logits are near uniform, where smoothing changes little
        if weight.path.endswith("bias") and tuple(weight.shape) == (k,):
            weight.assign([4.0, 0.0, -4.0])
    used = losses.compile_multi_exit(model, () if plain else 0.3, soft_labels=True, label_smoothing=eps)
    # Unbalanced labels: with balanced ones and equal logits, the smoothed loss would equal the hard one.
    labels = np.minimum(tiny_data.labels, 1)
    one_hot = np.eye(k, dtype="float32")[labels]
    y = one_hot if plain else {n: one_hot for n in names}
    result = model.evaluate(tiny_data.images, y, batch_size=7, return_dict=True, verbose=0)
    logits = model.predict(tiny_data.images, verbose=0)
    logits = [logits] if plain else logits
    hard = losses.joint_cross_entropy(labels, logits, used)
    expected = (1 - eps) * hard
    for c in range(k):
        expected += eps / k * losses.joint_cross_entropy(np.full_like(labels, c), logits, used)
    assert result["loss"] == pytest.approx(expected, rel=1e-4)
    assert result["loss"] != pytest.approx(hard, rel=1e-2)
    # Accuracy still counts the label's class, smoothing or not.
    final = float((logits[-1].argmax(-1) == labels).mean())
    assert result["final_accuracy"] == pytest.approx(final, abs=1e-6)


def test_label_smoothing_is_checked(tiny_model):
    with pytest.raises(ValueError, match="label smoothing needs soft_labels=True"):
        losses.compile_multi_exit(tiny_model, 1.0, label_smoothing=0.1)
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"label smoothing must be in \[0, 1\)"):
            losses.compile_multi_exit(tiny_model, 1.0, soft_labels=True, label_smoothing=bad)
