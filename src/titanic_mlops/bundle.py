"""The model bundle: the files of one registered version and the manifest that seals them.

Torch-free on purpose: serving loads bundles through this module. Nothing here unpickles.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from titanic_mlops import encoding, schema

MODEL_ONNX = "model.onnx"
MODEL_STATE = "model.pt"
PREPROCESSING = "preprocessing.json"
METRICS = "metrics.json"
REFERENCE = "reference.csv"  # the drift reference: training split, labels, model probabilities
# optional: the linear form of model.onnx, verified against onnxruntime (predictor.py)
LINEAR = "linear.json"
MANIFEST = "manifest.json"
# Every bundle of the current format carries these; the manifest lists their sha256.
BUNDLE_FILES: tuple[str, ...] = (MODEL_ONNX, MODEL_STATE, PREPROCESSING, METRICS, REFERENCE)
MANIFEST_FORMAT = 2
# What each manifest format requires: format 1 (before drift references) still loads for
# serving; only a drift check needs format 2.
REQUIRED_FILES: dict[int, tuple[str, ...]] = {
    1: (MODEL_ONNX, MODEL_STATE, PREPROCESSING, METRICS),
    2: BUNDLE_FILES,
}


class BundleIntegrityError(ValueError):
    """A bundle is incomplete or a file does not match the sha256 in its manifest."""


class NoDriftReference(LookupError):
    """The bundle predates drift references (manifest format 1): retrain to check drift."""


def sha256(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def file_hashes(files: Mapping[str, bytes]) -> dict[str, str]:
    """The sha256 of each file, by name, as a manifest lists them."""
    return {name: sha256(data) for name, data in sorted(files.items())}


def dumps(obj: Any) -> bytes:
    """Deterministic, human-readable JSON bytes."""
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def make_manifest(files: Mapping[str, bytes], **fields: Any) -> dict[str, Any]:
    """Manifest for ``files``: ``fields`` (version, created_at, git commit, …) plus sha256s."""
    missing = [name for name in BUNDLE_FILES if name not in files]
    if missing:
        raise BundleIntegrityError(f"bundle lacks {', '.join(missing)}")
    return {
        **fields,
        "format": MANIFEST_FORMAT,
        "files": file_hashes(files),
    }


@dataclass(frozen=True)
class Bundle:
    """A verified bundle in memory."""

    manifest: dict[str, Any]
    files: dict[str, bytes]

    @property
    def version(self) -> int | None:
        return self.manifest.get("version")

    @property
    def onnx(self) -> bytes:
        return self.files[MODEL_ONNX]

    @property
    def preprocessing(self) -> encoding.Preprocessing:
        return encoding.Preprocessing.from_json(self.files[PREPROCESSING])

    @property
    def metrics(self) -> dict[str, Any]:
        return json.loads(self.files[METRICS])

    @property
    def linear(self) -> tuple[list[float], float] | None:
        """``(w, b)`` of the sealed linear form, or None if the bundle has none."""
        if LINEAR not in self.files:
            return None
        form = json.loads(self.files[LINEAR])
        weights = [float(w) for w in form["weights"]]
        if len(weights) != schema.N_ENCODED:
            raise BundleIntegrityError(
                f"{LINEAR} has {len(weights)} weights, the schema encodes "
                f"{schema.N_ENCODED} features"
            )
        return weights, float(form["bias"])

    @property
    def format(self) -> int:
        return int(self.manifest.get("format", 1))

    @property
    def reference(self) -> bytes:
        """The sealed drift reference CSV; :class:`NoDriftReference` for an old bundle."""
        if REFERENCE not in self.files:
            raise NoDriftReference(
                f"model version {self.version} has no drift reference (manifest format "
                f"{self.format}, registered before references were sealed in bundles): "
                "retrain and register a new version to check drift against it"
            )
        return self.files[REFERENCE]


def parse_manifest(data: bytes, where: str) -> dict[str, Any]:
    """Parse a manifest and check its shape."""
    try:
        manifest = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleIntegrityError(f"{where}: manifest is not valid JSON ({exc})") from exc
    listed = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(listed, dict):
        raise BundleIntegrityError(f"{where}: manifest has no 'files' table")
    required = REQUIRED_FILES.get(manifest.get("format", 1))
    if required is None:
        raise BundleIntegrityError(
            f"{where}: manifest format {manifest.get('format')!r} is not one this code reads "
            f"({', '.join(map(str, REQUIRED_FILES))})"
        )
    missing = [n for n in required if n not in listed]
    if missing:
        raise BundleIntegrityError(f"{where}: manifest does not list {', '.join(missing)}")
    return manifest


def verify(manifest: Mapping[str, Any], files: Mapping[str, bytes], where: str) -> Bundle:
    """Check every file listed in ``manifest`` against its sha256; return the sealed bundle."""
    for name, expected in manifest["files"].items():
        if name not in files:
            raise BundleIntegrityError(f"{where}: {name} is missing")
        actual = sha256(files[name])
        if actual != expected:
            raise BundleIntegrityError(
                f"{where}: {name} has sha256 {actual[:12]}…, manifest says {expected[:12]}…; "
                "the bundle was modified after registration: refusing to load it"
            )
    return Bundle(manifest=dict(manifest), files={n: files[n] for n in manifest["files"]})
