"""Generated README sections (helpers.report) and notebook timing (helpers.notebooks)."""

import dataclasses

import nbformat
import numpy as np
import pandas as pd
import pytest

from helpers import evaluation, notebooks, report
from helpers.evaluation import Analysis


@pytest.fixture
def readme(tmp_path, monkeypatch):
    path = tmp_path / "README.md"
    path.write_text("# T\n\n<!-- results:start -->\nold\n<!-- results:end -->\n\n<!-- timings:start -->\n<!-- timings:end -->\nend\n")
    monkeypatch.setattr(report, "README", path)
    return path


def test_replace_and_read_section(readme):
    report.replace_section("results", "| a | b |")
    text = readme.read_text()
    assert "<!-- results:start -->\n| a | b |\n<!-- results:end -->" in text
    assert "old" not in text and text.startswith("# T") and text.endswith("end\n")
    assert report.read_section("results") == "| a | b |"
    assert report.read_section("nothing") == ""
    with pytest.raises(ValueError, match="no <!-- nothing:start -->"):
        report.replace_section("nothing", "x")


def _analysis(name, logits, labels, costs, threshold):
    e = logits.shape[1]
    names = [f"exit_{i + 1}" for i in range(e - 1)] + ["final"]
    return Analysis(name, names, ["a", "b"], np.asarray(costs), logits, labels, logits, labels, threshold, 0.01)


def test_results_table_numbers():
    # two samples, two exits: sample 0 is confident at exit 1 (and right), sample 1 is not
    logits = np.array([[[9.0, 0.0], [9.0, 0.0]], [[0.0, 0.0], [0.0, 5.0]]], dtype=np.float32)
    labels = np.array([0, 1])
    multi = _analysis("multi", logits, labels, [0.4, 1.2], threshold=0.5)
    plain = _analysis("plain", logits[:, 1:], labels, [1.0], threshold=0.0)
    table = report.results_table({"multi": multi, "plain": plain}, "plain")
    rows = table.splitlines()
    # early exit: both right; cost (0.4 + 1.2) / 2 = 0.8, speed-up 1.25
    assert rows[2] == "| `multi` | 100.0% | 0.500 | 100.0% | 0.80 | 1.25× |"
    assert rows[3] == "| `plain` | 100.0% | – | – | 1.00 | 1.00× |"
    assert "Test split: 2 images" in table


def test_results_table_with_a_plain_baseline_per_input_size():
    logits = np.array([[[9.0, 0.0], [9.0, 0.0]], [[0.0, 0.0], [0.0, 5.0]]], dtype=np.float32)
    labels = np.array([0, 1])
    multi = _analysis("multi", logits, labels, [0.4, 1.2], threshold=0.5)
    plain = _analysis("plain", logits[:, 1:], labels, [1.0], threshold=0.0)
    wrong = np.ascontiguousarray(logits[:, 1:, ::-1])  # the classes swapped: both samples wrong
    plain_big = _analysis("plain-big", wrong, labels, [1.0], threshold=0.0)
    table = report.results_table({"multi": multi, "plain": plain, "plain-big": plain_big}, ["plain", "plain-big"])
    rows = table.splitlines()
    assert rows[3] == "| `plain` | 100.0% | – | – | 1.00 | 1.00× |"
    assert rows[4] == "| `plain-big` | 0.0% | – | – | 1.00 | 1.00× |"
    with pytest.raises(ValueError, match="plain-128"):
        report.results_table({"multi": multi, "plain": plain}, ["plain", "plain-128"])


def test_notebook_seconds_and_stripping():
    nb = nbformat.v4.new_notebook()
    for start, end in (("2026-01-01T10:00:00.000000Z", "2026-01-01T10:00:30.000000Z"),
                       ("2026-01-01T10:00:31.000000Z", "2026-01-01T10:02:00.500000Z")):
        cell = nbformat.v4.new_code_cell("1")
        cell.metadata["execution"] = {"iopub.execute_input": start, "shell.execute_reply": end}
        nb.cells.append(cell)
    nb.cells.append(nbformat.v4.new_markdown_cell("text"))
    assert notebooks.notebook_seconds(nb) == pytest.approx(120.5)
    notebooks.strip_execution_metadata(nb)
    assert all("execution" not in c.metadata for c in nb.cells)
    assert notebooks.notebook_seconds(nb) is None


def test_execute_writes_a_good_run_and_leaves_a_failed_notebook_as_it_was(tmp_path):
    good, bad = tmp_path / "01_good.ipynb", tmp_path / "02_bad.ipynb"
    for path, source in ((good, "print(6 * 7)"), (bad, "print('before')\nraise ValueError('broken cell')")):
        nb = nbformat.v4.new_notebook()
        nb.cells.append(nbformat.v4.new_code_cell(source))
        nbformat.write(nb, path)
    before = bad.read_bytes()

    assert notebooks.execute(good) > 0
    cell = nbformat.read(good, as_version=4).cells[0]
    assert cell.outputs[0]["text"] == "42\n"
    assert "execution" not in cell.metadata  # timings stripped

    from nbclient.exceptions import CellExecutionError

    with pytest.raises(CellExecutionError, match="broken cell"):
        notebooks.execute(bad)
    assert bad.read_bytes() == before


def test_update_readme_merges_timings(readme):
    notebooks.update_readme({"02_b.ipynb": 600.0, "01_a.ipynb": 90.0})
    notebooks.update_readme({"01_a.ipynb": 30.0})  # a later run of one notebook keeps the other row
    section = report.read_section("timings")
    assert "| `01_a.ipynb` | 0.5 min |" in section
    assert "| `02_b.ipynb` | 10.0 min |" in section
    assert section.index("01_a") < section.index("02_b")


def test_notebook_paths_are_numbered_and_sorted():
    paths = notebooks.notebook_paths()
    assert [p.name[:2] for p in paths] == sorted(p.name[:2] for p in paths)
    assert all(p.name[:2].isdigit() for p in paths)
    assert notebooks.notebook_paths(["01"])[0].name.startswith("01_")
    # a path as the shell completes it, relative or absolute
    third = [p for p in paths if p.name.startswith("03_")]
    assert notebooks.notebook_paths([f"notebooks/{third[0].name}"]) == third
    assert notebooks.notebook_paths([str(third[0].resolve())]) == third
    assert notebooks.notebook_paths(["notebooks/99_none.ipynb"]) == []


def test_markdown_table():
    import pandas as pd

    frame = pd.DataFrame({"acc": [0.91234, 0.5], "n": [3, 4]}, index=pd.Index(["a", "b"], name="model"))
    assert report.markdown_table(frame).splitlines() == [
        "| model | acc | n |",
        "|---|---|---|",
        "| a | 0.91 | 3 |",
        "| b | 0.50 | 4 |",
    ]


def test_markdown_table_percent_and_missing():
    import pandas as pd

    frame = pd.DataFrame({"acc": [0.8237, 0.5], "tau*": [float("nan"), 0.25]}, index=pd.Index(["a", "b"], name="m"))
    assert report.markdown_table(frame, percent=["acc"]).splitlines()[2:] == ["| a | 82.4% | – |", "| b | 50.0% | 0.25 |"]
    with pytest.raises(KeyError, match="cost"):
        report.markdown_table(frame, percent=["cost"])


@pytest.mark.parametrize("p, text", [(0.04321, "0.043"), (1.0, "1.000"), (0.001, "0.001"), (0.00049, "<0.001"),
                                     (float("nan"), "–"), (None, "–")])
def test_format_p(p, text):
    assert report.format_p(p) == text


def test_seed_table_mean_and_sample_std():
    # exit costs 0.5 and 1.0; sample 0 is sure at exit 1, sample 1 never is
    logits = np.array([[[9.0, 0.0], [9.0, 0.0]], [[0.0, 0.0], [0.0, 5.0]]], dtype=np.float32)
    right = np.array([0, 1])
    wrong_final = np.array([0, 0])  # sample 1 is labelled 0: the final exit (class 1) is wrong
    runs = {"s0": _analysis("s0", logits, right, [0.5, 1.0], 0.5),
            "s1": _analysis("s1", logits, wrong_final, [0.5, 1.0], 0.5)}
    table = report.seed_table(runs)
    assert list(table.index) == ["s0", "s1", "mean", "std"]
    assert table.loc["s0", "final acc"] == 1.0 and table.loc["s1", "final acc"] == 0.5
    assert table.loc["mean", "final acc"] == pytest.approx(0.75)
    assert table.loc["std", "final acc"] == pytest.approx(np.std([1.0, 0.5], ddof=1))
    assert table.loc["mean", "relative cost"] == pytest.approx(0.75)  # (0.5 + 1.0) / 2 in both runs
    assert table.loc["std", "relative cost"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="at least two"):
        report.seed_table({"s0": runs["s0"]})


def test_budget_table_from_configs():
    config = {"experiment": {"epochs": 50, "image_size": 96, "width": 0.5}, "seed": 2,
              "precision": "mixed_bfloat16", "train_seconds_total": 750.0}
    heads = {**config, "experiment": {**config["experiment"], "epochs": 20, "backbone_from": "m"}}
    table = report.budget_table({"m": config, "old": {**config, "train_seconds_total": None}, "heads": heads})
    assert table.loc["m"].tolist() == [2, 50, 96, 0.5, "mixed_bfloat16", 12.5, None]
    assert np.isnan(table.loc["old", "train minutes"])
    assert table.loc["heads", ["epochs", "frozen backbone of"]].tolist() == [20, "m"]
    lines = report.markdown_table(table).splitlines()
    assert lines[3] == "| old | 2 | 50 | 96 | 0.50 | mixed_bfloat16 | – | – |"
    assert lines[4] == "| heads | 2 | 20 | 96 | 0.50 | mixed_bfloat16 | 12.50 | m |"


def test_target_table_checks_each_target():
    # final exit right on both samples; at tau* sample 0 leaves at exit 1 (cost 0.5), sample 1 goes on (1.5)
    logits = np.array([[[9.0, 0.0], [9.0, 0.0]], [[0.0, 0.0], [0.0, 5.0]]], dtype=np.float32)
    labels = np.array([0, 1])
    multi = _analysis("multi", logits, labels, [0.5, 1.5], threshold=0.5)
    plain = _analysis("plain", logits[:, 1:], np.array([0, 0]), [1.0], threshold=0.0)  # 50 %
    table = report.target_table({"m": multi, "p": plain}, "m", "p", min_accuracy=0.85, max_cost=0.5)
    assert table["measured"].tolist() == ["100.0%", "100.0% (0.0 points below)", "1.000", "100.0% vs 50.0%"]
    assert table["met"].tolist() == [True, True, False, True]
    assert table.index[2] == "mean cost at tau* ≤ 0.5 × the plain network (heads included)"
    assert report.target_table({"m": multi, "p": plain}, "m", "p", 0.85, 1.0)["met"].all()
    # limits a rounding error past what was measured: ten times 0.1 adds up to less than 1.0
    assert sum([0.1] * 10) < 1.0
    edge = report.target_table({"m": multi, "p": plain}, "m", "p", 1.0 + 1e-12, sum([0.1] * 10))
    assert edge["met"].tolist() == [True, True, True, True]
    assert report.target_table({"m": multi, "p": plain}, "m", "p", 1.0 + 1e-6, 0.999)["met"].tolist() == [
        False, True, False, True]


def test_target_checks_from_the_numbers():
    """``target_checks`` by hand: what ``target_table`` and ``evaluate --baseline`` show."""
    checks = report.target_checks(0.84, 0.8314, 0.504, 0.845, min_accuracy=0.85, max_cost=0.5)
    assert checks == [("84.0%", False), ("83.1% (0.9 points below)", True), ("0.504", False),
                      ("84.0% vs 84.5%", True)]  # a miss that two decimals would show as "0.50"
    checks = report.target_checks(0.86, 0.87, 0.25, 0.871, min_accuracy=0.85, max_cost=0.5, tolerance=0.01)
    assert checks == [("86.0%", True), ("87.0% (1.0 points above)", True), ("0.250", True),
                      ("86.0% vs 87.1%", False)]
    assert [name for name, _ in report.target_names(0.85, 0.5, 0.01, at="the threshold")][1:3] == [
        "accuracy at the threshold within 1 point of the final exit",
        "mean cost at the threshold ≤ 0.5 × the plain network (heads included)"]


def test_target_tables_check_each_model_against_its_own_baseline():
    logits = np.array([[[9.0, 0.0], [9.0, 0.0]], [[0.0, 0.0], [0.0, 5.0]]], dtype=np.float32)
    labels = np.array([0, 1])
    multi = _analysis("multi", logits, labels, [0.5, 1.5], threshold=0.5)
    plain = _analysis("plain", logits[:, 1:], np.array([0, 0]), [1.0], threshold=0.0)  # 50 %
    sharp = _analysis("sharp", logits[:, 1:], labels, [1.0], threshold=0.0)  # 100 %
    analyses = {"m": multi, "big": multi, "p": plain, "p-big": sharp}
    table = report.target_tables(analyses, {"m": "p", "big": "p-big"}, min_accuracy=0.85, max_cost=0.5)
    assert list(table.index) == ["m", "big"]
    assert list(table.columns) == ["baseline", "final exit ≥ 85%", "at tau*: within 1 point of the final exit",
                                   "at tau*: cost ≤ 0.5", "final exit ≥ plain − 1 point"]
    assert table.loc["m"].tolist() == ["p", "yes: 100.0%", "yes: 100.0% (0.0 points below)", "no: 1.000",
                                       "yes: 100.0% vs 50.0%"]
    assert table.loc["big", "final exit ≥ plain − 1 point"] == "yes: 100.0% vs 100.0%"
    worse = report.target_tables(analyses, {"m": "p-big"}, min_accuracy=1.5, max_cost=2.0, tolerance=0.0)
    assert worse.loc["m"].str.startswith("no:").tolist() == [False, True, False, False, False]
    with pytest.raises(ValueError, match="no model"):
        report.target_tables(analyses, {}, 0.85, 0.5)


def test_target_table_says_when_early_exit_beats_the_final_exit():
    # sample 0: right and sure at exit 1, wrong at the final exit; sample 1: unsure, then right at the end
    logits = np.array([[[9.0, 0.0], [0.0, 5.0]], [[0.0, 0.0], [0.0, 5.0]]], dtype=np.float32)
    multi = _analysis("multi", logits, np.array([0, 1]), [0.5, 1.5], threshold=0.5)
    table = report.target_table({"m": multi, "p": multi}, "m", "p", min_accuracy=0.85, max_cost=1.0)
    assert table["measured"].iloc[1] == "100.0% (50.0 points above)"  # final exit alone: 50 %
    assert table["met"].tolist() == [False, True, True, True]


def test_strip_tf_logs_keeps_everything_else():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text=(
            "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "I0000 00:00:1795330049.768497   22609 port.cc:153] oneDNN custom operations are on.\n"
            "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with flags.\n")),
        nbformat.v4.new_output("stream", name="stderr",
                               text="E0000 00:00:1795330051.850820   22609 cuda_platform.cc:52] failed call to cuInit\n"),
        nbformat.v4.new_output("stream", name="stderr", text="UserWarning: something the lesson shows\n"),
        nbformat.v4.new_output("stream", name="stdout", text="I0000 looks like a log but is stdout\n"),
    ]
    nb.cells.append(cell)
    assert notebooks.strip_tf_logs(nb) == 2
    assert [o["text"] for o in nb.cells[0].outputs] == [
        "UserWarning: something the lesson shows\n", "I0000 looks like a log but is stdout\n"]


def test_strip_object_reprs_only_where_a_richer_output_remains():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    styler = {"text/html": "<table></table>", "text/plain": "<pandas.io.formats.style.Styler at 0x7f3f787b5cd0>"}
    cell.outputs = [
        nbformat.v4.new_output("execute_result", data=styler, execution_count=1),
        nbformat.v4.new_output("display_data", data={"text/plain": "<object object at 0x7f00>"}),  # nothing else
        nbformat.v4.new_output("display_data", data={"text/html": "<b>a</b>", "text/plain": "   a\n0  1"}),
        nbformat.v4.new_output("display_data", data={"image/png": "iVBOR", "text/plain": "<Figure size 640x480 with 1 Axes>"}),
    ]
    nb.cells.append(cell)
    assert notebooks.strip_object_reprs(nb) == 1
    assert [sorted(o["data"]) for o in nb.cells[0].outputs] == [
        ["text/html"], ["text/plain"], ["text/html", "text/plain"], ["image/png", "text/plain"]]
    nbformat.validate(nb)


def _two_variants_and_plain():
    """Two 2-exit variants and a plain network on two samples (labels 0 and 1)."""
    labels = np.array([0, 1])
    # a: sample 0 sure and right at exit 1 (cost 0.5), sample 1 unsure there, right at the end (1.1): saves 20 %
    a = _analysis("a", np.array([[[9.0, 0.0], [9.0, 0.0]], [[0.0, 0.0], [0.0, 5.0]]], dtype=np.float32),
                  labels, [0.5, 1.1], threshold=0.5)
    # b: both sure at exit 1 (saves 75 %), but sample 1 is wrong there: 50 points below its final exit
    b = _analysis("b", np.array([[[9.0, 0.0], [9.0, 0.0]], [[9.0, 0.0], [0.0, 5.0]]], dtype=np.float32),
                  labels, [0.25, 1.1], threshold=0.5)
    plain = _analysis("p", np.array([[[9.0, 0.0]], [[9.0, 0.0]]], dtype=np.float32), labels, [1.0], 0.0)  # 50 %
    return a, b, plain


def test_variant_target_table_counts_only_variants_within_the_tolerance():
    a, b, plain = _two_variants_and_plain()
    analyses = {"a": a, "b": b, "p": plain}
    table = report.variant_target_table(analyses, "p", ["a", "b"], min_accuracy=0.88, min_saving=0.4)
    assert table["measured"].tolist() == [
        "50.0%", "100.0% (lowest: `a`)", "20.0% (`a`, 0.0 points below its final exit)"]
    assert table["short by"].tolist() == pytest.approx([38.0, 0.0, 20.0])
    assert table["met"].tolist() == [False, True, False]
    # 1 - 0.8 is 0.19999999999999996 in floating point: a saving of exactly the target meets it
    assert report.variant_target_table(analyses, "p", ["a"], 0.88, 0.2)["met"].tolist() == [False, True, True]
    only_b = report.variant_target_table(analyses, "p", ["b"], 0.88, 0.4)
    assert only_b["measured"].iloc[2] == "none: no variant is within 1 point at tau*"
    assert only_b["short by"].iloc[2] == pytest.approx(40.0)
    with pytest.raises(ValueError, match="no multi-exit variant"):
        report.variant_target_table(analyses, "p", [], 0.88, 0.4)


def test_epochs_to_reach_extrapolates_per_doubling():
    # 80 % at 8 epochs, 86 % at 32: 3 points per doubling, so 88 % is 2/3 of a doubling past 32
    assert report.epochs_to_reach([8, 32], [0.80, 0.86], 0.88) == pytest.approx(32 * 2 ** (2 / 3))
    assert report.epochs_to_reach([8, 32], [0.80, 0.86], 0.83) == pytest.approx(16.0)
    # three runs: the last doubling sets the slope, not the large early gain (8 -> 2 points per doubling)
    assert report.epochs_to_reach([4, 16, 8], [0.70, 0.80, 0.78], 0.84) == pytest.approx(64.0)
    # runs at the same count are averaged: 0.79 at 16 epochs, 1 point over the last doubling, so 0.80 at 32
    assert report.epochs_to_reach([8, 16, 16], [0.78, 0.78, 0.80], 0.80) == pytest.approx(32.0)
    assert report.epochs_to_reach([4, 8, 16], [0.60, 0.80, 0.79], 0.85) == float("inf")  # rose, then fell
    assert report.epochs_to_reach([8, 32], [0.86, 0.80], 0.88) == float("inf")
    with pytest.raises(ValueError, match="two or more different"):
        report.epochs_to_reach([8, 8], [0.80, 0.81], 0.88)
    with pytest.raises(ValueError, match="positive"):
        report.epochs_to_reach([0, 8], [0.80, 0.81], 0.88)
    with pytest.raises(ValueError, match="2 epoch counts but 1"):
        report.epochs_to_reach([4, 8], [0.80], 0.88)


def test_variant_table_rows_and_several_plain_networks():
    a, _, plain = _two_variants_and_plain()
    table = report.variant_table({"a": a, "p": plain, "p-long": plain}, ["p", "p-long"])
    assert table.loc["a"].tolist() == pytest.approx([2, 1.0, 1.0, 0.5, 1.0, 0.0, 0.0, 0.8, 0.2])
    for name in ("p", "p-long"):  # plain rows: no threshold, cost 1
        row = table.loc[name]
        assert np.isnan(row["tau*"]) and row["relative cost"] == 1.0 and row["early-exit acc"] == 0.5
    # with one plain name the other plain network is treated as a variant: it gets a tau*
    assert not np.isnan(report.variant_table({"a": a, "p": plain, "p-long": plain}, "p").loc["p-long", "tau*"])


def test_variant_table_reports_the_drop_on_validation_beside_the_drop_on_test():
    a, _, plain = _two_variants_and_plain()
    # on validation sample 1 is sure at exit 1 and wrong there (right at the final exit): tau* = 0.5 lets it
    # leave wrong, 50 points below the final exit, while on test it stays and nothing is lost
    val_logits = np.array([[[9.0, 0.0], [9.0, 0.0]], [[9.0, 0.0], [0.0, 5.0]]], dtype=np.float32)
    moved = dataclasses.replace(a, val_logits=val_logits)
    table = report.variant_table({"a": moved, "p": plain}, "p")
    assert table.loc["a", "drop (points)"] == pytest.approx(0.0)
    assert table.loc["a", "val drop (points)"] == pytest.approx(50.0)
    assert table.loc["p", "val drop (points)"] == 0.0


def _run(epochs, seconds=None):
    """A stand-in for a finished ``helpers.train.TrainedRun``: its epochs and per-epoch seconds (60 by default)."""
    import types

    import pandas as pd

    seconds = [60.0] * epochs if seconds is None else seconds
    return types.SimpleNamespace(config={"experiment": {"epochs": epochs}}, history=pd.DataFrame({"seconds": seconds}))


def test_budget_lines_measure_then_extrapolate():
    def plain(correct):  # four samples, all predicted class 0; `correct` of them are class 0
        labels = np.array([0] * correct + [1] * (4 - correct))
        return _analysis("p", np.tile(np.array([[[9.0, 0.0]]], dtype=np.float32), (4, 1, 1)), labels, [1.0], 0.0)

    runs = {"p8": _run(8, [1.0] * 8), "p32": _run(32, [1.0] * 32), "m4": _run(4, [1.0] * 4),
            "m8": _run(8, [1.0] * 8), "a": _run(3, [10.0, 20.0, 30.0]), "b": _run(2, [40.0, 40.0])}
    analyses = {"p8": plain(2), "p32": plain(3),  # 50 % at 8 epochs, 75 % at 32: 12.5 points per doubling
                "m4": plain(1), "m8": plain(2)}  # 25 % at 4 epochs, 50 % at 8: 25 points per doubling
    lines = report.budget_lines(runs, analyses, {"plain": ["p8", "p32"]}, ["a", "b"], 0.88)
    # 0.88 is (0.88 - 0.75) / 0.125 = 1.04 doublings past 32 epochs: 65.8 epochs, at 20 + 40 s an epoch 1.1 hours
    assert lines == [
        "the 2 networks of the comparison: 2, 3 epochs each, 2 minutes of training in all",
        "plain: 50.0% after 8 epochs, 75.0% after 32 epochs; 88% not reached; at its two longest runs' gain per "
        "doubling of the epochs it would take about 66 epochs (an extrapolation)",
        "training the 2 networks for 66 epochs each would take about 1.1 hours here at their median epoch times",
    ]
    # reached at 32 epochs, where the line crosses 0.70 at 2^((0.70 - 0.50) / 0.125) * 8 = 24.3 epochs:
    # the measured 32 epochs price the budget (32 * 60 s = 0.5 hours), not the line's crossing
    reached = report.budget_lines(runs, analyses, {"plain": ["p8", "p32"]}, ["a", "b"], 0.70)
    assert reached[1].endswith("; 70% reached at 32 epochs (measured)")
    assert reached[2].startswith("training the 2 networks for 32 epochs each would take about 0.5 hours")
    # two series: the one furthest from the target sets the budget; m reaches 0.88 at 8 * 2^1.52 = 22.9 epochs
    both = report.budget_lines(runs, analyses, {"m": ["m4", "m8"], "plain": ["p8", "p32"]}, ["a", "b"], 0.88)
    assert both[1].endswith("would take about 23 epochs (an extrapolation)")
    assert both[-1].startswith("training the 2 networks for 66 epochs each")
    falling = {"p8": plain(3), "p32": plain(2)}
    flat = report.budget_lines(runs, falling, {"plain": ["p8", "p32"]}, ["a", "b"], 0.88)
    assert flat[-1] == ("plain: 75.0% after 8 epochs, 50.0% after 32 epochs; 88% not reached, "
                        "and its two longest runs gained nothing to extrapolate")


def test_budget_lines_saving_target_per_multi_exit_series():
    a, b, plain = _two_variants_and_plain()
    assert report.saving_at_tau(a) == pytest.approx((0.2, 0.0))
    assert report.saving_at_tau(b) == pytest.approx((0.75, 0.5))

    runs = {"m8": _run(8), "m16": _run(16), "p8": _run(8), "p16": _run(16)}
    analyses = {"m8": b, "m16": a, "p8": plain, "p16": plain}
    series = {"m": ["m8", "m16"], "p": ["p8", "p16"]}
    lines = report.budget_lines(runs, analyses, series, ["m8", "p8"], 0.88, min_saving=0.2)
    assert lines[1] == "m: 100.0% after 8 epochs, 100.0% after 16 epochs; 88% reached at 8 epochs (measured)"
    # 1 - 0.8 is 0.19999999999999996: a saving of exactly the target meets it; 8 epochs drop too far
    assert lines[2] == ("m at tau*: 75.0% saved 50.0 points below its final exit after 8 epochs, 20.0% saved "
                        "0.0 points below its final exit after 16 epochs; saving target (20% of the MACs within "
                        "1 point) met at 16 epochs (measured)")
    assert lines[3].startswith("p: 50.0% after 8 epochs")  # a plain series gets no saving sentence
    assert len(lines) == 4  # p gained nothing over its doubling: no budget to price
    higher = report.budget_lines(runs, analyses, series, ["m8", "p8"], 0.88, min_saving=0.4)
    assert higher[2].endswith("saving target (40% of the MACs within 1 point) not met by any of these runs")
    # a looser tolerance admits the 8-epoch run's 50-point drop
    loose = report.budget_lines(runs, analyses, series, ["m8", "p8"], 0.88, min_saving=0.4, tolerance=0.5)
    assert loose[2].endswith("saving target (40% of the MACs within 50 points) met at 8 epochs (measured)")
    assert len(report.budget_lines(runs, analyses, series, ["m8", "p8"], 0.88)) == 3  # no min_saving, no sentence


def test_noise_table_intervals_and_paired_tests_by_hand():
    labels = np.array([0] * 5 + [1] * 5)
    one_hot = np.eye(2, dtype=np.float32)[labels] * 9  # sure and right

    def logits(first, final_class):  # (10, 2 exits, 2 classes): exit 1 as given, a sure final exit
        return np.stack([first, np.eye(2, dtype=np.float32)[final_class] * 9], axis=1)

    unsure = np.zeros((10, 2), np.float32)
    ref = logits(unsure, np.r_[labels[:9], 0])  # final right on images 0-8; nobody leaves early
    m_first = unsure.copy()
    m_first[[0, 1, 5]] = [9.0, 0.0]  # images 0, 1 (class 0) and 5 (class 1) leave at exit 1, saying class 0
    m = logits(m_first, np.r_[labels[:6], 0, 0, 0, 0])  # final right on images 0-5
    plain = one_hot[:, None, :]  # right everywhere
    analyses = {"ref": _analysis("ref", ref, labels, [0.5, 1.0], 0.5),
                "m": _analysis("m", m, labels, [0.5, 1.0], 0.5),
                "plain": _analysis("plain", plain, labels, [1.0], 0.0)}
    table = report.noise_table(analyses, "ref", plain="plain")
    assert table.loc["m", "final acc"] == pytest.approx(0.6)
    low, high = evaluation.accuracy_interval(np.arange(10) < 6)
    assert table.loc["m", "final acc, 95% interval"] == f"{100 * low:.1f}–{100 * high:.1f}%"
    # m against ref: ref alone is right on images 6, 7, 8: p = 2 * (1/2)^3
    assert table.loc["m", ["only this right", "only reference right"]].tolist() == [0, 3]
    assert table.loc["m", "p vs reference"] == pytest.approx(0.25)
    # at tau* 0.5, image 5 leaves early and wrong: 0.5 against the final exit's 0.6
    assert table.loc["m", "early-exit acc"] == pytest.approx(0.5)
    assert table.loc["m", "drop (points)"] == pytest.approx(10.0)
    assert table.loc["m", "p of drop"] == pytest.approx(1.0)
    assert table.loc["plain", ["only this right", "only reference right"]].tolist() == [1, 0]
    assert np.isnan(table.loc["plain", "drop (points)"]) and np.isnan(table.loc["ref", "p vs reference"])
    assert table.loc["ref", "only this right"] is None
    assert table.loc["ref", "drop (points)"] == pytest.approx(0.0)


def test_noise_table_needs_the_same_images_and_a_known_reference():
    logits = np.array([[[9.0, 0.0], [9.0, 0.0]], [[0.0, 0.0], [0.0, 5.0]]], dtype=np.float32)
    a = _analysis("a", logits, np.array([0, 1]), [0.5, 1.0], 0.5)
    b = _analysis("b", logits, np.array([1, 1]), [0.5, 1.0], 0.5)
    with pytest.raises(ValueError, match="same images"):
        report.noise_table({"a": a, "b": b}, "a")
    with pytest.raises(KeyError, match="reference 'c'"):
        report.noise_table({"a": a}, "c")


def _two_exit_run(name, exit_1, test_exit_1=None):
    """Two exits (costs 0.3 and 1.0), one validation image of class 0 per entry of ``exit_1``, tau* 0.5.

    ``exit_1`` gives each image's exit-1 logits: ``"sure"`` ([9, 0]: leaves, right),
    ``"wrong"`` ([0, 9]: leaves, wrong) or ``"unsure"`` ([0, 0]: goes on to the final
    exit, which is right for every image). ``test_exit_1`` does the same for the test split.
    """
    kinds = {"sure": [9.0, 0.0], "wrong": [0.0, 9.0], "unsure": [0.0, 0.0]}

    def logits(spec):
        return np.array([[kinds[k], [5.0, 0.0]] for k in spec], dtype=np.float32)

    labels = np.zeros(len(exit_1), dtype=np.int64)
    test = logits(test_exit_1 or exit_1)
    return Analysis(name, ["exit_1", "final"], ["a", "b"], np.array([0.3, 1.0]), logits(exit_1), labels,
                    test, np.zeros(len(test), dtype=np.int64), 0.5, 0.01)


def test_validation_choice_takes_the_cheapest_run_within_tolerance_on_validation():
    runs = {
        # validation: 2 of 4 leave at exit 1, all right: drop 0, cost (2 * 0.3 + 2 * 1.0) / 4 = 0.65
        "a": _two_exit_run("a", ["sure", "sure", "unsure", "unsure"]),
        # validation: 3 of 4 leave, all right: drop 0, cost (3 * 0.3 + 1.0) / 4 = 0.475;
        # on the test split every image leaves wrong, which must not matter
        "b": _two_exit_run("b", ["sure", "sure", "sure", "unsure"], test_exit_1=["wrong"] * 4),
        # validation: all leave, one wrong: cost 0.3 but a drop of 25 points, out of tolerance
        "c": _two_exit_run("c", ["sure", "sure", "sure", "wrong"]),
        # the same validation operating point as b: the tie goes to the first given, b
        "d": _two_exit_run("d", ["unsure", "sure", "sure", "sure"]),
    }
    chosen, table = report.validation_choice(runs)
    assert chosen == "b"
    assert list(table.index) == ["a", "b", "c", "d"]
    assert list(table["chosen"]) == [False, True, False, False]
    assert list(table["within"]) == [True, True, False, True]
    assert table.loc["a", "val relative cost"] == pytest.approx(0.65)
    assert table.loc["b", "val relative cost"] == pytest.approx(0.475)
    assert table.loc["c", "val drop (points)"] == pytest.approx(25.0)
    assert table.loc["b", "val early-exit acc"] == 1.0 and table.loc["b", "tau*"] == 0.5
    # without c's rival b and d, a is the cheapest within tolerance even though c is cheaper
    assert report.validation_choice({"c": runs["c"], "a": runs["a"]})[0] == "a"


def test_validation_choice_prefers_the_more_accurate_of_equally_cheap_runs():
    # both cost (600 * 0.3 + 200 * 1.0) / 800 on validation; of 800 images, the one wrong
    # early exit of "worse" is a drop of 0.125 points, within tolerance
    worse = _two_exit_run("worse", ["sure"] * 599 + ["wrong"] + ["unsure"] * 200)
    better = _two_exit_run("better", ["sure"] * 600 + ["unsure"] * 200)
    chosen, table = report.validation_choice({"worse": worse, "better": better})
    assert chosen == "better"
    assert table.loc["worse", "val relative cost"] == pytest.approx(table.loc["better", "val relative cost"])
    assert table.loc["worse", "within"]


def test_choice_markdown_marks_the_chosen_run_and_the_missed_targets():
    runs = {"a": _two_exit_run("a", ["sure", "sure", "unsure", "unsure"]),
            "b": _two_exit_run("b", ["sure", "sure", "sure", "unsure"], test_exit_1=["wrong"] * 4)}
    chosen, table = report.validation_choice(runs)
    targets = pd.DataFrame({"at tau*: within 1 point of the final exit": ["no: 0.0% (100.0 points below)"],
                            "at tau*: cost ≤ 0.5": ["yes: 0.30"]}, index=[chosen])
    text = report.choice_markdown(table, chosen, targets)
    rows = text.splitlines()
    assert rows[0].startswith("| run | val final acc | tau* |")
    assert rows[2].startswith("| `a` | 100.0% | 0.50 |") and rows[2].endswith("| yes |  |")
    assert rows[3].startswith("| `b` |") and rows[3].endswith("| yes | **chosen** |")
    assert "The chosen run, `b`, on the test split:" in text
    assert rows[-1] == "| `b` | **no**: 0.0% (100.0 points below) | yes: 0.30 |"


def test_validation_choice_errors():
    with pytest.raises(ValueError, match="no run to choose from"):
        report.validation_choice({})
    out = _two_exit_run("c", ["sure", "wrong"])
    with pytest.raises(ValueError, match="within 1 point"):
        report.validation_choice({"c": out})


def test_rule_summary_markdown_in_points_and_percent():
    summary = pd.DataFrame(
        {"within": [0.5, 0.75], "mean_drop": [0.012, -0.001], "drop_p95": [0.05, 0.02], "mean_cost": [0.6, 0.456]},
        index=pd.MultiIndex.from_tuples([("m", "stable"), ("m", "cheapest")]),
    )
    lines = report.rule_summary_markdown(summary).splitlines()
    assert lines[0] == "|  | within tolerance | mean drop (points) | 95th-percentile drop (points) | mean cost |"
    assert lines[2] == "| `m`, stable | 50.0% | 1.20 | 5.00 | 0.60 |"
    assert lines[3] == "| `m`, cheapest | 75.0% | -0.10 | 2.00 | 0.46 |"
