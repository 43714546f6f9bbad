"""One Keras: after tensorflow_transform flips TF_USE_LEGACY_KERAS, every model is still Keras 3."""

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, os
    import tensorflow_transform  # noqa: F401  (sets TF_USE_LEGACY_KERAS=1, as in the TFX Trainer)
    import numpy as np
    import tensorflow as tf
    import keras
    from movierec.models import MODELS, TrainingData, UserSequences, build_model

    n_users, n_items, per = 8, 12, 6
    items = np.concatenate([(np.arange(per) + u) % n_items for u in range(n_users)]).astype(np.int32)
    seq = UserSequences(np.arange(0, n_users * per + 1, per, dtype=np.int64), items,
                        np.full(len(items), 4.0, np.float32), np.arange(len(items), dtype=np.int64),
                        np.tile(np.r_[True, np.zeros(per - 1, bool)], n_users))
    report = {"legacy_flag": os.environ.get("TF_USE_LEGACY_KERAS"), "keras": keras.__version__,
              "tf_keras": tf.keras.__name__, "models": {}}
    for name in MODELS:
        model = build_model(name, **({"epochs": 1} if "epochs" in build_model(name).get_config() else {}))
        model.fit(TrainingData(n_users, n_items, seq))
        inner = getattr(model, "keras_model", None)
        if inner is not None:
            report["models"][name] = {"keras3": isinstance(inner, keras.Model),
                                      "legacy": isinstance(inner, tf.keras.Model),
                                      "module": type(inner).__mro__[1].__module__}
    print(json.dumps(report))
""")


def test_models_stay_keras_3_after_tensorflow_transform_is_imported():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, cwd="/")
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["legacy_flag"] == "1"  # the trap is real in this environment
    assert report["keras"].startswith("3.") and report["tf_keras"].startswith(
        "tf_keras"
    )  # tf.keras is Keras 2
    assert {"bpr-mf", "mf", "gru4rec"} <= set(report["models"])
    for name, kinds in report["models"].items():
        assert kinds["keras3"] and not kinds["legacy"], (name, kinds)
