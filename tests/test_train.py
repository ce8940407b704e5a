"""Tests of helpers.train and helpers.experiments: run folders, resuming, determinism, the command.

The training runs use a 32 px, width-1/8 VGG11 on 66 synthetic images (48 train in
three batches of 16, 9 validation, 9 test) for two epochs.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from helpers import data, registry, train
from helpers.experiments import EXPERIMENTS, Experiment, get_experiment

TINY = Experiment(
    "tiny-conv", "tiny multi-exit test model", head="conv", loss_weights=0.5,
    image_size=32, width=0.125, epochs=2, batch_size=16, learning_rate=1e-2,
)
TINY_PLAIN = dataclasses.replace(TINY, name="tiny-plain", head=None, loss_weights=())


class Interrupted(Exception):
    """Stands in for a crash or a kill in the middle of training."""


class CrashAfterFirstEpoch(keras.callbacks.Callback):
    """Raise at the end of epoch 0, after the earlier callbacks (backup, CSV log) have run."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise Interrupted("simulated crash after epoch 0")


def _without_timing(history: pd.DataFrame) -> pd.DataFrame:
    return history.drop(columns="seconds")


@pytest.fixture(scope="module")
def splits() -> data.Splits:
    # 22 per class: val = test = round(0.15 * 22) = 3, train 16; x 3 classes = 48 / 9 / 9.
    return data.split_dataset(data.synthetic_images(n_per_class=22, num_classes=3, image_size=32, seed=0), seed=0)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, splits) -> train.TrainedRun:
    out = tmp_path_factory.mktemp("runs") / "tiny-conv"
    return train.train(TINY, out, splits=splits, verbose=0)


# --------------------------------------------------------------------------- a finished run


def test_train_writes_the_run_folder(finished, splits):
    out = finished.out_dir
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "history.csv", "model.keras", "split.json"]

    config = json.loads((out / "config.json").read_text())
    assert config == finished.config  # what train returned is what it wrote
    assert config["finished"] is True
    assert config["experiment"] == json.loads(json.dumps(TINY.to_dict()))
    assert (config["seed"], config["precision"], config["quick"]) == (0, "float32", False)
    assert config["class_names"] == ["class_0", "class_1", "class_2"]
    assert config["split_fingerprint"] == splits.fingerprint()
    assert config["split_sizes"] == [48, 9, 9]
    assert config["global_batch_size"] == 16 and config["replicas"] == 1

    split = json.loads((out / "split.json").read_text())
    assert split == {"train": splits.train.ids, "val": splits.val.ids, "test": splits.test.ids}

    history = train.read_history(out)
    assert history["epoch"].tolist() == [0, 1]
    for column in ("loss", "val_loss", "exit_1_accuracy", "final_accuracy", "val_final_accuracy", "seconds"):
        assert column in history.columns
    assert np.all(history["seconds"] > 0)
    pd.testing.assert_frame_equal(history, finished.history)


def test_the_saved_model_is_the_trained_model(finished, splits):
    loaded = keras.models.load_model(finished.out_dir / train.MODEL_FILE, compile=False)
    assert list(loaded.output_names) == ["exit_1", "exit_2", "exit_3", "exit_4", "exit_5", "final"]
    images = splits.test.images
    for a, b in zip(finished.model.predict(images, verbose=0), loaded.predict(images, verbose=0), strict=True):
        np.testing.assert_array_equal(a, b)


def test_train_again_loads_the_finished_run(finished, splits, capsys):
    model_file = finished.out_dir / train.MODEL_FILE
    stamp = model_file.stat().st_mtime_ns
    again = train.train(TINY, finished.out_dir, splits=splits, verbose=0)

    assert "holds a finished run of tiny-conv; loading it" in capsys.readouterr().out
    assert model_file.stat().st_mtime_ns == stamp  # not written again
    pd.testing.assert_frame_equal(again.history, finished.history)  # same seconds: not trained again
    assert again.config == finished.config
    images = splits.test.images[:4]
    np.testing.assert_array_equal(again.model.predict(images, verbose=0)[-1], finished.model.predict(images, verbose=0)[-1])


def test_load_run(finished):
    run = train.load_run(finished.out_dir)
    assert run.config["name"] == "tiny-conv"
    assert len(run.history) == 2


def test_load_run_without_a_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="no trained model in .*train it first"):
        train.load_run(tmp_path)


def test_same_seed_same_history(finished, splits, tmp_path):
    """Two fresh runs with one seed give the same numbers (CPU; augmentation included)."""
    second = train.train(TINY, tmp_path / "again", splits=splits, verbose=0)
    pd.testing.assert_frame_equal(_without_timing(second.history), _without_timing(finished.history), check_exact=True)
    images = splits.test.images
    for a, b in zip(second.model.predict(images, verbose=0), finished.model.predict(images, verbose=0), strict=True):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- interrupted runs


def test_interrupted_run_resumes(tmp_path, splits):
    out = tmp_path / "run"
    with pytest.raises(Interrupted):
        train.train(TINY_PLAIN, out, splits=splits, verbose=0, callbacks=[CrashAfterFirstEpoch()])

    work = out / train.WORK_DIR
    assert not (out / train.MODEL_FILE).exists()
    assert (work / "backup").is_dir()
    assert json.loads((work / "config.json").read_text())["finished"] is False
    first = train.read_history(work)
    assert first["epoch"].tolist() == [0]

    # Another configuration must not pick up this backup.
    with pytest.raises(ValueError, match="unfinished run of another configuration"):
        train.train(TINY_PLAIN, out, splits=splits, verbose=0, seed=1)

    run = train.train(TINY_PLAIN, out, splits=splits, verbose=0)
    assert run.history["epoch"].tolist() == [0, 1]
    pd.testing.assert_frame_equal(run.history.iloc[:1], first)  # epoch 0 kept as it was
    assert (out / train.MODEL_FILE).exists()
    assert not work.exists()
    assert json.loads((out / "config.json").read_text())["finished"] is True
    assert list(run.model.output_names) == ["final"]


def test_overwrite_starts_from_scratch_even_with_a_backup(tmp_path, splits):
    out = tmp_path / "run"
    with pytest.raises(Interrupted):
        train.train(TINY_PLAIN, out, splits=splits, verbose=0, callbacks=[CrashAfterFirstEpoch()])
    interrupted = train.read_history(out / train.WORK_DIR)

    run = train.train(TINY_PLAIN, out, splits=splits, verbose=0, overwrite=True)
    # Trained again from epoch 0 (not resumed from the backup with the history deleted) ...
    assert run.history["epoch"].tolist() == [0, 1]
    # ... and, being deterministic, epoch 0 is the same as the interrupted run's.
    pd.testing.assert_frame_equal(_without_timing(run.history.iloc[:1]), _without_timing(interrupted))


def test_interrupted_retraining_is_resumed_not_replaced_by_the_old_model(tmp_path, splits, capsys):
    out = tmp_path / "run"
    train.train(TINY_PLAIN, out, splits=splits, verbose=0, epochs=1)  # an older, finished run
    old_model = (out / train.MODEL_FILE).read_bytes()
    old_history = train.read_history(out)
    # Another configuration (2 epochs) does not replace it unasked ...
    with pytest.raises(ValueError, match="holds a finished run of another configuration"):
        train.train(TINY_PLAIN, out, splits=splits, verbose=0)
    assert (out / train.MODEL_FILE).read_bytes() == old_model
    # ... and when asked, trains into the same folder; it crashes after epoch 0.
    with pytest.raises(Interrupted):
        train.train(TINY_PLAIN, out, splits=splits, verbose=0, callbacks=[CrashAfterFirstEpoch()], overwrite=True)
    capsys.readouterr()
    # The failed run replaced nothing of the finished one.
    assert (out / train.MODEL_FILE).read_bytes() == old_model
    pd.testing.assert_frame_equal(train.read_history(out), old_history)
    assert json.loads((out / "config.json").read_text())["experiment"]["epochs"] == 1

    run = train.train(TINY_PLAIN, out, splits=splits, verbose=0)  # resumed, without overwrite
    assert "resuming the unfinished run" in capsys.readouterr().out
    assert run.config["experiment"]["epochs"] == 2
    assert run.history["epoch"].tolist() == [0, 1]
    assert json.loads((out / "config.json").read_text())["finished"] is True


# --------------------------------------------------------------------------- arguments and helpers


def test_self_distillation_trains_the_twin_and_saves_the_plain_model(tmp_path, splits, finished):
    exp = dataclasses.replace(TINY, name="tiny-distill", distill_weight=1.0, distill_temperature=2.0)
    run = train.train(exp, tmp_path / "distill", splits=splits, verbose=0)
    history = train.read_history(run.out_dir)
    for e in range(1, 6):
        assert np.all(history[f"exit_{e}_distill_loss"] > 0)
        assert f"val_exit_{e}_distill_loss" in history.columns
    assert "final_distill_loss" not in history.columns
    loaded = keras.models.load_model(run.out_dir / train.MODEL_FILE, compile=False)
    assert list(loaded.output_names) == ["exit_1", "exit_2", "exit_3", "exit_4", "exit_5", "final"]
    images = splits.test.images
    for a, b in zip(run.model.predict(images, verbose=0), loaded.predict(images, verbose=0), strict=True):
        np.testing.assert_array_equal(a, b)
    # The distillation changes what is learned: same seed and data without it give other weights.
    assert not np.allclose(finished.model.predict(images, verbose=0)[0], run.model.predict(images, verbose=0)[0])


@pytest.mark.parametrize("soft", [{"mixing": "cutmix"}, {"label_smoothing": 0.1}], ids=["cutmix", "smoothing"])
def test_soft_labels_train(tmp_path, splits, finished, soft):
    exp = dataclasses.replace(TINY, name="tiny-soft", **soft)
    assert exp.soft_labels and not TINY.soft_labels
    run = train.train(exp, tmp_path / "soft", splits=splits, verbose=0)
    history = train.read_history(run.out_dir)
    assert len(history) == 2 and np.all(np.isfinite(history["loss"]))
    assert {"final_accuracy", "val_final_accuracy"} <= set(history.columns)
    assert {k: run.config["experiment"][k] for k in soft} == soft
    # Mixed or smoothed labels change what is learned: same seed and data without them give
    # other weights.
    images = splits.test.images
    assert not np.allclose(finished.model.predict(images, verbose=0)[0], run.model.predict(images, verbose=0)[0])


def test_frozen_backbone_trains_only_the_heads(finished, splits):
    # tiny-conv (the finished run) is the donor, found as the run beside the new one.
    exp = dataclasses.replace(TINY, name="tiny-heads", head="strided", head_filters=32, backbone_from="tiny-conv")
    run = train.train(exp, finished.out_dir.parent / "tiny-heads", splits=splits, verbose=0)
    assert run.config["backbone"] == "../tiny-conv/model.keras"
    images = splits.test.images
    donor_out = finished.model.predict(images, verbose=0)
    new_out = run.model.predict(images, verbose=0)
    np.testing.assert_allclose(new_out[-1], donor_out[-1], rtol=1e-5, atol=1e-5)  # the final classifier is the donor's
    assert not np.allclose(new_out[0], donor_out[0])  # exit_1 is a new head
    for name in ("block_1", "block_5", "final"):
        for mine, theirs in zip(run.model.get_layer(name).weights, finished.model.get_layer(name).weights, strict=True):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    history = train.read_history(run.out_dir)
    assert len(history) == 2
    assert np.ptp(history["val_final_loss"]) < 1e-6  # frozen: the final classifier's validation loss stays put
    assert np.ptp(history["val_exit_1_loss"]) > 1e-6  # while the heads learn


def test_a_finished_heads_run_trains_again_when_its_backbone_changed(finished, splits, tmp_path, capsys, monkeypatch):
    shutil.copytree(finished.out_dir, tmp_path / "tiny-conv")
    exp = dataclasses.replace(TINY, name="tiny-heads", head="strided", head_filters=32, backbone_from="tiny-conv")
    first = train.train(exp, tmp_path / "tiny-heads", splits=splits, verbose=0)
    train.train(exp, tmp_path / "tiny-heads", splits=splits, verbose=0)
    assert "holds a finished run of tiny-heads; loading it" in capsys.readouterr().out
    # The donor is trained again (here: its final classifier moves).
    donor = keras.models.load_model(tmp_path / "tiny-conv" / "model.keras", compile=False)
    kernel, bias = donor.get_layer("final").get_weights()
    donor.get_layer("final").set_weights([kernel, bias + 1.0])
    donor.save(tmp_path / "tiny-conv" / "model.keras")
    loads = []
    load = registry.load
    monkeypatch.setattr(registry, "load", lambda spec: loads.append(spec) or load(spec))
    again = train.train(exp, tmp_path / "tiny-heads", splits=splits, verbose=0)
    assert len(loads) == 1  # the donor compared with the run's backbone is the one the heads train on
    monkeypatch.undo()
    out = capsys.readouterr().out
    assert f"the backbone {tmp_path / 'tiny-conv' / 'model.keras'} has changed since {tmp_path / 'tiny-heads'}" in out
    np.testing.assert_array_equal(again.model.get_layer("final").get_weights()[1], bias + 1.0)
    np.testing.assert_array_equal(first.model.get_layer("final").get_weights()[1], bias)
    reloaded = train.train(exp, tmp_path / "tiny-heads", splits=splits, verbose=0)  # up to date again: loaded
    assert "loading it" in capsys.readouterr().out
    np.testing.assert_array_equal(reloaded.model.get_layer("final").get_weights()[1], bias + 1.0)
    with pytest.raises(FileNotFoundError, match="no model file, run folder or reference model called"):
        train.train(exp, tmp_path / "tiny-heads", splits=splits, backbone=tmp_path / "gone", verbose=0)


def test_frozen_backbone_from_another_split_is_refused(finished, splits, tmp_path):
    other = data.split_dataset(data.synthetic_images(n_per_class=22, num_classes=3, image_size=32, seed=0), seed=1)
    exp = dataclasses.replace(TINY, name="tiny-heads", head="strided", backbone_from="tiny-conv")
    with pytest.raises(ValueError, match=r"was trained on split [0-9a-f]+, this run's split is [0-9a-f]+: its validation"):
        train.train(exp, tmp_path / "heads", splits=other, backbone=finished.out_dir, verbose=0)
    with pytest.raises(FileNotFoundError, match="no trained model 'tiny-conv'"):  # no run beside, no reference
        train.train(exp, tmp_path / "heads", splits=splits, verbose=0)
    with pytest.raises(ValueError, match="experiment tiny-conv trains its whole network: it takes no backbone"):
        train.train(TINY, tmp_path / "whole", splits=splits, backbone=finished.out_dir, verbose=0)
    assert not (tmp_path / "whole").exists()


def test_a_run_recorded_before_an_experiment_field_existed_is_still_the_same_run(finished, splits, capsys):
    config_file = finished.out_dir / "config.json"
    config = json.loads(config_file.read_text())
    old = config | {"experiment": {k: v for k, v in config["experiment"].items() if not k.startswith("distill_")}}
    config_file.write_text(json.dumps(old))
    try:
        train.train(TINY, finished.out_dir, splits=splits, verbose=0)
        assert "holds a finished run of tiny-conv; loading it" in capsys.readouterr().out
        assert Experiment.from_dict(old["experiment"]) == TINY
    finally:
        config_file.write_text(json.dumps(config))


def test_a_reworded_description_keeps_the_run_but_another_setting_does_not(finished, splits, capsys):
    model_file = finished.out_dir / train.MODEL_FILE
    stamp = model_file.stat().st_mtime_ns
    reworded = dataclasses.replace(TINY, description="the same run, described in other words")
    train.train(reworded, finished.out_dir, splits=splits, verbose=0)
    assert "holds a finished run of tiny-conv; loading it" in capsys.readouterr().out
    assert model_file.stat().st_mtime_ns == stamp

    def wanted(exp):
        return train._run_settings(exp, seed=0, precision="float32", quick=False)

    config_file = finished.out_dir / "config.json"
    assert train._same_config(config_file, wanted(reworded), finished=True)
    assert not train._same_config(config_file, wanted(dataclasses.replace(reworded, epochs=3)), finished=True)
    assert not train._same_config(config_file, wanted(dataclasses.replace(TINY, head_filters=64)), finished=True)


def test_a_finished_run_is_not_loaded_for_other_data_nor_replaced_by_another_run(finished, splits, tmp_path):
    model_file = finished.out_dir / train.MODEL_FILE
    stamp = model_file.stat().st_mtime_ns
    other = data.split_dataset(data.synthetic_images(12, 3, 32, seed=5), seed=0)
    assert other.fingerprint() != splits.fingerprint()
    with pytest.raises(ValueError, match="trained on another split of other data"):
        train.train(TINY, finished.out_dir, splits=other, verbose=0)
    with pytest.raises(ValueError, match=r"another configuration \(tiny-conv, seed 0, 2 epochs\)"):
        train.train(TINY, finished.out_dir, splits=splits, verbose=0, seed=3)
    assert model_file.stat().st_mtime_ns == stamp  # untouched
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(ValueError, match="notes.txt is a file"):
        train.train(TINY, tmp_path / "notes.txt", splits=splits, verbose=0)


def test_experiment_from_dict_refuses_unknown_settings():
    record = json.loads(json.dumps(TINY.to_dict()))
    assert Experiment.from_dict(record) == TINY
    with pytest.raises(ValueError, match=r"unknown experiment settings \['dropout'\]"):
        Experiment.from_dict(record | {"dropout": 0.5})


def test_bad_arguments(tmp_path, splits):
    with pytest.raises(ValueError, match=r"unknown precision 'float64'; choose one of \('float32'"):
        train.train(TINY, tmp_path / "a", splits=splits, precision="float64")
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        train.train(TINY, tmp_path / "b", splits=splits, epochs=0)
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        train.train("nope", tmp_path / "c", splits=splits)
    assert not any(tmp_path.iterdir())  # nothing written


def test_default_precision_is_one_of_the_precisions():
    assert train.default_precision() in train.PRECISIONS


def test_default_precision_by_hardware(monkeypatch):
    import tensorflow as tf

    real_read_text = Path.read_text
    cpuinfo = {"flags": "fpu sse avx2"}

    def fake_read_text(self, *args, **kwargs):
        if str(self) == "/proc/cpuinfo":
            return cpuinfo["flags"]
        return real_read_text(self, *args, **kwargs)

    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: [])
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    monkeypatch.setattr(Path, "read_text", fake_read_text)
    assert train.default_precision() == "float32"  # bfloat16 would be emulated
    cpuinfo["flags"] = "fpu avx512f avx512_bf16 amx_tile"
    assert train.default_precision() == "mixed_bfloat16"
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
    assert train.default_precision() == "mixed_float16"


def test_get_strategy():
    assert train.get_strategy("default").num_replicas_in_sync == 1
    with pytest.raises(ValueError, match="unknown strategy 'gpu'"):
        train.get_strategy("gpu")


def test_read_history_keeps_the_last_row_of_an_epoch(tmp_path):
    # An epoch logged twice (the run was killed after the CSV row but before the backup).
    (tmp_path / "history.csv").write_text("epoch,loss\n0,2.0\n1,1.5\n1,1.4\n2,1.0\n")
    history = train.read_history(tmp_path)
    assert history["epoch"].tolist() == [0, 1, 2]
    assert history["loss"].tolist() == [2.0, 1.4, 1.0]
    assert list(history.index) == [0, 1, 2]
    assert train.read_history(tmp_path / "missing").empty


# --------------------------------------------------------------------------- the command line


def test_main_lists_the_experiments(capsys):
    assert train.main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in EXPERIMENTS:
        assert name in out
    assert len(out.strip().splitlines()) == len(EXPERIMENTS)


def test_main_unknown_experiment(tmp_path, capsys):
    assert train.main(["--experiment", "no-such-experiment", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: unknown experiment 'no-such-experiment'")
    assert "flowers-vgg11-96px-lambda1" in err[0]  # says which names exist


def test_main_refuses_a_backbone_for_an_experiment_that_trains_everything(tmp_path, capsys):
    args = ["--experiment", "flowers-vgg11-96px", "--out", str(tmp_path / "x"), "--backbone", "flowers-vgg11-plain-96px"]
    assert train.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: experiment flowers-vgg11-96px trains its whole network: it takes no backbone"]
    assert not (tmp_path / "x").exists()


def test_main_requires_experiment_and_out(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--experiment", "flowers-vgg11-plain-96px"])
    assert exit_info.value.code == 2
    assert "--experiment and --out are required" in capsys.readouterr().err


# --------------------------------------------------------------------------- experiments


def test_get_experiment():
    assert get_experiment("flowers-vgg11-plain-96px").head is None
    with pytest.raises(ValueError, match="known experiments: flowers-vgg11-96px-lambda1"):
        get_experiment("flowers-resnet")


def test_quick_keeps_the_architecture():
    exp = get_experiment("flowers-vgg11-96px-lambda0.3")
    quick = exp.quick()
    assert (quick.epochs, quick.batch_size) == (2, 32)
    assert (quick.image_size, quick.width, quick.head, quick.loss_weights) == (
        exp.image_size, exp.width, exp.head, exp.loss_weights,
    )


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_experiment_builds_and_compiles(name):
    from helpers.losses import compile_multi_exit, self_distilling

    exp = dataclasses.replace(EXPERIMENTS[name], image_size=32, width=0.125)
    model = exp.build_model(5)
    assert model.name == name.replace("-", "_").replace(".", "_")
    assert model.output_names[-1] == "final"
    exits = 6 if exp.arch == "vgg11" else len(exp.exits_after) + 1  # VGG11: one per block, + final
    assert len(model.output_names) == (1 if exp.head is None else exits)
    fit_model = self_distilling(model) if exp.distill_weight else model
    weights = compile_multi_exit(fit_model, exp.loss_weights, distill_weight=exp.distill_weight)
    per_output = isinstance(exp.loss_weights, tuple) and len(exp.loss_weights) == len(model.output_names)
    assert weights["final"] == (exp.loss_weights[-1] if per_output else 1.0)  # CIFAR: [.., 0.7] / [.., 0.5]


def test_every_frozen_heads_experiment_fits_its_donor():
    """The network an experiment freezes (``backbone_from``, an experiment or a run of one
    with another seed) must take the same images and have the same blocks and split."""
    frozen = {name: exp for name, exp in EXPERIMENTS.items() if exp.backbone_from}
    assert "flowers-vgg11-128px-wd-seed2-heads" in frozen
    for name, exp in frozen.items():
        donor = get_experiment(re.sub(r"-seed\d+$", "", exp.backbone_from))
        assert donor.backbone_from is None, name  # a donor trains its whole network
        for field in ("dataset", "arch", "image_size", "width", "val_fraction", "split_seed"):
            assert getattr(exp, field) == getattr(donor, field), (name, field)


def test_analyse_refuses_images_of_another_size(tmp_path, make_image_folder):
    from helpers import evaluation

    folder = make_image_folder(tmp_path / "flower_photos", per_class=8)
    splits = train.prepare_splits(dataclasses.replace(TINY, image_size=16), source=folder, progress=False)
    model = dataclasses.replace(TINY, image_size=32).build_model(5)
    with pytest.raises(ValueError, match=r"takes 32x32 images, the splits hold 16x16"):
        evaluation.analyse(model, splits, "tiny")


def test_prepare_splits_from_a_folder(tmp_path, make_image_folder):
    folder = make_image_folder(tmp_path / "flower_photos", per_class=8)
    exp = dataclasses.replace(TINY, image_size=16, quick_per_class=7, split_seed=3)
    full = train.prepare_splits(exp, source=folder, progress=False)
    # 8 per class: val = test = round(1.2) = 1, train 6; quick keeps 7: round(1.05) = 1, train 5.
    assert [len(full.train), len(full.val), len(full.test)] == [30, 5, 5]
    assert full.class_names == ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
    assert full.train.images.shape[1:] == (16, 16, 3)
    assert full.seed == 3
    quick = train.prepare_splits(exp, source=folder, quick=True, progress=False)
    assert [len(quick.train), len(quick.val), len(quick.test)] == [25, 5, 5]
    # the same split at another model's input size: same images, same fingerprint
    larger = train.prepare_splits(exp, source=folder, progress=False, image_size=24)
    assert larger.train.images.shape[1:] == (24, 24, 3)
    assert larger.fingerprint() == full.fingerprint() and larger.test.ids == full.test.ids
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        train.prepare_splits(dataclasses.replace(exp, dataset="cifar"), source=folder)


def test_cli_trains_from_an_npz(tmp_path, capsys, monkeypatch):
    # without --precision the command line takes what the machine supports, as the notebooks do
    monkeypatch.setattr(train, "default_precision", lambda: "mixed_bfloat16")
    images = data.synthetic_images(n_per_class=12, num_classes=3, image_size=32, seed=2)
    test_idx = np.concatenate([np.arange(c * 12, c * 12 + 3) for c in range(3)])
    train_idx = np.setdiff1d(np.arange(36), test_idx)
    npz = tmp_path / "tiny.npz"
    np.savez(npz, x_train=images.images[train_idx], y_train=images.labels[train_idx][:, None],
             x_test=images.images[test_idx], y_test=images.labels[test_idx])
    out = tmp_path / "run"
    code = train.main(["--experiment", "flowers-vgg11-plain-96px", "--out", str(out), "--data-npz", str(npz),
                       "--quick", "--epochs", "1"])
    assert code == 0, capsys.readouterr().err
    config = json.loads((out / "config.json").read_text())
    # 27 training images: 15 % of each class (round(1.35) = 1) to validation; the 9 test images as given
    assert config["split_sizes"] == [24, 3, 9]
    assert config["class_names"] == ["class_0", "class_1", "class_2"]
    assert config["precision"] == "mixed_bfloat16"
    split = json.loads((out / "split.json").read_text())
    assert all(i.startswith("test/") for i in split["test"]) and len(set(split["train"]) & set(split["val"])) == 0


def test_cli_data_dir_and_npz_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train.main(["--experiment", "flowers-vgg11-plain-96px", "--out", str(tmp_path), "--data-dir", "a", "--data-npz", "b"])
    assert "not allowed with argument" in capsys.readouterr().err
