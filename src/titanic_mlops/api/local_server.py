"""Run a functions-framework target on loopback as a child process.

One helper for everything that starts the service locally: ``invoke serve`` and
``load-test``, the live-server tests and the benchmarks.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

API_SOURCE = Path(__file__).with_name("main.py")
DRIFT_SOURCE = Path(__file__).with_name("drift_main.py")
HOST = "127.0.0.1"
# Signals this close together are one Ctrl-C: a wrapper such as `uv run` relays the
# terminal's SIGINT to its child, which then receives it twice within milliseconds.
SAME_INTERRUPT_SECONDS = 1.0


def free_port() -> int:
    """A free TCP port on loopback."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on loopback (all held open until all are chosen)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in socks]


def command(
    port: int,
    target: str = "logreg_classifier",
    source: Path = API_SOURCE,
    executable: str | None = None,
    asgi: bool = True,
) -> list[str]:
    """The functions-framework command line for ``target`` on HOST:``port``.

    ``asgi``: functions-framework's ASGI mode (Starlette on gunicorn + uvicorn workers), as
    deployed; ``False`` is its default Flask stack (kept for the benchmark's floor).
    """
    exe = executable or str(Path(sys.executable).parent / "functions-framework")
    cmd = [exe, "--target", target, "--source", str(source), "--host", HOST, "--port", str(port)]
    return [*cmd, "--asgi"] if asgi else cmd


def copy_registry(storage: Path, into: Path) -> str:
    """Copy the registry of a local storage folder into ``into``; return ``into`` as a URI.

    Load tests and benchmarks serve from such a copy, so that their synthetic prediction
    log never lands in the log that drift checks read.
    """
    src = Path(storage) / "registry"
    if not src.is_dir():
        raise FileNotFoundError(
            f"no registry under {storage}: run `uv run invoke quickstart --no-serve` first"
        )
    shutil.copytree(src, Path(into) / "registry")
    return str(into)


class PortInUse(OSError):
    """The port asked for is taken by another process."""


def check_port_free(port: int) -> None:
    """Raise :class:`PortInUse` (one line, naming the port) if ``port`` cannot be bound."""
    with socket.socket() as sock:
        # as gunicorn binds: connections of an earlier server in TIME_WAIT do not count
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            raise PortInUse(
                f"port {port} on {HOST} is already in use: stop what runs there "
                "or choose another with --port"
            ) from None


def wait_http(url: str, timeout: float = 30.0, alive: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers with any HTTP status, or raise after ``timeout``.

    With ``alive``, give up at once (OSError) when that process has exited.
    """
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None and alive.poll() is not None:
            raise OSError(f"{url}: the server exited with code {alive.returncode}")
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
        port: int | None = None,
        asgi: bool = True,
        quiet: bool = True,
    ) -> None:
        if port is None:
            port = free_port()
        else:
            check_port_free(port)
        self.port = port
        self.host = HOST
        self.url = f"http://{HOST}:{self.port}"
        self.output = ""
        self.started = time.perf_counter()
        out = subprocess.PIPE if capture else (subprocess.DEVNULL if quiet else None)
        base = {**os.environ, "LOG_LEVEL": "WARNING"} if quiet else dict(os.environ)
        self.proc = subprocess.Popen(
            command(self.port, target, source, executable, asgi),
            env={**base, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: stop() reaches the workers too
        )

    def wait(self, path: str = "/health", timeout: float = 60.0) -> LocalServer:
        """Block until ``path`` answers; raise (with the output) if the server died."""
        try:
            wait_http(f"{self.url}{path}", timeout)
        except OSError:
            self.stop()
            raise RuntimeError(f"server did not start:\n{self.output}") from None
        return self

    def run_foreground(self, on_ready: Callable[[], None] | None = None) -> int:
        """Wait for the server (calling ``on_ready`` once it answers) until it exits.

        The server runs in its own session, so a terminal's Ctrl-C reaches only this
        process: the first SIGINT or SIGTERM is forwarded as one graceful SIGTERM to the
        server's group (what Cloud Run sends; the prediction log is flushed), a second one
        (a second Ctrl-C, not the same one relayed by a wrapper) kills the group. Returns
        the server's exit code.
        """
        forwarded: list[float] = []

        def forward(signum: int, frame: object) -> None:
            now = time.monotonic()
            if forwarded and now - forwarded[0] < SAME_INTERRUPT_SECONDS:
                return  # the same Ctrl-C, relayed (`uv run` forwards the terminal's SIGINT)
            sig = signal.SIGKILL if forwarded else signal.SIGTERM
            forwarded.append(now)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

        previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            try:
                wait_http(f"{self.url}/health", timeout=60, alive=self.proc)
            except OSError:
                if not forwarded:
                    self.stop()
                    raise RuntimeError(f"the server on port {self.port} did not start") from None
            else:
                if on_ready is not None and not forwarded:
                    on_ready()
            return self.proc.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

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
