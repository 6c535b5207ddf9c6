"""Serving benchmark: the real service against no-op functions under the same load.

    uv run python benchmarks/serve_bench.py [--storage artifacts] [--duration 10]

In one run it measures, on loopback:
  * throughput and latency (wrk, or a Python keep-alive client if wrk is missing) of
    POST / with one row, logging and metrics on, in alternating rounds, for
      - ``asgi-noop``: a no-op function in functions-framework's ASGI mode (the floor of
        the stack the service runs on),
      - ``default-noop``: the same no-op on functions-framework's default stack (Flask on
        gunicorn threads),
      - ``service``: the prediction service (ASGI mode, as deployed),
      - ``service-default-stack``: the same service core on the default stack (how the
        service ran before the ASGI mode),
      - ``service-export-on``: the service pushing its metrics every 5 s to Cloud
        Monitoring (the real client over gRPC to an in-process stand-in, tests/fakes);
    req/s, p50, p99 and the service's ratio to each of the others;
  * cold start: process start to first successful prediction, vs `python -c "import torch"`;
  * zero loss: N predictions from C concurrent clients, then SIGTERM; the prediction log
    must hold exactly N records with N distinct request ids.
Results are printed and written to reports/bench/serve_bench.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from titanic_mlops.api.local_server import API_SOURCE, LocalServer, copy_registry

ROOT = Path(__file__).resolve().parents[1]
NOOP_SOURCE = ROOT / "benchmarks" / "noop_function.py"
DEFAULT_STACK_SOURCE = ROOT / "benchmarks" / "default_stack_service.py"
HEADERS = {"Content-Type": "application/json", "X-Traffic-Source": "benchmark"}
ONE_ROW = {
    "pclass": 3,
    "sex": "male",
    "age": 22,
    "sibsp": 1,
    "parch": 0,
    "fare": 7.25,
    "embarked": "S",
}


class Server(LocalServer):
    """The shared loopback server, plus a one-row POST and a readiness probe that predicts."""

    def __init__(self, target: str, source: Path, env: dict[str, str], asgi: bool = True) -> None:
        super().__init__(env, target=target, source=source, asgi=asgi)

    def post(self, body: dict, timeout: float = 10) -> tuple[int, dict]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("POST", "/", json.dumps(body), HEADERS)
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            conn.close()

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds from process start to the first successful POST."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.post(ONE_ROW, timeout=2)[0] == 200:
                    return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.005)
        raise RuntimeError(f"server on port {self.port} not ready after {timeout} s")


def run_threads(target: Callable[[], None], n: int) -> None:
    """Run ``n`` threads of ``target`` to completion."""
    threads = [threading.Thread(target=target) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# --- load generation -------------------------------------------------------------------
def wrk(url: str, body: dict, duration: int, connections: int, threads: int) -> dict:
    """Run wrk with a POST body; return req/s, p50 and p99 in ms."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            'wrk.headers["X-Traffic-Source"] = "benchmark"\n'
            f"wrk.body = {json.dumps(json.dumps(body))}\n"
        )
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            script.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "tool": "wrk",
    }


def python_load(server: Server, body: dict, duration: float, clients: int) -> dict:
    """Fallback load generator: keep-alive http.client connections in threads."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    payload = json.dumps(body)
    stop_at = time.monotonic() + duration

    def client() -> None:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        mine = []
        while time.monotonic() < stop_at:
            t0 = time.perf_counter()
            conn.request("POST", "/", payload, HEADERS)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - t0)
            if response.status != 200:
                failures[0] += 1
        with lock:
            latencies.extend(mine)

    run_threads(client, clients)
    q = statistics.quantiles(latencies, n=100)
    return {
        "rps": len(latencies) / duration,
        "p50_ms": q[49] * 1e3,
        "p99_ms": q[98] * 1e3,
        "non_2xx": failures[0],
        "tool": "python",
    }


# --- zero-loss check ---------------------------------------------------------------------
def fire(server: Server, n: int, clients: int) -> list[str]:
    """Send ``n`` single-row predictions from ``clients`` keep-alive connections."""
    ids: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(n))
    payload = json.dumps(ONE_ROW)

    def client() -> None:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
        mine = []
        for _ in iter(lambda: next(counter, None), None):
            conn.request("POST", "/", payload, HEADERS)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                errors.append(f"{response.status}: {body[:200]!r}")
                continue
            mine.append(json.loads(body)["request_id"])
        with lock:
            ids.extend(mine)

    run_threads(client, clients)
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, e.g. {errors[0]}")
    return ids


def zero_loss_check(
    storage_uri: str, n: int = 5000, clients: int = 32, extra_env: dict[str, str] | None = None
) -> dict:
    """N predictions, graceful SIGTERM, then compare the prediction log with what was sent."""
    from titanic_mlops.predictions import read_latest
    from titanic_mlops.storage import open_storage

    env = {
        "STORAGE_URI": storage_uri,
        "PREDICTION_LOG_FLUSH_SECONDS": "1",
        "PREDICTION_LOG_FLUSH_RECORDS": "500",
        **(extra_env or {}),
    }
    server = Server("logreg_classifier", API_SOURCE, env)
    server.wait_ready()
    start = time.perf_counter()
    sent = fire(server, n, clients)
    elapsed = time.perf_counter() - start
    code = server.stop()
    # the readiness probe's prediction is logged too
    logged = read_latest(open_storage(storage_uri), 10 * n + 10).records
    logged_ids = [r["request_id"] for r in logged]
    missing = set(sent) - set(logged_ids)
    return {
        "sent": len(sent),
        "logged": len(logged_ids),
        "distinct_logged": len(set(logged_ids)),
        "missing": len(missing),
        "duplicates": len(logged_ids) - len(set(logged_ids)),
        "extra": len(set(logged_ids) - set(sent)),
        "exit_code": code,
        "req_per_s": n / elapsed,
        "objects": len(open_storage(storage_uri).list("predictions/")),
    }


# --- cold start --------------------------------------------------------------------------
def median_time(fn: Callable[[], float], runs: int) -> tuple[float, list[float]]:
    values = [fn() for _ in range(runs)]
    return statistics.median(values), values


def torch_import_time() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - t0


def cold_start(storage_uri: str) -> float:
    server = Server(
        "logreg_classifier",
        API_SOURCE,
        {"STORAGE_URI": storage_uri, "PREDICTION_LOG_ENABLED": "false"},
    )
    try:
        return server.wait_ready()
    finally:
        server.stop()


def measure(
    target: str, source: Path, env: dict[str, str], asgi: bool, args: argparse.Namespace
) -> dict:
    """Start one server, warm it, drive it for ``args.duration`` seconds, stop it."""
    server = Server(target, source, env, asgi)
    server.wait_ready()
    try:
        if shutil.which("wrk"):
            url = f"http://127.0.0.1:{server.port}/"
            wrk(url, ONE_ROW, 2, args.connections, 2)  # warm-up, discarded
            return wrk(url, ONE_ROW, args.duration, args.connections, 2)
        return python_load(server, ONE_ROW, args.duration, args.connections)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--storage", type=Path, default=ROOT / "artifacts")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per server")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", default="1", help="WORKERS for both servers")
    parser.add_argument("--threads", default="8", help="THREADS for both servers")
    parser.add_argument(
        "--inference",
        default="auto",
        choices=["auto", "onnxruntime"],
        help="the service's INFERENCE setting",
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per server")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated contestants to run (default: all), e.g. service,service-export-on",
    )
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--zero-loss-n", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "serve_bench.json")
    args = parser.parse_args()
    same = {"WORKERS": args.workers, "THREADS": args.threads}
    results: dict = {
        "settings": {
            **same,
            "connections": args.connections,
            "duration_s": args.duration,
            "cpus": os.cpu_count(),
        }
    }

    sys.path.insert(0, str(ROOT))
    from tests.fakes.gcp_monitoring import FakeMonitoring

    monitoring = FakeMonitoring().start()
    with tempfile.TemporaryDirectory() as tmp:
        uri = copy_registry(args.storage, Path(tmp) / "throughput")
        service_env = {**same, "STORAGE_URI": uri, "INFERENCE": args.inference}
        export_env = {
            **service_env,
            "METRICS_EXPORT_ENABLED": "true",
            "METRICS_EXPORT_PROJECT_ID": "bench",
            "METRICS_EXPORT_PERIOD_SECONDS": "5",
            "MONITORING_EMULATOR_HOST": monitoring.address,
        }
        contestants = {  # name: (target, source, env, ASGI mode)
            "asgi-noop": ("noop_async", NOOP_SOURCE, same, True),
            "default-noop": ("noop", NOOP_SOURCE, same, False),
            "service": ("logreg_classifier", API_SOURCE, service_env, True),
            "service-default-stack": (
                "logreg_classifier_default_stack",
                DEFAULT_STACK_SOURCE,
                service_env,
                False,
            ),
            "service-export-on": ("logreg_classifier", API_SOURCE, export_env, True),
        }
        if args.only:
            contestants = {k: v for k, v in contestants.items() if k in args.only.split(",")}
        # Alternate the servers for several rounds: the median ratio is robust to the
        # other load on a shared 2-core machine.
        runs: dict[str, list[dict]] = {name: [] for name in contestants}
        for _ in range(args.rounds):
            for name, (target, source, env, asgi) in contestants.items():
                runs[name].append(measure(target, source, env, asgi, args))
        for name, values in runs.items():
            results[name] = {
                key: statistics.median(v[key] for v in values)
                for key in ("rps", "p50_ms", "p99_ms")
            } | {
                # every failed request of every round counts, not a typical round's
                "non_2xx": sum(v["non_2xx"] for v in values),
                "tool": values[0]["tool"],
                "rounds": values,
            }
        results["ratios"] = {}
        pairs = [("service", f) for f in ("asgi-noop", "default-noop", "service-default-stack")]
        for top, floor in [*pairs, ("service-export-on", "service")]:
            if top not in runs or floor not in runs:
                continue
            rounds = [s["rps"] / f["rps"] for s, f in zip(runs[top], runs[floor], strict=True)]
            results["ratios"][f"{top}/{floor}"] = {
                "median": statistics.median(rounds),
                "rounds": rounds,
            }
        results["export_calls"] = len(monitoring.time_series_calls)

        cold_uri = copy_registry(args.storage, Path(tmp) / "cold")
        results["cold_start_s"], results["cold_start_runs_s"] = median_time(
            lambda: cold_start(cold_uri), args.cold_runs
        )
        results["import_torch_s"], results["import_torch_runs_s"] = median_time(
            torch_import_time, args.cold_runs
        )
        results["zero_loss"] = zero_loss_check(
            copy_registry(args.storage, Path(tmp) / "zero"), args.zero_loss_n, 32, same
        )

    monitoring.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"load: {results['settings']}  ({results['service']['tool']})")
    print(
        f"medians of {args.rounds} alternating rounds of {args.duration} s each "
        "(non-2xx: summed over all rounds)"
    )
    print(f"{'':22} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for name in runs:
        r = results[name]
        print(f"{name:22} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['non_2xx']:8d}")
    for name, ratio in results["ratios"].items():
        rounds = ", ".join(f"{r:.2f}" for r in ratio["rounds"])
        print(f"{name:32} {ratio['median']:.2f}x (median; rounds {rounds})")
    print(f"CreateTimeSeries calls received from the export-on service: {results['export_calls']}")
    print(
        f"cold start to first prediction: median {results['cold_start_s']:.2f} s "
        f"vs `import torch` {results['import_torch_s']:.2f} s "
        f"({results['cold_start_s'] / results['import_torch_s']:.2f}x)"
    )
    z = results["zero_loss"]
    print(
        f"zero loss: sent {z['sent']}, logged {z['logged']} ({z['distinct_logged']} distinct), "
        f"missing {z['missing']}, duplicates {z['duplicates']}, {z['objects']} objects, "
        f"exit code {z['exit_code']}"
    )
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
