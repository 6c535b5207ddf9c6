"""Ask a drift service for a check: locally, or the private Cloud Run service.

The deployed drift service is private: Cloud Run admits only requests carrying an identity
token whose audience is the service URL, minted here from Application Default Credentials
(a service account, or `gcloud auth application-default login` with impersonation).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def identity_token(audience: str) -> str:
    """An ID token for ``audience`` from Application Default Credentials."""
    import google.auth.transport.requests
    from google.oauth2 import id_token

    return id_token.fetch_id_token(google.auth.transport.requests.Request(), audience)


def get_check(
    url: str, n_latest: int, source: str | None = None, want_html: bool = False
) -> tuple[dict[str, Any], str | None]:
    """The JSON summary of a check (and the HTML report when asked); SystemExit on failure."""
    base = url.rstrip("/")
    query = {"n_latest": str(n_latest), **({"source": source} if source else {})}
    headers = {}
    if urllib.parse.urlsplit(base).hostname not in LOOPBACK:
        try:
            headers["Authorization"] = f"Bearer {identity_token(base)}"
        except Exception as exc:  # no ADC, or credentials that cannot mint ID tokens
            raise SystemExit(f"no identity token for {base}: {exc}") from None

    def fetch(path: str, params: dict[str, str]) -> bytes:
        request = urllib.request.Request(
            f"{base}{path}?{urllib.parse.urlencode(params)}", headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.read()
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")[:300]
            raise SystemExit(f"drift service answered {err.code}: {detail}") from None
        except OSError as exc:
            raise SystemExit(f"drift service at {base} unreachable: {exc}") from None

    summary = json.loads(fetch("/", query))
    page = None
    if want_html and summary.get("report_id"):
        # the report this very check stored: asking for format=html would run a second check
        page = fetch("/report", {"id": summary["report_id"]}).decode()
    return summary, page
