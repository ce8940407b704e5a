"""CIFAR-10 data: the .npz and tfds sources, the crop-and-flip augmentation, the splits,
training a ResNet18 experiment, and evaluating it with --data-npz."""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from helpers import data, evaluate, evaluation, experiments, registry, train
from helpers.layers import SpatialPyramidPooling


def _write_npz(path, n_train_per_class=6, n_test_per_class=2, size=32, classes=10):
    train_set = data.synthetic_images(n_train_per_class, classes, size, seed=0)
    test_set = data.synthetic_images(n_test_per_class, classes, size, seed=1)
    np.savez(path, x_train=train_set.images, y_train=train_set.labels[:, None],  # (N, 1) as keras returns it
             x_test=test_set.images, y_test=test_set.labels)
    return path


@pytest.fixture
def cifar_npz(tmp_path):
    return _write_npz(tmp_path / "cifar10.npz")


def test_load_cifar10_from_npz_names_the_classes(cifar_npz):
    train_set, test_set = data.load_cifar10(cifar_npz)
    assert train_set.class_names == data.CIFAR10_CLASSES and len(data.CIFAR10_CLASSES) == 10
    assert train_set.images.shape == (60, 32, 32, 3) and test_set.images.shape == (20, 32, 32, 3)
    assert train_set.labels.ndim == 1 and train_set.class_counts()["truck"] == 6


def test_the_environment_variable_selects_the_npz(cifar_npz, monkeypatch):
    monkeypatch.setenv(data.CIFAR10_ENV, str(cifar_npz))
    train_set, _ = data.load_cifar10()
    assert len(train_set) == 60


def test_tfds_failure_says_how_to_use_a_local_copy(monkeypatch, tmp_path):
    import tensorflow_datasets as tfds

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(tfds, "load", offline)
    monkeypatch.delenv(data.CIFAR10_ENV, raising=False)
    with pytest.raises(data.DataError, match=data.CIFAR10_ENV):
        data.load_cifar10()


def test_crop_flip_takes_a_window_of_the_padded_image_per_image():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (64, 8, 8, 3), dtype=np.uint8)  # no zeros: padding is recognisable
    out = np.asarray(data.crop_flip(images, padding=2, seed=3))
    assert out.shape == images.shape and out.dtype == np.uint8
    padded = np.pad(images, [(0, 0), (2, 2), (2, 2), (0, 0)])
    offsets, flips = set(), 0
    for i in range(len(images)):
        matches = [
            (dy, dx, flip)
            for dy in range(5) for dx in range(5) for flip in (False, True)
            if np.array_equal(out[i], (lambda w: w[:, ::-1] if flip else w)(padded[i, dy:dy + 8, dx:dx + 8]))
        ]
        assert matches, f"image {i} is not a (flipped) window of its padded original"
        dy, dx, flip = matches[0]
        offsets.add((dy, dx))
        flips += flip
    assert len(offsets) > 10  # each image has its own offset
    assert 10 < flips < 54  # about half are flipped


def test_make_dataset_rejects_an_unknown_augmentation(tiny_images):
    with pytest.raises(ValueError, match="unknown augmentation"):
        data.make_dataset(tiny_images, training=True, augmentation="mixup")


def test_cifar_splits_carve_validation_from_train_and_keep_test(cifar_npz):
    exp = experiments.get_experiment("cifar10-resnet18-plain")
    exp = dataclasses.replace(exp, val_fraction=0.5)
    splits = train.prepare_splits(exp, npz=cifar_npz)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (30, 30, 20)
    assert set(splits.val.class_counts().values()) == {3}  # stratified
    assert not set(splits.train.ids) & set(splits.val.ids)
    assert all(i.startswith("test/") for i in splits.test.ids)
    assert splits.fingerprint() == train.prepare_splits(exp, npz=cifar_npz).fingerprint()
    with pytest.raises(ValueError, match="not both"):
        train.prepare_splits(exp, source="tfds", npz=cifar_npz)


def test_the_five_cifar_experiments():
    names = [n for n in experiments.names() if n.startswith("cifar10-")]
    assert names == [
        "cifar10-resnet18-plain", "cifar10-resnet18-2exits-avg", "cifar10-resnet18-2exits-spp",
        "cifar10-resnet18-3exits-avg", "cifar10-resnet18-3exits-spp",
    ]
    budgets = {(e.epochs, e.width, e.batch_size, e.learning_rate) for e in map(experiments.get_experiment, names)}
    assert len(budgets) == 1  # compared on equal budget
    two = experiments.get_experiment("cifar10-resnet18-2exits-avg")
    three = experiments.get_experiment("cifar10-resnet18-3exits-spp")
    assert two.loss_weights == (0.3, 0.7) and three.loss_weights == (0.2, 0.3, 0.5)
    model = dataclasses.replace(three, width=0.125).build_model(10)
    assert model.output_names == ["exit_1", "exit_2", "final"]
    spp = model.get_layer("exit_1").get_layer("spp")  # get_layer raises for a missing name
    assert isinstance(spp, SpatialPyramidPooling) and spp.levels == (1, 2, 4)
    avg = dataclasses.replace(two, width=0.125).build_model(10)
    assert not any(isinstance(layer, SpatialPyramidPooling) for layer in avg.get_layer("exit_1").layers)


def test_train_a_resnet_publish_it_and_evaluate_it_on_the_npz(cifar_npz, tmp_path, monkeypatch, capsys):
    exp = dataclasses.replace(experiments.get_experiment("cifar10-resnet18-2exits-spp"), width=0.125, epochs=1)
    run = train.train(exp, tmp_path / "run", npz=cifar_npz, quick=True, verbose=0)
    assert run.config["class_names"] == data.CIFAR10_CLASSES
    loaded = registry.load(tmp_path / "run")  # SpatialPyramidPooling comes back from the file
    assert loaded.model.output_names == ["exit_1", "final"]

    assert evaluate.main([str(tmp_path / "run"), "--data-npz", str(cifar_npz), "--json", "--threshold", "0.5"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 20 and len(result["exit_accuracy"]) == 2
    # the same numbers by hand: the model on x_test, labels from y_test
    with np.load(cifar_npz) as arrays:
        x, y = arrays["x_test"], arrays["y_test"]
    logits = np.stack([np.asarray(o) for o in loaded.model.predict(x, verbose=0)], axis=1)
    assert_array_equal(np.asarray(result["exit_accuracy"]) * len(y), (logits.argmax(-1) == y[:, None]).sum(0))

    # publish: tau* is analyse's choice on the run's own validation split
    monkeypatch.setattr(registry, "MODELS_DIR", tmp_path / "models")
    loads = []
    load_model = keras.models.load_model
    monkeypatch.setattr(keras.models, "load_model", lambda *a, **k: loads.append(a) or load_model(*a, **k))
    assert registry.main(["publish", str(tmp_path / "run"), "--name", "tiny-cifar", "--source", str(cifar_npz)]) == 0
    assert len(loads) == 1  # the model that chose tau* is the one saved
    monkeypatch.setattr(keras.models, "load_model", load_model)
    assert capsys.readouterr().out.startswith(f"published {tmp_path / 'models' / 'tiny-cifar'}")
    config = json.loads((tmp_path / "models" / "tiny-cifar" / "config.json").read_text())
    splits = train.prepare_splits(exp, npz=cifar_npz, quick=True)
    analysis = evaluation.analyse(loaded.model, splits, "x")
    assert config["threshold"] == analysis.threshold
    assert config["threshold_rule"] == evaluation.DEFAULT_THRESHOLD_RULE
    # the other policies' operating thresholds, chosen on the same validation split by the same rule
    assert config["thresholds"] == {"max_prob": analysis.operating_threshold("max_prob"),
                                    "patience": analysis.operating_threshold("patience")}
    assert isinstance(config["thresholds"]["patience"], int)
    assert config["dataset"] == "cifar10" and config["kind"] == "multi-exit (1 early exit)"
    # retune: tau* chosen again by another rule; only config.json changes
    published = tmp_path / "models" / "tiny-cifar"
    before = {p.name: p.read_bytes() for p in published.iterdir()}
    assert registry.main(["retune", "tiny-cifar", "--rule", "cheapest", "--source", str(cifar_npz)]) == 0
    assert capsys.readouterr().out.startswith(f"tiny-cifar: threshold {config['threshold']} -> ")
    after = {p.name: p.read_bytes() for p in published.iterdir()}
    assert {n for n in before if before[n] != after[n]} <= {"config.json"}
    retuned = json.loads(after["config.json"])
    cheapest = evaluation.analyse(loaded.model, splits, "x", rule="cheapest")
    assert retuned["threshold"] == cheapest.threshold
    assert retuned["threshold_rule"] == "cheapest"
    assert retuned["thresholds"] == {p: cheapest.operating_threshold(p) for p in ("max_prob", "patience")}
    assert {k: v for k, v in retuned.items() if not k.startswith("threshold")} == {
        k: v for k, v in config.items() if not k.startswith("threshold")}
    assert registry.main(["retune", str(tmp_path / "run"), "--source", str(cifar_npz)]) == 2  # a run, not published
    assert "not a published reference model" in capsys.readouterr().err
    assert evaluate.main(["--list"]) == 0
    assert capsys.readouterr().out.strip() == "tiny-cifar\tcifar10\tmulti-exit (1 early exit)"
    # another copy of the data is refused: its split is not the one trained on
    other = _write_npz(tmp_path / "other.npz", n_train_per_class=7)
    assert registry.main(["publish", str(tmp_path / "run"), "--source", str(other)]) == 2
    assert "not the one" in capsys.readouterr().err


@pytest.mark.parametrize("contents, message", [
    (None, "does not exist"),
    ({"x_train": np.zeros((2, 32, 32, 3), np.uint8)}, "lacks array"),
    ("folder", "is a folder; expected an .npz file"),
    ("npy", "is a single array, not an .npz"),
    ("text", "is not a readable .npz file"),
])
def test_evaluate_npz_bad_input_is_one_line(tmp_path, tiny_model, contents, message, capsys):
    tiny_model.save(tmp_path / "model.keras")
    path = tmp_path / "bad.npz"
    if contents == "folder":
        path.mkdir()
    elif contents == "npy":
        with open(path, "wb") as f:
            np.save(f, np.zeros((2, 32, 32, 3), np.uint8))
    elif contents == "text":
        path.write_text("x_train, y_train, x_test, y_test\n")
    elif contents is not None:
        np.savez(path, **contents)
    assert evaluate.main([str(tmp_path / "model.keras"), "--data-npz", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_evaluate_needs_exactly_one_source_of_images(tiny_model, tmp_path):
    tiny_model.save(tmp_path / "model.keras")
    with pytest.raises(ValueError, match="one of them"):
        evaluate.evaluate_model(str(tmp_path / "model.keras"))
    with pytest.raises(SystemExit):
        evaluate.main([str(tmp_path / "model.keras"), "--data-dir", "x", "--data-npz", "y"])
