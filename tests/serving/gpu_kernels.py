"""Shared by the serving tests: which ops a SavedModel's signatures run, and whether the installed
TensorFlow registers a GPU kernel for each (for the node's own attribute types)."""

from __future__ import annotations

import functools
import os

import tensorflow as tf

# Ops that run on the host by design, the README's list: parsing requests, Transform's lookup tables,
# string handling (TF has no GPU string kernels: string tensors live in host memory), and reading
# the server's clock (RRN's update_state bounds future timestamps).
HOST_OPS = {
    # parsing the request
    "ParseExampleV2": "parses serialized tf.Examples",
    # Transform's vocabularies (raw ids → indices)
    "HashTableV2": "lookup table",
    "InitializeTableFromTextFileV2": "lookup table (reads the vocabulary asset)",
    "LookupTableFindV2": "lookup table",
    "LookupTableSizeV2": "lookup table",
    "StringToHashBucketFast": "Transform's OOV bucket of a string",
    # strings: the raw ids in and out, Transform's title words (LSTM+CNN)
    "StringJoin": "string",
    "StaticRegexFullMatch": "string",
    "StaticRegexReplace": "string parsing (title words)",
    "StringLower": "string parsing (title words)",
    "StringSplitV2": "string parsing (title words)",
    "StringStrip": "string parsing (title words)",
    # the clock
    "Timestamp": "reads the host's clock",
}


# Ops that move or compare string tensors (the raw ids in requests and answers): TensorFlow has no GPU
# kernels for strings, whose tensors stay in host memory; these ops have GPU kernels for numbers only.
STRING_OPS = {
    "ConcatV2",
    "Const",
    "Fill",
    "GatherV2",
    "NotEqual",
    "Reshape",
    "SelectV2",
    "Size",
    "SparseToDense",
}

# Compute ops of the rating models' graphs that have no GPU kernel for the dtypes they use (issue 13).
# The tests require exactly these, so a new one fails them and so does a fix (then shorten the list).
# None is left: LSTM+CNN's graph gathers int64 copies of its int32 tables (serving/lstm_cnn_graph.py),
# and Transform's title words and genres are sparse ops and scatters, not ragged ones
# (pipeline/modules/transform.py).
KNOWN_GAPS = {"iarn": set(), "lstm-cnn": set()}


def signature_nodes(export_dir: str, names) -> list:
    """Every node of the functions the signatures `names` run (transitively: calls, loop bodies,
    branches), from the SavedModel's function library."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    meta = proto.meta_graphs[0]
    functions = {f.signature.name: f for f in meta.graph_def.library.function}
    nodes = {n.name: n for n in meta.graph_def.node}
    pending = [
        nodes[tensor.name.split(":")[0]].attr["f"].func.name
        for name in names
        for tensor in meta.signature_def[name].outputs.values()
        if tensor.name  # composite outputs have no tensor name (none remain: dense_outputs)
    ]
    seen, found = set(), []
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in functions[name].node_def:
            found.append(node)
            for value in node.attr.values():
                pending += [value.func.name] if value.HasField("func") else [f.name for f in value.list.func]
    return found


@functools.cache
def device_kernels(op: str) -> tuple:
    """The op's GPU and device-agnostic kernels (TensorFlow serializes the whole list per call: once)."""
    from tensorflow.python.framework import kernels

    return tuple(
        k for k in kernels.get_registered_kernels_for_op(op).kernel if k.device_type in ("GPU", "DEFAULT")
    )


def has_gpu_kernel(node) -> bool:
    """A GPU (or device-agnostic) kernel is registered for the node's op and its attribute types."""
    for kernel in device_kernels(node.op):
        for constraint in kernel.constraint:
            value = node.attr.get(constraint.name)
            types = [] if value is None else [value.type] if value.HasField("type") else list(value.list.type)
            if not set(types) <= set(constraint.allowed_values.list.type):
                break
        else:
            return True
    return False


def host_only_ops(export_dir: str, names) -> dict[str, set[str]]:
    """{"unlisted": ops without a GPU kernel that are neither in HOST_OPS nor on strings,
    "strings": ops without a GPU kernel for their string tensors (TF keeps strings on the host)}."""
    strings = {tf.string.as_datatype_enum}
    found = {"unlisted": set(), "strings": set()}
    for node in signature_nodes(export_dir, names):
        if has_gpu_kernel(node) or node.op in HOST_OPS:
            continue
        on_strings = strings & {v.type for v in node.attr.values()} or any(
            strings & set(v.list.type) for v in node.attr.values()
        )
        found["strings" if on_strings else "unlisted"].add(node.op)
    return found


def assert_gpu_ready(export_dir: str, names, known_gaps=frozenset()) -> set[str]:
    """Every op of the signatures `names` has a GPU kernel, or is a listed host op (HOST_OPS), or
    moves strings (STRING_OPS), or is one of the model's `known_gaps` (all of which must still be
    there); returns the ops found, for further checks."""
    found = host_only_ops(export_dir, names)
    assert found["unlisted"] == set(known_gaps), f"ops without a GPU kernel: {sorted(found['unlisted'])}"
    assert found["strings"] <= set(STRING_OPS), (
        f"string ops not listed: {sorted(found['strings'] - STRING_OPS)}"
    )
    return {node.op for node in signature_nodes(export_dir, names)}
