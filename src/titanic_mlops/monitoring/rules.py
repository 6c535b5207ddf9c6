"""The alert rule file: ``configs/monitoring/alert_rules.yaml``, read and checked.

A Prometheus rule file is the one source of the alerts: Prometheus loads it locally, and
monitoring/alert_policies.py converts it for Cloud Monitoring. Reading it here checks what
both need: a severity label, summary/description/runbook annotations in plain text (GCP has
no Go templates), durations that parse, group intervals that GCP accepts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from titanic_mlops.settings import PROJECT_ROOT

RULES_FILE = PROJECT_ROOT / "configs" / "monitoring" / "alert_rules.yaml"
DEFAULT_INTERVAL = 30  # seconds; Cloud Monitoring wants a multiple of 30
SEVERITIES = ("critical", "error", "warning")
ANNOTATIONS = ("summary", "description", "runbook")
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


class RuleError(ValueError):
    """The rule file (or the alerting settings) cannot be turned into policies."""


@dataclass(frozen=True)
class Rule:
    """One alerting rule with its group's name and evaluation interval."""

    group: str
    name: str
    expr: str
    for_seconds: float
    interval_seconds: int
    labels: dict[str, str]
    annotations: dict[str, str]


def parse_duration(text: str) -> float:
    """A Prometheus duration (``5m``, ``1h30m``, ``0s``) in seconds."""
    text = str(text).strip()
    if not text or _DURATION.sub("", text):
        raise RuleError(f"{text!r} is not a Prometheus duration")
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION.findall(text))


def load_rules(path: str | Path = RULES_FILE) -> list[Rule]:
    """The alerting rules of a Prometheus rule file (recording rules are skipped)."""
    rules = []
    for group in yaml.safe_load(Path(path).read_text())["groups"]:
        interval = int(parse_duration(group.get("interval", f"{DEFAULT_INTERVAL}s")))
        if interval % 30 or not interval:
            raise RuleError(f"group {group['name']}: interval must be a multiple of 30 s")
        for raw in group["rules"]:
            if "alert" in raw:
                rules.append(_rule(group["name"], interval, raw))
    return rules


def _rule(group: str, interval: int, raw: dict) -> Rule:
    name, notes, labels = raw["alert"], raw.get("annotations", {}), raw.get("labels", {})
    if labels.get("severity") not in SEVERITIES:
        raise RuleError(f"{name}: label severity must be one of {', '.join(SEVERITIES)}")
    missing = sorted(set(ANNOTATIONS) - set(notes))
    if missing:
        raise RuleError(f"{name}: annotation(s) missing: {', '.join(missing)}")
    if any("{{" in str(text) for text in notes.values()):
        raise RuleError(f"{name}: annotations must be plain text (no Go templates in GCP)")
    for_seconds = parse_duration(raw.get("for", "0s"))
    return Rule(group, name, raw["expr"].strip(), for_seconds, interval, labels, notes)
