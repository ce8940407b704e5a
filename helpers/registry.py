"""Find and load trained models: a model file, a run folder, or a reference model's name.

Reference models live in ``models/<name>/`` (``model.keras`` and ``meta.json``);
runs written by ``helpers.train`` live in any folder with ``model.keras`` and
``config.json``. Both carry the class names in label order.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from helpers.paths import PROJECT_ROOT

MODELS_DIR = PROJECT_ROOT / "models"
MODEL_FILE = "model.keras"


@dataclasses.dataclass
class LoadedModel:
    """A trained model with what is needed to use it.

    Attributes:
        model: the Keras model (outputs: early exits then ``final``).
        class_names: class names in label order.
        meta: the run's ``config.json`` or the reference model's ``meta.json``.
        path: the model file.
    """

    model: object
    class_names: list[str]
    meta: dict
    path: Path


def reference_names() -> list[str]:
    """Names of the reference models shipped in ``models/``."""
    if not MODELS_DIR.is_dir():
        return []
    return sorted(p.name for p in MODELS_DIR.iterdir() if (p / MODEL_FILE).exists())


def resolve(spec: str | os.PathLike) -> Path:
    """The model file that ``spec`` names: a ``.keras`` file, a folder holding one, or a reference name.

    Raises:
        FileNotFoundError: nothing matches; the message lists the reference models.
    """
    path = Path(spec)
    if path.is_file():
        return path
    if path.is_dir() and (path / MODEL_FILE).is_file():
        return path / MODEL_FILE
    if (MODELS_DIR / str(spec) / MODEL_FILE).is_file():
        return MODELS_DIR / str(spec) / MODEL_FILE
    known = ", ".join(reference_names()) or "none shipped yet"
    raise FileNotFoundError(
        f"no model file, run folder or reference model called {str(spec)!r} "
        f"(reference models: {known})"
    )


def read_meta(model_path: Path) -> dict:
    """The ``meta.json`` or ``config.json`` beside a model file (empty dict if neither)."""
    for name in ("meta.json", "config.json"):
        meta_path = model_path.parent / name
        if meta_path.is_file():
            return json.loads(meta_path.read_text())
    return {}


def load(spec: str | os.PathLike) -> LoadedModel:
    """Load the model that ``spec`` names (see ``resolve``) with its class names.

    Raises:
        FileNotFoundError: see ``resolve``.
        ValueError: the file is not a loadable Keras model, or it has no class names.
    """
    import keras

    path = resolve(spec)
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as err:  # keras raises ValueError, OSError, zipfile errors ...
        raise ValueError(f"{path} is not a loadable Keras model ({type(err).__name__}: {err})") from err
    meta = read_meta(path)
    class_names = meta.get("class_names")
    if not class_names:
        k = int(model.outputs[-1].shape[-1])
        class_names = [f"class_{i}" for i in range(k)]
    return LoadedModel(model, list(class_names), meta, path)
