"""A model registry on plain object storage.

Layout (one source of truth, see :func:`version_prefix` and :func:`alias_key`)::

    registry/<model>/versions/<N>/{claim.json, model.onnx, model.pt, preprocessing.json,
                                   metrics.json, manifest.json}
    registry/<model>/aliases/<alias>.json   -> {"version": N, ...}
    registry/<model>/fingerprints/<sha256>/<files sha256>.json  (see :mod:`reuse`)

Version numbers are claimed with a create-only write of ``claim.json`` and alias moves are
compare-and-swap on the alias object's generation, so concurrent writers cannot hand out
the same version twice or lose an alias update. A version counts as registered once its
manifest (written last) exists.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from titanic_mlops import bundle
from titanic_mlops.storage import NotFound, PreconditionFailed, Storage

log = logging.getLogger(__name__)

ROOT = "registry"
CLAIM = "claim.json"
ALIAS_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
MAX_ATTEMPTS = 50


class RegistryError(LookupError):
    """Unknown version or alias, or a registry operation that could not complete."""


@dataclass(frozen=True)
class VersionInfo:
    """One registered version, as listed by :meth:`Registry.list_versions`."""

    version: int
    created_at: str
    metrics: dict[str, Any]
    aliases: tuple[str, ...]
    uri: str


def version_prefix(model: str, version: int) -> str:
    return f"{ROOT}/{model}/versions/{version}"


def alias_key(model: str, alias: str) -> str:
    return f"{ROOT}/{model}/aliases/{alias}.json"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def claim_body() -> bytes:
    """A claim's content: unique (``token``), so a create retried after it landed knows itself."""
    claim = {"claimed_at": _now(), "host": socket.gethostname(), "token": uuid.uuid4().hex}
    return bundle.dumps(claim)


class Registry:
    """Versions and aliases of one model on a :class:`~titanic_mlops.storage.Storage`."""

    def __init__(self, storage: Storage, model: str) -> None:
        if not ALIAS_NAME.match(model):
            raise ValueError(f"invalid model name {model!r}")
        self.storage = storage
        self.model = model

    # --- versions -------------------------------------------------------------------
    def _versions(self, marker: str) -> list[int]:
        prefix = f"{ROOT}/{self.model}/versions/"
        found = set()
        for key in self.storage.list(prefix):
            number, _, name = key[len(prefix) :].partition("/")
            if name == marker and number.isdigit():
                found.add(int(number))
        return sorted(found)

    def versions(self) -> list[int]:
        """Complete (manifest written) versions, ascending."""
        return self._versions(bundle.MANIFEST)

    def _claim(self) -> int:
        claimed = self._versions(CLAIM)
        candidate = (claimed[-1] if claimed else 0) + 1
        for _ in range(MAX_ATTEMPTS):
            key = f"{version_prefix(self.model, candidate)}/{CLAIM}"
            try:
                self.storage.create(key, claim_body())
                return candidate
            except PreconditionFailed:
                candidate += 1  # another writer got there first: try the next number
        raise RegistryError(f"could not claim a version after {MAX_ATTEMPTS} attempts")

    def register(self, files: Mapping[str, bytes], **metadata: Any) -> int:
        """Store ``files`` (see :data:`bundle.BUNDLE_FILES`) as the next version; return it."""
        version = self._claim()
        prefix = version_prefix(self.model, version)
        manifest = bundle.make_manifest(
            files, model=self.model, version=version, created_at=_now(), **metadata
        )
        for name, data in sorted(files.items()):
            self._create_once(f"{prefix}/{name}", data)
        self._create_once(f"{prefix}/{bundle.MANIFEST}", bundle.dumps(manifest))
        log.info("registered %s version %d at %s", self.model, version, self.uri(version))
        return version

    def uri(self, version: int) -> str:
        """Where a version's files live (for logs and summaries)."""
        return self.storage.join(version_prefix(self.model, version))

    def _create_once(self, key: str, data: bytes) -> None:
        """Create-only write that tolerates its own retried upload having landed already.

        The version is ours (claimed above): an object already there with our bytes is a
        retry that succeeded; anything else is a real conflict.
        """
        try:
            self.storage.create(key, data)
        except PreconditionFailed:
            if self.storage.read(key) != data:
                raise

    def manifest(self, version: int) -> dict[str, Any]:
        where = self.uri(version)
        try:
            data = self.storage.read(f"{version_prefix(self.model, version)}/{bundle.MANIFEST}")
        except NotFound as exc:
            raise RegistryError(f"{self.model} has no version {version} ({where})") from exc
        return bundle.parse_manifest(data, where)

    def load(self, version: int) -> bundle.Bundle:
        """Read a version and verify every file against its manifest."""
        manifest = self.manifest(version)
        prefix = version_prefix(self.model, version)
        files = {}
        for name in manifest["files"]:
            try:
                files[name] = self.storage.read(f"{prefix}/{name}")
            except NotFound:
                continue  # verify() names the missing file
        return bundle.verify(manifest, files, self.uri(version))

    # --- aliases --------------------------------------------------------------------
    def aliases(self) -> dict[str, int]:
        """Alias → version for every alias of this model."""
        prefix = f"{ROOT}/{self.model}/aliases/"
        out = {}
        for key in self.storage.list(prefix):
            name = key[len(prefix) :].removesuffix(".json")
            out[name] = json.loads(self.storage.read(key))["version"]
        return out

    def get_alias(self, alias: str) -> int:
        try:
            return int(json.loads(self.storage.read(alias_key(self.model, alias)))["version"])
        except NotFound as exc:
            raise RegistryError(f"{self.model} has no alias {alias!r}") from exc

    def set_alias(self, alias: str, version: int) -> int | None:
        """Point ``alias`` at ``version`` (compare-and-swap); return the previous version."""
        if not ALIAS_NAME.match(alias):
            raise ValueError(f"invalid alias {alias!r}")
        version = int(version)
        self.manifest(version)  # refuse to point at a version that is not complete
        key = alias_key(self.model, alias)
        for _ in range(MAX_ATTEMPTS):
            try:
                data, generation = self.storage.read_with_generation(key)
            except NotFound:
                data, generation = None, None
            previous = json.loads(data)["version"] if data else None
            body = bundle.dumps({"version": version, "previous": previous, "updated_at": _now()})
            try:
                if generation is None:
                    self.storage.create(key, body)
                else:
                    self.storage.replace(key, body, generation)
            except PreconditionFailed:
                continue  # someone moved it between our read and write: re-read
            log.info("%s alias %s: %s -> %s", self.model, alias, previous, version)
            return previous
        raise RegistryError(f"could not move alias {alias!r} after {MAX_ATTEMPTS} attempts")

    def resolve(self, ref: str | int) -> int:
        """A version number, ``"3"``, ``"latest"`` or an alias name → version number."""
        if isinstance(ref, int) or str(ref).isdigit():
            version = int(ref)
            self.manifest(version)
            return version
        if ref == "latest":
            versions = self.versions()
            if not versions:
                raise RegistryError(f"{self.model} has no registered versions")
            return versions[-1]
        return self.get_alias(str(ref))

    def list_versions(self) -> list[VersionInfo]:
        """Every complete version with its metrics and aliases, ascending."""
        by_version: dict[int, list[str]] = {}
        for name, version in sorted(self.aliases().items()):
            by_version.setdefault(version, []).append(name)
        out = []
        for version in self.versions():
            prefix = version_prefix(self.model, version)
            metrics = json.loads(self.storage.read(f"{prefix}/{bundle.METRICS}"))
            out.append(
                VersionInfo(
                    version=version,
                    created_at=self.manifest(version).get("created_at", ""),
                    metrics=metrics,
                    aliases=tuple(by_version.get(version, ())),
                    uri=self.uri(version),
                )
            )
        return out
