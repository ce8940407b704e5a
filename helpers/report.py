"""Generated parts of README.md: tables written by code from measured results, never by hand.

A generated section sits between ``<!-- KEY:start -->`` and ``<!-- KEY:end -->``
markers; ``replace_section`` rewrites what is between them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

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


def results_table(analyses: Mapping[str, object], plain: str) -> str:
    """Markdown table of test-split results for ``helpers.evaluation.Analysis`` objects.

    Args:
        analyses: name -> Analysis, multi-exit models and the plain baseline.
        plain: the name of the plain baseline among them.
    """
    lines = [
        "| model | final-exit accuracy | tau* (chosen on val) | early-exit accuracy | relative cost (heads included) | predicted speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for name, a in analyses.items():
        final = a.exit_accuracy("test")["final"]
        if name == plain:
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


def variant_table(analyses: Mapping[str, object], plain: str):
    """One row per model comparing exit designs on the test split (notebook 05, README).

    Columns: the accuracy of the final exit and of the ensemble of exits (averaged
    probabilities), tau* chosen on validation, and at tau* the early-exit accuracy, its
    drop from the final exit, the mean cost relative to the plain network (heads
    included) and the MACs saved. The plain model has only the first two columns
    filled, with cost 1.

    Args:
        analyses: name -> ``helpers.evaluation.Analysis``.
        plain: the name of the plain baseline among them.
    """
    import pandas as pd

    from helpers.evaluation import ensemble_accuracy

    rows = {}
    for name, a in analyses.items():
        logits, labels = a.split_data("test")
        final = a.exit_accuracy("test")["final"]
        row = {"exits": len(a.exit_names), "final acc": final, "ensemble acc": ensemble_accuracy(logits, labels)}
        if name == plain:
            row |= {"tau*": float("nan"), "early-exit acc": final, "drop (points)": 0.0,
                    "relative cost": 1.0, "MACs saved": 0.0}
        else:
            at = a.at(split="test")
            row |= {"tau*": float(a.threshold), "early-exit acc": at["accuracy"],
                    "drop (points)": 100 * (final - at["accuracy"]),
                    "relative cost": at["relative_cost"], "MACs saved": 1 - at["relative_cost"]}
        rows[name] = row
    frame = pd.DataFrame(rows).T
    frame["exits"] = frame["exits"].astype(int)
    frame.index.name = "model"
    return frame


def markdown_table(frame, digits: int = 2) -> str:
    """A pandas DataFrame as a Markdown table (floats rounded to ``digits``), index first."""
    def cell(value) -> str:
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    header = [frame.index.name or ""] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, *values in frame.itertuples():  # keeps each column's type (iterrows makes ints floats)
        lines.append("| " + " | ".join([str(index)] + [cell(v) for v in values]) + " |")
    return "\n".join(lines)
