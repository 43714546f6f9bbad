"""GPU readiness of the GRU4Rec export: every op its serving signatures run has a GPU kernel in the
installed TensorFlow, except the listed host ops (parsing, lookup tables, strings: gpu_kernels.py).
The rating models' exports are checked in their own test files with the same lists."""

import pytest
from gpu_kernels import assert_gpu_ready

pytestmark = pytest.mark.slow  # the shared GRU4Rec export (Transform on Beam, a training epoch)


def test_every_op_of_the_gru4rec_signatures_has_a_gpu_kernel_or_is_a_listed_host_op(gru4rec):
    ops = assert_gpu_ready(
        gru4rec.export_dir, ("serving_default", "recommend", "update_state", "transform_features")
    )
    # the compute really is in the checked graph: the GRU loop (stateless: the weights are read
    # before it), the scores, the top-k, the masks
    assert {
        "StatelessWhile",
        "MatMul",
        "TopKV2",
        "ScatterNd",
        "TensorScatterUpdate",
        "UnsortedSegmentSum",
    } <= ops
    # no ragged kernels on the request path (RaggedTensorToTensor, RaggedRange have no GPU kernels)
    assert not {op for op in ops if op.startswith("Ragged")}
