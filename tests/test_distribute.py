"""Training under tf.distribute.MirroredStrategy matches single-device training.

Two logical CPU devices must be configured before TensorFlow starts, so the
comparison runs in a fresh process.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np

SCRIPT = textwrap.dedent(
    """
    import dataclasses, json, sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from helpers import data, train
    from helpers.experiments import Experiment

    out = sys.argv[1]
    splits = data.split_dataset(data.synthetic_images(16, 3, 32, seed=1), seed=0)
    single = Experiment("dist-test", "tiny", head="pool", image_size=32, width=0.125, epochs=1, batch_size=16)
    mirrored = dataclasses.replace(single, batch_size=8)  # per replica: 2 x 8 = the same global batch
    result = {}
    for name, exp in (("default", single), ("mirrored", mirrored)):
        run = train.train(exp, f"{out}/{name}", splits=splits, strategy=name, verbose=0)
        result[name] = {
            "replicas": run.config["replicas"],
            "global_batch_size": run.config["global_batch_size"],
            "loss": run.history["loss"].tolist(),
            "val_loss": run.history["val_loss"].tolist(),
        }
    print(json.dumps(result))
    """
)


def test_mirrored_strategy_over_two_cpus_matches_single_device(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["default"]["replicas"] == 1
    assert result["mirrored"]["replicas"] == 2
    assert result["mirrored"]["global_batch_size"] == result["default"]["global_batch_size"] == 16
    # Same initial weights, same batches, synchronised batch norm; dropout masks differ per
    # replica and sums are reduced in another order, so the losses agree closely, not bit for bit.
    np.testing.assert_allclose(result["mirrored"]["loss"], result["default"]["loss"], rtol=0.03)
    np.testing.assert_allclose(result["mirrored"]["val_loss"], result["default"]["val_loss"], rtol=0.03)
