"""The MetricService part of the Cloud Monitoring stand-in (see gcp_monitoring.py).

Stores every point it accepts and rejects what the real CreateTimeSeries rejects: more than
200 series in a call, a series twice in a call, a point closer to the previous one than the
sampling limit, a CUMULATIVE start time that moves, labels missing from the descriptor, a
kind that differs from it, distributions whose buckets do not add up.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter

import grpc
from google.api import metric_pb2
from google.cloud import monitoring_v3 as mon

MAX_SERIES = 200


class MetricServiceFake:
    """CreateTimeSeries, ListMetricDescriptors and CreateMetricDescriptor, in memory."""

    lock: threading.Lock
    calls: Counter[str]

    def __init__(self, min_point_interval: float = 5.0) -> None:
        self.min_point_interval = min_point_interval
        self.fail_with: grpc.StatusCode | None = None  # make CreateTimeSeries fail
        self.delay = 0.0  # seconds CreateTimeSeries takes
        self.time_series_calls: list[list[mon.TimeSeries]] = []
        self.points: dict[tuple, list[mon.TimeSeries]] = {}
        self.descriptors: dict[str, metric_pb2.MetricDescriptor] = {}

    def metric_service(self) -> dict[str, tuple]:
        return {
            "CreateTimeSeries": (self.create_time_series, mon.CreateTimeSeriesRequest, None),
            "ListMetricDescriptors": (
                self.list_descriptors,
                mon.ListMetricDescriptorsRequest,
                mon.ListMetricDescriptorsResponse,
            ),
            "CreateMetricDescriptor": (
                self.create_descriptor,
                mon.CreateMetricDescriptorRequest,
                None,
            ),
        }

    def create_time_series(self, request: mon.CreateTimeSeriesRequest, context) -> None:
        time.sleep(self.delay)
        if self.fail_with is not None:
            context.abort(self.fail_with, "injected failure")
        series = list(request.time_series)
        if not request.name.startswith("projects/") or not 1 <= len(series) <= MAX_SERIES:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{len(series)} series in one call")
        with self.lock:
            keys = [self._check_series(one, context) for one in series]
            if len(set(keys)) != len(keys):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "one series twice in a call")
            for key, one in zip(keys, series, strict=True):
                self.points.setdefault(key, []).append(one)
            self.time_series_calls.append(series)

    def _check_series(self, one: mon.TimeSeries, context) -> tuple:
        key = (
            one.metric.type,
            tuple(sorted(one.metric.labels.items())),
            one.resource.type,
            tuple(sorted(one.resource.labels.items())),
        )

        def bad(why: str) -> None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{one.metric.type}: {why}")

        if len(one.points) != 1:
            bad("exactly one point per series")
        span = one.points[0].interval
        kinds = metric_pb2.MetricDescriptor.MetricKind
        if one.metric_kind == kinds.CUMULATIVE and not span.start_time < span.end_time:
            bad("a CUMULATIVE point needs start_time < end_time")
        known = self.descriptors.get(one.metric.type)
        if known is not None:
            if (known.metric_kind, known.value_type) != (one.metric_kind, one.value_type):
                bad("kind or value type differs from the descriptor")
            if set(one.metric.labels) - {label.key for label in known.labels}:
                bad("label not in the descriptor")
        previous = self.points.get(key)
        if previous is not None:
            last = previous[-1].points[0].interval
            if one.metric_kind == kinds.CUMULATIVE and span.start_time != last.start_time:
                bad("start time of a CUMULATIVE series changed")
            gap = (span.end_time - last.end_time).total_seconds()
            if gap < self.min_point_interval:
                bad(f"points written more often than every {self.min_point_interval} s")
        if "distribution_value" in one.points[0].value:
            dist = one.points[0].value.distribution_value
            bounds = list(dist.bucket_options.explicit_buckets.bounds)
            if sorted(set(bounds)) != bounds or len(dist.bucket_counts) > len(bounds) + 1:
                bad("explicit bounds must increase; at most len(bounds)+1 buckets")
            if sum(dist.bucket_counts) != dist.count or not math.isfinite(dist.mean):
                bad("bucket counts must add up to count")
        return key

    def list_descriptors(self, request: mon.ListMetricDescriptorsRequest, context):
        prefix = request.filter.partition('starts_with("')[2].partition('")')[0]
        with self.lock:
            found = [d for t, d in self.descriptors.items() if t.startswith(prefix)]
        return mon.ListMetricDescriptorsResponse(metric_descriptors=found)

    def create_descriptor(self, request: mon.CreateMetricDescriptorRequest, context) -> None:
        with self.lock:
            self.descriptors[request.metric_descriptor.type] = request.metric_descriptor
