"""One URI-based storage interface for a local folder and ``gs://bucket/prefix``.

Keys are ``/``-separated paths relative to the URI. Besides plain reads and writes it
offers the two primitives the registry and the prediction log rely on: create-only
writes and compare-and-swap replaces, both backed by GCS generation preconditions
(and by ``link`` and a portable lock file on a local folder: Linux, macOS and Windows).
The local folder lives here; ``gs://`` is :mod:`titanic_mlops.gcs_storage`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from filelock import FileLock

Generation = str


class StorageError(RuntimeError):
    """A storage operation failed."""


class PreconditionFailed(StorageError):
    """A create-only write found the key already present, or a compare-and-swap lost a race."""


class NotFound(StorageError, KeyError):
    """No object under that key."""


class Storage(ABC):
    """Bytes under string keys."""

    uri: str

    @abstractmethod
    def read(self, key: str) -> bytes:
        """The object's bytes; raises :class:`NotFound`."""

    @abstractmethod
    def read_with_generation(self, key: str) -> tuple[bytes, Generation]:
        """The bytes and an opaque generation token for :meth:`replace`."""

    @abstractmethod
    def write(self, key: str, data: bytes) -> None:
        """Create or overwrite."""

    @abstractmethod
    def create(self, key: str, data: bytes) -> None:
        """Write only if nothing is there; raises :class:`PreconditionFailed` otherwise."""

    @abstractmethod
    def replace(self, key: str, data: bytes, generation: Generation) -> None:
        """Overwrite only if the object is still at ``generation`` (compare-and-swap)."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Sorted keys starting with ``prefix``."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""

    @abstractmethod
    def list_children(self, prefix: str) -> list[str]:
        """Sorted immediate "folders" under ``prefix`` (which ends in ``/``), each ending in ``/``.

        Lets readers walk a partitioned layout newest-first without listing all of it.
        """

    def join(self, *parts: str) -> str:
        """Human-readable URI of a key (for logs and summaries)."""
        return "/".join([self.uri.rstrip("/"), *parts])


# LocalStorage's own temporary and lock files: never valid object names.
RESERVED_PREFIXES = (".tmp-", ".lock-")
# Windows refuses to rename over a file another process holds open (a reader, for a few
# milliseconds): the rename is retried for up to REPLACE_ATTEMPTS * REPLACE_PAUSE seconds.
REPLACE_ATTEMPTS, REPLACE_PAUSE = 50, 0.01


def _replace(src: str, dst: Path, retry: bool = os.name == "nt") -> None:
    """``os.replace``, retried (on Windows) while the target is reported as in use."""
    for attempt in range(REPLACE_ATTEMPTS):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if not retry or attempt == REPLACE_ATTEMPTS - 1:
                raise
            time.sleep(REPLACE_PAUSE)


def check_key(key: str) -> str:
    parts = key.split("/")
    if (
        not key
        or key.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
        or parts[-1].startswith(RESERVED_PREFIXES)
    ):
        raise ValueError(f"invalid storage key {key!r}")
    return key


def check_prefix(prefix: str) -> str:
    """A listing prefix: empty, or a key-like path that may end in "/" or a partial name."""
    if prefix and (prefix.startswith("/") or any(p in (".", "..") for p in prefix.split("/"))):
        raise ValueError(f"invalid storage prefix {prefix!r}")
    return prefix


class LocalStorage(Storage):
    """A folder on disk standing in for a bucket."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise NotFound(self.join(key)) from exc

    def read_with_generation(self, key: str) -> tuple[bytes, Generation]:
        data = self.read(key)
        return data, hashlib.sha256(data).hexdigest()

    def _tmp(self, path: Path, data: bytes) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            # mkstemp creates 0600; objects are plain files. (os.fchmod does not exist on
            # Windows, where chmod only toggles the read-only flag.)
            os.chmod(tmp, 0o644)
        except BaseException:
            os.unlink(tmp)  # a full disk leaves no partial temporary file behind
            raise
        return tmp

    def _lock(self, path: Path) -> FileLock:
        """The lock serialising compare-and-swap (and the no-hard-link create) of one key."""
        # flock on POSIX, msvcrt on Windows; imported here: only alias moves need it, and
        # every service start would pay for the import (~10 ms)
        from filelock import FileLock

        return FileLock(path.parent / f".lock-{path.name}")

    def write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        # Write-then-rename: a reader never sees a half-written object.
        tmp = self._tmp(path, data)
        try:
            _replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def create(self, key: str, data: bytes) -> None:
        path = self._path(key)
        tmp = self._tmp(path, data)
        try:
            os.link(tmp, path)  # atomic, and fails if the name exists (NTFS too)
        except FileExistsError as exc:
            raise PreconditionFailed(f"{self.join(key)} already exists") from exc
        except (OSError, NotImplementedError):
            # No hard links on this file system (FAT, some network shares): check-then-rename
            # under the key's lock, which every writer on this file system then takes.
            self._create_locked(key, path, tmp)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _create_locked(self, key: str, path: Path, tmp: str) -> None:
        with self._lock(path):
            if path.exists():
                raise PreconditionFailed(f"{self.join(key)} already exists")
            _replace(tmp, path)

    def replace(self, key: str, data: bytes, generation: Generation) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock(path):
            try:
                _, current = self.read_with_generation(key)
            except NotFound as exc:
                raise PreconditionFailed(f"{self.join(key)} vanished") from exc
            if current != generation:
                raise PreconditionFailed(f"{self.join(key)} changed since it was read")
            self.write(key, data)

    def list(self, prefix: str = "") -> list[str]:
        check_prefix(prefix)
        base = self.root
        if not base.exists():
            return []
        keys = []
        start = base / prefix.rsplit("/", 1)[0] if "/" in prefix else base
        if not start.is_dir():
            return []
        for dirpath, _, files in os.walk(start):
            for name in files:
                if name.startswith(RESERVED_PREFIXES):
                    continue
                key = Path(dirpath, name).relative_to(base).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list_children(self, prefix: str) -> list[str]:
        folder = self.root / check_prefix(prefix) if prefix else self.root
        if not folder.is_dir():
            return []
        return sorted(f"{prefix}{p.name}/" for p in folder.iterdir() if p.is_dir())


def open_storage(uri: str | Path) -> Storage:
    """``gs://…`` → :class:`GCSStorage`; anything else is a local folder."""
    text = str(uri)
    if text.startswith("gs://"):
        from titanic_mlops.gcs_storage import GCSStorage  # the client library: only for GCS

        return GCSStorage(text)
    if "://" in text and not text.startswith("file://"):
        raise ValueError(f"unsupported storage URI {text!r}: use gs://bucket/prefix or a path")
    return LocalStorage(text.removeprefix("file://"))
