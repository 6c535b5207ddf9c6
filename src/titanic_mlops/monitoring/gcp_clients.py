"""Cloud Monitoring API clients: Application Default Credentials, or a local stand-in.

``MONITORING_EMULATOR_HOST=127.0.0.1:PORT`` points every client at a plain-text gRPC server
(like ``STORAGE_EMULATOR_HOST`` for GCS): the tests and the local stack use it. The Google
libraries are imported here, on first use, so importing the metrics never pulls them in.
"""

from __future__ import annotations

import os
from typing import Any

EMULATOR_VARIABLE = "MONITORING_EMULATOR_HOST"


def _make(client_cls: type) -> Any:
    host = os.environ.get(EMULATOR_VARIABLE)
    if not host:
        return client_cls()
    import grpc

    # A transport built on our channel: no credentials are looked up (none exist locally).
    transport_cls = client_cls.get_transport_class("grpc")
    return client_cls(transport=transport_cls(channel=grpc.insecure_channel(host)))


def preload() -> None:
    """Import what :func:`metric_client` and the time-series conversion need, without
    creating a client (a gRPC channel must not cross a fork)."""
    import grpc  # noqa: F401
    from google.api import label_pb2, metric_pb2  # noqa: F401
    from google.cloud import monitoring_v3  # noqa: F401


def metric_client() -> Any:
    from google.cloud import monitoring_v3

    return _make(monitoring_v3.MetricServiceClient)


def alert_policy_client() -> Any:
    from google.cloud import monitoring_v3

    return _make(monitoring_v3.AlertPolicyServiceClient)


def notification_channel_client() -> Any:
    from google.cloud import monitoring_v3

    return _make(monitoring_v3.NotificationChannelServiceClient)


def uptime_check_client() -> Any:
    from google.cloud import monitoring_v3

    return _make(monitoring_v3.UptimeCheckServiceClient)


def dashboards_client() -> Any:
    from google.cloud import monitoring_dashboard_v1

    return _make(monitoring_dashboard_v1.DashboardsServiceClient)
