"""The exporter against an in-process Cloud Monitoring over real gRPC, with the real client."""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
import time

import pytest
from google.api.metric_pb2 import MetricDescriptor
from google.cloud.monitoring_v3 import MetricServiceClient
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tests.conftest import ROOT, SESSION_START
from titanic_mlops.api.local_server import free_port
from titanic_mlops.monitoring import metrics, promql
from titanic_mlops.monitoring.exporter import MetricsExporter
from titanic_mlops.settings import MetricsExportSettings, load_settings

pytestmark = pytest.mark.integration
KIND, VALUE = MetricDescriptor.MetricKind, MetricDescriptor.ValueType
CUSTOM = "custom.googleapis.com/"


def export_settings(**changes) -> MetricsExportSettings:
    base = load_settings(env={}).metrics_export
    return dataclasses.replace(base, **{"enabled": True, "project_id": "test-project", **changes})


def errors() -> float:
    return metrics.sample("titanic_metrics_exports_total", {"outcome": "error"})


@pytest.fixture
def registry() -> CollectorRegistry:
    """A small registry with one metric of each kind and known values."""
    reg = CollectorRegistry()
    jobs = Counter("titanic_jobs", "Jobs done.", ["route"], registry=reg)
    jobs.labels("/").inc(3)
    Gauge("titanic_queue_depth", "Queue depth.", registry=reg).set(7.5)
    latency = Histogram("titanic_wait_seconds", "Wait.", buckets=(0.1, 0.5, 1.0), registry=reg)
    for value in (0.05, 0.3, 0.3, 2.0):
        latency.observe(value)
    return reg


@pytest.fixture
def exporter(fake_monitoring, registry):
    """An exporter for ``registry`` talking to the fake through a real MetricServiceClient."""

    def _make(instance: str = "inst-a", reg: CollectorRegistry | None = None, **changes):
        client = fake_monitoring.client(MetricServiceClient)
        return MetricsExporter(export_settings(**changes), reg or registry, instance, client)

    return _make


def series_of(fake, metric_type: str) -> list:
    return [s for call in fake.time_series_calls for s in call if s.metric.type == metric_type]


def test_types_kinds_values_and_resource(fake_monitoring, exporter):
    assert exporter().export_now() is True
    counter, gauge, histogram = (
        series_of(fake_monitoring, CUSTOM + name)[0]
        for name in ("titanic_jobs_total", "titanic_queue_depth", "titanic_wait_seconds")
    )
    assert (counter.metric_kind, counter.value_type) == (KIND.CUMULATIVE, VALUE.DOUBLE)
    assert dict(counter.metric.labels) == {"route": "/"}
    assert counter.points[0].value.double_value == 3
    span = counter.points[0].interval
    assert span.start_time < span.end_time
    # this process's start: before the test session's conftest ran, not long before
    assert SESSION_START - 120 < span.start_time.timestamp() <= SESSION_START

    assert (gauge.metric_kind, gauge.value_type) == (KIND.GAUGE, VALUE.DOUBLE)
    assert gauge.points[0].value.double_value == 7.5

    assert (histogram.metric_kind, histogram.value_type) == (KIND.CUMULATIVE, VALUE.DISTRIBUTION)
    dist = histogram.points[0].value.distribution_value
    assert list(dist.bucket_options.explicit_buckets.bounds) == [0.1, 0.5, 1.0]
    assert list(dist.bucket_counts) == [1, 2, 0, 1]  # (-inf,0.1) [0.1,0.5) [0.5,1) [1,+inf)
    assert dist.count == 4 and dist.mean == pytest.approx(2.65 / 4)

    assert counter.resource.type == "generic_task"
    assert dict(counter.resource.labels) == {
        "project_id": "test-project",
        "location": "europe-west1",
        "namespace": "titanic-mlops",
        "job": "titanic-api",
        "task_id": f"inst-a-{os.getpid()}",
    }


def test_counters_keep_their_start_time_and_grow(fake_monitoring, exporter, registry):
    fake_monitoring.min_point_interval = 0.3
    one = exporter()
    one.min_interval = 0.3
    assert one.export_now()
    registry._names_to_collectors["titanic_jobs"].labels("/").inc()
    started = time.monotonic()
    assert one.export_now()  # waits for the sampling limit instead of being rejected
    assert time.monotonic() - started >= 0.25
    first, second = series_of(fake_monitoring, CUSTOM + "titanic_jobs_total")
    assert first.points[0].interval.start_time == second.points[0].interval.start_time
    assert second.points[0].interval.end_time > first.points[0].interval.end_time
    assert [s.points[0].value.double_value for s in (first, second)] == [3, 4]


def test_instances_and_worker_processes_never_share_a_series(fake_monitoring, exporter):
    assert exporter("inst-a").export_now() and exporter("inst-b").export_now()
    # another worker of instance a: a separate process, through MONITORING_EMULATOR_HOST
    script = (
        "import dataclasses\n"
        "from prometheus_client import CollectorRegistry, Counter\n"
        "from titanic_mlops.monitoring.exporter import MetricsExporter\n"
        "from titanic_mlops.settings import load_settings\n"
        "reg = CollectorRegistry()\n"
        "Counter('titanic_jobs', 'Jobs done.', ['route'], registry=reg).labels('/').inc(9)\n"
        "s = dataclasses.replace(load_settings().metrics_export, enabled=True,\n"
        "                        project_id='test-project')\n"
        "assert MetricsExporter(s, reg, 'inst-a').export_now()\n"
    )
    env = {**os.environ, "MONITORING_EMULATOR_HOST": fake_monitoring.address}
    subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, check=True, timeout=60)
    tasks = {
        dict(s.resource.labels)["task_id"]: s.points[0].value.double_value
        for s in series_of(fake_monitoring, CUSTOM + "titanic_jobs_total")
    }
    assert len(tasks) == 3  # no write replaced another one's series
    worker = next(
        task for task in tasks if task.startswith("inst-a-") and task != f"inst-a-{os.getpid()}"
    )
    assert tasks == {f"inst-a-{os.getpid()}": 3, f"inst-b-{os.getpid()}": 3, worker: 9}


def test_at_most_max_series_per_call(fake_monitoring, exporter):
    reg = CollectorRegistry()
    shards = Gauge("titanic_shard_size", "Per shard.", ["shard"], registry=reg)
    for shard in range(450):
        shards.labels(str(shard)).set(shard)
    assert exporter(reg=reg).export_now()
    assert [len(call) for call in fake_monitoring.time_series_calls] == [200, 200, 50]
    assert exporter("inst-b", reg=reg, max_series_per_call=120).export_now()
    assert [len(call) for call in fake_monitoring.time_series_calls[3:]] == [120, 120, 120, 90]
    assert len(fake_monitoring.points) == 900


def test_descriptors_are_created_once_and_only_when_missing(fake_monitoring, exporter):
    fake_monitoring.descriptors[CUSTOM + "titanic_queue_depth"] = MetricDescriptor(
        type=CUSTOM + "titanic_queue_depth", metric_kind=KIND.GAUGE, value_type=VALUE.DOUBLE
    )
    fake_monitoring.min_point_interval = 0
    one = exporter()
    one.min_interval = 0
    for _ in range(3):
        assert one.export_now()
    assert fake_monitoring.calls["ListMetricDescriptors"] == 1
    assert fake_monitoring.calls["CreateMetricDescriptor"] == 2  # the counter and the histogram
    assert fake_monitoring.calls["CreateTimeSeries"] == 3
    histogram = fake_monitoring.descriptors[CUSTOM + "titanic_wait_seconds"]
    assert (histogram.metric_kind, histogram.value_type) == (KIND.CUMULATIVE, VALUE.DISTRIBUTION)
    assert (histogram.unit, histogram.description) == ("s", "Wait.")
    counter = fake_monitoring.descriptors[CUSTOM + "titanic_jobs_total"]
    assert [label.key for label in counter.labels] == ["route"]


def test_every_metric_of_the_service_is_accepted(fake_monitoring, exporter):
    metrics.REQUESTS.labels("/", "POST", "200").inc()
    metrics.REQUEST_LATENCY.labels("/").observe(0.02)
    metrics.DRIFT_COLUMN_SCORE.labels("age", "ks").set(0.3)
    assert exporter(reg=metrics.REGISTRY).export_now()
    sent = {s.metric.type for call in fake_monitoring.time_series_calls for s in call}
    exported = {promql.metric_type(name) for name in promql.query_names(metrics.REGISTRY)}
    # every pushed type is one the PromQL mapping knows (histograms under their base name)
    assert sent <= exported | {t.removesuffix("_bucket") for t in exported}
    assert {CUSTOM + "titanic_requests_total", CUSTOM + "titanic_request_duration_seconds"} <= sent


def test_a_failing_server_is_counted_and_never_raised(fake_monitoring, exporter, caplog):
    fake_monitoring.fail_with = __import__("grpc").StatusCode.PERMISSION_DENIED
    before = errors()
    with caplog.at_level(logging.WARNING, "titanic_mlops.monitoring.exporter"):
        assert exporter().export_now() is False
    assert errors() == before + 1
    (message,) = [r.getMessage() for r in caplog.records]
    assert "PermissionDenied" in message and "\n" not in message


def test_a_server_that_is_down_is_counted_and_never_raised():
    client = FakeDown.client()
    one = MetricsExporter(export_settings(timeout_seconds=2), CollectorRegistry(), "i", client)
    Gauge("titanic_x", "x", registry=one.registry).set(1)
    before, started = errors(), time.monotonic()
    assert one.export_now() is False
    assert errors() == before + 1 and time.monotonic() - started < 5


class FakeDown:
    @staticmethod
    def client() -> MetricServiceClient:
        import grpc

        transport = MetricServiceClient.get_transport_class("grpc")
        channel = grpc.insecure_channel(f"127.0.0.1:{free_port()}")  # nothing listens there
        return MetricServiceClient(transport=transport(channel=channel))


def test_maybe_export_never_blocks_the_caller(fake_monitoring, exporter):
    fake_monitoring.delay = 1.0
    one = exporter(period_seconds=0.5)
    ok = metrics.sample("titanic_metrics_exports_total", {"outcome": "ok"})
    one.maybe_export()
    assert fake_monitoring.calls["ListMetricDescriptors"] == 0  # not due yet
    time.sleep(0.55)
    started = time.monotonic()
    for _ in range(100):  # request activity while the slow export runs
        one.maybe_export()
    assert time.monotonic() - started < 0.5  # the export itself takes over 1 s
    while metrics.sample("titanic_metrics_exports_total", {"outcome": "ok"}) == ok:
        assert time.monotonic() - started < 5
        time.sleep(0.05)
    assert fake_monitoring.calls["CreateTimeSeries"] == 1  # one export at a time


def test_forced_exports_are_never_lost(fake_monitoring, exporter, registry):
    """A drift check forces an export; one forced while another runs follows it."""
    fake_monitoring.min_point_interval, fake_monitoring.delay = 0, 0.5
    one = exporter()
    one.min_interval = 0
    depth = registry._names_to_collectors["titanic_queue_depth"]
    started = time.monotonic()
    one.maybe_export(force=True)  # not due, but forced
    assert time.monotonic() - started < 0.4  # one export alone takes 0.5 s
    while fake_monitoring.calls["CreateTimeSeries"] < 1:  # its points are sampled and sent
        assert time.monotonic() - started < 5
        time.sleep(0.005)
    depth.set(1)
    again = time.monotonic()
    one.maybe_export(force=True)  # arrives while the first export runs
    assert time.monotonic() - again < 0.4
    while len(fake_monitoring.time_series_calls) < 2:  # both stored
        assert time.monotonic() - started < 5
        time.sleep(0.05)
    sent = series_of(fake_monitoring, CUSTOM + "titanic_queue_depth")
    assert [s.points[0].value.double_value for s in sent] == [7.5, 1]


def test_timer_exports_periodically_and_close_exports_once_more(fake_monitoring, exporter):
    fake_monitoring.min_point_interval = 0.2
    one = exporter(period_seconds=0.3)
    one.min_interval = 0.2
    one.start()
    time.sleep(1.1)
    periodic = fake_monitoring.calls["CreateTimeSeries"]
    assert periodic >= 2
    assert one.close(timeout=3) is True
    after_close = fake_monitoring.calls["CreateTimeSeries"]
    assert after_close >= periodic + 1
    time.sleep(0.5)
    assert fake_monitoring.calls["CreateTimeSeries"] == after_close  # the timer stopped


def test_close_is_bounded_by_its_timeout(fake_monitoring, exporter):
    fake_monitoring.delay = 1.5
    one = exporter()
    ok = metrics.sample("titanic_metrics_exports_total", {"outcome": "ok"})
    started = time.monotonic()
    assert one.close(timeout=0.5) is False
    assert time.monotonic() - started < 1.0
    # the abandoned export still finishes (before this test ends: no stray thread afterwards)
    while metrics.sample("titanic_metrics_exports_total", {"outcome": "ok"}) == ok:
        assert time.monotonic() - started < 5
        time.sleep(0.05)


@pytest.mark.parametrize("changes", [{"enabled": False}, {"project_id": ""}])
def test_off_unless_enabled_with_a_project(fake_monitoring, registry, changes):
    client = fake_monitoring.client(MetricServiceClient)
    one = MetricsExporter(export_settings(**changes), registry, "i", client)
    before = errors()
    assert one.export_now() is False
    one.maybe_export(force=True)
    one.start()
    assert one.close() is False
    assert fake_monitoring.calls == {} and errors() == before


def test_importing_the_exporter_does_not_import_google_cloud_monitoring():
    code = (
        "import sys, titanic_mlops.monitoring.metrics, titanic_mlops.monitoring.exporter\n"
        "assert not [m for m in sys.modules if m.startswith(('google.cloud.monitoring', 'grpc'))]"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
