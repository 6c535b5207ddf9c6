"""Registering the same model again reuses its version; quickstart's rule for moving production.

Real bundles (the session's trained model) in a real folder registry, the real gate.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.test_validation import variant
from titanic_mlops import bundle, promotion, reuse
from titanic_mlops.fingerprint import Fingerprint
from titanic_mlops.registry import Registry, version_prefix
from titanic_mlops.reuse import claim_key, register_once
from titanic_mlops.storage import open_storage
from titanic_mlops.validation import Policy, load_policy

MODEL = "titanic-logreg"
SAME = Fingerprint("a" * 64, {"why": "same data, config, seed and code"})
OTHER = Fingerprint("b" * 64, {"why": "another seed"})


@pytest.fixture
def registry(tmp_path) -> Registry:
    return Registry(open_storage(tmp_path / "bucket"), MODEL)


@pytest.fixture(scope="module")
def policy(data_dirs) -> Policy:
    return load_policy([f"held_out={data_dirs['processed'] / 'test_raw.csv'}"])


def test_the_same_model_is_registered_once(registry, trained):
    assert register_once(registry, trained.files, SAME) == (1, False)
    assert register_once(registry, trained.files, SAME) == (1, True)
    assert registry.versions() == [1]
    manifest = registry.manifest(1)
    assert manifest["fingerprint"] == SAME.sha256
    assert manifest["fingerprint_inputs"] == SAME.inputs


def test_another_fingerprint_is_another_version(registry, trained):
    register_once(registry, trained.files, SAME)
    assert register_once(registry, trained.files, OTHER) == (2, False)


def test_the_same_fingerprint_with_other_bytes_is_not_reused(registry, trained):
    register_once(registry, trained.files, SAME)
    other = variant(trained.files, lambda linear: linear.bias.add_(0.1))
    assert register_once(registry, other, SAME) == (2, False)


def test_a_tampered_version_is_not_reused(registry, trained, tmp_path):
    register_once(registry, trained.files, SAME)
    onnx = tmp_path / "bucket" / version_prefix(MODEL, 1) / bundle.MODEL_ONNX
    onnx.write_bytes(onnx.read_bytes() + b"\0")
    assert register_once(registry, trained.files, SAME) == (2, False)


@pytest.mark.parametrize("writers", [2, 4])
def test_writers_racing_with_the_same_model_register_it_once(
    storage, trained, writers, monkeypatch
):
    """Each writer passes the search before any has registered (the barrier): only the
    fingerprint's create-only claim keeps them from registering duplicates."""
    registries = [Registry(storage, MODEL) for _ in range(writers)]
    barrier, results = threading.Barrier(writers), []
    real_find = reuse._find

    def find_then_wait(*args):
        found = real_find(*args)
        if threading.current_thread().name.startswith("writer"):
            threading.current_thread().name = "searched"
            barrier.wait(timeout=30)  # every writer has searched and found nothing
        return found

    def write(one: Registry) -> None:
        results.append(register_once(one, trained.files, SAME))

    monkeypatch.setattr(reuse, "_find", find_then_wait)
    threads = [threading.Thread(target=write, args=(r,), name=f"writer-{i}")
               for i, r in enumerate(registries)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(results) == [(1, False)] + [(1, True)] * (writers - 1)
    assert registries[0].versions() == [1]


def claim_of(files) -> str:
    return claim_key(MODEL, SAME.sha256, bundle.file_hashes(files))


def test_a_fresh_claim_whose_writer_died_delays_the_next_writer_but_does_not_stop_it(
    registry, trained, monkeypatch
):
    monkeypatch.setattr(reuse, "WAIT_SECONDS", 1.0)
    registry.storage.create(claim_of(trained.files), b"{}")  # says nothing, nothing followed
    started = time.monotonic()
    assert register_once(registry, trained.files, SAME) == (1, False)
    assert time.monotonic() - started >= 1.0
    started = time.monotonic()
    assert register_once(registry, trained.files, SAME) == (1, True)  # found: no wait
    assert time.monotonic() - started < 1.0


def test_a_claim_older_than_the_wait_is_taken_over_at_once(registry, trained):
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
    registry.storage.create(
        claim_of(trained.files), json.dumps({"claimed_at": an_hour_ago}).encode()
    )
    started = time.monotonic()
    assert register_once(registry, trained.files, SAME) == (1, False)
    assert time.monotonic() - started < reuse.WAIT_SECONDS / 2
    assert json.loads(registry.storage.read(claim_of(trained.files)))["claimed_at"] != an_hour_ago


def test_plain_register_still_makes_a_new_version_each_time(registry, trained):
    assert [registry.register(trained.files) for _ in range(2)] == [1, 2]


# --- quickstart's promotion rule --------------------------------------------------------


def test_a_new_version_that_passes_the_gate_becomes_production(registry, trained, policy):
    version, reused = register_once(registry, trained.files, SAME)
    decision = promotion.promote_checked(registry, version, reused, policy)
    assert decision.moved and decision.current == 1 and decision.report.accepted
    assert decision.note == "alias production, was None"


def test_a_new_version_below_the_floors_is_not_promoted(registry, trained, policy):
    registry.set_alias("production", registry.register(trained.files))
    weak = variant(trained.files, lambda linear: linear.weight.neg_())
    version, _ = register_once(registry, weak, OTHER)
    decision = promotion.promote_checked(registry, version, False, policy)
    assert not decision.moved and registry.get_alias("production") == 1
    assert "gate rejected version 2 (accuracy floor: held-out accuracy" in decision.note
    assert decision.note.endswith("production stays at version 1")


def test_a_reused_version_never_moves_production_back(registry, trained, policy):
    """quickstart (v1), a better model promoted by hand (v2), quickstart again: v2 stays."""
    first, _ = register_once(registry, trained.files, SAME)
    promotion.promote_checked(registry, first, False, policy)
    manual = registry.register(variant(trained.files, lambda linear: linear.bias.add_(0.01)))
    registry.set_alias("production", manual)
    version, reused = register_once(registry, trained.files, SAME)
    assert (version, reused) == (first, True)
    decision = promotion.promote_checked(registry, version, reused, policy)
    assert not decision.moved and decision.report is None
    assert registry.get_alias("production") == manual
    assert decision.note == (
        "reused version 1 (same data, config, seed and code); production stays at version 2: "
        "quickstart moves it only to a model it registers"
    )


def test_a_reused_version_is_promoted_when_there_is_no_production(registry, trained, policy):
    register_once(registry, trained.files, SAME)
    version, reused = register_once(registry, trained.files, SAME)
    decision = promotion.promote_checked(registry, version, reused, policy)
    assert reused and decision.moved and registry.get_alias("production") == 1
    alias = json.loads(registry.storage.read(f"registry/{MODEL}/aliases/production.json"))
    assert alias["version"] == 1
