"""Evaluate a trained early-exit model on any folder of images, or on the test arrays of an ``.npz``.

    python -m helpers.evaluate MODEL --data-dir DIR [--threshold T | --thresholds T1,T2,... | --budget B]
                               [--policy P] [--exits E1,E2,...] [--baseline PLAIN] [--json]
    python -m helpers.evaluate MODEL --data-npz FILE [...]
    python -m helpers.evaluate --list

MODEL is a model file, a run folder, or the name of a reference model or of an
alias in ``models/aliases.json`` (``flowers-vgg11``, the recommended multi-exit
model, and ``flowers-vgg11-plain``, its plain baseline). DIR holds
``<class>/<image>`` folders named after (some of) the model's classes; every image
in it is evaluated (no split). FILE is an ``.npz`` in the layout of
``keras.datasets.cifar10.load_data()``: its ``x_test, y_test`` are evaluated, the
labels being indices into the model's classes (CIFAR-10 order for the CIFAR-10
models). The output: the number of images, each exit's
accuracy, and at threshold T the early-exit accuracy, the fraction of images leaving
at each exit, the mean cost relative to the plain network (exit heads included) and
the speed-up it predicts.

``--policy`` is ``entropy`` (default; T in [0, 1], higher = more early exits),
``max_prob`` (T in [0, 1], higher = fewer early exits) or ``patience`` (T = p, an
integer >= 1: leave once p consecutive exits agree). Without ``--threshold`` the
entropy policy uses the model's tau* (chosen on validation at training time), the
others the model's ``thresholds[policy]`` if its metadata has one, else the policy's
default (max_prob 0.9, patience 2).

``--thresholds T1,T2,...`` (instead of ``--threshold``) gives one threshold per early
exit, in output order (entropy and max_prob only; with the entropy rule 0 closes an
exit: nobody leaves there, though its head still runs and is still counted).

``--exits E1,E2,...`` evaluates the model with only those early exits (output names
such as ``exit_2`` or 1-based numbers, comma-separated; ``none`` keeps the final
classifier alone): the other heads are removed, not closed
(``helpers.models.select_exits``), so their cost is not counted, and every per-exit
list of the output covers the kept exits only. The model's tau* was chosen with every
exit and is no operating point for fewer, so without ``--threshold``, ``--thresholds``
or ``--budget`` the threshold is chosen again for the kept exits on the validation
images (found as for ``--budget``, below), as tau* was: by ``choose_on_validation`` with
the model's threshold rule and a tolerance of one point below the final exit
(``TOLERANCE``). Keeping every early exit keeps tau*.

``--baseline PLAIN`` evaluates a plain network (model file, run folder or reference
name, such as ``flowers-vgg11-plain``) on the same images (decoded once when it takes
the model's input size, read again at its own otherwise), and checks the project's
four targets (``helpers.report.target_checks``): the final exit at least
``--target-accuracy`` accurate (default ``report.TARGET_ACCURACY``, 0.85), the early
exit at the threshold within ``TOLERANCE`` (one point) of the final exit and at a mean
cost of at most ``--target-cost`` (default ``report.TARGET_COST``, 0.5), and the final
exit no more than one point below the plain network. Its class names must be the
model's, in the same order; that is checked before any image is read. A multi-exit
network given as the baseline is accepted with a note on stderr: its final classifier
stands in for the plain network.

``--budget B`` (instead of ``--threshold``) asks for a mean relative cost of at most
B (0.5 = half of the plain network): the threshold is chosen on the *validation*
split (``helpers.budget.threshold_for_budget``: the most accurate threshold whose
validation cost is <= B), then DIR is evaluated at it, so the cost actually spent on
DIR can differ slightly from B. The validation images come from ``--val-dir VDIR``
(a ``<class>/<image>`` folder) if given; otherwise the split the model was trained
on is rebuilt from its run configuration (``helpers.train.prepare_splits`` with the
experiment, split seed and quick flag of its ``config.json``, reading the data from
``--source``, default ``$EARLY_EXIT_DATA_DIR``, ``$EARLY_EXIT_CIFAR10_NPZ`` for
CIFAR-10 models, or tfds) and accepted only if its
``split_fingerprint`` matches the one recorded at training time.

JSON keys: ``model`` (MODEL as given), ``reference_model`` (the name the model was
published under in ``models/``, which differs from ``model`` for an alias such as
``flowers-vgg11``; null for a model file or run folder), ``images``, ``exit_names``, ``exit_accuracy`` (list, final
last), ``final_accuracy``, ``policy``, ``threshold`` (null with ``--thresholds``), ``thresholds``
(the list given with ``--thresholds``, else null), ``accuracy``,
``exit_fractions`` (list), ``relative_cost``, ``predicted_speedup``
(= 1 / relative_cost), ``final_accuracy_interval`` and ``accuracy_interval`` (95 %
Wilson intervals ``[low, high]`` of the two accuracies on these images,
``helpers.evaluation.accuracy_interval``) and ``drop_p_value`` (exact McNemar
p-value of the difference between the early-exit and final-classifier accuracies,
paired on the same images, ``helpers.evaluation.paired_test``); with ``--budget``
also ``budget``: ``{"budget", "validation" (where the validation images came from),
"val_images", "threshold", "val_accuracy", "val_relative_cost", "within_budget"}``
(``within_budget``: the cost on DIR is <= B); with ``--exits`` and the threshold chosen
for them, ``subset_threshold``: ``{"rule", "tolerance", "validation", "val_images",
"threshold", "val_accuracy", "val_final_accuracy", "val_relative_cost"}``; with ``--baseline``,
``baseline``: ``{"model", "reference_model", "final_accuracy", "final_accuracy_interval",
"p_value"}`` (``p_value``: exact McNemar p-value of the gap between the two final
classifiers on the same images) and ``targets``: a list of ``{"target", "measured",
"met"}``, one per target in the order above.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from collections.abc import Sequence

import numpy as np

from helpers import data as data_lib
from helpers import registry, report
from helpers.budget import evaluate_per_exit
from helpers.cost import relative_costs
from helpers.evaluation import (
    DEFAULT_THRESHOLD_RULE,
    accuracy_interval,
    choose_on_validation,
    collect_logits,
    correct,
    evaluate_threshold,
    exit_accuracies,
    paired_test,
)
from helpers.limits import at_most
from helpers.models import parse_exits, select_exits
from helpers.policies import POLICIES, resolve_policy

DEFAULT_THRESHOLD = 0.5

TOLERANCE = 0.01
"""The accuracy drop below the final exit allowed when ``--exits`` chooses a threshold on
validation: one point, the tolerance every published tau* was chosen with
(``helpers.registry.publish_run``)."""


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


def default_threshold(meta: dict, policy: str = "entropy") -> float | int:
    """The threshold used without ``--threshold``: tau* for entropy, else ``meta["thresholds"][policy]`` or the policy's default."""
    spec = resolve_policy(policy)
    if spec.name == "entropy":
        return meta.get("threshold", DEFAULT_THRESHOLD)
    return (meta.get("thresholds") or {}).get(spec.name, spec.default_threshold)


def threshold_note(meta: dict, policy: str = "entropy", subset: bool = False) -> str | None:
    """What the command line says when ``default_threshold`` has no recorded threshold to use.

    A run folder of ``helpers.train`` records no tau* (``helpers.registry publish`` chooses
    it), so its default is the policy's generic one: easy to miss in a table of results.
    With ``subset`` (only some early exits kept, ``--exits``), a recorded threshold is
    the one chosen with every exit, which the note says too.

    Returns:
        A one-line note, or None when ``meta`` records the policy's threshold (and not ``subset``).
    """
    spec = resolve_policy(policy)
    recorded = "threshold" in meta if spec.name == "entropy" else spec.name in (meta.get("thresholds") or {})
    if recorded:
        if not subset:
            return None
        return (f"note: the model's threshold {default_threshold(meta, spec.name)} was chosen with every exit; "
                "with --exits it is not an operating point chosen for these exits (pass --threshold: "
                "python -m helpers.evaluate MODEL --exits ... chooses one for them on validation)")
    what = "tau*" if spec.name == "entropy" else f"{spec.name} threshold"
    return (f"note: the model records no {what}; using the default {default_threshold(meta, spec.name)} "
            "(pass --threshold, or publish the run with python -m helpers.registry publish to record tau*)")


def _read_folder(folder: str, size: int, class_names: list[str], progress: bool) -> data_lib.ImageSet:
    """Every image under ``folder`` at ``size`` squared, labelled in the model's label order."""
    _, _, folder_classes = data_lib.find_image_files(folder, min_classes=1)
    label_map = remap_labels(folder_classes, class_names)  # before decoding anything
    images = data_lib.load_folder(folder, size, progress=progress, min_classes=1)
    return data_lib.ImageSet(images.images, label_map[images.labels], class_names, images.ids)


def _read_npz(path: str, size: int, class_names: list[str]) -> data_lib.ImageSet:
    """The test arrays ``x_test, y_test`` of an ``.npz`` at ``size`` squared."""
    _, test = data_lib.load_npz(path, class_names)  # checks arrays, dtypes and the label range
    return data_lib.resize_images(test, size)


def _input_size(model) -> int:
    """The side of the square images ``model`` takes."""
    return int(model.inputs[0].shape[1])


def _folder_logits(model, folder: str, class_names: list[str], batch_size: int, progress: bool):
    """Logits ``(N, E, K)`` and labels (in the model's label order) of every image under ``folder``."""
    images = _read_folder(folder, _input_size(model), class_names, progress)
    return collect_logits(model, data_lib.make_dataset(images, batch_size))


def validation_logits(
    loaded: registry.LoadedModel, val_dir: str | None = None, source: str | None = None,
    batch_size: int = 64, progress: bool = True, purpose: str = "--budget",
) -> tuple[np.ndarray, np.ndarray, str]:
    """Validation logits for ``--budget`` (or what ``purpose`` names): from ``val_dir``, or
    from the rebuilt training split.

    Returns:
        ``(logits, labels, description of where they came from)``.

    Raises:
        DataError: no ``val_dir`` and the model has no run configuration, or the
            rebuilt split does not match the one it was trained on.
    """
    if val_dir is not None:
        logits, labels = _folder_logits(loaded.model, val_dir, loaded.class_names, batch_size, progress)
        return logits, labels, f"val-dir {val_dir}"
    meta = loaded.meta
    if "experiment" not in meta or "split_fingerprint" not in meta:
        raise data_lib.DataError(
            f"{purpose} needs validation images, and {loaded.path} has no training configuration (experiment, "
            "split_fingerprint) to rebuild its split from; pass --val-dir DIR with the validation images"
            + ("" if purpose == "--budget" else ", or --threshold T")
        )
    from helpers.experiments import Experiment
    from helpers.train import prepare_splits

    exp = Experiment.from_dict(meta["experiment"])
    try:
        # stdout carries the report (one JSON object with --json): tfds's download messages go to stderr
        with contextlib.redirect_stdout(sys.stderr):
            splits = prepare_splits(exp, source, quick=bool(meta.get("quick", False)), progress=progress)
    except data_lib.DataError as err:
        raise data_lib.DataError(f"rebuilding the training split for {purpose}: {err} (here: --source DATA, or "
                                 "--val-dir DIR with the validation images)") from err
    if splits.fingerprint() != meta["split_fingerprint"] or splits.class_names != loaded.class_names:
        raise data_lib.DataError(
            f"the rebuilt split (fingerprint {splits.fingerprint()}) is not the one {loaded.path} was trained on "
            f"({meta['split_fingerprint']}): the data source differs; point --source at the same data, "
            "or pass --val-dir DIR with the validation images"
            + ("" if purpose == "--budget" else ", or --threshold T")
        )
    logits, labels = collect_logits(loaded.model, data_lib.make_dataset(splits.val, batch_size))
    return logits, labels, f"rebuilt split {meta['split_fingerprint']}"


def evaluate_model(
    spec: str, data_dir: str | None = None, threshold: float | None = None, policy: str = "entropy",
    batch_size: int = 64, progress: bool = True, budget: float | None = None,
    val_dir: str | None = None, source: str | None = None, data_npz: str | None = None,
    thresholds: Sequence[float] | None = None, exits: Sequence[str | int] | None = None,
    baseline: str | None = None, target_accuracy: float = report.TARGET_ACCURACY,
    target_cost: float = report.TARGET_COST,
) -> dict:
    """Evaluate the model ``spec`` on every image under ``data_dir``, or on the test arrays of
    ``data_npz`` (see module docstring).

    Args:
        spec: model file, run folder or reference model name.
        data_dir: ``<class>/<image>`` folder to evaluate.
        threshold: the policy's threshold (default: see ``default_threshold``).
        policy: ``entropy``, ``max_prob`` or ``patience``.
        batch_size: inference batch size.
        progress: show progress bars.
        budget: target mean relative cost; the threshold is then chosen on validation
            (exclusive with ``threshold``).
        val_dir: validation images for ``budget``, or for choosing the threshold of a
            subset of the exits (default: rebuild the training split).
        source: data source for rebuilding the split (see ``helpers.train.prepare_splits``).
        data_npz: instead of ``data_dir``, an ``.npz`` whose ``x_test, y_test`` are evaluated.
        thresholds: one threshold per early exit (of the kept exits, with ``exits``),
            instead of ``threshold`` (stateless policies only).
        exits: keep only these early exits (names or 1-based numbers,
            ``helpers.models.select_exits``); None keeps them all. Without a threshold,
            per-exit thresholds or a budget, the threshold is chosen for the kept exits
            on validation (``subset_threshold``).
        baseline: a plain network (model file, run folder or reference name) evaluated
            on the same images: its final classifier's accuracy and the targets (below)
            join the result (``baseline_result``).
        target_accuracy, target_cost: with ``baseline``, the final exit's accuracy target
            and the operating point's cost target (``helpers.report.target_checks``).

    Returns:
        The dict described in the module docstring.
    """
    policy_spec = resolve_policy(policy)
    if (data_dir is None) == (data_npz is None):
        raise ValueError("give the images to evaluate as a folder (--data-dir) or an .npz (--data-npz), one of them")
    if sum(x is not None for x in (threshold, thresholds, budget)) > 1:
        raise ValueError("give a threshold, per-exit thresholds or a budget, one of them")
    if not 0 <= target_accuracy <= 1:
        raise ValueError(f"the accuracy target is a fraction in [0, 1], got {target_accuracy}")
    if not target_cost > 0:
        raise ValueError(f"the cost target is a positive fraction of the plain network, got {target_cost}")
    from helpers.inference import with_precision

    loaded = registry.load(spec)
    # float32 once, for the validation and the evaluated images alike (collect_logits would
    # convert a bfloat16-trained model again on every call; with_precision returns a float32
    # model as it is)
    model = with_precision(loaded.model, "float32")
    # early exits removed, some kept: tau* (chosen with every exit) does not apply
    subset = False
    if exits is not None:
        everyone = len(model.outputs)
        model = select_exits(model, exits)
        subset = 1 < len(model.outputs) < everyone
    loaded = dataclasses.replace(loaded, model=model)
    base = None
    if baseline is not None:  # before any image is read: a wrong baseline should not wait for them
        base = registry.load(baseline)
        if base.class_names != loaded.class_names:
            raise ValueError(
                f"the baseline {baseline} has the classes {', '.join(base.class_names)}, the model "
                f"{', '.join(loaded.class_names)}: compare networks trained on the same classes"
            )
        base = dataclasses.replace(base, model=with_precision(base.model, "float32"))
    costs = relative_costs(model)
    if thresholds is not None:
        thresholds = _check_per_exit(thresholds, len(costs) - 1, policy_spec)
    if data_dir is not None and (budget is not None or subset):
        # the folder's layout and class names first: a mistake there should not wait for a validation pass
        remap_labels(data_lib.find_image_files(data_dir, min_classes=1)[2], loaded.class_names)
    budget_info = None
    if budget is not None:
        from helpers.budget import threshold_for_budget

        val_logits, val_labels, where = validation_logits(loaded, val_dir, source, batch_size, progress)
        threshold = threshold_for_budget(val_logits, val_labels, costs, budget, policy_spec)
        val = evaluate_threshold(val_logits, val_labels, costs, threshold, policy_spec)
        budget_info = {"budget": float(budget), "validation": where, "val_images": int(len(val_labels)),
                       "threshold": threshold, "val_accuracy": val["accuracy"],
                       "val_relative_cost": val["relative_cost"]}
    subset_info = None
    if subset and threshold is None and thresholds is None:
        subset_info = subset_threshold(loaded, costs, policy_spec, val_dir, source, batch_size, progress)
        threshold = subset_info["threshold"]
    note = None
    if threshold is None and thresholds is None:
        threshold = default_threshold(loaded.meta, policy_spec.name)
        note = threshold_note(loaded.meta, policy_spec.name)
    if threshold is not None:
        threshold = policy_spec.check(threshold)
    if data_npz is not None:
        images = _read_npz(data_npz, _input_size(model), loaded.class_names)
    else:
        images = _read_folder(data_dir, _input_size(model), loaded.class_names, progress)
    logits, labels = collect_logits(model, data_lib.make_dataset(images, batch_size))
    if note:  # only once the images are known good, so that an input error stays one line
        print(note, file=sys.stderr)
    if base is not None and len(base.model.outputs) > 1:
        print(f"note: the baseline {baseline} is a multi-exit network, not a plain one: its final classifier "
              "stands in for the plain network", file=sys.stderr)
    if thresholds is not None:
        at = evaluate_per_exit(logits, labels, costs, thresholds, policy_spec)
    else:
        at = evaluate_threshold(logits, labels, costs, threshold, policy_spec)
    accuracy = exit_accuracies(logits, labels)
    final_right = correct(logits, labels)[:, -1]
    early_right = at["predictions"] == labels
    result = {
        "model": str(spec),
        "reference_model": loaded.meta.get("reference_name"),  # what an alias stands for; None for a run
        "images": int(len(labels)),
        "exit_names": list(model.output_names),
        "exit_accuracy": [float(a) for a in accuracy],
        "final_accuracy": float(accuracy[-1]),
        "policy": policy_spec.name,
        "threshold": threshold,
        "thresholds": thresholds,
        "accuracy": at["accuracy"],
        "exit_fractions": [float(f) for f in at["exit_fractions"]],
        "relative_cost": at["relative_cost"],
        "predicted_speedup": at["predicted_speedup"],
        "final_accuracy_interval": list(accuracy_interval(final_right)),
        "accuracy_interval": list(accuracy_interval(early_right)),
        "drop_p_value": paired_test(early_right, final_right)["p_value"],
    }
    if budget_info is not None:
        budget_info["within_budget"] = bool(at_most(at["relative_cost"], budget_info["budget"]))
        result["budget"] = budget_info
    if subset_info is not None:
        result["subset_threshold"] = subset_info
    if base is not None:
        result["baseline"] = baseline_result(base, baseline, final_right, labels, data_dir, data_npz, batch_size,
                                             progress, images)
        names = report.target_names(target_accuracy, target_cost, TOLERANCE, at="the threshold")
        checks = report.target_checks(result["final_accuracy"], result["accuracy"], result["relative_cost"],
                                      result["baseline"]["final_accuracy"], target_accuracy, target_cost, TOLERANCE)
        result["targets"] = [{"target": full, "measured": measured, "met": met}
                             for (full, _), (measured, met) in zip(names, checks, strict=True)]
    return result


def baseline_result(
    base: registry.LoadedModel, spec: str, final_right: np.ndarray, labels: np.ndarray, data_dir: str | None,
    data_npz: str | None, batch_size: int = 64, progress: bool = True, images: data_lib.ImageSet | None = None,
) -> dict:
    """The baseline's final classifier on the images the model was evaluated on.

    Args:
        base: the loaded baseline (float32), with the model's class names.
        spec: the baseline as given (for the record).
        final_right: whether the model's final classifier got each image right, in the
            order the images were read; ``labels`` their labels.
        data_dir, data_npz: the images (one of them), read again at the baseline's input size.
        images: the images as the model was given them: used as they are when the
            baseline takes the same input size, instead of reading them again.

    Returns:
        ``{"model", "reference_model", "final_accuracy", "final_accuracy_interval",
        "p_value"}``: ``p_value`` is the exact McNemar p-value of the gap between the
        model's and the baseline's final classifiers on the same images (``paired_test``).
    """
    size = _input_size(base.model)
    if images is None or images.images.shape[1:3] != (size, size):
        if data_npz is not None:
            images = _read_npz(data_npz, size, base.class_names)
        else:
            images = _read_folder(data_dir, size, base.class_names, progress)
    logits, base_labels = collect_logits(base.model, data_lib.make_dataset(images, batch_size))
    if not np.array_equal(base_labels, labels):  # the same images, in the same order, or no pairing
        raise data_lib.DataError("the images changed while they were read for the baseline")
    right = correct(logits, base_labels)[:, -1]
    return {"model": str(spec), "reference_model": base.meta.get("reference_name"),
            "final_accuracy": float(right.mean()), "final_accuracy_interval": list(accuracy_interval(right)),
            "p_value": paired_test(final_right, right)["p_value"]}


def subset_threshold(
    loaded: registry.LoadedModel, costs: Sequence[float], policy, val_dir: str | None = None,
    source: str | None = None, batch_size: int = 64, progress: bool = True,
) -> dict:
    """The threshold of a model with only some of its exits, chosen on validation as tau* was.

    ``loaded.model`` is the network with the kept exits (``select_exits``); its
    validation logits come from ``val_dir`` or the rebuilt split (``validation_logits``),
    and ``choose_on_validation`` picks the threshold with the model's recorded
    ``threshold_rule`` (default ``DEFAULT_THRESHOLD_RULE``) within ``TOLERANCE`` of the
    final exit's validation accuracy.

    Returns:
        ``{"rule", "tolerance", "validation", "val_images", "threshold", "val_accuracy",
        "val_final_accuracy", "val_relative_cost"}``.

    Raises:
        DataError: no validation images (see ``validation_logits``).
    """
    val_logits, val_labels, where = validation_logits(
        loaded, val_dir, source, batch_size, progress, purpose="choosing a threshold for --exits")
    rule = loaded.meta.get("threshold_rule") or DEFAULT_THRESHOLD_RULE
    threshold = choose_on_validation(val_logits, val_labels, costs, TOLERANCE, rule, policy)
    at = evaluate_threshold(val_logits, val_labels, costs, threshold, policy)
    return {"rule": rule, "tolerance": TOLERANCE, "validation": where, "val_images": int(len(val_labels)),
            "threshold": threshold, "val_accuracy": at["accuracy"],
            "val_final_accuracy": float(exit_accuracies(val_logits, val_labels)[-1]),
            "val_relative_cost": at["relative_cost"]}


def _check_per_exit(thresholds: Sequence[float], early_exits: int, policy) -> list[float]:
    """``thresholds`` validated: stateless policy, one per early exit, each in the policy's range."""
    if policy.integer:
        raise ValueError(f"per-exit thresholds need a stateless policy (entropy or max_prob), not {policy.name}")
    thresholds = [float(t) for t in thresholds]
    if len(thresholds) != early_exits:
        raise ValueError(f"--thresholds needs one threshold per early exit ({early_exits}), got {len(thresholds)}")
    return [policy.check(t) for t in thresholds]


def parse_thresholds(text: str) -> list[float]:
    """A command line's ``--thresholds`` value: comma-separated numbers (``"0.3,0.4,0"``)."""
    try:
        return [float(p) for p in text.split(",")]
    except ValueError:
        raise ValueError(f"--thresholds takes comma-separated numbers, one per early exit (like 0.3,0.4,0.4,0.5,0), "
                         f"got {text!r}") from None


def argument_type(parse):
    """``parse`` as an argparse ``type``: its ``ValueError`` becomes argparse's one-line usage error."""

    def convert(text: str):
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    convert.__name__ = parse.__name__
    return convert


def format_report(result: dict) -> str:
    """The human-readable report of ``evaluate_model``."""
    model = result["model"]
    if result.get("reference_model") not in (None, model):  # an alias: say which model it stands for
        model = f"{model} (= {result['reference_model']})"
    lines = [f"model {model} on {result['images']} images", "", "exit      accuracy  leaves here"]
    for name, acc, frac in zip(result["exit_names"], result["exit_accuracy"], result["exit_fractions"], strict=True):
        lines.append(f"{name:9s} {acc:8.1%}  {frac:10.1%}")
    t = result["threshold"]
    if result.get("thresholds") is not None:
        t_text = "s " + ", ".join(f"{x:.3f}" for x in result["thresholds"])  # "thresholds 0.300, ..."
    else:
        t_text = " " + (str(t) if isinstance(t, int) else f"{t:.3f}")
    final_low, final_high = result["final_accuracy_interval"]
    low, high = result["accuracy_interval"]
    drop = 100 * (result["final_accuracy"] - result["accuracy"])
    lines += [
        "",
        f"final classifier alone: accuracy {result['final_accuracy']:.1%} (95% interval {final_low:.1%} to "
        f"{final_high:.1%}), relative cost 1.00 (plain network)",
        f"early exit ({result['policy']}, threshold{t_text}): accuracy {result['accuracy']:.1%} (95% interval "
        f"{low:.1%} to {high:.1%}), relative cost {result['relative_cost']:.3f} (heads included), "
        f"predicted speed-up {result['predicted_speedup']:.2f}x",
        f"early exit is {abs(drop):.1f} points {'below' if drop >= 0 else 'above'} the final classifier on these "
        f"images (exact McNemar test: p = {result['drop_p_value']:.3f}, how often two equally accurate "
        f"classifiers would disagree this unevenly)",
    ]
    if "budget" in result:
        b = result["budget"]
        lines += [
            f"budget {b['budget']:.3f}: threshold{t_text} chosen on {b['val_images']} validation images "
            f"({b['validation']}): validation accuracy {b['val_accuracy']:.1%}, cost {b['val_relative_cost']:.3f}; "
            f"on these images the cost is {result['relative_cost']:.3f} "
            f"({'within' if b['within_budget'] else 'over'} budget)",
        ]
    if "subset_threshold" in result:
        c = result["subset_threshold"]
        lines += [
            f"threshold{t_text} chosen for these exits on {c['val_images']} validation images ({c['validation']}), "
            f"as tau* was (rule {c['rule']}, within {100 * c['tolerance']:g} point of the final exit): validation "
            f"accuracy {c['val_accuracy']:.1%} against {c['val_final_accuracy']:.1%}, cost {c['val_relative_cost']:.3f}",
        ]
    if "baseline" in result:
        b = result["baseline"]
        name = b["model"] + (f" (= {b['reference_model']})" if b.get("reference_model") not in (None, b["model"]) else "")
        low, high = b["final_accuracy_interval"]
        gap = 100 * (result["final_accuracy"] - b["final_accuracy"])
        lines += [
            f"baseline {name}: accuracy {b['final_accuracy']:.1%} (95% interval {low:.1%} to {high:.1%}); the final "
            f"classifier is {abs(gap):.1f} points {'above' if gap >= 0 else 'below'} it (exact McNemar test: "
            f"p = {b['p_value']:.3f})",
            "",
            "targets:",
            *(f"  {'met ' if t['met'] else 'MISS'}  {t['target']}: {t['measured']}" for t in result["targets"]),
        ]
    return "\n".join(lines)


def list_models() -> list[str]:
    """One line per reference model and alias, sorted by name: name, dataset, kind (an alias's says what it stands for)."""
    targets = registry.aliases()
    lines = []
    for name in sorted(registry.reference_names() + list(targets)):
        meta = registry.read_meta(registry.resolve(name))
        kind = meta.get("kind", "?") + (f", alias of {targets[name]}" if name in targets else "")
        lines.append(f"{name}\t{meta.get('dataset', '?')}\t{kind}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", help="model file, run folder or reference model name")
    images = parser.add_mutually_exclusive_group()
    images.add_argument("--data-dir", help="folder of <class>/<image> files to evaluate")
    images.add_argument("--data-npz", help="an .npz (CIFAR-10 layout) whose x_test, y_test are evaluated")
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--threshold", type=float,
                        help="exit threshold (default: the model's tau* for entropy; patience: p, an integer)")
    chosen.add_argument("--thresholds", type=argument_type(parse_thresholds),
                        help="one threshold per early exit, comma-separated (entropy, max_prob; 0 closes an exit "
                        "under entropy)")
    chosen.add_argument("--budget", type=float,
                        help="target mean relative cost (e.g. 0.5): choose the threshold on the validation split")
    parser.add_argument("--policy", default="entropy", choices=sorted(POLICIES))
    parser.add_argument("--exits", type=argument_type(parse_exits),
                        help="keep only these early exits (names or 1-based numbers, comma-separated, or none): "
                        "the other heads are removed and not counted")
    parser.add_argument("--val-dir", help="validation images for --budget, or for the threshold of --exits "
                        "(default: rebuild the training split)")
    parser.add_argument("--source", help="data to rebuild the training split from for --budget or --exits "
                        "(a flower_photos folder, a CIFAR-10 .npz or 'tfds'; default $EARLY_EXIT_DATA_DIR, "
                        "$EARLY_EXIT_CIFAR10_NPZ for CIFAR-10 models, or tfds)")
    parser.add_argument("--baseline", help="a plain network (model file, run folder or reference name, e.g. "
                        "flowers-vgg11-plain) evaluated on the same images; adds its accuracy and the targets")
    parser.add_argument("--target-accuracy", type=float, default=None,
                        help=f"with --baseline: the final exit's accuracy target (default {report.TARGET_ACCURACY})")
    parser.add_argument("--target-cost", type=float, default=None,
                        help=f"with --baseline: the cost target at the threshold (default {report.TARGET_COST})")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--list", action="store_true", help="list the reference models and exit")
    args = parser.parse_args(argv)
    if args.list:
        try:
            print("\n".join(list_models()) or "no reference models shipped")
        except ValueError as err:  # a broken models/aliases.json
            print(f"error: {err}", file=sys.stderr)
            return 2
        return 0
    if not args.model or not (args.data_dir or args.data_npz):
        parser.error("MODEL and --data-dir or --data-npz are required (or --list)")
    if (args.val_dir or args.source) and (args.budget is None and (args.exits is None or args.threshold is not None
                                                                   or args.thresholds is not None)):
        parser.error("--val-dir and --source are only used with --budget, or with --exits and no threshold")
    if (args.target_accuracy is not None or args.target_cost is not None) and args.baseline is None:
        parser.error("--target-accuracy and --target-cost are checked with --baseline (the plain network)")
    targets = {key: value for key, value in (("target_accuracy", args.target_accuracy),
                                             ("target_cost", args.target_cost)) if value is not None}
    try:
        result = evaluate_model(args.model, args.data_dir, args.threshold, args.policy, progress=not args.json,
                                budget=args.budget, val_dir=args.val_dir, source=args.source,
                                data_npz=args.data_npz, thresholds=args.thresholds, exits=args.exits,
                                baseline=args.baseline, **targets)
    except (ValueError, FileNotFoundError) as err:  # DataError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else format_report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
