"""Evaluate a trained early-exit model on any folder of images.

    python -m helpers.evaluate MODEL --data-dir DIR [--threshold T] [--policy entropy] [--json]
    python -m helpers.evaluate --list

MODEL is a model file, a run folder or the name of a reference model. DIR holds
``<class>/<image>`` folders named after (some of) the model's classes; every image
in it is evaluated (no split). The output: the number of images, each exit's
accuracy, and at threshold T (default: the model's tau*, chosen on validation) the
early-exit accuracy, the fraction of images leaving at each exit, the mean cost
relative to the plain network (exit heads included) and the speed-up it predicts.

JSON keys: ``model``, ``images``, ``exit_names``, ``exit_accuracy`` (list, final
last), ``final_accuracy``, ``policy``, ``threshold``, ``accuracy``,
``exit_fractions`` (list), ``relative_cost``, ``predicted_speedup``
(= 1 / relative_cost).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from helpers import data as data_lib
from helpers import registry
from helpers.cost import relative_costs
from helpers.evaluation import collect_logits, evaluate_threshold, exit_accuracies
from helpers.policies import POLICIES, check_threshold, get_policy

DEFAULT_THRESHOLD = 0.5


def remap_labels(folder_classes: list[str], model_classes: list[str]) -> np.ndarray:
    """For each class folder, the model's label index.

    Raises:
        DataError: a folder names a class the model does not know.
    """
    unknown = [c for c in folder_classes if c not in model_classes]
    if unknown:
        raise data_lib.DataError(
            f"class folder(s) {', '.join(unknown)} unknown to the model; "
            f"its classes are: {', '.join(model_classes)}"
        )
    return np.asarray([model_classes.index(c) for c in folder_classes], dtype=np.int32)


def evaluate_folder(
    spec: str, data_dir: str, threshold: float | None = None, policy: str = "entropy",
    batch_size: int = 64, progress: bool = True,
) -> dict:
    """Evaluate the model ``spec`` on every image under ``data_dir`` (see module docstring)."""
    rule = get_policy(policy)
    loaded = registry.load(spec)
    model = loaded.model
    if threshold is None:
        threshold = loaded.meta.get("threshold", DEFAULT_THRESHOLD)
    threshold = check_threshold(threshold)
    size = int(model.inputs[0].shape[1])
    _, _, folder_classes = data_lib.find_image_files(data_dir, min_classes=1)
    label_map = remap_labels(folder_classes, loaded.class_names)  # before decoding anything
    images = data_lib.load_folder(data_dir, size, progress=progress, min_classes=1)
    labels = label_map[images.labels]
    images = data_lib.ImageSet(images.images, labels, loaded.class_names, images.ids)
    logits, labels = collect_logits(model, data_lib.make_dataset(images, batch_size))
    costs = relative_costs(model)
    at = evaluate_threshold(logits, labels, costs, threshold, rule)
    accuracy = exit_accuracies(logits, labels)
    return {
        "model": str(spec),
        "images": int(len(labels)),
        "exit_names": list(model.output_names),
        "exit_accuracy": [float(a) for a in accuracy],
        "final_accuracy": float(accuracy[-1]),
        "policy": policy,
        "threshold": threshold,
        "accuracy": at["accuracy"],
        "exit_fractions": [float(f) for f in at["exit_fractions"]],
        "relative_cost": at["relative_cost"],
        "predicted_speedup": at["predicted_speedup"],
    }


def format_report(result: dict) -> str:
    """The human-readable report of ``evaluate_folder``."""
    lines = [f"model {result['model']} on {result['images']} images", "", "exit      accuracy  leaves here"]
    for name, acc, frac in zip(result["exit_names"], result["exit_accuracy"], result["exit_fractions"], strict=True):
        lines.append(f"{name:9s} {acc:8.1%}  {frac:10.1%}")
    lines += [
        "",
        f"final classifier alone: accuracy {result['final_accuracy']:.1%}, relative cost 1.00 (plain network)",
        f"early exit ({result['policy']}, threshold {result['threshold']:.3f}): accuracy {result['accuracy']:.1%}, "
        f"relative cost {result['relative_cost']:.3f} (heads included), predicted speed-up {result['predicted_speedup']:.2f}x",
    ]
    return "\n".join(lines)


def list_models() -> list[str]:
    """One line per reference model: name, dataset, kind."""
    lines = []
    for name in registry.reference_names():
        meta = registry.read_meta(registry.MODELS_DIR / name / registry.MODEL_FILE)
        lines.append(f"{name}\t{meta.get('dataset', '?')}\t{meta.get('kind', '?')}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", help="model file, run folder or reference model name")
    parser.add_argument("--data-dir", help="folder of <class>/<image> files to evaluate")
    parser.add_argument("--threshold", type=float, help="exit threshold (default: the model's tau*)")
    parser.add_argument("--policy", default="entropy", choices=sorted(POLICIES))
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--list", action="store_true", help="list the reference models and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(list_models()) or "no reference models shipped")
        return 0
    if not args.model or not args.data_dir:
        parser.error("MODEL and --data-dir are required (or --list)")
    try:
        result = evaluate_folder(args.model, args.data_dir, args.threshold, args.policy, progress=not args.json)
    except (ValueError, FileNotFoundError) as err:  # DataError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else format_report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
