"""Which commit the code is: for manifests (``git_commit``) and image tags."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def describe_commit(abbrev: int = 40) -> str:
    """HEAD as ``<sha>`` or ``<sha>-dirty`` (``abbrev`` hex digits); ``unknown`` outside git.

    Untracked files do not make it dirty.
    """
    try:
        proc = subprocess.run(
            ["git", "describe", "--always", "--dirty", f"--abbrev={abbrev}", "--exclude=*"],
            cwd=ROOT, capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):  # no git here
        return "unknown"
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


def git_commit() -> str:
    """The commit of the running code: ``$GIT_COMMIT`` if set (images are built without
    ``.git``: the build passes it), else :func:`describe_commit`."""
    return os.environ.get("GIT_COMMIT") or describe_commit()
