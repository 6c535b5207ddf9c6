"""The drift_check target in-process (functions-framework's ASGI app): every answer and error.

Records are written to the prediction log the way the service writes them (predictions.build,
real model probabilities); the drift computation is the real one (Evidently).
"""

import json
import sys
from datetime import UTC, datetime, timedelta

import pytest

from titanic_mlops import bundle, predictions, traffic
from titanic_mlops.api.local_server import DRIFT_SOURCE
from titanic_mlops.monitoring import metrics
from titanic_mlops.prediction_log import encode_record
from titanic_mlops.predictor import Predictor
from titanic_mlops.registry import Registry
from titanic_mlops.storage import open_storage


@pytest.fixture
def make_drift_client(monkeypatch, bucket):
    from functions_framework.aio import create_asgi_app
    from starlette.testclient import TestClient

    def _make(**env):
        for key, value in {"STORAGE_URI": str(bucket), **env}.items():
            monkeypatch.setenv(key, value)
        app = create_asgi_app("drift_check", str(DRIFT_SOURCE))
        return TestClient(app), sys.modules["drift_main"].service

    return _make


@pytest.fixture
def client(make_drift_client):
    return make_drift_client()[0]


def log_rows(storage, rows, source="live", version=1, start=None):
    """Write ``rows`` (raw records) to the prediction log with the model's probabilities."""
    sealed = Registry(storage, "titanic-logreg").load(version)
    p = Predictor(sealed).predict_proba(rows).tolist()
    start = start or datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    for k in range(0, len(rows), 100):  # objects of 100 records, one per minute
        at = start + timedelta(minutes=k // 100)
        chunk = predictions.build(
            f"r{k}", at.isoformat(), version, source, rows[k : k + 100], p[k : k + 100],
            [int(x >= 0.5) for x in p[k : k + 100]], 1.0,
        )  # fmt: skip
        payload = "".join(encode_record(r) for r in chunk).encode()
        storage.create(predictions.object_key(at, "test", k), payload)


def error_of(response):
    body = response.json()
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body["error"]


@pytest.mark.parametrize("value", ["abc", "9", "100001", "1e3", "-5", "", "5.5", "9" * 30])
def test_a_bad_n_latest_is_a_400_naming_it(client, value):
    r = client.get(f"/?n_latest={value}")
    assert r.status_code == 400
    error = error_of(r)
    assert error["field"] == "n_latest"
    assert error["rule"] == "must be a whole number between 10 and 100000"


@pytest.mark.parametrize(("query", "field"), [("format=pdf", "format"), ("source=A%20B", "source")])
def test_other_bad_parameters_are_400s(client, query, field):
    r = client.get(f"/?{query}")
    assert r.status_code == 400 and error_of(r)["field"] == field


def test_an_empty_log_is_insufficient_data_and_leaves_the_gauges(client):
    before = metrics.sample("titanic_drift_last_check_timestamp_seconds")
    r = client.get("/?n_latest=500")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "insufficient_data"
    assert body["n_current"] == 0 and body["min_records"] == 50
    assert metrics.sample("titanic_drift_last_check_timestamp_seconds") == before


def test_no_model_is_a_503_with_the_reason(make_drift_client, tmp_path):
    client, _ = make_drift_client(STORAGE_URI=str(tmp_path / "empty"))
    r = client.get("/")
    assert r.status_code == 503
    assert "no model to check against" in error_of(r)["message"]
    assert client.get("/health").status_code == 503


def test_an_old_format_bundle_gives_the_clear_error(make_drift_client, bucket):
    storage = open_storage(bucket)
    prefix = "registry/titanic-logreg/versions/1"
    manifest = json.loads(storage.read(f"{prefix}/{bundle.MANIFEST}"))
    del manifest["files"][bundle.REFERENCE]
    storage.write(f"{prefix}/{bundle.MANIFEST}", json.dumps({**manifest, "format": 1}).encode())
    client, _ = make_drift_client()
    assert client.get("/health").json()["drift_reference"] is False
    r = client.get("/")
    assert r.status_code == 503
    assert "has no drift reference" in error_of(r)["message"]
    assert "retrain" in error_of(r)["message"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("POST", "/", 405), ("DELETE", "/", 405), ("GET", "/nope", 404), ("POST", "/report", 405)],
)
def test_wrong_method_or_path(client, method, path, status):
    assert client.request(method, path).status_code == status


def test_health_and_metrics(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model_version"] == 1
    assert health["drift_reference"] is True
    assert "titanic_drift_share" in client.get("/metrics").text


def test_same_population_traffic_shows_no_drift(client, bucket):
    storage = open_storage(bucket)
    log_rows(storage, traffic.draw(600, seed=3))
    r = client.get("/?n_latest=600")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["dataset_drift"] is False
    assert body["n_current"] == 600 and body["n_reference"] == 712
    assert set(body["columns"]) == {*traffic.data.schema.FEATURES, "probability", "prediction"}
    assert body["model_versions"] == [1] and body["window"]["from"] < body["window"]["to"]
    # the report and its summary were written as new objects, where the answer says
    keys = storage.list("drift/reports/")
    assert len(keys) == 2 and {k.rsplit(".", 1)[1] for k in keys} == {"html", "json"}
    assert body["report_uri"].endswith(".html") and body["summary_uri"].endswith(".json")
    stored = json.loads(storage.read(keys[1] if keys[1].endswith(".json") else keys[0]))
    assert stored["drift_share"] == body["drift_share"]
    assert metrics.sample("titanic_drift_dataset_drift") == 0
    assert metrics.sample("titanic_drift_rows_checked") == 600


def test_strongly_drifted_traffic_is_flagged_with_its_columns(client, bucket):
    storage = open_storage(bucket)
    women = [r for r in traffic.draw(3000, seed=4) if r["pclass"] == 1 and r["sex"] == "female"]
    older = [{**r, "age": min((r["age"] or 30) + 25, 120)} for r in women]
    log_rows(storage, (older * 10)[:600])
    body = client.get("/?n_latest=600").json()
    assert body["dataset_drift"] is True
    assert {"pclass", "sex", "age"} <= set(body["drifted_columns"])
    assert metrics.sample("titanic_drift_dataset_drift") == 1
    assert metrics.sample("titanic_drift_column_drifted", {"column": "age"}) == 1
    page = client.get("/?n_latest=600&format=html")
    assert page.headers["content-type"].startswith("text/html")
    assert "Dataset Drift" in page.text or "evidently" in page.text.lower()


def test_a_stored_report_is_answered_again_by_its_id_without_a_new_check(client, bucket):
    storage = open_storage(bucket)
    log_rows(storage, traffic.draw(200, seed=7))
    body = client.get("/?n_latest=200").json()
    rid = body["report_id"]
    assert body["report_uri"].endswith(f"{rid}.html")
    assert body["summary_uri"].endswith(f"{rid}.json")
    before = storage.list("drift/reports/")
    page = client.get(f"/report?id={rid}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.content == storage.read(f"drift/reports/{rid}.html")
    summary = client.get(f"/report?id={rid}&format=json")
    assert summary.headers["content-type"] == "application/json"
    assert summary.json() == {**body, "report_id": rid}
    assert storage.list("drift/reports/") == before  # read, not re-run

    missing = client.get("/report?id=dt%3D2001-01-01%2F20010101T000000.000000Z")
    assert missing.status_code == 404 and error_of(missing)["code"] == "report_not_found"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "id"),
        ("id=../../registry/titanic-logreg/aliases/production", "id"),
        ("id=dt%3D2026-11-30%2F..%2F..%2Fx", "id"),
        ("id=dt%3D2026-11-30%2F20261130T091500.123456Z.html", "id"),
        ("id=dt%3D%EF%BC%92026-11-30%2F20261130T091500.123456Z", "id"),  # a full-width 2
        ("id=dt%3D2026-11-30%2F20261130T091500.123456Z&format=pdf", "format"),
    ],
)
def test_a_bad_report_id_is_a_400_naming_it(client, query, field):
    r = client.get(f"/report?{query}")
    assert r.status_code == 400
    error = error_of(r)
    assert error["field"] == field
    if field == "id":
        assert error["rule"].startswith("must be the report_id of a check")


def test_a_source_filter_leaves_other_traffic_out(client, bucket):
    storage = open_storage(bucket)
    start = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    log_rows(storage, traffic.draw(100, seed=5), source="live", start=start)
    log_rows(storage, traffic.draw(300, "class", seed=6), source="locust",
             start=start + timedelta(hours=1))  # fmt: skip
    live = client.get("/?n_latest=100&source=live").json()
    assert live["n_current"] == 100 and live["source"] == "live"
    everything = client.get("/?n_latest=400").json()
    assert everything["n_current"] == 400
