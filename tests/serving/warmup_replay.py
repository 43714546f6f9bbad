"""Shared by the serving tests: an export's warmup file replayed in a fresh process, as TF Serving
replays it when it loads the version."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

REPLAY = textwrap.dedent(
    """
    import pickle, sys
    import tensorflow as tf
    from movierec.serving.warmup import read_warmup, replay

    loaded = tf.saved_model.load(sys.argv[1])
    logs = read_warmup(sys.argv[1])

    def snapshot():
        if not hasattr(loaded, "state_snapshot"):
            return None
        return {k: v.numpy() for k, v in loaded.state_snapshot().items()}

    before = snapshot()
    answers = replay(loaded, logs)
    out = {
        "signatures": sorted(loaded.signatures),
        "requested": [log.predict_log.request.model_spec.signature_name for log in logs],
        "model_names": sorted({log.predict_log.request.model_spec.name for log in logs}),
        "requests": [log.predict_log.request.SerializeToString() for log in logs],
        "answers": answers,
        "before": before,
        "after": snapshot(),
    }
    print(pickle.dumps(out).hex())
    """
)


def replay_in_fresh_process(export_dir: str) -> dict:
    """{signatures, requested (signature per warmup record), model_names, requests (serialized
    PredictRequests), answers, before/after (state snapshots, for models that have one)}."""
    done = subprocess.run([sys.executable, "-c", REPLAY, export_dir], capture_output=True, text=True, cwd="/")
    assert done.returncode == 0, done.stderr[-3000:]
    return pickle.loads(bytes.fromhex(done.stdout.strip().splitlines()[-1]))


def assert_one_replayable_request_per_signature(replayed: dict) -> None:
    assert sorted(replayed["requested"]) == replayed["signatures"]
    assert len(replayed["answers"]) == len(replayed["requested"])
    assert all(replayed["answers"])  # every request answered, none with an error
