"""GRU4Rec under tf.distribute.MirroredStrategy, as the TFX Trainer fits it: two logical CPUs stand in
for two GPUs. Logical devices must be configured before TensorFlow initialises its devices, so the
training runs in a fresh interpreter and this test process stays clean."""

import json
import math
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import numpy as np
    from movierec.models import QueryBatch, TrainingData, UserSequences, build_model
    from movierec.pipeline.modules.trainer import distribution_strategy

    # every user watches a run of consecutive items: item i is always followed by item i + 1
    n_users, n_items, length = 60, 30, 8
    rng = np.random.default_rng(0)
    items = np.concatenate([np.arange(s, s + length) for s in rng.integers(0, n_items - length, n_users)])
    indptr = np.arange(0, n_users * length + 1, length, dtype=np.int64)
    starts = np.zeros(len(items), bool)
    starts[indptr[:-1]] = True
    seq = UserSequences(indptr, items.astype(np.int32), np.full(len(items), 4.0, np.float32),
                        np.arange(len(items), dtype=np.int64), starts)
    data = TrainingData(n_users, n_items, seq)
    hparams = dict(hidden_size=32, batch_size=8, n_sample=8, learning_rate=0.1, loss="cross-entropy")

    strategy = distribution_strategy("mirrored")  # MirroredStrategy over the two logical CPUs
    with strategy.scope():
        model = build_model("gru4rec", epochs=20, **hparams).fit(data)
    # scored outside the scope, as the Trainer evaluates: predict the 5th event from the first 4
    users = np.arange(n_users)
    batch = QueryBatch(users, np.full(n_users, 4), np.zeros_like(users), seq)
    expected = seq.items[seq.indptr[:-1] + 4]
    recall = float(np.mean(model.score(batch).argmax(axis=1) == expected))

    with strategy.scope():
        try:
            build_model("gru4rec", **{**hparams, "batch_size": 7, "epochs": 1}).fit(data)
            error = None
        except ValueError as e:
            error = str(e)

    # a one-replica MirroredStrategy (one GPU, or a CPU-only Trainer) still has mirrored variables:
    # it must train too, and with one replica holding every lane it matches the default strategy
    one = tf.distribute.MirroredStrategy([tf.config.list_logical_devices("CPU")[0].name])
    with one.scope():
        mirrored_one = build_model("gru4rec", epochs=2, **hparams).fit(data).training_log["epoch_losses"]
    default = build_model("gru4rec", epochs=2, **hparams).fit(data).training_log["epoch_losses"]

    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "losses": model.training_log["epoch_losses"],
                      "recall_at_1": recall, "error": error, "one_replica": one.num_replicas_in_sync,
                      "mirrored_one": mirrored_one, "default": default}))
""")


def test_gru4rec_trains_under_a_two_replica_mirrored_strategy():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd="/", timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])

    assert report["replicas"] == 2
    losses = report["losses"]
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < 0.5 * losses[0]
    assert report["recall_at_1"] > 0.8  # the next item of the successor pattern

    # each replica takes batch_size / replicas lanes: an uneven split is refused, with the reason
    assert report["error"] is not None and "batch_size=7" in report["error"]
    assert "not divisible by the 2 replicas" in report["error"]

    assert report["one_replica"] == 1
    assert report["mirrored_one"] == report["default"]
