"""A client for the models movierec pushes to TF Serving, over REST or gRPC.

Requests are built per signature (`examples_request`, `recommend_request`, `session_request`
(GRU4Rec's `update_state`), `rating_request`, `rating_recommend_request`, `update_state_request`
(RRN's), `explain_request`: typed arguments in, a
`Request` of numpy inputs out) and sent by either transport:

    client = RestClient("http://localhost:8501", "gru4rec")            # or GrpcClient("localhost:8500", …)
    answer = client.predict(recommend_request([["50", "181", "258"]], k=10))
    answer["item_ids"], answer["scores"], answer["unknown_ids"]        # numpy arrays
    client.status(), client.metadata()

- REST (TF Serving's documented API): `POST /v1/models/<name>[/versions/<N>]:predict` in the row
  format (`{"signature_name", "instances": [...]}`, every input batched: one instance per row) or the
  columnar one (`{"signature_name", "inputs": {...}}`, needed when an input is a scalar, e.g. IARN's
  `explain`); binary strings (serialized Examples) are sent as `{"b64": …}`. `GET
  /v1/models/<name>[/versions/<N>]` (status) and `…/metadata` (the signatures).
- gRPC (`tensorflow-serving-api`): `PredictionService.Predict` and `GetModelMetadata`,
  `ModelService.GetModelStatus`.

Every call has a timeout and retries with exponential backoff (`backoff`, ×2 per attempt) when the
server answers UNAVAILABLE (gRPC) or HTTP 503 (REST) — a server that is loading or shedding load —
and only then: any other failure raises `ServingError` at once, naming the model, the signature and
the transport, and quoting TF Serving's own error message.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from movierec.serving.warmup import example

DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.1


class ServingError(RuntimeError):
    """TF Serving refused or failed a request; the message quotes its answer."""

    def __init__(self, message: str, *, status: int | str | None = None, answer: str = ""):
        super().__init__(message)
        self.status, self.answer = status, answer


@dataclasses.dataclass(frozen=True)
class Request:
    """One Predict call: the signature and its inputs (numpy arrays; strings as object arrays)."""

    signature: str
    inputs: dict[str, np.ndarray]

    def batched(self) -> bool:
        """Whether every input has the same leading (batch) dimension: the row format needs it."""
        sizes = {value.shape[0] if value.ndim else None for value in self.inputs.values()}
        return len(sizes) == 1 and None not in sizes


# -- request builders, one per signature ----------------------------------------------------------------


def _strings(rows: Sequence[Sequence[str]], field: str) -> np.ndarray:
    """Rows of strings → [B, T] object array padded with "" (the padding `recommend` ignores)."""
    rows = [[str(v) for v in row] for row in rows]
    if any("" in row for row in rows):
        raise ValueError(f"{field}: an empty id is the padding, not an id")
    width = max((len(row) for row in rows), default=0)
    return np.array([row + [""] * (width - len(row)) for row in rows], dtype=object).reshape(len(rows), width)


def examples_request(
    item_ids: Sequence[Sequence[str]], timestamps: Sequence[Sequence[int]] | None = None
) -> Request:
    """GRU4Rec's `serving_default`: one tf.Example per history (raw item ids, optionally one timestamp
    each, int seconds)."""
    if timestamps is not None and len(timestamps) != len(item_ids):
        raise ValueError(f"timestamps: {len(timestamps)} rows for {len(item_ids)} rows of item_ids")
    rows = []
    for n, items in enumerate(item_ids):
        features: dict[str, Any] = {"item_ids": [str(i) for i in items]}
        if timestamps is not None and len(timestamps[n]):
            if len(timestamps[n]) != len(items):
                raise ValueError(f"timestamps: row {n} has {len(timestamps[n])} for {len(items)} item_ids")
            features["timestamps"] = [int(t) for t in timestamps[n]]
        rows.append(example(features))
    return Request("serving_default", {"examples": np.array(rows, dtype=object)})


def recommend_request(
    item_ids: Sequence[Sequence[str]],
    k: int | Sequence[int] = 10,
    timestamps: Sequence[Sequence[int]] | None = None,
    exclude: Sequence[Sequence[str]] | None = None,
) -> Request:
    """GRU4Rec's `recommend`: histories of raw item ids (padded with "" to one width), optional
    timestamps (one per item), `k` (one for all rows or one per row), optional ids to exclude."""
    items = _strings(item_ids, "item_ids")
    n = len(item_ids)
    if timestamps is None:
        times = np.zeros((n, 0), np.int64)
    else:
        if len(timestamps) != n:
            raise ValueError(f"timestamps: {len(timestamps)} rows for {n} rows of item_ids")
        times = np.full(items.shape, -1, np.int64)
        for row, values in enumerate(timestamps):
            if len(values) != len(item_ids[row]):
                raise ValueError(f"timestamps: row {row} has {len(values)} for {len(item_ids[row])} item_ids")
            times[row, : len(values)] = values
    ks = np.full(n, k, np.int32) if np.isscalar(k) else np.asarray(k, np.int32)
    if ks.shape != (n,):
        raise ValueError(f"k: one value, or one per row ({n}), got {ks.shape[0]}")
    excluded = _strings(exclude, "exclude") if exclude is not None else np.zeros((n, 0), dtype=object)
    if excluded.shape[0] != n:
        raise ValueError(f"exclude: {excluded.shape[0]} rows for {n} rows of item_ids")
    return Request("recommend", {"item_ids": items, "timestamps": times, "k": ks, "exclude": excluded})


def session_request(
    item_ids: Sequence[Sequence[str]],
    previous: Mapping[str, np.ndarray] | None = None,
    k: int | Sequence[int] = 10,
    timestamps: Sequence[Sequence[int]] | None = None,
    exclude: Sequence[Sequence[str]] | None = None,
) -> Request:
    """GRU4Rec's `update_state`: each row's NEW events (as `recommend_request` takes a history) on top
    of `previous`, an earlier answer of this signature (its `state`, `session_length` and
    `last_timestamp` are sent back; None: every row a new session). Earlier items are not excluded
    unless given in `exclude`."""
    base = recommend_request(item_ids, k, timestamps, exclude)
    n = len(item_ids)
    if previous is None:
        state = np.zeros((n, 0), np.float32)
        length, last = np.zeros(n, np.int32), np.full(n, -1, np.int64)
    else:
        missing = [f for f in ("state", "session_length", "last_timestamp") if f not in previous]
        if missing:
            raise ValueError(f"previous: an update_state answer has {missing}; this one lacks them")
        state = np.asarray(previous["state"], np.float32)
        length = np.asarray(previous["session_length"], np.int32)
        last = np.asarray(previous["last_timestamp"], np.int64)
        if state.ndim != 2 or state.shape[0] != n or length.shape != (n,) or last.shape != (n,):
            raise ValueError(f"previous: its state holds {state.shape[0]} rows for {n} rows of item_ids")
    return Request(
        "update_state", {**base.inputs, "state": state, "session_length": length, "last_timestamp": last}
    )


def rating_request(
    events: Sequence[tuple[str, str] | tuple[str, str, int | None]], signature: str = "predict_rating"
) -> Request:
    """A rating model's `predict_rating` (or `serving_default`): (user id, item id[, timestamp]) per
    row; no timestamp means the model's latest time."""
    rows = []
    for event in events:
        user, item, *rest = event
        features: dict[str, Any] = {"user_id": str(user), "item_id": str(item)}
        if rest and rest[0] is not None:
            features["timestamp"] = int(rest[0])
        rows.append(example(features))
    return Request(signature, {"examples": np.array(rows, dtype=object)})


def rating_recommend_request(user_ids: Sequence[str], k: int | Sequence[int] = 10) -> Request:
    """A rating model's or LSIC's `recommend`: raw user ids and `k` (one for all rows or one per row),
    sent per row ([B]) so that either REST format and TF Serving's server-side batching take it."""
    users = np.array([str(u) for u in user_ids], dtype=object).reshape(len(user_ids))
    ks = np.full(len(users), k, np.int32) if np.isscalar(k) else np.asarray(k, np.int32)
    if ks.shape != users.shape:
        raise ValueError(f"k: one value, or one per row ({len(users)}), got {ks.size}")
    return Request("recommend", {"user_id": users, "k": ks})


def update_state_request(events: Sequence[tuple[str, str, float, int]]) -> Request:
    """RRN's `update_state`: (user id, item id, rating, timestamp) per event."""
    users, items, ratings, times = zip(*events, strict=True) if events else ((), (), (), ())
    return Request(
        "update_state",
        {
            "user_id": np.array([str(u) for u in users], dtype=object),
            "item_id": np.array([str(i) for i in items], dtype=object),
            "rating": np.array(ratings, np.float32),
            "timestamp": np.array(times, np.int64),
        },
    )


def explain_request(user_id: str, item_id: str, timestamp: int = -1) -> Request:
    """IARN's `explain`: one (user, item) pair; a negative timestamp means the model's latest time."""
    return Request(
        "explain",
        {
            "user_id": np.array(str(user_id), dtype=object),
            "item_id": np.array(str(item_id), dtype=object),
            "timestamp": np.int64(timestamp),
        },
    )


# -- transports -----------------------------------------------------------------------------------------


def _retrying(call: Callable[[], Any], retryable: Callable[[Exception], bool], retries: int, backoff: float):
    """`call()`, again after backoff·2^n seconds while it fails with a retryable error (`retries`
    more attempts at most); any other error, or the last retryable one, propagates."""
    for attempt in range(retries + 1):
        try:
            return call()
        except Exception as error:  # re-raised unless retryable
            if not retryable(error) or attempt == retries:
                raise
            time.sleep(backoff * 2**attempt)
    raise AssertionError("unreachable")


def _json_value(value: Any) -> Any:
    """A numpy value as TF Serving's REST JSON: bytes that are not UTF-8 as {"b64": …}."""
    if isinstance(value, np.ndarray):
        return [_json_value(v) for v in value] if value.ndim else _json_value(value.item())
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8") if b"\0" not in value and value.isascii() else _b64(value)
        except UnicodeDecodeError:
            return _b64(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _b64(value: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(value).decode("ascii")}


def _examples_json(value: np.ndarray) -> Any:
    """Serialized Examples are binary: always base64."""
    return [_b64(v) for v in value]


def _from_json(value: Any) -> np.ndarray:
    """TF Serving's JSON output → numpy; strings as bytes (as the SavedModel returns them)."""

    def decode(v):
        if isinstance(v, list):
            return [decode(x) for x in v]
        if isinstance(v, dict) and "b64" in v:
            return base64.b64decode(v["b64"])
        return v.encode() if isinstance(v, str) else v

    decoded = decode(value)
    array = np.array(decoded, dtype=object)
    if array.size and not any(isinstance(x, bytes) for x in array.reshape(-1)):
        array = np.array(decoded)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
    return array


class RestClient:
    """TF Serving's REST API (`base_url` e.g. "http://localhost:8501")."""

    transport = "REST"

    def __init__(
        self,
        base_url: str,
        model: str,
        version: int | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
    ):
        self.base_url, self.model, self.version = base_url.rstrip("/"), model, version
        self.timeout, self.retries, self.backoff = timeout, retries, backoff

    def _model_url(self) -> str:
        version = f"/versions/{self.version}" if self.version is not None else ""
        return f"{self.base_url}/v1/models/{self.model}{version}"

    def _call(self, method: str, url: str, what: str, body: dict | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()

        def once():
            request = urllib.request.Request(url, data=data, method=method)
            request.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as error:
                text = error.read().decode("utf-8", "replace")
                try:
                    answer = json.loads(text).get("error", text)
                except (json.JSONDecodeError, AttributeError):
                    answer = text
                raise ServingError(
                    f"{self.model} {what} (REST {url}): TF Serving answered HTTP {error.code}: {answer}",
                    status=error.code,
                    answer=answer,
                ) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                reason = getattr(error, "reason", error)
                raise ServingError(
                    f"{self.model} {what} (REST {url}): no answer: {reason}", status=None
                ) from None

        return _retrying(
            once, lambda e: isinstance(e, ServingError) and e.status == 503, self.retries, self.backoff
        )

    def predict(self, request: Request, format: str = "auto") -> dict[str, np.ndarray]:
        """Runs `request`; `format` "row", "columnar" or "auto" (row when every input is batched)."""
        if format not in ("auto", "row", "columnar"):
            raise ValueError(f"format: 'row', 'columnar' or 'auto', got {format!r}")
        row = request.batched() if format == "auto" else format == "row"
        if row and not request.batched():
            raise ValueError(
                f"{request.signature}: the row format needs every input batched (one row each): send it "
                "columnar"
            )
        inputs = {
            name: _examples_json(value) if name == "examples" else _json_value(value)
            for name, value in request.inputs.items()
        }
        if row:
            n = next(iter(request.inputs.values())).shape[0]
            body = {
                "signature_name": request.signature,
                "instances": [{name: values[i] for name, values in inputs.items()} for i in range(n)],
            }
        else:
            body = {"signature_name": request.signature, "inputs": inputs}
        answer = self._call("POST", f"{self._model_url()}:predict", request.signature, body)
        if row:
            predictions = answer["predictions"]
            if predictions and isinstance(predictions[0], dict):
                names = predictions[0].keys()
                return {name: _from_json([p[name] for p in predictions]) for name in names}
            if not predictions:
                return {}
            return {"output": _from_json(predictions)}
        outputs = answer["outputs"]
        return (
            {name: _from_json(v) for name, v in outputs.items()}
            if isinstance(outputs, dict)
            else {"output": _from_json(outputs)}
        )

    def status(self) -> list[dict[str, Any]]:
        """The model's versions: [{"version": int, "state": "AVAILABLE" | "LOADING" | …, "error": str}]."""
        answer = self._call("GET", self._model_url(), "status")
        return [
            {
                "version": int(v["version"]),
                "state": v["state"],
                "error": v.get("status", {}).get("error_message", ""),
            }
            for v in answer.get("model_version_status", [])
        ]

    def metadata(self) -> dict[str, Any]:
        """{signature name: {"inputs": {name: (dtype, shape)}, "outputs": {…}}} of the served version."""
        answer = self._call("GET", f"{self._model_url()}/metadata", "metadata")
        signatures = answer["metadata"]["signature_def"]["signature_def"]
        return {name: _signature_summary_json(sig) for name, sig in signatures.items()}


def _shape_json(shape: dict) -> list[int]:
    if shape.get("unknown_rank"):
        return None
    return [int(d.get("size", -1)) for d in shape.get("dim", [])]


def _signature_summary_json(signature: dict) -> dict[str, Any]:
    def tensors(group):
        return {
            name: (info.get("dtype", ""), _shape_json(info.get("tensor_shape", {})))
            for name, info in signature.get(group, {}).items()
        }

    return {"inputs": tensors("inputs"), "outputs": tensors("outputs")}


class GrpcClient:
    """TF Serving's gRPC API (`target` e.g. "localhost:8500")."""

    transport = "gRPC"

    def __init__(
        self,
        target: str,
        model: str,
        version: int | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        max_message_bytes: int = 64 * 1024 * 1024,
    ):
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        self.target, self.model, self.version = target, model, version
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        self.channel = grpc.insecure_channel(target, options=options)
        self.predictions = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> GrpcClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _spec(self, spec, signature: str | None = None) -> None:
        spec.name = self.model
        if self.version is not None:
            spec.version.value = self.version
        if signature is not None:
            spec.signature_name = signature

    def _call(self, method, request, what: str):
        import grpc

        def once():
            try:
                return method(request, timeout=self.timeout)
            except grpc.RpcError as error:
                code, details = error.code(), error.details()
                raise ServingError(
                    f"{self.model} {what} (gRPC {self.target}): TF Serving answered {code.name}: {details}",
                    status=code.name,
                    answer=error.details() or "",
                ) from None

        return _retrying(
            once,
            lambda e: isinstance(e, ServingError) and e.status == "UNAVAILABLE",
            self.retries,
            self.backoff,
        )

    def predict(self, request: Request) -> dict[str, np.ndarray]:
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        proto = predict_pb2.PredictRequest()
        self._spec(proto.model_spec, request.signature)
        for name, value in request.inputs.items():
            proto.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        answer = self._call(self.predictions.Predict, proto, request.signature)
        return {name: tf.make_ndarray(tensor) for name, tensor in answer.outputs.items()}

    def status(self) -> list[dict[str, Any]]:
        from tensorflow_serving.apis import get_model_status_pb2

        proto = get_model_status_pb2.GetModelStatusRequest()
        self._spec(proto.model_spec)
        answer = self._call(self.models.GetModelStatus, proto, "status")
        states = get_model_status_pb2.ModelVersionStatus.State
        return [
            {"version": int(v.version), "state": states.Name(v.state), "error": v.status.error_message}
            for v in answer.model_version_status
        ]

    def metadata(self) -> dict[str, Any]:
        from tensorflow_serving.apis import get_model_metadata_pb2

        proto = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(proto.model_spec)
        answer = self._call(self.predictions.GetModelMetadata, proto, "metadata")
        signatures = get_model_metadata_pb2.SignatureDefMap()
        answer.metadata["signature_def"].Unpack(signatures)

        def tensors(group: Mapping) -> dict[str, Any]:
            return {
                name: (
                    _dtype_name(info.dtype),
                    None if info.tensor_shape.unknown_rank else [int(d.size) for d in info.tensor_shape.dim],
                )
                for name, info in group.items()
            }

        return {
            name: {"inputs": tensors(sig.inputs), "outputs": tensors(sig.outputs)}
            for name, sig in signatures.signature_def.items()
        }


def _dtype_name(enum: int) -> str:
    """ "DT_STRING" etc., as TF Serving's REST metadata spells dtypes."""
    from tensorflow.core.framework import types_pb2

    return types_pb2.DataType.Name(enum)


def connect(url: str, model: str, version: int | None = None, **options) -> RestClient | GrpcClient:
    """A client for `url`: "http(s)://host:port" (REST) or "grpc://host:port" / "host:port" (gRPC)."""
    if url.startswith(("http://", "https://")):
        return RestClient(url, model, version, **options)
    return GrpcClient(url.removeprefix("grpc://"), model, version, **options)
