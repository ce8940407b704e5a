"""The training command survives ``kill -9``: started again, it resumes and finishes."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd

EPOCHS = 4


def _history_rows(work) -> int:
    path = work / "history.csv"
    try:
        return len(pd.read_csv(path)) if path.exists() and path.stat().st_size else 0
    except (pd.errors.EmptyDataError, pd.errors.ParserError):
        return 0  # caught mid-write


def test_kill_9_then_same_command_resumes(tmp_path, make_image_folder):
    folder = make_image_folder(tmp_path / "flowers", per_class=30, image_size=48)
    out = tmp_path / "run"
    command = [sys.executable, "-m", "helpers.train", "--experiment", "flowers-vgg11-plain-96px", "--out", str(out),
               "--data-dir", str(folder), "--quick", "--epochs", str(EPOCHS)]
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = out / ".in-progress"
    deadline = time.monotonic() + 300
    while _history_rows(work) < 1 or not (work / "backup").exists():
        assert proc.poll() is None, "training ended before it could be killed"
        assert time.monotonic() < deadline, "no epoch finished in 300 s"
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _history_rows(work)
    assert 1 <= done < EPOCHS
    assert not (out / "model.keras").exists()  # nothing half-written in place of a model

    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resuming the unfinished run" in result.stdout
    history = pd.read_csv(out / "history.csv")
    assert history["epoch"].drop_duplicates().tolist() == list(range(EPOCHS))
    assert json.loads((out / "config.json").read_text())["finished"] is True
    assert (out / "model.keras").exists() and not work.exists()
