"""Tests of helpers.registry (finding and loading trained models) and helpers.paths."""

from __future__ import annotations

import json
import re
import shutil

import keras
import numpy as np
import pytest

from helpers import data, experiments, models, paths, registry

CLASSES = ["cats", "dogs", "owls"]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A tiny plain VGG11 (3 classes) saved as ``model.keras``, alone in a folder."""
    keras.utils.set_random_seed(0)
    model = models.build_vgg11(num_classes=3, input_size=32, width=0.125, head=None)
    path = tmp_path_factory.mktemp("saved") / "model.keras"
    model.save(path)
    return path


@pytest.fixture
def run_dir(tmp_path, saved_model):
    """A run folder as ``helpers.train`` writes it: model.keras, config.json, history.csv."""
    run = tmp_path / "runs" / "tiny"
    run.mkdir(parents=True)
    shutil.copyfile(saved_model, run / "model.keras")
    (run / "config.json").write_text(json.dumps({"name": "tiny", "class_names": CLASSES}))
    (run / "history.csv").write_text("epoch,loss\n0,1.0\n")
    return run


@pytest.fixture
def models_dir(tmp_path, monkeypatch, saved_model):
    """An empty stand-in for ``models/`` with one reference model, ``ref-a``."""
    folder = tmp_path / "models"
    (folder / "ref-a").mkdir(parents=True)
    shutil.copyfile(saved_model, folder / "ref-a" / "model.keras")
    (folder / "ref-a" / "meta.json").write_text(json.dumps({"class_names": ["x", "y", "z"]}))
    (folder / "not-a-model").mkdir()  # no model.keras: not listed
    monkeypatch.setattr(registry, "MODELS_DIR", folder)
    return folder


# --------------------------------------------------------------------------- resolve


def test_resolve_a_file(saved_model):
    assert registry.resolve(saved_model) == saved_model
    assert registry.resolve(str(saved_model)) == saved_model


def test_resolve_a_run_folder(run_dir):
    assert registry.resolve(run_dir) == run_dir / "model.keras"


def test_resolve_a_reference_name(models_dir):
    assert registry.reference_names() == ["ref-a"]
    assert registry.resolve("ref-a") == models_dir / "ref-a" / "model.keras"


def test_resolve_unknown_lists_the_reference_models(models_dir):
    with pytest.raises(FileNotFoundError, match=r"called 'nope' \(reference models: ref-a\)"):
        registry.resolve("nope")


def test_resolve_unknown_without_reference_models(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "MODELS_DIR", tmp_path / "no-models-here")
    assert registry.reference_names() == []
    with pytest.raises(FileNotFoundError, match="none shipped yet"):
        registry.resolve(tmp_path)  # an existing folder without model.keras is no run either


def _write_aliases(models_dir, **targets):
    (models_dir / "aliases.json").write_text(
        json.dumps({alias: {"model": target, "role": "a test"} for alias, target in targets.items()}))


def test_an_alias_resolves_to_the_model_it_stands_for(models_dir, tmp_path):
    _write_aliases(models_dir, main="ref-a")
    assert registry.aliases() == {"main": "ref-a"}
    assert registry.reference_names() == ["ref-a"]  # folders only: an alias is no second model
    assert registry.resolve("main") == models_dir / "ref-a" / "model.keras"
    assert registry.load("main").class_names == ["x", "y", "z"]
    runs = tmp_path / "runs"
    assert registry.trained_dir("main", runs) == models_dir / "ref-a"
    (runs / "ref-a").mkdir(parents=True)
    (runs / "ref-a" / "model.keras").write_bytes(b"")
    (runs / "main").mkdir()
    (runs / "main" / "model.keras").write_bytes(b"")  # a stale run under the alias's name is not the model
    assert registry.trained_dir("main", runs) == runs / "ref-a"  # the model's fresh run, as for its own name
    with pytest.raises(FileNotFoundError, match=r"\(reference models: main, ref-a\)"):
        registry.resolve("nope")


def test_no_alias_file_means_no_aliases(models_dir):
    assert registry.aliases() == {}


@pytest.mark.parametrize(("content", "message"), [
    ({"main": {"model": "gone"}}, "stands for 'gone', which is not a reference model"),
    ({"ref-a": {"model": "ref-a"}}, "is also a folder"),
    ({"not-a-model": {"model": "ref-a"}}, "is also a folder"),  # even a folder without a model
    ({"main": "ref-a"}, "is not a JSON object of"),
    (["ref-a"], "is not a JSON object of"),
])
def test_a_broken_alias_file_is_refused(models_dir, content, message):
    (models_dir / "aliases.json").write_text(json.dumps(content))
    with pytest.raises(ValueError, match=re.escape(message)):
        registry.aliases()
    with pytest.raises(ValueError, match=re.escape(message)):
        registry.resolve("ref-b")


def test_publish_refuses_an_alias_name(run_dir, models_dir):
    _write_aliases(models_dir, main="ref-a")
    with pytest.raises(ValueError, match="'main' is an alias of 'ref-a'"):
        registry.publish(run_dir, "main", threshold=0.5)
    assert not (models_dir / "main").exists()


def test_the_shipped_aliases_keep_the_names_the_project_promises():
    """``flowers-vgg11`` is a multi-exit model and ``flowers-vgg11-plain`` a plain one of the same input
    size, split and training budget of its network (the baseline the targets compare it with)."""
    targets = registry.aliases()
    if not targets:
        pytest.skip("this checkout ships no aliases")
    assert set(targets) >= {"flowers-vgg11", "flowers-vgg11-plain"}
    configs = _shipped_configs()
    main, plain = configs[targets["flowers-vgg11"]], configs[targets["flowers-vgg11-plain"]]
    assert main["kind"].startswith("multi-exit") and plain["kind"] == "plain"
    assert main["threshold"] > 0 and main["threshold_rule"]
    network = main
    while network["experiment"].get("backbone_from"):  # heads trained on a frozen network: that network's budget
        network = configs[network["experiment"]["backbone_from"]]
    for key in ("image_size", "epochs", "augmentation", "weight_decay", "optimizer", "width"):
        assert network["experiment"][key] == plain["experiment"][key], key
    assert main["split_fingerprint"] == plain["split_fingerprint"]
    assert main["dataset"] == plain["dataset"] == "tf_flowers"


def _shipped_configs() -> dict[str, dict]:
    """Every shipped reference model's ``config.json`` by name (skips when the checkout ships none)."""
    shipped = registry.reference_names()
    if not shipped:
        pytest.skip("this checkout ships no reference models")
    return {name: json.loads((registry.MODELS_DIR / name / "config.json").read_text()) for name in shipped}


def test_every_shipped_reference_model_is_named_after_its_run():
    """A reference name says what trained it: its experiment at the experiment's own epochs
    and seed 0, or the experiment's name with an ``-<N>ep`` or ``-seed<S>`` suffix for what differs."""
    for name, config in _shipped_configs().items():
        trained = config["experiment"]
        assert config["reference_name"] == name
        assert name.startswith(trained["name"]), name
        suffix = name.removeprefix(trained["name"])
        default_epochs = experiments.get_experiment(trained["name"]).epochs
        if not suffix:
            assert (trained["epochs"], config["seed"]) == (default_epochs, 0), name
        elif re.fullmatch(r"-\d+ep", suffix):
            assert trained["epochs"] == int(suffix[1:-2]) != default_epochs, name
        else:
            assert suffix == f"-seed{config['seed']}", name


def test_every_shipped_reference_model_ships_the_split_it_was_trained_on():
    """``split.json`` beside every reference model (``benchmark --split test`` reads it) holds
    the ids whose fingerprint the run recorded, so its test images are the run's own."""
    for name, config in _shipped_configs().items():
        ids = json.loads((registry.MODELS_DIR / name / "split.json").read_text())
        assert data.split_fingerprint(ids) == config["split_fingerprint"], name
        assert [len(ids[k]) for k in ("train", "val", "test")] == config["split_sizes"], name


def test_every_shipped_reference_model_fits_the_size_limit():
    """Every ``model.keras`` in ``models/`` is at most ``MAX_MODEL_BYTES`` (15 MB), the limit
    ``publish`` enforces; the limit itself is the one the project promises."""
    assert registry.MAX_MODEL_BYTES == 15_000_000
    for name in _shipped_configs():
        size = (registry.MODELS_DIR / name / registry.MODEL_FILE).stat().st_size
        assert size <= registry.MAX_MODEL_BYTES, (name, size)


def test_every_shipped_multi_exit_model_records_the_other_policies_thresholds():
    """``thresholds`` (what ``--policy max_prob|patience`` uses without ``--threshold``) is recorded
    for every multi-exit reference model, each valid for its policy; a plain model has none."""
    from helpers.policies import resolve_policy

    for name, config in _shipped_configs().items():
        if config["threshold_rule"] is None:  # a plain network: no exit to choose for
            assert "thresholds" not in config, name
            continue
        assert set(config["thresholds"]) == {"max_prob", "patience"}, name
        for policy, threshold in config["thresholds"].items():
            assert resolve_policy(policy).check(threshold) == threshold, (name, policy)
        assert isinstance(config["thresholds"]["patience"], int), name


# --------------------------------------------------------------------------- load


def test_load_a_run_takes_the_class_names_from_config(run_dir, saved_model):
    loaded = registry.load(run_dir)
    assert loaded.class_names == CLASSES
    assert loaded.meta["name"] == "tiny"
    assert loaded.path == run_dir / "model.keras"
    images = np.zeros((2, 32, 32, 3), np.uint8)
    original = keras.models.load_model(saved_model, compile=False)
    np.testing.assert_array_equal(
        np.asarray(loaded.model.predict(images, verbose=0)), np.asarray(original.predict(images, verbose=0))
    )


def test_load_prefers_meta_json(models_dir):
    (models_dir / "ref-a" / "config.json").write_text(json.dumps({"class_names": CLASSES}))
    assert registry.load("ref-a").class_names == ["x", "y", "z"]


def test_load_without_metadata_names_classes_by_index(saved_model):
    assert registry.load(saved_model).class_names == ["class_0", "class_1", "class_2"]


def test_load_a_file_that_is_not_a_model(tmp_path):
    bogus = tmp_path / "model.keras"
    bogus.write_text("this is not a zip archive")
    with pytest.raises(ValueError, match="is not a Keras model file: a .keras model is a zip archive") as err:
        registry.load(tmp_path)
    assert str(bogus) in str(err.value)
    import zipfile

    with zipfile.ZipFile(bogus, "w") as archive:  # a zip archive, but no model in it
        archive.writestr("notes.txt", "hello")
    with pytest.raises(ValueError, match="is not a loadable Keras model") as err:
        registry.load(tmp_path)
    assert str(bogus) in str(err.value)


def test_load_missing(tmp_path, models_dir):
    with pytest.raises(FileNotFoundError, match="reference models: ref-a"):
        registry.load(tmp_path / "missing")


# --------------------------------------------------------------------------- trained_dir, publish


def test_trained_dir_prefers_a_finished_run(run_dir, models_dir):
    runs = run_dir.parent
    assert registry.trained_dir("tiny", runs) == run_dir
    shutil.copytree(models_dir / "ref-a", models_dir / "tiny")
    (run_dir / "model.keras").unlink()  # unfinished run: fall back to the reference model
    assert registry.trained_dir("tiny", runs) == models_dir / "tiny"
    with pytest.raises(FileNotFoundError, match="no trained model 'other'.*python -m helpers.train"):
        registry.trained_dir("other", runs)


def test_publish_copies_a_run(run_dir, models_dir):
    out = registry.publish(run_dir, "tiny-ref", threshold=0.35)
    assert out == models_dir / "tiny-ref"
    config = json.loads((out / "config.json").read_text())
    assert config["class_names"] == CLASSES
    assert config["threshold"] == 0.35
    assert config["kind"] == "plain"
    assert config["reference_name"] == "tiny-ref"
    assert (out / "history.csv").read_text() == (run_dir / "history.csv").read_text()
    assert registry.load("tiny-ref").class_names == CLASSES
    assert not list(out.glob(".partial*"))
    assert not (out / "split.json").exists()  # the fixture run has none


def test_publish_refuses_a_model_above_the_size_limit(run_dir, models_dir, monkeypatch):
    """A model larger than ``MAX_MODEL_BYTES`` is not published: a new folder is not left
    behind, and a reference model already there stays as it was."""
    monkeypatch.setattr(registry, "MAX_MODEL_BYTES", 1000)
    with pytest.raises(ValueError, match=r"saves to \d+\.\d MB, above the 0.001 MB .*narrower"):
        registry.publish(run_dir, "too-big", threshold=0.35)
    assert not (models_dir / "too-big").exists()
    monkeypatch.setattr(registry, "MAX_MODEL_BYTES", 15_000_000)
    out = registry.publish(run_dir, "fits", threshold=0.35)
    size = (out / "model.keras").stat().st_size
    monkeypatch.setattr(registry, "MAX_MODEL_BYTES", size // 2)
    with pytest.raises(ValueError, match="above the"):
        registry.publish(run_dir, "fits", threshold=0.5)
    assert json.loads((out / "config.json").read_text())["threshold"] == 0.35  # untouched
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "history.csv", "model.keras"]
    assert (out / "model.keras").stat().st_size == size


def test_publish_copies_the_split_for_the_benchmark(run_dir, models_dir):
    ids = {"train": ["a/1.jpg"], "val": ["b/2.jpg"], "test": ["c/3.jpg"]}
    (run_dir / "split.json").write_text(json.dumps(ids))
    out = registry.publish(run_dir, "tiny-split", threshold=0.35)
    assert json.loads((out / "split.json").read_text()) == ids


def test_publish_names_a_seed_other_than_0(run_dir, models_dir):
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps(config | {"seed": 2}))
    out = registry.publish(run_dir, "tiny-seed2", threshold=0.35)
    assert json.loads((out / "config.json").read_text())["kind"] == "plain, seed 2"


def test_publish_refuses_to_replace_another_run_unless_told(run_dir, models_dir):
    config = json.loads((run_dir / "config.json").read_text()) | {"experiment": {"epochs": 3}, "seed": 0}
    (run_dir / "config.json").write_text(json.dumps(config))
    out = registry.publish(run_dir, "tiny-ref", threshold=0.35)
    registry.publish(run_dir, "tiny-ref", threshold=0.4)  # the same run again: replaced
    assert json.loads((out / "config.json").read_text())["threshold"] == 0.4
    (run_dir / "config.json").write_text(json.dumps(config | {"seed": 1}))
    with pytest.raises(ValueError, match=r"tiny-ref already holds another run \(seed 0 there, 1 here\).*--name"):
        registry.publish(run_dir, "tiny-ref", threshold=0.5)
    assert json.loads((out / "config.json").read_text())["threshold"] == 0.4  # untouched
    (run_dir / "config.json").write_text(json.dumps(config | {"experiment": {"epochs": 5}}))
    with pytest.raises(ValueError, match=r"another run \(epochs 3 there, 5 here\)"):
        registry.publish(run_dir, "tiny-ref", threshold=0.5)
    registry.publish(run_dir, "tiny-ref", threshold=0.5, overwrite=True)
    assert json.loads((out / "config.json").read_text())["experiment"] == {"epochs": 5}


def test_publish_command_reports_a_taken_name_in_one_line(run_dir, models_dir, monkeypatch, capsys):
    (models_dir / "tiny").mkdir()
    (models_dir / "tiny" / "config.json").write_text(json.dumps({"experiment": {"epochs": 3}, "seed": 0}))
    (run_dir / "config.json").write_text(json.dumps({"name": "tiny", "class_names": CLASSES,
                                                    "experiment": {"epochs": 3}, "seed": 1}))
    # tau* without images: the run is judged on its config alone
    monkeypatch.setattr(registry, "_operating_threshold", lambda *args: (_Run(), _Exp(), 0.3, "stable", {}))
    assert registry.main(["publish", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "--overwrite" in err
    assert registry.main(["publish", str(run_dir), "--overwrite"]) == 0
    assert json.loads((models_dir / "tiny" / "config.json").read_text())["seed"] == 1


class _Run:
    model = None  # publish loads it from the run folder


class _Exp:
    name = "tiny"
    dataset = "flowers"


def test_retune_a_plain_model_needs_no_data_and_keeps_threshold_0(run_dir, models_dir, capsys):
    config = json.loads((run_dir / "config.json").read_text())
    plain = experiments.get_experiment("flowers-vgg11-plain-96px").to_dict()
    (run_dir / "config.json").write_text(json.dumps(config | {"experiment": plain}))
    out = registry.publish(run_dir, "tiny-plain", threshold=0.35)  # a wrong threshold, to be mended
    weights = (out / "model.keras").read_bytes()
    # No --source: a plain model has no exit to choose for, so no images are read.
    assert registry.main(["retune", "tiny-plain"]) == 0
    assert capsys.readouterr().out == "tiny-plain: threshold 0.35 -> 0.0 (plain network, no exit to choose)\n"
    retuned = json.loads((out / "config.json").read_text())
    assert retuned["threshold"] == 0.0 and retuned["threshold_rule"] is None
    assert (out / "model.keras").read_bytes() == weights
    assert registry.main(["retune", "no-such-model"]) == 2
    assert "no model file, run folder or reference model called 'no-such-model'" in capsys.readouterr().err


# --------------------------------------------------------------------------- paths


def test_quick_mode(monkeypatch):
    monkeypatch.setenv(paths.QUICK_ENV, "1")
    assert paths.quick_mode()
    assert paths.figures_dir() == paths.PROJECT_ROOT / "figures" / "quick"
    monkeypatch.setenv(paths.QUICK_ENV, "0")
    assert not paths.quick_mode()
    assert paths.figures_dir() == paths.PROJECT_ROOT / "figures"
    monkeypatch.delenv(paths.QUICK_ENV)
    assert not paths.quick_mode()


def test_runs_dir(monkeypatch, tmp_path):
    monkeypatch.delenv(paths.QUICK_ENV, raising=False)
    monkeypatch.delenv(paths.RUNS_ENV, raising=False)
    assert paths.runs_dir() == paths.PROJECT_ROOT / "runs"
    monkeypatch.setenv(paths.RUNS_ENV, str(tmp_path))
    assert paths.runs_dir() == tmp_path
    monkeypatch.setenv(paths.QUICK_ENV, "1")
    assert paths.runs_dir() == tmp_path / "quick"


def test_publish_reads_fields_an_old_record_lacks_as_their_defaults(run_dir, models_dir):
    # a reference model published before Experiment gained head_filters is the same run
    exp = experiments.get_experiment("flowers-vgg11-96px").to_dict()
    config = json.loads((run_dir / "config.json").read_text()) | {"experiment": exp, "seed": 0}
    (run_dir / "config.json").write_text(json.dumps(config))
    out = registry.publish(run_dir, "tiny-old", threshold=0.35)
    old = json.loads((out / "config.json").read_text())
    del old["experiment"]["head_filters"]
    (out / "config.json").write_text(json.dumps(old))
    registry.publish(run_dir, "tiny-old", threshold=0.4)  # not refused
    assert json.loads((out / "config.json").read_text())["threshold"] == 0.4
