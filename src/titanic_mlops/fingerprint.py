"""What makes a model: the fingerprint that lets the registry reuse a version instead of copying it.

A training run's fingerprint is the sha256 of the canonical JSON of

- ``data``: the sha256 of the raw CSV and of every processed file training reads
  (:data:`titanic_mlops.data.TRAINING_INPUTS`);
- ``config``: the resolved config (the seed included) without the keys that cannot change
  the bundle (:data:`NOT_MODEL_INPUTS`: where to register, W&B, the sweep objective, file
  locations whose bytes are already under ``data``). Anything else, including keys added
  later, is part of the fingerprint: a forgotten key can only prevent a reuse, never cause
  a wrong one;
- ``code``: the sha256 of every module that ``import titanic_mlops.train`` loads
  (:func:`training_modules`, the same list ``dvc.yaml``'s train stage depends on) and the
  versions of Python and of the libraries that compute the model.

The registry reuses a version only if its fingerprint *and* its files' sha256s match
(:func:`titanic_mlops.reuse.register_once`).
"""

from __future__ import annotations

import ast
import json
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from titanic_mlops.bundle import sha256

PACKAGE = "titanic_mlops"
PACKAGE_DIR = Path(__file__).resolve().parent
TRAINING_ENTRY = f"{PACKAGE}.train"
# config keys that cannot change the bundle's bytes (dotted paths)
NOT_MODEL_INPUTS = (
    "registry",
    "wandb",
    "objective",
    "metrics_file",
    "data.raw",
    "data.processed_dir",
)
LIBRARIES = ("torch", "numpy", "scikit-learn", "pandas", "onnx")


@dataclass(frozen=True)
class Fingerprint:
    """The digest and what it was computed from (stored in the manifest)."""

    sha256: str
    inputs: dict[str, Any]


def module_path(module: str) -> Path:
    """The source file of a ``titanic_mlops`` module (a package's ``__init__.py``)."""
    parts = module.split(".")[1:]
    base = PACKAGE_DIR.joinpath(*parts)
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    name = test.attr if isinstance(test, ast.Attribute) else getattr(test, "id", "")
    return name == "TYPE_CHECKING"


def _import_time_nodes(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements run when the module is imported: not in functions or TYPE_CHECKING blocks."""
    out: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            out.append(node)
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            out += _import_time_nodes(node.body) + _import_time_nodes(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                out += _import_time_nodes(block)
        elif isinstance(node, ast.With):
            out += _import_time_nodes(node.body)
    return out


def _imported(module: str) -> set[str]:
    """The ``titanic_mlops`` modules ``module`` imports at import time (with parent packages)."""
    tree = ast.parse(module_path(module).read_text(), filename=str(module_path(module)))
    found: set[str] = set()
    for node in _import_time_nodes(tree.body):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif node.module and node.level == 0:
            names = [node.module]
            # `from titanic_mlops import data`: `data` is a module when it has a source file
            names += [f"{node.module}.{a.name}" for a in node.names
                      if module_path(f"{node.module}.{a.name}").exists()]  # fmt: skip
        else:
            names = []
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                parts = name.split(".")
                found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return found


def training_modules(entry: str = TRAINING_ENTRY) -> list[str]:
    """Every ``titanic_mlops`` module loaded by ``import <entry>``, sorted (static analysis)."""
    seen: set[str] = set()
    todo = [entry, *(".".join(entry.split(".")[:i]) for i in range(1, entry.count(".") + 1))]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += sorted(_imported(name) - seen)
    return sorted(seen)


def training_sources(root: Path) -> list[str]:
    """:func:`training_modules` as paths relative to the project ``root`` (``src/…``)."""
    return [module_path(m).relative_to(root).as_posix() for m in training_modules()]


def _sha256_file(path: Path) -> str:
    return sha256(path.read_bytes())


def code_version() -> dict[str, Any]:
    """The sha256 of every training module, and the Python and library versions."""
    libraries = {}
    for name in LIBRARIES:
        try:
            libraries[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libraries[name] = None
    return {
        "modules": {m: _sha256_file(module_path(m)) for m in training_modules()},
        "python": platform.python_version(),
        "libraries": libraries,
    }


def model_config(config: dict[str, Any]) -> dict[str, Any]:
    """The resolved config without :data:`NOT_MODEL_INPUTS`."""
    out = json.loads(json.dumps(config))  # a deep copy of plain JSON values
    for dotted in NOT_MODEL_INPUTS:
        *parents, leaf = dotted.split(".")
        node = out
        for part in parents:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(leaf, None)
    return out


def compute(config: dict[str, Any], data_files: dict[str, Path]) -> Fingerprint:
    """The fingerprint of training with the resolved ``config`` on ``data_files`` (name → path)."""
    inputs = {
        "data": {name: _sha256_file(path) for name, path in sorted(data_files.items())},
        "config": model_config(config),
        "code": code_version(),
    }
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    return Fingerprint(sha256(canonical), inputs)
