"""Push a process's Prometheus metrics to Cloud Monitoring custom metrics.

Why exports start from request activity: with Cloud Run's default CPU allocation ("CPU only
during request processing") an instance's CPU is throttled to almost nothing between
requests, so a timer thread alone would fire late or not at all, and the last minutes before
scale-down would never be pushed. The service therefore calls :meth:`MetricsExporter.maybe_export`
on every request: a time comparison on the hot path and, once the period has elapsed and no
export is running, a background thread that runs while requests keep the CPU allocated.
:meth:`~MetricsExporter.start` adds a timer as a fallback (CPU always allocated, local runs),
and :meth:`~MetricsExporter.close` pushes once more at shutdown: Cloud Run sends SIGTERM and
leaves 10 s of CPU, so the final export is bounded by ``timeout_seconds``.

Mapping (monitoring/timeseries.py; names in monitoring/promql.py): counters → CUMULATIVE
doubles whose start time is this process's start; gauges → GAUGE doubles; histograms →
CUMULATIVE DISTRIBUTION with the ``le`` bounds as explicit buckets. At most
``max_series_per_call`` series per CreateTimeSeries call; missing metric descriptors are
created first (listed once per process). Every series has the resource ``generic_task`` with
``task_id = <instance id>-<pid>``: instances and gunicorn workers each own their series, so no
write overwrites another's. Failures are logged and counted in
``titanic_metrics_exports_total{outcome="error"}``, never raised. google-cloud-monitoring is
imported on first export only. Fork-safe: the client, the locks and the timer live per pid.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from titanic_mlops.monitoring import metrics, promql, timeseries
from titanic_mlops.settings import MetricsExportSettings

log = logging.getLogger(__name__)
# Cloud Monitoring accepts at most one point per time series every 5 s.
MIN_POINT_INTERVAL = 5.0


@dataclass
class _Process:
    """What one process (pid) owns: nothing of it may be used after a fork."""

    pid: int
    start: float  # start time of every CUMULATIVE series of this process
    busy: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    client: Any = None
    descriptors: set[str] | None = None  # metric types known to exist (None: not listed yet)
    timer: threading.Thread | None = None
    last_end: float = -math.inf  # end time (Unix) of the last exported points
    again: bool = False  # a forced export arrived while one was running
    closed: bool = False


class MetricsExporter:
    """Pushes ``registry`` to Cloud Monitoring; a no-op unless export is enabled with a project."""

    def __init__(
        self,
        settings: MetricsExportSettings,
        registry: CollectorRegistry,
        instance_id: str,
        client: Any = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.instance_id = instance_id
        self.enabled = settings.active
        self.min_interval = MIN_POINT_INTERVAL
        self._client = client
        self._state: _Process | None = None
        self._state_lock = threading.Lock()
        self._timer_wanted = False
        self._due = time.monotonic() + settings.period_seconds
        if self.enabled and client is None:
            # Import the client library now (in gunicorn's master, before the fork): done by
            # the first export instead, its ~0.5 s of CPU would stall a serving worker.
            # Only the import: the channel is created per process, after the fork.
            from titanic_mlops.monitoring import gcp_clients

            gcp_clients.preload()

    # --- public API ---------------------------------------------------------------------
    def export_now(self) -> bool:
        """Push every series now (waits for a running export); True when all were accepted."""
        if not self.enabled:
            return False
        state = self._process()
        with state.busy:
            return self._export(state)

    def maybe_export(self, force: bool = False) -> None:
        """Start an export in the background if one is due (or ``force``); never blocks."""
        if not self.enabled or (not force and time.monotonic() < self._due):
            return
        state = self._process()
        if state.closed:
            return
        if self._timer_wanted and state.timer is None:
            self._start_timer(state)
        if force:
            state.again = True
        if state.busy.acquire(blocking=False):
            threading.Thread(
                target=self._drain, args=(state,), name="metrics-export", daemon=True
            ).start()

    def start(self) -> None:
        """Also export from a timer thread, started in this process.

        Threads do not survive a fork: a forked worker starts its own timer with its first
        :meth:`maybe_export`. Call it where requests are served, not in a pre-fork master.
        """
        if self.enabled:
            self._timer_wanted = True
            self._start_timer(self._process())

    def close(self, timeout: float | None = None) -> bool:
        """Stop the timer and push a final export, giving up after ``timeout`` seconds."""
        if not self.enabled:
            return False
        state = self._process()
        if state.closed:
            return False
        state.closed = True
        state.stop.set()
        result: list[bool] = []
        final = threading.Thread(target=lambda: result.append(self.export_now()), daemon=True)
        final.start()
        final.join(self.settings.timeout_seconds if timeout is None else timeout)
        return bool(result and result[0])

    # --- per process --------------------------------------------------------------------
    def _process(self) -> _Process:
        state = self._state
        if state is None or state.pid != os.getpid():
            with self._state_lock:
                state = self._state
                if state is None or state.pid != os.getpid():
                    state = self._state = _Process(os.getpid(), _process_start_time())
        return state

    def _start_timer(self, state: _Process) -> None:
        with self._state_lock:
            if state.timer is None:
                state.timer = threading.Thread(
                    target=self._tick, args=(state,), name="metrics-export-timer", daemon=True
                )
                state.timer.start()

    def _tick(self, state: _Process) -> None:
        while not state.stop.wait(max(0.05, self._due - time.monotonic())):
            self.maybe_export()

    def _drain(self, state: _Process) -> None:
        """Export while exports are requested; called holding ``state.busy``."""
        while True:
            try:
                state.again = False
                self._export(state)
            finally:
                state.busy.release()
            if not (state.again and state.busy.acquire(blocking=False)):
                return

    # --- one export ---------------------------------------------------------------------
    def _export(self, state: _Process) -> bool:
        # Spaced by the points' own end times, which Cloud Monitoring checks: a clock read
        # earlier than the end time would let a preempted export land too soon. Capped, so
        # that a wall clock stepped back cannot stall the exporter.
        wait = min(self.min_interval, state.last_end + self.min_interval - time.time())
        if wait > 0:
            time.sleep(wait)
        end = state.last_end = time.time()
        self._due = time.monotonic() + self.settings.period_seconds
        try:
            series = self._series(state, end)
            client = self._client or state.client
            if client is None:
                from titanic_mlops.monitoring.gcp_clients import metric_client

                client = state.client = metric_client()
            self._ensure_descriptors(client, state, series)
            project = f"projects/{self.settings.project_id}"
            size = self.settings.max_series_per_call
            for first in range(0, len(series), size):
                client.create_time_series(
                    name=project,
                    time_series=series[first : first + size],
                    timeout=self.settings.timeout_seconds,
                    retry=None,  # the next period is the retry
                )
        except Exception as exc:  # never into a request: log one line and count it
            metrics.EXPORTS.labels("error").inc()
            log.warning("metrics export to Cloud Monitoring failed: %s", _one_line(exc))
            return False
        metrics.EXPORTS.labels("ok").inc()
        return True

    def _ensure_descriptors(self, client: Any, state: _Process, series: list[Any]) -> None:
        """Create the descriptors missing in the project (listed once per process)."""
        project = f"projects/{self.settings.project_id}"
        if state.descriptors is None:
            listed = client.list_metric_descriptors(
                request={
                    "name": project,
                    "filter": f'metric.type = starts_with("{promql.DOMAIN}/")',
                },
                timeout=self.settings.timeout_seconds,
                retry=None,
            )
            state.descriptors = {d.type for d in listed}
        missing = {s.metric.type: s for s in series if s.metric.type not in state.descriptors}
        helps = timeseries.descriptions(self.registry) if missing else {}
        for kind, one in missing.items():
            client.create_metric_descriptor(
                name=project,
                metric_descriptor=timeseries.descriptor(one, helps.get(kind, "")),
                timeout=self.settings.timeout_seconds,
                retry=None,
            )
            state.descriptors.add(kind)

    def time_series(self) -> list[Any]:
        """The registry's current samples as ``monitoring_v3.TimeSeries``, one per series."""
        return self._series(self._process(), time.time())

    def _series(self, state: _Process, end: float) -> list[Any]:
        labels = {
            "project_id": self.settings.project_id,
            "location": self.settings.location,
            "namespace": self.settings.namespace,
            "job": self.settings.job,
            "task_id": f"{self.instance_id}-{state.pid}",  # one writer per series
        }
        resource = {"type": "generic_task", "labels": labels}
        return timeseries.to_time_series(self.registry, resource, state.start, end)


def _process_start_time() -> float:
    """This process's start (Unix time), from /proc like prometheus-client; else now."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= 300 else text[:297] + "..."
