"""Run a functions-framework target on loopback as a child process.

One helper for everything that starts the service locally: ``invoke serve`` and
``load-test``, the live-server tests and the benchmarks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

API_SOURCE = Path(__file__).with_name("main.py")
HOST = "127.0.0.1"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def command(
    port: int,
    target: str = "logreg_classifier",
    source: Path = API_SOURCE,
    executable: str | None = None,
) -> list[str]:
    """The functions-framework command line for ``target`` on HOST:``port``."""
    exe = executable or str(Path(sys.executable).parent / "functions-framework")
    return [exe, "--target", target, "--source", str(source), "--host", HOST, "--port", str(port)]


def wait_http(url: str, timeout: float = 30.0) -> None:
    """Poll ``url`` until it answers with any HTTP status, or raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answered (503 while no model is loadable still means "up")
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class LocalServer:
    """A functions-framework process group on a free loopback port.

    ``capture=True`` keeps its output (read it in :attr:`output` after :meth:`stop`).
    """

    def __init__(
        self,
        env: dict[str, str],
        target: str = "logreg_classifier",
        source: Path = API_SOURCE,
        executable: str | None = None,
        capture: bool = False,
    ) -> None:
        self.port = free_port()
        self.host = HOST
        self.url = f"http://{HOST}:{self.port}"
        self.output = ""
        self.started = time.perf_counter()
        out = subprocess.PIPE if capture else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            command(self.port, target, source, executable),
            env={**os.environ, "LOG_LEVEL": "WARNING", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: stop() reaches the workers too
        )

    def wait(self, path: str = "/health", timeout: float = 30.0) -> LocalServer:
        """Block until ``path`` answers; raise (with the output) if the server died."""
        try:
            wait_http(f"{self.url}{path}", timeout)
        except OSError:
            self.stop()
            raise RuntimeError(f"server did not start:\n{self.output}") from None
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig`` (SIGTERM: graceful, flushes the prediction log); return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # the group may have exited between the timeout and the kill
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            out, _ = self.proc.communicate()
        self.output = out or ""
        return self.proc.returncode
