"""Generated parts of README.md: tables written by code from measured results, never by hand.

A generated section sits between ``<!-- KEY:start -->`` and ``<!-- KEY:end -->``
markers; ``replace_section`` rewrites what is between them.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from helpers.limits import at_least, at_most
from helpers.paths import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"


def replace_section(key: str, text: str, readme: Path | None = None) -> None:
    """Put ``text`` between the ``key`` markers of ``readme`` (default: the project's README).

    Raises:
        ValueError: the markers are missing.
    """
    readme = readme or README
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    content = readme.read_text()
    if start not in content or end not in content:
        raise ValueError(f"{readme} has no {start} ... {end} section")
    head, rest = content.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{text.strip()}\n{end}{tail}")


def read_section(key: str, readme: Path | None = None) -> str:
    """The text between the ``key`` markers ('' if there are none)."""
    readme = readme or README
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    content = readme.read_text()
    if start not in content or end not in content:
        return ""
    return content.split(start, 1)[1].split(end, 1)[0].strip()


def results_table(analyses: Mapping[str, object], plain: str | Collection[str]) -> str:
    """Markdown table of test-split results for ``helpers.evaluation.Analysis`` objects.

    Args:
        analyses: name -> Analysis, multi-exit models and the plain baselines.
        plain: the name of the plain baseline among them, or the names of several
            (one per input size, each the cost reference of the models of its size).
    """
    plains = {plain} if isinstance(plain, str) else set(plain)
    if missing := plains - set(analyses):
        raise ValueError(f"plain baseline {sorted(missing)} not among the analyses {list(analyses)}")
    lines = [
        "| model | final-exit accuracy | tau* (chosen on val) | early-exit accuracy | relative cost (heads included) | predicted speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for name, a in analyses.items():
        final = a.exit_accuracy("test")["final"]
        if name in plains:
            lines.append(f"| `{name}` | {final:.1%} | – | – | 1.00 | 1.00× |")
            continue
        at = a.at(split="test")
        lines.append(
            f"| `{name}` | {final:.1%} | {a.threshold:.3f} | {at['accuracy']:.1%} | "
            f"{at['relative_cost']:.2f} | {at['predicted_speedup']:.2f}× |"
        )
    n = len(next(iter(analyses.values())).test_labels)
    lines.append("")
    lines.append(f"Test split: {n} images never used for training or for choosing tau*.")
    return "\n".join(lines)


def variant_table(analyses: Mapping[str, object], plain: str | Collection[str]):
    """One row per model comparing exit designs on the test split (notebook 05, README).

    Columns: the accuracy of the final exit and of the ensemble of exits (averaged
    probabilities), tau* chosen on validation, and at tau* the early-exit accuracy, its
    drop from the final exit, the same drop on the validation split (where tau* was
    chosen within the analysis's tolerance: how far it moved on test shows how well the
    choice transfers), the mean cost relative to the plain network (heads included) and
    the MACs saved. A plain network has no tau*: its early-exit accuracy is its final
    accuracy, both drops 0, relative cost 1 and nothing saved.

    Args:
        analyses: name -> ``helpers.evaluation.Analysis``.
        plain: the name of the plain baseline among them, or the names of several plain
            networks (the same one trained on different budgets, say).
    """
    import pandas as pd

    from helpers.evaluation import ensemble_accuracy

    plains = {plain} if isinstance(plain, str) else set(plain)
    rows = {}
    for name, a in analyses.items():
        logits, labels = a.split_data("test")
        final = a.exit_accuracy("test")["final"]
        row = {"exits": len(a.exit_names), "final acc": final, "ensemble acc": ensemble_accuracy(logits, labels)}
        if name in plains:
            row |= {"tau*": float("nan"), "early-exit acc": final, "drop (points)": 0.0,
                    "val drop (points)": 0.0, "relative cost": 1.0, "MACs saved": 0.0}
        else:
            at = a.at(split="test")
            val_drop = a.exit_accuracy("val")["final"] - a.at(split="val")["accuracy"]
            row |= {"tau*": float(a.threshold), "early-exit acc": at["accuracy"],
                    "drop (points)": 100 * (final - at["accuracy"]), "val drop (points)": 100 * val_drop,
                    "relative cost": at["relative_cost"], "MACs saved": 1 - at["relative_cost"]}
        rows[name] = row
    frame = pd.DataFrame(rows).T
    frame["exits"] = frame["exits"].astype(int)
    frame.index.name = "model"
    return frame


def markdown_table(frame, digits: int = 2, percent: Sequence[str] = ()) -> str:
    """A pandas DataFrame as a Markdown table, index first.

    Floats are rounded to ``digits``; the columns named in ``percent`` hold fractions
    and are shown as percentages with one decimal (0.8237 -> ``82.4%``); a missing
    value (NaN or None) is shown as ``–``.

    Raises:
        KeyError: a column in ``percent`` is not in ``frame``.
    """
    missing = [c for c in percent if c not in frame.columns]
    if missing:
        raise KeyError(f"percent columns {missing} are not in the table (columns: {list(frame.columns)})")

    def cell(value, as_percent: bool) -> str:
        if value is None:
            return "–"
        if isinstance(value, float):
            if math.isnan(value):
                return "–"
            return f"{100 * value:.1f}%" if as_percent else f"{value:.{digits}f}"
        return str(value)

    header = [frame.index.name or ""] + [str(c) for c in frame.columns]
    flags = [c in percent for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, *values in frame.itertuples():  # keeps each column's type (iterrows makes ints floats)
        lines.append("| " + " | ".join([str(index)] + [cell(v, f) for v, f in zip(values, flags, strict=True)]) + " |")
    return "\n".join(lines)


def rule_summary_markdown(summary) -> str:
    """A ``helpers.evaluation.rule_study_summary`` table (index ``(model, setting)``) in Markdown.

    Drops are shown in points, the share within tolerance as a percentage; each row is
    labelled with the model name in backticks, then the setting (``policy`` or ``rule``).
    """
    shown = summary.assign(mean_drop=100 * summary["mean_drop"], drop_p95=100 * summary["drop_p95"])
    shown = shown[["within", "mean_drop", "drop_p95", "mean_cost"]]
    shown.index = [f"`{model}`, {setting}" for model, setting in shown.index]
    shown.columns = ["within tolerance", "mean drop (points)", "95th-percentile drop (points)", "mean cost"]
    return markdown_table(shown, digits=2, percent=["within tolerance"])


def format_p(p) -> str:
    """A p-value for a table: three decimals, ``<0.001`` below that, ``–`` when missing (NaN or None)."""
    if p is None or math.isnan(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def seed_table(analyses: Mapping[str, object]):
    """The variation of one configuration over training seeds, on the test split.

    One row per run (``helpers.evaluation.Analysis``): the final exit's accuracy, tau*
    chosen on validation and, at tau*, the early-exit accuracy, its drop from the final
    exit (points) and the mean cost relative to the plain network (heads included);
    then a ``mean`` and a ``std`` row (sample standard deviation, ddof=1).

    Raises:
        ValueError: fewer than two runs (no spread to report).
    """
    import pandas as pd

    if len(analyses) < 2:
        raise ValueError(f"a spread over seeds needs at least two runs, got {len(analyses)}")
    rows = {}
    for name, a in analyses.items():
        final = a.exit_accuracy("test")["final"]
        at = a.at(split="test")
        rows[name] = {"final acc": final, "tau*": float(a.threshold), "early-exit acc": at["accuracy"],
                      "drop (points)": 100 * (final - at["accuracy"]), "relative cost": at["relative_cost"]}
    frame = pd.DataFrame(rows).T
    stats = pd.DataFrame({"mean": frame.mean(), "std": frame.std(ddof=1)}).T
    frame = pd.concat([frame, stats])
    frame.index.name = "run"
    return frame


def validation_choice(analyses: Mapping[str, object], tolerance: float = 0.01):
    """Choose one of several runs of a configuration by their operating points on validation.

    It does across runs what ``helpers.evaluation.choose_threshold`` does across
    thresholds: of the runs whose accuracy at tau* is within ``tolerance`` of their own
    final exit on the validation split, the one whose tau* costs least on validation
    (ties: the more accurate at tau*, then the first given). No test
    number enters the choice, so the chosen run's test numbers are an honest estimate of
    what choosing this way gives, not the best of several draws.

    Args:
        analyses: run name -> ``helpers.evaluation.Analysis``, in order of preference for ties.
        tolerance: the accuracy drop allowed at tau* (0.01 = one point), as when tau* is chosen.

    Returns:
        ``(name, table)``: the chosen run, and one row per run with its validation final-exit
        accuracy, tau*, accuracy at tau*, drop (points), relative cost and ``within`` (the
        drop at most ``tolerance``), then ``chosen``.

    Raises:
        ValueError: no run given, or no run's operating point within ``tolerance`` on validation.
    """
    import pandas as pd

    if not analyses:
        raise ValueError("no run to choose from")
    rows = {}
    for name, a in analyses.items():
        final = a.exit_accuracy("val")["final"]
        at = a.at(split="val")
        rows[name] = {"val final acc": final, "tau*": float(a.threshold), "val early-exit acc": at["accuracy"],
                      "val drop (points)": 100 * (final - at["accuracy"]), "val relative cost": at["relative_cost"],
                      "within": bool(at_most(final - at["accuracy"], tolerance))}
    frame = pd.DataFrame(rows).T
    frame["within"] = frame["within"].astype(bool)
    frame = frame.astype({c: float for c in frame.columns if c != "within"})
    candidates = frame[frame["within"]]
    if candidates.empty:
        raise ValueError(f"no run's operating point is within {100 * tolerance:g} point of its final exit on "
                         f"validation: {list(frame.index)}")
    order = candidates.assign(position=range(len(candidates)))
    chosen = order.sort_values(["val relative cost", "val early-exit acc", "position"],
                               ascending=[True, False, True]).index[0]
    frame["chosen"] = frame.index == chosen
    frame.index.name = "run"
    return chosen, frame


def bold_misses(targets):
    """A table of ``target_tables`` verdicts with every missed target's "no" in bold, for the README."""
    return targets.apply(lambda column: column.str.replace(r"^no:", "**no**:", regex=True))


def choice_markdown(choice, chosen: str, chosen_targets) -> str:
    """The README section of a ``validation_choice``: its validation table, then the chosen run's test targets.

    Args:
        choice: the table ``validation_choice`` returned (one row per run).
        chosen: the run it chose.
        chosen_targets: ``target_tables`` of the chosen run on the test split (one row).

    The ``within`` column reads yes/no, the chosen run is marked in bold, and a missed
    target's "no" is bold too, as in the README's other target tables.
    """
    shown = choice.assign(within=choice["within"].map({True: "yes", False: "no"}),
                          chosen=choice["chosen"].map({True: "**chosen**", False: ""}))
    targets = bold_misses(chosen_targets)
    return (markdown_table(shown.rename(index=lambda n: f"`{n}`"), digits=2,
                           percent=["val final acc", "val early-exit acc"])
            + f"\n\nThe chosen run, `{chosen}`, on the test split:\n\n"
            + markdown_table(targets.rename(index=lambda n: f"`{n}`")))


def noise_table(analyses: Mapping[str, object], reference: str, plain: str | Collection[str] = (),
                confidence: float = 0.95):
    """How far the test split can tell the models apart: intervals and paired tests.

    One row per model (``helpers.evaluation.Analysis``, all on the same test images):
    the final exit's accuracy and its Wilson interval (``evaluation.accuracy_interval``);
    against the final exit of ``reference`` on the same images, the images only this
    model gets right, those only the reference gets right and the exact McNemar p-value
    (``evaluation.paired_test``); and for a multi-exit model the early-exit accuracy at
    tau*, its drop from the model's own final exit (points) and the p-value of that
    drop, paired on the same images too. The reference's own comparison and a plain
    network's early-exit columns are missing (None for the counts, which stay
    integers, NaN for the rest).

    Raises:
        KeyError: ``reference`` is not among ``analyses``.
        ValueError: the analyses' test labels differ (they are not the same images).
    """
    import numpy as np
    import pandas as pd

    from helpers.evaluation import accuracy_interval, correct, paired_test

    if reference not in analyses:
        raise KeyError(f"reference {reference!r} is not among the analyses ({list(analyses)})")
    plains = {plain} if isinstance(plain, str) else set(plain)
    ref_logits, ref_labels = analyses[reference].split_data("test")
    ref_right = correct(ref_logits, ref_labels)[:, -1]
    nan = float("nan")
    rows = {}
    for name, a in analyses.items():
        logits, labels = a.split_data("test")
        if not np.array_equal(labels, ref_labels):
            raise ValueError(f"{name} and {reference} were not tested on the same images (their labels differ)")
        right = correct(logits, labels)[:, -1]
        low, high = accuracy_interval(right, confidence)
        row = {"final acc": float(right.mean()), "interval": f"{100 * low:.1f}–{100 * high:.1f}%"}
        versus = paired_test(right, ref_right)
        row |= ({"only this right": None, "only reference right": None, "p vs reference": nan} if name == reference
                else {"only this right": versus["a_only"], "only reference right": versus["b_only"],
                      "p vs reference": versus["p_value"]})
        if name in plains:
            row |= {"early-exit acc": nan, "drop (points)": nan, "p of drop": nan}
        else:
            at = a.at(split="test")
            drop = paired_test(at["predictions"] == labels, right)
            row |= {"early-exit acc": at["accuracy"], "drop (points)": -100 * drop["difference"],
                    "p of drop": drop["p_value"]}
        rows[name] = row
    frame = pd.DataFrame(rows).T
    for column in ("final acc", "p vs reference", "early-exit acc", "drop (points)", "p of drop"):
        frame[column] = frame[column].astype(float)
    frame = frame.rename(columns={"interval": f"final acc, {round(100 * confidence)}% interval"})
    frame.index.name = "model"
    return frame


def budget_table(configs: Mapping[str, Mapping]):
    """What training each run cost, from its ``config.json`` (``helpers.train``).

    Columns: seed, epochs, image size, width, precision, the measured training wall
    time in minutes (the sum of the epochs' times, so a resumed run counts each epoch once)
    and, for a run that trained only exit heads, the run whose frozen network it reused
    (whose budget comes on top; ``None`` otherwise).
    """
    import pandas as pd

    rows = {}
    for name, config in configs.items():
        exp = config["experiment"]
        seconds = config.get("train_seconds_total")
        rows[name] = {"seed": int(config.get("seed", 0)), "epochs": int(exp["epochs"]),
                      "image size": int(exp["image_size"]), "width": float(exp["width"]),
                      "precision": config.get("precision", "?"),
                      "train minutes": float("nan") if seconds is None else seconds / 60,
                      "frozen backbone of": exp.get("backbone_from")}
    frame = pd.DataFrame(rows).T.astype({"seed": int, "epochs": int, "image size": int,
                                         "width": float, "train minutes": float})
    frame.index.name = "model"
    return frame


TARGET_ACCURACY = 0.85
"""The flowers reference results' accuracy target: the final exit at least this accurate (README)."""

TARGET_COST = 0.5
"""The flowers reference results' cost target: at the operating point, at most this mean cost
relative to the plain network, heads included (README)."""


def target_names(min_accuracy: float, max_cost: float, tolerance: float,
                 at: str = "tau*") -> list[tuple[str, str]]:
    """``(full name, short name)`` of each target of ``target_table``, in its row order; ``at``
    names the operating point."""
    points = 100 * tolerance
    return [
        (f"final-exit accuracy ≥ {min_accuracy:.0%}", f"final exit ≥ {min_accuracy:.0%}"),
        (f"accuracy at {at} within {points:g} point of the final exit",
         f"at {at}: within {points:g} point of the final exit"),
        (f"mean cost at {at} ≤ {max_cost:g} × the plain network (heads included)", f"at {at}: cost ≤ {max_cost:g}"),
        (f"final exit at most {points:g} point below the plain network", f"final exit ≥ plain − {points:g} point"),
    ]


def target_checks(final: float, accuracy: float, relative_cost: float, plain_final: float,
                  min_accuracy: float, max_cost: float, tolerance: float = 0.01) -> list[tuple[str, bool]]:
    """``(measured, met)`` of each target of ``target_table``, in its row order, from the numbers.

    Args:
        final: the final exit's accuracy.
        accuracy, relative_cost: accuracy and mean relative cost at the operating point.
        plain_final: the plain network's accuracy on the same images.
        min_accuracy, max_cost, tolerance: as in ``target_table``.
    """
    drop = final - accuracy
    return [
        (f"{final:.1%}", bool(at_least(final, min_accuracy))),
        (f"{accuracy:.1%} ({100 * abs(drop):.1f} points {'below' if drop >= 0 else 'above'})",
         bool(at_most(drop, tolerance))),
        (f"{relative_cost:.3f}", bool(at_most(relative_cost, max_cost))),
        (f"{final:.1%} vs {plain_final:.1%}", bool(at_most(plain_final - final, tolerance))),
    ]


def target_table(analyses: Mapping[str, object], main: str, plain: str, min_accuracy: float,
                 max_cost: float, tolerance: float = 0.01):
    """The project's targets for ``main`` against what the test split measured.

    Rows: the final exit's accuracy at least ``min_accuracy``; at tau* an accuracy
    within ``tolerance`` of the final exit and a mean cost (heads included) at most
    ``max_cost`` of the plain network's; the final exit no more than ``tolerance``
    below the plain network's accuracy. Columns: ``target``, ``measured`` (text) and
    ``met`` (bool). Every check goes through ``helpers.limits``, so a value exactly at
    its limit meets it even when floating point puts it a rounding error past.
    """
    import pandas as pd

    names = [full for full, _ in target_names(min_accuracy, max_cost, tolerance)]
    a = analyses[main]
    at = a.at(split="test")
    rows = target_checks(a.exit_accuracy("test")["final"], at["accuracy"], at["relative_cost"],
                         analyses[plain].exit_accuracy("test")["final"], min_accuracy, max_cost, tolerance)
    frame = pd.DataFrame(rows, columns=["measured", "met"], index=pd.Index(names, name="target"))
    frame["met"] = frame["met"].astype(bool)
    return frame


def target_tables(analyses: Mapping[str, object], baselines: Mapping[str, str], min_accuracy: float,
                  max_cost: float, tolerance: float = 0.01):
    """``target_table`` for several models, one row each, each against its own plain baseline.

    Args:
        analyses: name -> ``helpers.evaluation.Analysis``, the models and their baselines.
        baselines: model name -> the name of its plain baseline (the same input size).
        min_accuracy, max_cost, tolerance: as in ``target_table``.

    Returns:
        One row per model: column ``baseline``, then one column per target of
        ``target_table`` (in its order, with short names), each cell ``yes: `` or ``no: ``
        (met or not) and the measured value.
    """
    import pandas as pd

    if not baselines:
        raise ValueError("no model to check against the targets")
    short = [name for _, name in target_names(min_accuracy, max_cost, tolerance)]
    rows = {}
    for main, plain in baselines.items():
        table = target_table(analyses, main, plain, min_accuracy, max_cost, tolerance)
        cells = (f"{'yes' if ok else 'no'}: {m}" for m, ok in zip(table["measured"], table["met"], strict=True))
        rows[main] = {"baseline": plain} | dict(zip(short, cells, strict=True))
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "model"
    return frame


def saving_at_tau(analysis) -> tuple[float, float]:
    """``(MACs saved, accuracy drop)`` of a multi-exit model at its tau* on the test split.

    The saving is ``1 - relative cost`` (heads included); the drop is the final exit's
    test accuracy minus the early-exit accuracy, both as fractions.
    """
    at = analysis.at(split="test")
    return 1 - at["relative_cost"], analysis.exit_accuracy("test")["final"] - at["accuracy"]


def variant_target_table(analyses: Mapping[str, object], plain: str, multi_exit: Sequence[str],
                         min_accuracy: float, min_saving: float, tolerance: float = 0.01):
    """Lesson 2's targets (notebook 05) against what the test split measured.

    Rows: the plain network's accuracy at least ``min_accuracy``; every multi-exit
    variant's final exit at least ``min_accuracy`` (measured: the lowest of them); the
    best variant saving at least ``min_saving`` of the plain network's MACs (heads
    included) at tau* with a test accuracy within ``tolerance`` of its own final exit.
    tau* is each model's own, chosen on validation, so a variant whose test drop exceeds
    ``tolerance`` does not count.

    Returns:
        One row per target; columns ``measured`` (text), ``short by`` (points, 0 when met)
        and ``met`` (bool).

    Raises:
        ValueError: ``multi_exit`` is empty.
    """
    import pandas as pd

    if not multi_exit:
        raise ValueError("no multi-exit variant to check against the targets")
    plain_acc = analyses[plain].exit_accuracy("test")["final"]
    finals = {name: analyses[name].exit_accuracy("test")["final"] for name in multi_exit}
    lowest = min(finals, key=finals.get)
    eligible = {}  # variants within tolerance at tau*: name -> (saving, drop)
    for name in multi_exit:
        saving, drop = saving_at_tau(analyses[name])
        if at_most(drop, tolerance):
            eligible[name] = (saving, drop)
    if eligible:
        best = max(eligible, key=lambda n: eligible[n][0])
        saving, drop = eligible[best]
        saving_text = f"{saving:.1%} (`{best}`, {100 * drop:.1f} points below its final exit)"
    else:
        saving, saving_text = 0.0, f"none: no variant is within {100 * tolerance:g} point at tau*"
    rows = [
        (f"plain network ≥ {min_accuracy:.0%}", f"{plain_acc:.1%}", min_accuracy - plain_acc),
        (f"every variant's final exit ≥ {min_accuracy:.0%}", f"{finals[lowest]:.1%} (lowest: `{lowest}`)",
         min_accuracy - finals[lowest]),
        (f"best variant saves ≥ {min_saving:.0%} of the MACs within {100 * tolerance:g} point of its final exit",
         saving_text, min_saving - saving),
    ]
    frame = pd.DataFrame(rows, columns=["target", "measured", "short by"]).set_index("target")
    frame["met"] = at_most(frame["short by"], 0.0)  # short by nothing (up to rounding) meets the target
    frame["short by"] = (100 * frame["short by"]).clip(lower=0.0)
    return frame


def epochs_to_reach(epochs: Sequence[float], accuracies: Sequence[float], target: float) -> float:
    """Extrapolate the epochs at which ``target`` is reached at the two longest runs' gain.

    The runs of one recipe at several budgets are sorted by epochs; the two longest give
    the gain per doubling of the epochs (``(a2 - a1) / log2(e2 / e1)``), and the line of
    that slope through the longest run says where ``target`` falls. Gains shrink as a
    recipe nears its ceiling, so the longest runs give the least optimistic slope the runs
    offer (a line through all runs would be pulled up by the large early gains); it is
    still an extrapolation, not a measurement: train at the epochs it gives to check it.

    Args:
        epochs: each run's number of epochs (at least two different ones; runs with the
            same count are averaged).
        accuracies: each run's test accuracy, as a fraction.
        target: the accuracy to reach, as a fraction.

    Returns:
        The epochs (not rounded); ``inf`` if accuracy did not rise between the two longest runs.

    Raises:
        ValueError: the lists differ in length, an epoch count is not positive, or fewer
            than two different epoch counts.
    """
    import numpy as np

    x = np.asarray(epochs, dtype=float)
    y = np.asarray(accuracies, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"{x.size} epoch counts but {y.size} accuracies")
    if np.any(x <= 0):
        raise ValueError(f"epoch counts must be positive, got {x.tolist()}")
    counts = np.unique(x)
    if counts.size < 2:
        raise ValueError("a trend needs runs at two or more different epoch counts")
    (e1, a1), (e2, a2) = [(e, float(y[x == e].mean())) for e in counts[-2:]]
    slope = (a2 - a1) / math.log2(e2 / e1)  # accuracy per doubling
    if slope <= 0:
        return float("inf")
    return float(e2 * 2 ** ((target - a2) / slope))


def _saving_line(label: str, epochs: Sequence[int], savings: Sequence[tuple[float, float]], min_saving: float,
                 tolerance: float) -> str:
    """One series' saving target sentence for ``budget_lines``."""
    measured = ", ".join(f"{s:.1%} saved {100 * d:.1f} points below its final exit after {e} epochs"
                         for e, (s, d) in zip(epochs, savings, strict=True))
    met = [e for e, (s, d) in zip(epochs, savings, strict=True)
           if at_least(s, min_saving) and at_most(d, tolerance)]
    points = f"{100 * tolerance:g} point" + ("" if math.isclose(100 * tolerance, 1) else "s")
    goal = f"saving target ({min_saving:.0%} of the MACs within {points})"
    verdict = f"{goal} met at {min(met)} epochs (measured)" if met else f"{goal} not met by any of these runs"
    return f"{label} at tau*: {measured}; {verdict}"


def budget_lines(runs: Mapping[str, object], analyses: Mapping[str, object], series: Mapping[str, Sequence[str]],
                 compared: Sequence[str], target: float, min_saving: float | None = None,
                 tolerance: float = 0.01) -> list[str]:
    """What a recipe's budget bought and what would reach ``target`` (notebook 05, README).

    Args:
        runs: name -> a finished run (``helpers.train.TrainedRun``: ``config`` and ``history``
            with a ``seconds`` column per epoch).
        analyses: name -> ``helpers.evaluation.Analysis`` (test-split accuracy of the final exit).
        series: label -> the names of one network trained for different numbers of epochs
            (for example ``{"plain network": ["plain", "plain-32ep"]}``).
        compared: the networks trained on one budget for the comparison; their median epoch
            times price a longer budget for all of them.
        target: the final-exit accuracy to reach, as a fraction.
        min_saving: the saving target: a multi-exit network should save at least this
            share of the plain network's MACs at tau* (test split), within ``tolerance`` of
            its own final exit's accuracy. ``None``: no saving sentences.
        tolerance: the accuracy drop, as a fraction, that the saving target allows.

    Returns:
        One sentence per line: the comparison's budget; per series, each run's final-exit
        accuracy and the fewest epochs that reached ``target`` (measured) or, if none did,
        where ``epochs_to_reach`` puts it (or that the two longest runs gained nothing); with
        ``min_saving``, per multi-exit series, each run's saving and drop at tau* and the
        fewest epochs that met the saving target (measured only: a saving within a
        tolerance has no trend to extend); and, if every series has an epoch count for
        ``target``, the hours the compared networks would train for the largest of them
        at their median epoch times.
    """
    histories = [runs[n].history for n in compared]
    counts = ", ".join(sorted({str(len(h)) for h in histories}, key=int))
    lines = [f"the {len(compared)} networks of the comparison: {counts} epochs each, "
             f"{sum(h['seconds'].sum() for h in histories) / 60:.0f} minutes of training in all"]
    trends = []
    for label, names in series.items():
        epochs = [int(runs[n].config["experiment"]["epochs"]) for n in names]
        final = [analyses[n].exit_accuracy("test")["final"] for n in names]
        measured = ", ".join(f"{a:.1%} after {e} epochs" for e, a in zip(epochs, final, strict=True))
        reached = [e for e, a in zip(epochs, final, strict=True) if a >= target]
        if reached:  # a measurement beats an extrapolation
            needed = min(reached)
            verdict = f"{target:.0%} reached at {needed} epochs (measured)"
        else:
            needed = epochs_to_reach(epochs, final, target)
            verdict = (f"{target:.0%} not reached, and its two longest runs gained nothing to extrapolate"
                       if math.isinf(needed) else
                       f"{target:.0%} not reached; at its two longest runs' gain per doubling of the epochs it "
                       f"would take about {needed:.0f} epochs (an extrapolation)")
        trends.append(needed)
        lines.append(f"{label}: {measured}; {verdict}")
        if min_saving is not None and len(analyses[names[0]].exit_names) > 1:
            lines.append(_saving_line(label, epochs, [saving_at_tau(analyses[n]) for n in names],
                                      min_saving, tolerance))
    if trends and not any(math.isinf(n) for n in trends):
        needed = max(trends)
        seconds_per_epoch = sum(h["seconds"].median() for h in histories)  # one epoch of each compared network
        lines.append(f"training the {len(compared)} networks for {needed:.0f} epochs each would take about "
                     f"{needed * seconds_per_epoch / 3600:.1f} hours here at their median epoch times")
    return lines
