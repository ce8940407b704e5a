"""Run the numbered notebooks in order, headlessly, and record how long each took.

    python -m helpers.notebooks            # every notebooks/NN_*.ipynb, in order
    python -m helpers.notebooks 03 04      # only those whose name starts with 03 or 04
    python -m helpers.notebooks --no-readme 06   # leave README's timings table alone

Each notebook is executed in place (outputs kept, as students read them on
GitHub), its per-cell execution timestamps are turned into a wall time, then
stripped, and so are TensorFlow's C++ log lines on stderr. The timings table in README.md (between the ``timings`` markers) is
rewritten from those measurements (``helpers.report``), except with ``--no-readme``
or in quick mode (``EARLY_EXIT_QUICK=1``), whose wall times are not the full runs'.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import sys
import time
from pathlib import Path

from helpers import report
from helpers.paths import PROJECT_ROOT, quick_mode

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"


def notebook_paths(prefixes: list[str] | None = None) -> list[Path]:
    """The numbered notebooks, sorted; only those starting with one of ``prefixes`` if given.

    A prefix may also be a notebook's path, as a shell completes it
    (``notebooks/03_entropy_threshold_inference.ipynb``): its file name is the prefix.
    """
    paths = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    if prefixes:
        names = [Path(x).name for x in prefixes]
        paths = [p for p in paths if any(p.name.startswith(x) for x in names)]
    return paths


def notebook_seconds(nb) -> float | None:
    """Wall time from the first cell's start to the last cell's end, from nbclient's timing metadata."""
    starts, ends = [], []
    for cell in nb.cells:
        timing = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            starts.append(dt.datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00")))
            ends.append(dt.datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00")))
    if not starts:
        return None
    return (max(ends) - min(starts)).total_seconds()


def strip_execution_metadata(nb) -> None:
    """Remove per-cell timing metadata (outputs stay)."""
    for cell in nb.cells:
        cell.get("metadata", {}).pop("execution", None)


TF_LOG_LINE = re.compile(
    r"^([IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\]|WARNING: All log messages before absl::InitializeLog"
    r"|To enable the following instructions: .* rebuild TensorFlow)"
)


def strip_tf_logs(nb) -> int:
    """Remove stderr outputs made only of TensorFlow's C++ log lines; return how many.

    They name the machine (no CUDA driver, oneDNN, timestamps) and teach nothing;
    nbval would also compare them where a cell's output is checked.
    """
    removed = 0
    for cell in nb.cells:
        outputs = cell.get("outputs", [])
        keep = [
            o for o in outputs
            if not (o.get("name") == "stderr"
                    and all(TF_LOG_LINE.match(line) for line in o.get("text", "").splitlines() if line.strip()))
        ]
        removed += len(outputs) - len(keep)
        if outputs:
            cell["outputs"] = keep
    return removed


OBJECT_REPR = re.compile(r"^<[\w.]+ (object )?at 0x[0-9a-fA-F]+>$")


def strip_object_reprs(nb) -> int:
    """Drop default ``<… at 0x…>`` text reprs from outputs that have a richer one; return how many.

    A pandas ``Styler`` shown as a cell's result carries its HTML table and, as
    ``text/plain``, only its memory address: it says nothing and changes on every run,
    so a rerun would rewrite it in the committed notebook. Outputs with nothing but the
    text repr keep it.
    """
    removed = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if len(data) > 1 and OBJECT_REPR.match(data.get("text/plain", "")):  # nbformat joins lines
                del data["text/plain"]
                removed += 1
    return removed


def execute(path: Path) -> float:
    """Execute one notebook in place; return its wall time in seconds.

    A cell that raises stops the run and leaves the file as it was: the committed
    notebook keeps the outputs of its last good run rather than half of a new one
    and a traceback. nbclient's ``CellExecutionError`` (the cell and its traceback)
    propagates.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    # nobody watches a headless run: the threshold explorer draws its static figure
    os.environ.setdefault("EARLY_EXIT_STATIC", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    client = NotebookClient(
        nb, timeout=None, kernel_name="python3", record_timing=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    seconds = notebook_seconds(nb) or (time.perf_counter() - start)
    strip_execution_metadata(nb)
    strip_tf_logs(nb)
    strip_object_reprs(nb)
    nbformat.write(nb, path)
    return seconds


def timings_table(timings: dict[str, float]) -> str:
    """A Markdown table of notebook wall times, with the machine it ran on."""
    machine = f"{os.cpu_count()} CPU cores, {platform.machine()}, no GPU"
    lines = [
        f"Measured by `python -m helpers.notebooks` on {dt.date.today().isoformat()} ({machine}):",
        "",
        "| notebook | wall time |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {seconds / 60:.1f} min |" for name, seconds in timings.items()]
    return "\n".join(lines)


def update_readme(timings: dict[str, float]) -> None:
    """Merge ``timings`` into README's timings table (rows of notebooks not run are kept)."""
    merged = {}
    for line in report.read_section("timings").splitlines():
        if line.startswith("| `"):
            name, cell = line.split("`")[1], line.split("|")[2]
            merged[name] = float(cell.split()[0]) * 60
    report.replace_section("timings", timings_table(dict(sorted((merged | timings).items()))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.notebooks", description=__doc__.split("\n\n")[0])
    parser.add_argument("prefixes", nargs="*", help="run only notebooks whose name starts with these, e.g. 03 (a notebook's path works too)")
    parser.add_argument("--no-readme", action="store_true", help="do not update README's timings table")
    args = parser.parse_args(argv)
    paths = notebook_paths(args.prefixes)
    if not paths:
        print(f"error: no notebook matches {args.prefixes} in {NOTEBOOKS_DIR}", file=sys.stderr)
        return 2
    timings = {}
    for path in paths:
        print(f"running {path.name} ...", flush=True)
        try:
            timings[path.name] = execute(path)
        except Exception as err:  # nbclient's CellExecutionError carries the cell's traceback
            print(f"error: {path.name} failed (the file is left as it was):\n{err}", file=sys.stderr)
            return 1
        print(f"  done in {timings[path.name] / 60:.1f} min", flush=True)
    if not quick_mode() and not args.no_readme:
        update_readme(timings)
        print("README.md timings updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
