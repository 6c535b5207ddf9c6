"""Alert rules → Cloud Monitoring alert policies (pure; ``alerts_apply.py`` applies them).

``configs/monitoring/alert_rules.yaml`` is the one source: each Prometheus alerting rule
becomes a policy with one ``condition_prometheus_query_language`` (the expression with its
metric names mapped to the exported custom metrics, ``for`` → duration, the group's
interval → evaluation interval), its annotations as documentation, and a user label that
marks it as managed here. An uptime check on ``/health`` and its policy cover "service down",
which no pushed metric can show.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from titanic_mlops.monitoring import metrics, promql
from titanic_mlops.monitoring.rules import RULES_FILE, Rule, RuleError, load_rules
from titanic_mlops.settings import AlertingSettings

__all__ = ["RULES_FILE", "RuleError", "load_rules", "to_policy", "uptime_check"]

UPTIME_GROUP, UPTIME_ALERT = "titanic-uptime", "TitanicServiceDown"


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
