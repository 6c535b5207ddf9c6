"""`alerts-apply` against in-process AlertPolicy, NotificationChannel and UptimeCheck services."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from google.cloud.monitoring_v3 import (
    AlertPolicy,
    AlertPolicyServiceClient,
    NotificationChannelServiceClient,
    UptimeCheckServiceClient,
)

from tests.conftest import ROOT
from titanic_mlops.monitoring import alerts_apply, rules
from titanic_mlops.settings import load_settings

pytestmark = pytest.mark.integration
ENV = {
    "ALERTING_NOTIFICATION_EMAIL": "oncall@example.com",
    "ALERTING_UPTIME_CHECK_HOST": "titanic-api-abc-ew.a.run.app",
}
N_RULES = len(rules.load_rules())


@pytest.fixture
def apply(fake_monitoring):
    """Run alerts_apply.apply against the fake, through the real clients."""
    clients = alerts_apply.Clients(
        fake_monitoring.client(AlertPolicyServiceClient),
        fake_monitoring.client(NotificationChannelServiceClient),
        fake_monitoring.client(UptimeCheckServiceClient),
    )

    def _apply(env: dict[str, str] | None = None, **kwargs) -> alerts_apply.Plan:
        settings = load_settings(env={**ENV, **(env or {})}).alerting
        return alerts_apply.apply("test-project", settings, clients=clients, **kwargs)

    return _apply


def edited_rules(tmp_path, edit) -> str:
    spec = yaml.safe_load(rules.RULES_FILE.read_text())
    edit({r["alert"]: r for g in spec["groups"] for r in g["rules"]}, spec)
    path = tmp_path / "alert_rules.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return str(path)


def by_display_name(fake) -> dict[str, AlertPolicy]:
    return {p.display_name: p for p in fake.policies.values()}


def test_first_run_creates_and_second_run_changes_nothing(fake_monitoring, apply):
    first = apply()
    assert first.count("create") == N_RULES + 3  # policies + uptime policy, channel, check
    assert first.n_changes == N_RULES + 3
    (channel,) = fake_monitoring.channels.values()
    assert channel.labels["email_address"] == "oncall@example.com"
    (check,) = fake_monitoring.uptime_checks.values()
    policies = by_display_name(fake_monitoring)
    assert len(policies) == N_RULES + 1
    assert all(list(p.notification_channels) == [channel.name] for p in policies.values())
    uptime = policies["titanic-uptime/TitanicServiceDown"].conditions[0].condition_threshold
    assert f'check_id="{check.name.rsplit("/", 1)[1]}"' in uptime.filter

    mutations = fake_monitoring.mutations()
    second = apply()
    assert second.n_changes == 0 and second.count("unchanged") == N_RULES + 3
    assert fake_monitoring.mutations() == mutations
    assert "0 change(s)" in str(second)


def test_an_edited_rule_updates_its_policy_in_place(fake_monitoring, apply, tmp_path):
    apply()
    before = by_display_name(fake_monitoring)["titanic-serving/TitanicHighErrorRate"]

    def edit(rules_by_name, _):
        rule = rules_by_name["TitanicHighErrorRate"]
        rule.update({"expr": rule["expr"].replace("> 0.05", "> 0.1"), "for": "10m"})

    path = edited_rules(tmp_path, edit)
    plan = apply(rules_path=path)
    assert plan.n_changes == 1
    (update,) = [c for c in plan.changes if c.action == "update"]
    assert update.name == "titanic-serving/TitanicHighErrorRate"
    assert any("query" in line and "0.1" in line for line in update.diff)
    assert any("duration" in line and "600s" in line for line in update.diff)
    after = by_display_name(fake_monitoring)["titanic-serving/TitanicHighErrorRate"]
    assert after.name == before.name  # updated, not recreated
    assert after.conditions[0].condition_prometheus_query_language.query.endswith("> 0.1")
    assert apply(rules_path=path).n_changes == 0


def test_a_removed_rule_deletes_its_policy(fake_monitoring, apply, tmp_path):
    apply()
    path = edited_rules(tmp_path, lambda _, spec: spec["groups"][0]["rules"].pop(2))
    plan = apply(rules_path=path)
    assert [(c.action, c.name) for c in plan.changes if c.action != "unchanged"] == [
        ("delete", "titanic-serving/TitanicNoTraffic")
    ]
    assert "titanic-serving/TitanicNoTraffic" not in by_display_name(fake_monitoring)
    assert len(fake_monitoring.policies) == N_RULES


def test_unmanaged_policies_are_never_touched(fake_monitoring, apply, tmp_path):
    client = fake_monitoring.client(AlertPolicyServiceClient)
    foreign = [
        client.create_alert_policy(
            name="projects/test-project",
            alert_policy=AlertPolicy(
                display_name=display,
                user_labels=labels,
                conditions=[
                    {
                        "display_name": "c",
                        "condition_prometheus_query_language": {"query": "up == 0"},
                    }
                ],
            ),
        )
        for display, labels in [
            ("titanic-serving/TitanicHighErrorRate", {}),  # same name, no label
            ("someone else's", {"managed-by": "terraform"}),
            ("titanic-serving/TitanicNoTraffic", {"team": "data"}),
        ]
    ]
    apply()
    apply(rules_path=edited_rules(tmp_path, lambda _, spec: spec["groups"][0]["rules"].pop(2)))
    for policy in foreign:
        assert fake_monitoring.policies[policy.name] == policy  # same content, same stamps
    assert len(fake_monitoring.policies) == len(foreign) + N_RULES


def test_dry_run_changes_nothing(fake_monitoring, apply, tmp_path):
    plan = apply(dry_run=True)
    assert plan.n_changes == N_RULES + 3 and plan.dry_run
    assert "(dry run: nothing changed)" in str(plan)
    assert fake_monitoring.mutations() == 0
    assert not (
        fake_monitoring.policies or fake_monitoring.channels or fake_monitoring.uptime_checks
    )
    apply()
    snapshot = dict(fake_monitoring.policies)
    path = edited_rules(
        tmp_path, lambda r, _: r["TitanicDatasetDrift"]["labels"].update(severity="critical")
    )
    dry = apply(rules_path=path, dry_run=True)
    assert [c.name for c in dry.changes if c.action == "update"] == [
        "titanic-drift/TitanicDatasetDrift"
    ]
    assert fake_monitoring.policies == snapshot


def test_a_new_host_replaces_the_uptime_check_after_repointing_its_policy(fake_monitoring, apply):
    apply()
    (old,) = fake_monitoring.uptime_checks
    plan = apply(env={"ALERTING_UPTIME_CHECK_HOST": "titanic-api-new-ew.a.run.app"})
    actions = {(c.action, c.kind) for c in plan.changes if c.action != "unchanged"}
    assert actions == {
        ("delete", "uptime check"),
        ("create", "uptime check"),
        ("update", "alert policy"),
    }
    (new,) = fake_monitoring.uptime_checks.values()
    assert (
        new.name != old and new.monitored_resource.labels["host"] == "titanic-api-new-ew.a.run.app"
    )
    uptime = by_display_name(fake_monitoring)["titanic-uptime/TitanicServiceDown"]
    assert new.name.rsplit("/", 1)[1] in uptime.conditions[0].condition_threshold.filter


def test_a_new_email_gets_a_channel_and_every_policy_points_at_it(fake_monitoring, apply):
    apply()
    plan = apply(env={"ALERTING_NOTIFICATION_EMAIL": "team@example.com"})
    assert plan.count("update") == N_RULES + 1 and plan.count("create") == 1
    channel = next(
        c for c in fake_monitoring.channels.values() if "team@" in c.labels["email_address"]
    )
    assert all(
        list(p.notification_channels) == [channel.name] for p in fake_monitoring.policies.values()
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ALERTING_NOTIFICATION_EMAIL": ""}, "ALERTING_NOTIFICATION_EMAIL is empty"),
        ({"ALERTING_UPTIME_CHECK_HOST": ""}, "ALERTING_UPTIME_CHECK_HOST is empty"),
    ],
)
def test_missing_settings_stop_before_any_call(fake_monitoring, apply, env, message):
    with pytest.raises(rules.RuleError, match=message):
        apply(env=env)
    assert not fake_monitoring.calls


def test_the_invoke_task_through_the_emulator_variable(fake_monitoring):
    env = {**os.environ, **ENV, "MONITORING_EMULATOR_HOST": fake_monitoring.address}
    env.pop("GOOGLE_CLOUD_PROJECT", None)

    def invoke(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "invoke", "alerts-apply", *args]
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    missing = invoke()
    assert missing.returncode == 1
    assert (
        missing.stderr.strip()
        == "alerts-apply: no project: pass --project P or set GOOGLE_CLOUD_PROJECT"
    )
    dry = invoke("--project", "test-project", "--dry-run")
    assert dry.returncode == 0 and "(dry run: nothing changed)" in dry.stdout
    assert not fake_monitoring.policies
    first = invoke("--project", "test-project")
    assert first.returncode == 0, first.stderr
    assert f"{N_RULES + 3} change(s)" in first.stdout
    second = invoke("--project", "test-project")
    assert "0 change(s): " in second.stdout and len(fake_monitoring.policies) == N_RULES + 1
