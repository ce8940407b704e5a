"""Find and load trained models: a model file, a run folder, or a reference model's name.

Reference models live in ``models/<name>/`` (``model.keras``, ``config.json``,
``history.csv`` and ``split.json``); runs written by ``helpers.train`` live in any
folder with ``model.keras`` and ``config.json``. Both carry the class names in label
order.

    python -m helpers.registry publish RUN_DIR [--name NAME] [--source DATA] [--rule RULE] [--overwrite]
    python -m helpers.registry retune NAME ... [--source DATA] [--rule RULE]

``publish`` copies a finished run into ``models/`` with its tau* chosen on its own
validation split (``publish_run``); ``retune`` chooses the tau* of reference models
again and rewrites only their ``config.json`` (``retune``).

``models/aliases.json`` gives some reference models a second, stable name: the
names the project promises (``flowers-vgg11`` is the recommended multi-exit model,
``flowers-vgg11-plain`` its plain baseline) stand for whichever trained model holds
that role, and every model keeps the name that says how it was trained.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from pathlib import Path

from helpers.paths import PROJECT_ROOT

MODELS_DIR = PROJECT_ROOT / "models"
MODEL_FILE = "model.keras"
ALIASES_FILE = "aliases.json"
MAX_MODEL_BYTES = 15 * 10**6
"""The largest ``model.keras`` a reference model may ship (15 MB: the repository is cloned
with every one of them); ``publish`` refuses a larger one."""


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
    """Names of the reference models shipped in ``models/`` (their folders; aliases not included)."""
    if not MODELS_DIR.is_dir():
        return []
    return sorted(p.name for p in MODELS_DIR.iterdir() if (p / MODEL_FILE).exists())


def aliases() -> dict[str, str]:
    """The second names of ``models/aliases.json``, each mapped to the reference model it stands for.

    The file maps each alias to ``{"model": <reference name>, "role": <what the alias promises>}``.

    Raises:
        ValueError: the file is not of that form, an alias is also a model folder's name
            (it would hide that model), or it names a model that is not shipped.
    """
    path = MODELS_DIR / ALIASES_FILE
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text())
        targets = {alias: entry["model"] for alias, entry in entries.items()}
    except (ValueError, AttributeError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a JSON object of {{alias: {{'model': name, 'role': ...}}}} ({err!r})") from err
    for alias, target in targets.items():
        if (MODELS_DIR / alias).exists():
            raise ValueError(f"{path}: the alias {alias!r} is also a folder in {MODELS_DIR}, whose model it would hide")
        if not (MODELS_DIR / str(target) / MODEL_FILE).is_file():
            raise ValueError(f"{path}: the alias {alias!r} stands for {target!r}, which is not a reference model")
    return targets


def resolve(spec: str | os.PathLike) -> Path:
    """The model file that ``spec`` names: a ``.keras`` file, a folder holding one, a reference name or an alias.

    Raises:
        FileNotFoundError: nothing matches; the message lists the reference models and aliases.
        ValueError: ``models/aliases.json`` is broken (see ``aliases``).
    """
    path = Path(spec)
    if path.is_file():
        return path
    if path.is_dir() and (path / MODEL_FILE).is_file():
        return path / MODEL_FILE
    if (MODELS_DIR / str(spec) / MODEL_FILE).is_file():
        return MODELS_DIR / str(spec) / MODEL_FILE
    targets = aliases()
    if str(spec) in targets:
        return MODELS_DIR / targets[str(spec)] / MODEL_FILE
    known = ", ".join(sorted(reference_names() + list(targets))) or "none shipped yet"
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

    import helpers.layers  # noqa: F401  (registers SpatialPyramidPooling)

    path = resolve(spec)
    if Path(path).suffix == ".keras" and not zipfile.is_zipfile(path):  # Keras would say "File not found"
        raise ValueError(f"{path} is not a Keras model file: a .keras model is a zip archive, as model.save writes it")
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


def trained_dir(name: str, runs_dir: str | os.PathLike) -> Path:
    """Where the trained model ``name`` is: a fresh run in ``runs_dir`` if it finished, else the reference model.

    This is how notebooks 03 to 06 work without training: they fall back to the
    reference models shipped in ``models/``. An alias (``aliases``) stands for the model it names.

    Raises:
        FileNotFoundError: neither exists.
    """
    name = aliases().get(name, name)  # an alias stands for its model, trained afresh or shipped
    run = Path(runs_dir) / name
    if (run / MODEL_FILE).is_file():
        return run
    if (MODELS_DIR / name / MODEL_FILE).is_file():
        return MODELS_DIR / name
    raise FileNotFoundError(
        f"no trained model {name!r}: neither a finished run in {run} nor a reference model in "
        f"{MODELS_DIR / name}; run notebook 02 or python -m helpers.train --experiment {name} --out {run}"
    )


def _kind(early_exits: int) -> str:
    """How ``--list`` describes a model with ``early_exits`` early exits."""
    if early_exits == 0:
        return "plain"
    return f"multi-exit ({early_exits} early exit{'' if early_exits == 1 else 's'})"


def _experiment_fields(config: dict) -> dict:
    """A run config's experiment, with the defaults of fields added to ``Experiment`` after the run."""
    from helpers.experiments import Experiment

    recorded = config.get("experiment") or {}
    try:
        return Experiment.from_dict(recorded).to_dict()
    except (TypeError, ValueError):  # not a full experiment record (a hand-made config): as it is
        return dict(recorded)


def publish(
    run_dir: str | os.PathLike, name: str, threshold: float, dataset: str = "tf_flowers", rule: str | None = None,
    model=None, overwrite: bool = False, thresholds: dict[str, float | int] | None = None,
) -> Path:
    """Copy a finished run into ``models/<name>/`` as a reference model.

    Writes ``model.keras`` without optimizer state (so it stays small),
    ``config.json`` (the run's, plus ``reference_name``, ``dataset``, ``kind`` (with the seed
    when it is not 0), the operating ``threshold`` tau* chosen on validation and the
    ``threshold_rule`` that chose it (``None`` for a plain model), and ``thresholds``, the
    operating thresholds of the other exit policies chosen the same way, when given),
    ``history.csv`` and,
    when the run has one, ``split.json`` (so ``helpers.benchmark --split test`` works on
    the reference model). ``model`` is the run's model when the caller has already loaded
    it (else it is loaded from the run).

    Publishing the same experiment and seed again (after training it again, say) replaces
    the reference model; a *different* run under an existing name (another seed of an
    experiment, published without its own name) is refused unless ``overwrite``.

    Raises:
        ValueError: ``models/<name>`` holds a run of another experiment or seed, and not ``overwrite``;
            ``name`` is an alias (``models/aliases.json``), which a folder of that name would hide;
            or the saved model is larger than ``MAX_MODEL_BYTES`` (nothing is written then).
    """
    import shutil

    import keras

    import helpers.layers  # noqa: F401  (registers SpatialPyramidPooling)

    run_dir = Path(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    out = MODELS_DIR / name
    if name in aliases():
        raise ValueError(
            f"{name!r} is an alias of {aliases()[name]!r} in {MODELS_DIR / ALIASES_FILE}; publish under the name "
            f"that says how the model was trained, then point the alias at it"
        )
    if (out / "config.json").is_file() and not overwrite:  # before anything is written
        old = json.loads((out / "config.json").read_text())
        was, now = _experiment_fields(old), _experiment_fields(config)
        differ = [f"{key} {was.get(key)!r} there, {now.get(key)!r} here"
                  for key in sorted(set(was) | set(now)) if was.get(key) != now.get(key)]
        if old.get("seed") != config.get("seed"):
            differ.append(f"seed {old.get('seed')!r} there, {config.get('seed')!r} here")
        if differ:
            raise ValueError(
                f"{out} already holds another run ({'; '.join(differ)}); publish this one under its own "
                f"name (--name), or pass --overwrite to replace it"
            )
    if model is None:
        model = keras.models.load_model(run_dir / MODEL_FILE, compile=False)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    partial = out / ".partial.keras"
    model.save(partial)
    size = partial.stat().st_size
    if size > MAX_MODEL_BYTES:
        partial.unlink()
        if created:
            out.rmdir()
        raise ValueError(
            f"{run_dir} saves to {size / 1e6:.1f} MB, above the {MAX_MODEL_BYTES / 1e6:g} MB a reference model "
            f"may ship ({model.count_params():,} parameters); publish a narrower network"
        )
    os.replace(partial, out / MODEL_FILE)
    config |= {
        "reference_name": name,
        "dataset": dataset,
        "kind": _kind(len(model.outputs) - 1)
        + (f", seed {config['seed']}" if config.get("seed") else ""),
        "threshold": float(threshold),
        "threshold_rule": rule,
    }
    if thresholds:
        config["thresholds"] = dict(thresholds)
    (out / "config.json").write_text(json.dumps(config, indent=1))
    shutil.copyfile(run_dir / "history.csv", out / "history.csv")
    if (run_dir / "split.json").is_file():
        shutil.copyfile(run_dir / "split.json", out / "split.json")
    return out


DATASET_NAMES = {"flowers": "tf_flowers", "cifar10": "cifar10"}
"""How ``config.json`` of a reference model names each experiment dataset."""


def _operating_threshold(
    run_dir: str | os.PathLike, source: str | os.PathLike | None, tolerance: float, rule: str, progress: bool,
) -> tuple[object, object, float, str | None, dict]:
    """``(run, experiment, tau*, rule, thresholds)`` of a finished run or reference model, tau* chosen on its
    own validation split.

    ``run`` is the loaded ``helpers.train.TrainedRun``; ``thresholds`` holds the operating
    threshold of every other exit policy (``max_prob``, ``patience``), chosen on the same
    validation split by the same rule and tolerance (``Analysis.operating_threshold``).

    A plain model has no exit to choose for: its tau* is 0, its rule ``None`` and its
    ``thresholds`` empty, and no images are read.
    """
    from helpers.evaluation import THRESHOLD_RULES, analyse
    from helpers.experiments import Experiment
    from helpers.policies import POLICIES
    from helpers.train import load_run, prepare_splits

    if rule not in THRESHOLD_RULES:  # before the images are read
        raise ValueError(f"unknown threshold rule {rule!r}; choose one of {THRESHOLD_RULES}")
    run = load_run(run_dir)
    exp = Experiment.from_dict(run.config["experiment"])
    if len(run.model.outputs) == 1:
        return run, exp, 0.0, None, {}
    splits = prepare_splits(exp, source, quick=bool(run.config.get("quick")), progress=progress)
    if splits.fingerprint() != run.config["split_fingerprint"]:
        raise ValueError(
            f"the rebuilt split ({splits.fingerprint()}) is not the one {run_dir} was trained on "
            f"({run.config['split_fingerprint']}); pass the same data as --source"
        )
    analysis = analyse(run.model, splits, exp.name, tolerance, rule=rule)
    others = {name: analysis.operating_threshold(name) for name in POLICIES if name != "entropy"}
    return run, exp, analysis.threshold, rule, others


def publish_run(
    run_dir: str | os.PathLike, name: str | None = None, source: str | os.PathLike | None = None,
    tolerance: float = 0.01, progress: bool = True, rule: str | None = None, overwrite: bool = False,
) -> Path:
    """Publish a finished run with its operating threshold tau* chosen on its own validation split.

    The split is rebuilt from the run's configuration (``helpers.train.prepare_splits``
    with ``source``) and must have the fingerprint recorded at training time; tau* is
    ``helpers.evaluation.analyse``'s choice (by ``rule`` among the thresholds within
    ``tolerance`` of the final exit's validation accuracy). The other exit policies'
    thresholds are chosen the same way and recorded as ``thresholds`` (what
    ``helpers.evaluate`` and ``helpers.benchmark`` use for ``--policy`` without
    ``--threshold``).

    Args:
        run_dir: a finished run of ``helpers.train``.
        name: the reference name (default: the experiment's name).
        source: the data the run was trained on (see ``prepare_splits``).
        tolerance: accuracy drop allowed at tau*.
        progress: show a progress bar while decoding images.
        rule: a ``helpers.evaluation.THRESHOLD_RULES`` rule (default: the project's).
        overwrite: replace a reference model of the same name from another run (see ``publish``).

    Raises:
        ValueError: the rebuilt split is not the one the run was trained on, an unknown
            rule, the name is taken by another run, or the model is too large (see ``publish``).
    """
    from helpers.evaluation import DEFAULT_THRESHOLD_RULE

    rule = rule or DEFAULT_THRESHOLD_RULE
    run, exp, threshold, used, others = _operating_threshold(run_dir, source, tolerance, rule, progress)
    dataset = DATASET_NAMES.get(exp.dataset, exp.dataset)
    return publish(run_dir, name or exp.name, threshold, dataset, used, model=run.model, overwrite=overwrite,
                   thresholds=others)


def retune(
    spec: str | os.PathLike, source: str | os.PathLike | None = None, tolerance: float = 0.01,
    rule: str | None = None, progress: bool = True,
) -> tuple[Path, float | None, float, str | None]:
    """Choose a reference model's tau* (and its other policies' ``thresholds``) again, by ``rule``, and
    rewrite only its ``config.json``.

    ``model.keras`` and the rest stay byte for byte as they are (a re-published model would
    be saved again, and a new copy of its weights would go into git). A plain model keeps
    its threshold 0.

    Args:
        spec: a reference model's name or folder.
        source, tolerance, progress: as for ``publish_run``.
        rule: a ``helpers.evaluation.THRESHOLD_RULES`` rule (default: the project's).

    Returns:
        ``(folder, old tau*, new tau*, rule)``, the rule ``None`` for a plain model.

    Raises:
        FileNotFoundError: no such reference model.
        ValueError: the rebuilt split is not the one it was trained on, or an unknown rule.
    """
    from helpers.evaluation import DEFAULT_THRESHOLD_RULE

    rule = rule or DEFAULT_THRESHOLD_RULE
    folder = resolve(spec).parent
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    if "reference_name" not in config:
        raise ValueError(f"{folder} is not a published reference model (its config.json has no reference_name)")
    _, _, threshold, used, others = _operating_threshold(folder, source, tolerance, rule, progress)
    old = config.get("threshold")
    config |= {"threshold": float(threshold), "threshold_rule": used}
    if others:
        config["thresholds"] = others
    config_path.write_text(json.dumps(config, indent=1))
    return folder, old, config["threshold"], used


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.registry publish RUN_DIR [--name NAME] [--source DATA] [--rule RULE] [--overwrite]``
    or ``python -m helpers.registry retune NAME ... [--source DATA] [--rule RULE]``."""
    import argparse
    import sys

    from helpers.evaluation import DEFAULT_THRESHOLD_RULE, THRESHOLD_RULES

    parser = argparse.ArgumentParser(
        prog="python -m helpers.registry",
        description="Publish a finished training run as a reference model in models/, with tau* chosen on "
        "validation (publish), or choose the tau* of reference models again (retune).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    pub = sub.add_parser("publish", help="copy a finished run into models/<name>/")
    pub.add_argument("run_dir")
    pub.add_argument("--name", help="reference name (default: the experiment's name)")
    pub.add_argument("--overwrite", action="store_true",
                     help="replace a reference model of that name published from another run (experiment or seed)")
    retune_cmd = sub.add_parser(
        "retune", help="choose the tau* of reference models again; rewrites only their config.json",
    )
    retune_cmd.add_argument("names", nargs="+", metavar="NAME", help="reference model names or folders")
    for command in (pub, retune_cmd):
        command.add_argument(
            "--source", help="the data it was trained on: flower_photos folder, CIFAR-10 .npz or 'tfds'",
        )
        command.add_argument(
            "--rule", choices=THRESHOLD_RULES, default=DEFAULT_THRESHOLD_RULE,
            help="how tau* is picked among the thresholds within 1 point on validation (default: %(default)s)",
        )
    args = parser.parse_args(argv)
    try:
        if args.command == "retune":
            for name in args.names:
                folder, old, new, rule = retune(name, args.source, rule=args.rule)
                print(f"{folder.name}: threshold {old} -> {new} ({rule or 'plain network, no exit to choose'})")
            return 0
        out = publish_run(args.run_dir, args.name, args.source, rule=args.rule, overwrite=args.overwrite)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    config = json.loads((out / "config.json").read_text())
    size = (out / MODEL_FILE).stat().st_size / 2**20
    print(f"published {out} ({size:.1f} MiB), threshold {config['threshold']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
