"""The prediction record: builder, source rule, object names, source-filtered newest-N reads."""

import json
from datetime import UTC, datetime

import pytest

from titanic_mlops import predictions, schema
from titanic_mlops.prediction_log import encode_record
from titanic_mlops.storage import LocalStorage

FEATURES = {"pclass": 3, "sex": "male", "age": 22.0, "sibsp": 1, "parch": 0, "fare": 7.25,
            "embarked": "S"}  # fmt: skip


def built(n=2, source="live", request_id="r1"):
    return predictions.build(
        request_id=request_id,
        timestamp="2026-11-30T10:00:00.000000+00:00",
        model_version=3,
        source=source,
        features=[FEATURES] * n,
        probabilities=[0.25, 0.75][:n],
        predictions=[0, 1][:n],
        latency_ms=1.5,
    )


def test_build_gives_one_record_per_instance_with_every_field():
    first, second = built()
    assert list(first) == list(predictions.FIELDS)
    assert (first["index"], second["index"]) == (0, 1)
    assert second["prediction"] == 1 and second["probability"] == 0.75
    assert set(first["features"]) == set(schema.FEATURES)
    assert json.loads(encode_record(first)) == first


def test_build_refuses_mismatched_lengths():
    with pytest.raises(ValueError):
        predictions.build("r", "t", 1, "live", [FEATURES], [0.1, 0.2], [0], 1.0)


@pytest.mark.parametrize(
    ("declared", "source"),
    [(None, "live"), ("", "live"), ("locust", "locust"), ("simulate-traffic", "simulate-traffic"),
     ("Locust", "live"), ("x" * 40, "live"), ("a b", "live"), ("../x", "live")],
)  # fmt: skip
def test_source_is_live_unless_a_short_name_is_declared(declared, source):
    assert predictions.source_of(declared) == source


def test_object_key_layout():
    at = datetime(2026, 11, 29, 7, 5, 3, 42, tzinfo=UTC)
    assert predictions.object_key(at, "host-ab12-7", 3) == (
        "predictions/dt=2026-11-29/07/20261129T070503.000042Z-host-ab12-7-00000003.jsonl"
    )


def write(storage, hour, seq, records):
    at = datetime(2026, 11, 30, hour, 0, seq, tzinfo=UTC)
    payload = "".join(encode_record(r) for r in records).encode()
    storage.create(predictions.object_key(at, "i", seq), payload)


def test_read_latest_filters_by_source_and_reads_only_what_it_needs(tmp_path):
    storage = LocalStorage(tmp_path)
    write(storage, 8, 1, built(2, "live", "old"))
    write(storage, 9, 2, built(2, "locust", "load"))
    write(storage, 10, 3, built(2, "live", "new"))
    everything = predictions.read_latest(storage, 10)
    assert [r["request_id"] for r in everything.records] == ["old"] * 2 + ["load"] * 2 + ["new"] * 2
    live = predictions.read_latest(storage, 3, source="live")
    assert [r["request_id"] for r in live.records] == ["old", "new", "new"]
    assert live.objects_read == 3
    newest = predictions.read_latest(storage, 2, source="live")
    assert newest.objects_read == 1  # the newest object alone holds 2 live records


def test_records_without_a_source_count_as_live(tmp_path):
    storage = LocalStorage(tmp_path)
    old = [{k: v for k, v in r.items() if k != "source"} for r in built(2)]
    write(storage, 8, 1, old)
    assert len(predictions.read_latest(storage, 5, source="live").records) == 2
    assert predictions.read_latest(storage, 5, source="locust").records == []


def test_flatten_gives_the_drift_columns():
    row = predictions.flatten(built(1)[0])
    assert row == {**FEATURES, "prediction": 0, "probability": 0.25,
                   "timestamp": "2026-11-30T10:00:00.000000+00:00", "model_version": 3}  # fmt: skip
