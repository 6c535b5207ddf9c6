"""The Storage contract, run against a local folder and against fake-gcs-server (real client)."""

import threading

import pytest

from titanic_mlops.gcs_storage import GCSStorage
from titanic_mlops.storage import (
    LocalStorage,
    NotFound,
    PreconditionFailed,
    open_storage,
)


def test_write_read_overwrite(storage):
    storage.write("a/b.json", b"1")
    storage.write("a/b.json", b"2")
    assert storage.read("a/b.json") == b"2"
    assert storage.exists("a/b.json") and not storage.exists("a/c.json")


def test_missing_key_raises_not_found(storage):
    with pytest.raises(NotFound):
        storage.read("nope/x")
    with pytest.raises(NotFound):
        storage.read_with_generation("nope/x")


def test_create_only(storage):
    storage.create("k/x", b"first")
    with pytest.raises(PreconditionFailed):
        storage.create("k/x", b"second")
    assert storage.read("k/x") == b"first"


def test_compare_and_swap(storage):
    storage.create("alias.json", b"v1")
    _, gen = storage.read_with_generation("alias.json")
    storage.replace("alias.json", b"v2", gen)
    with pytest.raises(PreconditionFailed):
        storage.replace("alias.json", b"v3", gen)  # stale generation
    assert storage.read("alias.json") == b"v2"


def test_replace_of_missing_object_fails(storage):
    storage.create("gone.json", b"x")
    _, gen = storage.read_with_generation("gone.json")
    with pytest.raises((PreconditionFailed, NotFound)):
        storage.replace("other.json", b"y", gen)


def test_list_by_prefix(storage):
    for key in ("p/dt=1/a.jsonl", "p/dt=1/b.jsonl", "p/dt=2/c.jsonl", "q/d"):
        storage.write(key, b"x")
    assert storage.list("p/dt=1/") == ["p/dt=1/a.jsonl", "p/dt=1/b.jsonl"]
    assert storage.list("p/") == ["p/dt=1/a.jsonl", "p/dt=1/b.jsonl", "p/dt=2/c.jsonl"]
    assert storage.list("p/dt=") == ["p/dt=1/a.jsonl", "p/dt=1/b.jsonl", "p/dt=2/c.jsonl"]
    assert storage.list("zzz/") == []


def test_concurrent_create_only_has_one_winner(storage):
    wins, losses = [], []
    barrier = threading.Barrier(8)

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            storage.create("race/claim", str(i).encode())
            wins.append(i)
        except PreconditionFailed:
            losses.append(i)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 7
    assert storage.read("race/claim") == str(wins[0]).encode()


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "./a"])
def test_invalid_keys_are_rejected(storage, key):
    with pytest.raises(ValueError, match="invalid storage key"):
        storage.write(key, b"x")


def test_open_storage_dispatches_on_scheme(tmp_path, gcs_uri):
    assert isinstance(open_storage(tmp_path), LocalStorage)
    assert isinstance(open_storage(f"file://{tmp_path}"), LocalStorage)
    gcs = open_storage(gcs_uri)
    assert isinstance(gcs, GCSStorage) and gcs.join("x") == f"{gcs_uri}/x"
    with pytest.raises(ValueError, match="unsupported storage URI"):
        open_storage("s3://bucket/x")
    with pytest.raises(ValueError, match="no bucket"):
        GCSStorage("gs://")


@pytest.mark.parametrize("prefix", ["/etc/", "../", "a/../../"])
def test_listing_prefixes_cannot_escape(storage, prefix):
    with pytest.raises(ValueError, match="invalid storage prefix"):
        storage.list(prefix)
    with pytest.raises(ValueError, match="invalid storage prefix"):
        storage.list_children(prefix)


@pytest.mark.parametrize("key", ["a/.lock-b", ".tmp-x"])
def test_reserved_names_are_not_keys(storage, key):
    with pytest.raises(ValueError, match="invalid storage key"):
        storage.write(key, b"x")
