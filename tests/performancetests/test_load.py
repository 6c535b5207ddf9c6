"""The locust load profile, headless through `invoke load-test`, against a real server."""

import csv
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def test_invoke_load_test_writes_csv_without_failures(tmp_path, bucket):
    prefix = tmp_path / "locust" / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "invoke",
            "load-test",
            "--run-time",
            "4s",
            "--users",
            "8",
            "--csv",
            str(prefix),
            "--storage",
            str(bucket),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    with open(f"{prefix}_stats.csv") as fh:
        rows = {row["Name"]: row for row in csv.DictReader(fh)}
    assert set(rows) >= {"predict single", "predict batch of 32", "health", "Aggregated"}
    assert int(rows["Aggregated"]["Request Count"]) > 50
    # the synthetic traffic was logged in a scratch copy, not in the served storage
    assert not (bucket / "predictions").exists()
    assert int(rows["Aggregated"]["Failure Count"]) == 0
