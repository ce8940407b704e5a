"""python -m helpers.evaluate: numbers consistent with the evaluation helpers, JSON keys, --list."""

import json

import numpy as np
import pytest

from helpers import cost, data, evaluate, models, registry
from helpers.budget import evaluate_per_exit
from helpers.evaluation import (
    accuracy_interval,
    choose_threshold,
    collect_logits,
    evaluate_threshold,
    paired_test,
    sweep,
)

KEYS = {"model", "reference_model", "images", "exit_names", "exit_accuracy", "final_accuracy", "policy", "threshold",
        "thresholds",
        "accuracy", "exit_fractions", "relative_cost", "predicted_speedup",
        "final_accuracy_interval", "accuracy_interval", "drop_p_value"}


@pytest.fixture
def network(spread_model):
    """A tiny VGG11 (3 classes, 32 px) whose exits send the images of ``folder`` to several exits.

    (A freshly initialised network is so unsure at every exit that every image would go
    to the end, and the early-exit part of a report would go unchecked.)
    """
    return spread_model(seed=0)


@pytest.fixture
def model_dir(tmp_path, network):
    folder = tmp_path / "model"
    folder.mkdir()
    network.save(folder / "model.keras")
    meta = {"class_names": ["daisy", "dandelion", "roses"], "threshold": 0.7}
    (folder / "config.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture
def folder(tmp_path, make_image_folder):
    return make_image_folder(tmp_path / "flowers", class_names=("roses", "daisy"), per_class=5, image_size=40)


def test_json_report_matches_a_direct_computation(model_dir, folder, network, capsys):
    assert evaluate.main([str(model_dir), "--data-dir", str(folder), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == KEYS
    assert result["images"] == 10 and result["threshold"] == 0.7  # tau* from the model's metadata
    assert result["model"] == str(model_dir) and result["reference_model"] is None  # a folder, not a reference model

    # the same computation by hand: folder labels remapped to the model's label order
    images = data.load_folder(folder, 32, progress=False, min_classes=1)
    assert images.class_names == ["daisy", "roses"]
    labels = np.array([0, 2])[images.labels]
    logits, _ = collect_logits(network, data.make_dataset(images))
    expected = evaluate_threshold(logits, labels, cost.relative_costs(network), 0.7)
    np.testing.assert_allclose(result["exit_accuracy"], (logits.argmax(-1) == labels[:, None]).mean(0))
    assert result["final_accuracy"] == result["exit_accuracy"][-1]
    assert result["accuracy"] == pytest.approx(expected["accuracy"])
    np.testing.assert_allclose(result["exit_fractions"], expected["exit_fractions"])
    assert sum(result["exit_fractions"]) == pytest.approx(1.0)
    assert np.count_nonzero(result["exit_fractions"]) >= 2 and result["exit_fractions"][-1] < 1  # exits spread
    assert result["relative_cost"] == pytest.approx(expected["relative_cost"])
    assert result["predicted_speedup"] == pytest.approx(1 / result["relative_cost"])
    final_right = logits[:, -1].argmax(-1) == labels
    early_right = expected["predictions"] == labels
    assert result["final_accuracy_interval"] == pytest.approx(list(accuracy_interval(final_right)))
    assert result["accuracy_interval"] == pytest.approx(list(accuracy_interval(early_right)))
    low, high = result["accuracy_interval"]
    assert low <= result["accuracy"] <= high
    assert result["drop_p_value"] == pytest.approx(paired_test(early_right, final_right)["p_value"])


def test_threshold_zero_and_one(model_dir, folder, network):
    costs = cost.relative_costs(network)
    at_zero = evaluate.evaluate_model(str(model_dir), str(folder), threshold=0.0, progress=False)
    assert at_zero["exit_fractions"][-1] == 1.0 and at_zero["relative_cost"] == pytest.approx(costs[-1])
    assert at_zero["accuracy"] == at_zero["final_accuracy"]
    assert at_zero["drop_p_value"] == 1.0  # the same predictions: they never disagree
    assert at_zero["accuracy_interval"] == at_zero["final_accuracy_interval"]
    at_one = evaluate.evaluate_model(str(model_dir), str(folder), threshold=1.0, progress=False)
    assert at_one["exit_fractions"][0] == 1.0 and at_one["relative_cost"] == pytest.approx(costs[0])


def test_text_report(model_dir, folder, capsys):
    assert evaluate.main([str(model_dir), "--data-dir", str(folder), "--threshold", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "on 10 images" in out and "threshold 0.500" in out and "exit_1" in out and "final" in out
    assert out.count("95% interval") == 2 and "exact McNemar test: p = " in out


def test_threshold_note_only_when_nothing_is_recorded():
    assert evaluate.threshold_note({"threshold": 0.7}) is None
    assert evaluate.threshold_note({}) == (
        "note: the model records no tau*; using the default 0.5 "
        "(pass --threshold, or publish the run with python -m helpers.registry publish to record tau*)")
    assert evaluate.threshold_note({"thresholds": {"patience": 2}}, "patience") is None
    assert evaluate.threshold_note({"threshold": 0.7}, "patience").startswith(
        "note: the model records no patience threshold; using the default 2 ")


def test_the_command_line_notes_a_default_threshold(model_dir, folder, capsys):
    assert evaluate.main([str(model_dir), "--data-dir", str(folder), "--json"]) == 0
    assert "records no" not in capsys.readouterr().err
    (model_dir / "config.json").write_text(json.dumps({"class_names": ["daisy", "dandelion", "roses"]}))
    assert evaluate.main([str(model_dir), "--data-dir", str(folder), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["threshold"] == 0.5 and "records no tau*" in captured.err


def test_list_reference_models(tmp_path, monkeypatch, tiny_model, capsys):
    monkeypatch.setattr(registry, "MODELS_DIR", tmp_path)
    assert evaluate.main(["--list"]) == 0
    assert "no reference models" in capsys.readouterr().out
    (tmp_path / "flowers-vgg11-96px").mkdir()
    tiny_model.save(tmp_path / "flowers-vgg11-96px" / "model.keras")
    meta = {"dataset": "tf_flowers", "kind": "multi-exit (5 early exits)"}
    (tmp_path / "flowers-vgg11-96px" / "config.json").write_text(json.dumps(meta))
    assert evaluate.main(["--list"]) == 0
    assert capsys.readouterr().out.strip() == "flowers-vgg11-96px\ttf_flowers\tmulti-exit (5 early exits)"


def test_an_alias_is_listed_and_evaluated_as_the_model_it_stands_for(tmp_path, monkeypatch, model_dir, folder, capsys):
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    meta = json.loads((model_dir / "config.json").read_text())
    meta |= {"reference_name": "tiny-128px", "dataset": "tf_flowers", "kind": "multi-exit (2 early exits)"}
    (model_dir / "config.json").write_text(json.dumps(meta))
    model_dir.rename(models_dir / "tiny-128px")
    (models_dir / "aliases.json").write_text(json.dumps({"tiny": {"model": "tiny-128px", "role": "recommended"}}))
    monkeypatch.setattr(registry, "MODELS_DIR", models_dir)

    assert evaluate.main(["--list"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "tiny\ttf_flowers\tmulti-exit (2 early exits), alias of tiny-128px",
        "tiny-128px\ttf_flowers\tmulti-exit (2 early exits)",
    ]
    assert evaluate.main(["tiny", "--data-dir", str(folder), "--json"]) == 0
    by_alias = json.loads(capsys.readouterr().out)
    assert evaluate.main(["tiny-128px", "--data-dir", str(folder), "--json"]) == 0
    by_name = json.loads(capsys.readouterr().out)
    assert (by_alias["model"], by_alias["reference_model"]) == ("tiny", "tiny-128px")
    assert by_name["model"] == by_name["reference_model"] == "tiny-128px"
    assert {k: v for k, v in by_alias.items() if k != "model"} == {k: v for k, v in by_name.items() if k != "model"}
    assert evaluate.main(["tiny", "--data-dir", str(folder)]) == 0
    assert capsys.readouterr().out.startswith("model tiny (= tiny-128px) on 10 images")
    assert evaluate.main(["tiny-128px", "--data-dir", str(folder)]) == 0
    assert capsys.readouterr().out.startswith("model tiny-128px on 10 images")


def test_list_with_a_broken_alias_file_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "aliases.json").write_text(json.dumps({"tiny": {"model": "gone"}}))
    monkeypatch.setattr(registry, "MODELS_DIR", tmp_path)
    assert evaluate.main(["--list"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "stands for 'gone', which is not a reference model" in err


def test_per_exit_thresholds(model_dir, folder, network, capsys):
    # exit 2 is closed: half the images, sure enough at exit 2 for any threshold above 0.45,
    # leave at exit 3 instead; exit 4 is closed: the other half leave at exit 5
    thresholds = [0.5, 0.0, 0.58, 0.0, 1.0]
    assert evaluate.main([str(model_dir), "--data-dir", str(folder), "--thresholds", "0.5,0,0.58,0,1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == KEYS
    assert result["threshold"] is None and result["thresholds"] == thresholds
    images = data.load_folder(folder, 32, progress=False, min_classes=1)
    labels = np.array([0, 2])[images.labels]
    logits, _ = collect_logits(network, data.make_dataset(images))
    expected = evaluate_per_exit(logits, labels, cost.relative_costs(network), thresholds)
    assert result["accuracy"] == pytest.approx(expected["accuracy"])
    np.testing.assert_allclose(result["exit_fractions"], expected["exit_fractions"])
    assert result["exit_fractions"][1] == result["exit_fractions"][3] == 0  # closed
    assert result["exit_fractions"][2] > 0 and result["exit_fractions"][4] > 0  # ... and the images went on
    at_once = evaluate_threshold(logits, labels, cost.relative_costs(network), 0.58)["exit_fractions"]
    assert at_once[1] > 0  # the premise: with exit 2 open, images would leave there
    assert result["relative_cost"] == pytest.approx(expected["relative_cost"])
    assert evaluate.main([str(model_dir), "--data-dir", str(folder), "--thresholds", "0.5,0,0.58,0,1"]) == 0
    assert "thresholds 0.500, 0.000, 0.580, 0.000, 1.000" in capsys.readouterr().out


@pytest.mark.parametrize(("argv_tail", "message"), [
    (["--thresholds", "0.5,0.5"], "one threshold per early exit (5), got 2"),
    (["--thresholds", "0.5,0.5,0.5,0.5,1.5"], "[0, 1]"),
    (["--thresholds", "0.5,0.5,0.5,0.5,0.5", "--policy", "patience"], "stateless policy"),
    (["--exits", "final"], "is the final classifier"),
    (["--exits", "2,4", "--thresholds", "0.5,0.5,0.5"], "one threshold per early exit (2), got 3"),
])
def test_bad_thresholds_and_exits_are_one_line_errors(model_dir, folder, capsys, argv_tail, message):
    assert evaluate.main([str(model_dir), "--data-dir", str(folder), *argv_tail]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_unparsable_thresholds_and_exits_are_usage_errors(model_dir, folder, capsys):
    for flag, value in (("--thresholds", "0.5,x"), ("--exits", "2,,3")):
        with pytest.raises(SystemExit) as stop:
            evaluate.main([str(model_dir), "--data-dir", str(folder), flag, value])
        assert stop.value.code == 2
        assert "comma-separated" in capsys.readouterr().err


def test_a_subset_of_exits(model_dir, folder, network, capsys):
    argv = [str(model_dir), "--data-dir", str(folder), "--exits", "4,exit_2", "--threshold", "0.7", "--json"]
    assert evaluate.main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["exit_names"] == ["exit_2", "exit_4", "final"] and "subset_threshold" not in result
    images = data.load_folder(folder, 32, progress=False, min_classes=1)
    labels = np.array([0, 2])[images.labels]
    logits, _ = collect_logits(network, data.make_dataset(images))
    kept = models.select_exits(network, [2, 4])
    expected = evaluate_threshold(logits[:, [1, 3, 5]], labels, cost.relative_costs(kept), 0.7)
    assert result["exit_accuracy"] == pytest.approx(list((logits[:, [1, 3, 5]].argmax(-1) == labels[:, None]).mean(0)))
    assert result["accuracy"] == pytest.approx(expected["accuracy"])
    np.testing.assert_allclose(result["exit_fractions"], expected["exit_fractions"])
    assert np.count_nonzero(result["exit_fractions"]) >= 2  # the images spread over the kept exits
    assert result["relative_cost"] == pytest.approx(expected["relative_cost"])
    # the removed heads are not counted: cheaper than closing those exits
    closed = evaluate_per_exit(logits, labels, cost.relative_costs(network), [0.0, 0.7, 0.0, 0.7, 0.0])
    assert result["accuracy"] == pytest.approx(closed["accuracy"])
    assert result["relative_cost"] < closed["relative_cost"]
    assert evaluate.main([str(model_dir), "--data-dir", str(folder), "--exits", "none", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["relative_cost"] == pytest.approx(1.0) and captured.err == ""
    # every early exit kept: tau* applies as it is, nothing to choose
    assert evaluate.main([str(model_dir), "--data-dir", str(folder), "--exits", "1,2,3,4,5", "--json"]) == 0
    every = json.loads(capsys.readouterr().out)
    assert every["threshold"] == 0.7 and "subset_threshold" not in every


def test_a_subset_of_exits_gets_its_threshold_on_validation(tmp_path, spread_model, capsys, monkeypatch):
    """Without a threshold, --exits chooses one for the kept exits on validation, as tau* was chosen."""
    classes = ["daisy", "dandelion", "roses"]
    model = spread_model(seed=1)  # with these images, thresholds that differ by subset and by rule
    folder = tmp_path / "model"
    folder.mkdir()
    model.save(folder / "model.keras")
    (folder / "config.json").write_text(json.dumps({"class_names": classes, "threshold": 0.6}))
    test_dir = data.write_image_folder(data.synthetic_images(4, 3, 40, seed=1), tmp_path / "test", classes)
    val_dir = data.write_image_folder(data.synthetic_images(6, 3, 40, seed=5), tmp_path / "val", classes)

    def logits_of(network, images):
        return collect_logits(network, data.make_dataset(data.load_folder(images, 32, progress=False)))

    def by_hand(exits, rule):
        kept = models.select_exits(model, exits)
        costs = cost.relative_costs(kept)
        val_logits, val_labels = logits_of(kept, val_dir)
        final = (val_logits[:, -1].argmax(-1) == val_labels).mean()
        t = choose_threshold(sweep(val_logits, val_labels, costs), final, 0.01, rule)
        return t, final, evaluate_threshold(val_logits, val_labels, costs, t), \
            evaluate_threshold(*logits_of(kept, test_dir), costs, t)

    argv = [str(folder), "--data-dir", str(test_dir), "--exits", "1,3", "--json"]
    assert evaluate.main([*argv, "--val-dir", str(val_dir)]) == 0
    result = json.loads(capsys.readouterr().out)
    expected_t, final, val, test = by_hand([1, 3], "stable")
    every_t = by_hand([1, 2, 3, 4, 5], "stable")[0]
    assert 0 < expected_t < 1 and expected_t not in (every_t, 0.6)  # chosen anew for these exits
    chosen = result["subset_threshold"]
    assert result["threshold"] == chosen["threshold"] == pytest.approx(expected_t)
    assert chosen == {"rule": "stable", "tolerance": 0.01, "validation": f"val-dir {val_dir}", "val_images": 18,
                      "threshold": chosen["threshold"], "val_accuracy": pytest.approx(val["accuracy"]),
                      "val_final_accuracy": pytest.approx(final),
                      "val_relative_cost": pytest.approx(val["relative_cost"])}
    assert chosen["val_accuracy"] >= chosen["val_final_accuracy"] - 0.01 - 1e-9  # within the tolerance
    assert result["accuracy"] == pytest.approx(test["accuracy"])
    assert result["relative_cost"] == pytest.approx(test["relative_cost"])
    np.testing.assert_allclose(result["exit_fractions"], test["exit_fractions"])

    # the model's recorded rule is the one used
    (folder / "config.json").write_text(json.dumps({"class_names": classes, "threshold": 0.6,
                                                    "threshold_rule": "cheapest"}))
    four = [str(folder), "--data-dir", str(test_dir), "--exits", "1,2,3,4", "--val-dir", str(val_dir), "--json"]
    assert evaluate.main(four) == 0
    cheapest = json.loads(capsys.readouterr().out)["subset_threshold"]
    assert cheapest["rule"] == "cheapest" and cheapest["threshold"] == pytest.approx(by_hand([1, 2, 3, 4], "cheapest")[0])
    assert cheapest["threshold"] != by_hand([1, 2, 3, 4], "stable")[0]

    assert evaluate.main(four[:-1]) == 0
    assert "chosen for these exits on 18 validation images" in capsys.readouterr().out

    # no validation images to choose on: a one-line error that says what to pass
    assert evaluate.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: choosing a threshold for --exits needs validation images") and "--threshold T" in err
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit):  # nothing to choose: --val-dir would be ignored
        evaluate.main([*argv, "--threshold", "0.5", "--val-dir", str(val_dir)])
    capsys.readouterr()
    # a folder the model cannot read is reported first, before any validation pass
    unknown = data.write_image_folder(data.synthetic_images(2, 1, 40, seed=3), tmp_path / "other", ["tulips"])
    calls = []
    monkeypatch.setattr(evaluate, "validation_logits", lambda *args, **kwargs: calls.append(args))
    for bad in (unknown, tmp_path / "missing"):
        for choice in (["--exits", "1,3"], ["--budget", "0.5"]):
            assert evaluate.main([str(folder), "--data-dir", str(bad), *choice, "--val-dir", str(val_dir)]) == 2
            err = capsys.readouterr().err
            assert err.startswith("error: ") and ("tulips" in err or "does not exist" in err)
    assert calls == []


# --------------------------------------------------------------------------- --baseline


@pytest.fixture
def plain_dir(tmp_path):
    """A plain VGG11 (final classifier only) of the model's classes, at another input size (64 px),
    that calls every image a dandelion (none of the folder's images is one)."""
    import keras

    keras.utils.set_random_seed(3)
    plain = models.build_vgg11(num_classes=3, input_size=64, width=0.125, head=None)
    dense = plain.get_layer("final").get_layer("logits")  # an untrained network says one class: dandelion
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel, bias + np.array([0.0, 10.0, 0.0], dtype=bias.dtype)])
    folder = tmp_path / "plain"
    folder.mkdir()
    plain.save(folder / "model.keras")
    (folder / "config.json").write_text(json.dumps({"class_names": ["daisy", "dandelion", "roses"]}))
    return folder, plain


def test_baseline_and_targets_match_a_direct_computation(tmp_path, folder, spread_model, plain_dir, capsys):
    """--baseline: the plain network's accuracy on the same images (read at its own input size),
    the paired test between the two final classifiers, and the four targets from those numbers."""
    plain_folder, plain = plain_dir
    model = spread_model(seed=3)  # at 0.5 half the images leave at exit 1, half at exit 3, all wrong
    model_dir = tmp_path / "spread"
    model_dir.mkdir()
    model.save(model_dir / "model.keras")
    (model_dir / "config.json").write_text(json.dumps({"class_names": ["daisy", "dandelion", "roses"]}))
    argv = [str(model_dir), "--data-dir", str(folder), "--threshold", "0.5", "--baseline", str(plain_folder)]
    assert evaluate.main([*argv, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == KEYS | {"baseline", "targets"}

    order = np.array([0, 2])  # folder classes daisy, roses -> the models' labels
    images = data.load_folder(folder, 64, progress=False, min_classes=1)
    labels = order[images.labels]
    plain_right = collect_logits(plain, data.make_dataset(images))[0][:, -1].argmax(-1) == labels
    small = data.load_folder(folder, 32, progress=False, min_classes=1)
    logits, _ = collect_logits(model, data.make_dataset(small))
    model_right = logits[:, -1].argmax(-1) == labels
    assert plain_right.mean() == 0.0 and model_right.mean() == 0.5  # by the fixtures' design
    base = result["baseline"]
    assert base["model"] == str(plain_folder) and base["reference_model"] is None
    assert base["final_accuracy"] == pytest.approx(plain_right.mean())
    assert base["final_accuracy_interval"] == pytest.approx(list(accuracy_interval(plain_right)))
    assert base["p_value"] == pytest.approx(paired_test(model_right, plain_right)["p_value"])

    # by hand: the final exit is right on half the images, early exit on none, at a cost below one half
    at = evaluate_threshold(logits, labels, cost.relative_costs(model), 0.5)
    assert model_right.mean() == 0.5 and at["accuracy"] == 0.0 and at["relative_cost"] < 0.5
    assert [t["target"] for t in result["targets"]] == [
        "final-exit accuracy ≥ 85%", "accuracy at the threshold within 1 point of the final exit",
        "mean cost at the threshold ≤ 0.5 × the plain network (heads included)",
        "final exit at most 1 point below the plain network"]
    assert [t["measured"] for t in result["targets"]] == [
        "50.0%", "0.0% (50.0 points below)", f"{at['relative_cost']:.3f}", "50.0% vs 0.0%"]
    assert [t["met"] for t in result["targets"]] == [False, False, True, True]  # the plain one is worse

    # other limits: half the images reach an accuracy target of 0.5; no cost is at most 0.1
    assert evaluate.main([*argv, "--json", "--target-accuracy", "0.5", "--target-cost", "0.1"]) == 0
    other = json.loads(capsys.readouterr().out)["targets"]
    assert [t["met"] for t in other][::2] == [True, False]
    assert other[0]["target"] == "final-exit accuracy ≥ 50%"

    assert evaluate.main(argv) == 0
    out = capsys.readouterr().out
    assert f"baseline {plain_folder}: accuracy {plain_right.mean():.1%}" in out
    assert "targets:" in out and "  MISS  final-exit accuracy ≥ 85%: 50.0%" in out


def test_a_baseline_of_the_same_input_size_reuses_the_decoded_images(tmp_path, folder, spread_model, capsys,
                                                                     monkeypatch):
    """A baseline taking the model's input size is given the images the model was given, decoded
    once; one of another size reads them again at its own (the test above)."""
    import keras

    keras.utils.set_random_seed(5)
    plain = models.build_vgg11(num_classes=3, input_size=32, width=0.125, head=None)
    dirs = {}
    for name, network in (("spread", spread_model(seed=3)), ("plain32", plain)):
        dirs[name] = tmp_path / name
        dirs[name].mkdir()
        network.save(dirs[name] / "model.keras")
        (dirs[name] / "config.json").write_text(json.dumps({"class_names": ["daisy", "dandelion", "roses"]}))
    decoded = []
    load_folder = data.load_folder
    monkeypatch.setattr(data, "load_folder", lambda *args, **kw: decoded.append(args) or load_folder(*args, **kw))
    assert evaluate.main([str(dirs["spread"]), "--data-dir", str(folder), "--baseline", str(dirs["plain32"]),
                          "--json"]) == 0
    assert len(decoded) == 1
    captured = capsys.readouterr()
    assert "multi-exit" not in captured.err  # a plain baseline: no note
    base = json.loads(captured.out)["baseline"]
    images = load_folder(folder, 32, progress=False, min_classes=1)
    right = collect_logits(plain, data.make_dataset(images))[0][:, -1].argmax(-1) == np.array([0, 2])[images.labels]
    assert base["final_accuracy"] == pytest.approx(right.mean())
    assert base["final_accuracy_interval"] == pytest.approx(list(accuracy_interval(right)))
    # a multi-exit network given as the baseline is accepted, with a note on stderr (stdout stays JSON)
    assert evaluate.main([str(dirs["plain32"]), "--data-dir", str(folder), "--baseline", str(dirs["spread"]),
                          "--json"]) == 0
    captured = capsys.readouterr()
    assert "is a multi-exit network, not a plain one" in captured.err
    assert json.loads(captured.out)["baseline"]["model"] == str(dirs["spread"])


def test_baseline_errors_are_one_line(model_dir, folder, plain_dir, tmp_path, capsys, monkeypatch):
    plain_folder, _ = plain_dir
    (plain_folder / "config.json").write_text(json.dumps({"class_names": ["cats", "dogs", "owls"]}))
    read = []
    monkeypatch.setattr(data, "load_folder", lambda *args, **kw: read.append(1))
    assert evaluate.main([str(model_dir), "--data-dir", str(folder), "--baseline", str(plain_folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the baseline") and "cats, dogs, owls" in err and err.count("\n") == 1
    assert not read  # refused before any image was read
    assert evaluate.main([str(model_dir), "--data-dir", str(folder), "--baseline", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert evaluate.main([str(model_dir), "--data-dir", str(folder), "--baseline", str(model_dir),
                          "--target-accuracy", "85"]) == 2
    assert "accuracy target is a fraction in [0, 1], got 85" in capsys.readouterr().err
    assert evaluate.main([str(model_dir), "--data-dir", str(folder), "--baseline", str(model_dir),
                          "--target-cost", "0"]) == 2
    assert "cost target is a positive fraction of the plain network, got 0.0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate.main([str(model_dir), "--data-dir", str(folder), "--target-cost", "0.5"])
    assert "checked with --baseline" in capsys.readouterr().err
