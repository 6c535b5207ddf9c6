"""Apply the alert policies of ``alert_policies.py`` to a project, with a plan.

Ensures the email notification channel and the uptime check, then creates, updates and
deletes only the policies that carry the managed-by label; a second run changes nothing.
``dry_run`` prints the plan and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from titanic_mlops.monitoring.alert_policies import (
    to_policy,
    uptime_check,
    uptime_policy,
)
from titanic_mlops.monitoring.plan import Plan, changed_fields, diff
from titanic_mlops.monitoring.rules import RULES_FILE, RuleError, load_rules
from titanic_mlops.settings import AlertingSettings, SettingsError, load_settings

__all__ = ["Clients", "Plan", "apply", "main"]

# The fields compared to decide whether a managed resource needs an update.
_POLICY_FIELDS = (
    *("display_name", "documentation", "user_labels", "conditions", "combiner"),
    *("severity", "notification_channels", "enabled"),
)
_CHECK_FIELDS = ("display_name", "monitored_resource", "http_check", "period", "timeout")


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
