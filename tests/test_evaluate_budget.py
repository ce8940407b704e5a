"""python -m helpers.evaluate with --policy max_prob/patience and --budget (validation from --val-dir or the rebuilt split)."""

import dataclasses
import json

import numpy as np
import pytest

from helpers import cost, data, evaluate
from helpers.budget import threshold_for_budget
from helpers.evaluation import collect_logits, evaluate_threshold
from helpers.experiments import Experiment
from helpers.train import prepare_splits

CLASSES = ["daisy", "dandelion", "roses"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory, spread_model):
    """A tiny spread model saved in a run-like folder, and its relative costs."""
    model = spread_model(num_classes=3)
    folder = tmp_path_factory.mktemp("model")
    model.save(folder / "model.keras")
    (folder / "config.json").write_text(json.dumps({"class_names": CLASSES, "threshold": 0.6}))
    return folder, model, cost.relative_costs(model)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    test = data.write_image_folder(data.synthetic_images(4, 3, 40, seed=1), root / "test", CLASSES)
    val = data.write_image_folder(data.synthetic_images(5, 3, 40, seed=2), root / "val", CLASSES)
    return test, val


def logits_of(model, folder):
    images = data.load_folder(folder, 32, progress=False)
    return collect_logits(model, data.make_dataset(images))


def test_budget_with_val_dir_matches_a_direct_computation(saved, folders, capsys):
    folder, model, costs = saved
    test_dir, val_dir = folders
    code = evaluate.main([str(folder), "--data-dir", str(test_dir), "--budget", "0.5", "--val-dir", str(val_dir),
                          "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    val_logits, val_labels = logits_of(model, val_dir)
    expected_t = threshold_for_budget(val_logits, val_labels, costs, 0.5)
    val = evaluate_threshold(val_logits, val_labels, costs, expected_t)
    test = evaluate_threshold(*logits_of(model, test_dir), costs, expected_t)
    b = result["budget"]
    assert result["threshold"] == pytest.approx(expected_t) and b["threshold"] == result["threshold"]
    assert b["budget"] == 0.5 and b["val_images"] == 15 and b["validation"] == f"val-dir {val_dir}"
    assert b["val_relative_cost"] == pytest.approx(val["relative_cost"]) and val["relative_cost"] <= 0.5
    assert b["val_accuracy"] == pytest.approx(val["accuracy"])
    assert result["accuracy"] == pytest.approx(test["accuracy"])
    assert result["relative_cost"] == pytest.approx(test["relative_cost"])
    assert b["within_budget"] == (test["relative_cost"] <= 0.5)


def test_budget_text_report(saved, folders, capsys):
    folder, _, _ = saved
    test_dir, val_dir = folders
    assert evaluate.main([str(folder), "--data-dir", str(test_dir), "--budget", "0.6", "--val-dir", str(val_dir)]) == 0
    out = capsys.readouterr().out
    assert "budget 0.600: threshold" in out and "chosen on 15 validation images" in out


def test_budget_from_the_rebuilt_split(tmp_path, saved, capsys):
    folder, model, costs = saved
    source = data.write_image_folder(data.synthetic_images(8, 3, 40, seed=3), tmp_path / "flowers", CLASSES)
    exp = dataclasses.replace(Experiment("tiny", "tiny test experiment"), image_size=32)
    splits = prepare_splits(exp, source, progress=False)
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes((folder / "model.keras").read_bytes())
    config = {"class_names": CLASSES, "experiment": exp.to_dict(), "quick": False,
              "split_fingerprint": splits.fingerprint()}
    (run / "config.json").write_text(json.dumps(config))

    args = [str(run), "--data-dir", str(source), "--budget", "0.7", "--source", str(source), "--json"]
    assert evaluate.main(args) == 0
    b = json.loads(capsys.readouterr().out)["budget"]
    assert b["validation"] == f"rebuilt split {splits.fingerprint()}" and b["val_images"] == len(splits.val)
    val_logits, val_labels = collect_logits(model, data.make_dataset(splits.val))
    assert b["threshold"] == pytest.approx(threshold_for_budget(val_logits, val_labels, costs, 0.7))

    (run / "config.json").write_text(json.dumps(config | {"split_fingerprint": "0123456789abcdef"}))
    assert evaluate.main(args) == 2
    assert "not the one" in capsys.readouterr().err

    # data that cannot be read: the error names the options of this command; stdout stays clean
    missing = [str(run), "--data-dir", str(source), "--budget", "0.7", "--source", str(tmp_path / "nowhere"), "--json"]
    assert evaluate.main(missing) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert captured.out == "" and len(err.splitlines()) == 1
    assert "rebuilding the training split for --budget" in err and "--source DATA" in err and "nowhere" in err


def test_budget_errors(saved, folders, capsys):
    folder, _, costs = saved
    test_dir, val_dir = folders
    assert evaluate.main([str(folder), "--data-dir", str(test_dir), "--budget", "0.5"]) == 2
    assert "pass --val-dir" in capsys.readouterr().err  # no training config to rebuild the split from
    too_low = f"{costs[0] / 2:.4f}"
    assert evaluate.main([str(folder), "--data-dir", str(test_dir), "--budget", too_low, "--val-dir", str(val_dir)]) == 2
    assert "below the cost of the first exit" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate.main([str(folder), "--data-dir", str(test_dir), "--budget", "0.5", "--threshold", "0.3"])
    with pytest.raises(SystemExit):
        evaluate.main([str(folder), "--data-dir", str(test_dir), "--val-dir", str(val_dir)])
    with pytest.raises(ValueError, match="a threshold, per-exit thresholds or a budget, one of them"):
        evaluate.evaluate_model(str(folder), str(test_dir), threshold=0.3, budget=0.5, progress=False)


def test_other_policies(saved, folders, capsys):
    folder, model, costs = saved
    test_dir, _ = folders
    logits, labels = logits_of(model, test_dir)
    for policy, threshold in (("max_prob", "0.75"), ("patience", "2")):
        assert evaluate.main([str(folder), "--data-dir", str(test_dir), "--policy", policy,
                              "--threshold", threshold, "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        expected = evaluate_threshold(logits, labels, costs, float(threshold), policy)
        assert 0 < expected["exit_fractions"][-1] < 1  # the premise: some images leave early, some do not
        assert result["policy"] == policy and "budget" not in result
        assert result["accuracy"] == pytest.approx(expected["accuracy"])
        np.testing.assert_allclose(result["exit_fractions"], expected["exit_fractions"])
    assert json.loads(json.dumps(result))["threshold"] == 2  # an integer for patience
    # without --threshold: the policy's default (the model's tau* is an entropy threshold)
    assert evaluate.evaluate_model(str(folder), str(test_dir), policy="patience", progress=False)["threshold"] == 2
    assert evaluate.evaluate_model(str(folder), str(test_dir), policy="max_prob", progress=False)["threshold"] == 0.9
    assert evaluate.default_threshold({"threshold": 0.6, "thresholds": {"max_prob": 0.97}}, "max_prob") == 0.97
    assert evaluate.main([str(folder), "--data-dir", str(test_dir), "--policy", "patience", "--threshold", "0.5"]) == 2
    assert "patience must be an integer" in capsys.readouterr().err


def test_budget_converts_a_bfloat16_model_to_float32_once(tmp_path, saved, folders, monkeypatch, capsys):
    """Validation and evaluated images share one float32 copy of a bfloat16-trained model."""
    from helpers import inference

    folder, model, _ = saved
    test_dir, val_dir = folders
    run = tmp_path / "run"
    run.mkdir()
    inference.with_precision(model, "mixed_bfloat16").save(run / "model.keras")
    (run / "config.json").write_text((folder / "config.json").read_text())
    conversions = []
    original = inference.with_precision

    def counting(m, precision):
        converted = original(m, precision)
        if converted is not m:
            conversions.append(precision)
        return converted

    monkeypatch.setattr(inference, "with_precision", counting)
    args = [str(run), "--data-dir", str(test_dir), "--budget", "0.5", "--val-dir", str(val_dir), "--json"]
    assert evaluate.main(args) == 0
    assert conversions == ["float32"]
    direct = json.loads(capsys.readouterr().out)
    assert evaluate.main([str(folder), *args[1:]]) == 0  # the float32 original gives the same numbers
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(direct["accuracy"])
