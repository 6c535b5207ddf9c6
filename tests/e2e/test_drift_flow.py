"""The whole drift path as deployed, on loopback: the prediction service logs real traffic to
fake-gcs-server (the real GCS client), the drift service checks it, the report objects land
in the bucket, and the HTML report opens in Debian's Chromium."""

import json
import subprocess
import sys
import urllib.request

import pytest

from tests.conftest import ROOT, register_production, require_binary
from tests.e2e.test_web_page import CHROMIUM, CHROMIUM_ARGS
from titanic_mlops import traffic
from titanic_mlops.api.local_server import DRIFT_SOURCE
from titanic_mlops.storage import open_storage

pytestmark = pytest.mark.integration


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read()


def serve_traffic(server_factory, uri: str, records) -> None:
    """Send ``records`` to a prediction service (2 workers), then stop it (SIGTERM flushes)."""
    api = server_factory({"STORAGE_URI": uri, "WORKERS": "2"})
    assert traffic.send(f"{api.url}/", records) == {200: len(records)}
    assert api.stop() == 0


def check(drift, n: int) -> dict:
    return json.loads(get(f"{drift.url}/?n_latest={n}&source=simulate-traffic"))


def test_undrifted_then_drifted_traffic_through_both_services(
    gcs_uri, trained, server_factory, tmp_path
):
    uri = gcs_uri
    register_production(uri, trained.files)
    drift = server_factory({"STORAGE_URI": uri}, target="drift_check", source=DRIFT_SOURCE)
    assert check(drift, 600)["status"] == "insufficient_data"

    serve_traffic(server_factory, uri, traffic.draw(600, seed=11))
    calm = check(drift, 600)
    assert calm["status"] == "ok" and calm["n_current"] == 600
    assert calm["dataset_drift"] is False

    women = [r for r in traffic.draw(4000, seed=12) if r["pclass"] == 1 and r["sex"] == "female"]
    older = [{**r, "age": min((r["age"] or 30) + 25, 120)} for r in women]
    serve_traffic(server_factory, uri, (older * 10)[:600])
    shifted = check(drift, 600)
    assert shifted["dataset_drift"] is True, shifted["drifted_columns"]
    assert {"pclass", "sex", "age"} <= set(shifted["drifted_columns"])

    # both checks wrote their report and summary as objects in the bucket
    storage = open_storage(uri)
    keys = storage.list("drift/reports/")
    assert len([k for k in keys if k.endswith(".html")]) == 2
    assert len([k for k in keys if k.endswith(".json")]) == 2
    summary = json.loads(storage.read(shifted["summary_uri"].split("/mlops/", 1)[1]))
    assert summary["drifted_columns"] == shifted["drifted_columns"]

    # `invoke drift-check --url`: one more check, and the HTML it saves is that check's report
    page_file = tmp_path / "report.html"
    cli = subprocess.run(
        [sys.executable, "-m", "invoke", "drift-check", "--url", drift.url, "-n", "600",
         "--source", "simulate-traffic", "--html", str(page_file)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert "dataset: DRIFT" in cli.stdout and f"HTML report written to {page_file}" in cli.stdout
    keys = storage.list("drift/reports/")
    htmls = sorted(k for k in keys if k.endswith(".html"))
    assert len(htmls) == 3 and len(keys) == 6
    assert page_file.read_bytes() == storage.read(htmls[-1])

    # the HTML report renders in a real browser
    from playwright.sync_api import sync_playwright

    chromium = require_binary(CHROMIUM, "Debian chromium (apt-get install chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(page_file.as_uri())
        page.get_by_text("Dataset Drift", exact=False).first.wait_for(timeout=60_000)
        assert "Drift is detected" in page.inner_text("body")
        browser.close()
