"""The SavedModel export runs with TensorFlow alone and gives the in-memory model's outputs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from numpy.testing import assert_allclose, assert_array_equal

from helpers import models
from helpers.export import SIGNATURES, export_saved_model, main
from helpers.inference import EarlyExitEngine

CLASS_NAMES = ["daisy", "dandelion", "roses"]
THRESHOLDS = (0.0, 0.6, 0.9)
PER_EXIT = ((0.0, 0.0, 0.3, 0.6, 0.9), (0.0, 0.5, 0.35, 0.0, 0.0))  # several exits each, exits closed (0)

# Runs in a fresh interpreter: TensorFlow only, never this repository's code.
RELOAD_SCRIPT = textwrap.dedent(
    """
    import sys

    class BlockRepositoryCode:  # makes this repository's package unimportable
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "helpers":
                raise ImportError(f"{name} is blocked in this test")

    sys.meta_path.insert(0, BlockRepositoryCode())

    import numpy as np
    import tensorflow as tf

    def keras_modules():  # `import tensorflow` itself imports keras; loading must add nothing
        return {m for m in sys.modules if m.split(".")[0] == "keras"}

    before = keras_modules()
    export_dir, inputs, outputs = sys.argv[1:4]
    loaded = tf.saved_model.load(export_dir)
    images = tf.constant(np.load(inputs)["images"])
    out = {
        "full": loaded.signatures["full"](images=images)["logits"].numpy(),
        "all_exits": loaded.signatures["all_exits"](images=images)["logits"].numpy(),
        "attribute_full": loaded.full(images)["logits"].numpy(),
        "class_names": np.array([s.decode() for s in loaded.class_names.numpy()]),
        "exit_names": np.array([s.decode() for s in loaded.exit_names.numpy()]),
        "default_threshold": loaded.default_threshold.numpy(),
        "policy": np.array(loaded.policy.numpy().decode()),
        "signatures": np.array(sorted(loaded.signatures)),
    }
    for t in THRESHOLDS:
        ee = loaded.signatures["early_exit"](images=images, threshold=tf.constant(t, tf.float32))
        for key, value in ee.items():
            out[f"early_exit_{t}_{key}"] = value.numpy()
    for i, ts in enumerate(PER_EXIT):
        ee = loaded.signatures["early_exit_per_exit"](images=images, thresholds=tf.constant(ts, tf.float32))
        for key, value in ee.items():
            out[f"per_exit_{i}_{key}"] = value.numpy()
    out["foreign_modules"] = np.array(sorted(
        (keras_modules() - before) | {m for m in sys.modules if m.split(".")[0] == "helpers"}
    ), dtype=str)
    np.savez(outputs, **out)
    """
).replace("THRESHOLDS", repr(THRESHOLDS)).replace("PER_EXIT", repr(PER_EXIT))


@pytest.fixture(scope="module")
def model(spread_model) -> keras.Model:
    return spread_model(num_classes=3)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, size=(40, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def run_folder(model, tmp_path_factory) -> Path:
    """A training-run-like folder: model.keras and a config.json with class names and a threshold."""
    folder = tmp_path_factory.mktemp("run")
    model.save(folder / "model.keras")
    (folder / "config.json").write_text(json.dumps({"class_names": CLASS_NAMES, "threshold": 0.6}))
    return folder


@pytest.fixture(scope="module")
def exported(run_folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "saved_model"
    assert main([str(run_folder), str(out)]) == 0
    return out


def reload_in_fresh_process(export_dir: Path, images: np.ndarray, tmp_path: Path) -> dict:
    inputs, outputs = tmp_path / "inputs.npz", tmp_path / "outputs.npz"
    np.savez(inputs, images=images)
    proc = subprocess.run(
        [sys.executable, "-c", RELOAD_SCRIPT, str(export_dir), str(inputs), str(outputs)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(outputs) as npz:
        return {k: npz[k] for k in npz.files}


def test_reloaded_export_equals_the_in_memory_model(model, images, exported, tmp_path):
    out = reload_in_fresh_process(exported, images, tmp_path)
    assert out["foreign_modules"].size == 0, f"the export imported {out['foreign_modules']}"
    assert sorted(out["signatures"]) == sorted(SIGNATURES)
    assert out["class_names"].tolist() == CLASS_NAMES
    assert out["exit_names"].tolist() == models.output_names(model)
    assert out["default_threshold"] == pytest.approx(0.6)
    assert str(out["policy"]) == "entropy"  # the default rule, which the threshold is a threshold of

    reference = np.stack([np.asarray(o) for o in model(images, training=False)], axis=1)  # (N, E, K)
    assert out["all_exits"].shape == reference.shape
    assert_allclose(out["all_exits"], reference, rtol=1e-5, atol=1e-5)
    assert_allclose(out["full"], reference[:, -1], rtol=1e-5, atol=1e-5)
    assert_allclose(out["attribute_full"], out["full"])

    engine = EarlyExitEngine(model)
    exits_seen = set()
    for t in THRESHOLDS:
        expected = engine.predict(images, t)
        assert_array_equal(out[f"early_exit_{t}_exit"], expected["exit"])
        assert_array_equal(out[f"early_exit_{t}_label"], expected["label"])
        assert_allclose(out[f"early_exit_{t}_probabilities"], expected["probabilities"], rtol=1e-5, atol=1e-6)
        assert out[f"early_exit_{t}_label"].dtype == np.int32
        exits_seen |= set(expected["exit"].tolist())
    assert len(exits_seen) >= 3, "the thresholds should send samples to several exits"
    for i, ts in enumerate(PER_EXIT):
        expected = engine.predict(images, list(ts))
        for key in ("exit", "label"):
            assert_array_equal(out[f"per_exit_{i}_{key}"], expected[key])
        assert_allclose(out[f"per_exit_{i}_probabilities"], expected["probabilities"], rtol=1e-5, atol=1e-6)
        assert len(np.unique(expected["exit"])) >= 3, "the per-exit thresholds should send samples to several exits"
        for t in set(ts):  # and where no single threshold does
            assert not np.array_equal(expected["exit"], engine.predict(images, t)["exit"])


def test_wrong_image_size_gives_a_clear_error(exported):
    loaded = tf.saved_model.load(str(exported))
    wrong = tf.zeros([2, 64, 64, 3], tf.uint8)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"images must be uint8 \[N, 32, 32, 3\]"):
        loaded.signatures["full"](images=wrong)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"images must be uint8 \[N, 32, 32, 3\]"):
        loaded.early_exit(wrong, tf.constant(0.5))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"threshold must be a number in \[0, 1\]"):
        loaded.signatures["early_exit"](images=tf.zeros([2, 32, 32, 3], tf.uint8), threshold=tf.constant(2.0))
    per_exit = loaded.signatures["early_exit_per_exit"]
    for wrong_length in ([0.5] * 4, [0.5] * 6, []):  # the model has 5 early exits
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"one threshold per early exit \(5\)"):
            per_exit(images=tf.zeros([2, 32, 32, 3], tf.uint8), thresholds=tf.constant(wrong_length, tf.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"threshold must be a number in \[0, 1\]"):
        per_exit(images=tf.zeros([2, 32, 32, 3], tf.uint8), thresholds=tf.constant([0.5, 0.5, 0.5, 0.5, 1.5]))


def test_empty_batch(exported):
    loaded = tf.saved_model.load(str(exported))
    out = loaded.signatures["early_exit"](images=tf.zeros([0, 32, 32, 3], tf.uint8), threshold=tf.constant(0.5))
    assert out["exit"].shape == (0,) and out["probabilities"].shape == (0, 3)
    assert loaded.signatures["all_exits"](images=tf.zeros([0, 32, 32, 3], tf.uint8))["logits"].shape == (0, 6, 3)


def test_export_function_refuses_to_overwrite(model, tmp_path):
    out = export_saved_model(model, CLASS_NAMES, tmp_path / "sm")
    assert (out / "saved_model.pb").is_file()
    with pytest.raises(FileExistsError, match="overwrite"):
        export_saved_model(model, CLASS_NAMES, out)
    export_saved_model(model, CLASS_NAMES, out, overwrite=True)
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]
    with pytest.raises(ValueError, match="class names"):
        export_saved_model(model, ["a", "b"], tmp_path / "other")


@pytest.mark.parametrize(
    "argv_tail, message",
    [
        (["no-such-model"], "no model file, run folder or reference model"),
        (["EXISTING"], "already exists"),
    ],
)
def test_cli_errors_are_one_line(run_folder, exported, capsys, argv_tail, message):
    argv = [str(exported if a == "EXISTING" else a) for a in argv_tail]
    if argv_tail == ["EXISTING"]:
        argv = [str(run_folder), *argv]
    else:
        argv = [*argv, "unused_out_dir"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last
    assert "Traceback" not in err


def test_cli_precision_option(run_folder, tmp_path, capsys):
    out = tmp_path / "bf16"
    assert main([str(run_folder), str(out), "--precision", "mixed_bfloat16"]) == 0
    assert "signatures full, all_exits, early_exit, early_exit_per_exit" in capsys.readouterr().out
    loaded = tf.saved_model.load(str(out))
    logits = loaded.signatures["full"](images=tf.zeros([1, 32, 32, 3], tf.uint8))["logits"]
    assert logits.dtype == tf.float32


def test_cli_exits_option_leaves_the_other_heads_out(model, run_folder, exported, images, tmp_path, capsys):
    out = tmp_path / "exits_2_4"
    assert main([str(run_folder), str(out), "--exits", "2,exit_4"]) == 0
    assert "3 outputs" in capsys.readouterr().out
    loaded = tf.saved_model.load(str(out))
    assert [n.decode() for n in loaded.exit_names.numpy()] == ["exit_2", "exit_4", "final"]
    engine = EarlyExitEngine(models.select_exits(model, [2, 4]))
    x = tf.constant(images)
    assert_allclose(loaded.signatures["all_exits"](images=x)["logits"].numpy(), engine.all_exits_fn(x).numpy(),
                    rtol=1e-5, atol=1e-5)
    got = loaded.signatures["early_exit_per_exit"](images=x, thresholds=tf.constant([0.5, 0.7]))
    assert_array_equal(got["exit"].numpy(), engine.predict(images, [0.5, 0.7])["exit"])
    # the other heads are not in it: exactly the variables of the network with exits 2 and 4
    assert len(loaded.model_variables) == len(engine.model.weights)
    assert len(loaded.model_variables) < len(tf.saved_model.load(str(exported)).model_variables)
    assert main([str(run_folder), str(tmp_path / "bad"), "--exits", "final"]) == 2
    assert "is the final classifier" in capsys.readouterr().err


@pytest.mark.parametrize(("policy", "threshold", "per_exit"), [("max_prob", 0.75, True), ("patience", 2, False)])
def test_cli_policy_option(model, images, tmp_path, capsys, policy, threshold, per_exit):
    """--policy: early_exit leaves by that rule, at the model's recorded threshold for it by default."""
    run = tmp_path / "run"
    run.mkdir()
    model.save(run / "model.keras")
    (run / "config.json").write_text(json.dumps({"class_names": CLASS_NAMES, "threshold": 0.6,
                                                 "thresholds": {"max_prob": 0.75, "patience": 2}}))
    out = tmp_path / policy
    assert main([str(run), str(out), "--policy", policy]) == 0
    assert ("early_exit_per_exit" in capsys.readouterr().out) == per_exit
    loaded = tf.saved_model.load(str(out))
    assert loaded.policy.numpy().decode() == policy
    assert loaded.default_threshold.numpy() == pytest.approx(threshold)
    assert ("early_exit_per_exit" in loaded.signatures) == per_exit
    engine = EarlyExitEngine(model, policy)
    expected = engine.predict(images, threshold)
    assert len(np.unique(expected["exit"])) >= 2, "the threshold should send samples to several exits"
    got = loaded.signatures["early_exit"](images=tf.constant(images), threshold=tf.constant(threshold, tf.float32))
    assert_array_equal(got["exit"].numpy(), expected["exit"])
    assert_array_equal(got["label"].numpy(), expected["label"])
    assert not np.array_equal(expected["exit"], EarlyExitEngine(model).predict(images, 0.6)["exit"])  # not entropy's
    if per_exit:
        ts = [0.6, 0.0, 0.9, 0.75, 0.8]
        got = loaded.signatures["early_exit_per_exit"](images=tf.constant(images), thresholds=tf.constant(ts))
        assert_array_equal(got["exit"].numpy(), engine.predict(images, ts)["exit"])


def test_overwrite_replaces_only_an_earlier_export(model, tmp_path, monkeypatch):
    """--overwrite deletes OUT_DIR: never a folder that is not an export, never the working directory."""
    notes = tmp_path / "thesis"
    notes.mkdir()
    (notes / "chapter1.txt").write_text("months of work")
    with pytest.raises(FileExistsError, match="holds no SavedModel"):
        export_saved_model(model, CLASS_NAMES, notes, overwrite=True)
    assert (notes / "chapter1.txt").read_text() == "months of work"
    # an earlier export, entered: "." is the working directory, and so is its parent's child
    out = export_saved_model(model, CLASS_NAMES, tmp_path / "sm")
    (out / "mine.txt").write_text("kept")
    monkeypatch.chdir(out)
    for name in (".", str(out), "../sm"):
        with pytest.raises(FileExistsError, match="working directory"):
            export_saved_model(model, CLASS_NAMES, name, overwrite=True)
    monkeypatch.chdir(out / "variables")  # a folder inside it: its parent holds the working directory
    with pytest.raises(FileExistsError, match="working directory"):
        export_saved_model(model, CLASS_NAMES, "..", overwrite=True)
    assert (out / "mine.txt").is_file() and (out / "saved_model.pb").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sm", "thesis"]  # no partial export left behind
    # from elsewhere, the earlier export is replaced
    monkeypatch.chdir(tmp_path)
    export_saved_model(model, CLASS_NAMES, "sm", overwrite=True)
    assert not (out / "mine.txt").exists() and (out / "saved_model.pb").is_file()


def test_out_dir_under_a_file_or_in_an_unwritable_folder(model, tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("")
    with pytest.raises(FileExistsError, match="part of its path is a file"):
        export_saved_model(model, CLASS_NAMES, tmp_path / "a_file" / "sm")
    # a read-only parent (faked: the tests may run as root, who writes anywhere)
    monkeypatch.setattr("helpers.export.os.access", lambda path, mode: Path(path) != tmp_path / "locked")
    (tmp_path / "locked").mkdir()
    with pytest.raises(PermissionError, match=f"cannot write in {tmp_path / 'locked'}"):
        export_saved_model(model, CLASS_NAMES, tmp_path / "locked" / "sm")
