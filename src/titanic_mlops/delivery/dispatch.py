"""Tell GitHub that an alias moved: the ``repository_dispatch`` that model-registry.yaml waits for.

    uv run invoke promote --version 3 --alias production --notify      (GITHUB_TOKEN set)

The workflow then validates the version the alias points at and, for ``production``, rolls
a new Cloud Run revision (instances resolve the alias once, at start-up).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.error
import urllib.request
from typing import Any

from titanic_mlops.delivery.gcp import ROOT

EVENT_TYPE = "model-registry-changed"  # `on.repository_dispatch.types` of model-registry.yaml
WORKFLOW = ROOT / ".github" / "workflows" / "model-registry.yaml"
API_VERSION = "2022-11-28"
REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_REMOTE = re.compile(r"github\.com[:/]([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?)(?:\.git)?/?$")


class DispatchError(RuntimeError):
    """The event could not be sent (the message is one line)."""


def payload(model: str, alias: str, version: int, previous: int | None) -> dict[str, Any]:
    """The request body: the workflow reads ``client_payload.alias``."""
    return {
        "event_type": EVENT_TYPE,
        "client_payload": {
            "model": model,
            "alias": alias,
            "version": version,
            "previous": previous,
        },
    }


def default_repo() -> str:
    """``$GITHUB_REPOSITORY`` (set in Actions), else the ``origin`` remote's owner/name."""
    if os.environ.get("GITHUB_REPOSITORY"):
        return os.environ["GITHUB_REPOSITORY"]
    proc = subprocess.run(
        ["git", "remote", "get-url", "origin"],
        cwd=ROOT, capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    match = _REMOTE.search(proc.stdout.strip()) if proc.returncode == 0 else None
    return match.group(1) if match else ""


def build_request(repo: str, token: str, body: dict[str, Any]) -> urllib.request.Request:
    """``POST /repos/{repo}/dispatches`` (``$GITHUB_API_URL`` for GitHub Enterprise)."""
    if not REPO.match(repo):
        raise DispatchError(f"--repo must be OWNER/NAME, got {repo!r}")
    if not token:
        raise DispatchError(
            "GITHUB_TOKEN is not set: a token with contents:write on the repository is needed"
        )
    api = os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    return urllib.request.Request(
        f"{api}/repos/{repo}/dispatches",
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {token}",
            "X-GitHub-Api-Version": API_VERSION,
            "Content-Type": "application/json",
            "User-Agent": "titanic-mlops",
        },
    )


def send(request: urllib.request.Request, timeout: float = 30) -> None:
    """Send it; GitHub answers 204 No Content, anything else is a one-line DispatchError."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:200].replace("\n", " ")
        raise DispatchError(f"GitHub answered {exc.code} to {request.full_url}: {detail}") from None
    except OSError as exc:
        raise DispatchError(f"cannot reach {request.full_url}: {exc}") from None
    if status != 204:
        raise DispatchError(f"GitHub answered {status} to {request.full_url}, expected 204")
