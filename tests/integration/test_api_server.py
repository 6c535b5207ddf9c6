"""The service as deployed: a real functions-framework (gunicorn) process on loopback, the
registry and the prediction log in fake-gcs-server through the real GCS client."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, load_torch_model, register_production
from titanic_mlops import data
from titanic_mlops.predictions import read_latest
from titanic_mlops.storage import open_storage

pytestmark = pytest.mark.integration


def post(url: str, body, timeout: float = 30) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def read_response(sock) -> str:
    """One whole HTTP response (headers, then Content-Length bytes of body) from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return data.decode()  # the server closed the connection
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))  # fmt: skip
    while len(body) < length:
        body += sock.recv(4096)
    return (head + b"\r\n\r\n" + body).decode()


@pytest.fixture
def gcs_server(gcs_uri, trained, server_factory):
    register_production(gcs_uri, trained.files)
    env = {
        "STORAGE_URI": gcs_uri,
        "PREDICTION_LOG_FLUSH_SECONDS": "0.3",
        "WORKERS": "2",
        "THREADS": "4",
    }
    return server_factory(env), gcs_uri


def test_api_probabilities_match_torch_over_the_test_split(gcs_server, trained, data_dirs):
    server, _ = gcs_server
    records, _ = data.read_records_csv(data_dirs["processed"] / "test_raw.csv")
    status, body = post(f"{server.url}/", {"instances": records})
    assert status == 200 and len(body["predictions"]) == len(records) == 179

    x, _ = data.titanic_dataset("test", data_dirs["processed"]).tensors
    expected = load_torch_model(trained.files).predict_proba(x).numpy()
    served = np.array([p["probability"] for p in body["predictions"]])
    assert np.max(np.abs(served - expected)) <= 1e-5
    assert [p["survived"] for p in body["predictions"]] == (expected >= 0.5).astype(int).tolist()


def test_predictions_land_in_the_bucket_from_both_workers(gcs_server):
    server, uri = gcs_server
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(
                lambda i: post(f"{server.url}/", {"pclass": 1 + i % 3, "sex": "female"}), range(60)
            )
        )
    assert all(status == 200 for status, _ in results)
    sent = {body["request_id"] for _, body in results}
    assert server.stop() == 0  # graceful SIGTERM flushes whatever is still buffered
    storage = open_storage(uri)
    logged = read_latest(storage, 1000).records
    assert {r["request_id"] for r in logged} == sent and len(logged) == 60
    keys = storage.list("predictions/")
    assert all(k.startswith("predictions/dt=") and k.endswith(".jsonl") for k in keys)


def test_sigterm_flushes_the_buffer(gcs_uri, trained, server_factory):
    register_production(gcs_uri, trained.files)
    # Nothing would flush by count or age within the test: only shutdown writes.
    server = server_factory(
        {
            "STORAGE_URI": gcs_uri,
            "PREDICTION_LOG_FLUSH_SECONDS": "3600",
            "PREDICTION_LOG_FLUSH_RECORDS": "100000",
        }
    )
    ids = [post(f"{server.url}/", {"pclass": 3, "sex": "male"})[1]["request_id"] for _ in range(25)]
    storage = open_storage(gcs_uri)
    assert storage.list("predictions/") == []
    assert server.stop() == 0
    assert [r["request_id"] for r in read_latest(storage, 100).records] == ids


def test_unknown_bucket_answers_503_not_500(fake_gcs, server_factory):
    server = server_factory({"STORAGE_URI": "gs://no-such-bucket/x"})
    status, body = post(f"{server.url}/", {"pclass": 3, "sex": "male"})
    assert status == 503 and body["error"]["code"] == "model_unavailable"


def test_schemathesis_finds_no_failure(tmp_path, local_server):
    server = local_server
    exe = Path(sys.executable).parent / "schemathesis"
    proc = subprocess.run(
        [
            str(exe),
            "--config-file",
            str(ROOT / "tests/integration/schemathesis.toml"),
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            "150",
            "-w",
            "1",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    summary = proc.stdout[-3000:]
    assert proc.returncode == 0, summary
    assert "No issues found" in summary


def raw_exchange(server, request: bytes, half_close: bool = False) -> str:
    """Send raw bytes on one connection and read one whole response."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        if half_close:
            sock.shutdown(socket.SHUT_WR)  # the client gives up mid-body
        return read_response(sock)


HEAD = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


def test_oversize_body_is_refused_without_reading_it(local_server):
    # announce 400 MB, send 1 KB: answering must not wait for (or buffer) the rest
    start = time.monotonic()
    answer = raw_exchange(local_server, HEAD + b"Content-Length: 400000000\r\n\r\n" + b"[" * 1024)
    assert answer.startswith("HTTP/1.1 413"), answer
    assert time.monotonic() - start < 5


def metric_value(url: str, line_prefix: str) -> float:
    text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    found = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
             if line.startswith(line_prefix)]  # fmt: skip
    return sum(found)


def test_a_client_giving_up_mid_body_is_a_client_error_not_a_crash(local_server):
    # uvicorn treats the client's half-close as a lost connection: nobody is left to read
    # an answer, so none is sent; the request counts as a 400 and the server serves on.
    url = local_server.url
    errors = 'titanic_requests_total{method="POST",route="/",status="400"}'
    before = metric_value(url, errors)
    request = HEAD + b"Content-Length: 100\r\n\r\n" + b'{"pclass": 1'
    assert raw_exchange(local_server, request, half_close=True) == ""
    deadline = time.monotonic() + 5
    while metric_value(url, errors) < before + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert metric_value(url, errors) == before + 1
    assert metric_value(url, 'titanic_requests_total{method="POST",route="/",status="5') == 0
    assert post(f"{url}/", {"pclass": 1, "sex": "female"})[0] == 200


def worker_rss_kb(server) -> int:
    """Resident memory of the server's worker processes (its process group), in kB."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == server.proc.pid:
            continue
        try:
            if os.getpgid(int(pid)) != server.proc.pid:
                continue
            status = Path(f"/proc/{pid}/status").read_text()
        except (OSError, ProcessLookupError):
            continue
        total += int(next(line.split()[1] for line in status.splitlines()
                          if line.startswith("VmRSS")))  # fmt: skip
    return total


def test_a_streamed_oversize_body_is_refused_while_streaming(local_server):
    # 400 MB offered in chunks with no Content-Length: the 413 must come after about the
    # limit (1 MiB) was read, and the worker must not hold what it refused in memory.
    before = worker_rss_kb(local_server)
    sent = 0
    chunk = b"x" * 65536
    head = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
    with socket.create_connection(("127.0.0.1", local_server.port), timeout=10) as sock:
        sock.sendall(head)
        answer = b""
        sock.setblocking(False)
        while sent < 400_000_000 and b"\r\n\r\n" not in answer:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                time.sleep(0.01)
            with contextlib.suppress(BlockingIOError):
                answer += sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 50_000_000, f"{sent} bytes were taken before the 413"
    growth_mb = (worker_rss_kb(local_server) - before) / 1024
    print(f"413 after {sent / 2**20:.1f} MiB sent; worker RSS grew {growth_mb:.1f} MB")
    assert growth_mb < 16


def test_metrics_sum_over_workers(bucket, server_factory):
    # two workers: whichever answers the scrape, it reports every worker's requests
    server = server_factory({"STORAGE_URI": str(bucket), "WORKERS": "2"})
    label = 'titanic_requests_total{method="POST",route="/",status="200"}'
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda i: post(f"{server.url}/", {"pclass": 1, "sex": "male"}),
                               range(200)))  # fmt: skip
    assert all(status == 200 for status, _ in bodies)
    for _ in range(10):  # scrapes land on either worker
        assert metric_value(server.url, label) == 200
    text = urllib.request.urlopen(f"{server.url}/metrics", timeout=10).read().decode()
    assert 'titanic_model_info{alias="production",model="titanic-logreg",version="1"} 1.0' in text
    assert "titanic_predictions_total" in text
