"""The Cloud Monitoring dashboard as code: ``configs/monitoring/dashboard.json``, applied.

The file is the dashboard's JSON as the Dashboards API (and ``gcloud monitoring dashboards
create --config-from-file``) takes it; every chart is a PromQL query over the exported custom
metrics, named as Cloud Monitoring's PromQL names them (monitoring/promql.py). :func:`apply`
creates it, or updates the dashboard with the same display name (with its etag, so a
concurrent edit in the console is not silently overwritten).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from titanic_mlops.monitoring.plan import Plan, diff
from titanic_mlops.settings import PROJECT_ROOT, SettingsError, load_settings

DASHBOARD_FILE = PROJECT_ROOT / "configs" / "monitoring" / "dashboard.json"
_METRIC = re.compile(r"custom_googleapis_com:(\w+)")


def load_dashboard(path: str | Path = DASHBOARD_FILE) -> Any:
    """The file parsed into a ``monitoring_dashboard_v1.Dashboard`` (unknown fields refused)."""
    from google.cloud import monitoring_dashboard_v1

    return monitoring_dashboard_v1.Dashboard.from_json(Path(path).read_text())


def queries(dashboard: Any) -> list[str]:
    """Every PromQL query of the dashboard, in order."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "prometheus_query" and item:
                    found.append(item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(type(dashboard).to_dict(dashboard))
    return found


def metric_names(query: str) -> list[str]:
    """The exported names a query reads (``custom_googleapis_com:<name>``)."""
    return _METRIC.findall(query)


def _view(dashboard: Any) -> dict[str, Any]:
    data = type(dashboard).to_dict(dashboard, use_integers_for_enums=False)
    return {key: value for key, value in data.items() if key not in ("name", "etag")}


def apply(
    project: str,
    *,
    path: str | Path = DASHBOARD_FILE,
    client: Any = None,
    dry_run: bool = False,
) -> Plan:
    """Create the dashboard or update the one with its display name; ``dry_run`` only plans."""
    want = load_dashboard(path)
    if client is None:
        from titanic_mlops.monitoring.gcp_clients import dashboards_client

        client = dashboards_client()
    parent, plan = f"projects/{project}", Plan(dry_run=dry_run)
    same = [d for d in client.list_dashboards(parent=parent) if d.display_name == want.display_name]
    if not same:
        plan.add("create", "dashboard", want.display_name)
        if not dry_run:
            client.create_dashboard(parent=parent, dashboard=want)
        return plan
    have = same[0]  # display names are not unique in GCP: the first one is ours
    old, new = _view(have), _view(want)
    if old == new:
        plan.add("unchanged", "dashboard", want.display_name)
        return plan
    plan.add("update", "dashboard", want.display_name, diff(old, new))
    if not dry_run:
        want.name, want.etag = have.name, have.etag
        client.update_dashboard(request={"dashboard": want})
    return plan


def main(project: str = "", dry_run: bool = False) -> Plan:
    """``invoke dashboard-apply``: errors as one line."""
    from google.api_core.exceptions import GoogleAPIError
    from google.protobuf.json_format import Error as JsonError

    try:
        project = project or load_settings().metrics_export.project_id
        if not project:
            raise SettingsError("no project: pass --project P or set GOOGLE_CLOUD_PROJECT")
        plan = apply(project, dry_run=dry_run)
    except (SettingsError, GoogleAPIError, JsonError, ValueError) as exc:
        raise SystemExit(f"dashboard-apply: {exc}") from None
    print(plan)
    return plan
