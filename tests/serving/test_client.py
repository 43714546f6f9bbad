"""The TF Serving client (serving/client.py) over REST (row and columnar) and gRPC, against the GRU4Rec
export served by a loopback test server (loopback_server.py) — or, unchanged, by a real
`tensorflow_model_server` when MOVIEREC_TFSERVING_URL is set:

    MOVIEREC_TFSERVING_URL=http://localhost:8501      # its REST port
    MOVIEREC_TFSERVING_GRPC=localhost:8500            # its gRPC port
    MOVIEREC_TFSERVING_MODEL_DIR=/srv/models/gru4rec  # the folder it serves as model "gru4rec"

The tests then copy the export into MOVIEREC_TFSERVING_MODEL_DIR as a new version, wait until the
server reports it AVAILABLE, and query that version. The tests that inject failures (503 /
UNAVAILABLE, slow answers) need the loopback server and are skipped against a real one."""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pytest
import tensorflow as tf

from movierec.serving.client import (
    GrpcClient,
    Request,
    RestClient,
    ServingError,
    connect,
    examples_request,
    rating_recommend_request,
    recommend_request,
    session_request,
)

pytestmark = pytest.mark.slow  # the shared GRU4Rec export (Transform on Beam, a training epoch)

MODEL = "gru4rec"
REAL = os.environ.get("MOVIEREC_TFSERVING_URL")
TRANSPORTS = ("rest-row", "rest-columnar", "grpc")


class Endpoints:
    def __init__(self, rest_url: str, grpc_target: str, version: int, loopback=None):
        self.rest_url, self.grpc_target, self.version, self.loopback = (
            rest_url,
            grpc_target,
            version,
            loopback,
        )


@pytest.fixture(scope="module")
def endpoints(gru4rec):
    if REAL:
        model_dir = os.environ["MOVIEREC_TFSERVING_MODEL_DIR"]
        version = int(time.time())
        shutil.copytree(gru4rec.export_dir, os.path.join(model_dir, str(version)))
        client = RestClient(REAL, MODEL, version, retries=0)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if any(v["state"] == "AVAILABLE" for v in client.status()):
                    break
            except ServingError:
                pass
            time.sleep(2)
        else:
            pytest.fail(f"{REAL}: version {version} of {MODEL} not AVAILABLE after 180 s")
        yield Endpoints(REAL, os.environ["MOVIEREC_TFSERVING_GRPC"], version)
        return
    from loopback_server import LoopbackServer

    server = LoopbackServer({MODEL: {1: gru4rec.export_dir}}).start()
    yield Endpoints(server.rest_url, server.grpc_target, 1, server)
    server.stop()


@pytest.fixture
def loopback(endpoints):
    if endpoints.loopback is None:
        pytest.skip("injects failures: needs the loopback server, not a real one")
    endpoints.loopback.fail_next, endpoints.loopback.delay, endpoints.loopback.calls = 0, 0.0, 0
    yield endpoints.loopback
    endpoints.loopback.fail_next, endpoints.loopback.delay = 0, 0.0


@pytest.fixture(scope="module")
def in_process(gru4rec):
    return tf.saved_model.load(gru4rec.export_dir)


def client_for(endpoints, transport: str, **options):
    if transport == "grpc":
        return GrpcClient(endpoints.grpc_target, MODEL, endpoints.version, **options)
    return RestClient(endpoints.rest_url, MODEL, endpoints.version, **options)


def ask(client, request, transport):
    if transport.startswith("rest"):
        return client.predict(request, format=transport.removeprefix("rest-"))
    return client.predict(request)


def direct(loaded, request) -> dict[str, np.ndarray]:
    function = loaded.signatures[request.signature]
    specs = function.structured_input_signature[1]
    inputs = {name: tf.constant(value, dtype=specs[name].dtype) for name, value in request.inputs.items()}
    return {name: value.numpy() for name, value in function(**inputs).items()}


def assert_same(served: dict, expected: dict) -> None:
    assert set(served) == set(expected)
    for name, value in expected.items():
        if value.dtype.kind == "f":
            np.testing.assert_allclose(served[name].astype(np.float32), value, rtol=1e-5, err_msg=name)
        else:
            assert np.asarray(served[name]).tolist() == value.tolist(), name


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_recommend_and_examples_answer_what_the_saved_model_answers(
    gru4rec, endpoints, in_process, transport
):
    items, times = gru4rec.history(0)
    requests = [
        recommend_request([items[:10], ["50", "no-such-movie"]], k=[5, 3], exclude=[["100"], []]),
        recommend_request([items[-30:]], k=10, timestamps=[times[-30:]]),
        examples_request([items[:10], ["no-such-movie"]]),
        examples_request([items[-20:]], timestamps=[times[-20:]]),
    ]
    client = client_for(endpoints, transport)
    for request in requests:
        served = ask(client, request, transport)
        assert_same(served, direct(in_process, request))
    answer = ask(client, requests[0], transport)
    assert answer["unknown_ids"].tolist() == [0, 1] and answer["item_ids"].shape == (2, 5)
    assert answer["item_ids"][1, 3:].tolist() == [b"", b""]  # beyond row 1's k


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_session_served_from_its_state_answers_as_its_whole_history(gru4rec, endpoints, transport):
    items, times = gru4rec.history(0)
    client = client_for(endpoints, transport)
    cut = next(i for i in range(6, len(times)) if times[i] != times[i - 1])  # never inside a second
    first = ask(client, session_request([items[:cut]], timestamps=[times[:cut]], k=10), transport)
    second = ask(
        client,
        session_request([items[cut:20]], first, k=10, timestamps=[times[cut:20]], exclude=[items[:cut]]),
        transport,
    )
    whole = ask(client, recommend_request([items[:20]], k=10, timestamps=[times[:20]]), transport)
    assert second["item_ids"].tolist() == whole["item_ids"].tolist()
    np.testing.assert_allclose(second["scores"], whole["scores"], rtol=1e-4, atol=1e-5)
    assert second["session_length"].tolist() == [20] and second["last_timestamp"].tolist() == [times[19]]
    with pytest.raises(ValueError, match="previous"):
        session_request([items[:2], items[:2]], first)


@pytest.mark.parametrize("transport", ("rest", "grpc"))
def test_status_and_metadata_describe_the_served_version(endpoints, transport):
    client = client_for(endpoints, transport)
    (status,) = client.status()
    assert status == {"version": endpoints.version, "state": "AVAILABLE", "error": ""}
    signatures = client.metadata()
    assert {"serving_default", "recommend", "update_state", "transform_features"} <= set(signatures)
    recommend = signatures["recommend"]
    assert recommend["inputs"] == {
        "item_ids": ("DT_STRING", [-1, -1]),
        "timestamps": ("DT_INT64", [-1, -1]),
        "k": ("DT_INT32", [-1]),
        "exclude": ("DT_STRING", [-1, -1]),
    }
    assert recommend["outputs"]["item_ids"][0] == "DT_STRING"
    assert recommend["outputs"]["unknown_ids"] == ("DT_INT32", [-1])


@pytest.mark.parametrize("transport", ("rest", "grpc"))
def test_errors_quote_tf_serving_and_name_the_request(gru4rec, endpoints, transport):
    client = client_for(endpoints, transport, retries=3, backoff=0.01)
    items, _ = gru4rec.history(0)
    bad = recommend_request([items[:3], items[:3]], k=[1, 2])
    bad.inputs["k"] = np.array([10], np.int32)  # one k for two rows
    with pytest.raises(ServingError) as caught:
        client.predict(bad)
    message = str(caught.value).replace("\\'", "'")
    assert "gru4rec recommend" in message and "request field 'k'" in message
    assert caught.value.status in (400, "INVALID_ARGUMENT")
    missing = client_for(endpoints, transport)
    missing.model = "no-such-model"
    with pytest.raises(ServingError) as caught:
        missing.status()
    assert caught.value.status in (404, "NOT_FOUND") and "no-such-model" in str(caught.value)


@pytest.mark.parametrize("transport", ("rest", "grpc"))
def test_unavailable_is_retried_with_backoff_and_nothing_else(endpoints, loopback, transport):
    request = examples_request([["50", "181"]])
    client = client_for(endpoints, transport, retries=3, backoff=0.05)
    loopback.fail_next = 2
    start = time.monotonic()
    answer = client.predict(request)
    assert answer["item_ids"].shape == (1, 100) and loopback.calls == 3
    assert time.monotonic() - start >= 0.05 + 0.1  # two waits: backoff, then twice that
    loopback.calls, loopback.fail_next = 0, 10
    with pytest.raises(ServingError) as caught:
        client.predict(request)
    assert caught.value.status in (503, "UNAVAILABLE") and "injected by the test" in str(caught.value)
    assert loopback.calls == 4  # the first attempt and 3 retries
    loopback.calls, loopback.fail_next = 0, 0
    with pytest.raises(ServingError):
        client.predict(Request("no-such-signature", request.inputs))
    assert loopback.calls == 1  # an invalid request is not retried


@pytest.mark.parametrize("transport", ("rest", "grpc"))
def test_a_slow_answer_times_out_without_retrying(endpoints, loopback, transport):
    client = client_for(endpoints, transport, timeout=0.2, retries=3, backoff=0.01)
    loopback.delay = 1.0
    with pytest.raises(ServingError) as caught:
        client.status()
    assert caught.value.status in (None, "DEADLINE_EXCEEDED")
    assert loopback.calls == 1


def test_connect_picks_the_transport_from_the_url(endpoints):
    assert isinstance(connect(endpoints.rest_url, MODEL), RestClient)
    assert isinstance(connect(f"grpc://{endpoints.grpc_target}", MODEL), GrpcClient)


def test_request_builders_check_their_arguments():
    with pytest.raises(ValueError, match="timestamps: row 0 has 1 for 2 item_ids"):
        recommend_request([["1", "2"]], timestamps=[[5]])
    with pytest.raises(ValueError, match="k: one value, or one per row"):
        recommend_request([["1"], ["2"]], k=[1, 2, 3])
    with pytest.raises(ValueError, match="item_ids: an empty id is the padding"):
        recommend_request([["1", ""]])
    request = recommend_request([["1", "2", "3"], ["4"]], k=7, timestamps=[[1, 2, 3], [9]])
    assert request.inputs["item_ids"].tolist() == [["1", "2", "3"], ["4", "", ""]]
    assert request.inputs["timestamps"].tolist() == [[1, 2, 3], [9, -1, -1]]
    assert request.inputs["k"].tolist() == [7, 7] and request.inputs["exclude"].shape == (2, 0)
    # rating models' and LSIC's recommend: k per row, so the row format and server-side batching take it
    request = rating_recommend_request(["196", "no-such-user"], k=7)
    assert request.inputs["user_id"].tolist() == ["196", "no-such-user"] and request.inputs["k"].tolist() == [
        7,
        7,
    ]
    assert request.inputs["k"].dtype == np.int32 and request.batched()
    assert rating_recommend_request(["1", "2"], k=[3, 0]).inputs["k"].tolist() == [3, 0]
    with pytest.raises(ValueError, match=r"k: one value, or one per row \(2\), got 3"):
        rating_recommend_request(["1", "2"], k=[1, 2, 3])
    with pytest.raises(ValueError, match="row format needs every input batched"):
        RestClient("http://127.0.0.1:1", MODEL).predict(
            Request("recommend", {"user_id": np.array(["1"], object), "k": np.int32(3)}), format="row"
        )


@pytest.mark.parametrize("transport", ("rest", "grpc"))
def test_movierec_query_prints_the_served_answers(gru4rec, endpoints, in_process, transport):
    from click.testing import CliRunner

    from movierec.cli.main import main

    url = endpoints.rest_url if transport == "rest" else f"grpc://{endpoints.grpc_target}"
    common = ["--url", url, "--model", MODEL, "--version", str(endpoints.version)]
    items, times = gru4rec.history(0)
    history = items[-5:]
    shown = CliRunner().invoke(
        main,
        [
            "query",
            "recommend",
            *common,
            "--items",
            ",".join(history),
            "--timestamps",
            ",".join(map(str, times[-5:])),
            "-k",
            "5",
        ],
    )
    assert shown.exit_code == 0, shown.output
    answer = json.loads(shown.output)
    expected = direct(in_process, recommend_request([history], k=5, timestamps=[times[-5:]]))
    assert [r["item_id"] for r in answer["recommendations"]] == [i.decode() for i in expected["item_ids"][0]]
    assert answer["unknown_ids"] == 0 and answer["history_length"] == 5
    shown = CliRunner().invoke(main, ["query", "status", *common])
    assert shown.exit_code == 0 and json.loads(shown.output)[0]["state"] == "AVAILABLE"
    # a refused request exits non-zero with TF Serving's answer
    shown = CliRunner().invoke(main, ["query", "rating", *common, "--user", "1", "--item", "50"])
    assert shown.exit_code == 1 and "gru4rec predict_rating" in shown.output and "not found" in shown.output


def test_query_session_keeps_the_session_in_its_state_file(gru4rec, endpoints, in_process, tmp_path):
    from click.testing import CliRunner

    from movierec.cli.main import main

    common = ["--url", endpoints.rest_url, "--model", MODEL, "--version", str(endpoints.version)]
    items, times = gru4rec.history(0)
    cut = next(i for i in range(3, len(times)) if times[i] != times[i - 1])
    state = tmp_path / "session.json"
    for part in (slice(0, cut), slice(cut, 12)):
        shown = CliRunner().invoke(
            main,
            [
                "query",
                "session",
                *common,
                "--items",
                ",".join(items[part]),
                "--timestamps",
                ",".join(map(str, times[part])),
                "--state",
                str(state),
                "-k",
                "5",
            ],
        )
        assert shown.exit_code == 0, shown.output
    answer = json.loads(shown.output)
    expected = direct(in_process, recommend_request([items[:12]], k=5, timestamps=[times[:12]]))
    assert [r["item_id"] for r in answer["recommendations"]] == [i.decode() for i in expected["item_ids"][0]]
    assert answer["session_length"] == 12 and json.loads(state.read_text())["seen"] == items[:12]
    state.write_text("{not json")
    shown = CliRunner().invoke(
        main, ["query", "session", *common, "--items", items[12], "--state", str(state)]
    )
    assert shown.exit_code == 2 and "--state" in shown.output
