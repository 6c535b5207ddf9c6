"""Values created lazily, once per process (clients, sessions, writers).

gunicorn imports a functions-framework target in the master and forks the workers (uvicorn
workers too): anything holding sockets, threads or a native runtime must be created in the
process that uses it. A storage client created before the fork shares pooled connections
between workers; an onnxruntime session inherited across a fork aborts at exit.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerProcess(Generic[T]):
    """A value created lazily, once per process id."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._values: dict[int, T] = {}
        self._lock = threading.Lock()

    def get(self) -> T:
        """This process's value, created on first use."""
        pid = os.getpid()
        value = self._values.get(pid)
        if value is None:
            with self._lock:
                value = self._values.get(pid)
                if value is None:
                    value = self._values[pid] = self._factory()
        return value

    def current(self) -> T | None:
        """This process's value if it was created, without creating it."""
        return self._values.get(os.getpid())
