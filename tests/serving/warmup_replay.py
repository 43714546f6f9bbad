"""Shared by the serving tests: an export's warmup file replayed in a fresh process, as TF Serving
replays it when it loads the version."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import numpy as np

# Lines for a fresh-process script that has `export_dir` and `loaded` (the SavedModel): the replay's
# findings in `replayed`. The export tests add them to the scripts they already run in a fresh process.
REPLAY_LINES = textwrap.dedent(
    """
    from movierec.serving.session_servable import SessionServable
    from movierec.serving.warmup import read_warmup, replay as replay_warmup

    def warmup_snapshot():
        if not hasattr(loaded, "state_snapshot"):
            return None
        return {k: v.numpy() for k, v in loaded.state_snapshot().items()}

    warmup_logs = read_warmup(export_dir)
    warmup_before = warmup_snapshot()
    replayed = {
        "signatures": sorted(loaded.signatures),
        "requested": [log.predict_log.request.model_spec.signature_name for log in warmup_logs],
        "model_names": sorted({log.predict_log.request.model_spec.name for log in warmup_logs}),
        "requests": [log.predict_log.request.SerializeToString() for log in warmup_logs],
        "answers": replay_warmup(loaded, warmup_logs),
        "before": warmup_before,
        "after": warmup_snapshot(),
    }
    # the same requests on the export loaded as TF Serving loads it (MetaGraph, restore op, Session)
    session_servable = SessionServable(export_dir)
    replayed["session_signatures"] = session_servable.signatures
    replayed["session_answers"] = replay_warmup(session_servable, warmup_logs)
    """
)

REPLAY = (
    textwrap.dedent(
        """
    import pickle, sys
    import tensorflow as tf

    export_dir = sys.argv[1]
    loaded = tf.saved_model.load(export_dir)
    """
    )
    + REPLAY_LINES
    + "print(pickle.dumps(replayed).hex())\n"
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
    # TF Serving's loader (session, restore op) runs every signature and answers as tf.saved_model.load
    assert replayed["session_signatures"] == replayed["signatures"]
    for python, session in zip(replayed["answers"], replayed["session_answers"], strict=True):
        assert sorted(python) == sorted(session)
        for name, value in python.items():
            if value.dtype.kind == "f":
                np.testing.assert_allclose(session[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
            else:
                np.testing.assert_array_equal(session[name], value, err_msg=name)
