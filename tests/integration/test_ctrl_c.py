"""Ctrl-C on `invoke serve` stops the service gracefully, every time, and loses nothing.

A terminal sends SIGINT to its foreground process group: here that group is `invoke`
started in a session of its own, exactly as a shell would run it.
"""

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest

from tests.conftest import ROOT
from titanic_mlops.api.local_server import check_port_free, free_port, wait_http
from titanic_mlops.predictions import read_latest
from titanic_mlops.storage import open_storage

pytestmark = pytest.mark.integration

STOPS = 20
UV = shutil.which("uv") or "uv"
MAX_STOP_SECONDS = 5.0


def predict(url: str) -> str:
    body = json.dumps({"pclass": 2, "sex": "female", "age": 30}).encode()
    request = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["request_id"]


def test_twenty_ctrl_c_stops_in_a_row_are_quick_and_flush_the_log(bucket):
    env = {**os.environ, "PREDICTION_LOG_FLUSH_SECONDS": "3600"}  # only the stop flushes
    sent, times = [], []
    for _ in range(STOPS):
        port = free_port()
        # as a user runs it: `uv run` relays the terminal's SIGINT too (a second signal)
        proc = subprocess.Popen(
            [UV, "run", "--no-sync", "invoke", "serve", "--port", str(port),
             "--storage", str(bucket)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        try:
            wait_http(f"http://127.0.0.1:{port}/health", timeout=60)
            sent.append(predict(f"http://127.0.0.1:{port}/"))
            start = time.monotonic()
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
            out, _ = proc.communicate(timeout=30)
            times.append(time.monotonic() - start)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        assert proc.returncode == 0, out[-2000:]
        # the server ran in a session of its own: nothing of it is left behind
        check_port_free(port)
    print(f"{STOPS} Ctrl-C stops: max {max(times):.2f} s, median {sorted(times)[STOPS // 2]:.2f} s")
    assert max(times) < MAX_STOP_SECONDS, times
    logged = [r["request_id"] for r in read_latest(open_storage(bucket), 10 * STOPS).records]
    assert sorted(logged) == sorted(sent)
