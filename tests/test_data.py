"""Tests of helpers.data: image folders, decoding, stratified splits and tf.data pipelines."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from helpers import data
from helpers.data import DataError

# What the ``flower_folder`` fixture (conftest.py) writes.
FLOWER_CLASSES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")
IMAGES_PER_CLASS = 4

# --------------------------------------------------------------------------- find_image_files


def test_find_image_files_sorted_classes_labels_and_files(tmp_path, make_image_folder):
    # Classes written in reverse order: the result must not depend on creation order.
    root = make_image_folder(tmp_path / "photos", class_names=("tulips", "daisy", "roses"), per_class=3)
    files, labels, class_names = data.find_image_files(root)

    assert class_names == ["daisy", "roses", "tulips"]
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 1, 2, 2, 2])
    assert len(files) == 9
    # Sorted by class, then by file name, and each label is the index of the file's folder.
    assert files == sorted(files, key=lambda p: (p.parent.name, p.name))
    assert [class_names[y] for y in labels] == [p.parent.name for p in files]


def test_find_image_files_ignores_hidden_folders_and_other_files(flower_folder):
    (flower_folder / "LICENSE.txt").write_text("CC-BY")  # flower_photos ships one
    (flower_folder / ".ipynb_checkpoints").mkdir()
    (flower_folder / "daisy" / "notes.txt").write_text("not an image")
    Image.new("RGB", (8, 8)).save(flower_folder / "daisy" / "UPPER.JPG")

    files, labels, class_names = data.find_image_files(flower_folder)

    assert class_names == list(FLOWER_CLASSES)
    assert len(files) == 5 * IMAGES_PER_CLASS + 1  # the .JPG counts, notes.txt does not
    assert all(p.suffix.lower() in data.IMAGE_SUFFIXES for p in files)
    assert (labels == 0).sum() == IMAGES_PER_CLASS + 1


def test_find_image_files_missing_folder(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match="does not exist") as err:
        data.find_image_files(missing)
    assert str(missing) in str(err.value)
    assert "one folder per class" in str(err.value)


def test_find_image_files_no_class_folders(tmp_path):
    (tmp_path / "loose.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="no class folders"):
        data.find_image_files(tmp_path)


def test_find_image_files_only_one_class(tmp_path, make_image_folder):
    root = make_image_folder(tmp_path / "photos", class_names=("daisy",), per_class=2)
    with pytest.raises(DataError, match=r"only 1 class folder.*\(daisy\).*at least 2 classes"):
        data.find_image_files(root)
    # Evaluating a model on the images of one class is allowed on request.
    files, labels, class_names = data.find_image_files(root, min_classes=1)
    assert class_names == ["daisy"] and len(files) == 2 and labels.tolist() == [0, 0]


def test_find_image_files_class_without_images(flower_folder):
    empty = flower_folder / "lilies"
    empty.mkdir()
    (empty / "readme.txt").write_text("no pictures here")
    with pytest.raises(DataError, match="holds no images") as err:
        data.find_image_files(flower_folder)
    assert str(empty) in str(err.value)


# --------------------------------------------------------------------------- load_image


def _check_rgb(array: np.ndarray, size: int, colour) -> None:
    assert array.shape == (size, size, 3)
    assert array.dtype == np.uint8
    np.testing.assert_array_equal(array, np.broadcast_to(np.asarray(colour, np.uint8), (size, size, 3)))


def test_load_image_png_resizes_to_square(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (40, 20), (10, 120, 250)).save(path)  # not square: resized, not cropped
    _check_rgb(data.load_image(path, 16), 16, (10, 120, 250))


def test_load_image_grayscale(tmp_path):
    path = tmp_path / "gray.png"
    Image.new("L", (12, 12), 100).save(path)
    _check_rgb(data.load_image(path, 8), 8, (100, 100, 100))


def test_load_image_palette(tmp_path):
    path = tmp_path / "palette.png"
    im = Image.new("P", (12, 12), 1)
    im.putpalette([0, 0, 0, 10, 200, 30] + [0] * (256 * 3 - 6))
    im.save(path)
    _check_rgb(data.load_image(path, 8), 8, (10, 200, 30))


def test_load_image_rgba_drops_alpha(tmp_path):
    path = tmp_path / "rgba.png"
    Image.new("RGBA", (12, 12), (200, 50, 25, 128)).save(path)
    _check_rgb(data.load_image(path, 8), 8, (200, 50, 25))


def test_load_image_cmyk(tmp_path):
    path = tmp_path / "cmyk.tif"
    Image.new("CMYK", (12, 12), (0, 255, 255, 0)).save(path)  # no cyan, full magenta and yellow = red
    _check_rgb(data.load_image(path, 8), 8, (255, 0, 0))


def test_load_image_truncated_jpeg(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    good = tmp_path / "good.jpg"
    Image.fromarray(noise).save(good, quality=95)
    assert data.load_image(good, 16).shape == (16, 16, 3)
    bad = tmp_path / "truncated.jpg"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataError) as err:
        data.load_image(bad, 16)
    assert str(bad) in str(err.value)


def test_load_image_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(DataError, match="empty") as err:
        data.load_image(path, 16)
    assert str(path) in str(err.value)


def test_load_image_text_file_named_jpg(tmp_path):
    path = tmp_path / "not_an_image.jpg"
    path.write_text("<html>404 not found</html>")
    with pytest.raises(DataError, match="not a readable image") as err:
        data.load_image(path, 16)
    assert str(path) in str(err.value)


# --------------------------------------------------------------------------- load_folder / load_flowers


def test_load_folder(flower_folder):
    images = data.load_folder(flower_folder, image_size=16, progress=False)

    n = 5 * IMAGES_PER_CLASS
    assert images.images.shape == (n, 16, 16, 3)
    assert images.images.dtype == np.uint8
    assert images.labels.shape == (n,)
    assert images.class_names == list(FLOWER_CLASSES)
    assert images.class_counts() == dict.fromkeys(FLOWER_CLASSES, IMAGES_PER_CLASS)
    assert len(images) == n
    # ids are paths relative to the folder, "<class>/<file>", and agree with the labels.
    assert images.ids[0] == "daisy/00000.jpg"
    assert [i.split("/")[0] for i in images.ids] == [FLOWER_CLASSES[y] for y in images.labels]
    # The decoded pixels are those of the file: the mean colour matches the synthetic source.
    source = data.synthetic_images(IMAGES_PER_CLASS, 5, 24, seed=1)
    np.testing.assert_allclose(
        images.images.reshape(n, -1, 3).mean(1), source.images.reshape(n, -1, 3).mean(1), atol=3
    )


def test_load_folder_accepts_home_relative_path(tmp_path, monkeypatch, make_image_folder):
    monkeypatch.setenv("HOME", str(tmp_path))
    make_image_folder(tmp_path / "flower_photos", per_class=2)
    images = data.load_folder("~/flower_photos", image_size=8, progress=False)
    assert len(images) == 10
    assert images.ids[:2] == ["daisy/00000.jpg", "daisy/00001.jpg"]


def test_load_folder_names_the_corrupt_file(flower_folder):
    bad = flower_folder / "roses" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 garbage")
    with pytest.raises(DataError, match="broken.jpg"):
        data.load_folder(flower_folder, image_size=8, progress=False)


def test_load_flowers_reads_the_environment_variable(flower_folder, monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(flower_folder))
    images = data.load_flowers(image_size=8, progress=False)
    assert images.class_names == list(FLOWER_CLASSES)
    assert len(images) == 5 * IMAGES_PER_CLASS
    assert images.images.shape[1:] == (8, 8, 3)


def test_load_flowers_tfds_failure_explains_the_offline_fix(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    calls = []

    def failing_load(*args, **kwargs):
        calls.append(kwargs)
        raise ConnectionError("no network")

    monkeypatch.setattr(tfds, "load", failing_load)
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    with pytest.raises(DataError) as err:
        data.load_flowers(image_size=8, progress=False)  # no folder given, no variable set: tfds
    assert calls and calls[0]["split"] == "train"
    message = str(err.value)
    assert data.DATA_DIR_ENV in message
    assert "ConnectionError" in message and "no network" in message


TFDS_NAMES = ["dandelion", "daisy", "tulips", "sunflowers", "roses"]  # tf_flowers' own label order


def _fake_tfds_load(calls: list, colours: np.ndarray, keys: list[str]):
    """A stand-in for ``tfds.load("tf_flowers", ...)`` without network.

    Like the real tf_flowers (checked with ``tfds.testing.mock_data``), examples hold only
    ``image`` and ``label``, plus ``tfds_id`` when asked with ``ReadConfig(add_tfds_id=True)``.
    Example ``i`` has tfds label ``i`` and is a 20x30 image of ``colours[i]``.
    """
    import tensorflow as tf

    def load(name, split, with_info=False, read_config=None, **kwargs):
        calls.append({"name": name, "split": split, **kwargs})
        n = len(colours)
        features = {
            "image": np.broadcast_to(colours[:, None, None, :], (n, 20, 30, 3)).astype(np.uint8),
            "label": np.arange(n, dtype=np.int64),
        }
        if read_config is not None and read_config.add_tfds_id:
            features["tfds_id"] = np.array(keys)
        info = SimpleNamespace(
            features={"label": SimpleNamespace(names=TFDS_NAMES)},
            splits={"train": SimpleNamespace(num_examples=n)},
        )
        ds = tf.data.Dataset.from_tensor_slices(features)
        return (ds, info) if with_info else ds

    return load


def test_load_tfds_flowers_uses_the_folder_label_order(monkeypatch, flower_folder):
    tfds = pytest.importorskip("tensorflow_datasets")
    colours = np.array([[250, 0, 0], [0, 250, 0], [0, 0, 250], [250, 250, 0], [0, 250, 250]])
    keys = [f"tf_flowers-train.tfrecord-00000-of-00001__{k}" for k in (3, 0, 4, 1, 2)]
    calls = []
    monkeypatch.setattr(tfds, "load", _fake_tfds_load(calls, colours, keys))

    images = data.load_tfds_flowers(image_size=8, progress=False)

    assert calls[0]["name"] == "tf_flowers" and calls[0]["split"] == "train"
    # The same class names and label order as a flower_photos folder, whichever source is used.
    assert images.class_names == data.load_folder(flower_folder, 8, progress=False).class_names
    assert images.class_names == list(FLOWER_CLASSES)
    # Sorted by key; each image keeps its own label, renumbered alphabetically.
    assert images.ids == sorted(keys)
    for image, label, key in zip(images.images, images.labels, images.ids, strict=True):
        k = keys.index(key)  # the example's position, which is also its tfds label
        assert images.class_names[label] == TFDS_NAMES[k]
        np.testing.assert_array_equal(image, np.broadcast_to(colours[k], (8, 8, 3)))


# --------------------------------------------------------------------------- splits


def test_stratified_split_hand_computed_sizes():
    # Class 0: 20 images -> val round(0.15 * 20) = 3, test 3, train 20 - 6 = 14.
    # Class 1:  7 images -> val round(0.15 * 7) = round(1.05) = 1, test 1, train 5.
    labels = np.array([0] * 20 + [1] * 7)
    train, val, test = data.stratified_split_indices(labels, (0.70, 0.15, 0.15), seed=0)

    for part, sizes in ((train, (14, 5)), (val, (3, 1)), (test, (3, 1))):
        assert tuple(np.bincount(labels[part], minlength=2)) == sizes
        assert np.all(np.diff(part) > 0)  # sorted, no duplicates
    everything = np.concatenate([train, val, test])
    assert len(everything) == len(labels)
    np.testing.assert_array_equal(np.sort(everything), np.arange(len(labels)))  # disjoint and complete


def test_stratified_split_seed():
    labels = np.repeat(np.arange(3), 20)
    a = data.stratified_split_indices(labels, seed=3)
    b = data.stratified_split_indices(labels, seed=3)
    c = data.stratified_split_indices(labels, seed=4)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(a, c, strict=True))


@pytest.mark.parametrize(
    "fractions",
    [(0.7, 0.3), (0.8, 0.15, 0.15), (1.2, -0.1, -0.1), (float("nan"), 0.5, 0.5), (0.7, 0.15, 0.15, 0.0)],
)
def test_stratified_split_bad_fractions(fractions):
    with pytest.raises(DataError, match="fractions"):
        data.stratified_split_indices(np.repeat([0, 1], 20), fractions)


def test_stratified_split_class_too_small():
    # 3 images: round(0.15 * 3) = 0 validation images for class 1.
    labels = np.array([0] * 20 + [1] * 3)
    with pytest.raises(DataError, match="class 1 has only 3 images"):
        data.stratified_split_indices(labels)


def test_stratified_split_without_train_part_stays_disjoint():
    # 3 images, 50/50 between val and test: both round(1.5) = 2, more than the class holds.
    labels = np.array([0] * 3 + [1] * 3)
    train, val, test = data.stratified_split_indices(labels, (0.0, 0.5, 0.5))
    assert len(train) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([val, test])), np.arange(6))


def test_split_dataset_and_fingerprint(tiny_images):
    splits = data.split_dataset(tiny_images, seed=0)
    again = data.split_dataset(tiny_images, seed=0)
    other = data.split_dataset(tiny_images, seed=1)

    # 10 images per class: val round(1.5) = 2, test 2, train 6 (x 3 classes).
    assert [len(splits.train), len(splits.val), len(splits.test)] == [18, 6, 6]
    assert splits.class_names == tiny_images.class_names
    assert splits.seed == 0
    ids = splits.train.ids + splits.val.ids + splits.test.ids
    assert sorted(ids) == sorted(tiny_images.ids)
    # Each split keeps images and labels together.
    position = {i: k for k, i in enumerate(tiny_images.ids)}
    for part in (splits.train, splits.val, splits.test):
        rows = [position[i] for i in part.ids]
        np.testing.assert_array_equal(part.images, tiny_images.images[rows])
        np.testing.assert_array_equal(part.labels, tiny_images.labels[rows])

    assert splits.fingerprint() == again.fingerprint()
    assert len(splits.fingerprint()) == 16
    assert splits.fingerprint() != other.fingerprint()


def test_split_dataset_needs_two_classes():
    one_class = data.synthetic_images(20, num_classes=1, image_size=4)
    with pytest.raises(DataError, match="two classes"):
        data.split_dataset(one_class)


def test_shrink(tiny_images):
    small = data.shrink(tiny_images, per_class=3, seed=0)
    assert small.class_counts() == dict.fromkeys(tiny_images.class_names, 3)
    assert set(small.ids) <= set(tiny_images.ids)
    assert small.ids == data.shrink(tiny_images, per_class=3, seed=0).ids
    assert small.ids != data.shrink(tiny_images, per_class=3, seed=1).ids
    # More than a class holds: everything is kept.
    assert data.shrink(tiny_images, per_class=100).ids == tiny_images.ids


def test_synthetic_images():
    images = data.synthetic_images(n_per_class=4, num_classes=3, image_size=16, seed=0)
    assert images.images.shape == (12, 16, 16, 3) and images.images.dtype == np.uint8
    assert images.class_counts() == {"class_0": 4, "class_1": 4, "class_2": 4}
    np.testing.assert_array_equal(images.images, data.synthetic_images(4, 3, 16, seed=0).images)


# --------------------------------------------------------------------------- tf.data


def _epoch(ds):
    xs, ys = [], []
    for x, y in ds:
        xs.append(x.numpy())
        ys.append(y.numpy())
    return xs, ys


def test_make_dataset_batches_in_order(tiny_images):
    xs, ys = _epoch(data.make_dataset(tiny_images, batch_size=8))
    assert [len(x) for x in xs] == [8, 8, 8, 6]
    assert all(x.dtype == np.uint8 and x.shape[1:] == (32, 32, 3) for x in xs)
    np.testing.assert_array_equal(np.concatenate(xs), tiny_images.images)  # no shuffle, no augmentation
    np.testing.assert_array_equal(np.concatenate(ys), tiny_images.labels)


def test_make_dataset_dict_labels_for_several_outputs(tiny_images):
    names = ["exit_1", "exit_2", "final"]
    x, y = next(iter(data.make_dataset(tiny_images, batch_size=8, output_names=names)))
    assert isinstance(y, dict) and list(y) == names
    for n in names:
        np.testing.assert_array_equal(y[n].numpy(), tiny_images.labels[:8])


def test_make_dataset_plain_labels_for_one_output(tiny_images):
    _, y = next(iter(data.make_dataset(tiny_images, batch_size=8, output_names=["final"])))
    assert not isinstance(y, dict)
    np.testing.assert_array_equal(y.numpy(), tiny_images.labels[:8])


@pytest.mark.parametrize("augmentation", ["flowers", "flowers_strong"])
def test_make_dataset_training_augments_and_shuffles(tiny_images, augmentation):
    xs, ys = _epoch(data.make_dataset(tiny_images, batch_size=8, training=True, seed=0, augmentation=augmentation))
    assert [x.shape for x in xs] == [(8, 32, 32, 3)] * 3 + [(6, 32, 32, 3)]
    assert all(x.dtype == np.uint8 for x in xs)
    labels = np.concatenate(ys)
    np.testing.assert_array_equal(np.sort(labels), np.sort(tiny_images.labels))  # a permutation
    assert not np.array_equal(labels, tiny_images.labels)  # shuffled
    # Augmented: no image of the epoch is an exact copy of a source image.
    flat = np.concatenate(xs).reshape(len(labels), -1)
    source = {row.tobytes() for row in tiny_images.images.reshape(len(labels), -1)}
    assert not any(row.tobytes() in source for row in flat)


@pytest.mark.parametrize("augmentation", ["flowers", "flowers_strong"])
def test_make_dataset_training_is_deterministic_for_a_seed(tiny_images, augmentation):
    first = _epoch(data.make_dataset(tiny_images, batch_size=8, training=True, seed=5, augmentation=augmentation))
    second = _epoch(data.make_dataset(tiny_images, batch_size=8, training=True, seed=5, augmentation=augmentation))
    other = _epoch(data.make_dataset(tiny_images, batch_size=8, training=True, seed=6, augmentation=augmentation))

    np.testing.assert_array_equal(np.concatenate(first[1]), np.concatenate(second[1]))
    # The augmentation too, not only the order: a run can be reproduced exactly.
    np.testing.assert_array_equal(np.concatenate(first[0]), np.concatenate(second[0]))
    assert not np.array_equal(np.concatenate(first[1]), np.concatenate(other[1]))


def test_strong_augmentation_adds_rotation_and_brightness(tiny_images):
    standard = [type(layer).__name__ for layer in data.augmenter(0).layers]
    strong = [type(layer).__name__ for layer in data.augmenter(0, strong=True).layers]
    assert set(strong) - set(standard) == {"RandomRotation", "RandomBrightness"}
    # same seed, same order of images: the two augmentations give different pixels
    a = _epoch(data.make_dataset(tiny_images, batch_size=8, training=True, seed=1))
    b = _epoch(data.make_dataset(tiny_images, batch_size=8, training=True, seed=1, augmentation="flowers_strong"))
    np.testing.assert_array_equal(np.concatenate(a[1]), np.concatenate(b[1]))
    assert not np.array_equal(np.concatenate(a[0]), np.concatenate(b[0]))


def test_make_dataset_reshuffles_every_epoch(tiny_images):
    ds = data.make_dataset(tiny_images, batch_size=64, training=True, seed=0)
    epoch_1 = np.concatenate(_epoch(ds)[1])
    epoch_2 = np.concatenate(_epoch(ds)[1])
    assert not np.array_equal(epoch_1, epoch_2)


def test_make_dataset_rejects_empty_data(tiny_images):
    with pytest.raises(DataError, match="zero images"):
        data.make_dataset(tiny_images.subset(np.array([], dtype=int)))


# --------------------------------------------------------------------------- CutMix and MixUp


def _flat_batch(n: int = 12, size: int = 16):
    """``n`` images, image ``i`` filled with the value ``10 i + 5``, and one-hot labels of class ``i``:
    each pixel and each label entry of a mixed batch tells which image it came from."""
    values = 10 * np.arange(n) + 5
    images = np.broadcast_to(values[:, None, None, None], (n, size, size, 3)).astype(np.uint8)
    return images, np.eye(n, dtype=np.float32), values


def test_cutmix_labels_mix_by_the_pixels_each_image_keeps():
    images, labels, values = _flat_batch()
    mixed, soft = (np.asarray(t) for t in data.mix_batch(images, labels, "cutmix", alpha=1.0, seed=3))
    assert mixed.dtype == np.uint8 and mixed.shape == images.shape and soft.shape == labels.shape
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-6)
    pasted = 0
    for i in range(len(images)):
        sources, counts = np.unique(mixed[i, ..., 0], return_counts=True)
        assert len(sources) <= 2  # itself and one partner at most
        expected = np.zeros(len(images))
        for v, c in zip(sources, counts, strict=True):
            expected[list(values).index(v)] += c / mixed[i, ..., 0].size
        np.testing.assert_allclose(soft[i], expected, atol=1e-6)
        if len(sources) == 2:
            ys, xs = np.nonzero(mixed[i, ..., 0] != values[i])
            # the partner's pixels form one rectangle
            assert len(ys) == (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
            pasted += 1
    assert pasted >= len(images) // 2  # boxes are pasted, not only drawn empty


def test_mixup_blends_images_and_labels_with_the_same_weight():
    images, labels, values = _flat_batch()
    mixed, soft = (np.asarray(t) for t in data.mix_batch(images, labels, "mixup", alpha=0.4, seed=1))
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-6)
    blended = 0
    for i in range(len(images)):
        assert np.all(mixed[i] == mixed[i, 0, 0, 0])  # a blend of two flat images is flat
        expected = soft[i] @ values  # the label weights blend the pixel values
        assert abs(float(mixed[i, 0, 0, 0]) - expected) <= 0.5 + 1e-4
        blended += np.count_nonzero(soft[i] > 1e-3) == 2
    assert blended >= len(images) // 2


@pytest.mark.parametrize("mixing", ["cutmix", "mixup"])
def test_mixed_batches_are_seeded(tiny_images, mixing):
    def epoch(seed):
        ds = data.make_dataset(tiny_images, batch_size=8, training=True, seed=seed, augmentation=None,
                               mixing=mixing, num_classes=3)
        return [np.concatenate(part) for part in _epoch(ds)]

    first, again, other = epoch(5), epoch(5), epoch(6)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[1], other[1])


def test_mixing_is_checked():
    images, labels, _ = _flat_batch()
    with pytest.raises(ValueError, match="unknown mixing"):
        data.mix_batch(images, labels, "blend")
    with pytest.raises(ValueError, match="alpha must be positive"):
        data.mix_batch(images, labels, "mixup", alpha=0.0)


def test_make_dataset_mixes_training_batches_into_soft_labels(tiny_images):
    num_classes = int(tiny_images.labels.max()) + 1
    plain = _epoch(data.make_dataset(tiny_images, batch_size=64, num_classes=num_classes))
    np.testing.assert_array_equal(np.concatenate(plain[1]), np.eye(num_classes)[tiny_images.labels])
    xs, ys = _epoch(data.make_dataset(tiny_images, batch_size=8, training=True, seed=0, augmentation=None,
                                      mixing="cutmix", num_classes=num_classes))
    soft = np.concatenate(ys)
    assert soft.shape == (len(tiny_images), num_classes) and np.concatenate(xs).dtype == np.uint8
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-6)
    assert np.any((soft > 0.01) & (soft < 0.99))  # some labels are mixed
    with pytest.raises(ValueError, match="needs num_classes"):
        data.make_dataset(tiny_images, training=True, mixing="cutmix")
    with pytest.raises(ValueError, match="unknown mixing"):
        data.make_dataset(tiny_images, training=True, mixing="blend", num_classes=num_classes)
