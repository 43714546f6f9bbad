"""A test fixture standing in for `tensorflow_model_server` (which cannot be installed here): it loads
real SavedModels and answers TF Serving's documented REST JSON and gRPC PredictionService /
ModelService messages on loopback ports. Not product code: only what the client tests need.

REST: POST /v1/models/<name>[/versions/<N>]:predict (row `instances` and columnar `inputs`, {"b64"}
binary strings, errors as {"error": …}), GET /v1/models/<name>[/versions/<N>] (status) and …/metadata.
gRPC: PredictionService.Predict and GetModelMetadata, ModelService.GetModelStatus.

`fail_next` answers the next n calls with HTTP 503 / UNAVAILABLE (a loading or overloaded server),
`delay` sleeps before each answer, and `calls` counts every request: for the retry and timeout tests.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from movierec.serving.session_servable import SessionServable

PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?P<verb>:predict|/metadata)?$"
)


class Servable:
    """One version of one model, loaded as TF Serving loads it (`SessionServable`: the MetaGraph, the
    restore op, `Session.run` on the SignatureDefs)."""

    def __init__(self, name: str, version: int, export_dir: str):
        self.name, self.version = name, version
        self.session = SessionServable(export_dir)
        self.signature_defs = self.session.signature_defs

    def input_names(self, signature: str) -> list[str]:
        """The signature's input names, in the order TF Serving's metadata lists them ([] if none)."""
        return list(self.signature_defs[signature].inputs) if signature in self.signature_defs else []

    def run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            return self.session.run(signature, inputs)
        except tf.errors.OpError as error:
            raise ValueError(error.message) from None


class LoopbackServer:
    """Serves `models` ({name: {version: export_dir}}) on free loopback ports: `rest_url`, `grpc_target`."""

    def __init__(self, models: dict[str, dict[int, str]]):
        self.servables = {
            name: {version: Servable(name, version, path) for version, path in versions.items()}
            for name, versions in models.items()
        }
        self.fail_next, self.delay, self.calls = 0, 0.0, 0
        self._lock = threading.Lock()
        self.http = _QuietHTTPServer(("127.0.0.1", 0), _handler(self))
        self.rest_url = f"http://127.0.0.1:{self.http.server_address[1]}"
        self.grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(_Predictions(self), self.grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(_Models(self), self.grpc)
        self.grpc_target = f"127.0.0.1:{self.grpc.add_insecure_port('127.0.0.1:0')}"

    def start(self) -> LoopbackServer:
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.grpc.start()
        return self

    def stop(self) -> None:
        self.http.shutdown()
        self.grpc.stop(grace=None)

    def arrive(self) -> bool:
        """Counts a call, sleeps `delay`; False when it must fail as unavailable."""
        with self._lock:
            self.calls += 1
            failing = self.fail_next > 0
            self.fail_next -= failing
        time.sleep(self.delay)
        return not failing

    def find(self, name: str, version: int | None) -> Servable:
        versions = self.servables.get(name)
        if not versions or (version is not None and version not in versions):
            spec = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
            raise LookupError(f"Servable not found for request: {spec}")
        return versions[version if version is not None else max(versions)]


# -- REST ------------------------------------------------------------------------------------------------


class _QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that timed out and closed its socket (the timeout test): nothing to report


def _decoded(value):
    if isinstance(value, list):
        return [_decoded(v) for v in value]
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    return value


def _encoded(value):
    """A numpy answer as TF Serving writes it: strings as text, bytes that are not UTF-8 as {"b64"}."""
    if isinstance(value, np.ndarray):
        return [_encoded(v) for v in value] if value.ndim else _encoded(value.item())
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode()}
    return value.item() if isinstance(value, np.generic) else value


def _handler(server: LoopbackServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def answer(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def route(self, method: str):
            if not server.arrive():
                return self.answer(503, {"error": "Servable is loading: unavailable (injected by the test)"})
            match = PATH.match(self.path)
            if not match:
                return self.answer(404, {"error": f"Malformed request: {method} {self.path}"})
            version = int(match["version"]) if match["version"] else None
            try:
                servable = server.find(match["name"], version)
            except LookupError as error:
                return self.answer(404, {"error": str(error)})
            verb = match["verb"]
            if method == "GET" and verb is None:
                status = {"error_code": "OK", "error_message": ""}
                return self.answer(
                    200,
                    {
                        "model_version_status": [
                            {"version": str(servable.version), "state": "AVAILABLE", "status": status}
                        ]
                    },
                )
            if method == "GET" and verb == "/metadata":
                signatures = get_model_metadata_pb2.SignatureDefMap()
                for name, signature in servable.signature_defs.items():
                    signatures.signature_def[name].CopyFrom(signature)
                as_json = json_format.MessageToDict(signatures, preserving_proto_field_name=True)
                spec = {"name": servable.name, "signature_name": "", "version": str(servable.version)}
                return self.answer(200, {"model_spec": spec, "metadata": {"signature_def": as_json}})
            if method == "POST" and verb == ":predict":
                return self.predict(servable)
            return self.answer(404, {"error": f"Malformed request: {method} {self.path}"})

        def predict(self, servable: Servable) -> None:
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                signature = body.get("signature_name", "serving_default")
                specs = servable.input_names(signature)
                if "instances" in body:
                    instances = body["instances"]
                    if instances and not isinstance(instances[0], dict):
                        (only,) = specs or ["?"]
                        instances = [{only: i} for i in instances]
                    inputs = {
                        name: _decoded([i[name] for i in instances])
                        for name in (instances[0] if instances else specs)
                    }
                elif "inputs" in body:
                    raw = body["inputs"]
                    inputs = (
                        {name: _decoded(v) for name, v in raw.items()}
                        if isinstance(raw, dict)
                        else {next(iter(specs)): _decoded(raw)}
                    )
                else:
                    raise ValueError("Missing 'inputs' or 'instances' key")
                outputs = servable.run(signature, inputs)
            except (ValueError, KeyError, TypeError, json.JSONDecodeError) as error:
                return self.answer(400, {"error": str(error)})
            if "instances" in body:
                sizes = {v.shape[0] if v.ndim else None for v in outputs.values()}
                if len(sizes) != 1 or None in sizes:
                    return self.answer(400, {"error": "Tensor name: outputs have different batch sizes"})
                (n,) = sizes
                rows = [{name: _encoded(v[i]) for name, v in outputs.items()} for i in range(n)]
                return self.answer(200, {"predictions": rows})
            return self.answer(200, {"outputs": {name: _encoded(v) for name, v in outputs.items()}})

        def do_GET(self):
            self.route("GET")

        def do_POST(self):
            self.route("POST")

    return Handler


# -- gRPC ------------------------------------------------------------------------------------------------


def _servable(server: LoopbackServer, spec, context) -> Servable:
    if not server.arrive():
        context.abort(grpc.StatusCode.UNAVAILABLE, "Servable is loading: unavailable (injected by the test)")
    try:
        return server.find(spec.name, spec.version.value if spec.HasField("version") else None)
    except LookupError as error:
        context.abort(grpc.StatusCode.NOT_FOUND, str(error))


class _Predictions(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, server: LoopbackServer):
        self.server = server

    def Predict(self, request, context):
        servable = _servable(self.server, request.model_spec, context)
        signature = request.model_spec.signature_name or "serving_default"
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        try:
            outputs = servable.run(signature, inputs)
        except ValueError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = signature
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response

    def GetModelMetadata(self, request, context):
        servable = _servable(self.server, request.model_spec, context)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for name, signature in servable.signature_defs.items():
            signatures.signature_def[name].CopyFrom(signature)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.metadata["signature_def"].Pack(signatures)
        return response


class _Models(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, server: LoopbackServer):
        self.server = server

    def GetModelStatus(self, request, context):
        servable = _servable(self.server, request.model_spec, context)
        response = get_model_status_pb2.GetModelStatusResponse()
        status = response.model_version_status.add()
        status.version = servable.version
        status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return response
