"""Training: one function for the notebooks, and the headless command.

    python -m helpers.train --experiment flowers-vgg11-96px --out runs/flowers-vgg11-96px

A finished run directory holds ``config.json`` (experiment, seed, precision,
split), ``split.json`` (the image ids of each split), ``history.csv`` (one row per
epoch) and ``model.keras``. While training, everything is written to
``.in-progress/`` inside it, with ``backup/`` holding the last completed epoch:
start the same command again after an interruption (even ``kill -9``) and it
resumes there. Only a run that finishes moves its files into place (by rename),
so a crash or a failed run never leaves half a model behind and never replaces
an earlier finished run. The same command on a finished run loads it; other settings,
or data that gives another split, are refused unless ``overwrite`` (``--overwrite``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import pandas as pd

import helpers.layers  # noqa: F401  (registers SpatialPyramidPooling for load_model)
from helpers import data as data_lib
from helpers.experiments import EXPERIMENTS, Experiment, get_experiment
from helpers.losses import compile_multi_exit, self_distilling

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("default", "mirrored", "tpu", "multiworker")
MODEL_FILE = "model.keras"
WORK_DIR = ".in-progress"


def default_precision() -> str:
    """``mixed_bfloat16`` on a CPU with bfloat16 instructions (AVX512-BF16 or AMX) or a TPU,
    ``mixed_float16`` on a GPU, ``float32`` otherwise (where bfloat16 is emulated and slow)."""
    import tensorflow as tf

    if tf.config.list_logical_devices("TPU"):
        return "mixed_bfloat16"
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "float32"
    return "mixed_bfloat16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"


def get_strategy(name: str = "default"):
    """The ``tf.distribute`` strategy called ``name``.

    ``default``: one device; ``mirrored``: every local GPU (without GPUs, every
    logical CPU device);
    ``tpu``: the TPU of a Colab or Cloud TPU runtime; ``multiworker``: workers
    described by the ``TF_CONFIG`` environment variable.
    """
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        # no GPU: mirror over the logical CPU devices (one unless configured otherwise)
        return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; choose one of {STRATEGIES}")


@dataclasses.dataclass
class TrainedRun:
    """A finished training run: the model, its per-epoch history and its configuration."""

    model: keras.Model
    history: pd.DataFrame
    config: dict
    out_dir: Path


class _EpochTimer(keras.callbacks.Callback):
    """Adds the wall time of each epoch, in seconds, to the logs as ``seconds``."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["seconds"] = time.perf_counter() - self._start


def read_history(out_dir: str | os.PathLike) -> pd.DataFrame:
    """The per-epoch history of a run (the last row wins if an epoch was logged twice)."""
    path = Path(out_dir) / "history.csv"
    if not path.exists():
        return pd.DataFrame()
    history = pd.read_csv(path)
    return history.drop_duplicates("epoch", keep="last").reset_index(drop=True)


def load_run(out_dir: str | os.PathLike) -> TrainedRun:
    """Load a finished run written by ``train``.

    Raises:
        FileNotFoundError: there is no finished model in ``out_dir``.
    """
    out_dir = Path(out_dir)
    model_path = out_dir / MODEL_FILE
    if not model_path.exists():
        raise FileNotFoundError(
            f"no trained model in {out_dir} (expected {MODEL_FILE}); train it first, e.g. "
            f"python -m helpers.train --experiment NAME --out {out_dir}"
        )
    config = json.loads((out_dir / "config.json").read_text())
    model = keras.models.load_model(model_path, compile=False)
    return TrainedRun(model, read_history(out_dir), config, out_dir)


def _schedule(exp: Experiment, steps_per_epoch: int, epochs: int):
    total = max(1, steps_per_epoch * epochs)
    warmup = min(steps_per_epoch, total // 4)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=exp.learning_rate / 10 if warmup else exp.learning_rate,
        decay_steps=max(1, total - warmup),
        warmup_target=exp.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def prepare_splits(
    exp: Experiment,
    source: str | os.PathLike | None = None,
    quick: bool = False,
    progress: bool = True,
    npz: str | os.PathLike | None = None,
    image_size: int | None = None,
) -> data_lib.Splits:
    """Load the experiment's dataset at its image size and split it with its split seed.

    Args:
        exp: the experiment.
        source: flowers: image folder or ``"tfds"`` (see ``helpers.data.load_flowers``);
            CIFAR-10: ``.npz`` file or ``"tfds"`` (see ``helpers.data.load_cifar10``).
        quick: keep only ``exp.quick_per_class`` images per class (of each part).
        progress: show a progress bar while decoding.
        npz: instead of ``source``, an ``.npz`` in the layout of
            ``keras.datasets.cifar10.load_data()``: its test arrays are the test split,
            ``exp.val_fraction`` of its training arrays (stratified) the validation split.
        image_size: decode at this size instead of ``exp.image_size`` (the same split: the
            fingerprint depends on the image ids only), for a model of another input size.
    """
    if image_size is not None:
        exp = dataclasses.replace(exp, image_size=image_size)
    if exp.dataset == "cifar10":
        if npz is not None and source is not None:
            raise ValueError("give the CIFAR-10 data as npz or as source, not both")
        train_set, test_set = data_lib.load_cifar10(npz if npz is not None else source)
        return _split_with_test(exp, train_set, test_set, quick)
    if exp.dataset != "flowers":
        raise ValueError(f"unknown dataset {exp.dataset!r} in experiment {exp.name}")
    if npz is not None:
        return _split_with_test(exp, *data_lib.load_npz(npz), quick)
    images = data_lib.load_flowers(source, exp.image_size, progress=progress)
    if quick:
        images = data_lib.shrink(images, exp.quick_per_class, seed=exp.split_seed)
    return data_lib.split_dataset(images, seed=exp.split_seed)


def _split_with_test(exp: Experiment, train_set, test_set, quick: bool) -> data_lib.Splits:
    """Splits of a dataset that has its own test set: validation is carved from the training images."""
    train_set, test_set = (data_lib.resize_images(part, exp.image_size) for part in (train_set, test_set))
    if quick:
        train_set = data_lib.shrink(train_set, exp.quick_per_class, seed=exp.split_seed)
        test_set = data_lib.shrink(test_set, max(2, exp.quick_per_class // 4), seed=exp.split_seed)
    return data_lib.split_train_test(train_set, test_set, exp.val_fraction, seed=exp.split_seed)


def train(
    experiment: Experiment | str,
    out_dir: str | os.PathLike,
    *,
    splits: data_lib.Splits | None = None,
    source: str | os.PathLike | None = None,
    npz: str | os.PathLike | None = None,
    epochs: int | None = None,
    quick: bool = False,
    seed: int = 0,
    precision: str = "float32",
    strategy: str = "default",
    verbose: int | str = "auto",
    overwrite: bool = False,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    backbone: str | os.PathLike | None = None,
) -> TrainedRun:
    """Train one experiment into ``out_dir``, resuming an interrupted run.

    Args:
        experiment: an ``Experiment`` or the name of one.
        out_dir: the run directory (created if needed).
        splits: the data; by default loaded from ``source`` with the experiment's split.
        source: data folder or ``"tfds"`` (see ``helpers.data.load_flowers``).
        npz: an ``.npz`` with train and test arrays instead (see ``prepare_splits``).
        epochs: overrides the experiment's number of epochs.
        quick: shrink the experiment and the data (``Experiment.quick``).
        seed: seed of weights initialisation, shuffling and augmentation.
        precision: Keras dtype policy: ``float32``, ``mixed_bfloat16``, ``mixed_float16``, or
            ``auto`` for what ``default_precision`` picks on this machine.
        strategy: ``tf.distribute`` strategy name (see ``get_strategy``).
        verbose: ``model.fit`` verbosity (1: progress bar, 2: one line per epoch).
        overwrite: train again even if ``out_dir`` holds a finished run.
        callbacks: extra Keras callbacks (for example ``EarlyStopping``).
        backbone: for an experiment with ``backbone_from``: the trained network to freeze
            (model file, run folder or reference name, see ``helpers.registry.resolve``). By
            default the finished run named ``backbone_from`` beside ``out_dir``, else the
            reference model of that name. It must have been trained on the same split.

    Returns:
        The finished run. If ``out_dir`` already holds a finished run of the same
        configuration trained on the same split of the same data (and ``overwrite`` is
        false), it is loaded instead, unless its
        frozen backbone is no longer the donor's (the donor was trained again since):
        then the heads train again on the new one.

    Raises:
        ValueError: bad precision/strategy; ``out_dir`` is a file, or holds a run
            (finished or not) of another configuration, or a finished run trained on
            another split, and ``overwrite`` is false; or the backbone was trained on
            another split or does not fit.
    """
    exp = get_experiment(experiment) if isinstance(experiment, str) else experiment
    if quick:
        exp = exp.quick()
    if epochs is not None:
        if epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {epochs}")
        exp = dataclasses.replace(exp, epochs=int(epochs))
    if backbone is not None and not exp.backbone_from:
        raise ValueError(f"experiment {exp.name} trains its whole network: it takes no backbone")
    if precision == "auto":
        precision = default_precision()
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} is a file; --out names the run's folder")
    work = out_dir / WORK_DIR
    wanted = _run_settings(exp, seed, precision, quick)
    finished = _finished_config(out_dir)
    same = finished is not None and _same_config(out_dir / "config.json", wanted)
    resumable = (work / "backup").exists() and _same_config(work / "config.json", wanted)
    if finished is not None and not same and not overwrite and not resumable:
        # (an unfinished run of the wanted configuration, started with overwrite, resumes as usual)
        raise ValueError(
            f"{out_dir} holds a finished run of another configuration ({finished.get('name')}, seed "
            f"{finished.get('seed')}, {finished.get('experiment', {}).get('epochs')} epochs); choose another "
            "output folder, or pass overwrite=True (--overwrite) to replace it"
        )
    if same and not overwrite:
        if splits is None:  # the data it would be trained on: is it the data the run was trained on?
            splits = prepare_splits(exp, source, quick, npz=npz)
        if finished.get("split_fingerprint") != splits.fingerprint():
            raise ValueError(
                f"{out_dir} holds a finished run of {exp.name} trained on another split of other data "
                f"(split {finished.get('split_fingerprint')}, this data's is {splits.fingerprint()}); choose "
                "another output folder, or pass overwrite=True (--overwrite) to train again on this data"
            )
        run = load_run(out_dir)
        changed = _changed_backbone(exp, run, backbone)
        if changed is None:
            print(f"{out_dir} holds a finished run of {exp.name}; loading it (overwrite=True trains again)")
            return run
        print(f"the backbone {changed.path} has changed since {out_dir} trained its heads on it; training them again")
        backbone = changed  # loaded once: the heads train on what was just compared
    if (work / "backup").exists() and not overwrite:
        if not _same_config(work / "config.json", wanted):
            raise ValueError(
                f"{work} holds an unfinished run of another configuration; "
                "choose another output folder, delete that one, or pass overwrite=True (--overwrite)"
            )
        print(f"resuming the unfinished run in {work}")
    else:  # a fresh start: stale or overwritten work is dropped, the finished run stays until replaced
        shutil.rmtree(work, ignore_errors=True)

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    keras.mixed_precision.set_global_policy(precision)
    try:
        return _fit(exp, out_dir, work, wanted, splits, source, npz, quick, seed, strategy, verbose, callbacks, backbone)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _run_settings(exp: Experiment, seed: int, precision: str, quick: bool) -> dict:
    """What makes two runs the same run, as ``config.json`` records it (tuples become lists, so that
    what ``train`` returns equals what it wrote)."""
    return json.loads(json.dumps({"experiment": exp.to_dict(), "seed": seed, "precision": precision, "quick": quick}))


def _finished_config(out_dir: Path) -> dict | None:
    """The config of the finished run in ``out_dir`` (its model saved), or None."""
    path = out_dir / "config.json"
    if not (path.is_file() and (out_dir / MODEL_FILE).exists()):
        return None
    config = json.loads(path.read_text())
    return config if config.get("finished", False) else None


def _same_config(path: Path, wanted: dict, finished: bool = False) -> bool:
    """Whether the run config at ``path`` has the ``wanted`` settings (and is finished, if asked).

    An experiment's description is not a setting: rewording it keeps the run.
    """
    if not path.exists():
        return False
    old = json.loads(path.read_text())
    if isinstance(old.get("experiment"), dict):  # fields added to Experiment since take their defaults
        old["experiment"] = Experiment.from_dict(old["experiment"]).to_dict()

    def settings(config: dict) -> dict:
        config = json.loads(json.dumps({k: config.get(k) for k in wanted}))
        if isinstance(config.get("experiment"), dict):
            config["experiment"].pop("description", None)
        return config

    same = settings(old) == settings(wanted)
    return same and (old.get("finished", False) or not finished)


def _changed_backbone(exp: Experiment, run: TrainedRun, spec):
    """The donor (a ``helpers.registry.LoadedModel``) of a finished frozen-backbone run if its weights are no
    longer the run's backbone.

    ``None`` for an experiment that trains everything, or when no ``spec`` is given and
    the default donor is gone (the run keeps its own copy of the backbone it trained on).
    """
    if not exp.backbone_from:
        return None
    from helpers import registry
    from helpers.models import same_backbone

    try:
        donor = registry.load(_donor_path(exp, spec, run.out_dir))
    except FileNotFoundError:
        if spec is not None:  # a donor named on purpose must exist
            raise
        return None
    return None if same_backbone(run.model, donor.model) else donor


def _donor_path(exp: Experiment, spec, out_dir: Path) -> Path:
    """Where the network to freeze is: ``spec`` if given, else the run ``exp.backbone_from`` beside ``out_dir``
    or that reference model (see ``train``)."""
    from helpers import registry

    return registry.resolve(spec) if spec is not None else registry.trained_dir(exp.backbone_from, out_dir.parent)


def _load_backbone(exp: Experiment, spec, out_dir: Path, splits: data_lib.Splits):
    """The trained network that ``exp.backbone_from`` names (see ``train``), checked against ``splits``.

    ``spec`` may also be a donor already loaded (``helpers.registry.LoadedModel``).
    """
    from helpers import registry

    donor = spec if isinstance(spec, registry.LoadedModel) else registry.load(_donor_path(exp, spec, out_dir))
    trained_on = donor.meta.get("split_fingerprint")
    if trained_on != splits.fingerprint():
        # Frozen features that saw this run's validation or test images would make both look easy.
        raise ValueError(
            f"the backbone {donor.path} was trained on split {trained_on}, this run's split is "
            f"{splits.fingerprint()}: its validation and test images could be the backbone's training "
            "images; train the backbone on this split first (or give --backbone one that was)"
        )
    return donor


def _fit(exp, out_dir, work, wanted, splits, source, npz, quick, seed, strategy_name, verbose, extra,
         backbone) -> TrainedRun:
    if splits is None:
        splits = prepare_splits(exp, source, quick, npz=npz)
    donor = _load_backbone(exp, backbone, out_dir, splits) if exp.backbone_from else None
    strategy = get_strategy(strategy_name)
    replicas = strategy.num_replicas_in_sync
    global_batch = exp.batch_size * replicas
    num_classes = len(splits.class_names)
    with strategy.scope():
        model = exp.build_model(num_classes)
        if donor is not None:  # before compiling: the optimizer then sees only the heads' weights
            from helpers.models import freeze_backbone

            freeze_backbone(model, donor.model)
        steps = int(np.ceil(len(splits.train) / global_batch))
        # With self-distillation, fit the training twin (same weights, extra outputs); save the model.
        fit_model = self_distilling(model) if exp.distill_weight > 0 else model
        compile_multi_exit(
            fit_model, exp.loss_weights, exp.make_optimizer(_schedule(exp, steps, exp.epochs)),
            distill_weight=exp.distill_weight, temperature=exp.distill_temperature,
            soft_labels=exp.soft_labels, label_smoothing=exp.label_smoothing,
        )
    names = list(fit_model.output_names)
    # Mixed or smoothed labels are soft: then every label, the validation ones too, is a
    # probability vector.
    one_hot = num_classes if exp.soft_labels else None
    train_ds = data_lib.make_dataset(
        splits.train, global_batch, True, names, seed, exp.augmentation, exp.mixing, exp.mixing_alpha, one_hot,
    )
    val_ds = data_lib.make_dataset(splits.val, global_batch, False, names, num_classes=one_hot)

    work.mkdir(parents=True, exist_ok=True)
    config = wanted | {
        "name": exp.name,
        "class_names": splits.class_names,
        "split_seed": splits.seed,
        "split_fingerprint": splits.fingerprint(),
        "split_sizes": [len(splits.train), len(splits.val), len(splits.test)],
        "strategy": strategy_name,
        "replicas": replicas,
        "global_batch_size": global_batch,
        # relative to the run folder, so that the record stays true when runs/ moves
        **({"backbone": os.path.relpath(donor.path, out_dir)} if donor is not None else {}),
        "finished": False,
    }
    _write_json(work / "config.json", config)
    _write_json(work / "split.json", {k: getattr(splits, k).ids for k in ("train", "val", "test")})
    callbacks = [
        keras.callbacks.BackupAndRestore(str(work / "backup"), delete_checkpoint=False),
        _EpochTimer(),
        keras.callbacks.CSVLogger(str(work / "history.csv"), append=True),
        *extra,
    ]
    start = time.perf_counter()
    fit_model.fit(train_ds, validation_data=val_ds, epochs=exp.epochs, callbacks=callbacks,
                  verbose=verbose, shuffle=False)  # the dataset shuffles itself
    model.save(work / MODEL_FILE)
    history = read_history(work)
    config |= {
        "finished": True,
        "train_seconds_last_session": round(time.perf_counter() - start, 1),
        "train_seconds_total": round(float(history["seconds"].sum()), 1) if "seconds" in history else None,
    }
    _write_json(work / "config.json", config)
    # Publish: every file by rename, the config (which marks the run finished) last.
    for name in ("history.csv", "split.json", MODEL_FILE, "config.json"):
        os.replace(work / name, out_dir / name)
    shutil.rmtree(work, ignore_errors=True)
    return TrainedRun(model, history, config, out_dir)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``python -m helpers.train --help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.train",
        description="Train a named experiment; run the same command again to resume after an interruption.",
    )
    parser.add_argument("--experiment", help="experiment name (see --list)")
    parser.add_argument("--out", help="run directory for checkpoints, history and the model")
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--data-dir", help=f"flower_photos-style folder (default: ${data_lib.DATA_DIR_ENV} or tfds)")
    data.add_argument(
        "--data-npz",
        help=f"an .npz with x_train, y_train, x_test, y_test (uint8, CIFAR-10 layout); CIFAR-10 "
        f"experiments default to ${data_lib.CIFAR10_ENV} or tfds",
    )
    parser.add_argument("--epochs", type=int, help="override the experiment's epochs")
    parser.add_argument("--quick", action="store_true", help="few images per class, 2 epochs (same architecture and image size)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--precision", choices=("auto", *PRECISIONS), default="auto",
        help="Keras dtype policy; auto (the default): what default_precision() picks for this machine",
    )
    parser.add_argument("--strategy", choices=STRATEGIES, default="default")
    parser.add_argument("--overwrite", action="store_true", help="train again over a finished run")
    parser.add_argument(
        "--backbone",
        help="for an experiment with a frozen backbone: the trained model to freeze (default: the run "
        "named after its backbone_from beside --out, else that reference model)",
    )
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    args = parser.parse_args(argv)
    if args.list:
        for exp in EXPERIMENTS.values():
            print(f"{exp.name}\t{exp.dataset}\t{exp.description}")
        return 0
    if not args.experiment or not args.out:
        parser.error("--experiment and --out are required (or --list)")
    try:
        run = train(
            args.experiment, args.out, source=args.data_dir, npz=args.data_npz, epochs=args.epochs, quick=args.quick,
            seed=args.seed, precision=args.precision,
            strategy=args.strategy, verbose=1,
            overwrite=args.overwrite, backbone=args.backbone,
        )
    except (ValueError, OSError) as err:  # DataError is a ValueError; OSError: a folder we may not write to
        print(f"error: {err}", file=sys.stderr)
        return 2
    last = run.history.iloc[-1] if len(run.history) else {}
    acc = last.get("val_final_accuracy", float("nan"))
    print(f"finished {run.config['name']}: {len(run.history)} epochs, final val accuracy {acc:.3f}, model in {run.out_dir / MODEL_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
