"""Cloud Monitoring stand-in: in-memory services behind a real gRPC server on loopback.

The real google-cloud-monitoring(-dashboards) clients reach it over gRPC (see ``client``).
Each service stores what it is sent and rejects what the real API rejects where the code
under test could get it wrong: time series as in metric_service.py; names in create
requests, unknown notification channels, GCP-invalid uptime periods, deleting an uptime
check a policy still uses, stale dashboard etags.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable
from concurrent import futures
from datetime import UTC, datetime
from typing import Any

import grpc
from google.cloud import monitoring_dashboard_v1 as dash
from google.cloud import monitoring_v3 as mon
from google.protobuf import field_mask_pb2

from tests.fakes.metric_service import MetricServiceFake

V3 = "google.monitoring.v3"
DASHBOARDS = "google.monitoring.dashboard.v1.DashboardsService"


def _deserializer(cls: Any) -> Callable[[bytes], Any]:
    return cls.deserialize


def _serializer(cls: Any) -> Callable[[Any], bytes]:
    return (lambda _: b"") if cls is None else cls.serialize


def _merge(stored: Any, new: Any, mask: field_mask_pb2.FieldMask | None) -> Any:
    """``stored`` updated from ``new``: the masked top-level fields, or all of them."""
    if not mask or not mask.paths:
        return type(stored)(new)
    target = type(stored).pb(stored)
    mask.MergeMessage(
        type(new).pb(new), target, replace_message_field=True, replace_repeated_field=True
    )
    return type(stored).wrap(target)


class FakeMonitoring(MetricServiceFake):
    """Metric, AlertPolicy, NotificationChannel, UptimeCheck and Dashboards services."""

    def __init__(self, min_point_interval: float = 5.0) -> None:
        super().__init__(min_point_interval)
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.policies: dict[str, mon.AlertPolicy] = {}
        self.channels: dict[str, mon.NotificationChannel] = {}
        self.uptime_checks: dict[str, mon.UptimeCheckConfig] = {}
        self.dashboards: dict[str, dash.Dashboard] = {}
        self._ids = itertools.count(1001)
        self._server: grpc.Server | None = None
        self.address = ""

    # --- lifecycle ----------------------------------------------------------------------
    def start(self) -> FakeMonitoring:
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self._server.add_generic_rpc_handlers(self._handlers())
        self.address = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=0)

    def client(self, client_cls: type) -> Any:
        """A real client of ``client_cls`` whose transport is a channel to this server."""
        transport_cls = client_cls.get_transport_class("grpc")
        return client_cls(transport=transport_cls(channel=grpc.insecure_channel(self.address)))

    def mutations(self) -> int:
        """Create, Update and Delete calls received so far (any service)."""
        return sum(
            n for name, n in self.calls.items() if name.startswith(("Create", "Update", "Delete"))
        )

    def _new_id(self) -> int:
        return next(self._ids)

    def _handlers(self) -> list[grpc.GenericRpcHandler]:
        services: dict[str, dict[str, tuple]] = {
            f"{V3}.MetricService": self.metric_service(),
            f"{V3}.AlertPolicyService": self._crud(
                "AlertPolicy", "AlertPolicies", self.policies, "alert_policy", self._check_policy
            ),
            f"{V3}.NotificationChannelService": self._crud(
                "NotificationChannel",
                "NotificationChannels",
                self.channels,
                "notification_channel",
                self._check_channel,
            ),
            f"{V3}.UptimeCheckService": self._crud(
                "UptimeCheckConfig",
                "UptimeCheckConfigs",
                self.uptime_checks,
                "uptime_check_config",
                self._check_uptime,
            ),
            DASHBOARDS: self._crud("Dashboard", "Dashboards", self.dashboards, "dashboard", None),
        }
        handlers = []
        for service, methods in services.items():
            rpcs = {}
            for method, (fn, request_cls, response_cls) in methods.items():
                rpcs[method] = grpc.unary_unary_rpc_method_handler(
                    self._counted(method, fn),
                    request_deserializer=_deserializer(request_cls),
                    response_serializer=_serializer(response_cls),
                )
            handlers.append(grpc.method_handlers_generic_handler(service, rpcs))
        return handlers

    def _counted(self, method: str, fn: Callable) -> Callable:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            with self.lock:
                self.calls[method] += 1
            return fn(request, context)

        return handle

    # --- the CRUD services (alert policies, channels, uptime checks, dashboards) ----------
    def _crud(
        self, kind: str, plural: str, store: dict, field: str, check: Callable | None
    ) -> dict[str, tuple]:
        """List/Get/Create/Update/Delete handlers of one resource kept in ``store``."""
        module = dash if kind == "Dashboard" else mon
        resource_cls = getattr(module, kind)
        collection = plural[0].lower() + plural[1:]

        def parent_of(request: Any) -> str:
            return getattr(request, "parent", "") or request.name

        def list_(request, context):
            parent = parent_of(request)
            with self.lock:
                found = [r for n, r in store.items() if n.startswith(parent + "/")]
            if getattr(request, "filter", "").startswith("type="):
                wanted = request.filter.split("=", 1)[1].strip('"')
                found = [r for r in found if r.type_ == wanted]
            response_cls = getattr(module, f"List{plural}Response")
            field_name = {"AlertPolicy": "alert_policies"}.get(kind, collection_snake)
            return response_cls(**{field_name: found})

        def get(request, context):
            with self.lock:
                if request.name not in store:
                    context.abort(grpc.StatusCode.NOT_FOUND, request.name)
                return store[request.name]

        def create(request, context):
            resource = resource_cls(getattr(request, field))
            if resource.name:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name is assigned by the server")
            if check:
                check(resource, context)
            with self.lock:
                resource.name = f"{parent_of(request)}/{collection}/{self._new_id()}"
                self._stamp(resource)
                store[resource.name] = resource
            return resource

        def update(request, context):
            new = getattr(request, field)
            with self.lock:
                stored = store.get(new.name)
                if stored is None:
                    context.abort(grpc.StatusCode.NOT_FOUND, new.name)
                if kind == "Dashboard" and new.etag != stored.etag:
                    context.abort(grpc.StatusCode.ABORTED, "etag mismatch: dashboard changed")
                mask = getattr(request, "update_mask", None)
                merged = _merge(stored, new, mask)
                merged.name = stored.name
            if check:
                check(merged, context)
            with self.lock:
                self._stamp(merged)
                store[merged.name] = merged
            return merged

        def delete(request, context) -> None:
            with self.lock:
                if kind == "UptimeCheckConfig" and self._check_in_use(request.name):
                    context.abort(grpc.StatusCode.FAILED_PRECONDITION, "check used by a policy")
                if store.pop(request.name, None) is None:
                    context.abort(grpc.StatusCode.NOT_FOUND, request.name)

        collection_snake = "".join("_" + c.lower() if c.isupper() else c for c in plural).lstrip(
            "_"
        )
        request = lambda verb: getattr(module, f"{verb}{kind}Request")  # noqa: E731
        return {
            f"List{plural}": (
                list_,
                getattr(module, f"List{plural}Request"),
                getattr(module, f"List{plural}Response"),
            ),
            f"Get{kind}": (get, request("Get"), resource_cls),
            f"Create{kind}": (create, request("Create"), resource_cls),
            f"Update{kind}": (update, request("Update"), resource_cls),
            f"Delete{kind}": (delete, request("Delete"), None),
        }

    def _stamp(self, resource: Any) -> None:
        """Server-side fields a client must ignore when comparing."""
        if isinstance(resource, mon.AlertPolicy):
            for number, condition in enumerate(resource.conditions):
                if not condition.name:
                    condition.name = f"{resource.name}/conditions/{number + self._new_id()}"
            resource.mutation_record.mutate_time = datetime.now(UTC)
            resource.mutation_record.mutated_by = "fake@example.com"
        if isinstance(resource, dash.Dashboard):
            resource.etag = f"etag-{self._new_id()}"

    def _check_in_use(self, name: str) -> bool:
        check_id = name.rsplit("/", 1)[-1]
        return any(
            f'check_id="{check_id}"' in condition.condition_threshold.filter
            for policy in self.policies.values()
            for condition in policy.conditions
        )

    # --- validation the real API does ----------------------------------------------------
    def _check_policy(self, policy: mon.AlertPolicy, context) -> None:
        if not policy.display_name or not 1 <= len(policy.conditions) <= 6:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "display name and 1-6 conditions")
        for condition in policy.conditions:
            promql = condition.condition_prometheus_query_language
            if "condition_prometheus_query_language" in condition:
                interval = promql.evaluation_interval.total_seconds()
                if not promql.query or (interval and interval % 30):
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, "query; interval 30 s multiple")
        with self.lock:
            missing = [c for c in policy.notification_channels if c not in self.channels]
        if missing:
            context.abort(grpc.StatusCode.NOT_FOUND, f"notification channel {missing[0]}")

    def _check_channel(self, channel: mon.NotificationChannel, context) -> None:
        if channel.type_ == "email" and "@" not in channel.labels.get("email_address", ""):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "email channels need email_address")

    def _check_uptime(self, check: mon.UptimeCheckConfig, context) -> None:
        period = check.period.total_seconds()
        host = check.monitored_resource.labels.get("host", "")
        if (
            period not in (60, 300, 600, 900)
            or not host
            or not check.http_check.path.startswith("/")
        ):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "period, host or path")
