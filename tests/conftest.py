"""Shared fixtures for the unit tests: tiny synthetic data and a tiny multi-exit VGG11.

Everything is small on purpose (32 px images, width 1/8, a handful of images per
class) so that the whole suite runs in a few minutes on a laptop CPU.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from helpers import data, models

FLOWER_CLASSES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")


def _write_image_folder(root: Path, class_names=FLOWER_CLASSES, per_class: int = 4, image_size: int = 24) -> Path:
    """Write ``per_class`` synthetic JPEGs per class as ``root/<class>/<n>.jpg``; return ``root``."""
    images = data.synthetic_images(per_class, len(class_names), image_size, seed=1)
    return data.write_image_folder(images, root, list(class_names))


@pytest.fixture
def make_image_folder():
    """The factory ``(root, class_names, per_class, image_size) -> root`` of image folders."""
    return _write_image_folder


@pytest.fixture
def flower_folder(tmp_path: Path) -> Path:
    """A tiny ``flower_photos`` folder: 5 flower classes, 4 JPEGs of 24x24 pixels each."""
    return _write_image_folder(tmp_path / "flower_photos")


@pytest.fixture
def tiny_images() -> data.ImageSet:
    """30 synthetic 32x32 images of 3 classes (10 per class)."""
    return data.synthetic_images(n_per_class=10, num_classes=3, image_size=32, seed=0)


@pytest.fixture
def tiny_model() -> keras.Model:
    """A freshly initialised VGG11 with 5 conv-head exits: 3 classes, 32 px input, width 1/8."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    return models.build_vgg11(num_classes=3, input_size=32, width=0.125)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def _spread_exits(model: keras.Model, scales) -> keras.Model:
    """Multiply each head's logits kernel by a factor, in place, so that exits differ in confidence."""
    for name, scale in zip(models.output_names(model), scales, strict=False):
        dense = model.get_layer(name).get_layer("logits")
        kernel, bias = dense.get_weights()
        dense.set_weights([kernel * scale, bias])
    return model


@pytest.fixture(scope="session")
def spread_model():
    """Factory of tiny VGG11s (32 px, width 1/8) whose exits send samples to different exits.

    A freshly initialised network is equally unsure at every exit; scaling each head's
    logits (more at deeper exits) spreads the normalised entropies, so thresholds in
    (0, 1) send samples to several exits, as a trained network would.
    """

    def make(num_classes: int = 3, exits_after=(1, 2, 3, 4, 5), scales=(20, 45, 90, 160, 300, 300), seed: int = 0):
        keras.utils.set_random_seed(seed)
        model = models.build_vgg11(num_classes, 32, 0.125, exits_after=exits_after)
        return _spread_exits(model, scales)

    return make


def _patience_reference(logits: np.ndarray, p: int) -> np.ndarray:
    """Plain-NumPy patience: first exit e where the argmax of exits e-p+1..e agree (final otherwise)."""
    labels = logits.argmax(-1)
    n, e = labels.shape
    out = np.full(n, e - 1)
    for i in range(n):
        for j in range(p - 1, e):
            if len(set(labels[i, j - p + 1:j + 1])) == 1:
                out[i] = j
                break
    return out


@pytest.fixture(scope="session")
def patience_reference():
    """The patience rule written as plainly as possible: ``(logits (N, E, K), p) -> 0-based exits``."""
    return _patience_reference


@pytest.fixture(autouse=True)
def _close_figures():
    """Close every matplotlib figure a test opened (the backend is Agg, set by the root conftest)."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="session")
def mixed_images():
    """Factory of test images that send a spread model's samples to many exits:
    ``per_class`` synthetic colour-class images of 3 classes, then ``noise`` images of uniform noise."""

    def make(per_class: int, noise: int) -> np.ndarray:
        synthetic = data.synthetic_images(per_class, 3, 32, seed=0).images
        random = np.random.default_rng(1).integers(0, 256, size=(noise, 32, 32, 3), dtype=np.uint8)
        return np.concatenate([synthetic, random])

    return make

