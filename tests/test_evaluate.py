"""python -m helpers.evaluate: numbers consistent with the evaluation helpers, JSON keys, --list."""

import json

import numpy as np
import pytest

from helpers import cost, data, evaluate, registry
from helpers.evaluation import accuracy_interval, collect_logits, evaluate_threshold, paired_test

KEYS = {"model", "reference_model", "images", "exit_names", "exit_accuracy", "final_accuracy", "policy", "threshold",
        "accuracy", "exit_fractions", "relative_cost", "predicted_speedup",
        "final_accuracy_interval", "accuracy_interval", "drop_p_value"}


@pytest.fixture
def model_dir(tmp_path, tiny_model):
    folder = tmp_path / "model"
    folder.mkdir()
    tiny_model.save(folder / "model.keras")
    meta = {"class_names": ["daisy", "dandelion", "roses"], "threshold": 0.7}
    (folder / "config.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture
def folder(tmp_path, make_image_folder):
    return make_image_folder(tmp_path / "flowers", class_names=("roses", "daisy"), per_class=5, image_size=40)


def test_json_report_matches_a_direct_computation(model_dir, folder, tiny_model, capsys):
    assert evaluate.main([str(model_dir), "--data-dir", str(folder), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == KEYS
    assert result["images"] == 10 and result["threshold"] == 0.7  # tau* from the model's metadata
    assert result["model"] == str(model_dir) and result["reference_model"] is None  # a folder, not a reference model

    # the same computation by hand: folder labels remapped to the model's label order
    images = data.load_folder(folder, 32, progress=False, min_classes=1)
    assert images.class_names == ["daisy", "roses"]
    labels = np.array([0, 2])[images.labels]
    logits, _ = collect_logits(tiny_model, data.make_dataset(images))
    expected = evaluate_threshold(logits, labels, cost.relative_costs(tiny_model), 0.7)
    np.testing.assert_allclose(result["exit_accuracy"], (logits.argmax(-1) == labels[:, None]).mean(0))
    assert result["final_accuracy"] == result["exit_accuracy"][-1]
    assert result["accuracy"] == pytest.approx(expected["accuracy"])
    np.testing.assert_allclose(result["exit_fractions"], expected["exit_fractions"])
    assert sum(result["exit_fractions"]) == pytest.approx(1.0)
    assert result["relative_cost"] == pytest.approx(expected["relative_cost"])
    assert result["predicted_speedup"] == pytest.approx(1 / result["relative_cost"])
    final_right = logits[:, -1].argmax(-1) == labels
    early_right = expected["predictions"] == labels
    assert result["final_accuracy_interval"] == pytest.approx(list(accuracy_interval(final_right)))
    assert result["accuracy_interval"] == pytest.approx(list(accuracy_interval(early_right)))
    low, high = result["accuracy_interval"]
    assert low <= result["accuracy"] <= high
    assert result["drop_p_value"] == pytest.approx(paired_test(early_right, final_right)["p_value"])


def test_threshold_zero_and_one(model_dir, folder, tiny_model):
    costs = cost.relative_costs(tiny_model)
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
