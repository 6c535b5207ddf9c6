"""The dashboard file: a valid Dashboard proto over exported metrics, applied idempotently."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from google.cloud.monitoring_dashboard_v1 import DashboardsServiceClient
from google.protobuf import json_format

from tests.conftest import ROOT
from tests.integration.test_alert_rules import promtool
from titanic_mlops.monitoring import dashboard, metrics, promql

pytestmark = pytest.mark.integration
EXPORTED = set(promql.query_names(metrics.REGISTRY))
# rewriting with this identity map accepts mapped names only: a local name would raise
MAPPED = {name: name for name in promql.query_names(metrics.REGISTRY).values()}


def test_the_file_is_a_dashboard_proto_with_the_required_charts():
    board = dashboard.load_dashboard()
    titles = " | ".join(tile.widget.title for tile in board.mosaic_layout.tiles)
    for words in ("Request rate", "Error rate", "Latency", "Predictions by class",
                  "Prediction log", "buffered", "Drift share", "Dataset drift"):  # fmt: skip
        assert words in titles
    every = " ".join(dashboard.queries(board))
    assert "histogram_quantile(0.5," in every and "histogram_quantile(0.95," in every
    for tile in board.mosaic_layout.tiles:  # tiles stay inside the 48-column grid
        assert tile.x_pos + tile.width <= board.mosaic_layout.columns


def test_every_query_reads_metrics_defined_in_metrics_py():
    queries = dashboard.queries(dashboard.load_dashboard())
    assert len(queries) >= 12
    used = set()
    for query in queries:
        names = dashboard.metric_names(query)
        assert names, f"no exported metric in {query!r}"
        assert set(names) <= EXPORTED, f"not in metrics.py: {set(names) - EXPORTED}"
        assert promql.rewrite(query, MAPPED) == query  # no metric under its local name
        used |= set(names)
    for needed in (
        "titanic_requests_total",
        "titanic_request_duration_seconds_bucket",
        "titanic_predictions_total",
        "titanic_prediction_log_records_written_total",
        "titanic_prediction_log_write_errors_total",
        "titanic_prediction_log_records_dropped_total",
        "titanic_prediction_log_buffered_records",
        "titanic_drift_share",
        "titanic_drift_dataset_drift",
    ):
        assert needed in used


def test_every_query_is_valid_promql(tmp_path):
    queries = dashboard.queries(dashboard.load_dashboard())
    group = [{"record": f"dashboard:query_{i}", "expr": q} for i, q in enumerate(queries)]
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": group}]}))
    assert f"SUCCESS: {len(queries)} rules found" in promtool("check", "rules", path)


def test_unknown_fields_are_refused(tmp_path):
    spec = json.loads(dashboard.DASHBOARD_FILE.read_text())
    spec["mosaicLayout"]["tiles"][0]["widget"]["xyChart"]["dataSet"] = []  # typo
    path = tmp_path / "dashboard.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(json_format.ParseError, match="dataSet"):
        dashboard.load_dashboard(path)


def test_apply_creates_then_changes_nothing_then_updates(fake_monitoring, tmp_path):
    client = fake_monitoring.client(DashboardsServiceClient)
    dry = dashboard.apply("test-project", client=client, dry_run=True)
    assert dry.count("create") == 1 and not fake_monitoring.dashboards
    assert dashboard.apply("test-project", client=client).count("create") == 1
    (created,) = fake_monitoring.dashboards.values()
    assert created.display_name == "Titanic MLOps service"
    mutations = fake_monitoring.mutations()
    assert dashboard.apply("test-project", client=client).n_changes == 0
    assert fake_monitoring.mutations() == mutations

    spec = json.loads(dashboard.DASHBOARD_FILE.read_text())
    spec["mosaicLayout"]["tiles"][0]["widget"]["title"] = "Requests per second"
    edited = tmp_path / "dashboard.json"
    edited.write_text(json.dumps(spec))
    dry = dashboard.apply("test-project", path=edited, client=client, dry_run=True)
    assert fake_monitoring.mutations() == mutations
    plan = dashboard.apply("test-project", path=edited, client=client)
    (change,) = plan.changes
    assert change.action == "update" and any("Requests per second" in line for line in change.diff)
    (updated,) = fake_monitoring.dashboards.values()
    assert updated.name == created.name and updated.etag != created.etag  # same dashboard
    assert updated.mosaic_layout.tiles[0].widget.title == "Requests per second"
    assert dashboard.apply("test-project", path=edited, client=client).n_changes == 0


def test_the_invoke_task_through_the_emulator_variable(fake_monitoring):
    env = {**os.environ, "MONITORING_EMULATOR_HOST": fake_monitoring.address}
    cmd = [sys.executable, "-m", "invoke", "dashboard-apply", "--project", "test-project"]
    first = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "create    dashboard" in first.stdout and len(fake_monitoring.dashboards) == 1
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "0 change(s)" in again.stdout
