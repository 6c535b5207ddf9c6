"""How ``invoke quickstart`` moves ``production``: forward only, and only through the gate.

- A version this run **registered** (a new model) is promoted if the validation gate accepts
  it: the same :func:`titanic_mlops.validation.validate` and ``configs/validation.yaml`` as
  ``invoke validate`` and ``invoke promote --gate`` (every sha256, ONNX = torch, the accuracy
  and AUC floors, no regression against production beyond the margin, latency).
- A version this run **reused** (the registry already held this exact model: same data,
  config, seed and code) never moves an existing ``production`` alias. Whatever production
  points at was set after that version was registered, by an earlier quickstart or by hand;
  running quickstart again must not undo a manual promotion or a rollback. With no
  production yet, the reused version is gated and promoted like a new one.
"""

from __future__ import annotations

from dataclasses import dataclass

from titanic_mlops.registry import Registry, RegistryError
from titanic_mlops.validation import Policy, Report, validate

ALIAS = "production"


@dataclass(frozen=True)
class Decision:
    """What happened to the alias, in one line (:attr:`note`), and the gate's report if it ran."""

    version: int
    previous: int | None  # the alias before
    moved: bool
    note: str
    report: Report | None = None

    @property
    def current(self) -> int | None:
        """The alias after the decision."""
        return self.version if self.moved else self.previous


def _current(registry: Registry, alias: str) -> int | None:
    try:
        return registry.get_alias(alias)
    except RegistryError:
        return None


def promote_checked(
    registry: Registry, version: int, reused: bool, policy: Policy, alias: str = ALIAS
) -> Decision:
    """Apply the rule above to ``version`` (just registered, or reused when ``reused``)."""
    current = _current(registry, alias)
    if current == version:
        how = "reused; " if reused else ""
        return Decision(version, current, False, f"{how}{alias} is version {version} already")
    if reused and current is not None:
        return Decision(
            version,
            current,
            False,
            f"reused version {version} (same data, config, seed and code); {alias} stays at "
            f"version {current}: quickstart moves it only to a model it registers",
        )
    report = validate(registry, version, policy)
    if not report.accepted:
        reasons = "; ".join(report.reasons)
        stays = f"stays at version {current}" if current is not None else "is not set"
        return Decision(
            version, current, False, f"gate rejected version {version} ({reasons}); "
            f"{alias} {stays}", report,
        )  # fmt: skip
    previous = registry.set_alias(alias, version)
    how = "reused, " if reused else ""
    return Decision(version, previous, True, f"{how}alias {alias}, was {previous}", report)
