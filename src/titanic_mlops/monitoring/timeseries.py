"""Prometheus samples → Cloud Monitoring ``TimeSeries`` and ``MetricDescriptor`` (pure).

Counters become CUMULATIVE doubles starting at ``start``, gauges GAUGE doubles, histograms
CUMULATIVE DISTRIBUTIONs with the ``le`` bounds as explicit buckets (cumulative bucket counts
turned into per-bucket counts; the sum of squared deviations is unknown and sent as 0).
Metric types follow monitoring/promql.py. google-cloud-monitoring is imported on call.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from itertools import pairwise
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.samples import Sample

from titanic_mlops.monitoring import promql


def to_time_series(
    registry: CollectorRegistry, resource: dict[str, Any], start: float, now: float
) -> list[Any]:
    """One ``monitoring_v3.TimeSeries`` (one point at ``now``) per series of ``registry``."""
    from google.api.metric_pb2 import MetricDescriptor
    from google.cloud import monitoring_v3

    kinds, types = MetricDescriptor.MetricKind, MetricDescriptor.ValueType
    end, begin = _timestamp(now), _timestamp(min(start, now - 0.001))
    out = []
    for family in registry.collect():
        if family.type == "histogram":
            points = [
                (promql.metric_type(family.name), labels, {"distribution_value": value})
                for labels, value in _distributions(family.samples)
            ]
            kind, value_type, interval = kinds.CUMULATIVE, types.DISTRIBUTION, begin
        elif family.type in promql.QUERY_SUFFIXES:
            exposed = promql.exposed_name(family.name, family.type)
            points = [
                (promql.metric_type(s.name), s.labels, {"double_value": s.value})
                for s in family.samples
                if s.name == exposed and math.isfinite(s.value)  # the API rejects NaN
            ]
            cumulative = family.type == "counter"
            kind = kinds.CUMULATIVE if cumulative else kinds.GAUGE
            value_type, interval = types.DOUBLE, begin if cumulative else None
        else:
            continue  # info, stateset, summary: none is defined in metrics.py
        for metric_type, labels, value in points:
            span = {"end_time": end, **({"start_time": interval} if interval else {})}
            out.append(
                monitoring_v3.TimeSeries(
                    metric={"type": metric_type, "labels": labels},
                    resource=resource,
                    metric_kind=kind,
                    value_type=value_type,
                    points=[{"interval": span, "value": value}],
                )
            )
    return out


def descriptor(series: Any, description: str) -> Any:
    """The ``MetricDescriptor`` a series of this kind, type and label keys needs."""
    from google.api.label_pb2 import LabelDescriptor
    from google.api.metric_pb2 import MetricDescriptor

    name = series.metric.type.rsplit("/", 1)[1]
    return MetricDescriptor(
        type=series.metric.type,
        metric_kind=series.metric_kind,
        value_type=series.value_type,
        description=description,
        display_name=name,
        unit="s" if "_seconds" in name else "By" if name.endswith("_bytes") else "1",
        labels=[LabelDescriptor(key=key) for key in series.metric.labels],  # STRING
    )


def descriptions(registry: CollectorRegistry) -> dict[str, str]:
    """Metric type → the family's help text."""
    return {
        promql.metric_type(promql.exposed_name(f.name, f.type)): f.documentation
        for f in registry.collect()
    }


def _distributions(samples: Iterable[Sample]) -> Iterator[tuple[dict[str, str], dict]]:
    """Per label set: a Cloud Monitoring Distribution from cumulative ``le`` buckets."""
    groups: dict[tuple, dict[str, Any]] = {}
    for s in samples:
        labels = {k: v for k, v in s.labels.items() if k != "le"}
        group = groups.setdefault(tuple(sorted(labels.items())), {"labels": labels, "le": {}})
        if s.name.endswith("_bucket"):
            group["le"][float(s.labels["le"])] = s.value
        elif s.name.endswith("_sum"):
            group["sum"] = s.value
    for group in groups.values():
        cumulative = sorted(group["le"].items())  # +Inf sorts last
        bounds = [bound for bound, _ in cumulative if math.isfinite(bound)]
        counts = [int(c - p) for (_, p), (_, c) in pairwise([(-math.inf, 0.0), *cumulative])]
        total = int(cumulative[-1][1]) if cumulative else 0
        yield (
            group["labels"],
            {
                "count": total,
                "mean": group.get("sum", 0.0) / total if total else 0.0,
                "sum_of_squared_deviation": 0.0,  # not known from Prometheus buckets
                "bucket_options": {"explicit_buckets": {"bounds": bounds}},
                "bucket_counts": counts,
            },
        )


def _timestamp(seconds: float) -> Any:
    from google.protobuf.timestamp_pb2 import Timestamp

    whole = int(seconds)
    return Timestamp(seconds=whole, nanos=int((seconds - whole) * 1e9))
