"""GRU4Rec's training-speed benchmark counts a step's arithmetic as the issue's worked example does,
and its variant runner fits and scores (on the tiny fixture data: no timing here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_benchmarks import load_benchmark

from movierec.models.gru4rec import GRU4RecConfig


def test_a_bpr_max_224_step_is_about_372_mflop():
    roofline = load_benchmark("train_throughput")
    config = GRU4RecConfig(**roofline.ROOFLINE_CONFIGS["bpr-max-224"])
    # GRU: input and recurrent matmuls 2·80·224·672 each; scoring 80 + 2,048 candidates; × 3 (backward)
    assert roofline.step_flops(config) == pytest.approx(372e6, rel=0.01)
    # a 1-of-N input is a row lookup, not a matmul
    one_hot = GRU4RecConfig(**{**roofline.ROOFLINE_CONFIGS["bpr-max-224"], "constrained_embedding": False})
    assert roofline.step_flops(config) - roofline.step_flops(one_hot) == pytest.approx(3 * 2 * 80 * 224 * 672)


def test_the_roofline_loop_computes_the_three_products_it_counts():
    """The matmul bound counts 3 products per iteration: the forward one and both gradients, each
    the product it stands for (the loop feeds an element of each on, so none is pruned)."""
    import numpy as np
    import tensorflow as tf

    roofline = load_benchmark("train_throughput")
    rng = np.random.default_rng(0)
    x, w, upstream = (rng.normal(size=shape).astype(np.float32) for shape in [(3, 4), (5, 4), (3, 5)])
    y, gx, gw = roofline.dense_forward_backward(tf.constant(x), tf.Variable(w), tf.constant(upstream))
    np.testing.assert_allclose(y.numpy(), x @ w.T, rtol=1e-5)
    np.testing.assert_allclose(gx.numpy(), upstream @ w, rtol=1e-5)
    np.testing.assert_allclose(gw.numpy(), upstream.T @ x, rtol=1e-5)


def test_rows_record_tensorflow_s_thread_settings_from_its_environment(monkeypatch):
    roofline = load_benchmark("train_throughput")
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "1")
    monkeypatch.delenv("TF_NUM_INTEROP_THREADS", raising=False)
    assert roofline.tensorflow_threads() == {"tf_num_intraop_threads": "1", "tf_num_interop_threads": None}


def test_variants_are_fitted_per_seed_and_scored_on_both_roles(fixtures_dir: Path, tmp_path: Path):
    variants = load_benchmark("gru4rec_variants")
    output = tmp_path / "rows.json"
    result = CliRunner().invoke(
        variants.main,
        [
            "--data", str(fixtures_dir / "ml-100k"),
            "--variant", 'small={"hidden_size": 8, "n_sample": 4, "batch_size": 4}',
            "--base", '{"epochs": 1}',
            "--seeds", "0,1",
            "--output", str(output),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(output.read_text())
    assert [(r["variant"], r["seed"]) for r in rows] == [("small", 0), ("small", 1)]
    for row in rows:
        assert {"validation recall@20", "test recall@20", "seconds_per_epoch"} <= set(row)
        assert 0.0 <= row["validation recall@20"] <= 1.0


def test_the_op_profile_finds_the_kernels_a_step_runs():
    import tensorflow as tf

    roofline = load_benchmark("train_throughput")
    a = tf.random.stateless_normal([64, 64], seed=[0, 1])

    @tf.function
    def step(x):
        return tf.nn.relu(tf.matmul(x, a))

    step(a)  # traced outside the profile

    def run():
        for _ in range(5):
            step(a)

    breakdown = {row["op"]: row for row in roofline.op_time_breakdown(run, steps=5)}
    assert breakdown["MatMul"]["calls_per_step"] == 1.0
    assert breakdown["Relu"]["calls_per_step"] == 1.0
    assert all(0 < row["share"] <= 1 for row in breakdown.values())
    assert sum(row["share"] for row in breakdown.values()) <= 1.001


def test_onednn_kernels_are_reported_under_the_op_they_implement():
    roofline = load_benchmark("train_throughput")
    assert roofline.op_type("model/dense/MatMul:_MklMatMul") == "MatMul"
    assert roofline.op_type("model/dense/MatMul:_MklNativeFusedMatMul") == "FusedMatMul"
    assert roofline.op_type("a/b:Relu") == "Relu"


def test_the_official_comparison_writes_our_sessions_and_settings_in_the_authors_terms():
    import numpy as np

    compare = load_benchmark("gru4rec_vs_official")
    items = np.array([7, 8, 9, 3, 4, 5, 6])
    table = compare.session_table(items, np.array([0, 4]), np.array([3, 2]))
    assert table.splitlines() == [
        "SessionId\tItemId\tTime",
        "0\t7\t0",
        "0\t8\t1",
        "0\t9\t2",
        "1\t4\t3",
        "1\t5\t4",
    ]
    config = GRU4RecConfig(loss="bpr-max", hidden_size=224, batch_size=80, n_sample=2048, elu_param=0.5)
    params = compare.official_params(config, epochs=3)
    assert params["layers"] == [224] and params["n_epochs"] == 3 and params["loss"] == "bpr-max"
    assert (params["batch_size"], params["n_sample"], params["elu_param"]) == (80, 2048, 0.5)
    assert (
        params["dropout_p_hidden"] == config.dropout_hidden and params["sample_alpha"] == config.sample_alpha
    )
    with pytest.raises(ValueError, match="one GRU layer"):
        compare.official_params(GRU4RecConfig(n_layers=2), epochs=1)
    log = (
        "Epoch1 --> loss: 0.512345 \t(4.62s) \t[10.0 mb/s | 900 e/s]\nEpoch2 --> loss: 0.4 \t(4.70s) \t[x]\n"
    )
    assert [float(m.group(3)) for m in compare.EPOCH_LINE.finditer(log)] == [4.62, 4.70]
    # ours' first epoch also traces and compiles: the later epochs compare on their own
    assert compare.later_epochs_speedup([3.0, 2.0, 2.0], [5.0, 4.0, 4.4]) == {
        "speedup_after_first_epoch": 2.1
    }
    assert compare.later_epochs_speedup([3.0], [5.0]) == {}
    runs = [
        {"speedup": 1.5, "speedup_after_first_epoch": 2.0},
        {"speedup": 2.5, "speedup_after_first_epoch": 1.0},
    ]
    runs.append({"speedup": 1.8})  # a one-epoch run has no later-epochs figure: that median is left out
    assert compare.median_speedups(runs) == {"median_speedup": 1.8}
    assert compare.median_speedups(runs[:2]) == {
        "median_speedup": 2.0,
        "median_speedup_after_first_epoch": 1.5,
    }
