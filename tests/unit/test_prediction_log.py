"""Prediction log writer: flush triggers, bounded buffer, idempotent retries; read back.

Storage faults are injected by wrapping the real LocalStorage (`FlakyStorage`): nothing
else here can make a bucket fail on demand. The real GCS path is covered in
tests/integration/test_api_server.py against fake-gcs-server.
"""

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from titanic_mlops.monitoring import metrics
from titanic_mlops.prediction_log import PredictionLog
from titanic_mlops.predictions import LogSlice, read_latest
from titanic_mlops.settings import PredictionLogSettings
from titanic_mlops.storage import LocalStorage, StorageError


class FlakyStorage(LocalStorage):
    """The real local storage, but `create` fails while `failing` is set.

    With `land_then_fail`, the object is written and *then* an error is raised: the
    ambiguous outcome of a timed-out upload.
    """

    failing = False
    land_then_fail = False

    def create(self, key, data):
        if self.land_then_fail:
            self.land_then_fail = False
            super().create(key, data)
            raise StorageError("timeout after the object landed")
        if self.failing:
            raise StorageError("bucket unreachable")
        super().create(key, data)


def settings(**overrides):
    base = {
        "enabled": True,
        "flush_records": 1000,
        "flush_seconds": 60.0,
        "max_buffer_records": 10_000,
        "retry_seconds": 0.01,
    }
    return PredictionLogSettings(**{**base, **overrides})


def records(n, start=0):
    return [{"request_id": f"r{i}", "i": i} for i in range(start, start + n)]


def stored(storage):
    out = []
    for key in storage.list("predictions/"):
        out += [json.loads(line) for line in storage.read(key).decode().splitlines()]
    return out


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_flush_by_count(tmp_path):
    storage = LocalStorage(tmp_path)
    plog = PredictionLog(storage, settings(flush_records=10), "i1")
    plog.append(records(9))
    time.sleep(0.2)
    assert stored(storage) == []
    plog.append(records(1, 9))
    wait_until(lambda: len(stored(storage)) == 10)
    assert [r["i"] for r in stored(storage)] == list(range(10))
    plog.close()


def test_flush_by_age(tmp_path):
    storage = LocalStorage(tmp_path)
    plog = PredictionLog(storage, settings(flush_seconds=0.1), "i1")
    plog.append(records(2))
    wait_until(lambda: len(stored(storage)) == 2)
    plog.close()


def test_close_flushes_everything(tmp_path):
    storage = LocalStorage(tmp_path)
    plog = PredictionLog(storage, settings(), "i1")
    written = metrics.sample("titanic_prediction_log_records_written_total")
    plog.append(records(7))
    assert plog.close() is True
    assert len(stored(storage)) == 7
    assert metrics.sample("titanic_prediction_log_records_written_total") == written + 7


def test_each_flush_is_a_new_object(tmp_path):
    storage = LocalStorage(tmp_path)
    plog = PredictionLog(storage, settings(), "i1")
    for n in range(3):
        plog.append(records(2, 2 * n))
        assert plog.flush()
    keys = storage.list("predictions/")
    assert len(keys) == 3 and keys == sorted(keys)
    assert [k[-14:] for k in keys] == ["00000001.jsonl", "00000002.jsonl", "00000003.jsonl"]


def test_storage_outage_keeps_records_and_counts_errors(tmp_path):
    storage = FlakyStorage(tmp_path)
    plog = PredictionLog(storage, settings(), "i1")
    errors = metrics.sample("titanic_prediction_log_write_errors_total")
    storage.failing = True
    plog.append(records(5))
    assert plog.flush() is False
    plog.append(records(5, 5))
    assert plog.flush() is False
    assert plog.buffered() == 10
    assert metrics.sample("titanic_prediction_log_write_errors_total") == errors + 2
    storage.failing = False
    assert plog.flush() is True
    assert [r["i"] for r in stored(storage)] == list(range(10))


def test_retry_after_an_ambiguous_failure_does_not_duplicate(tmp_path):
    storage = FlakyStorage(tmp_path)
    plog = PredictionLog(storage, settings(), "i1")
    storage.land_then_fail = True
    plog.append(records(4))
    assert plog.flush() is False  # the client saw an error, but the object landed
    assert plog.flush() is True  # same name again: recognised, not written twice
    assert [r["i"] for r in stored(storage)] == [0, 1, 2, 3]


def test_bounded_buffer_drops_oldest_and_counts(tmp_path):
    storage = FlakyStorage(tmp_path)
    plog = PredictionLog(storage, settings(max_buffer_records=6), "i1")
    dropped = metrics.sample("titanic_prediction_log_records_dropped_total")
    storage.failing = True
    plog.append(records(4))
    plog.flush()  # cut into a pending object of 4
    plog.append(records(4, 4))  # 8 > 6: the pending object (oldest) goes
    assert plog.buffered() == 4
    assert metrics.sample("titanic_prediction_log_records_dropped_total") == dropped + 4
    plog.append(records(3, 8))  # 7 > 6: one more, oldest first
    assert metrics.sample("titanic_prediction_log_records_dropped_total") == dropped + 5
    storage.failing = False
    assert plog.close()
    assert [r["i"] for r in stored(storage)] == [5, 6, 7, 8, 9, 10]


def test_close_gives_up_after_timeout_and_counts(tmp_path):
    storage = FlakyStorage(tmp_path)
    plog = PredictionLog(storage, settings(retry_seconds=0.05), "i1")
    dropped = metrics.sample("titanic_prediction_log_records_dropped_total")
    storage.failing = True
    plog.append(records(3))
    assert plog.close(timeout=0.2) is False
    assert metrics.sample("titanic_prediction_log_records_dropped_total") == dropped + 3


def test_concurrent_appends_lose_nothing(tmp_path):
    storage = LocalStorage(tmp_path)
    plog = PredictionLog(storage, settings(flush_records=50, flush_seconds=0.05), "i1")

    def producer(t):
        for k in range(200):
            plog.append([{"request_id": f"{t}-{k}"}])

    threads = [threading.Thread(target=producer, args=(t,)) for t in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert plog.close()
    ids = [r["request_id"] for r in stored(storage)]
    assert len(ids) == 3200 and len(set(ids)) == 3200


def test_read_latest_opens_only_the_objects_it_needs(tmp_path):
    storage = LocalStorage(tmp_path)
    start = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)
    clock = iter(start + timedelta(hours=3 * k) for k in range(100))
    plog = PredictionLog(storage, settings(), "i1", clock=lambda: next(clock))
    for k in range(10):  # 10 objects of 10 records over 3 days
        plog.append(records(10, 10 * k))
        assert plog.flush()
    assert len(storage.list_children("predictions/")) == 3
    latest = read_latest(storage, 25)
    assert [r["i"] for r in latest.records] == list(range(75, 100))
    assert latest.objects_read == 3
    everything = read_latest(storage, 1000)
    assert len(everything.records) == 100 and everything.objects_read == 10
    with pytest.raises(ValueError, match="n must be"):
        read_latest(storage, 0)


def test_read_latest_on_empty_storage(tmp_path):
    assert read_latest(LocalStorage(tmp_path), 5) == LogSlice([], 0)


class SlowStorage(LocalStorage):
    """The real local storage whose `create` blocks until `release` is set."""

    def __init__(self, root):
        super().__init__(root)
        self.entered = threading.Event()
        self.release = threading.Event()

    def create(self, key, data):
        self.entered.set()
        self.release.wait(10)
        super().create(key, data)


def test_records_appended_after_close_are_counted_as_dropped(tmp_path):
    plog = PredictionLog(LocalStorage(tmp_path), settings(), "i1")
    assert plog.close()
    dropped = metrics.sample("titanic_prediction_log_records_dropped_total")
    plog.append(records(2))
    assert metrics.sample("titanic_prediction_log_records_dropped_total") == dropped + 2
    assert plog.buffered() == 0


def test_the_batch_being_written_is_never_evicted(tmp_path):
    storage = SlowStorage(tmp_path)
    plog = PredictionLog(storage, settings(max_buffer_records=5), "i1")
    dropped = metrics.sample("titanic_prediction_log_records_dropped_total")
    plog.append(records(4))
    writer = threading.Thread(target=plog.flush)
    writer.start()
    assert storage.entered.wait(5)
    plog.append(records(4, 4))  # 8 > 5: must drop buffered records, not the batch in flight
    storage.release.set()
    writer.join()
    assert plog.close()
    assert metrics.sample("titanic_prediction_log_records_dropped_total") == dropped + 3
    assert [r["i"] for r in stored(storage)] == [0, 1, 2, 3, 7]


def test_close_keeps_its_deadline_when_a_write_hangs(tmp_path):
    storage = SlowStorage(tmp_path)
    plog = PredictionLog(storage, settings(), "i1")
    plog.append(records(3))
    writer = threading.Thread(target=plog.flush, daemon=True)
    writer.start()
    assert storage.entered.wait(5)
    start = time.monotonic()
    assert plog.close(timeout=0.5) is False
    assert time.monotonic() - start < 2
    storage.release.set()
    writer.join()
