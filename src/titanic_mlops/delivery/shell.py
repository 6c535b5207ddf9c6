"""Print and run command lines: what every delivery task does with the commands it builds."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence


class CommandFailed(RuntimeError):
    """A command exited non-zero (the message is one line)."""


def gcloud() -> str:
    """The gcloud binary (``$GCLOUD`` overrides); one-line error if it is not installed."""
    name = os.environ.get("GCLOUD", "gcloud")
    path = shutil.which(name)
    if not path:
        raise CommandFailed(
            f"{name} not found: install the Google Cloud CLI "
            "(https://cloud.google.com/sdk/docs/install) or set GCLOUD"
        )
    return path


def show(commands: Sequence[Sequence[str]]) -> None:
    """Print each command as a shell line."""
    for cmd in commands:
        print("$ " + shlex.join(cmd))


def run_all(commands: Sequence[Sequence[str]], tolerate_existing: bool = False) -> None:
    """Run each command in order (``gcloud`` resolved once), printing it first.

    ``tolerate_existing``: a create that fails because the resource exists is skipped, so a
    setup can be re-run.
    """
    binary = gcloud() if any(c[0] == "gcloud" for c in commands) else ""
    for cmd in commands:
        print("$ " + shlex.join(cmd), flush=True)
        argv = [binary if cmd[0] == "gcloud" else cmd[0], *cmd[1:]]
        proc = subprocess.run(argv, stderr=subprocess.PIPE, text=True, check=False)
        if proc.returncode == 0:
            continue
        err = proc.stderr.strip()
        if tolerate_existing and "already exist" in err.lower():
            print("  (already exists: kept)")
            continue
        last = err.splitlines()[-1] if err else "no error output"
        if err:
            print(err)
        raise CommandFailed(f"{shlex.join(cmd[:4])} … failed (exit {proc.returncode}): {last}")
