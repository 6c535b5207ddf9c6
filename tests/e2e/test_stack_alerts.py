"""End to end on the real local stack: real faults and real drift become alert emails.

One stack per module, started and stopped with the invoke tasks (``--fast``: every ``for:``
cut to 10 s, the expressions those of configs/monitoring/alert_rules.yaml), serving a copy
of the trained registry. Real Prometheus, Alertmanager, SMTP sink and services on loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.conftest import ROOT, require_binary
from titanic_mlops import background, local_stack, predictions, traffic
from titanic_mlops.mail_sink import read_mails, text_of
from titanic_mlops.monitoring import rules
from titanic_mlops.storage import open_storage

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DEADLINE = 90.0  # seconds from the first fault to the email
DRIFT_GAUGE = 'titanic_drift_dataset_drift{job="titanic-drift"}'
RULES = {rule.name: rule for rule in rules.load_rules()}


@dataclass
class Stack:
    state: Path
    bucket: Path
    url: dict[str, str]

    @property
    def mail(self) -> Path:
        return self.state / "mail"


def invoke(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=timeout)  # fmt: skip


def get_json(url: str, timeout: float = 60) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return json.loads(answer.read())


def query(stack: Stack, expr: str) -> list[dict]:
    """An instant PromQL query on the stack's Prometheus."""
    params = urllib.parse.urlencode({"query": expr})
    return get_json(f"{stack.url['prometheus']}/api/v1/query?{params}")["data"]["result"]


def wait_for(what: str, check, timeout: float, every: float = 0.25):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
    return found


def alert_mail(stack: Stack, alertname: str) -> EmailMessage | None:
    """The first FIRING mail of ``alertname`` the sink saved, if any."""
    for _, message in read_mails(stack.mail):
        if message["X-Titanic-Alert"] == alertname and message["Subject"].startswith("[FIRING"):
            return message
    return None


def report(capsys, alert: str, seconds: float, since: str) -> None:
    with capsys.disabled():
        print(f"\n{alert}: email in the sink {seconds:.1f} s after {since}")


def assert_is_the_rules_mail(message: EmailMessage, alertname: str) -> None:
    rule = RULES[alertname]
    assert message["To"] == local_stack.load_config()["mail"]["to"]
    assert alertname in message["Subject"]
    body = " ".join(text_of(message).split())  # quoted-printable soft breaks undone
    assert f"Summary: {rule.annotations['summary']}" in body
    assert f"Runbook: {' '.join(rule.annotations['runbook'].split())}" in body


@pytest.fixture(scope="module")
def stack(served_storage: Path, tmp_path_factory: pytest.TempPathFactory):
    require_binary("prometheus", "prometheus (apt-get install prometheus)")
    require_binary(
        local_stack.BINARIES["alertmanager"][0],
        "alertmanager (apt-get install prometheus-alertmanager)",
    )
    base = tmp_path_factory.mktemp("stack")
    bucket, state = base / "bucket", base / "state"
    shutil.copytree(served_storage, bucket)
    up = invoke(
        "stack-up", "--storage", str(bucket), "--state", str(state), "--fast", "--free-ports"
    )
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        components = local_stack.read_state(state)
        for component in components:  # every URL printed, every component healthy
            assert f"{component.name:<14} UP    {component.url}" in up.stdout
        yield Stack(state, bucket, {c.name: c.url for c in components})
    finally:
        local_stack.down(state)


def test_stack_status_shows_every_component_up_with_its_url(stack: Stack):
    status = invoke("stack-status", "--state", str(stack.state))
    assert status.returncode == 0, status.stdout + status.stderr
    for name in ("mail", "alertmanager", "api", "drift", "prometheus"):
        assert f"{name:<14} UP    {stack.url[name]}" in status.stdout


def test_prometheus_scrapes_both_services_and_evaluates_every_rule_of_the_file(stack: Stack):
    def targets_up() -> dict[str, str]:
        found = get_json(f"{stack.url['prometheus']}/api/v1/targets")["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in found}
        return health if {health.get("titanic-api"), health.get("titanic-drift")} == {"up"} else {}

    health = wait_for("both services scraped", targets_up, timeout=20)
    assert health["titanic-api"] == health["titanic-drift"] == "up"
    groups = get_json(f"{stack.url['prometheus']}/api/v1/rules")["data"]["groups"]
    loaded = {r["name"]: r for g in groups for r in g["rules"]}
    assert set(loaded) == set(RULES)
    for name, rule in RULES.items():
        assert loaded[name]["duration"] == min(rule.for_seconds, 10), name
        assert loaded[name]["health"] == "ok", (name, loaded[name].get("lastError"))
    # the file Prometheus loads: the rule file's expressions, byte for byte
    copy = rules.load_rules(stack.state / "config" / "alert_rules.yaml")
    assert [(r.name, r.expr) for r in copy] == [(r.name, r.expr) for r in RULES.values()]


def test_drifted_traffic_and_a_drift_check_email_the_drift_alert(stack: Stack, capsys):
    assert alert_mail(stack, "TitanicDatasetDrift") is None
    records = traffic.draw(600, "class", seed=8)
    start = time.monotonic()  # the first drifted request
    assert traffic.send(stack.url["api"], records) == Counter({200: 600})
    storage = open_storage(stack.bucket)
    wait_for(
        "600 logged predictions",
        lambda: len(predictions.read_latest(storage, 600).records) == 600,
        timeout=30,
    )
    # no drift alert before the check: the gauge Prometheus scraped says no drift
    scraped = wait_for("a drift gauge", lambda: query(stack, DRIFT_GAUGE), 20)
    assert [r["value"][1] for r in scraped] == ["0"]
    check = get_json(f"{stack.url['drift']}/?n_latest=600", timeout=120)
    assert check["status"] == "ok" and check["dataset_drift"] is True, check
    assert check["n_current"] == 600
    message = wait_for(
        "the drift alert email",
        lambda: alert_mail(stack, "TitanicDatasetDrift"),
        timeout=DEADLINE - (time.monotonic() - start),
    )
    elapsed = time.monotonic() - start
    report(capsys, "TitanicDatasetDrift", elapsed, "the first drifted request")
    assert elapsed < DEADLINE
    assert_is_the_rules_mail(message, "TitanicDatasetDrift")


def test_an_unloadable_model_answers_503_and_emails_the_error_rate_alert(stack: Stack, capsys):
    (model,) = stack.bucket.glob("registry/*/versions/1/model.onnx")
    pristine = model.read_bytes()
    assert alert_mail(stack, "TitanicHighErrorRate") is None
    stop, statuses, first_503 = threading.Event(), Counter(), []
    records = traffic.draw(10, seed=3)

    def clients_keep_calling() -> None:
        while not stop.is_set():
            statuses.update(traffic.send(stack.url["api"], records, clients=1))
            if statuses[503] and not first_503:
                first_503.append(time.monotonic())
            stop.wait(0.2)

    start = time.monotonic()  # the fault: the served bundle no longer matches its manifest
    model.write_bytes(pristine + b"\0")
    sender = threading.Thread(target=clients_keep_calling)
    try:
        local_stack.restart(stack.state, "api")  # a new instance meets the broken bundle
        sender.start()
        message = wait_for(
            "the error-rate alert email",
            lambda: alert_mail(stack, "TitanicHighErrorRate"),
            timeout=DEADLINE - (time.monotonic() - start),
        )
        arrived = time.monotonic()
    finally:
        stop.set()
        if sender.is_alive():
            sender.join()
        model.write_bytes(pristine)
        local_stack.restart(stack.state, "api")
    report(capsys, "TitanicHighErrorRate", arrived - start, "the bundle broke")
    report(capsys, "TitanicHighErrorRate", arrived - first_503[0], "the first 503 answered")
    assert arrived - start < DEADLINE
    assert set(statuses) == {503} and statuses[503] > 20, statuses  # real 503s, nothing else
    assert_is_the_rules_mail(message, "TitanicHighErrorRate")
    # the same fault's own alert: the model load failures the new instance counted
    assert_is_the_rules_mail(
        wait_for(
            "the model-load alert email", lambda: alert_mail(stack, "TitanicModelLoadFailures"), 30
        ),
        "TitanicModelLoadFailures",
    )


def test_stack_down_stops_every_process_and_can_be_repeated(stack: Stack):
    pids = [c.pid for c in local_stack.read_state(stack.state)]
    down = invoke("stack-down", "--state", str(stack.state))
    assert down.returncode == 0 and down.stdout.startswith("stopped: mail, alertmanager, api")
    # no process of any group is left
    assert not [pid for pid in pids if background.alive(pid)]
    again = invoke("stack-down", "--state", str(stack.state))
    assert again.returncode == 0 and "was not running" in again.stdout
    assert invoke("stack-status", "--state", str(stack.state)).returncode == 1


def test_stack_up_without_prometheus_says_how_to_install_it_in_one_line(
    tmp_path: Path, bucket: Path
):
    up = subprocess.run(
        [sys.executable, "-m", "invoke", "stack-up", "--state", str(tmp_path / "state"),
         "--storage", str(bucket), "--free-ports"],
        cwd=ROOT, text=True, capture_output=True, timeout=60,
        env={**os.environ, "PATH": str(Path(sys.executable).parent)},  # no system binaries
    )  # fmt: skip
    assert up.returncode != 0
    assert up.stdout == "" and up.stderr.count("\n") == 1, up.stderr
    assert "apt-get install prometheus prometheus-alertmanager" in up.stderr
    assert "brew install prometheus alertmanager" in up.stderr
    assert local_stack.read_state(tmp_path / "state") == []
