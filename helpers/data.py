"""Datasets: tf_flowers (tfds or a local ``flower_photos`` folder), splits and tf.data pipelines.

Both sources end in the same place: a uint8 array of square images, integer labels,
the class names in label order and one identifier per image (the file path, or the
tfds key). A seeded, stratified split then feeds ``make_dataset``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DATA_DIR_ENV = "EARLY_EXIT_DATA_DIR"
"""Environment variable naming a local ``flower_photos``-style folder."""

CIFAR10_ENV = "EARLY_EXIT_CIFAR10_NPZ"
"""Environment variable naming a local CIFAR-10 ``.npz`` (layout of ``keras.datasets.cifar10``)."""

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]
"""CIFAR-10's class names in label order."""

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
DEFAULT_SPLIT = (0.70, 0.15, 0.15)
PROJECT_DATA_DIR = Path(__file__).resolve().parent.parent / "data"


class DataError(ValueError):
    """Raised for data that cannot be used, with a message that says how to fix it."""


@dataclasses.dataclass
class ImageSet:
    """Decoded images and their labels.

    Attributes:
        images: uint8 array ``(N, size, size, 3)``.
        labels: int32 array ``(N,)``, indices into ``class_names``.
        class_names: class names in label order.
        ids: one identifier per image (file path relative to the data folder, or tfds key).
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    ids: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> ImageSet:
        """Return the images at ``indices`` (in that order)."""
        indices = np.asarray(indices, dtype=np.int64)
        return ImageSet(
            self.images[indices],
            self.labels[indices],
            list(self.class_names),
            [self.ids[i] for i in indices],
        )

    def class_counts(self) -> dict[str, int]:
        """Number of images per class name."""
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(c) for name, c in zip(self.class_names, counts, strict=True)}


@dataclasses.dataclass
class Splits:
    """A train/validation/test split of one ``ImageSet``; ``seed`` made it."""

    train: ImageSet
    val: ImageSet
    test: ImageSet
    seed: int

    @property
    def class_names(self) -> list[str]:
        return self.train.class_names

    def fingerprint(self) -> str:
        """Short hash of the three id lists: equal fingerprints mean identical splits."""
        return split_fingerprint({"train": self.train.ids, "val": self.val.ids, "test": self.test.ids})


def split_fingerprint(ids: dict[str, Sequence[str]]) -> str:
    """``Splits.fingerprint`` of the id lists ``ids["train"]``, ``["val"]`` and ``["test"]``,
    e.g. of a run's ``split.json``."""
    h = hashlib.sha256()
    for part in ("train", "val", "test"):
        h.update("\n".join(ids[part]).encode())
        h.update(b"\x00")
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- files


def find_image_files(
    folder: str | os.PathLike, min_classes: int = 2
) -> tuple[list[Path], np.ndarray, list[str]]:
    """List the images of a ``<class>/<image>`` folder.

    Args:
        folder: a folder with one sub-folder per class (like ``flower_photos``).
        min_classes: fewer class folders than this is an error (training needs two;
            evaluating a model on the images of one class is fine with 1).

    Returns:
        ``(files, labels, class_names)``: files sorted by class then name, int32 labels,
        class names sorted alphabetically (``load_tfds_flowers`` uses the same order).

    Raises:
        DataError: the folder is missing, has no class folders, has fewer than two
            classes, or a class folder holds no image files.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError(
            f"data folder {root} does not exist; expected one folder per class "
            f"(like flower_photos/<class>/*.jpg)"
        )
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataError(f"no class folders under {root}; expected one folder per class")
    if len(class_dirs) < min_classes:
        raise DataError(
            f"only {len(class_dirs)} class folder(s) ({', '.join(d.name for d in class_dirs)}) "
            f"under {root}; a classifier needs at least {min_classes} classes"
        )
    files: list[Path] = []
    labels: list[int] = []
    for label, class_dir in enumerate(class_dirs):
        images = sorted(
            p for p in class_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not images:
            raise DataError(
                f"class folder {class_dir} holds no images "
                f"(looked for {', '.join(IMAGE_SUFFIXES)})"
            )
        files.extend(images)
        labels.extend([label] * len(images))
    return files, np.asarray(labels, dtype=np.int32), [d.name for d in class_dirs]


def load_image(path: str | os.PathLike, size: int) -> np.ndarray:
    """Decode one image file to a ``(size, size, 3)`` uint8 RGB array.

    Grayscale, palette, RGBA and CMYK images are converted to RGB; the image is
    resized (not cropped) to a square with an antialiasing filter.

    Raises:
        DataError: the file is empty or not a readable image (the message names it).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if path.stat().st_size == 0:
        raise DataError(f"{path} is an empty file (0 bytes); delete it or replace it")
    try:
        with Image.open(path) as im:
            im = im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
            return np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path} is not a readable image ({err}); delete it or replace it") from err


def _progress(iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="img", mininterval=1.0)


def load_folder(
    folder: str | os.PathLike, image_size: int = 96, progress: bool = True, min_classes: int = 2
) -> ImageSet:
    """Decode every image of a ``<class>/<image>`` folder (see ``find_image_files``).

    Args:
        folder: the dataset folder.
        image_size: side of the square the images are resized to.
        progress: show a progress bar while decoding.
        min_classes: see ``find_image_files``.
    """
    files, labels, class_names = find_image_files(folder, min_classes)
    images = np.empty((len(files), image_size, image_size, 3), dtype=np.uint8)
    for i, path in enumerate(_progress(files, len(files), "decoding images", progress)):
        images[i] = load_image(path, image_size)
    root = Path(folder).expanduser()  # as find_image_files, so "~/flower_photos" works
    ids = [str(p.relative_to(root)) for p in files]
    return ImageSet(images, labels, class_names, ids)


def _tfds_load(name: str, data_dir: str | os.PathLike | None, offline_hint: str, **kwargs):
    """``tfds.load(name, **kwargs)`` into ``data_dir`` (default ``data/tfds``), any failure a ``DataError``.

    ``offline_hint`` completes "Without network access, ..." in the message.
    """
    import tensorflow_datasets as tfds

    data_dir = Path(data_dir) if data_dir else PROJECT_DATA_DIR / "tfds"
    try:
        return tfds.load(name, data_dir=str(data_dir), **kwargs)
    except Exception as err:  # tfds raises many kinds of network and checksum errors
        raise DataError(
            f"could not load {name} with tensorflow-datasets ({type(err).__name__}: {err}). "
            f"Without network access, {offline_hint}."
        ) from err


def load_tfds_flowers(
    image_size: int = 96, data_dir: str | os.PathLike | None = None, progress: bool = True
) -> ImageSet:
    """Download (once) and decode tf_flowers with tensorflow-datasets.

    Args:
        image_size: side of the square the images are resized to.
        data_dir: where tfds keeps its files; default ``data/tfds`` in the project.
        progress: show a progress bar while decoding.

    Raises:
        DataError: the download failed (for example, no network); the message says
            how to use a local copy instead.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    ds, info = _tfds_load(
        "tf_flowers", data_dir,
        f"download flower_photos.tgz elsewhere, unpack it and set {DATA_DIR_ENV}=/path/to/flower_photos "
        "(one folder per class)",
        split="train", with_info=True, as_supervised=False, shuffle_files=False,
        read_config=tfds.ReadConfig(add_tfds_id=True),  # tf_flowers has no file-name feature
    )
    # tf_flowers numbers its classes dandelion, daisy, tulips, ...: relabel them in the
    # alphabetical order of a flower_photos folder, so both sources give the same labels.
    tfds_names = list(info.features["label"].names)
    class_names = sorted(tfds_names)
    to_sorted = np.array([class_names.index(name) for name in tfds_names], dtype=np.int32)
    n = info.splits["train"].num_examples
    images = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    labels = np.empty((n,), dtype=np.int32)
    ids = []
    for i, ex in enumerate(_progress(tfds.as_numpy(ds), n, "decoding tf_flowers", progress)):
        img = tf.image.resize(ex["image"], (image_size, image_size), antialias=True)
        images[i] = np.clip(np.round(img.numpy()), 0, 255).astype(np.uint8)
        labels[i] = to_sorted[ex["label"]]
        ids.append(ex["tfds_id"].decode())
    order = np.argsort(ids)  # a stable order that does not depend on tfds' shuffling
    return ImageSet(images, labels, class_names, ids).subset(order)


def load_flowers(
    source: str | os.PathLike | None = None, image_size: int = 96, progress: bool = True
) -> ImageSet:
    """Load tf_flowers from a local folder or through tensorflow-datasets.

    Args:
        source: a ``flower_photos``-style folder, or ``"tfds"``. ``None`` reads the
            ``EARLY_EXIT_DATA_DIR`` environment variable and falls back to tfds.
        image_size: side of the square the images are resized to.
        progress: show a progress bar while decoding.
    """
    if source is None:
        source = os.environ.get(DATA_DIR_ENV) or "tfds"
    if str(source) == "tfds":
        return load_tfds_flowers(image_size, progress=progress)
    return load_folder(source, image_size, progress=progress)



NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def load_npz(
    path: str | os.PathLike, class_names: Sequence[str] | None = None
) -> tuple[ImageSet, ImageSet]:
    """Load images from an ``.npz`` laid out like ``keras.datasets.cifar10.load_data()``.

    Args:
        path: a file with uint8 ``x_train (N, H, W, 3)``, ``y_train (N,)`` or ``(N, 1)``,
            and the same for ``x_test``/``y_test``.
        class_names: class names in label order (default ``class_0`` ...).

    Returns:
        ``(train, test)`` image sets.

    Raises:
        DataError: the file is missing or not an ``.npz``, an array is missing, or an
            array has the wrong dtype or shape (the message names it).
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a folder; expected an .npz file with arrays {', '.join(NPZ_ARRAYS)} "
                        "(a folder of images is read with --data-dir)")
    if not path.is_file():
        raise DataError(f"{path} does not exist; expected an .npz with arrays {', '.join(NPZ_ARRAYS)}")
    try:
        arrays = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"{path} is not a readable .npz file ({err})") from err
    if not isinstance(arrays, np.lib.npyio.NpzFile):  # np.load also reads a single .npy array
        raise DataError(f"{path} is a single array, not an .npz with arrays {', '.join(NPZ_ARRAYS)}")
    with arrays:
        missing = [k for k in NPZ_ARRAYS if k not in arrays.files]
        if missing:
            raise DataError(f"{path} lacks array(s) {', '.join(missing)}; it has {', '.join(arrays.files)}")
        loaded = {k: arrays[k] for k in NPZ_ARRAYS}
    parts = []
    for split in ("train", "test"):
        x, y = loaded[f"x_{split}"], loaded[f"y_{split}"]
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3 or x.shape[1] != x.shape[2]:
            raise DataError(
                f"x_{split} in {path} must be uint8 (N, H, H, 3), got {x.dtype} {x.shape}"
            )
        y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
        if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
            raise DataError(
                f"y_{split} in {path} must hold one integer label per image ({len(x)}), got {y.dtype} {y.shape}"
            )
        parts.append((x, y.astype(np.int32)))
    k = int(max(parts[0][1].max(), parts[1][1].max())) + 1
    names = list(class_names) if class_names else [f"class_{i}" for i in range(k)]
    if len(names) < k or min(parts[0][1].min(), parts[1][1].min()) < 0:
        raise DataError(f"labels in {path} must lie in 0..{len(names) - 1}")
    train, test = (
        ImageSet(x, y, names, [f"{split}/{i:05d}" for i in range(len(y))])
        for (x, y), split in zip(parts, ("train", "test"), strict=True)
    )
    return train, test


def load_tfds_cifar10(data_dir: str | os.PathLike | None = None) -> tuple[ImageSet, ImageSet]:
    """Download (once) CIFAR-10 with tensorflow-datasets: ``(train, test)``, 50 000 and 10 000 images.

    Raises:
        DataError: the download failed; the message says how to use a local ``.npz`` instead.
    """
    import tensorflow_datasets as tfds

    parts = tfds.as_numpy(_tfds_load(
        "cifar10", data_dir,
        "save keras.datasets.cifar10.load_data() elsewhere as an .npz (x_train, y_train, x_test, y_test) "
        f"and set {CIFAR10_ENV}=/path/to/cifar10.npz",
        split=["train", "test"], batch_size=-1, as_supervised=True,
    ))
    return tuple(  # type: ignore[return-value]
        ImageSet(x.astype(np.uint8), y.astype(np.int32), list(CIFAR10_CLASSES),
                 [f"{split}/{i:05d}" for i in range(len(y))])
        for (x, y), split in zip(parts, ("train", "test"), strict=True)
    )


def load_cifar10(source: str | os.PathLike | None = None) -> tuple[ImageSet, ImageSet]:
    """CIFAR-10 as ``(train, test)`` image sets, from a local ``.npz`` or through tensorflow-datasets.

    Args:
        source: an ``.npz`` in the layout of ``keras.datasets.cifar10.load_data()``, or
            ``"tfds"``. ``None`` reads the ``EARLY_EXIT_CIFAR10_NPZ`` environment variable
            and falls back to tfds.
    """
    if source is None:
        source = os.environ.get(CIFAR10_ENV) or "tfds"
    if str(source) == "tfds":
        return load_tfds_cifar10()
    return load_npz(source, CIFAR10_CLASSES)


# --------------------------------------------------------------------------- splits


def stratified_split_indices(
    labels: np.ndarray, fractions: Sequence[float] = DEFAULT_SPLIT, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded stratified split of ``range(len(labels))`` into train/val/test indices.

    Each class is shuffled with ``seed`` and cut by ``fractions`` (rounded), so every
    split keeps the class balance. The same labels and seed give the same indices.

    Raises:
        DataError: fractions are not three non-negative numbers summing to 1, or a
            class is too small to appear in every non-empty split.
    """
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or not all(f >= 0 for f in fractions) or not abs(sum(fractions) - 1) <= 1e-6:
        raise DataError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n_val = int(round(fractions[1] * len(idx)))
        n_test = min(int(round(fractions[2] * len(idx))), len(idx) - n_val)  # both rounded up: no overlap
        n_train = len(idx) - n_val - n_test
        for k, n in enumerate((n_train, n_val, n_test)):
            if fractions[k] > 0 and n == 0:
                raise DataError(
                    f"class {c} has only {len(idx)} images: too few for a {fractions} split"
                )
        parts[0].append(idx[:n_train])
        parts[1].append(idx[n_train:n_train + n_val])
        parts[2].append(idx[n_train + n_val:])
    return tuple(np.sort(np.concatenate(p)) for p in parts)  # type: ignore[return-value]


def split_dataset(
    data: ImageSet, fractions: Sequence[float] = DEFAULT_SPLIT, seed: int = 0
) -> Splits:
    """Split an ``ImageSet`` into train/validation/test (see ``stratified_split_indices``)."""
    if len(data.class_names) < 2:
        raise DataError("a classifier needs at least two classes")
    tr, va, te = stratified_split_indices(data.labels, fractions, seed)
    return Splits(data.subset(tr), data.subset(va), data.subset(te), seed)


def shrink(data: ImageSet, per_class: int, seed: int = 0) -> ImageSet:
    """At most ``per_class`` images of each class (seeded): for quick runs."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in range(len(data.class_names)):
        idx = np.flatnonzero(data.labels == c)
        keep.append(np.sort(rng.permutation(idx)[:per_class]))
    return data.subset(np.concatenate(keep))


def synthetic_images(
    n_per_class: int = 8, num_classes: int = 3, image_size: int = 16, seed: int = 0
) -> ImageSet:
    """Small learnable data: class ``c`` is noise around a class-specific colour.

    Used by tests and quick demos on machines with no data at all.
    """
    rng = np.random.default_rng(seed)
    colours = rng.integers(30, 226, size=(num_classes, 3))
    labels = np.repeat(np.arange(num_classes, dtype=np.int32), n_per_class)
    noise = rng.normal(0, 20, size=(len(labels), image_size, image_size, 3))
    images = np.clip(colours[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8)
    names = [f"class_{c}" for c in range(num_classes)]
    return ImageSet(images, labels, names, [f"synthetic/{i:05d}" for i in range(len(labels))])



def write_image_folder(
    data: ImageSet, folder: str | os.PathLike, class_names: Sequence[str] | None = None
) -> Path:
    """Write images as JPEG files in ``<folder>/<class>/<n>.jpg`` (the ``flower_photos`` layout).

    Args:
        data: the images.
        folder: where to write (created if needed).
        class_names: folder names to use instead of ``data.class_names``.

    Returns:
        ``folder`` as a ``Path``.
    """
    from PIL import Image

    root = Path(folder)
    names = list(class_names or data.class_names)
    for i, (image, label) in enumerate(zip(data.images, data.labels, strict=True)):
        class_dir = root / names[label]
        class_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(class_dir / f"{i:05d}.jpg", quality=95)
    return root


def resize_images(data: ImageSet, image_size: int) -> ImageSet:
    """The same images resized to ``image_size`` squared (unchanged if they already are)."""
    if data.images.shape[1:3] == (image_size, image_size):
        return data
    import tensorflow as tf

    resized = tf.image.resize(data.images, (image_size, image_size), antialias=True)
    images = np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8)
    return ImageSet(images, data.labels, data.class_names, data.ids)


def split_train_test(
    train: ImageSet, test: ImageSet, val_fraction: float = 0.15, seed: int = 0
) -> Splits:
    """Splits from a dataset that comes with its own test set: validation is carved from train.

    The test set stays as given; ``val_fraction`` of each class of ``train`` (seeded,
    stratified) becomes the validation split.
    """
    tr, va, _ = stratified_split_indices(train.labels, (1 - val_fraction, val_fraction, 0.0), seed)
    return Splits(train.subset(tr), train.subset(va), test, seed)

# --------------------------------------------------------------------------- tf.data


def augmenter(seed: int = 0, strong: bool = False):
    """The training augmentation: random horizontal flip, small zoom and shift, contrast.

    With ``strong``: also a small rotation (up to 18 degrees), zooming in by up to 30 %
    (a random crop of the flower, rescaled), stronger contrast and random brightness.

    Returns a Keras ``Sequential`` of preprocessing layers, applied in the input
    pipeline (not in the model), seeded for reproducibility.
    """
    import keras
    from keras import layers

    zoom, contrast = ((-0.3, 0.1), 0.3) if strong else ((-0.15, 0.15), 0.2)
    steps = [layers.RandomFlip("horizontal", seed=seed)]
    if strong:
        steps.append(layers.RandomRotation(0.05, seed=seed + 4, fill_mode="reflect"))
    steps += [
        layers.RandomZoom(zoom, seed=seed + 1, fill_mode="reflect"),
        layers.RandomTranslation(0.1, 0.1, seed=seed + 2, fill_mode="reflect"),
        layers.RandomContrast(contrast, seed=seed + 3),
    ]
    if strong:
        steps.append(layers.RandomBrightness(0.2, value_range=(0, 255), seed=seed + 5))
    return keras.Sequential(steps, name="augment_strong" if strong else "augment")


def crop_flip(images, padding: int = 4, seed: int = 0):
    """The standard CIFAR augmentation on a uint8 batch ``(B, H, W, 3)``: zero-pad by
    ``padding`` pixels, crop a random ``H x W`` window per image, flip half of them.

    Each image gets its own offset (a batch-wide crop would shift every image alike).
    """
    import tensorflow as tf

    batch, h, w = tf.shape(images)[0], images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    dy = tf.random.uniform([batch, 1], 0, 2 * padding + 1, dtype=tf.int32, seed=seed)
    dx = tf.random.uniform([batch, 1], 0, 2 * padding + 1, dtype=tf.int32, seed=seed + 1)
    rows = dy + tf.range(h)[None, :]  # (B, H): the rows each image keeps
    cols = dx + tf.range(w)[None, :]  # (B, W)
    out = tf.gather(tf.gather(padded, rows, axis=1, batch_dims=1), cols, axis=2, batch_dims=1)
    flip = tf.random.uniform([batch], seed=seed + 2) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(out, axis=[2]), out)


AUGMENTATIONS = ("flowers", "flowers_strong", "crop_flip", None)
MIXINGS = ("cutmix", "mixup", None)


def _beta(shape, alpha: float, seed: int):
    """Samples of Beta(alpha, alpha), as ``g1 / (g1 + g2)`` of two Gamma(alpha) draws."""
    import tensorflow as tf

    g1 = tf.random.gamma(shape, alpha, seed=seed)
    g2 = tf.random.gamma(shape, alpha, seed=seed + 1)
    return g1 / tf.maximum(g1 + g2, 1e-12)


def mix_batch(images, labels, kind: str, alpha: float = 1.0, seed: int = 0):
    """CutMix or MixUp of a batch with a shuffled copy of itself, one mixing weight per image.

    Args:
        images: uint8 ``(B, H, W, 3)``.
        labels: float one-hot (or already soft) labels ``(B, K)``.
        kind: ``"cutmix"`` (Yun et al., 2019: a random box of the partner image is pasted in;
            the labels mix by the fraction of pixels each image keeps) or ``"mixup"``
            (Zhang et al., 2018: the two images blend with weight ``lam`` and the labels alike,
            the blend rounded back to uint8).
        alpha: ``lam ~ Beta(alpha, alpha)``.
        seed: seed of the partners, the weights and the boxes.

    Returns:
        ``(images, labels)``: uint8 ``(B, H, W, 3)`` and float32 ``(B, K)``, each label row
        summing to 1.
    """
    import tensorflow as tf

    if kind is None or kind not in MIXINGS:
        raise ValueError(f"unknown mixing {kind!r}; choose one of {MIXINGS}")
    if not np.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"the mixing alpha must be positive, got {alpha}")
    labels = tf.cast(labels, tf.float32)
    batch = tf.shape(images)[0]
    partner = tf.random.shuffle(tf.range(batch), seed=seed)
    other_images, other_labels = tf.gather(images, partner), tf.gather(labels, partner)
    lam = _beta([batch], alpha, seed + 2)  # (B,): the weight of each image itself
    if kind == "mixup":
        x = lam[:, None, None, None] * tf.cast(images, tf.float32)
        x += (1 - lam[:, None, None, None]) * tf.cast(other_images, tf.float32)
        mixed = tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8)
    else:
        h, w = images.shape[1], images.shape[2]
        # A box of area (1 - lam) * H * W centred anywhere, clipped at the borders.
        side = tf.sqrt(1.0 - lam)
        cy = tf.random.uniform([batch], 0, h, seed=seed + 4)
        cx = tf.random.uniform([batch], 0, w, seed=seed + 5)
        y0 = tf.cast(tf.clip_by_value(tf.round(cy - side * h / 2), 0, h), tf.int32)
        y1 = tf.cast(tf.clip_by_value(tf.round(cy + side * h / 2), 0, h), tf.int32)
        x0 = tf.cast(tf.clip_by_value(tf.round(cx - side * w / 2), 0, w), tf.int32)
        x1 = tf.cast(tf.clip_by_value(tf.round(cx + side * w / 2), 0, w), tf.int32)
        rows, cols = tf.range(h)[None, :], tf.range(w)[None, :]
        in_rows = (rows >= y0[:, None]) & (rows < y1[:, None])  # (B, H)
        in_cols = (cols >= x0[:, None]) & (cols < x1[:, None])  # (B, W)
        box = in_rows[:, :, None] & in_cols[:, None, :]  # (B, H, W): the partner's pixels
        mixed = tf.where(box[..., None], other_images, images)
        # The label weight is the pixel fraction actually kept, after clipping and rounding.
        lam = 1.0 - tf.reduce_mean(tf.cast(box, tf.float32), axis=[1, 2])
    return mixed, lam[:, None] * labels + (1 - lam[:, None]) * other_labels


def make_dataset(
    data: ImageSet,
    batch_size: int = 64,
    training: bool = False,
    output_names: Sequence[str] | None = None,
    seed: int = 0,
    augmentation: str | None = "flowers",
    mixing: str | None = None,
    mixing_alpha: float = 1.0,
    num_classes: int | None = None,
):
    """A batched ``tf.data.Dataset`` of ``(uint8 images, labels)``.

    Args:
        data: the images.
        batch_size: batch size.
        training: shuffle every epoch (seeded) and augment.
        output_names: for a model with several outputs, the labels become a dict
            ``{name: labels}`` with one entry per output, as ``model.fit`` expects.
        seed: seed of the shuffle and the augmentation.
        augmentation: with ``training``: ``"flowers"`` (``augmenter``: flip, zoom,
            shift, contrast), ``"flowers_strong"`` (``augmenter(strong=True)``: also
            rotation, brightness, a larger zoom), ``"crop_flip"`` (``crop_flip``, for CIFAR-10) or ``None``.
        mixing: with ``training``: ``"cutmix"`` or ``"mixup"`` after the augmentation
            (``mix_batch``, weights from ``Beta(mixing_alpha, mixing_alpha)``), or ``None``.
            Needs ``num_classes``.
        mixing_alpha: see ``mixing``.
        num_classes: the labels become float one-hot vectors ``(B, K)`` (soft after
            mixing), for a categorical loss; ``None`` keeps integer labels.
    """
    import tensorflow as tf

    if len(data) == 0:
        raise DataError("cannot make a dataset from zero images")
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {augmentation!r}; choose one of {AUGMENTATIONS}")
    if mixing not in MIXINGS:
        raise ValueError(f"unknown mixing {mixing!r}; choose one of {MIXINGS}")
    if mixing is not None and num_classes is None:
        raise ValueError("mixing needs num_classes: mixed labels are soft, not class indices")
    ds = tf.data.Dataset.from_tensor_slices((data.images, data.labels))
    if training:
        ds = ds.shuffle(len(data), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if training and augmentation == "crop_flip":
        ds = ds.map(lambda x, y: (crop_flip(x, seed=seed), y))  # sequential: see below
    elif training and augmentation in ("flowers", "flowers_strong"):
        aug = augmenter(seed, strong=augmentation == "flowers_strong")

        def _augment(x, y):
            x = aug(tf.cast(x, tf.float32), training=True)
            return tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8), y

        # Sequential on purpose: the random layers draw from one seed state, and parallel calls
        # would take its values in a racy order, so two runs of the same seed would differ.
        ds = ds.map(_augment)
    if num_classes is not None:
        ds = ds.map(lambda x, y: (x, tf.one_hot(y, num_classes)))
    if training and mixing is not None:
        ds = ds.map(lambda x, y: mix_batch(x, y, mixing, mixing_alpha, seed + 10))  # sequential, as above
    if output_names is not None and len(output_names) > 1:
        names = list(output_names)
        ds = ds.map(lambda x, y: (x, {n: y for n in names}))
    return ds.prefetch(tf.data.AUTOTUNE)

