"""Measure the real speed-up of early exit, and compare it with the cost model's promise.

    python -m helpers.benchmark MODEL [--data-dir DIR] [--threshold T] [--batch-size B]
                                      [--policy entropy|max_prob|patience]
                                      [--precision float32|mixed_bfloat16|mixed_float16] [--threads N]
                                      [--exits E1,E2,...] [--json] [...]   (all options: --help)

Three variants of the same model, each a ``tf.function`` with a fixed input
signature (``helpers.inference.EarlyExitEngine``), timed through its concrete
function, as an export's signatures are called:

- ``full``: the plain network (backbone and final classifier, no exit heads): the baseline;
- ``all_exits``: every head on the whole batch (what "evaluate all, pick afterwards" costs);
- ``early_exit@T``: real early exit at threshold T of the exit policy (``--policy``:
  normalised entropy by default, or ``max_prob`` or ``patience``, ``helpers.policies``;
  without ``--threshold`` the model's threshold for that policy, as in
  ``helpers.evaluate``).

Method, all in one process: the images are decoded once and cut into batches
(tensors made before timing); every variant is warmed up (tracing, oneDNN
primitive caches for the sub-batch sizes early exit produces); then ``repeats``
rounds, each timing one pass of every variant over all images, round-robin with
the order rotated each round so that slow drifts of the machine hit every variant
alike; the median pass time gives the throughput. Latency at batch size 1 is
measured the same way (interleaved, per image the median over rounds) on
``latency_images`` images; the report gives its median, 95th percentile and mean
over images.

For ``early_exit`` the report compares:

- measured speed-up: throughput(early_exit) / throughput(full) in the batched
  setting, and mean latency(full) / mean latency(early_exit) at batch size 1 (a
  ratio of means, like the cost model's ratio of total work; the ratio of medians
  is reported too);
- predicted speed-up: 1 / mean relative cost of the exits actually taken on those
  same images (``helpers.cost.relative_costs``: backbone and every head evaluated
  on the way);
- efficiency = measured / predicted.

To tell the engine's own overhead from the cost model's idealisation (a MAC count
assumes that every multiply-accumulate takes the same time and that nothing else
takes any; at batch size 1 above all, every convolution and head also pays a fixed
cost per call, however small), every part of the network (each backbone segment
and each head) is also timed alone on one batch and at batch
size 1 (``measure_stages``). Their cumulative sums give a measured relative cost of
each exit, hence a second prediction and an ``engine_efficiency`` = measured /
timed prediction. The same timings check that ``all_exits`` costs no more than the
sum of its parts: every block runs once. ``engine_overhead_by_exit`` breaks the
engine's own share down at batch size 1: for an image leaving at each exit, the
early-exit call against the straight computation of that exit.

Calling a ``tf.function`` rather than its concrete function adds Python-side work
to every call (matching the arguments to a trace), more for ``early_exit``'s two
inputs and three outputs than for ``full``'s one; at batch size 1 that is a
noticeable part of an early-exit call. The report measures both ways of calling at
batch size 1 (``dispatch``), so that the cost of the Python call path is visible
rather than mixed into the speed-up.

Accuracy: ``full`` uses the final classifier, ``all_exits`` reports the final
output's accuracy (and every exit's), ``early_exit`` its own.

How many threads TensorFlow may use changes the picture: by default it runs every
operation on all cores, and the small operations early exit keeps (block 1, the
first heads, batch size 1 above all) share out over the cores less well than the
large convolutions of the plain network's middle blocks. ``--threads N`` (or
``run_benchmark_with_threads``, which runs the benchmark in a fresh process) limits
TensorFlow to N threads within and across operations, as a server running one
single-threaded worker per core would; the result records the setting
(``threads``). It can only be chosen before TensorFlow has run anything in the
process.

Two sweeps time early exit against the plain network beyond one setting:
``batch_size_sweep`` at several batch sizes for one threshold, and
``threshold_sweep`` at several thresholds for one batch size (with the accuracy each
threshold gives on the images timed, which are for measuring, not for choosing).

``--exits`` benchmarks the model with only some of its early exits
(``helpers.models.select_exits``): the other heads are removed, so neither
``all_exits`` nor ``early_exit`` runs them, and the cost model does not count them.

Timings mean something only on an otherwise idle machine: interleaving spreads the
disturbance of other processes evenly over the variants but cannot remove it. The
report records the system load average before and after the run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from helpers.evaluate import DEFAULT_THRESHOLD, argument_type, default_threshold, threshold_note
from helpers.evaluation import exit_accuracies
from helpers.limits import at_least
from helpers.policies import POLICIES, ExitRule, check_threshold, entropy_exit, resolve_policy

VARIANTS = ("full", "all_exits", "early_exit")
TARGETS = {
    "batched_efficiency": 0.9,
    "batch1_efficiency": 0.8,
    "speedup_at_accuracy": 2.0,
    "all_exits_over_parts": 1.05,  # 5 % tolerance for timing noise
}


def _log(message: str, progress: bool) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def _load_average() -> float | None:
    """The system's 1-minute load average (None where the OS does not report it)."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def thread_settings() -> dict[str, int]:
    """TensorFlow's thread settings in this process: ``intra_op`` and ``inter_op`` (0: its default, one per core)."""
    return {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}


def _check_threads(threads) -> int:
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be an integer of at least 1, got {threads!r}")
    return int(threads)


def set_threads(threads: int) -> None:
    """Let TensorFlow use ``threads`` threads within an operation and as many across operations.

    Raises:
        ValueError: ``threads`` is below 1, or TensorFlow has already run something in
            this process with other settings (they are fixed once it has started: run
            the benchmark in a fresh process, as ``run_benchmark_with_threads`` does).
    """
    threads = _check_threads(threads)
    if thread_settings() == {"intra_op": threads, "inter_op": threads}:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        raise ValueError(
            f"cannot limit TensorFlow to {threads} thread(s): it has already started in this process "
            f"with {thread_settings()} (0: one per core); choose the threads in a fresh process "
            "(python -m helpers.benchmark --threads N, or benchmark.run_benchmark_with_threads)"
        ) from None


def threads_line(threads: dict[str, int]) -> str:
    """``threads`` of a result in words."""
    if threads == {"intra_op": 0, "inter_op": 0}:
        return "TensorFlow's default (one per core)"
    def word(n: int) -> str:
        return "default" if n == 0 else str(n)
    return f"{word(threads['intra_op'])} within an operation, {word(threads['inter_op'])} across operations"


CPUINFO = Path("/proc/cpuinfo")


def cpu_description(cpuinfo: str | None = None) -> dict:
    """The CPU the timings are taken on, and what it has for bfloat16.

    Mixed bfloat16 gains much more where the CPU has matrix units for it (Intel AMX,
    flag ``amx_bf16``) than where it has only the AVX-512 bfloat16 vector instructions
    (``avx512_bf16``), and early exit's saving in bfloat16 changes with it, so a
    benchmark table must say which CPU it comes from.

    Args:
        cpuinfo: the text of ``/proc/cpuinfo``; default: read it (``None`` where there
            is none, as on macOS and Windows).

    Returns:
        ``{"model": str, "cores": int | None, "amx_bf16": bool | None,
        "avx512_bf16": bool | None}``; the flags are ``None`` when unknown.
    """
    import platform

    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text()
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:  # the first processor's entry
            fields[key.strip()] = value.strip()
    flags = set(fields["flags"].split()) if "flags" in fields else None
    return {
        "model": fields.get("model name") or platform.processor() or platform.machine() or "unknown CPU",
        "cores": os.cpu_count(),
        "amx_bf16": None if flags is None else "amx_bf16" in flags,
        "avx512_bf16": None if flags is None else "avx512_bf16" in flags,
    }


def cpu_line(cpu: dict) -> str:
    """``cpu_description`` in one line, e.g. ``AMD EPYC, 2 cores; bfloat16: AVX-512 instructions, no AMX``."""
    def has(flag: bool | None, yes: str, no: str) -> str:
        return "unknown" if flag is None else (yes if flag else no)

    cores = f", {cpu['cores']} cores" if cpu.get("cores") else ""
    return (f"{cpu['model']}{cores}; bfloat16: "
            f"{has(cpu['avx512_bf16'], 'AVX-512 instructions', 'no AVX-512 instructions')}, "
            f"{has(cpu['amx_bf16'], 'AMX matrix units', 'no AMX')}")


def _fetch(out) -> None:
    """Bring a result to the host (the call has finished once its outputs are readable)."""
    for t in tf.nest.flatten(out):
        t.numpy()


def _time_call(fn: Callable, args: Sequence, fetch: bool = True) -> float:
    """Seconds of one call, its outputs brought to the host unless ``fetch`` is False.

    Without fetching, the time is that of the computation alone: TensorFlow's eager
    execution is synchronous by default, so a call returns when its outputs are computed.
    """
    start = time.perf_counter()
    out = fn(*args)
    if fetch:
        _fetch(out)
    return time.perf_counter() - start


def _time_pass(fn: Callable, batches: Sequence[tuple]) -> float:
    start = time.perf_counter()
    for args in batches:
        _fetch(fn(*args))
    return time.perf_counter() - start


def _rotated(names: Sequence[str], k: int) -> list[str]:
    k %= len(names)
    return list(names[k:]) + list(names[:k])


def _interleaved_passes(
    fns: dict[str, Callable], batches: Sequence[tuple], repeats: int, progress: bool = False, what: str = "timing",
) -> dict[str, list[float]]:
    """Seconds of one pass of every function over ``batches``, ``repeats`` rounds, order rotated every round."""
    seconds: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(repeats):
        _log(f"{what} round {r + 1}/{repeats} ...", progress)
        for name in _rotated(list(fns), r):
            seconds[name].append(_time_pass(fns[name], batches))
    return seconds


def _interleaved_per_image(fns: dict[str, Callable], singles: Sequence[tuple], repeats: int) -> dict[str, np.ndarray]:
    """Seconds of every function on every one-image batch: per image, all functions in a rotating order.

    Returns:
        name -> per-image median over ``repeats`` rounds, ``(images,)``.
    """
    names = list(fns)
    seconds = {name: np.zeros((repeats, len(singles))) for name in names}
    for r in range(repeats):
        for i, args in enumerate(singles):
            for name in _rotated(names, r + i):
                seconds[name][r, i] = _time_call(fns[name], args)
    return {name: np.median(v, axis=0) for name, v in seconds.items()}


def percentile_summary(seconds: np.ndarray) -> dict[str, float]:
    """Median, 95th percentile and mean of per-image times, in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    return {
        "median_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "mean_ms": float(ms.mean()),
    }


def speedup_report(
    exits: np.ndarray, costs: Sequence[float], measured: float, timed_costs: Sequence[float] | None = None
) -> dict[str, float]:
    """Predicted speed-up of an observed exit distribution, and the efficiency of a measured one.

    Args:
        exits: 1-based exit of each image.
        costs: relative cost of each exit (``helpers.cost.relative_costs``).
        measured: measured speed-up over the plain network.
        timed_costs: optionally, relative costs measured by timing the parts
            (``measure_stages``' ``relative_times``).

    Returns:
        ``{"mean_relative_cost", "predicted_speedup", "measured_speedup", "efficiency"}``
        with ``predicted = 1 / mean cost`` and ``efficiency = measured / predicted``;
        with ``timed_costs`` also ``timed_predicted_speedup`` (the same from the
        timed costs) and ``engine_efficiency`` = measured / timed prediction, which
        leaves out how well MACs predict time and keeps the engine's own overhead.
    """
    exits = np.asarray(exits)
    mean_cost = float(np.asarray(costs, dtype=np.float64)[exits - 1].mean())
    predicted = 1.0 / mean_cost
    report = {
        "mean_relative_cost": mean_cost,
        "predicted_speedup": predicted,
        "measured_speedup": float(measured),
        "efficiency": float(measured) / predicted,
    }
    if timed_costs is not None:
        timed = 1.0 / float(np.asarray(timed_costs, dtype=np.float64)[exits - 1].mean())
        report |= {"timed_predicted_speedup": timed, "engine_efficiency": float(measured) / timed}
    return report


def _layer_function(layers: Sequence, spec: tf.TensorSpec) -> Callable:
    """The concrete function of a ``tf.function`` applying ``layers`` in sequence to tensors of ``spec``."""

    @tf.function(input_signature=[spec])
    def apply(x: tf.Tensor) -> tf.Tensor:
        for layer in layers:
            x = layer(x, training=False)
        return x

    return apply.get_concrete_function()


@contextlib.contextmanager
def _no_retracing_warning():
    """Silence TensorFlow's "triggered tf.function retracing" warning inside the block.

    ``measure_stages`` builds one ``tf.function`` per part from the same Python code,
    each traced once for its own input shape. TensorFlow counts traces per code object,
    not per function, so it takes these first traces for the retracing of one function
    and warns; nothing is traced twice.
    """
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _empty_function(spec: tf.TensorSpec) -> Callable:
    """A concrete function that takes a batch and does nothing with it: the fixed cost of a call."""

    @tf.function(input_signature=[spec])
    def nothing(x: tf.Tensor) -> tf.Tensor:
        return tf.shape(x)

    return nothing.get_concrete_function()


def measure_stages(engine, images: np.ndarray, repeats: int = 5) -> dict:
    """Time every part of the network alone on one batch, and ``full``/``all_exits`` whole.

    The parts are the backbone segments (the blocks run before each output;
    the first segment includes the preprocessing) and the heads, each the concrete
    function of a ``tf.function`` applied to precomputed features of its input. Their sum is what
    ``all_exits`` must not exceed (it would if it recomputed backbone work), and
    their cumulative sums give a *measured* relative cost of each exit, to set beside
    the MAC count of ``helpers.cost`` (which assumes every MAC takes the same time).

    Args:
        engine: an ``EarlyExitEngine``.
        images: one batch, uint8 ``(B, H, W, 3)``.
        repeats: timed rounds (interleaved, order rotated); medians are reported.

    Nothing here is copied to the host while timed: a segment's output is a feature
    map (at batch size 256, a hundred megabytes and more after block 1 of the
    128-pixel VGG11), and copying it into a NumPy array would add to the segment a
    time the network never spends. Eager execution is synchronous (checked), so a
    call has finished computing when it returns; ``full`` and ``all_exits`` are timed
    the same way, so that they compare with the sum of the parts on equal terms.

    Every part timed alone also pays the fixed cost of calling a function
    (``call_overhead_ms``, timed with a function that does nothing; a fraction of a
    millisecond, which matters at batch size 1). It is subtracted from each part
    and counted once per network call in the sums below.

    Returns:
        Milliseconds per batch: ``full_ms``, ``all_exits_ms``, ``call_overhead_ms``,
        ``segments_ms`` and ``heads_ms`` (per output name, overhead removed),
        ``sum_of_parts_ms`` (one overhead plus every part), ``ratio`` = all_exits /
        sum of parts; and ``relative_times``: per output, the time to reach and
        evaluate it (overhead, segments and heads so far) over the plain network's
        (overhead, segments and final head).
    """
    if not tf.config.experimental.get_synchronous_execution():
        raise RuntimeError("measure_stages needs synchronous eager execution (TensorFlow's default): "
                           "tf.config.experimental.set_synchronous_execution(True)")
    x = tf.convert_to_tensor(images)
    calls: dict[str, tuple[Callable, tuple]] = {
        "full": (engine.concrete("full"), (x,)),
        "all_exits": (engine.concrete("all_exits"), (x,)),
    }
    h = x
    segments, heads = [], []
    with _no_retracing_warning():  # every part is traced here, once
        for j, stage in enumerate(engine.stages):
            layers = ([engine.preprocess] if j == 0 else []) + list(stage.blocks)
            if layers:
                segment = _layer_function(layers, tf.TensorSpec([None, *h.shape[1:]], h.dtype))
                calls[f"segment:{stage.exit_name}"] = (segment, (h,))
                segments.append(stage.exit_name)
                h = segment(h)
            head = _layer_function([stage.head], tf.TensorSpec([None, *h.shape[1:]], h.dtype))
            calls[f"head:{stage.exit_name}"] = (head, (h,))
            heads.append(stage.exit_name)
        calls["call_overhead"] = (_empty_function(engine.images_spec), (x,))
        names = list(calls)
        for name in names:  # warm-up
            _time_call(*calls[name])
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(max(1, repeats)):
        for name in _rotated(names, r):
            times[name].append(_time_call(*calls[name], fetch=False))
    med = {name: float(np.median(t)) * 1e3 for name, t in times.items()}
    overhead = med["call_overhead"]
    # Each part timed alone pays the fixed cost of a call once; a whole network pays it once in all.
    seg_ms = {n: max(med[f"segment:{n}"] - overhead, 0.0) if f"segment:{n}" in med else 0.0
              for n in engine.exit_names}
    head_ms = {n: max(med[f"head:{n}"] - overhead, 0.0) for n in heads}
    total = overhead + sum(seg_ms.values()) + sum(head_ms.values())
    plain = overhead + sum(seg_ms.values()) + head_ms[engine.exit_names[-1]]
    cumulative = overhead + np.cumsum([seg_ms[n] + head_ms[n] for n in engine.exit_names])
    return {
        "batch_size": int(len(images)),
        "full_ms": med["full"],
        "all_exits_ms": med["all_exits"],
        "call_overhead_ms": overhead,
        "segments_ms": seg_ms,
        "heads_ms": head_ms,
        "sum_of_parts_ms": total,
        "ratio": med["all_exits"] / total,
        "relative_times": (cumulative / plain).tolist(),
    }


def run_benchmark(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    threshold: float,
    batch_size: int = 256,
    repeats: int = 5,
    latency_images: int = 200,
    warmup: int = 1,
    rule: ExitRule = entropy_exit,
    seed: int = 0,
    progress: bool = True,
    fold_batchnorm: bool = True,
) -> dict:
    """Measure ``full``, ``all_exits`` and ``early_exit@threshold`` on ``images`` (see the module docstring).

    Args:
        model: a multi-exit model from ``helpers.models``, already in the precision
            to measure (see ``helpers.inference.with_precision``).
        images: uint8 ``(N, H, W, 3)`` at the model's input size.
        labels: int ``(N,)`` true labels.
        threshold: the exit rule's threshold (in [0, 1]; for patience an integer p >= 1).
        batch_size: batch size of the throughput measurement.
        repeats: timed rounds (each round runs every variant once over all images;
            at batch size 1, once on every latency image).
        latency_images: images timed one by one (a seeded sample; at most N).
        warmup: untimed passes of every variant before timing.
        rule: the exit rule of ``early_exit``: a policy name (``helpers.policies``) or a rule.
        seed: seed of the latency sample.
        progress: print progress to stderr.
        fold_batchnorm: let the engine fold the batch normalisations into the
            convolutions (``helpers.folding``), as it does by default; the cost model's
            prediction is the same either way.

    Returns:
        A JSON-ready dict: settings (``policy``, the rule's name, ``threshold``, ``num_images``, ``batch_size``
        (the batch size run: at most ``num_images``),
        ``fold_batchnorm``, ``repeats``, ``latency_images``), ``exit_names``, ``relative_costs``,
        ``compute_dtypes``; the machine: ``cpu`` (``cpu_description``), ``threads``
        (``thread_settings``), ``load_average`` (``before`` and ``after``); ``variants`` (per variant: ``accuracy``,
        ``throughput`` images/s, ``pass_seconds`` (the median round), ``pass_seconds_rounds`` (every
        round), ``latency`` ms summary);
        ``early_exit`` (``exit_fractions``, ``batched`` and ``batch1`` speed-up
        reports from ``speedup_report``, ``median_latency_speedup``);
        ``all_exits`` (``accuracy_per_exit``, ``parts``: time per batch against the
        sum of its parts, ``predicted_relative_time`` and ``measured_relative_time``
        over ``full``); ``stage_times`` (``measure_stages`` at the batch size and at 1);
        ``dispatch`` (``measure_dispatch`` on the first latency images);
        ``targets`` (the issue's targets, each with value, limit and ``passed``).
    """
    from helpers.cost import relative_costs
    from helpers.inference import EarlyExitEngine, compute_dtypes

    policy = resolve_policy(rule)
    threshold = policy.check(threshold)
    images = np.asarray(images)
    labels = np.asarray(labels)
    if len(images) == 0 or len(images) != len(labels):
        raise ValueError(f"need at least one image and one label per image, got {len(images)} and {len(labels)}")
    if batch_size < 1 or repeats < 1 or latency_images < 1 or warmup < 0:
        raise ValueError("batch_size, repeats and latency_images must be at least 1, warmup at least 0")
    load_before = _load_average()
    engine = EarlyExitEngine(model, rule, fold_batchnorm=fold_batchnorm)
    engine.check_images(images[:1])
    costs = relative_costs(model)
    t = tf.constant(threshold, tf.float32)
    concrete = {name: engine.concrete(name) for name in VARIANTS}
    fns: dict[str, Callable] = {
        "full": concrete["full"],
        "all_exits": concrete["all_exits"],
        "early_exit": lambda x: concrete["early_exit"](x, t),
    }
    n = len(images)
    batch_size = min(batch_size, n)  # fewer images than a batch: the batch actually run is all of them
    batches = [(tf.convert_to_tensor(images[i:i + batch_size]),) for i in range(0, n, batch_size)]
    rng = np.random.default_rng(seed)
    lat_index = np.sort(rng.permutation(n)[: min(latency_images, n)])
    singles = [(tf.convert_to_tensor(images[i:i + 1]),) for i in lat_index]

    # Outputs (untimed): accuracy and the exits actually taken.
    _log(f"warming up on {n} images (batch size {batch_size}) ...", progress)
    full_logits = np.concatenate([engine.full_fn(*b).numpy() for b in batches])
    all_logits = np.concatenate([engine.all_exits_fn(*b).numpy() for b in batches])
    ee = [fns["early_exit"](*b) for b in batches]
    ee_label = np.concatenate([o["label"].numpy() for o in ee])
    ee_exit = np.concatenate([o["exit"].numpy() for o in ee])
    lat_exit = np.concatenate([fns["early_exit"](*s)["exit"].numpy() for s in singles])
    for _ in range(warmup):
        for name in VARIANTS:
            _time_pass(fns[name], batches)
            _time_pass(fns[name], singles)

    # Throughput: round-robin over the variants, order rotated every round.
    pass_times = _interleaved_passes(fns, batches, repeats, progress, "throughput")

    # Latency at batch size 1: per image, every variant in a rotating order.
    _log(f"latency at batch size 1 on {len(singles)} images, {repeats} rounds ...", progress)
    per_image = _interleaved_per_image({name: fns[name] for name in VARIANTS}, singles, repeats)  # (images,)
    dispatch = measure_dispatch(engine, singles[:DISPATCH_IMAGES], t, repeats)

    _log("timing every part alone (batched, then batch size 1) ...", progress)
    stages_batched = measure_stages(engine, images[:batch_size], repeats)
    stages_single = measure_stages(engine, images[lat_index[:1]], 20 * repeats)

    accuracy = {
        "full": float(exit_accuracies(full_logits[:, None], labels)[0]),
        "all_exits": float(exit_accuracies(all_logits, labels)[-1]),
        "early_exit": float((ee_label == labels).mean()),
    }
    variants = {}
    for name in VARIANTS:
        median_pass = float(np.median(pass_times[name]))
        variants[name] = {
            "accuracy": accuracy[name],
            "throughput": n / median_pass,
            "pass_seconds": median_pass,
            "pass_seconds_rounds": [float(x) for x in pass_times[name]],
            "latency": percentile_summary(per_image[name]),
        }
    thr = {name: variants[name]["throughput"] for name in VARIANTS}
    batched = speedup_report(ee_exit, costs, thr["early_exit"] / thr["full"], stages_batched["relative_times"])
    batch1 = speedup_report(lat_exit, costs, per_image["full"].mean() / per_image["early_exit"].mean(),
                            stages_single["relative_times"])
    e = engine.num_outputs
    result = {
        "policy": policy.name,
        "threshold": threshold,
        "num_images": n,
        "batch_size": batch_size,
        "fold_batchnorm": fold_batchnorm,
        "repeats": repeats,
        "latency_images": len(singles),
        "exit_names": engine.exit_names,
        "relative_costs": [float(c) for c in costs],
        "compute_dtypes": compute_dtypes(model),
        "cpu": cpu_description(),
        "threads": thread_settings(),
        "load_average": {"before": load_before, "after": _load_average()},
        "variants": variants,
        "early_exit": {
            "exit_fractions": (np.bincount(ee_exit - 1, minlength=e) / n).tolist(),
            "batched": batched,
            "batch1": batch1,
            "median_latency_speedup": variants["full"]["latency"]["median_ms"]
            / variants["early_exit"]["latency"]["median_ms"],
        },
        "all_exits": {
            "accuracy_per_exit": exit_accuracies(all_logits, labels).tolist(),
            "predicted_relative_time": float(costs[-1]),
            "measured_relative_time": thr["full"] / thr["all_exits"],
            "parts": {k: stages_batched[k] for k in ("batch_size", "all_exits_ms", "sum_of_parts_ms", "ratio")},
        },
        "stage_times": {"batched": stages_batched, "batch1": stages_single},
        "dispatch": dispatch,
    }
    result["targets"] = check_targets(result)
    return result


def _benchmark_in_this_process(
    model_ref: str, precision: str, threads: int, exits: list | None, args: tuple, kwargs: dict,
) -> dict:
    """``run_benchmark`` of a saved model with ``threads`` threads (the body of ``run_benchmark_with_threads``'s process)."""
    set_threads(threads)  # first: TensorFlow has not run anything yet in this process
    from helpers.inference import with_precision
    from helpers.models import select_exits
    from helpers.registry import load

    model = with_precision(load(model_ref).model, precision)
    if exits is not None:
        model = select_exits(model, exits)
    return run_benchmark(model, *args, **kwargs)


def run_benchmark_with_threads(
    model_ref: str | os.PathLike, images: np.ndarray, labels: np.ndarray, threshold: float, threads: int,
    precision: str = "float32", exits: Sequence[str | int] | None = None, **kwargs,
) -> dict:
    """``run_benchmark`` in a fresh Python process whose TensorFlow uses ``threads`` threads.

    TensorFlow fixes its thread pools when it starts, so a notebook (or any process
    that has already run a model) cannot change them; this starts a new process
    (``multiprocessing``'s *spawn*), limits its TensorFlow to ``threads`` threads within
    and across operations (``set_threads``), loads the model there and benchmarks it
    on the same images.

    Args:
        model_ref: a ``.keras`` file, a run folder or a reference model name
            (``helpers.registry.load``): the model is loaded again in the new process.
        images, labels, threshold: as for ``run_benchmark``.
        threads: at least 1.
        precision: dtype policy to run the model in (``helpers.inference.with_precision``).
        exits: keep only these early exits (``helpers.models.select_exits``); None keeps them all.
        **kwargs: the other arguments of ``run_benchmark`` (``repeats``, ``batch_size``, ...).

    Returns:
        ``run_benchmark``'s result; its ``threads`` records the setting.
    """
    import multiprocessing

    threads = _check_threads(threads)
    args = (np.asarray(images), np.asarray(labels), threshold)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        exits = None if exits is None else list(exits)
        return pool.apply(_benchmark_in_this_process, (str(model_ref), precision, threads, exits, args, kwargs))


DISPATCH_IMAGES = 50
"""Latency images on which ``run_benchmark`` compares the two ways of calling (``measure_dispatch``)."""


def measure_dispatch(engine, singles: Sequence[tuple], threshold: tf.Tensor, repeats: int = 5) -> dict:
    """Batch-size-1 latency of ``full`` and ``early_exit`` called as ``tf.function`` and as concrete function.

    The two ways run the same graph; the difference is the Python-side work of a
    ``tf.function`` call (matching the arguments to a trace), which the benchmark's
    timings leave out by calling the concrete functions.

    Args:
        engine: an ``EarlyExitEngine``.
        singles: one-image batches, each a 1-tuple of a uint8 tensor.
        threshold: float32 scalar tensor.
        repeats: rounds; per image and way of calling, the median over rounds.

    Returns:
        ``{"images": n, "full": {...}, "early_exit": {...}}``, each with
        ``tf_function_ms`` and ``concrete_ms`` (mean over images of the per-image
        medians) and ``extra_ms``, their difference.
    """
    if not singles:
        raise ValueError("need at least one image")
    early = engine.concrete("early_exit")
    calls: dict[str, Callable] = {
        "full/tf_function": engine.full_fn,
        "full/concrete": engine.concrete("full"),
        "early_exit/tf_function": lambda x: engine.early_exit_fn(x, threshold),
        "early_exit/concrete": lambda x: early(x, threshold),
    }
    for name in calls:  # warm-up
        _time_call(calls[name], singles[0])
    per_image = _interleaved_per_image(calls, singles, max(1, repeats))
    mean = {name: float(v.mean()) * 1e3 for name, v in per_image.items()}
    result: dict = {"images": len(singles)}
    for variant in ("full", "early_exit"):
        fn, cf = mean[f"{variant}/tf_function"], mean[f"{variant}/concrete"]
        result[variant] = {"tf_function_ms": fn, "concrete_ms": cf, "extra_ms": fn - cf}
    return result


def _straight_function(engine, upto: int) -> Callable:
    """Concrete function: preprocessing, the blocks and every head up to output ``upto`` (0-based), no exit rule."""

    @tf.function(input_signature=[engine.images_spec])
    def straight(images: tf.Tensor) -> tf.Tensor:
        return engine.logits_up_to(images, upto)

    return straight.get_concrete_function()


def engine_overhead_by_exit(engine, images: np.ndarray, threshold: float, repeats: int = 50) -> dict:
    """At batch size 1, what the engine adds to the work of the exit an image takes, exit by exit.

    For the first image that leaves at each exit, ``early_exit`` is timed beside the
    *straight* computation of that exit: preprocessing, the blocks and every head up to
    it, in one function with no exit rule, no splitting of the batch and no
    conditionals (the same work the timed parts add up to for that image). Their
    difference is the engine's own work at batch size 1: the exit rule after every
    head on the way, splitting the batch, the conditionals that skip the later stages,
    putting the results back in order. The plain network (``full``) is timed alongside,
    to compare with.

    Args:
        engine: an ``EarlyExitEngine``.
        images: uint8 ``(N, H, W, 3)``; images are taken in order, the first to leave at each exit.
        threshold: the exit rule's threshold.
        repeats: interleaved rounds (order rotated); medians are reported.

    Returns:
        ``{"full_ms": ..., "exits": {name: {"image", "early_exit_ms", "straight_ms",
        "overhead_ms"}}}`` for every exit that some image takes, in exit order.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    images = np.asarray(images)
    engine.check_images(images[:1])
    if not len(images):
        raise ValueError("need at least one image")
    exits = engine.predict(images, threshold)["exit"]
    t = tf.constant(engine.policy.check(threshold), tf.float32)
    early = engine.concrete("early_exit")
    calls: dict[str, tuple[Callable, tuple]] = {}
    taken: dict[str, int] = {}
    for j, name in enumerate(engine.exit_names):
        leaving = np.flatnonzero(exits == j + 1)
        if not len(leaving):
            continue
        i = int(leaving[0])
        x = tf.convert_to_tensor(images[i:i + 1])
        taken[name] = i
        calls[f"early_exit:{name}"] = (early, (x, t))
        calls[f"straight:{name}"] = (_straight_function(engine, j), (x,))
    calls["full"] = (engine.concrete("full"), (tf.convert_to_tensor(images[:1]),))
    names = list(calls)
    for name in names:  # warm-up
        for _ in range(3):
            _time_call(*calls[name])
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in _rotated(names, r):
            seconds[name].append(_time_call(*calls[name]))
    ms = {name: float(np.median(s)) * 1e3 for name, s in seconds.items()}
    return {
        "full_ms": ms["full"],
        "exits": {
            name: {"image": i, "early_exit_ms": ms[f"early_exit:{name}"], "straight_ms": ms[f"straight:{name}"],
                   "overhead_ms": ms[f"early_exit:{name}"] - ms[f"straight:{name}"]}
            for name, i in taken.items()
        },
    }


def engine_overhead_table(result: dict):
    """``engine_overhead_by_exit``'s result as a DataFrame, one row per exit taken.

    Columns: ``early exit (ms)``, ``straight (ms)``, ``engine (ms)`` (their difference)
    and ``engine / plain network`` (that difference over the plain network's time
    at batch size 1).
    """
    import pandas as pd

    rows = {
        name: {
            "early exit (ms)": r["early_exit_ms"],
            "straight (ms)": r["straight_ms"],
            "engine (ms)": r["overhead_ms"],
            "engine / plain network": r["overhead_ms"] / result["full_ms"],
        }
        for name, r in result["exits"].items()
    }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "leaving at"
    return table


def batch_size_sweep(
    model,
    images: np.ndarray,
    threshold: float,
    batch_sizes: Sequence[int] = (1, 4, 16, 64, 256),
    repeats: int = 3,
    rule: ExitRule = entropy_exit,
    fold_batchnorm: bool = True,
    progress: bool = True,
):
    """Measured speed-up of early exit over the plain network at several batch sizes, on the same images.

    For each batch size, ``images`` are cut into batches of that size and one pass of
    ``full`` and one of ``early_exit`` over all of them are timed, interleaved (order
    rotated every round), ``repeats`` rounds after one untimed pass of each; medians.
    The images and the threshold are the same at every batch size, so are the exits
    taken and the speed-up their MACs predict: what changes is only how well the
    machine runs each batch size, and how much of the batch early exit leaves behind
    at each stage.

    Args:
        model: a multi-exit model from ``helpers.models``, in the precision to measure.
        images: uint8 ``(N, H, W, 3)`` at the model's input size.
        threshold: the exit rule's threshold.
        batch_sizes: the batch sizes to measure (each at least 1).
        repeats: timed rounds per batch size.
        rule: the exit rule of ``early_exit``.
        fold_batchnorm: as for ``run_benchmark``.
        progress: print progress to stderr.

    Returns:
        A pandas DataFrame indexed by ``batch_size``: ``full_img_s`` and
        ``early_exit_img_s`` (throughput), ``measured_speedup`` (their ratio),
        ``predicted_speedup`` (1 / mean relative cost of the exits taken, heads
        included) and ``efficiency`` (measured / predicted).
    """
    import pandas as pd

    from helpers.cost import relative_costs
    from helpers.inference import EarlyExitEngine

    threshold = check_threshold(threshold)
    images = np.asarray(images)
    sizes = sorted({int(b) for b in batch_sizes})
    if len(images) == 0:
        raise ValueError("need at least one image")
    if not sizes or sizes[0] < 1 or repeats < 1:
        raise ValueError(f"batch sizes and repeats must be at least 1, got {list(batch_sizes)} and {repeats}")
    engine = EarlyExitEngine(model, rule, fold_batchnorm=fold_batchnorm)
    engine.check_images(images[:1])
    predicted = speedup_report(engine.predict(images, threshold)["exit"], relative_costs(model), 1.0)
    t = tf.constant(threshold, tf.float32)
    early_exit = engine.concrete("early_exit")
    fns: dict[str, Callable] = {"full": engine.concrete("full"), "early_exit": lambda x: early_exit(x, t)}
    rows = {}
    for b in sizes:
        _log(f"batch size {b}: {repeats} rounds over {len(images)} images ...", progress)
        batches = [(tf.convert_to_tensor(images[i:i + b]),) for i in range(0, len(images), b)]
        for fn in fns.values():  # warm-up: oneDNN prepares its kernels per shape
            _time_pass(fn, batches)
        seconds = _interleaved_passes(fns, batches, repeats)
        full, early = (len(images) / float(np.median(seconds[name])) for name in fns)
        rows[b] = {
            "full_img_s": full,
            "early_exit_img_s": early,
            "measured_speedup": early / full,
            "predicted_speedup": predicted["predicted_speedup"],
            "efficiency": early / full / predicted["predicted_speedup"],
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("batch_size")


def threshold_sweep(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    thresholds: Sequence[float],
    batch_size: int = 256,
    repeats: int = 3,
    rule: ExitRule = entropy_exit,
    fold_batchnorm: bool = True,
    progress: bool = True,
):
    """Measured and predicted speed-up of early exit at several thresholds, with the accuracy each gives.

    The plain network and early exit at every threshold make one pass each over the
    same ``images`` in batches of ``batch_size``, interleaved (order rotated every
    round), ``repeats`` rounds after one untimed pass of each; medians. So the
    trade-off that ``helpers.evaluation.sweep`` predicts from MACs is measured in time,
    threshold by threshold, on one machine in one run.

    The images are for measuring, not for choosing: a threshold that looks best here
    was picked on the images it is scored on (the operating threshold tau* is chosen on
    the validation split, ``helpers.evaluation.choose_threshold``).

    Args:
        model: a multi-exit model from ``helpers.models``, in the precision to measure.
        images: uint8 ``(N, H, W, 3)`` at the model's input size.
        labels: int ``(N,)`` true labels.
        thresholds: the exit rule's thresholds (each in [0, 1]; duplicates dropped).
        batch_size: images per call.
        repeats: timed rounds.
        rule: the exit rule of ``early_exit``.
        fold_batchnorm: as for ``run_benchmark``.
        progress: print progress to stderr.

    Returns:
        A pandas DataFrame indexed by ``threshold`` (ascending): ``accuracy`` of early
        exit, ``full_accuracy`` (the final classifier's, computed by ``full``: the same
        on every row; not the accuracy of a separately trained plain network),
        ``drop_points`` (``100 * (full_accuracy - accuracy)``), ``early_exit_img_s`` and
        ``full_img_s`` (throughput), ``measured_speedup`` (their ratio),
        ``mean_relative_cost`` and ``predicted_speedup`` (of the exits taken, heads
        included) and ``efficiency`` (measured / predicted).
    """
    import pandas as pd

    from helpers.cost import relative_costs
    from helpers.inference import EarlyExitEngine

    taus = sorted({check_threshold(t) for t in thresholds})
    images, labels = np.asarray(images), np.asarray(labels)
    if len(images) == 0 or len(images) != len(labels):
        raise ValueError(f"need at least one image and one label per image, got {len(images)} and {len(labels)}")
    if not taus:
        raise ValueError("need at least one threshold")
    if batch_size < 1 or repeats < 1:
        raise ValueError(f"batch_size and repeats must be at least 1, got {batch_size} and {repeats}")
    engine = EarlyExitEngine(model, rule, fold_batchnorm=fold_batchnorm)
    engine.check_images(images[:1])
    costs = relative_costs(model)
    batches = [(tf.convert_to_tensor(images[i:i + batch_size]),) for i in range(0, len(images), batch_size)]
    full = engine.concrete("full")
    full_accuracy = float(np.mean(np.concatenate([full(*b).numpy().argmax(-1) for b in batches]) == labels))
    early_exit = engine.concrete("early_exit")

    def at(t: tf.Tensor) -> Callable:
        return lambda x: early_exit(x, t)

    fns: dict[str, Callable] = {"full": full}
    predicted = {}
    for tau in taus:
        out = engine.predict(images, tau, batch_size)
        predicted[tau] = speedup_report(out["exit"], costs, 1.0) | {"accuracy": float(np.mean(out["label"] == labels))}
        fns[f"early_exit@{tau}"] = at(tf.constant(tau, tf.float32))
    _log(f"warm-up: one pass of the plain network and of early exit at {len(taus)} thresholds ...", progress)
    for fn in fns.values():
        _time_pass(fn, batches)
    seconds = _interleaved_passes(fns, batches, repeats, progress, "threshold sweep")
    full_rate = len(images) / float(np.median(seconds["full"]))
    rows = {}
    for tau in taus:
        rate = len(images) / float(np.median(seconds[f"early_exit@{tau}"]))
        p = predicted[tau]
        rows[tau] = {
            "accuracy": p["accuracy"],
            "full_accuracy": full_accuracy,
            "drop_points": 100 * (full_accuracy - p["accuracy"]),
            "early_exit_img_s": rate,
            "full_img_s": full_rate,
            "measured_speedup": rate / full_rate,
            "mean_relative_cost": p["mean_relative_cost"],
            "predicted_speedup": p["predicted_speedup"],
            "efficiency": rate / full_rate / p["predicted_speedup"],
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("threshold")


def threshold_sweep_summary(sweep, operating: float | None = None, tolerance: float = 0.01) -> str:
    """What a ``threshold_sweep`` says, as Markdown lines.

    The range of the efficiency; at ``operating`` (tau*, if it is one of the rows) its
    speed-ups and accuracy drop; and, among the thresholds whose accuracy on these
    images stays within ``tolerance`` of the plain network's, the highest measured
    speed-up, flagged as chosen on the images it is measured on.

    Raises:
        ValueError: the sweep has no rows, or ``operating`` is not one of its thresholds.
    """
    if len(sweep) == 0:
        raise ValueError("the threshold sweep has no rows")
    taus = sweep.index.to_numpy(dtype=float)
    lines = [f"- efficiency (measured / predicted speed-up) {sweep['efficiency'].min():.2f} to "
             f"{sweep['efficiency'].max():.2f} over {len(sweep)} thresholds from {taus.min():g} to {taus.max():g}."]
    if operating is not None:
        match = np.flatnonzero(np.isclose(taus, operating))
        if not len(match):
            raise ValueError(f"tau* {operating:g} is not one of the sweep's thresholds {taus.tolist()}")
        row = sweep.iloc[match[0]]
        lines.append(f"- at tau* = {operating:g} (chosen on validation): measured speed-up "
                     f"{row['measured_speedup']:.2f}, predicted {row['predicted_speedup']:.2f}, "
                     f"accuracy {abs(row['drop_points']):.1f} points {'below' if row['drop_points'] >= 0 else 'above'} "
                     "the plain network's.")
    close = sweep[[at_least(a, f - tolerance) for a, f in zip(sweep["accuracy"], sweep["full_accuracy"], strict=True)]]
    if len(close):
        best = close["measured_speedup"].idxmax()
        row = close.loc[best]
        lines.append(f"- within {100 * tolerance:g} point of the plain network on these same images, the highest "
                     f"measured speed-up is {row['measured_speedup']:.2f}, at {best:g} (predicted "
                     f"{row['predicted_speedup']:.2f}): a threshold picked on the images it is scored on, "
                     "not an operating point.")
    else:
        lines.append(f"- no threshold of the sweep stays within {100 * tolerance:g} point of the plain network on these images.")
    return "\n".join(lines)


def check_targets(result: dict) -> dict:
    """The issue's targets, evaluated on a ``run_benchmark`` result.

    Returns:
        ``{name: {"value", "limit", "passed"}}``; ``speedup_at_accuracy`` is only
        checked (``passed`` not None) when early exit's accuracy is within one point
        of the final classifier's.
    """
    ee = result["early_exit"]
    v = result["variants"]
    close = at_least(v["early_exit"]["accuracy"], v["full"]["accuracy"] - 0.01)
    speedup = ee["batched"]["measured_speedup"]
    ratio = result["all_exits"]["parts"]["ratio"]
    return {
        "batched_efficiency": _target(ee["batched"]["efficiency"], TARGETS["batched_efficiency"], True),
        "batch1_efficiency": _target(ee["batch1"]["efficiency"], TARGETS["batch1_efficiency"], True),
        "speedup_at_accuracy": {
            "value": speedup,
            "limit": TARGETS["speedup_at_accuracy"],
            "passed": (speedup >= TARGETS["speedup_at_accuracy"]) if close else None,
            "note": "accuracy within 1 point of full" if close else "accuracy more than 1 point below full: not applicable",
        },
        "all_exits_over_parts": _target(ratio, TARGETS["all_exits_over_parts"], False),
    }


def _target(value: float, limit: float, at_least: bool) -> dict:
    return {"value": value, "limit": limit, "passed": bool(value >= limit if at_least else value <= limit)}


# --------------------------------------------------------------------------- report


def format_report(result: dict) -> str:
    """A human-readable table of a ``run_benchmark`` result (plus the settings added by ``main``)."""
    v = result["variants"]
    ee = result["early_exit"]
    ae = result["all_exits"]
    t = result["threshold"]
    lines = []
    if "model" in result:
        lines.append(f"model      {result['model']}  ({result.get('model_path', '')})")
    dtypes = ", ".join(f"{k} {n}" for k, n in sorted(result["compute_dtypes"].items()))
    lines.append(f"precision  {result.get('precision', '?')}  (layers computing in: {dtypes})")
    source = f" from {result['data_dir']}" if "data_dir" in result else ""
    lines.append(
        f"data       {result['num_images']} images{source}; batch size {result['batch_size']}, "
        f"{result['repeats']} interleaved rounds, latency on {result['latency_images']} images"
    )
    if "cpu" in result:
        lines.append(f"cpu        {cpu_line(result['cpu'])}")
    load = result.get("load_average") or {}
    if load.get("before") is not None:
        lines.append(
            f"load       average {load['before']:.2f} before, {load['after']:.2f} after "
            "(timings need an otherwise idle machine)"
        )
    if "threads" in result:
        lines.append(f"threads    {threads_line(result['threads'])}")
    lines.append("")
    head = f"{'variant':<18}{'accuracy':>9}{'images/s':>11}{'speed-up':>10}{'lat. median':>13}{'p95':>8}{'mean':>8}{'speed-up':>10}"
    lines += [head, f"{'':<18}{'':>9}{'(batched)':>11}{'':>10}{'(ms, b=1)':>13}{'':>8}{'':>8}{'(b=1)':>10}", "-" * len(head)]
    for name in VARIANTS:
        row = v[name]
        label = f"early_exit@{t:g}" if name == "early_exit" else name
        speed = row["throughput"] / v["full"]["throughput"]
        lat = row["latency"]
        speed1 = v["full"]["latency"]["mean_ms"] / lat["mean_ms"]
        lines.append(
            f"{label:<18}{row['accuracy']:>9.3f}{row['throughput']:>11.1f}{speed:>10.2f}"
            f"{lat['median_ms']:>13.2f}{lat['p95_ms']:>8.2f}{lat['mean_ms']:>8.2f}{speed1:>10.2f}"
        )
    lines.append("")
    fractions = "  ".join(f"{n} {f:.1%}" for n, f in zip(result["exit_names"], ee["exit_fractions"], strict=True))
    policy = result.get("policy", "entropy")
    lines.append(f"exits taken at {'tau' if policy == 'entropy' else policy}={t:g}: {fractions}")
    st = result["stage_times"]
    lines.append(f"{'relative cost of each exit':<30}" + "".join(f"{n:>9}" for n in result["exit_names"]))
    lines.append(f"{'  MACs (helpers.cost)':<30}" + "".join(f"{c:>9.3f}" for c in result["relative_costs"]))
    for key, label in (("batched", f"  measured, batch {st['batched']['batch_size']}"), ("batch1", "  measured, batch 1")):
        lines.append(f"{label:<30}" + "".join(f"{c:>9.3f}" for c in st[key]["relative_times"]))
    lines.append("")
    for key, label in (("batched", f"batched (b={result['batch_size']})"), ("batch1", "batch size 1")):
        r = ee[key]
        lines.append(
            f"early_exit {label:<16} measured speed-up {r['measured_speedup']:.2f}; predicted by MACs "
            f"{r['predicted_speedup']:.2f} (mean cost {r['mean_relative_cost']:.3f}) -> efficiency "
            f"{r['efficiency']:.2f}; predicted by timed parts {r['timed_predicted_speedup']:.2f} -> "
            f"engine efficiency {r['engine_efficiency']:.2f}"
        )
    lines.append(f"early_exit median-latency speed-up (b=1): {ee['median_latency_speedup']:.2f}")
    if "dispatch" in result:
        d = result["dispatch"]
        lines.append(
            f"calling at b=1 (mean ms over {d['images']} images), tf.function vs concrete function: "
            + "; ".join(f"{name} {d[name]['tf_function_ms']:.2f} vs {d[name]['concrete_ms']:.2f}"
                        for name in ("full", "early_exit"))
            + " (the timings above call the concrete functions)"
        )
    p = ae["parts"]
    lines.append(
        f"all_exits per batch of {p['batch_size']}: {p['all_exits_ms']:.2f} ms vs sum of its parts "
        f"(every segment and head timed alone) {p['sum_of_parts_ms']:.2f} ms: ratio {p['ratio']:.2f}"
    )
    lines.append(
        f"all_exits time / full time: measured {ae['measured_relative_time']:.2f}, "
        f"cost model {ae['predicted_relative_time']:.2f}"
    )
    lines.append("all_exits accuracy per exit: " + "  ".join(
        f"{n} {a:.3f}" for n, a in zip(result["exit_names"], ae["accuracy_per_exit"], strict=True)))
    lines.append("")
    lines.append("targets:")
    for name, tgt in result["targets"].items():
        status = {True: "PASS", False: "FAIL", None: "n/a "}[tgt["passed"]]
        op = "<=" if name == "all_exits_over_parts" else ">="
        note = f"  ({tgt['note']})" if "note" in tgt else ""
        lines.append(f"  [{status}] {name}: {tgt['value']:.3f} {op} {tgt['limit']}{note}")
    return "\n".join(lines)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    return obj


# --------------------------------------------------------------------------- command line


def load_benchmark_data(data_dir: str | os.PathLike, image_size: int, split: str = "all",
                        split_file: Path | None = None, max_images: int | None = None,
                        progress: bool = True):
    """Decode the benchmark images at the model's input size.

    All images: ``helpers.data.load_folder``. A subset (the test split, or
    ``max_images``) is chosen from the file list first and only those files are
    decoded, with the same ``helpers.data.load_image``.

    Args:
        data_dir: a ``<class>/<image>`` folder.
        image_size: the model's input size.
        split: ``"all"`` images, or the ``"test"`` images listed in ``split_file``.
        split_file: a run's ``split.json`` (needed for ``split="test"``).
        max_images: keep at most this many (a seeded sample), for quick runs.
        progress: show a progress bar while decoding.

    Returns:
        A ``helpers.data.ImageSet``.
    """
    from helpers import data as data_lib

    if split == "all" and max_images is None:
        return data_lib.load_folder(data_dir, image_size, progress=progress, min_classes=1)
    root = Path(data_dir)
    files, labels, class_names = data_lib.find_image_files(root, min_classes=1)  # a subset of classes is fine
    ids = [str(p.relative_to(root)) for p in files]
    keep = np.arange(len(files))
    if split == "test":
        if split_file is None or not split_file.is_file():
            raise FileNotFoundError(
                f"--split test needs the run's split.json beside the model (looked for {split_file})"
            )
        wanted = set(json.loads(split_file.read_text())["test"])
        keep = np.flatnonzero([i in wanted for i in ids])
        if not len(keep):
            raise data_lib.DataError(f"none of the test images listed in {split_file} is under {root}")
    if max_images is not None and max_images < len(keep):
        keep = np.sort(np.random.default_rng(0).permutation(keep)[:max_images])
    from tqdm.auto import tqdm

    images = np.empty((len(keep), image_size, image_size, 3), dtype=np.uint8)
    for j, i in enumerate(tqdm(keep, desc="decoding images", unit="img", disable=not progress)):
        images[j] = data_lib.load_image(files[i], image_size)
    return data_lib.ImageSet(images, labels[keep], class_names, [ids[i] for i in keep])


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``python -m helpers.benchmark --help``).

    Returns:
        0 on success (1 with ``--strict`` if a target failed), 2 on an error.
    """
    from helpers import data as data_lib
    from helpers.models import parse_exits, select_exits

    parser = argparse.ArgumentParser(
        prog="python -m helpers.benchmark",
        description="Measure full, all_exits and early_exit (throughput and batch-1 latency) and "
        "compare early exit's speed-up with the cost model's prediction.",
    )
    parser.add_argument("model", metavar="MODEL", help="a .keras file, a run folder or a reference model name")
    parser.add_argument("--data-dir", help=f"<class>/<image> folder (default: ${data_lib.DATA_DIR_ENV})")
    parser.add_argument("--split", choices=("all", "test"), default="all",
                        help="all images of the folder, or only the run's test split (split.json)")
    parser.add_argument("--threshold", type=float,
                        help=f"exit threshold (default: the model's tau* for entropy, else {DEFAULT_THRESHOLD}; "
                        "for another policy its recorded threshold or the policy's default; patience: p, an integer)")
    parser.add_argument("--policy", default="entropy", choices=sorted(POLICIES), help="exit policy (default entropy)")
    parser.add_argument("--batch-size", type=int, default=256, help="batch size for throughput (default 256)")
    parser.add_argument("--precision", choices=("float32", "mixed_bfloat16", "mixed_float16"), default="float32",
                        help="dtype policy to run the model in (default float32)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timing rounds (default 5)")
    parser.add_argument("--latency-images", type=int, default=200, help="images timed at batch size 1 (default 200)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes per variant (default 1)")
    parser.add_argument("--max-images", type=int, help="use at most this many images (seeded sample)")
    parser.add_argument("--no-fold", action="store_true",
                        help="run the batch normalisations as they are instead of folding them into the "
                        "convolutions (helpers.folding), to see what folding saves")
    parser.add_argument("--threads", type=int,
                        help="threads TensorFlow may use within and across operations (default: one per core)")
    parser.add_argument("--exits", type=argument_type(parse_exits),
                        help="keep only these early exits (names or 1-based numbers, comma-separated, or none): "
                        "the other heads are removed, not run and not counted")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 if a target is missed")
    args = parser.parse_args(argv)
    try:
        from helpers.inference import with_precision
        from helpers.registry import load

        data_dir = args.data_dir or os.environ.get(data_lib.DATA_DIR_ENV)
        if not data_dir:
            raise ValueError(
                f"no benchmark images: pass --data-dir DIR (one folder per class, like flower_photos) "
                f"or set {data_lib.DATA_DIR_ENV}"
            )
        # Settings first, before minutes of loading and decoding.
        counts = {"--batch-size": (args.batch_size, 1), "--repeats": (args.repeats, 1),
                  "--latency-images": (args.latency_images, 1), "--warmup": (args.warmup, 0)}
        if args.max_images is not None:
            counts["--max-images"] = (args.max_images, 1)
        if args.threads is not None:
            counts["--threads"] = (args.threads, 1)
        for flag, (value, least) in counts.items():
            if value < least:
                raise ValueError(f"{flag} must be at least {least}, got {value}")
        policy = resolve_policy(args.policy)
        if args.threshold is not None:
            policy.check(args.threshold)
        if args.threads is not None:  # before TensorFlow runs anything
            set_threads(args.threads)
        _log(f"loading {args.model} ...", True)
        loaded = load(args.model)
        threshold = args.threshold
        model = with_precision(loaded.model, args.precision)
        everyone = len(model.outputs)
        if args.exits is not None:
            model = select_exits(model, args.exits)
        note = None
        if threshold is None:
            threshold = default_threshold(loaded.meta, policy.name)
            note = threshold_note(loaded.meta, policy.name, subset=1 < len(model.outputs) < everyone)  # tau* fits every exit
        threshold = policy.check(threshold)
        size = int(model.inputs[0].shape[1])
        data = load_benchmark_data(data_dir, size, args.split, loaded.path.parent / "split.json", args.max_images)
        if note:  # only once the images are known good, so that an input error stays one line
            print(note, file=sys.stderr)
        from helpers.evaluate import remap_labels

        # Class folders are matched to the model's classes by name (a subset is fine).
        labels = remap_labels(list(data.class_names), list(loaded.class_names))[data.labels]
        result = run_benchmark(
            model, data.images, labels, threshold, batch_size=args.batch_size, repeats=args.repeats,
            latency_images=args.latency_images, warmup=args.warmup, rule=policy.name, fold_batchnorm=not args.no_fold,
        )
    except Exception as err:  # one line, no traceback: the message says what to fix
        message = " ".join(str(err).split()) or type(err).__name__
        expected = isinstance(err, (ValueError, OSError, TypeError))
        print(f"error: {message}" if expected else f"error: {type(err).__name__}: {message}", file=sys.stderr)
        return 2
    result = {
        "model": str(args.model),
        "model_path": str(loaded.path),
        "precision": args.precision,
        "data_dir": str(data_dir),
        "split": args.split,
        **result,
    }
    print(json.dumps(_jsonable(result)) if args.json else format_report(result))
    failed = [name for name, t in result["targets"].items() if t["passed"] is False]
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())


def summary_table(results: dict[str, dict]):
    """One row per benchmark result (e.g. per precision): accuracies, speed-ups, efficiencies.

    Args:
        results: label -> ``run_benchmark`` result.

    Returns:
        A pandas DataFrame indexed by label.
    """
    import pandas as pd

    rows = {}
    for label, r in results.items():
        v, ee = r["variants"], r["early_exit"]
        rows[label] = {
            "full acc": v["full"]["accuracy"],
            "early-exit acc": v["early_exit"]["accuracy"],
            "full img/s": v["full"]["throughput"],
            "early-exit img/s": v["early_exit"]["throughput"],
            "speed-up (batched)": ee["batched"]["measured_speedup"],
            "predicted (MACs)": ee["batched"]["predicted_speedup"],
            "efficiency (batched)": ee["batched"]["efficiency"],
            "speed-up (b=1)": ee["batch1"]["measured_speedup"],
            "efficiency (b=1)": ee["batch1"]["efficiency"],
            "all_exits / parts": r["all_exits"]["parts"]["ratio"],
        }
    return pd.DataFrame(rows).T


def relative_times_table(results: dict[str, dict]):
    """The relative cost of reaching each exit, by MACs and as timed, for every benchmark result.

    Args:
        results: label -> ``run_benchmark`` result (the same model's exits in each).

    Returns:
        A pandas DataFrame, one column per exit, three rows per result (index
        ``(label, measure)``): ``MACs`` (``helpers.cost``), and the timed parts'
        ``measured, batch B`` and ``measured, batch 1`` (``measure_stages``).
    """
    import pandas as pd

    rows, columns = {}, None
    for label, r in results.items():
        if columns is not None and r["exit_names"] != columns:
            raise ValueError(f"{label!r} has other exits ({r['exit_names']}) than the first result ({columns})")
        columns = r["exit_names"]
        st = r["stage_times"]
        rows[(label, "MACs")] = r["relative_costs"]
        rows[(label, f"measured, batch {st['batched']['batch_size']}")] = st["batched"]["relative_times"]
        rows[(label, "measured, batch 1")] = st["batch1"]["relative_times"]
    index = pd.MultiIndex.from_tuples(list(rows), names=["result", "measure"])
    return pd.DataFrame(list(rows.values()), index=index, columns=columns)


TARGET_LABELS = {
    "batched_efficiency": "efficiency at batch size {batch} at least {limit:g}",
    "batch1_efficiency": "efficiency at batch size 1 at least {limit:g}",
    "speedup_at_accuracy": "measured speed-up at least {limit:g}x with early exit within 1 point of `full`",
    "all_exits_over_parts": "`all_exits` at most {limit:g} times the sum of its parts",
}


def targets_summary(results: dict[str, dict]) -> str:
    """The issue's targets against a set of benchmark results, as Markdown, one line a target.

    Each line names the rows that met the target and gives the range of the values of
    those that did not, so that prose need not restate a run's numbers. The speed-up
    target only applies to rows whose early exit is within one point of ``full``; the
    batched line names the batch size(s) the rows were timed at.

    Args:
        results: label -> ``run_benchmark`` result (with its ``targets``).

    Raises:
        ValueError: ``results`` is empty.
    """
    if not results:
        raise ValueError("no benchmark results to summarise")
    batch = " or ".join(str(b) for b in sorted({int(r["batch_size"]) for r in results.values()}))
    lines = []
    for name, text in TARGET_LABELS.items():
        checks = {label: r["targets"][name] for label, r in results.items()}
        limit = next(iter(checks.values()))["limit"]
        passed = [label for label, t in checks.items() if t["passed"]]
        failed = {label: t["value"] for label, t in checks.items() if t["passed"] is False}
        skipped = [label for label, t in checks.items() if t["passed"] is None]
        met = ", ".join(f"`{label}` ({checks[label]['value']:.2f})" for label in passed) or "no row"
        line = f"- {text.format(limit=limit, batch=batch)}: met by {met}"
        if failed:
            low, high = min(failed.values()), max(failed.values())
            span = f"{low:.2f}" if np.isclose(low, high, atol=0.005) else f"{low:.2f} to {high:.2f}"
            line += f"; missed by {len(failed)} row{'s' if len(failed) > 1 else ''} ({span})"
        if skipped:
            line += f"; not applicable to {len(skipped)} row{'s' if len(skipped) > 1 else ''} (accuracy more than 1 point below `full`)"
        lines.append(line + ".")
    return "\n".join(lines)


def sweep_summary(sweeps: dict) -> str:
    """What ``batch_size_sweep`` results say, as Markdown, one line per label (e.g. precision).

    For each sweep: the batch sizes at which early exit was faster than the plain
    network and those at which it was not, the range of the measured speed-up, and the
    speed-up the MACs predict.

    Args:
        sweeps: label -> DataFrame from ``batch_size_sweep``.

    Raises:
        ValueError: ``sweeps`` is empty, or a sweep has no rows.
    """
    if not sweeps:
        raise ValueError("no batch-size sweeps to summarise")
    lines = []
    for label, sweep in sweeps.items():
        if len(sweep) == 0:
            raise ValueError(f"the sweep {label!r} has no batch sizes")
        speedup = sweep["measured_speedup"]
        faster = [int(b) for b in sweep.index[speedup > 1]]
        slower = [int(b) for b in sweep.index[speedup <= 1]]
        parts = []
        if faster:
            parts.append(f"faster than the plain network at batch size{'s' if len(faster) > 1 else ''} "
                         + ", ".join(map(str, faster)))
        if slower:
            parts.append(f"not faster at {', '.join(map(str, slower))}")
        best = int(speedup.idxmax())
        lines.append(
            f"- {label}: early exit was {'; '.join(parts)}; measured speed-up {speedup.min():.2f} to "
            f"{speedup.max():.2f} (highest at batch size {best}), against {sweep['predicted_speedup'].iloc[0]:.2f} "
            "predicted by the MACs."
        )
    return "\n".join(lines)
