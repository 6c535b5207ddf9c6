"""The local stack's pure parts: the shortened rule copy, the rendered configs, its errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from titanic_mlops import local_stack
from titanic_mlops.monitoring import rules

PORTS = {"api": 18080, "drift": 18081, "prometheus": 19090, "alertmanager": 19093, "mail": 12525}


def rule_dicts(text: str) -> dict[str, dict]:
    doc = yaml.safe_load(text)
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}


def test_the_shortened_rules_change_only_the_for_durations(tmp_path: Path):
    original = rules.RULES_FILE.read_text()
    short = tmp_path / "alert_rules.yaml"
    short.write_text(local_stack.shorten_rules(original, "10s"))
    before, after = rule_dicts(original), rule_dicts(short.read_text())
    assert list(after) == list(before)
    for name, rule in before.items():
        assert after[name]["expr"] == rule["expr"], name  # byte for byte
        assert {k: v for k, v in after[name].items() if k != "for"} == {
            k: v for k, v in rule.items() if k != "for"
        }
        expected = min(rules.parse_duration(rule.get("for", "0s")), 10)
        assert rules.parse_duration(after[name].get("for", "0s")) == expected, name
    assert any(rules.parse_duration(r.get("for", "0s")) > 10 for r in before.values())
    # the loader the GCP conversion uses reads the copy to the same expressions
    assert [r.expr for r in rules.load_rules(short)] == [r.expr for r in rules.load_rules()]


@pytest.mark.parametrize("fast", [False, True])
def test_prometheus_loads_the_rule_file_and_scrapes_both_services(tmp_path: Path, fast: bool):
    config = local_stack.load_config(fast)
    files = local_stack.write_configs(config, PORTS, tmp_path)
    prometheus = yaml.safe_load(files["prometheus"].read_text())
    assert prometheus["rule_files"] == [str(files["rules"])]
    if fast:  # a copy with shorter `for:`, next to the other rendered configs
        assert files["rules"] == tmp_path / "alert_rules.yaml"
        assert prometheus["global"]["evaluation_interval"] == "2s"
    else:  # the one source itself
        assert files["rules"] == rules.RULES_FILE
    assert prometheus["global"]["scrape_interval"] == "5s"
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in prometheus["scrape_configs"]
    }
    assert targets["titanic-api"] == ["127.0.0.1:18080"]
    assert targets["titanic-drift"] == ["127.0.0.1:18081"]
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "127.0.0.1:19093"
    ]


def test_alertmanager_mails_every_alert_to_the_sink_without_tls(tmp_path: Path):
    config = local_stack.load_config(fast=True)
    files = local_stack.write_configs(config, PORTS, tmp_path)
    am = yaml.safe_load(files["alertmanager"].read_text())
    assert am["global"]["smtp_smarthost"] == "127.0.0.1:12525"
    assert am["global"]["smtp_require_tls"] is False
    assert am["route"]["receiver"] == "email" and "routes" not in am["route"]
    assert am["route"]["group_wait"] == "1s"
    (receiver,) = am["receivers"]
    assert receiver["email_configs"][0]["to"] == config["mail"]["to"]


def test_a_missing_binary_is_one_line_with_both_install_commands(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(local_stack.StackError) as err:
        local_stack.plan("artifacts", tmp_path / "state")
    message = str(err.value)
    assert "\n" not in message and message.startswith("prometheus not found")
    assert "apt-get install prometheus prometheus-alertmanager" in message
    assert "brew install prometheus alertmanager" in message
    assert not (tmp_path / "state").exists()  # nothing written before the check


def test_a_port_in_use_names_the_port_and_the_way_out():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = {"ports": {"prometheus": port}}
        with pytest.raises(local_stack.StackError, match=f"port {port} \\(prometheus\\)"):
            local_stack.choose_ports(config, free_ports=False)
        assert local_stack.choose_ports(config, free_ports=True)["prometheus"] != port


def test_down_and_status_without_a_stack_do_nothing(tmp_path: Path):
    assert local_stack.down(tmp_path) == []
    assert local_stack.down(tmp_path) == []
    assert local_stack.status(tmp_path) == []


def test_up_refuses_a_storage_without_a_registry(tmp_path: Path):
    with pytest.raises(local_stack.StackError, match="no registry under"):
        local_stack.up(str(tmp_path / "empty"), tmp_path / "state")
