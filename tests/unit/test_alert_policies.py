"""The pure conversion: rule file → AlertPolicy objects, uptime check and its policy."""

import re
from datetime import timedelta

import pytest
import yaml
from google.cloud import monitoring_v3

from titanic_mlops.monitoring import alert_policies, rules
from titanic_mlops.settings import load_settings

SETTINGS = load_settings(env={"ALERTING_UPTIME_CHECK_HOST": "titanic-api-x-ew.a.run.app"}).alerting
CHANNEL = "projects/p/notificationChannels/7"


def converted() -> dict[str, monitoring_v3.AlertPolicy]:
    return {
        rule.name: alert_policies.to_policy(rule, SETTINGS, [CHANNEL])
        for rule in rules.load_rules()
    }


def test_a_rule_becomes_a_promql_policy():
    policy = converted()["TitanicHighErrorRate"]
    assert policy.display_name == "titanic-serving/TitanicHighErrorRate"
    (condition,) = policy.conditions
    promql = condition.condition_prometheus_query_language
    assert promql.query.startswith(
        'sum(rate(custom_googleapis_com:titanic_requests_total{route!="/metrics",status=~"5.."}[5m]))'
    )
    assert promql.duration == timedelta(minutes=5)
    assert promql.evaluation_interval == timedelta(seconds=30)
    assert dict(promql.labels) == {"severity": "critical"}
    assert (promql.rule_group, promql.alert_rule) == ("titanic-serving", "TitanicHighErrorRate")
    assert policy.severity == monitoring_v3.AlertPolicy.Severity.CRITICAL
    assert policy.combiner == monitoring_v3.AlertPolicy.ConditionCombinerType.OR
    assert dict(policy.user_labels) == {"managed-by": "titanic-mlops"}
    assert list(policy.notification_channels) == [CHANNEL]
    assert policy.documentation.subject == "More than 5 % of requests fail with a 5xx status"
    assert "Runbook: Check /health" in policy.documentation.content
    assert policy.documentation.mime_type == "text/markdown"


def test_every_rule_converts_with_only_mapped_metric_names():
    policies = converted()
    assert len(policies) == len(rules.load_rules()) >= 7
    for name, policy in policies.items():
        query = policy.conditions[0].condition_prometheus_query_language.query
        bare = re.findall(r"(?<![\w:])titanic_\w+(?![^{]*})", query)
        assert not bare, f"{name}: unmapped {bare}"
        assert policy.severity != monitoring_v3.AlertPolicy.Severity.SEVERITY_UNSPECIFIED
    drift = policies["TitanicDatasetDrift"].conditions[0].condition_prometheus_query_language
    assert drift.query == "custom_googleapis_com:titanic_drift_dataset_drift == 1"
    assert drift.duration == timedelta(0)


def test_uptime_check_and_its_policy():
    check = alert_policies.uptime_check(SETTINGS, "p")
    assert check.monitored_resource.type == "uptime_url"
    assert dict(check.monitored_resource.labels) == {
        "project_id": "p",
        "host": "titanic-api-x-ew.a.run.app",
    }
    assert (check.http_check.path, check.http_check.use_ssl) == ("/health", True)
    assert check.period == timedelta(seconds=300)
    assert dict(check.user_labels) == {"managed-by": "titanic-mlops"}
    policy = alert_policies.uptime_policy("check-42", SETTINGS, [CHANNEL])
    threshold = policy.conditions[0].condition_threshold
    assert 'metric.label.check_id="check-42"' in threshold.filter
    assert "uptime_check/check_passed" in threshold.filter
    assert policy.display_name == "titanic-uptime/TitanicServiceDown"
    assert dict(policy.user_labels) == {"managed-by": "titanic-mlops"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["labels"].pop("severity"), "TitanicDatasetDrift: label severity must be"),
        (lambda r: r["annotations"].pop("runbook"), "annotation(s) missing: runbook"),
        (lambda r: r["annotations"].update(summary="{{ $value }}"), "no Go templates"),
        (lambda r: r.update({"for": "5 minutes"}), "'5 minutes' is not a Prometheus duration"),
        (lambda r: r.update(expr="up == 0"), "TitanicDatasetDrift: metric 'up' is not exported"),
    ],
)
def test_rules_gcp_cannot_take_are_refused_in_one_line(tmp_path, change, message):
    spec = yaml.safe_load(rules.RULES_FILE.read_text())
    drift = next(
        r for g in spec["groups"] for r in g["rules"] if r["alert"] == "TitanicDatasetDrift"
    )
    change(drift)
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(rules.RuleError) as info:
        [alert_policies.to_policy(rule, SETTINGS) for rule in rules.load_rules(path)]
    assert message in str(info.value) and "\n" not in str(info.value)


def test_group_interval_becomes_the_evaluation_interval(tmp_path):
    spec = yaml.safe_load(rules.RULES_FILE.read_text())
    spec["groups"][0]["interval"] = "1m"
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(spec))
    rule = rules.load_rules(path)[0]
    promql = alert_policies.to_policy(rule, SETTINGS).conditions[0]
    assert promql.condition_prometheus_query_language.evaluation_interval == timedelta(minutes=1)
    spec["groups"][0]["interval"] = "45s"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(rules.RuleError, match="multiple of 30 s"):
        rules.load_rules(path)
