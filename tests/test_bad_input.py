"""Bad input: every case gives a clear one-line message (no traceback) or is handled.

=====================================================  ==============================================
case                                                   behaviour (tested here or in the file named)
=====================================================  ==============================================
missing data folder                                    ``DataError`` "does not exist"; CLIs: one line, exit 2
folder with no class folders / only one class          ``DataError`` (test_data.py); training CLI: exit 2
empty class folder / class folder with no images       ``DataError`` "holds no images"
corrupt (truncated) JPEG                               ``DataError`` naming the file
zero-byte file                                         ``DataError`` "empty file", naming it
non-image file                                         ignored unless named like an image; then ``DataError``
PNG, grayscale, palette, RGBA, CMYK images             converted to RGB, not rejected (test_data.py)
images of unexpected size fed to an exported model     error naming the expected size (test_export.py)
threshold outside [0, 1] or NaN                        ``ValueError``; evaluate CLI: one line, exit 2
per-exit thresholds: wrong count, out of range         one line saying how many or the range, exit 2 (test_evaluate.py)
``--exits``: unknown, the final classifier, repeated   ``ValueError`` naming the exits (test_models.py); CLIs: one line, exit 2
``--exits``, no threshold, no validation images        evaluate: one line naming --val-dir and --threshold, exit 2 (test_evaluate.py)
loss weights of the wrong length                       ``ValueError`` saying how many (test_losses.py)
unknown experiment / reference-model name              one line listing the known names, exit 2
class folder unknown to the model (evaluate)           one line listing the model's classes, exit 2
``--baseline`` of other classes (evaluate)             one line naming both, before any image is read, exit 2 (test_evaluate.py)
evaluate: accuracy target outside [0, 1], cost <= 0    one line, exit 2 (test_evaluate.py)
publishing a model.keras over 15 MB                    ``ValueError`` with its size; nothing written (test_registry.py)
.npz missing an array, wrong dtype or shape            ``DataError`` naming the array
dataset with only one class                            ``DataError`` (training needs two classes)
NaN or infinite logits reaching the exit rule          entropy 1: the sample never leaves early (test_policies.py)
a failed or interrupted run                            earlier finished run and its files untouched (test_train.py)
=====================================================  ==============================================
"""

import json

import numpy as np
import pytest

from helpers import data, evaluate, train
from helpers.policies import check_threshold


@pytest.fixture
def model_dir(tmp_path, tiny_model):
    """A run folder with a tiny 3-class model and its class names."""
    folder = tmp_path / "model"
    folder.mkdir()
    tiny_model.save(folder / "model.keras")
    (folder / "config.json").write_text(json.dumps({"class_names": ["daisy", "dandelion", "roses"]}))
    return folder


def _one_line_error(capsys) -> str:
    """The error line the command printed last on stderr (a progress bar may come before it)."""
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "Traceback" not in err, err
    return last


def test_train_cli_missing_data_folder(tmp_path, capsys):
    code = train.main(["--experiment", "flowers-vgg11-plain-96px", "--out", str(tmp_path / "run"),
                       "--data-dir", str(tmp_path / "nowhere"), "--quick"])
    assert code == 2
    assert "does not exist" in _one_line_error(capsys)
    assert not (tmp_path / "run" / "model.keras").exists()


def test_train_cli_one_class_only(tmp_path, capsys, make_image_folder):
    folder = make_image_folder(tmp_path / "flowers", class_names=("daisy",))
    code = train.main(["--experiment", "flowers-vgg11-plain-96px", "--out", str(tmp_path / "run"),
                       "--data-dir", str(folder), "--quick"])
    assert code == 2
    assert "at least 2 classes" in _one_line_error(capsys)


def test_train_cli_unknown_experiment(tmp_path, capsys):
    assert train.main(["--experiment", "flowers-resnet", "--out", str(tmp_path)]) == 2
    assert "known experiments: flowers-vgg11-96px" in _one_line_error(capsys)


@pytest.mark.parametrize("threshold", ["-0.1", "1.5", "nan"])
def test_evaluate_cli_threshold_out_of_range(threshold, model_dir, flower_folder, capsys):
    code = evaluate.main([str(model_dir), "--data-dir", str(flower_folder), "--threshold", threshold])
    assert code == 2
    assert "threshold must be a number in [0, 1]" in _one_line_error(capsys)


def test_evaluate_cli_unknown_model_name(flower_folder, capsys):
    assert evaluate.main(["flowers-alexnet", "--data-dir", str(flower_folder)]) == 2
    assert "no model file, run folder or reference model called 'flowers-alexnet'" in _one_line_error(capsys)


def test_evaluate_cli_class_unknown_to_the_model(model_dir, flower_folder, capsys):
    # the folder has 5 flower classes, the model knows 3 of them
    assert evaluate.main([str(model_dir), "--data-dir", str(flower_folder)]) == 2
    err = _one_line_error(capsys)
    assert "sunflowers, tulips unknown to the model" in err and "daisy, dandelion, roses" in err


def test_evaluate_cli_empty_class_folder(model_dir, tmp_path, capsys, make_image_folder):
    folder = make_image_folder(tmp_path / "flowers", class_names=("daisy", "roses"))
    for f in (folder / "roses").iterdir():
        f.unlink()
    assert evaluate.main([str(model_dir), "--data-dir", str(folder)]) == 2
    assert "holds no images" in _one_line_error(capsys)


@pytest.mark.parametrize("content", [b"", b"not a picture at all", b"\xff\xd8\xff\xe0" + b"\x00" * 20])
def test_evaluate_cli_unreadable_file_is_named(content, model_dir, tmp_path, capsys, make_image_folder):
    folder = make_image_folder(tmp_path / "flowers", class_names=("daisy", "roses"))
    (folder / "roses" / "broken.jpg").write_bytes(content)
    assert evaluate.main([str(model_dir), "--data-dir", str(folder)]) == 2
    assert "broken.jpg" in _one_line_error(capsys)


def test_evaluate_cli_one_class_folder_is_fine(model_dir, tmp_path, capsys, make_image_folder):
    folder = make_image_folder(tmp_path / "flowers", class_names=("roses",), per_class=3)
    assert evaluate.main([str(model_dir), "--data-dir", str(folder), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 3


def test_non_image_files_are_ignored(tmp_path, make_image_folder):
    folder = make_image_folder(tmp_path / "flowers", class_names=("daisy", "roses"), per_class=2)
    (folder / "daisy" / "notes.txt").write_text("picked on Tuesday")
    files, _, _ = data.find_image_files(folder)
    assert len(files) == 4 and all(f.suffix == ".jpg" for f in files)


@pytest.mark.parametrize("value", [-0.5, 1.0001, float("nan"), float("inf")])
def test_threshold_validation(value):
    with pytest.raises(ValueError, match=r"threshold must be a number in \[0, 1\]"):
        check_threshold(value)


def _npz(path, **overrides):
    arrays = {
        "x_train": np.zeros((4, 8, 8, 3), np.uint8), "y_train": np.array([0, 1, 0, 1]),
        "x_test": np.zeros((2, 8, 8, 3), np.uint8), "y_test": np.array([[1], [0]]),
    }
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_npz_good_file_loads(tmp_path):
    train_set, test_set = data.load_npz(_npz(tmp_path / "ok.npz"), ["cat", "dog"])
    assert train_set.images.shape == (4, 8, 8, 3) and test_set.labels.tolist() == [1, 0]
    assert train_set.class_names == ["cat", "dog"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"y_test": None}, "lacks array\\(s\\) y_test"),
        ({"x_train": np.zeros((4, 8, 8, 3), np.float32)}, "x_train in .* must be uint8"),
        ({"x_train": np.zeros((4, 8, 8), np.uint8)}, "x_train in .* must be uint8 \\(N, H, H, 3\\)"),
        ({"y_train": np.array([0, 1, 0])}, "y_train in .* one integer label per image \\(4\\)"),
        ({"y_train": np.array([0.0, 1.0, 0.0, 1.0])}, "y_train in .* one integer label per image"),
    ],
)
def test_npz_problems_are_named(tmp_path, overrides, message):
    with pytest.raises(data.DataError, match=message):
        data.load_npz(_npz(tmp_path / "bad.npz", **overrides))


def test_npz_missing_or_not_an_npz(tmp_path):
    with pytest.raises(data.DataError, match="does not exist"):
        data.load_npz(tmp_path / "none.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(data.DataError, match="not a readable .npz"):
        data.load_npz(tmp_path / "text.npz")


def test_train_cli_bad_npz(tmp_path, capsys):
    bad = _npz(tmp_path / "bad.npz", x_test=np.zeros((2, 8, 8, 3), np.int64))
    code = train.main(["--experiment", "flowers-vgg11-plain-96px", "--out", str(tmp_path / "run"),
                       "--data-npz", str(bad), "--quick"])
    assert code == 2
    assert "x_test in" in _one_line_error(capsys)
    assert not (tmp_path / "run" / "model.keras").exists()
