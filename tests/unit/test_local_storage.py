"""The local-folder storage on any OS: create-only and compare-and-swap without POSIX-only modules.

These run in the unit job on Linux, macOS and Windows (see .github/workflows/tests.yaml).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from titanic_mlops.storage import LocalStorage, PreconditionFailed

# Modules that exist only on POSIX systems: importing any of them breaks Windows.
POSIX_ONLY = ("fcntl", "termios", "pwd", "grp", "resource", "tty", "pty")

# Installed before anything else in a fresh interpreter: any import of a POSIX-only module
# fails as it would on Windows, and is recorded.
BLOCKER = textwrap.dedent(
    f"""
    import sys
    BLOCKED = set({POSIX_ONLY!r})
    attempted = []

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name in BLOCKED:
                attempted.append(name)
                raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
            return None

    for name in BLOCKED:
        sys.modules.pop(name, None)
    sys.meta_path.insert(0, Block())
    """
)


def run_blocked(body: str, tmp_path: Path) -> subprocess.CompletedProcess:
    script = BLOCKER + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def test_importing_storage_needs_no_posix_only_module(tmp_path):
    proc = run_blocked(
        """
        import titanic_mlops.storage
        print("attempted:", sorted(set(attempted)))
        loaded = sorted(m for m in BLOCKED if m in sys.modules)
        assert not loaded, loaded
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    # Allowed to *try* (filelock probes for fcntl and falls back), never required.
    assert "attempted:" in proc.stdout


def test_create_and_compare_and_swap_work_without_posix_modules(tmp_path):
    proc = run_blocked(
        f"""
        from titanic_mlops.storage import LocalStorage, PreconditionFailed
        s = LocalStorage({str(tmp_path / "bucket")!r})
        s.create("a/x.json", b"1")
        try:
            s.create("a/x.json", b"2")
            raise SystemExit("second create succeeded")
        except PreconditionFailed:
            pass
        data, gen = s.read_with_generation("a/x.json")
        s.replace("a/x.json", b"3", gen)
        try:
            s.replace("a/x.json", b"4", gen)
            raise SystemExit("stale compare-and-swap succeeded")
        except PreconditionFailed:
            pass
        assert s.read("a/x.json") == b"3"
        assert s.list("a/") == ["a/x.json"]
        print("ok")
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")


def race(n: int, attempt: Callable[[int], object]) -> tuple[list[object], list[int]]:
    """Run ``attempt(i)`` in ``n`` threads released together; (results, indexes that lost)."""
    barrier = threading.Barrier(n)
    results: list[object] = []
    lost: list[int] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results.append(attempt(i))
        except PreconditionFailed:
            lost.append(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, lost


@pytest.fixture(params=["hard links", "no hard links"])
def local(request, tmp_path, monkeypatch) -> LocalStorage:
    """A local storage, with and without hard-link support on the file system."""
    if request.param == "no hard links":

        def no_link(src, dst, **kwargs):
            raise PermissionError(1, "Operation not permitted (no hard links here)")

        monkeypatch.setattr(os, "link", no_link)
    return LocalStorage(tmp_path / "bucket")


def test_concurrent_creates_have_one_winner(local):
    wins, lost = race(8, lambda i: local.create("race/claim", str(i).encode()) or i)
    assert len(wins) == 1 and len(lost) == 7
    assert local.read("race/claim") == str(wins[0]).encode()
    assert local.list("race/") == ["race/claim"]  # no temporary or lock file is a key


def test_concurrent_compare_and_swap_loses_no_update(local):
    local.create("alias.json", b"0")

    def increment(_: int) -> int:
        while True:
            data, generation = local.read_with_generation("alias.json")
            try:
                local.replace("alias.json", str(int(data) + 1).encode(), generation)
                return int(data)
            except PreconditionFailed:
                continue

    seen, lost = race(6, increment)
    assert not lost and sorted(seen) == [0, 1, 2, 3, 4, 5]
    assert local.read("alias.json") == b"6"


def test_objects_are_readable_files(local):
    local.create("k/x", b"1")
    path = local.root / "k" / "x"
    assert path.read_bytes() == b"1"
    if os.name == "posix":
        assert path.stat().st_mode & 0o777 == 0o644


def test_a_rename_refused_while_the_target_is_open_is_retried(tmp_path, monkeypatch):
    """Windows refuses os.replace over a file a reader holds open. That cannot happen on the
    Linux that runs this suite, so os.replace is wrapped to refuse twice (the one stand-in
    here); the Windows unit job runs the real concurrent test above."""
    from titanic_mlops import storage

    real, refusals = os.replace, []

    def busy_twice(src, dst):
        if len(refusals) < 2:
            refusals.append(dst)
            raise PermissionError(13, "The process cannot access the file", str(dst))
        real(src, dst)

    monkeypatch.setattr(storage.os, "replace", busy_twice)
    src, dst = tmp_path / "new", tmp_path / "obj"
    src.write_bytes(b"2")
    dst.write_bytes(b"1")
    storage._replace(str(src), dst, retry=True)
    assert dst.read_bytes() == b"2" and len(refusals) == 2

    refusals.clear()
    src.write_bytes(b"3")
    with pytest.raises(PermissionError):  # elsewhere a refusal is a real error, raised at once
        storage._replace(str(src), dst, retry=False)
    assert dst.read_bytes() == b"2" and len(refusals) == 1


def test_a_failed_write_leaves_no_temporary_file(local, monkeypatch):
    from titanic_mlops import storage

    def refuse(src, dst, retry=False):
        raise PermissionError(13, "refused", str(dst))

    monkeypatch.setattr(storage, "_replace", refuse)
    with pytest.raises(PermissionError):
        local.write("k/x", b"1")
    assert [p.name for p in (local.root / "k").iterdir()] == []

    def full_disk(path, mode):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "chmod", full_disk)
    for operation in (local.write, local.create):
        with pytest.raises(OSError, match="No space"):
            operation("k/y", b"1")
    assert [p.name for p in (local.root / "k").iterdir()] == []
