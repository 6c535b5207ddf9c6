"""The alert rule file under the real promtool: syntax, unit tests, and its GCP conversion."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, require_binary
from titanic_mlops.monitoring import alert_policies, rules
from titanic_mlops.settings import load_settings

pytestmark = pytest.mark.integration
RULE_TESTS = ROOT / "configs" / "monitoring" / "alert_rules_test.yaml"


def promtool(*args: str | Path) -> str:
    binary = require_binary("promtool", "promtool (apt-get install prometheus)")
    proc = subprocess.run(
        [binary, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def test_rule_file_passes_promtool_check():
    out = promtool("check", "rules", rules.RULES_FILE)
    assert f"SUCCESS: {len(rules.load_rules())} rules found" in out


def test_every_promtool_case_passes():
    assert "SUCCESS" in promtool("test", "rules", RULE_TESTS)


def test_every_rule_is_tested_firing_and_not_firing():
    evaluations = [
        check
        for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for check in case["alert_rule_test"]
    ]
    for rule in rules.load_rules():
        mine = [check for check in evaluations if check["alertname"] == rule.name]
        assert any(check["exp_alerts"] for check in mine), f"{rule.name} never tested firing"
        assert any(not check["exp_alerts"] for check in mine), f"{rule.name} never tested silent"


def test_the_required_alerts_exist_with_severity_and_runbook():
    found = {rule.name: rule for rule in rules.load_rules()}
    assert set(found) >= {
        "TitanicHighErrorRate",
        "TitanicHighLatencyP95",
        "TitanicNoTraffic",
        "TitanicPredictionLogRecordsDropped",
        "TitanicPredictionLogWriteErrors",
        "TitanicModelLoadFailures",
        "TitanicDatasetDrift",
    }
    for rule in found.values():
        assert rule.labels["severity"] in rules.SEVERITIES
        assert all(rule.annotations[key].strip() for key in rules.ANNOTATIONS)
    assert "titanic_drift_dataset_drift == 1" in found["TitanicDatasetDrift"].expr
    assert "> 0.05" in found["TitanicHighErrorRate"].expr


def test_converted_expressions_pass_promtool_check(tmp_path):
    settings = load_settings(env={}).alerting
    policies = [alert_policies.to_policy(rule, settings) for rule in rules.load_rules()]
    converted = {
        "groups": [
            {
                "name": "converted",
                "rules": [
                    {
                        "alert": p.conditions[0].condition_prometheus_query_language.alert_rule,
                        "expr": p.conditions[0].condition_prometheus_query_language.query,
                    }
                    for p in policies
                ],
            }
        ]
    }
    path = tmp_path / "converted.yaml"
    path.write_text(yaml.safe_dump(converted, sort_keys=False))
    assert f"SUCCESS: {len(policies)} rules found" in promtool("check", "rules", path)
    text = path.read_text()
    assert "custom_googleapis_com:titanic_requests_total" in text
    assert "custom_googleapis_com:titanic_request_duration_seconds_bucket" in text
