"""The benchmark's bookkeeping: structure of the result, the speed-up arithmetic, the command line.

No assertion here depends on how fast anything ran: timings are only checked to be
positive numbers, and efficiency = measured / predicted is checked as arithmetic.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import data, models
from helpers.benchmark import (
    VARIANTS,
    _straight_function,
    batch_size_sweep,
    cpu_description,
    cpu_line,
    engine_overhead_by_exit,
    engine_overhead_table,
    format_report,
    main,
    percentile_summary,
    relative_times_table,
    run_benchmark,
    run_benchmark_with_threads,
    set_threads,
    speedup_report,
    sweep_summary,
    targets_summary,
    thread_settings,
    threads_line,
    threshold_sweep,
    threshold_sweep_summary,
)
from helpers.cost import relative_costs
from helpers.evaluation import collect_logits, evaluate_threshold
from helpers.folding import fold_batchnorm
from helpers.inference import EarlyExitEngine

FLOWERS = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]


@pytest.fixture(scope="module")
def model(spread_model) -> keras.Model:
    return spread_model(num_classes=5)


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, size=(40, 32, 32, 3), dtype=np.uint8), rng.integers(0, 5, size=40)


@pytest.fixture(scope="module")
def result(model, sample) -> dict:
    images, labels = sample
    return run_benchmark(model, images, labels, threshold=0.6, batch_size=16, repeats=2,
                         latency_images=6, progress=False)


def test_percentile_summary_by_hand():
    # 1..20 ms: median 10.5, mean 10.5, 95th percentile (linear) 19 + 0.05 * (20 - 19) = 19.05
    seconds = np.arange(20, 0, -1) / 1e3  # order does not matter
    assert percentile_summary(seconds) == pytest.approx({"median_ms": 10.5, "p95_ms": 19.05, "mean_ms": 10.5})
    skewed = percentile_summary(np.array([1, 1, 1, 1, 96]) / 1e3)  # one slow call: the mean moves, the median not
    assert skewed["median_ms"] == pytest.approx(1.0) and skewed["mean_ms"] == pytest.approx(20.0)


def test_speedup_report_arithmetic():
    r = speedup_report(np.array([1, 1, 2, 3]), [0.2, 0.5, 1.1], measured=1.5)
    assert r["mean_relative_cost"] == pytest.approx((0.2 + 0.2 + 0.5 + 1.1) / 4)
    assert r["predicted_speedup"] == pytest.approx(2.0)
    assert r["efficiency"] == pytest.approx(0.75)
    assert "engine_efficiency" not in r
    r = speedup_report(np.array([1, 2]), [0.2, 0.6], measured=2.0, timed_costs=[0.4, 0.6])
    assert r["timed_predicted_speedup"] == pytest.approx(2.0)
    assert r["engine_efficiency"] == pytest.approx(1.0)


def test_result_structure(result, model):
    # the keys run_benchmark's docstring lists (the README points --json users there)
    assert set(result) == {
        "policy", "threshold", "num_images", "batch_size", "fold_batchnorm", "repeats", "latency_images", "exit_names",
        "relative_costs", "compute_dtypes", "cpu", "threads", "load_average", "variants", "early_exit",
        "all_exits", "stage_times", "dispatch", "targets",
    }
    assert result["policy"] == "entropy"  # the default rule
    assert set(result["variants"]) == set(VARIANTS)
    for row in result["variants"].values():
        assert 0.0 <= row["accuracy"] <= 1.0
        assert row["throughput"] > 0 and row["pass_seconds"] > 0
        assert set(row["latency"]) == {"median_ms", "p95_ms", "mean_ms"}
        assert all(v > 0 for v in row["latency"].values())
    assert result["exit_names"] == models.output_names(model)
    assert result["relative_costs"] == pytest.approx(relative_costs(model))
    assert sum(result["early_exit"]["exit_fractions"]) == pytest.approx(1.0)
    assert result["num_images"] == 40 and result["latency_images"] == 6 and result["batch_size"] == 16
    names = models.output_names(model)
    for key, batch in (("batched", 16), ("batch1", 1)):
        st = result["stage_times"][key]
        assert st["batch_size"] == batch
        assert list(st["heads_ms"]) == names and list(st["segments_ms"]) == names
        assert st["segments_ms"]["final"] == 0.0  # final reads the same block as exit_5
        parts = st["call_overhead_ms"] + sum(st["segments_ms"].values()) + sum(st["heads_ms"].values())
        assert st["sum_of_parts_ms"] == pytest.approx(parts)
        assert st["ratio"] == pytest.approx(st["all_exits_ms"] / st["sum_of_parts_ms"])
        assert len(st["relative_times"]) == len(names)
        assert np.all(np.diff(st["relative_times"]) >= 0)  # cumulative
    parts = result["all_exits"]["parts"]
    assert parts["ratio"] == result["stage_times"]["batched"]["ratio"]
    assert set(result["targets"]) == {"batched_efficiency", "batch1_efficiency", "speedup_at_accuracy",
                                      "all_exits_over_parts"}
    d = result["dispatch"]
    assert d["images"] == 6  # at most DISPATCH_IMAGES of the latency images
    for name in ("full", "early_exit"):
        assert d[name]["tf_function_ms"] > 0 and d[name]["concrete_ms"] > 0
        assert d[name]["extra_ms"] == pytest.approx(d[name]["tf_function_ms"] - d[name]["concrete_ms"])
    json.dumps(result)  # JSON-ready as it is


def test_speedups_follow_the_definitions(result, model, sample):
    images, labels = sample
    costs = relative_costs(model)
    v = result["variants"]
    for key in ("batched", "batch1"):
        r = result["early_exit"][key]
        assert r["predicted_speedup"] == pytest.approx(1.0 / r["mean_relative_cost"])
        assert r["efficiency"] == pytest.approx(r["measured_speedup"] / r["predicted_speedup"])
        assert r["engine_efficiency"] == pytest.approx(r["measured_speedup"] / r["timed_predicted_speedup"])
    batched = result["early_exit"]["batched"]
    assert batched["measured_speedup"] == pytest.approx(v["early_exit"]["throughput"] / v["full"]["throughput"])
    mean_cost = float(np.dot(result["early_exit"]["exit_fractions"], costs))
    assert batched["mean_relative_cost"] == pytest.approx(mean_cost)
    b1 = result["early_exit"]["batch1"]
    assert b1["measured_speedup"] == pytest.approx(v["full"]["latency"]["mean_ms"] / v["early_exit"]["latency"]["mean_ms"])
    assert result["targets"]["batched_efficiency"]["value"] == batched["efficiency"]


def test_accuracies_and_exits_match_the_reference(result, model, sample):
    images, labels = sample
    # every exit of the network the engine runs: the model with its batch norms folded
    logits = np.stack([np.asarray(o) for o in fold_batchnorm(model)(images, training=False)], axis=1)
    ref = evaluate_threshold(logits, labels, relative_costs(model), 0.6)
    assert result["variants"]["early_exit"]["accuracy"] == pytest.approx(ref["accuracy"])
    assert result["early_exit"]["exit_fractions"] == pytest.approx(list(ref["exit_fractions"]))
    assert result["early_exit"]["batched"]["predicted_speedup"] == pytest.approx(ref["predicted_speedup"])
    final = float((logits[:, -1].argmax(-1) == labels).mean())
    assert result["variants"]["full"]["accuracy"] == pytest.approx(final)
    assert result["variants"]["all_exits"]["accuracy"] == pytest.approx(final)
    assert result["all_exits"]["accuracy_per_exit"] == pytest.approx(list((logits.argmax(-1) == labels[:, None]).mean(0)))


def test_report_is_readable(result):
    text = format_report(result)
    assert "early_exit@0.6" in text and "engine efficiency" in text and "sum of its parts" in text
    assert f"cpu        {cpu_line(result['cpu'])}" in text.splitlines()
    assert "cpu_count" not in result  # the cores are counted once, in result["cpu"]
    load = result["load_average"]
    assert f"load       average {load['before']:.2f} before, {load['after']:.2f} after" in text
    assert " CPUs, " not in text  # the cores are named once, on the cpu line


INTEL = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile amx_int8

processor\t: 1
model name\t: another model, ignored
flags\t\t: fpu
"""
AMD = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n"


def test_cpu_description_reads_the_first_processor_and_its_bfloat16_flags():
    intel = cpu_description(INTEL)
    assert intel["model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert intel["amx_bf16"] is True and intel["avx512_bf16"] is True
    amd = cpu_description(AMD)
    assert amd["model"] == "AMD EPYC" and amd["amx_bf16"] is False and amd["avx512_bf16"] is True
    assert cpu_line(amd | {"cores": 2}) == "AMD EPYC, 2 cores; bfloat16: AVX-512 instructions, no AMX"
    assert cpu_line(intel | {"cores": None}).endswith("bfloat16: AVX-512 instructions, AMX matrix units")
    unknown = cpu_description("")  # no /proc/cpuinfo: the flags are unknown, not absent
    assert unknown["amx_bf16"] is None and unknown["avx512_bf16"] is None and unknown["model"]
    assert cpu_line(unknown).endswith("bfloat16: unknown, unknown")


@pytest.fixture
def run_folder(model, tmp_path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    model.save(folder / "model.keras")
    (folder / "config.json").write_text(json.dumps({"class_names": FLOWERS, "threshold": 0.6}))
    return folder


FAST = ["--batch-size", "8", "--repeats", "1", "--latency-images", "3", "--warmup", "0"]


def test_cli_json(run_folder, flower_folder, capsys):
    assert main([str(run_folder), "--data-dir", str(flower_folder), "--json", *FAST]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["threshold"] == 0.6  # from the run's config.json
    assert out["num_images"] == 20 and out["precision"] == "float32"
    assert set(out["variants"]) == set(VARIANTS)
    assert out["fold_batchnorm"] is True
    assert out["model"] == str(run_folder) and out["split"] == "all"  # the settings the README names
    assert out["data_dir"] == str(flower_folder) and Path(out["model_path"]).is_file()
    assert out["batch_size"] == 8 and out["stage_times"]["batched"]["batch_size"] == 8
    # a batch size larger than the images: the batch actually run, all 20, is what is reported
    assert main([str(run_folder), "--data-dir", str(flower_folder), "--json", *FAST, "--batch-size", "64"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["batch_size"] == 20 and out["stage_times"]["batched"]["batch_size"] == 20


def test_cli_a_folder_of_one_class(run_folder, make_image_folder, tmp_path, model, capsys):
    """A folder holding some of the model's classes, even one, is benchmarked (as evaluate accepts it)."""
    roses = make_image_folder(tmp_path / "roses_only", class_names=("roses",), per_class=4, image_size=32)
    images = data.load_folder(roses, 32, progress=False, min_classes=1)
    expected = float(np.mean(collect_logits(model, data.make_dataset(images))[0][:, -1].argmax(-1) == 2))
    for extra, n in (([], 4), (["--max-images", "3"], 3)):  # every image, and a sample of them
        assert main([str(run_folder), "--data-dir", str(roses), "--json", *FAST, *extra]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["num_images"] == n
        if n == 4:
            assert out["variants"]["full"]["accuracy"] == pytest.approx(expected)  # labelled "roses", class 2


def test_cli_no_fold_runs_the_model_as_it_is(run_folder, flower_folder, capsys):
    assert main([str(run_folder), "--data-dir", str(flower_folder), "--json", *FAST]) == 0
    folded = json.loads(capsys.readouterr().out)
    assert main([str(run_folder), "--data-dir", str(flower_folder), "--json", "--no-fold", *FAST]) == 0
    unfolded = json.loads(capsys.readouterr().out)
    assert unfolded["fold_batchnorm"] is False
    assert unfolded["relative_costs"] == folded["relative_costs"]  # the prediction does not change
    for variant in VARIANTS:
        assert unfolded["variants"][variant]["accuracy"] == pytest.approx(folded["variants"][variant]["accuracy"])


def test_cli_says_when_the_model_records_no_threshold(run_folder, flower_folder, capsys):
    main([str(run_folder), "--data-dir", str(flower_folder), "--json", *FAST])
    assert "records no" not in capsys.readouterr().err  # tau* 0.6 is in config.json
    (run_folder / "config.json").write_text(json.dumps({"class_names": FLOWERS}))  # a run, not published
    assert main([str(run_folder), "--data-dir", str(flower_folder), "--json", *FAST]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["threshold"] == 0.5
    assert "note: the model records no tau*; using the default 0.5" in captured.err


def test_cli_table_in_mixed_bfloat16(run_folder, flower_folder, capsys):
    argv = [str(run_folder), "--data-dir", str(flower_folder), "--threshold", "0.9",
            "--precision", "mixed_bfloat16", *FAST]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "early_exit@0.9" in text and "mixed_bfloat16" in text and "bfloat16" in text.split("layers computing in:")[1]


def test_cli_without_data_is_a_clear_error(run_folder, monkeypatch, capsys):
    monkeypatch.delenv("EARLY_EXIT_DATA_DIR", raising=False)
    assert main([str(run_folder)]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("error: no benchmark images: pass --data-dir")
    assert "Traceback" not in err


@pytest.mark.parametrize("flags, message", [
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--repeats", "-1"], "--repeats must be at least 1, got -1"),
    (["--latency-images", "0"], "--latency-images must be at least 1, got 0"),
    (["--warmup", "-1"], "--warmup must be at least 0, got -1"),
    (["--max-images", "0"], "--max-images must be at least 1, got 0"),
    (["--threshold", "1.5"], "threshold must be a number in [0, 1], got 1.5"),
    (["--threads", "0"], "--threads must be at least 1, got 0"),
])
def test_cli_rejects_bad_settings_before_loading_anything(flags, message, tmp_path, capsys):
    # The model does not exist: a bad setting must be reported first, without loading or decoding.
    assert main([str(tmp_path / "no-model.keras"), "--data-dir", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"error: {message}"]


def test_cli_rejects_other_classes(run_folder, tmp_path, capsys):
    from PIL import Image

    for c in ("cats", "dogs"):
        (tmp_path / "pets" / c).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "pets" / c / "a.png")
    assert main([str(run_folder), "--data-dir", str(tmp_path / "pets"), *FAST]) == 2
    assert "unknown to the model" in capsys.readouterr().err


def test_cli_accepts_a_subset_of_the_classes(run_folder, tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("roses", "daisy"):
        (tmp_path / "two" / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "two" / c / f"{i}.png")
    assert main([str(run_folder), "--data-dir", str(tmp_path / "two"), "--json", *FAST]) == 0
    assert json.loads(capsys.readouterr().out)["num_images"] == 6


def test_timing_the_parts_does_not_warn_of_retracing(model, sample):
    # Each part is its own tf.function traced once; TensorFlow would mistake these first
    # traces (one code object) for retracing and print a warning into notebook 03.
    from helpers.benchmark import measure_stages
    from helpers.inference import EarlyExitEngine

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = tf.get_logger()
    logger.addHandler(handler)
    try:
        parts = measure_stages(EarlyExitEngine(model), sample[0][:8], repeats=1)
    finally:
        logger.removeHandler(handler)
    assert len(parts["relative_times"]) == 6
    assert not [r for r in records if "retracing" in r.getMessage()]


def test_parts_are_timed_without_copying_their_outputs(model, sample, monkeypatch):
    # A segment's output is a feature map; copying it to NumPy is time the network never spends.
    from helpers import benchmark
    from helpers.inference import EarlyExitEngine

    fetched: list[tuple] = []
    real_fetch = benchmark._fetch
    monkeypatch.setattr(benchmark, "_fetch", lambda out: fetched.append(tf.nest.flatten(out)[0].shape) or real_fetch(out))
    engine = EarlyExitEngine(model)
    benchmark.measure_stages(engine, sample[0][:8], repeats=3)
    parts = 2 + 6 + 5 + 1  # full, all_exits, six heads, five segments, the empty call
    assert len(fetched) == parts  # the untimed warm-up calls only, once each
    monkeypatch.setattr(tf.config.experimental, "get_synchronous_execution", lambda: False)
    with pytest.raises(RuntimeError, match="synchronous eager execution"):
        benchmark.measure_stages(engine, sample[0][:8], repeats=1)


def test_batch_size_sweep_measures_the_same_exits_at_every_batch_size(model, sample):
    images, labels = sample
    sweep = batch_size_sweep(model, images, 0.6, batch_sizes=(16, 1, 4, 4), repeats=1, progress=False)
    assert list(sweep.index) == [1, 4, 16]  # sorted, each once
    logits = np.stack([np.asarray(o) for o in fold_batchnorm(model)(images, training=False)], axis=1)
    ref = evaluate_threshold(logits, labels, relative_costs(model), 0.6)
    assert np.allclose(sweep["predicted_speedup"], ref["predicted_speedup"])
    assert np.allclose(sweep["measured_speedup"], sweep["early_exit_img_s"] / sweep["full_img_s"])
    assert np.allclose(sweep["efficiency"], sweep["measured_speedup"] / sweep["predicted_speedup"])
    assert (sweep[["full_img_s", "early_exit_img_s"]] > 0).all().all()


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_sizes": (0, 4)}, "at least 1"),
    ({"batch_sizes": ()}, "at least 1"),
    ({"repeats": 0}, "at least 1"),
    ({"threshold": 1.5}, "threshold"),
])
def test_batch_size_sweep_rejects_bad_settings(model, sample, kwargs, message):
    with pytest.raises(ValueError, match=message):
        batch_size_sweep(model, sample[0], **({"threshold": 0.6} | kwargs), progress=False)
    with pytest.raises(ValueError, match="at least one image"):
        batch_size_sweep(model, sample[0][:0], 0.6, progress=False)



def test_threshold_sweep_measures_each_threshold_against_the_evaluate_everything_reference(model, sample):
    images, labels = sample
    sweep = threshold_sweep(model, images, labels, [0.6, 0.0, 1.0, 0.6], batch_size=16, repeats=1, progress=False)
    assert list(sweep.index) == [0.0, 0.6, 1.0]  # sorted, each once
    logits = np.stack([np.asarray(o) for o in fold_batchnorm(model)(images, training=False)], axis=1)
    costs = relative_costs(model)
    for tau, row in sweep.iterrows():
        ref = evaluate_threshold(logits, labels, costs, tau)
        assert row["accuracy"] == pytest.approx(ref["accuracy"])
        assert row["predicted_speedup"] == pytest.approx(ref["predicted_speedup"])
        assert row["mean_relative_cost"] == pytest.approx(ref["relative_cost"])
    full = np.mean(logits[:, -1].argmax(-1) == labels)
    assert np.allclose(sweep["full_accuracy"], full)
    assert np.allclose(sweep["drop_points"], 100 * (full - sweep["accuracy"]))
    # tau = 0: nobody leaves early, every head runs: predicted slower than the plain network
    assert sweep.loc[0.0, "accuracy"] == pytest.approx(full) and sweep.loc[0.0, "predicted_speedup"] < 1
    assert sweep.loc[1.0, "mean_relative_cost"] == pytest.approx(costs[0])  # tau = 1: everybody at exit 1
    assert np.allclose(sweep["measured_speedup"], sweep["early_exit_img_s"] / sweep["full_img_s"])
    assert np.allclose(sweep["efficiency"], sweep["measured_speedup"] / sweep["predicted_speedup"])
    assert sweep["full_img_s"].nunique() == 1 and (sweep[["full_img_s", "early_exit_img_s"]] > 0).all().all()


@pytest.mark.parametrize("kwargs, message", [
    ({"thresholds": []}, "at least one threshold"),
    ({"thresholds": [0.2, 1.5]}, "threshold"),
    ({"repeats": 0}, "at least 1"),
    ({"batch_size": 0}, "at least 1"),
    ({"labels": np.zeros(3, int)}, "one label per image"),
])
def test_threshold_sweep_rejects_bad_settings(model, sample, kwargs, message):
    images, labels = sample
    with pytest.raises(ValueError, match=message):
        threshold_sweep(model, **({"images": images, "labels": labels, "thresholds": [0.5]} | kwargs), progress=False)


def _threshold_sweep_frame(rows):
    import pandas as pd

    frame = pd.DataFrame(rows, columns=["threshold", "accuracy", "measured_speedup", "predicted_speedup"])
    frame = frame.set_index("threshold")
    frame["full_accuracy"] = 0.830
    frame["drop_points"] = 100 * (frame["full_accuracy"] - frame["accuracy"])
    frame["efficiency"] = frame["measured_speedup"] / frame["predicted_speedup"]
    return frame


def test_threshold_sweep_summary_reads_the_rows():
    sweep = _threshold_sweep_frame([
        (0.2, 0.834, 1.30, 1.50),  # 0.4 points above
        (0.4, 0.826, 1.80, 2.00),  # 0.4 below, tau*
        (0.5, 0.820, 1.95, 2.20),  # exactly 1 point below: still within
        (0.6, 0.790, 2.30, 2.50),  # 4 points below
    ])
    assert threshold_sweep_summary(sweep, operating=0.4).splitlines() == [
        "- efficiency (measured / predicted speed-up) 0.87 to 0.92 over 4 thresholds from 0.2 to 0.6.",
        "- at tau* = 0.4 (chosen on validation): measured speed-up 1.80, predicted 2.00, accuracy 0.4 points "
        "below the plain network's.",
        "- within 1 point of the plain network on these same images, the highest measured speed-up is 1.95, at "
        "0.5 (predicted 2.20): a threshold picked on the images it is scored on, not an operating point.",
    ]
    assert "0.4 points above" in threshold_sweep_summary(sweep, operating=0.2)
    assert len(threshold_sweep_summary(sweep).splitlines()) == 2  # no tau* line
    far = _threshold_sweep_frame([(0.6, 0.790, 2.30, 2.50)])
    assert threshold_sweep_summary(far).splitlines()[-1] == (
        "- no threshold of the sweep stays within 1 point of the plain network on these images.")
    with pytest.raises(ValueError, match="not one of the sweep's thresholds"):
        threshold_sweep_summary(sweep, operating=0.45)
    with pytest.raises(ValueError, match="no rows"):
        threshold_sweep_summary(sweep.iloc[:0])


def _targets(batched, batch1, speedup, close, ratio, batch_size=256) -> dict:
    """A ``run_benchmark`` result reduced to what ``check_targets`` and ``targets_summary`` read."""
    from helpers.benchmark import check_targets

    full, early = 0.80, 0.80 if close else 0.75
    return {"batch_size": batch_size, "targets": check_targets({
        "variants": {"full": {"accuracy": full}, "early_exit": {"accuracy": early}},
        "early_exit": {"batched": {"efficiency": batched, "measured_speedup": speedup},
                       "batch1": {"efficiency": batch1}},
        "all_exits": {"parts": {"ratio": ratio}},
    })}


def test_targets_summary_names_the_rows_that_met_each_target_and_the_range_of_the_others():
    results = {
        "a, float32": _targets(0.91, 0.74, 1.82, close=False, ratio=0.96),
        "a, bf16": _targets(0.69, 0.61, 1.38, close=False, ratio=1.10),
        "b, float32": _targets(0.81, 0.80, 2.10, close=True, ratio=0.93),
    }
    lines = targets_summary(results).splitlines()
    assert lines == [
        "- efficiency at batch size 256 at least 0.9: met by `a, float32` (0.91); missed by 2 rows (0.69 to 0.81).",
        "- efficiency at batch size 1 at least 0.8: met by `b, float32` (0.80); missed by 2 rows (0.61 to 0.74).",
        "- measured speed-up at least 2x with early exit within 1 point of `full`: met by `b, float32` (2.10); "
        "not applicable to 2 rows (accuracy more than 1 point below `full`).",
        "- `all_exits` at most 1.05 times the sum of its parts: met by `a, float32` (0.96), `b, float32` (0.93); "
        "missed by 1 row (1.10).",
    ]
    # the batched line says what batch size the rows were timed at
    results["b, float32"] = _targets(0.81, 0.80, 2.10, close=True, ratio=0.93, batch_size=64)
    assert targets_summary(results).splitlines()[0].startswith("- efficiency at batch size 64 or 256 at least 0.9:")
    with pytest.raises(ValueError, match="no benchmark results"):
        targets_summary({})


def test_sweep_summary_splits_the_batch_sizes_where_early_exit_paid():
    import pandas as pd

    def sweep(speedups):
        frame = pd.DataFrame({"measured_speedup": speedups, "predicted_speedup": [1.83] * len(speedups)},
                             index=pd.Index([1, 4, 16], name="batch_size"))
        return frame

    text = sweep_summary({"float32": sweep([1.30, 1.56, 1.42]), "mixed_bfloat16": sweep([1.17, 0.90, 1.0])})
    assert text.splitlines() == [
        "- float32: early exit was faster than the plain network at batch sizes 1, 4, 16; measured speed-up "
        "1.30 to 1.56 (highest at batch size 4), against 1.83 predicted by the MACs.",
        "- mixed_bfloat16: early exit was faster than the plain network at batch size 1; not faster at 4, 16; "
        "measured speed-up 0.90 to 1.17 (highest at batch size 1), against 1.83 predicted by the MACs.",
    ]
    with pytest.raises(ValueError, match="no batch sizes"):
        sweep_summary({"float32": sweep([1.0, 1.0, 1.0]).iloc[:0]})


# ---------------------------------------------------------------------------- threads


def test_threads_are_recorded_and_reported(result):
    assert result["threads"] == thread_settings() == {"intra_op": 0, "inter_op": 0}  # this process: the default
    assert "threads    TensorFlow's default (one per core)" in format_report(result)
    assert threads_line({"intra_op": 1, "inter_op": 1}) == "1 within an operation, 1 across operations"
    assert threads_line({"intra_op": 2, "inter_op": 0}) == "2 within an operation, default across operations"


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2"])
def test_set_threads_rejects_what_is_not_a_positive_integer(threads):
    with pytest.raises(ValueError, match="threads must be an integer of at least 1"):
        set_threads(threads)


def test_threads_cannot_change_once_tensorflow_has_run(run_folder, flower_folder, capsys):
    tf.constant(1.0) + 1.0  # TensorFlow has started in this process
    with pytest.raises(ValueError, match="cannot limit TensorFlow to 1 thread"):
        set_threads(1)
    assert thread_settings() == {"intra_op": 0, "inter_op": 0}  # unchanged
    assert main([str(run_folder), "--data-dir", str(flower_folder), "--threads", "1", *FAST]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot limit TensorFlow to 1 thread(s)") and "fresh process" in err[0]


def test_cli_threads_in_a_fresh_process(run_folder, flower_folder, capsys):
    assert main([str(run_folder), "--data-dir", str(flower_folder), "--json", *FAST]) == 0
    here = json.loads(capsys.readouterr().out)
    argv = [sys.executable, "-m", "helpers.benchmark", str(run_folder), "--data-dir", str(flower_folder),
            "--json", "--threads", "1", *FAST]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    there = json.loads(done.stdout)
    assert there["threads"] == {"intra_op": 1, "inter_op": 1}
    # Same model, images and threshold: the same answers, however many threads computed them.
    assert there["early_exit"]["exit_fractions"] == pytest.approx(here["early_exit"]["exit_fractions"])
    for variant in VARIANTS:
        assert there["variants"][variant]["accuracy"] == pytest.approx(here["variants"][variant]["accuracy"])


def test_run_benchmark_with_threads_benchmarks_the_same_model_in_a_new_process(model, sample, result, tmp_path):
    path = tmp_path / "model.keras"
    model.save(path)
    images, labels = sample
    other = run_benchmark_with_threads(path, images, labels, 0.6, threads=1, batch_size=16, repeats=1,
                                       latency_images=6, progress=False)
    assert other["threads"] == {"intra_op": 1, "inter_op": 1}
    assert thread_settings() == {"intra_op": 0, "inter_op": 0}  # this process is left as it was
    assert other["early_exit"]["exit_fractions"] == pytest.approx(result["early_exit"]["exit_fractions"])
    for variant in VARIANTS:
        assert other["variants"][variant]["accuracy"] == pytest.approx(result["variants"][variant]["accuracy"])
    with pytest.raises(ValueError, match="threads must be an integer of at least 1, got 0"):
        run_benchmark_with_threads(path, images, labels, 0.6, threads=0)
    kept = run_benchmark_with_threads(path, images, labels, 0.6, threads=1, exits=[2, "exit_4"], batch_size=16,
                                      repeats=1, latency_images=6, progress=False)
    assert kept["exit_names"] == ["exit_2", "exit_4", "final"]
    assert kept["relative_costs"] == pytest.approx(relative_costs(models.select_exits(model, [2, 4])))


def test_relative_times_table_lays_out_the_costs_of_each_result(result):
    table = relative_times_table({"a": result, "b": result})
    assert list(table.columns) == result["exit_names"]
    assert list(table.index) == [(k, m) for k in ("a", "b") for m in ("MACs", "measured, batch 16", "measured, batch 1")]
    assert table.loc[("b", "MACs")].tolist() == result["relative_costs"]
    assert table.loc[("a", "measured, batch 1")].tolist() == result["stage_times"]["batch1"]["relative_times"]
    other = result | {"exit_names": result["exit_names"][1:]}
    with pytest.raises(ValueError, match="other exits"):
        relative_times_table({"a": result, "c": other})


def test_engine_overhead_by_exit_takes_the_first_image_leaving_at_each_exit(model, sample):
    images, _ = sample
    engine = EarlyExitEngine(model)
    out = engine.predict(images, 0.05)
    r = engine_overhead_by_exit(engine, images, 0.05, repeats=2)
    taken = [name for j, name in enumerate(engine.exit_names) if (out["exit"] == j + 1).any()]
    assert len(taken) >= 2  # at this threshold the spread model sends these images to two exits
    assert list(r["exits"]) == taken  # every exit some image takes, in exit order
    for name, row in r["exits"].items():
        j = engine.exit_names.index(name)
        assert row["image"] == int(np.flatnonzero(out["exit"] == j + 1)[0])
        assert row["early_exit_ms"] > 0 and row["straight_ms"] > 0
        assert row["overhead_ms"] == pytest.approx(row["early_exit_ms"] - row["straight_ms"])
    assert r["full_ms"] > 0
    json.dumps(r)


def test_the_straight_path_computes_every_head_up_to_the_exit(model, sample):
    images, _ = sample
    engine = EarlyExitEngine(model)
    x = tf.convert_to_tensor(images[:4])
    every = engine.all_exits_fn(x).numpy()
    for j in range(engine.num_outputs):
        np.testing.assert_allclose(_straight_function(engine, j)(x).numpy(), every[:, : j + 1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"repeats": 0}, "repeats"),
    ({"threshold": 1.5}, "threshold"),
    ({"images": np.zeros((2, 8, 8, 3), np.uint8)}, "images must be"),
    ({"images": np.zeros((0, 32, 32, 3), np.uint8)}, "at least one image"),
])
def test_engine_overhead_by_exit_rejects_bad_input(model, sample, kwargs, message):
    args = {"images": sample[0][:4], "threshold": 0.6, "repeats": 1} | kwargs
    with pytest.raises(ValueError, match=message):
        engine_overhead_by_exit(EarlyExitEngine(model), **args)


def test_engine_overhead_table_by_hand():
    r = {"full_ms": 8.0, "exits": {"exit_1": {"image": 3, "early_exit_ms": 1.5, "straight_ms": 1.0, "overhead_ms": 0.5},
                                   "final": {"image": 0, "early_exit_ms": 8.4, "straight_ms": 8.2, "overhead_ms": 0.2}}}
    table = engine_overhead_table(r)
    assert list(table.index) == ["exit_1", "final"]
    assert table.loc["exit_1", "engine (ms)"] == 0.5
    assert table.loc["exit_1", "engine / plain network"] == pytest.approx(0.5 / 8.0)
    assert table.loc["final", "engine / plain network"] == pytest.approx(0.2 / 8.0)


def test_cli_exits_benchmarks_the_network_without_the_other_heads(run_folder, flower_folder, model, capsys):
    assert main([str(run_folder), "--data-dir", str(flower_folder), "--json", "--exits", "1,exit_3", *FAST]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert "chosen with every exit" in captured.err
    kept = models.select_exits(model, [1, 3])
    assert out["exit_names"] == ["exit_1", "exit_3", "final"]
    assert out["relative_costs"] == pytest.approx(relative_costs(kept))
    assert len(out["early_exit"]["exit_fractions"]) == 3
    assert len(out["stage_times"]["batched"]["relative_times"]) == 3  # no part for the removed heads
    assert main([str(run_folder), "--data-dir", str(flower_folder), "--exits", "exit_7", *FAST]) == 2
    assert "unknown exit 'exit_7'" in capsys.readouterr().err
    assert main([str(run_folder), "--data-dir", str(flower_folder), "--json", "--exits", "1,2,3,4,5", *FAST]) == 0
    assert "every exit" not in capsys.readouterr().err  # every exit kept: tau* applies


@pytest.mark.parametrize(("policy", "argv", "threshold", "seed"), [("max_prob", ["--threshold", "0.7"], 0.7, 0),
                                                                   ("patience", [], 2, 1)])
def test_cli_policy(tmp_path, spread_model, flower_folder, model, capsys, policy, argv, threshold, seed):
    """--policy: early exit leaves where the policy's reference (evaluation.evaluate_threshold) says."""
    # the module's model (seed 0) for max_prob; for patience a network whose exits agree
    # twice in a row on some of these images (the module's model's exits rarely do)
    network = model if seed == 0 else spread_model(num_classes=5, seed=seed)
    run_folder = tmp_path / "run"
    run_folder.mkdir()
    network.save(run_folder / "model.keras")
    (run_folder / "config.json").write_text(json.dumps({"class_names": FLOWERS, "threshold": 0.6}))
    assert main([str(run_folder), "--data-dir", str(flower_folder), "--json", "--policy", policy, *argv, *FAST]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["policy"] == policy and out["threshold"] == threshold
    # without --threshold: the policy's default, since the model records only tau* (an entropy threshold)
    assert ("records no patience threshold" in captured.err) == (policy == "patience")
    images = data.load_folder(flower_folder, 32, progress=False)  # class folders in the model's order
    logits, labels = collect_logits(network, data.make_dataset(images))
    expected = evaluate_threshold(logits, labels, relative_costs(network), threshold, policy)
    assert 0 < expected["exit_fractions"][-1] < 1  # the premise: some images leave early, some do not
    np.testing.assert_allclose(out["early_exit"]["exit_fractions"], expected["exit_fractions"])
    assert out["variants"]["early_exit"]["accuracy"] == pytest.approx(expected["accuracy"])
    assert main([str(run_folder), "--data-dir", str(flower_folder), "--policy", policy, *argv, *FAST]) == 0
    assert f"exits taken at {policy}={threshold:g}:" in capsys.readouterr().out
    assert main([str(run_folder), "--data-dir", str(flower_folder), "--policy", policy, "--threshold", "1.5"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
