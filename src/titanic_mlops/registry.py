"""A model registry on plain object storage.

Layout (one source of truth, see :func:`version_prefix` and :func:`alias_key`)::

    registry/<model>/versions/<N>/{claim.json, model.onnx, model.pt, preprocessing.json,
                                   metrics.json, manifest.json}
    registry/<model>/aliases/<alias>.json   -> {"version": N, ...}
    registry/<model>/fingerprints/<sha256>/<files sha256>.json  (who registers that model)

Version numbers are claimed with a create-only write of ``claim.json`` and alias moves are
compare-and-swap on the alias object's generation, so concurrent writers cannot hand out
the same version twice or lose an alias update. A version counts as registered once its
manifest (written last) exists. A create-only fingerprint object makes "register this model
unless it is already there" atomic across writers (:meth:`Registry.register_once`).
"""

from __future__ import annotations

import json
import logging
import re
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from titanic_mlops import bundle
from titanic_mlops.storage import NotFound, PreconditionFailed, Storage

if TYPE_CHECKING:
    from titanic_mlops.fingerprint import Fingerprint

log = logging.getLogger(__name__)

ROOT = "registry"
CLAIM = "claim.json"
ALIAS_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
MAX_ATTEMPTS = 50
# How long a claim on a model holds (a bundle takes seconds to upload): other writers wait
# that long after ``claimed_at`` for its version, then take the claim over. And how often
# they look.
FINGERPRINT_WAIT_SECONDS = 30.0
FINGERPRINT_POLL_SECONDS = 0.5


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


def fingerprint_key(model: str, fingerprint: str, hashes: Mapping[str, str]) -> str:
    """The claim on registering these exact files (sha256 by name) under ``fingerprint``."""
    files = bundle.sha256(json.dumps(dict(hashes), sort_keys=True).encode())
    return f"{ROOT}/{model}/fingerprints/{fingerprint}/{files}.json"


def alias_key(model: str, alias: str) -> str:
    return f"{ROOT}/{model}/aliases/{alias}.json"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _claim_body() -> bytes:
    """A claim's content: unique (``token``), so a create retried after it landed knows itself."""
    claim = {"claimed_at": _now(), "host": socket.gethostname(), "token": uuid.uuid4().hex}
    return bundle.dumps(claim)


def _claimed_at(body: bytes) -> float:
    """When a claim was made (Unix time); now if it does not say (a claim is then fresh)."""
    try:
        return datetime.fromisoformat(json.loads(body)["claimed_at"]).timestamp()
    except (ValueError, KeyError, TypeError):
        return time.time()


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
                self.storage.create(key, _claim_body())
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

    def register_once(
        self, files: Mapping[str, bytes], fingerprint: Fingerprint, **metadata: Any
    ) -> tuple[int, bool]:
        """Reuse the version holding exactly this model, or register ``files``: (version, reused).

        A version is reused only if its manifest has the same fingerprint (same data, config,
        seed and code: :mod:`titanic_mlops.fingerprint`), lists the same sha256 for every
        file, and its stored files still verify. The first writer of a model claims it with a
        create-only object; a writer that finds the claim taken waits for that writer's
        version instead of registering a duplicate, and takes the claim over if nothing
        came ``FINGERPRINT_WAIT_SECONDS`` after it was made (its writer stopped).
        """
        hashes = {name: bundle.sha256(data) for name, data in files.items()}
        listed = self.versions()
        existing, seen = self._find(fingerprint.sha256, hashes, listed)
        if existing is None and not seen:
            existing = self._claim_or_await(fingerprint.sha256, hashes, set(listed))
        if existing is not None:
            log.info(
                "%s version %d already holds this model (same data, config, seed and code; "
                "fingerprint %s…): reusing it, nothing registered",
                self.model, existing, fingerprint.sha256[:12],
            )  # fmt: skip
            return existing, True
        version = self.register(
            files, fingerprint=fingerprint.sha256, fingerprint_inputs=fingerprint.inputs, **metadata
        )
        return version, False

    def _claim_or_await(
        self, fingerprint: str, hashes: Mapping[str, str], listed: set[int]
    ) -> int | None:
        """None once this writer holds the claim on the model (it registers), else the
        version the holder registered (versions in ``listed`` were searched already)."""
        key, body = fingerprint_key(self.model, fingerprint, hashes), _claim_body()
        while True:
            try:
                self.storage.create(key, body)
                return None
            except PreconditionFailed:
                pass
            try:
                held, generation = self.storage.read_with_generation(key)
            except NotFound:
                continue  # removed meanwhile: claim again
            if held == body:
                return None  # our own create, retried by the client after it had landed
            deadline = min(_claimed_at(held), time.time()) + FINGERPRINT_WAIT_SECONDS
            while time.time() < deadline:
                new = [v for v in self.versions() if v not in listed]
                version, seen = self._find(fingerprint, hashes, new)
                if seen:
                    return version  # None if it does not verify: register anew
                time.sleep(FINGERPRINT_POLL_SECONDS)
            try:  # of several writers taking over a stale claim, one wins
                self.storage.replace(key, body, generation)
            except PreconditionFailed:
                continue  # taken over by another writer: wait for that one
            log.warning(
                "%s: the claim on this model (fingerprint %s…) brought no version within "
                "%.0f s (its writer stopped?): registering it here",
                self.model, fingerprint[:12], FINGERPRINT_WAIT_SECONDS,
            )  # fmt: skip
            return None

    def find(self, fingerprint: str, files: Mapping[str, bytes]) -> int | None:
        """The newest intact version with this fingerprint and exactly these files, or None."""
        hashes = {name: bundle.sha256(data) for name, data in files.items()}
        return self._find(fingerprint, hashes, self.versions())[0]

    def _find(
        self, fingerprint: str, hashes: Mapping[str, str], versions: list[int]
    ) -> tuple[int | None, bool]:
        """:meth:`find` among ``versions``, and whether any of them holds these exact files
        under ``fingerprint`` at all (intact or not)."""
        seen, other_bytes = False, None
        for version in reversed(versions):
            try:
                manifest = self.manifest(version)
            except bundle.BundleIntegrityError:
                continue
            if manifest.get("fingerprint") != fingerprint:
                continue
            if manifest["files"] != hashes:
                other_bytes = other_bytes or version
                continue
            seen = True
            try:
                self.load(version)
            except bundle.BundleIntegrityError as exc:
                log.warning("not reusing %s version %d: %s", self.model, version, exc)
                continue
            return version, seen
        if other_bytes is not None and not seen:
            log.warning(
                "%s version %d has this run's fingerprint but other bytes (training is not "
                "deterministic here?): not reusing it", self.model, other_bytes,
            )  # fmt: skip
        return None, seen

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
