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
