"""Every route and every error of the service, in-process through functions-framework."""

import json
import time

import pytest

from titanic_mlops import predictions
from titanic_mlops.monitoring import metrics

JACK = {
    "pclass": 3,
    "sex": "male",
    "age": 20,
    "sibsp": 0,
    "parch": 0,
    "fare": 8.05,
    "embarked": "S",
}
ROSE = {
    "pclass": 1,
    "sex": "female",
    "age": 17,
    "sibsp": 1,
    "parch": 1,
    "fare": 100.0,
    "embarked": "S",
}


@pytest.fixture
def client(make_client):
    return make_client()[0]


def error_of(response):
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body["error"]


def test_batch_prediction(client):
    r = client.post("/", json={"instances": [JACK, ROSE]})
    assert r.status_code == 200
    body = r.json()
    assert body["model_version"] == 1
    assert len(body["request_id"]) == 32
    jack, rose = body["predictions"]
    assert jack["survived"] == 0 and jack["probability"] < 0.5
    assert rose["survived"] == 1 and rose["probability"] > 0.5


def test_single_object_and_legacy_positional_list_agree(client):
    named = client.post("/", json=JACK).json()["predictions"]
    positional = client.post("/", json=[3, "male", 20, 0, 0, 8.05, "S"]).json()["predictions"]
    nested = client.post("/", json={"instances": [[3, "male", 20, 0, 0, 8.05, "S"]]}).json()
    assert named == positional == nested["predictions"]


def test_missing_optional_fields_are_imputed_like_training(client, make_client):
    _, service = make_client()
    impute = service.model().predictor().preprocessing.impute
    sparse = client.post("/", json={"pclass": 2, "sex": "female"}).json()["predictions"]
    explicit = client.post("/", json={"pclass": 2, "sex": "female", **impute}).json()
    assert sparse == explicit["predictions"]
    nulls = client.post("/", json=[2, "female", None, None, None, None, None]).json()
    assert nulls["predictions"] == sparse


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({**JACK, "age": -1}, "age", "must be a number between 0 and 120"),
        ({**JACK, "pclass": "first"}, "pclass", "must be one of 1, 2, 3"),
        ({**JACK, "sex": None}, "sex", "is required"),
        ({**JACK, "cabin": "C85"}, "cabin", "is not a model input"),
        ({"instances": [JACK, {**JACK, "fare": -5}]}, "instances[1].fare", "must be a number"),
        ({"instances": [JACK, "jack"]}, "instances[1]", "must be an object"),
        ({"instances": JACK}, "instances", "must be an array"),
        ({"instances": []}, "instances", "at least 1 instance"),
        ({"instances": [JACK], "extra": 1}, "extra", "is not allowed"),
        ([3, "male", 20], "body", "must have 7 values"),
        ({"instances": [[3, "male"]]}, "instances[0]", "must have 7 values"),
        (42, "body", "must be an object"),
        ({**JACK, "age": True}, "age", "must be a number"),
        ({**JACK, "sibsp": 1.5}, "sibsp", "must be an integer"),
        ({**JACK, "embarked": ""}, "embarked", "must be one of 'S', 'C', 'Q'"),
    ],
)
def test_invalid_input_is_a_400_naming_field_and_rule(client, body, field, rule):
    r = client.post("/", json=body)
    assert r.status_code == 400
    error = error_of(r)
    assert error["code"] == "invalid_input"
    assert error["field"] == field
    assert rule in error["rule"]
    assert error["message"].startswith(field)


@pytest.mark.parametrize("payload", [b"{bad", b"", b"NaN", b'{"pclass": NaN}', b"\xff\xfe"])
def test_unparseable_body_is_a_400(client, payload):
    r = client.post("/", content=payload, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert error_of(r)["field"] == "body"


def test_deeply_nested_json_is_a_400_not_a_crash(client):
    r = client.post("/", content=b"[" * 100_000 + b"]" * 100_000)
    assert r.status_code in (400, 413)


def test_body_too_large_is_a_413(make_client):
    client, _ = make_client(MAX_BODY_BYTES="200")
    r = client.post("/", json={"instances": [JACK] * 5})
    assert r.status_code == 413
    assert error_of(r)["code"] == "body_too_large"


def test_too_many_instances_is_a_413(make_client):
    client, _ = make_client(MAX_INSTANCES="3")
    assert client.post("/", json={"instances": [JACK] * 3}).status_code == 200
    r = client.post("/", json={"instances": [JACK] * 4})
    assert r.status_code == 413
    assert error_of(r)["field"] == "instances"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("PUT", "/", 405),
        ("DELETE", "/", 405),
        ("POST", "/health", 405),
        ("POST", "/metrics", 405),
        ("PATCH", "/openapi.json", 405),
        ("POST", "/assets/app.js", 405),
        ("GET", "/nope", 404),
        ("GET", "/assets/secret.py", 404),
        ("GET", "/assets/../service.py", 404),
    ],
)
def test_wrong_method_or_path(client, method, path, status):
    r = client.request(method, path)
    assert r.status_code == status
    assert error_of(r)["code"] == {405: "method_not_allowed", 404: "not_found"}[status]


def test_no_loadable_model_is_a_503_and_recovers(make_client, tmp_path, trained):
    from titanic_mlops.registry import Registry
    from titanic_mlops.storage import open_storage

    empty = tmp_path / "empty"
    client, _ = make_client(STORAGE_URI=str(empty), MODEL_RETRY_SECONDS="0")
    r = client.post("/", json=JACK)
    assert r.status_code == 503
    assert error_of(r)["code"] == "model_unavailable"
    health = client.get("/health")
    assert health.status_code == 503 and health.json()["status"] == "unavailable"
    registry = Registry(open_storage(empty), "titanic-logreg")
    registry.set_alias("production", registry.register(trained.files))
    assert client.post("/", json=JACK).status_code == 200  # retried and loaded


def test_tampered_bundle_is_not_served(make_client, tmp_path):
    _, service = make_client()
    key = "registry/titanic-logreg/versions/1/model.onnx"
    service.storage.write(key, service.storage.read(key) + b"\x00")
    fresh, _ = make_client()
    r = fresh.post("/", json=JACK)
    assert r.status_code == 503
    assert "BundleIntegrityError" in error_of(r)["message"]


def test_health(client):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["model_version"] == 1
    assert body["model_alias"] == "production" and body["uptime_seconds"] >= 0


def test_metrics_count_requests_and_predictions(client):
    before = metrics.sample("titanic_predictions_total", {"survived": "1"})
    ok_before = metrics.sample(
        "titanic_requests_total", {"route": "/", "method": "POST", "status": "200"}
    )
    client.post("/", json={"instances": [ROSE, ROSE, JACK]})
    client.post("/", json={"pclass": 9})
    text = client.get("/metrics").text
    assert metrics.sample("titanic_predictions_total", {"survived": "1"}) == before + 2
    assert (
        metrics.sample("titanic_requests_total", {"route": "/", "method": "POST", "status": "200"})
        == ok_before + 1
    )
    for name in (
        "titanic_request_duration_seconds_bucket",
        "titanic_inference_duration_seconds",
        'titanic_model_info{alias="production",model="titanic-logreg",version="1"} 1.0',
        'status="400"',
        "titanic_prediction_log_records_written_total",
    ):
        assert name in text


def test_openapi_document(client):
    spec = client.get("/openapi.json").json()
    assert spec["openapi"] == "3.1.0"
    instance = spec["components"]["schemas"]["Instance"]
    assert instance["required"] == ["pclass", "sex"]
    assert instance["properties"]["pclass"]["enum"] == [1, 2, 3]
    assert set(spec["paths"]) == {"/", "/health", "/metrics", "/openapi.json"}


def test_web_page_and_assets(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    for field in ("pclass", "sex", "age", "sibsp", "parch", "fare", "embarked"):
        assert f'name="{field}"' in html
    js = client.get("/assets/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert client.get("/assets/style.css").headers["content-type"].startswith("text/css")


def test_predictions_are_logged(make_client):
    client, service = make_client(PREDICTION_LOG_FLUSH_RECORDS="1000")
    ids = [client.post("/", json=JACK).json()["request_id"] for _ in range(3)]
    batch = client.post("/", json={"instances": [JACK, ROSE]}).json()["request_id"]
    deadline = time.monotonic() + 5
    while service.prediction_log().buffered() and time.monotonic() < deadline:
        time.sleep(0.05)  # flushed by age (0.2 s)
    records = predictions.read_latest(service.storage, 10).records
    assert [r["request_id"] for r in records] == [*ids, batch, batch]
    assert [r["index"] for r in records] == [0, 0, 0, 0, 1]
    first = records[0]
    assert first["features"] == {**JACK, "age": 20.0, "fare": 8.05}
    assert first["model_version"] == 1 and first["prediction"] == 0
    assert 0 < first["probability"] < 1 and first["latency_ms"] > 0
    assert json.loads(json.dumps(first)) == first
    assert {r["source"] for r in records} == {"live"}


def test_clients_declare_synthetic_traffic_in_a_header(make_client):
    client, service = make_client()
    rid = client.post("/", json=JACK, headers={"X-Traffic-Source": "locust"}).json()["request_id"]
    service.prediction_log().flush()
    (record,) = [r for r in predictions.read_latest(service.storage, 10).records
                 if r["request_id"] == rid]  # fmt: skip
    assert record["source"] == "locust"


def test_logging_can_be_switched_off(make_client):
    client, service = make_client(PREDICTION_LOG_ENABLED="false")
    assert client.post("/", json=JACK).status_code == 200
    assert service.storage.list("predictions/") == []


@pytest.mark.parametrize(
    ("sealed_linear_form", "inference"),
    [(False, "auto"), (True, "onnxruntime")],
    ids=["no-linear-json", "inference-onnxruntime"],
)
def test_a_bundle_onnxruntime_cannot_run_is_a_503(
    make_client, tmp_path, trained, sealed_linear_form, inference
):
    """Whenever serving runs the graph: without linear.json, or with INFERENCE=onnxruntime.

    (With linear.json and INFERENCE=auto the graph is not run; the registry's gate is what
    rejects such a bundle: tests/integration/test_validation.py.)
    """
    from titanic_mlops import bundle
    from titanic_mlops.registry import Registry
    from titanic_mlops.storage import open_storage

    storage = tmp_path / "broken"
    registry = Registry(open_storage(storage), "titanic-logreg")
    files = dict(trained.files, **{bundle.MODEL_ONNX: b"not an onnx graph"})
    if not sealed_linear_form:
        del files[bundle.LINEAR]
    registry.set_alias("production", registry.register(files))  # hashes match: it verifies
    client, _ = make_client(STORAGE_URI=str(storage), INFERENCE=inference)
    r = client.post("/", json=JACK)
    assert r.status_code == 503
    assert error_of(r)["message"].startswith("model cannot run")


def test_both_inference_backends_answer_alike(make_client):
    from titanic_mlops import predictor

    fast, _ = make_client()
    assert fast.get("/health").json()["inference"] == predictor.LINEAR_BACKEND
    reference, _ = make_client(INFERENCE="onnxruntime")
    assert reference.get("/health").json()["inference"] == predictor.ONNX_BACKEND
    few = [JACK, ROSE, {"pclass": 2, "sex": "male"}]
    many = few * 7  # above SMALL_BATCH: the numpy path
    assert len(many) > predictor.SMALL_BATCH
    for instances in (few, many):
        body = {"instances": instances}
        a = [p["probability"] for p in fast.post("/", json=body).json()["predictions"]]
        b = [p["probability"] for p in reference.post("/", json=body).json()["predictions"]]
        assert max(abs(x - y) for x, y in zip(a, b, strict=True)) <= 1e-6


@pytest.mark.parametrize("field", ["age", "fare", "sibsp", "parch"])
def test_a_400_digit_integer_is_a_400(client, field):
    body = '{"pclass": 1, "sex": "male", "' + field + '": 1' + "0" * 400 + "}"
    r = client.post("/", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert error_of(r)["field"] == field


def test_metrics_can_be_kept_private(make_client):
    client, _ = make_client(METRICS_PUBLIC="false")
    assert client.get("/metrics").status_code == 404
    assert client.post("/", json=JACK).status_code == 200
