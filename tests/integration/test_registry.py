"""Registry on a local folder and on fake-gcs-server, including concurrent writers."""

import json
import threading

import pytest

from titanic_mlops import bundle
from titanic_mlops.registry import Registry, RegistryError, alias_key, version_prefix


@pytest.fixture
def registry(storage):
    return Registry(storage, "titanic-logreg")


def test_register_assigns_increasing_versions(registry, trained):
    assert registry.versions() == []
    assert registry.register(trained.files, git_commit="abc") == 1
    assert registry.register(trained.files, git_commit="def") == 2
    assert registry.versions() == [1, 2]
    manifest = registry.manifest(2)
    assert manifest["version"] == 2 and manifest["git_commit"] == "def"
    assert manifest["model"] == "titanic-logreg"


def test_load_verifies_and_returns_the_bundle(registry, trained):
    version = registry.register(trained.files)
    loaded = registry.load(version)
    assert loaded.version == version
    assert loaded.onnx == trained.files[bundle.MODEL_ONNX]
    assert loaded.metrics == trained.metrics


def test_tampered_bundle_is_refused(registry, trained):
    version = registry.register(trained.files)
    registry.storage.write(f"{version_prefix(registry.model, version)}/model.onnx", b"evil")
    with pytest.raises(bundle.BundleIntegrityError, match="model.onnx has sha256"):
        registry.load(version)


def test_aliases_move_and_resolve(registry, trained):
    v1 = registry.register(trained.files)
    v2 = registry.register(trained.files)
    assert registry.set_alias("production", v1) is None
    assert registry.set_alias("staging", v2) is None
    assert registry.set_alias("production", v2) == v1
    assert registry.resolve("production") == v2
    assert registry.resolve("latest") == v2
    assert registry.resolve(str(v1)) == v1
    assert registry.aliases() == {"production": v2, "staging": v2}
    stored = json.loads(registry.storage.read(alias_key(registry.model, "production")))
    assert stored["previous"] == v1


def test_list_versions_carries_metrics_and_aliases(registry, trained):
    registry.register(trained.files)
    registry.register(trained.files)
    registry.set_alias("production", 2)
    listing = registry.list_versions()
    assert [v.version for v in listing] == [1, 2]
    assert listing[1].aliases == ("production",) and listing[0].aliases == ()
    assert listing[0].metrics["cv"]["model"]["accuracy_mean"] >= 0.78
    assert listing[1].uri.endswith("registry/titanic-logreg/versions/2")


def test_errors_are_clear(registry, trained):
    with pytest.raises(RegistryError, match="no registered versions"):
        registry.resolve("latest")
    with pytest.raises(RegistryError, match="no alias 'production'"):
        registry.resolve("production")
    with pytest.raises(RegistryError, match="no version 9"):
        registry.set_alias("production", 9)
    registry.register(trained.files)
    with pytest.raises(ValueError, match="invalid alias"):
        registry.set_alias("Prod/../x", 1)
    with pytest.raises(ValueError, match="invalid model name"):
        Registry(registry.storage, "../other")


def _run_concurrently(n: int, target) -> list:
    results: list = [None] * n
    errors: list = []
    barrier = threading.Barrier(n)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(i)
        except Exception as exc:  # collected and re-raised by the test
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


@pytest.mark.parametrize("writers", [2, 6])
def test_concurrent_registrations_get_distinct_intact_versions(registry, trained, writers):
    versions = _run_concurrently(writers, lambda i: registry.register(trained.files, writer=i))
    assert sorted(versions) == list(range(1, writers + 1))
    for i, version in enumerate(versions):
        loaded = registry.load(version)  # verifies every sha256
        assert loaded.manifest["writer"] == i
        assert loaded.onnx == trained.files[bundle.MODEL_ONNX]


def test_concurrent_alias_moves_lose_no_update(registry, trained):
    n = 6
    for _ in range(n):
        registry.register(trained.files)
    previous = _run_concurrently(n, lambda i: registry.set_alias("production", i + 1))
    # Compare-and-swap serialises the moves: each saw a different predecessor, and together
    # they form one chain from "unset" to the final value.
    assert previous.count(None) == 1
    seen = [p for p in previous if p is not None]
    assert len(set(seen)) == n - 1
    final = registry.get_alias("production")
    assert set(seen) | {final} == set(range(1, n + 1))


def test_a_retried_upload_that_landed_is_not_a_conflict(registry, trained):
    version = registry.register(trained.files)
    key = f"{version_prefix(registry.model, version)}/model.onnx"
    registry._create_once(key, trained.files["model.onnx"])  # same bytes: a landed retry
    with pytest.raises(Exception, match="already exists|precondition"):
        registry._create_once(key, b"other bytes")
