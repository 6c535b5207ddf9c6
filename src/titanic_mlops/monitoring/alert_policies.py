"""Alert rules → Cloud Monitoring alert policies (pure), and applying them with a plan.

``configs/monitoring/alert_rules.yaml`` is the one source: each Prometheus alerting rule
becomes a policy with one ``condition_prometheus_query_language`` (the expression with its
metric names mapped to the exported custom metrics, ``for`` → duration, the group's
interval → evaluation interval), its annotations as documentation, and a user label that
marks it as managed here. An uptime check on ``/health`` and its policy cover "service down",
which no pushed metric can show. :func:`apply` touches only what carries that label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from titanic_mlops.monitoring import metrics, promql
from titanic_mlops.monitoring.plan import Plan, changed_fields, diff
from titanic_mlops.monitoring.rules import RULES_FILE, Rule, RuleError, load_rules
from titanic_mlops.settings import AlertingSettings, SettingsError, load_settings

__all__ = ["RULES_FILE", "Clients", "RuleError", "apply", "load_rules", "to_policy", "uptime_check"]

UPTIME_GROUP, UPTIME_ALERT = "titanic-uptime", "TitanicServiceDown"
_POLICY_FIELDS = (
    *("display_name", "documentation", "user_labels", "conditions", "combiner"),
    *("severity", "notification_channels", "enabled"),
)
_CHECK_FIELDS = ("display_name", "monitored_resource", "http_check", "period", "timeout")


def to_policy(rule: Rule, settings: AlertingSettings, channels: Sequence[str] = ()) -> Any:
    """One rule as a ``monitoring_v3.AlertPolicy`` (PromQL condition, managed label)."""
    try:
        query = promql.rewrite(rule.expr, promql.query_names(metrics.REGISTRY))
    except promql.UnknownMetric as exc:
        raise RuleError(f"{rule.name}: {exc}") from None
    notes = rule.annotations
    condition = {
        "query": query,
        "duration": timedelta(seconds=rule.for_seconds),
        "evaluation_interval": timedelta(seconds=rule.interval_seconds),
        "labels": rule.labels,
        "rule_group": rule.group,
        "alert_rule": rule.name,
    }
    return _policy(
        rule.group,
        rule.name,
        notes,
        rule.labels["severity"],
        settings,
        channels,
        {"display_name": rule.name, "condition_prometheus_query_language": condition},
    )


def _policy(
    group: str,
    name: str,
    notes: dict[str, str],
    severity: str,
    settings: AlertingSettings,
    channels: Sequence[str],
    condition: dict[str, Any],
) -> Any:
    """The policy around one condition: documentation, managed label, severity, channels."""
    from google.cloud import monitoring_v3

    content = (
        f"**{notes['summary']}**\n\n{notes['description']}\n\nRunbook: {notes['runbook']}\n\n"
        f"Rule `{name}` ({group}), managed by `invoke alerts-apply` from the repository."
    )
    return monitoring_v3.AlertPolicy(
        display_name=f"{group}/{name}",
        documentation={
            "content": content,
            "mime_type": "text/markdown",
            "subject": notes["summary"][:255],
        },
        user_labels={settings.policy_label_key: settings.policy_label_value},
        conditions=[condition],
        combiner=monitoring_v3.AlertPolicy.ConditionCombinerType.OR,
        severity=monitoring_v3.AlertPolicy.Severity[severity.upper()],
        notification_channels=list(channels),
        enabled=True,
    )


def uptime_check(settings: AlertingSettings, project: str) -> Any:
    """The ``/health`` uptime check (HTTPS GET from several regions) for the Cloud Run host."""
    from google.cloud import monitoring_v3

    check = settings.uptime_check
    return monitoring_v3.UptimeCheckConfig(
        display_name=f"titanic-mlops {check.host}{check.path}",
        monitored_resource={
            "type": "uptime_url",
            "labels": {"project_id": project, "host": check.host},
        },
        http_check={"path": check.path, "port": 443, "use_ssl": True, "validate_ssl": True},
        period=timedelta(seconds=check.period_seconds),
        timeout=timedelta(seconds=check.timeout_seconds),
        user_labels={settings.policy_label_key: settings.policy_label_value},
    )


def uptime_policy(check_id: str, settings: AlertingSettings, channels: Sequence[str] = ()) -> Any:
    """Fires when the uptime check fails from more than one region (Google's recipe)."""
    from google.cloud import monitoring_v3

    aggregation = monitoring_v3.Aggregation
    notes = {
        "summary": f"{settings.uptime_check.path} is failing: the service may be down",
        "description": f"The uptime check on https://{settings.uptime_check.host}"
        f"{settings.uptime_check.path} fails from more than one region.",
        "runbook": "Open the Cloud Run service: revisions, instance logs, recent deploys; "
        "roll back to the last good revision if the newest one does not start.",
    }
    threshold = {
        "filter": 'metric.type="monitoring.googleapis.com/uptime_check/check_passed" AND '
        f'metric.label.check_id="{check_id}" AND resource.type="uptime_url"',
        "aggregations": [
            {
                "alignment_period": timedelta(seconds=1200),
                "per_series_aligner": aggregation.Aligner.ALIGN_NEXT_OLDER,
                "cross_series_reducer": aggregation.Reducer.REDUCE_COUNT_FALSE,
                "group_by_fields": ["resource.label.*"],
            }
        ],
        "comparison": monitoring_v3.ComparisonType.COMPARISON_GT,
        "threshold_value": 1,
        "duration": timedelta(seconds=60),
        "trigger": {"count": 1},
    }
    return _policy(
        UPTIME_GROUP,
        UPTIME_ALERT,
        notes,
        "critical",
        settings,
        channels,
        {"display_name": "uptime check failing", "condition_threshold": threshold},
    )


# --- applying ------------------------------------------------------------------------------


@dataclass
class Clients:
    """The three API clients :func:`apply` uses (ADC, or ``MONITORING_EMULATOR_HOST``)."""

    policies: Any
    channels: Any
    uptime: Any

    @classmethod
    def default(cls) -> Clients:
        from titanic_mlops.monitoring import gcp_clients as g

        return cls(
            g.alert_policy_client(), g.notification_channel_client(), g.uptime_check_client()
        )


def _view(message: Any, keys: Sequence[str]) -> dict[str, Any]:
    """The fields this module manages, as plain data (server-assigned names dropped)."""
    data = type(message).to_dict(message, use_integers_for_enums=False)
    view = {key: data.get(key) for key in keys}
    for condition in view.get("conditions") or []:
        condition.pop("name", None)
    return view


def apply(
    project: str,
    settings: AlertingSettings,
    *,
    rules_path: str | Path = RULES_FILE,
    clients: Clients | None = None,
    dry_run: bool = False,
) -> Plan:
    """Make the project's managed channel, uptime check and policies match the repository.

    Creates, updates and deletes only resources carrying the managed label; ``dry_run``
    computes and returns the same plan without changing anything.
    """
    if not settings.notification_email:
        raise RuleError("ALERTING_NOTIFICATION_EMAIL is empty: set the address for alert emails")
    if not settings.uptime_check.host:
        raise RuleError("ALERTING_UPTIME_CHECK_HOST is empty: set the Cloud Run service's host")
    rules = load_rules(rules_path)
    [to_policy(rule, settings) for rule in rules]  # fail on a bad rule before any change
    clients = clients or Clients.default()
    parent, plan = f"projects/{project}", Plan(dry_run=dry_run)
    channel = _ensure_channel(clients.channels, parent, settings, plan)
    check_id, stale_checks = _ensure_uptime_check(clients.uptime, parent, settings, plan)
    desired = [to_policy(rule, settings, [channel]) for rule in rules]
    desired.append(uptime_policy(check_id, settings, [channel]))
    _sync_policies(clients.policies, parent, desired, settings, plan)
    for stale in stale_checks:  # after the policies: a check in use cannot be deleted
        if not dry_run:
            clients.uptime.delete_uptime_check_config(name=stale)
    return plan


def _managed(resource: Any, settings: AlertingSettings) -> bool:
    return resource.user_labels.get(settings.policy_label_key) == settings.policy_label_value


def _ensure_channel(client: Any, parent: str, settings: AlertingSettings, plan: Plan) -> str:
    email = settings.notification_email
    listed = client.list_notification_channels(request={"name": parent, "filter": 'type="email"'})
    for channel in listed:
        if channel.type_ == "email" and channel.labels.get("email_address") == email:
            plan.add("unchanged", "notification channel", f"email {email}")
            return channel.name
    plan.add("create", "notification channel", f"email {email}")
    if plan.dry_run:
        return f"{parent}/notificationChannels/(new)"
    from google.cloud import monitoring_v3

    created = client.create_notification_channel(
        name=parent,
        notification_channel=monitoring_v3.NotificationChannel(
            type_="email",
            display_name=f"titanic-mlops alerts ({email})",
            labels={"email_address": email},
            user_labels={settings.policy_label_key: settings.policy_label_value},
        ),
    )
    return created.name


def _ensure_uptime_check(
    client: Any, parent: str, settings: AlertingSettings, plan: Plan
) -> tuple[str, list[str]]:
    """The managed check's id (created or updated first) and the checks to delete last."""
    want = uptime_check(settings, parent.split("/", 1)[1])
    managed = [c for c in client.list_uptime_check_configs(parent=parent) if _managed(c, settings)]
    keep = next((c for c in managed if c.monitored_resource == want.monitored_resource), None)
    stale = [c for c in managed if c is not keep]
    for old in stale:
        plan.add("delete", "uptime check", old.display_name)
    if keep is None:
        plan.add("create", "uptime check", want.display_name)
        name = (
            "(new)"
            if plan.dry_run
            else client.create_uptime_check_config(parent=parent, uptime_check_config=want).name
        )
    else:
        name = keep.name
        old, new = _view(keep, _CHECK_FIELDS), _view(want, _CHECK_FIELDS)
        if old == new:
            plan.add("unchanged", "uptime check", want.display_name)
        else:
            plan.add("update", "uptime check", want.display_name, diff(old, new))
            if not plan.dry_run:
                want.name = keep.name
                mask = {"paths": [f for f in changed_fields(old, new) if f != "monitored_resource"]}
                client.update_uptime_check_config(uptime_check_config=want, update_mask=mask)
    return name.rsplit("/", 1)[-1], [c.name for c in stale]


def _sync_policies(
    client: Any, parent: str, desired: list[Any], settings: AlertingSettings, plan: Plan
) -> None:
    existing: dict[str, list[Any]] = {}
    for policy in client.list_alert_policies(name=parent):
        if _managed(policy, settings):  # anything else is never touched
            existing.setdefault(policy.display_name, []).append(policy)
    for want in desired:
        found = existing.pop(want.display_name, [])
        if not found:
            plan.add("create", "alert policy", want.display_name)
            if not plan.dry_run:
                client.create_alert_policy(name=parent, alert_policy=want)
            continue
        have, duplicates = found[0], found[1:]
        existing[want.display_name + " (duplicate)"] = duplicates
        old, new = _view(have, _POLICY_FIELDS), _view(want, _POLICY_FIELDS)
        if old == new:
            plan.add("unchanged", "alert policy", want.display_name)
            continue
        plan.add("update", "alert policy", want.display_name, diff(old, new))
        if not plan.dry_run:
            want.name = have.name
            mask = {"paths": changed_fields(old, new)}
            client.update_alert_policy(alert_policy=want, update_mask=mask)
    for policies in existing.values():
        for policy in policies:
            plan.add("delete", "alert policy", policy.display_name)
            if not plan.dry_run:
                client.delete_alert_policy(name=policy.name)


def main(project: str = "", dry_run: bool = False) -> Plan:
    """``invoke alerts-apply``: settings from serving.yaml + environment; errors as one line."""
    from google.api_core.exceptions import GoogleAPIError

    try:
        settings = load_settings()
        project = project or settings.metrics_export.project_id
        if not project:
            raise RuleError("no project: pass --project P or set GOOGLE_CLOUD_PROJECT")
        plan = apply(project, settings.alerting, dry_run=dry_run)
    except (RuleError, SettingsError, GoogleAPIError) as exc:
        raise SystemExit(f"alerts-apply: {exc}") from None
    print(plan)
    return plan
