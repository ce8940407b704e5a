"""pytest set-up shared by the unit tests and the notebook tests (nbval).

Notebooks run in quick mode, write their runs to a temporary folder, and read
the flowers data from ``EARLY_EXIT_DATA_DIR`` and CIFAR-10 from
``EARLY_EXIT_CIFAR10_NPZ``. Where these are unset (a machine with no copy of the
data and no network), small synthetic data in the same layouts stands in, so
``pytest`` passes anywhere.
"""

import os
import tempfile
from pathlib import Path

FLOWER_CLASSES = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]


def pytest_configure(config):
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["EARLY_EXIT_QUICK"] = "1"
    tmp = Path(tempfile.mkdtemp(prefix="early-exit-tests-"))
    os.environ.setdefault("EARLY_EXIT_RUNS_DIR", str(tmp / "runs"))
    if not os.environ.get("EARLY_EXIT_DATA_DIR"):
        from helpers.data import synthetic_images, write_image_folder

        images = synthetic_images(n_per_class=30, num_classes=5, image_size=64, seed=0)
        write_image_folder(images, tmp / "flower_photos", FLOWER_CLASSES)
        os.environ["EARLY_EXIT_DATA_DIR"] = str(tmp / "flower_photos")
    if not os.environ.get("EARLY_EXIT_CIFAR10_NPZ"):
        import numpy as np

        from helpers.data import synthetic_images

        train = synthetic_images(n_per_class=30, num_classes=10, image_size=32, seed=0)
        test = synthetic_images(n_per_class=10, num_classes=10, image_size=32, seed=1)
        np.savez(tmp / "cifar10.npz", x_train=train.images, y_train=train.labels,
                 x_test=test.images, y_test=test.labels)
        os.environ["EARLY_EXIT_CIFAR10_NPZ"] = str(tmp / "cifar10.npz")
