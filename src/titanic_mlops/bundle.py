"""The model bundle: the files of one registered version and the manifest that seals them.

Torch-free on purpose: serving loads bundles through this module. Nothing here unpickles.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from titanic_mlops import schema

MODEL_ONNX = "model.onnx"
MODEL_STATE = "model.pt"
PREPROCESSING = "preprocessing.json"
METRICS = "metrics.json"
MANIFEST = "manifest.json"
# Every bundle carries these; the manifest lists their sha256.
BUNDLE_FILES: tuple[str, ...] = (MODEL_ONNX, MODEL_STATE, PREPROCESSING, METRICS)
MANIFEST_FORMAT = 1


class BundleIntegrityError(ValueError):
    """A bundle is incomplete or a file does not match the sha256 in its manifest."""


def sha256(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


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
        "files": {name: sha256(data) for name, data in sorted(files.items())},
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
    def preprocessing(self) -> schema.Preprocessing:
        return schema.Preprocessing.from_json(self.files[PREPROCESSING])

    @property
    def metrics(self) -> dict[str, Any]:
        return json.loads(self.files[METRICS])


def parse_manifest(data: bytes, where: str) -> dict[str, Any]:
    """Parse a manifest and check its shape."""
    try:
        manifest = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleIntegrityError(f"{where}: manifest is not valid JSON ({exc})") from exc
    listed = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(listed, dict):
        raise BundleIntegrityError(f"{where}: manifest has no 'files' table")
    missing = [n for n in BUNDLE_FILES if n not in listed]
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
