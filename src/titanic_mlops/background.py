"""Background processes that outlive the command starting them, each in its own group.

The local monitoring stack (``local_stack.py``) starts its components with :func:`spawn`,
keeps their pids in a file, and later checks and stops them from another command with
:func:`alive` and :func:`stop`. A component's pid is also its process-group id, so a signal
reaches the workers it forked too (gunicorn's, for the services).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path


def spawn(argv: Sequence[str], env: dict[str, str], log: Path, cwd: Path) -> int:
    """Start ``argv`` in a new session (stdout and stderr appended to ``log``); its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(argv),
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
        )
    # reaped as soon as it exits should this process live on (a zombie would look alive)
    threading.Thread(target=proc.wait, daemon=True).start()
    return proc.pid


def alive(pid: int) -> bool:
    """Whether process group ``pid`` still has a process."""
    if pid <= 0:
        return False
    try:
        os.killpg(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def send(pid: int, sig: int) -> None:
    """Send ``sig`` to process group ``pid`` (gone already: nothing to do)."""
    if pid > 0:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)


def stop(pids: Sequence[int], grace: float = 15.0) -> None:
    """SIGTERM every group (in the order given), wait up to ``grace`` s, then SIGKILL the rest."""
    for pid in pids:
        send(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for pid in pids:
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(pid):
            send(pid, signal.SIGKILL)
    for pid in pids:  # a killed group is gone within milliseconds; wait for it
        while alive(pid) and time.monotonic() < deadline + 5:
            time.sleep(0.05)
