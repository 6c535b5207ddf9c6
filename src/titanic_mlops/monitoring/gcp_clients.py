"""Cloud Monitoring API clients: Application Default Credentials, or a local stand-in.

``MONITORING_EMULATOR_HOST=127.0.0.1:PORT`` points every client at a plain-text gRPC server
(like ``STORAGE_EMULATOR_HOST`` for GCS): the tests and the local stack use it. The Google
libraries are imported here, on first use, so importing the metrics never pulls them in.
"""

from __future__ import annotations

import os
from typing import Any

EMULATOR_VARIABLE = "MONITORING_EMULATOR_HOST"


def _make(client_cls: type, transport_cls: type) -> Any:
    host = os.environ.get(EMULATOR_VARIABLE)
    if not host:
        return client_cls()
    import grpc

    # A transport built on our channel: no credentials are looked up (none exist locally).
    return client_cls(transport=transport_cls(channel=grpc.insecure_channel(host)))


def preload() -> None:
    """Import what :func:`metric_client` and the time-series conversion need, without
    creating a client (a gRPC channel must not cross a fork)."""
    import grpc  # noqa: F401
    from google.api import label_pb2, metric_pb2  # noqa: F401
    from google.cloud import monitoring_v3  # noqa: F401
    from google.cloud.monitoring_v3.services.metric_service import (  # noqa: F401
        MetricServiceClient,
    )
    from google.cloud.monitoring_v3.services.metric_service.transports import (  # noqa: F401
        MetricServiceGrpcTransport,
    )


def metric_client() -> Any:
    from google.cloud.monitoring_v3.services.metric_service import MetricServiceClient
    from google.cloud.monitoring_v3.services.metric_service.transports import (
        MetricServiceGrpcTransport,
    )

    return _make(MetricServiceClient, MetricServiceGrpcTransport)


def alert_policy_client() -> Any:
    from google.cloud.monitoring_v3.services.alert_policy_service import AlertPolicyServiceClient
    from google.cloud.monitoring_v3.services.alert_policy_service.transports import (
        AlertPolicyServiceGrpcTransport,
    )

    return _make(AlertPolicyServiceClient, AlertPolicyServiceGrpcTransport)


def notification_channel_client() -> Any:
    from google.cloud.monitoring_v3.services.notification_channel_service import (
        NotificationChannelServiceClient,
    )
    from google.cloud.monitoring_v3.services.notification_channel_service.transports import (
        NotificationChannelServiceGrpcTransport,
    )

    return _make(NotificationChannelServiceClient, NotificationChannelServiceGrpcTransport)


def uptime_check_client() -> Any:
    from google.cloud.monitoring_v3.services.uptime_check_service import UptimeCheckServiceClient
    from google.cloud.monitoring_v3.services.uptime_check_service.transports import (
        UptimeCheckServiceGrpcTransport,
    )

    return _make(UptimeCheckServiceClient, UptimeCheckServiceGrpcTransport)


def dashboards_client() -> Any:
    from google.cloud.monitoring_dashboard_v1.services.dashboards_service import (
        DashboardsServiceClient,
    )
    from google.cloud.monitoring_dashboard_v1.services.dashboards_service.transports import (
        DashboardsServiceGrpcTransport,
    )

    return _make(DashboardsServiceClient, DashboardsServiceGrpcTransport)
