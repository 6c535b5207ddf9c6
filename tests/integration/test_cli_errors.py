"""Expected failures of the command line read as one line and exit non-zero (issue: newcomer path).

Each case is run as a user runs it, `invoke <task>` in a subprocess; a traceback would mean
the project's error reached the user raw.
"""

import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from titanic_mlops.api.local_server import free_port

pytestmark = pytest.mark.integration


def invoke(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=120, env={**os.environ, "LOG_LEVEL": "WARNING", **(env or {})},
    )  # fmt: skip


def one_line_failure(proc: subprocess.CompletedProcess, *words: str) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0, proc.stdout[-500:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert len(lines) == 1, proc.stderr[-2000:]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_registry_errors(bucket):
    one_line_failure(
        invoke("promote", "--version", "99", "--storage", str(bucket)), "no version 99"
    )
    one_line_failure(
        invoke("evaluate", "--ref", "nosuchalias", "--storage", str(bucket)),
        "no alias 'nosuchalias'",
    )


def test_no_service_to_predict_with():
    port = free_port()
    one_line_failure(invoke("predict", "--port", str(port)), f"127.0.0.1:{port}", "invoke serve")


def test_a_busy_port_is_named_before_anything_starts(bucket):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        for task in ("serve", "drift-serve"):
            line = one_line_failure(invoke(task, "--port", str(port), "--storage", str(bucket)))
            assert f"port {port}" in line and "--port" in line


def test_drift_check_without_a_model(tmp_path):
    one_line_failure(invoke("drift-check", "--storage", str(tmp_path / "empty")), "no model")


def test_a_bad_setting_is_one_line_naming_it(bucket):
    proc = invoke("drift-check", "--storage", str(bucket), env={"MAX_INSTANCES": "many"})
    one_line_failure(proc, "MAX_INSTANCES")


def test_debug_shows_the_traceback(bucket):
    proc = invoke(
        "promote", "--version", "99", "--storage", str(bucket), env={"LOG_LEVEL": "DEBUG"}
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr
