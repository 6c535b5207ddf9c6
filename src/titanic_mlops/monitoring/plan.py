"""A plan of changes to cloud resources (create, update, delete, unchanged) and its diffs.

Shared by ``alerts-apply`` and ``dashboard-apply``: both compare the desired objects with
what exists, print the plan, and apply it unless it is a dry run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ACTIONS = ("create", "update", "replace", "delete", "unchanged")


@dataclass
class Change:
    """One resource's fate: ``action`` in :data:`ACTIONS`, with a short diff for updates."""

    action: str
    kind: str  # "alert policy", "uptime check", ...
    name: str  # display name
    diff: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """What an apply does (or, for a dry run, would do)."""

    changes: list[Change] = field(default_factory=list)
    dry_run: bool = False

    def add(self, action: str, kind: str, name: str, diff: Iterable[str] = ()) -> Change:
        change = Change(action, kind, name, list(diff))
        self.changes.append(change)
        return change

    def count(self, action: str) -> int:
        return sum(c.action == action for c in self.changes)

    @property
    def n_changes(self) -> int:
        """Everything but ``unchanged``: 0 means the cloud already matches the repository."""
        return sum(c.action != "unchanged" for c in self.changes)

    def __str__(self) -> str:
        lines = []
        for change in self.changes:
            lines.append(f"{change.action:<9} {change.kind:<20} {change.name}")
            lines.extend(f"            {line}" for line in change.diff)
        counts = ", ".join(f"{self.count(a)} {a}" for a in ACTIONS if self.count(a))
        suffix = " (dry run: nothing changed)" if self.dry_run else ""
        lines.append(f"{self.n_changes} change(s): {counts or 'nothing to do'}{suffix}")
        return "\n".join(lines)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts and lists as ``{"a.b[0].c": leaf}``."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out or {prefix: {}}
    if isinstance(value, list):
        out = {}
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{index}]"))
        return out or {prefix: []}
    return {prefix: value}


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _around_change(old: str, new: str, context: int = 12) -> tuple[str, str]:
    """The differing middle of two long strings, with a little context on each side."""
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    end = 0
    while end < min(len(old), len(new)) - start and old[-1 - end] == new[-1 - end]:
        end += 1
    head = max(0, start - context)

    def cut(text: str) -> str:
        tail = len(text) - max(0, end - context)
        return ("…" if head else "") + text[head:tail] + ("…" if tail < len(text) else "")

    return cut(old), cut(new)


def diff(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = 12) -> list[str]:
    """Short ``path: old -> new`` lines between two nested dicts (at most ``limit`` lines)."""
    before, after = flatten(old), flatten(new)
    lines = []
    for path in sorted(set(before) | set(after)):
        was, now = before.get(path, "(none)"), after.get(path, "(none)")
        if was == now:
            continue
        if isinstance(was, str) and isinstance(now, str) and max(len(was), len(now)) > 60:
            was, now = _around_change(was, now)
        lines.append(f"{path}: {_short(was)} -> {_short(now)}")
    if len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more"]
    return lines


def changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Top-level keys whose values differ: the update mask."""
    return sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))
