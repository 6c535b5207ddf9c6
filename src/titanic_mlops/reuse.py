"""Register a model at most once: reuse the version that already holds it, across writers.

A version is reused only if its manifest has the same fingerprint (same data, config, seed
and code: :mod:`titanic_mlops.fingerprint`), lists the same sha256 for every file, and its
stored files still verify. The search alone is not atomic with the version claim, so the
first writer of a model (fingerprint *and* exact bytes) claims it with a create-only
``registry/<model>/fingerprints/<sha256>/<files sha256>.json``; a writer that finds the
claim taken waits for that writer's version instead of registering a duplicate, and takes
the claim over (compare-and-swap: one winner) if nothing came ``WAIT_SECONDS`` after it
was made (its writer stopped).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from titanic_mlops import bundle
from titanic_mlops.registry import ROOT, Registry, claim_body
from titanic_mlops.storage import NotFound, PreconditionFailed

if TYPE_CHECKING:
    from titanic_mlops.fingerprint import Fingerprint

log = logging.getLogger(__name__)

# How long a claim on a model holds (a bundle takes seconds to upload): other writers wait
# that long after ``claimed_at`` for its version, then take the claim over. And how often
# they look.
WAIT_SECONDS = 30.0
POLL_SECONDS = 0.5

Hashes = Mapping[str, str]  # sha256 by bundle file name


def claim_key(model: str, fingerprint: str, hashes: Hashes) -> str:
    """The claim on registering these exact files under ``fingerprint``."""
    files = bundle.sha256(json.dumps(dict(hashes), sort_keys=True).encode())
    return f"{ROOT}/{model}/fingerprints/{fingerprint}/{files}.json"


def register_once(
    registry: Registry, files: Mapping[str, bytes], fingerprint: Fingerprint, **metadata: Any
) -> tuple[int, bool]:
    """Reuse the version holding exactly this model, or register ``files``: (version, reused)."""
    hashes = bundle.file_hashes(files)
    listed = registry.versions()
    existing, seen = _find(registry, fingerprint.sha256, hashes, listed)
    if existing is None and not seen:
        existing = _claim_or_await(registry, fingerprint.sha256, hashes, set(listed))
    if existing is not None:
        log.info(
            "%s version %d already holds this model (same data, config, seed and code; "
            "fingerprint %s…): reusing it, nothing registered",
            registry.model, existing, fingerprint.sha256[:12],
        )  # fmt: skip
        return existing, True
    version = registry.register(
        files, fingerprint=fingerprint.sha256, fingerprint_inputs=fingerprint.inputs, **metadata
    )
    return version, False


def find(registry: Registry, fingerprint: str, files: Mapping[str, bytes]) -> int | None:
    """The newest intact version with this fingerprint and exactly these files, or None."""
    return _find(registry, fingerprint, bundle.file_hashes(files), registry.versions())[0]


def _claimed_at(body: bytes) -> float:
    """When a claim was made (Unix time); now if it does not say (a claim is then fresh)."""
    try:
        return datetime.fromisoformat(json.loads(body)["claimed_at"]).timestamp()
    except (ValueError, KeyError, TypeError):
        return time.time()


def _claim_or_await(
    registry: Registry, fingerprint: str, hashes: Hashes, listed: set[int]
) -> int | None:
    """None once this writer holds the claim on the model (it registers), else the version
    the holder registered (versions in ``listed`` were searched already)."""
    storage = registry.storage
    key, body = claim_key(registry.model, fingerprint, hashes), claim_body()
    while True:
        try:
            storage.create(key, body)
            return None
        except PreconditionFailed:
            pass
        try:
            held, generation = storage.read_with_generation(key)
        except NotFound:
            continue  # removed meanwhile: claim again
        if held == body:
            return None  # our own create, retried by the client after it had landed
        deadline = min(_claimed_at(held), time.time()) + WAIT_SECONDS
        while time.time() < deadline:
            new = [v for v in registry.versions() if v not in listed]
            version, seen = _find(registry, fingerprint, hashes, new)
            if seen:
                return version  # None if it does not verify: register anew
            time.sleep(POLL_SECONDS)
        try:  # of several writers taking over a stale claim, one wins
            storage.replace(key, body, generation)
        except PreconditionFailed:
            continue  # taken over by another writer: wait for that one
        log.warning(
            "%s: the claim on this model (fingerprint %s…) brought no version within %.0f s "
            "(its writer stopped?): registering it here",
            registry.model, fingerprint[:12], WAIT_SECONDS,
        )  # fmt: skip
        return None


def _find(
    registry: Registry, fingerprint: str, hashes: Hashes, versions: list[int]
) -> tuple[int | None, bool]:
    """:func:`find` among ``versions``, and whether any of them holds these exact files under
    ``fingerprint`` at all (intact or not)."""
    seen, other_bytes = False, None
    for version in reversed(versions):
        try:
            manifest = registry.manifest(version)
        except bundle.BundleIntegrityError:
            continue
        if manifest.get("fingerprint") != fingerprint:
            continue
        if manifest["files"] != hashes:
            other_bytes = other_bytes or version
            continue
        seen = True
        try:
            registry.load(version)
        except bundle.BundleIntegrityError as exc:
            log.warning("not reusing %s version %d: %s", registry.model, version, exc)
            continue
        return version, seen
    if other_bytes is not None and not seen:
        log.warning(
            "%s version %d has this run's fingerprint but other bytes (training is not "
            "deterministic here?): not reusing it", registry.model, other_bytes,
        )  # fmt: skip
    return None, seen
