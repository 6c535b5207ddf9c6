"""Project tasks: `uv run invoke --list`.

The two commands a new user needs: `uv run invoke quickstart` and `uv run invoke test`.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import time
from pathlib import Path

from invoke import Context, task

ROOT = Path(__file__).resolve().parent
PY = sys.executable
DEFAULT_STORAGE = os.environ.get("STORAGE_URI", str(ROOT / "artifacts"))
MODEL_NAME = os.environ.get("MODEL_NAME", "titanic-logreg")
BIN = Path(sys.executable).parent
EXAMPLE = '{"pclass": 1, "sex": "female", "age": 29, "fare": 80, "embarked": "C"}'

os.environ.setdefault("UV_COMPILE_BYTECODE", "1")


def _overrides(text: str) -> str:
    return " ".join(shlex.quote(o) for o in shlex.split(text))


@task
def preprocess_data(c: Context) -> None:
    """Validate the raw CSV, split it and write data/processed (tensors, raw-unit splits)."""
    c.run(f"{PY} -m titanic_mlops.data", pty=False)


@task(help={"overrides": 'Hydra overrides, e.g. "hyperparameters.lr=0.001 seed=3"'})
def train(c: Context, overrides: str = "") -> None:
    """Train, evaluate, and register a bundle (Hydra entry point)."""
    c.run(f"{PY} -m titanic_mlops.train {_overrides(overrides)}", pty=False)


@task(help={"overrides": "extra Hydra overrides for every trial"})
def sweep(c: Context, overrides: str = "") -> None:
    """Offline Optuna sweep over lr, optimizer, epochs and weight decay; prints the best trial."""
    out = ROOT / "multirun" / time.strftime("%Y-%m-%d_%H-%M-%S")
    c.run(
        f"{PY} -m titanic_mlops.train --multirun +hparams_search=optuna "
        f"hydra.sweep.dir={out} {_overrides(overrides)}",
        pty=False,
    )
    print((out / "optimization_results.yaml").read_text())


@task(help={"ref": "version number, alias or 'latest'", "storage": "registry storage URI"})
def evaluate(c: Context, ref: str = "production", storage: str = DEFAULT_STORAGE) -> None:
    """Score a registered bundle with onnxruntime on the held-out split (as serving would)."""
    from titanic_mlops import data
    from titanic_mlops.evaluation import evaluate_version

    scores = evaluate_version(storage, MODEL_NAME, ref, data.PROCESSED_DIR / "test_raw.csv")
    for key, value in scores.items():
        print(f"{key:>10}: {value:.4f}" if isinstance(value, float) else f"{key:>10}: {value}")


@task(
    help={
        "version": "version to promote",
        "alias": "alias to move (production, staging)",
        "gate": "run the validation gate first; a rejected version is not promoted",
        "notify": "then send the repository_dispatch that model-registry.yaml waits for "
        "(needs GITHUB_TOKEN): it rolls Cloud Run for production",
        "repo": "GitHub OWNER/NAME for --notify (default: $GITHUB_REPOSITORY or origin)",
    }
)
def promote(
    c: Context,
    version: int = 0,
    alias: str = "production",
    storage: str = DEFAULT_STORAGE,
    gate: bool = False,
    notify: bool = False,
    repo: str = "",
) -> None:
    """Point an alias at a registered version (compare-and-swap) whose every sha256 verifies."""
    from titanic_mlops.bundle import BundleIntegrityError
    from titanic_mlops.registry import Registry, RegistryError
    from titanic_mlops.storage import open_storage

    if version < 1:
        raise SystemExit("--version N is required (a registered version number)")
    if notify:
        _dispatch(alias, version, None, repo)  # token and repository checked before any move
    registry = Registry(open_storage(storage), MODEL_NAME)
    try:
        registry.load(version)  # every sha256 of the bundle verifies, or nothing moves
    except (RegistryError, BundleIntegrityError) as exc:
        if os.environ.get("LOG_LEVEL", "").upper() == "DEBUG":
            raise
        raise SystemExit(f"error: not promoting version {version}: {exc}") from None
    if gate and not _gate(storage, version):
        raise SystemExit(1)
    previous = registry.set_alias(alias, version)
    print(f"{MODEL_NAME}:{alias} -> version {version} (was {previous})")
    if notify:
        _send_dispatch(_dispatch(alias, version, previous, repo), alias)


@task
def versions(c: Context, storage: str = DEFAULT_STORAGE) -> None:
    """List registered versions with their metrics and aliases."""
    from titanic_mlops.registry import Registry
    from titanic_mlops.reporting import versions_table
    from titanic_mlops.storage import open_storage

    print(versions_table(Registry(open_storage(storage), MODEL_NAME).list_versions()))


def _serve_env(storage: str) -> dict[str, str]:
    return {"STORAGE_URI": storage, "PYTHONUNBUFFERED": "1"}


def _serve_banner(url: str) -> str:
    return (
        f"\nServing the production model at {url}/  (web page; Ctrl-C stops)\n"
        f"  curl -s -X POST {url}/ -H 'Content-Type: application/json' \\\n"
        f"       -d '{EXAMPLE}'\n"
        f"  curl -s {url}/health    curl -s {url}/metrics    curl -s {url}/openapi.json\n"
    )


def _drift_banner(url: str) -> str:
    return (
        f"\nServing drift checks at {url}/  (Ctrl-C stops)\n"
        f"  curl -s '{url}/?n_latest=500'            JSON summary (add &source=live)\n"
        f"  open '{url}/?n_latest=500&format=html'   the Evidently report\n"
    )


def _serve(c: Context, storage: str, port: int, banner=_serve_banner, drift: bool = False) -> None:
    """Run a service in the foreground; Ctrl-C becomes one graceful SIGTERM to it."""
    from titanic_mlops.api.local_server import API_SOURCE, DRIFT_SOURCE, LocalServer, PortInUse

    target, source = ("drift_check", DRIFT_SOURCE) if drift else ("logreg_classifier", API_SOURCE)
    try:
        server = LocalServer(
            _serve_env(storage), target=target, source=source, port=port, quiet=False
        )
    except PortInUse as exc:
        raise SystemExit(str(exc)) from None
    try:
        code = server.run_foreground(on_ready=lambda: print(banner(server.url), flush=True))
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None
    if code not in (0, -signal.SIGTERM):
        raise SystemExit(f"the server exited with code {code}")


@task(help={"storage": "registry storage URI", "port": "port on 127.0.0.1"})
def serve(c: Context, storage: str = DEFAULT_STORAGE, port: int = 8080) -> None:
    """Serve the production model with functions-framework on 127.0.0.1 (Ctrl-C stops)."""
    _serve(c, storage, port)


@task(help={"storage": "storage URI (registry + prediction log)", "port": "port on 127.0.0.1"})
def drift_serve(c: Context, storage: str = DEFAULT_STORAGE, port: int = 8081) -> None:
    """Serve the drift_check target on 127.0.0.1 (GET /?n_latest=500; Ctrl-C stops)."""
    _serve(c, storage, port, banner=_drift_banner, drift=True)


@task(
    help={
        "n_latest": "newest records to check",
        "storage": "storage URI (registry + prediction log)",
        "html": "also write the Evidently HTML report to this file",
        "source": "only records of this traffic source (e.g. live)",
        "url": "ask a deployed drift service instead (identity token from ADC if not local)",
    }
)
def drift_check(
    c: Context,
    n_latest: int = 500,
    storage: str = DEFAULT_STORAGE,
    html: str = "",
    source: str = "",
    url: str = "",
) -> None:
    """Run a drift check (locally, or on a drift service) and print a table per column."""
    from titanic_mlops.reporting import drift_table

    if url:
        from titanic_mlops.delivery.drift_client import get_check

        summary, page = get_check(url, n_latest, source or None, want_html=bool(html))
    else:
        from titanic_mlops.api.drift_service import DriftChecker, Unavailable
        from titanic_mlops.settings import load_settings
        from titanic_mlops.storage import open_storage

        settings = load_settings(env={**os.environ, "STORAGE_URI": storage})
        try:
            outcome = DriftChecker(settings, open_storage(storage)).check(n_latest, source or None)
        except Unavailable as exc:
            raise SystemExit(str(exc)) from None
        summary, page = outcome.body, outcome.html
    print(drift_table(summary))
    if html and page:
        Path(html).write_text(page, encoding="utf-8")
        print(f"HTML report written to {html}")
    elif html:
        print(f"no HTML report written: the check's status is {summary.get('status')}")


@task(
    help={
        "url": "prediction service URL",
        "n": "number of requests (one passenger each)",
        "shift": "none, age, sex, fare or class",
        "magnitude": "shift size (default: the drift study's strongest of that kind)",
        "seed": "random seed of the draw",
    }
)
def simulate_traffic(
    c: Context,
    url: str = "http://127.0.0.1:8080",
    n: int = 1000,
    shift: str = "none",
    magnitude: float | None = None,
    seed: int = 0,
) -> None:
    """Send realistic requests drawn from the dataset's passengers, shifted if asked."""
    from titanic_mlops import traffic

    try:
        records = traffic.draw(n, shift, magnitude, seed)
        statuses = traffic.send(url, records)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    summary = ", ".join(f"{code or 'no connection'}: {k}" for code, k in sorted(statuses.items()))
    print(f"sent {n} passengers (shift {shift}) to {url}: {summary}")
    if statuses.get(200, 0) != n:
        raise SystemExit(f"{n - statuses.get(200, 0)} of {n} requests were not answered 200")


@task(
    help={
        "url": "service URL (default: http://127.0.0.1:<port>/)",
        "port": "port of a local service (as given to `invoke serve --port`)",
        "json": "request body (default: one example passenger)",
    }
)
def predict(c: Context, url: str = "", port: int = 8080, json: str = EXAMPLE) -> None:
    """POST a prediction request and print the answer."""
    import json as jsonlib
    import urllib.error
    import urllib.request

    url = url or f"http://127.0.0.1:{port}/"
    request = urllib.request.Request(
        url, data=json.encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            print(response.status, jsonlib.dumps(jsonlib.loads(response.read()), indent=2))
    except urllib.error.HTTPError as err:
        print(err.code, err.read().decode())
        raise SystemExit(1) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SystemExit(
            f"error: no service answered at {url} ({reason}): start one with "
            "`uv run invoke serve`, or pass --port/--url"
        ) from None


@task(
    help={
        "host": "service URL (default: start one on embedded defaults for the run)",
        "users": "concurrent simulated users",
        "spawn_rate": "users started per second",
        "run_time": "duration, e.g. 30s or 2m",
        "csv": "CSV output prefix",
    }
)
def load_test(
    c: Context,
    host: str = "",
    users: int = 20,
    spawn_rate: int = 10,
    run_time: str = "10s",
    csv: str = "reports/locust/run",
    storage: str = DEFAULT_STORAGE,
) -> None:
    """Headless locust run (single, batch and health requests) with CSV output.

    Without --host it serves a copy of the registry in a temporary folder: the synthetic
    prediction log stays out of the one drift checks read (its records also say
    source=locust).
    """
    import tempfile

    from titanic_mlops.api.local_server import LocalServer, copy_registry

    Path(csv).parent.mkdir(parents=True, exist_ok=True)
    server = None
    scratch = tempfile.TemporaryDirectory(prefix="titanic-load-test-")
    if not host:
        uri = storage
        if not storage.startswith("gs://"):
            try:
                uri = copy_registry(Path(storage), Path(scratch.name))
            except FileNotFoundError as exc:
                raise SystemExit(str(exc)) from None
        server = LocalServer(_serve_env(uri)).wait()
        host = server.url
    try:
        c.run(
            f"{BIN}/locust -f {ROOT}/tests/performancetests/locustfile.py --headless "
            f"-u {users} -r {spawn_rate} -t {run_time} --host {host} --csv {csv} "
            "--only-summary",
            pty=False,
        )
    finally:
        if server is not None:
            server.stop()
        scratch.cleanup()
    print(f"CSV written to {csv}_stats.csv, {csv}_failures.csv, {csv}_stats_history.csv")


@task(help={"push": "then copy the outputs to the default DVC remote (artifacts/dvc, offline)"})
def repro(c: Context, push: bool = False) -> None:
    """Reproduce the DVC pipeline (`dvc repro`: only stages whose deps changed); `dvc status`."""
    env = {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # the stages' `python`
    with c.cd(str(ROOT)):
        c.run(f"{PY} -m dvc repro", pty=False, env=env)
        if push:
            c.run(f"{PY} -m dvc push", pty=False, env=env)
        c.run(f"{PY} -m dvc status", pty=False, env=env)


@task
def profile(c: Context) -> None:
    """cProfile + torch.profiler over a training run; prints epoch time."""
    c.run(f"{PY} profiling/profile_training.py", pty=False)


@task(help={"quick": "few draws, 2 magnitudes per shift (a smoke run)", "out": "output folder"})
def drift_study(c: Context, quick: bool = False, out: str = "reports/drift") -> None:
    """Drift-check robustness study: false alarms, detection and accuracy under shifts."""
    flags = f"--out {shlex.quote(out)} --started-at {time.time()}" + " --quick" * quick
    c.run(f"{PY} -m titanic_mlops.drift_study {flags}", pty=False)


@task(help={"args": "extra pytest arguments", "cov": "report coverage (default on)"})
def test(c: Context, args: str = "", cov: bool = True) -> None:
    """Run the whole test suite with coverage."""
    cov_args = "--cov --cov-report=term-missing:skip-covered" if cov else ""
    c.run(f"{PY} -m pytest --durations=8 {cov_args} {args}", pty=False)


@task
def lint(c: Context) -> None:
    """ruff check + ruff format --check."""
    c.run(f"{PY} -m ruff check .", pty=False)
    c.run(f"{PY} -m ruff format --check .", pty=False)


@task(
    help={
        "storage": "registry storage URI (folder or gs://bucket/prefix)",
        "overrides": "extra Hydra overrides for training",
        "serve": "serve the production model afterwards (--no-serve returns instead)",
        "port": "port for the service",
    }
)
def quickstart(
    c: Context,
    storage: str = DEFAULT_STORAGE,
    overrides: str = "",
    serve: bool = True,
    port: int = 8080,
) -> None:
    """The main job on embedded defaults: preprocess, train, register, promote, serve.

    The same data, config, seed and code reuse their registered version. `production` moves
    only to a version this run registers and the validation gate accepts (or, with no
    production yet, to the reused one): see src/titanic_mlops/promotion.py.
    """
    import logging

    from titanic_mlops import config_schema, data, promotion
    from titanic_mlops import train as train_mod
    from titanic_mlops.api.local_server import PortInUse, check_port_free
    from titanic_mlops.registry import Registry
    from titanic_mlops.reporting import summary_table
    from titanic_mlops.storage import open_storage
    from titanic_mlops.validation import load_policy

    if serve:  # say so now, not after training
        try:
            check_port_free(port)
        except PortInUse as exc:
            raise SystemExit(str(exc)) from None
    try:  # a bad config stops here, before any work
        cfg = config_schema.compose([f"registry.storage_uri={storage}", *shlex.split(overrides)])
    except config_schema.ConfigError as exc:
        if os.environ.get("LOG_LEVEL", "").upper() == "DEBUG":
            raise
        raise SystemExit(f"invalid config: {exc}") from None
    if not cfg.registry.register:
        raise SystemExit("quickstart registers and promotes: drop registry.register=false")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    start = time.perf_counter()
    data.preprocess(**data.configured_arguments())  # as the DVC preprocess stage does
    result = train_mod.run(cfg)
    registry = Registry(open_storage(train_mod.storage_uri(storage)), cfg.registry.model_name)
    held_out = train_mod.project_path(cfg.data.processed_dir) / data.TEST_RAW
    decision = promotion.promote_checked(
        registry, result.version, result.reused, load_policy([f"held_out={held_out}"])
    )
    elapsed = time.perf_counter() - start
    print()
    print(summary_table(result.version, result.metrics, result.bundle_uri, decision.note))
    for check in decision.report.checks if decision.report else ():
        print(f"  gate {check}")
    print(f"preprocess + train + evaluate + register: {elapsed:.1f} s")
    if decision.current is None:
        raise SystemExit(f"error: no production model to serve: {decision.note}")
    if serve:
        _serve(c, storage, port)


# --- Cloud Monitoring: alert policies and dashboard as code (monitoring/) -------------------


@task(help={"project": "GCP project (default: $GOOGLE_CLOUD_PROJECT)", "dry_run": "print only"})
def alerts_apply(c: Context, project: str = "", dry_run: bool = False) -> None:
    """Apply configs/monitoring/alert_rules.yaml as alert policies, email channel, uptime check."""
    from titanic_mlops.monitoring import alerts_apply

    alerts_apply.main(project, dry_run)


@task(help={"project": "GCP project (default: $GOOGLE_CLOUD_PROJECT)", "dry_run": "print only"})
def dashboard_apply(c: Context, project: str = "", dry_run: bool = False) -> None:
    """Create or update the Cloud Monitoring dashboard from configs/monitoring/dashboard.json."""
    from titanic_mlops.monitoring import dashboard

    dashboard.main(project, dry_run)


# ======================================================================================
# Delivery (issue 9): validation gate, Vertex AI training, Cloud Run deploy, GCP setup.
# The logic lives in src/titanic_mlops/validation.py and src/titanic_mlops/delivery/;
# these tasks only read options, print, and run what they print.
# ======================================================================================


@task(
    help={
        "ref": "version number, alias or 'latest'",
        "storage": "registry storage URI",
        "overrides": 'Hydra overrides of configs/validation.yaml, e.g. "min_accuracy=0.8"',
    }
)
def validate(
    c: Context, ref: str = "staging", storage: str = DEFAULT_STORAGE, overrides: str = ""
) -> None:
    """Model validation gate: hashes, ONNX = torch, floors, vs production, latency."""
    if not _gate(storage, ref, overrides):
        raise SystemExit(1)


def _gate(storage: str, ref: str | int, overrides: str = "") -> bool:
    """Run the validation gate on ``ref``; print every check (reasons on stderr)."""
    from titanic_mlops.registry import Registry
    from titanic_mlops.storage import open_storage
    from titanic_mlops.validation import load_policy
    from titanic_mlops.validation import validate as run_gate

    registry = Registry(open_storage(storage), MODEL_NAME)
    return run_gate(registry, ref, load_policy(shlex.split(overrides))).show()


def _one_line(action) -> object:
    """Run ``action``; a delivery error ends the task with its one-line message (exit 1)."""
    from titanic_mlops.delivery.cloudrun import DeployRefused
    from titanic_mlops.delivery.dispatch import DispatchError
    from titanic_mlops.delivery.render import RenderError
    from titanic_mlops.delivery.shell import CommandFailed

    try:
        return action()
    except (DeployRefused, DispatchError, RenderError, CommandFailed) as exc:
        raise SystemExit(f"error: {exc}") from None


def _target(project: str, region: str, bucket: str):
    """(configured project or "", the deployment target; placeholders if no project)."""
    from titanic_mlops.delivery import gcp

    project_id = gcp.configured_project(project)
    return project_id, gcp.Target.from_defaults(
        project_id or "PROJECT_ID", region=region, bucket=bucket
    )


NOT_RUN = "no project configured (--project or $GOOGLE_CLOUD_PROJECT): printed only, nothing run"
CLOUD_HELP = {
    "project": "Google Cloud project (default: $GOOGLE_CLOUD_PROJECT); without one nothing runs",
    "region": "region (default: cloudbuild.yaml's _REGION)",
    "bucket": "bucket (default: <project>-titanic, cloudbuild.yaml's _BUCKET)",
    "tag": "image tag (default: the commit, <sha12>[-dirty])",
    "dry_run": "print what would run, run nothing",
}


@task(help={**CLOUD_HELP, "storage": "registry to check (default: gs://<bucket>/<prefix>)"})
def deploy(
    c: Context,
    project: str = "",
    region: str = "",
    bucket: str = "",
    tag: str = "",
    storage: str = "",
    dry_run: bool = False,
) -> None:
    """Build, push and deploy both Cloud Run services (cloudbuild.yaml), once production exists."""
    from titanic_mlops.delivery import cloudrun, gcp, shell

    project_id, target = _target(project, region, bucket)
    tag = tag or gcp.image_tag()
    for service in _one_line(lambda: cloudrun.services(target, tag)).values():
        print(service.line())
    command = cloudrun.deploy_command(target, tag)
    registry_uri = storage or target.storage_uri
    if dry_run or not project_id:
        print(f"would check that {registry_uri} has a '{cloudrun.REQUIRED_ALIAS}' alias, then run:")
        shell.show([command])
        print("dry run: nothing run" if project_id else NOT_RUN)
        return
    version = _one_line(lambda: cloudrun.require_production(registry_uri, MODEL_NAME))
    print(f"{MODEL_NAME}:{cloudrun.REQUIRED_ALIAS} -> version {version} in {registry_uri}")
    _one_line(lambda: shell.run_all([command]))


@task(
    help={**CLOUD_HELP, "build": "build and push the training image first (cloudbuild-train.yaml)"}
)
def train_cloud(
    c: Context,
    project: str = "",
    region: str = "",
    bucket: str = "",
    tag: str = "",
    build: bool = False,
    dry_run: bool = False,
) -> None:
    """Train on Vertex AI: submit deploy/vertex/train-job.yaml (trains, gates, moves staging)."""
    from titanic_mlops import vcs
    from titanic_mlops.delivery import gcp, render, shell, vertex

    project_id, target = _target(project, region, bucket)
    tag, commit = tag or gcp.image_tag(), vcs.describe_commit()
    if build:
        command = vertex.build_and_submit_command(target, tag, commit)
    else:
        values = vertex.job_values(target, tag, commit)
        vertex.to_proto(_one_line(lambda: vertex.load_spec(values)))  # a bad spec fails here
        (spec_file,) = render.render_files([vertex.JOB_SPEC], values, ROOT / "rendered")
        print(f"# {spec_file}\n{spec_file.read_text()}")
        command = vertex.submit_command(target, spec_file, tag)
    if dry_run or not project_id:
        shell.show([command])
        print("dry run: nothing run" if project_id else NOT_RUN)
        return
    _one_line(lambda: shell.run_all([command]))


@task(
    help={
        "project": "Google Cloud project to set up; without it the commands are only printed",
        "region": CLOUD_HELP["region"],
        "bucket": CLOUD_HELP["bucket"],
        "github_repo": "OWNER/NAME allowed to deploy via Workload Identity Federation "
        "(default: $GITHUB_REPOSITORY or the origin remote)",
        "project_number": "the project's number (default: asked from gcloud)",
        "dry_run": CLOUD_HELP["dry_run"],
    }
)
def gcp_setup(
    c: Context,
    project: str = "",
    region: str = "",
    bucket: str = "",
    github_repo: str = "",
    project_number: str = "",
    dry_run: bool = False,
) -> None:
    """Bucket, Artifact Registry, one service account per role, least-privilege IAM, GitHub WIF."""
    from titanic_mlops.delivery import gcp, gcp_setup, shell
    from titanic_mlops.delivery.dispatch import default_repo

    target = gcp.Target.from_defaults(project or "PROJECT_ID", region=region, bucket=bucket)
    repo = github_repo or default_repo()
    run = bool(project) and not dry_run
    if run and not repo:
        raise SystemExit("error: --github-repo OWNER/NAME is needed (no origin remote on GitHub)")
    if run and not project_number:
        project_number = _one_line(lambda: gcp.project_number(project))
    number = project_number or "PROJECT_NUMBER"
    commands = gcp_setup.setup_commands(target, repo or "OWNER/REPO", number)
    if run:
        _one_line(lambda: shell.run_all(commands, tolerate_existing=True))
    else:
        shell.show(commands)
        print("dry run: nothing run" if project else "no --project: printed only, nothing run")
    print("\nGitHub repository variables for the workflows:")
    for name, value in gcp_setup.github_variables(target, number).items():
        print(f"  {name}={value}")


def _dispatch(alias: str, version: int, previous: int | None, repo: str):
    """The repository_dispatch request model-registry.yaml waits for (GITHUB_TOKEN)."""
    from titanic_mlops.delivery import dispatch

    body = dispatch.payload(MODEL_NAME, alias, version, previous)
    token = os.environ.get("GITHUB_TOKEN", "")
    return _one_line(lambda: dispatch.build_request(repo or dispatch.default_repo(), token, body))


def _send_dispatch(request, alias: str) -> None:
    from titanic_mlops.delivery import dispatch

    try:
        dispatch.send(request)
    except dispatch.DispatchError as exc:
        raise SystemExit(
            f"error: {alias} moved, but the notification failed ({exc}); start the "
            f"model-registry workflow by hand with alias={alias}"
        ) from None
    print(f"sent {dispatch.EVENT_TYPE} to {request.full_url}: model-registry.yaml validates it")


# ======================================================================================
# Local monitoring stack (issue 8): the prediction and drift services, Prometheus,
# Alertmanager and an SMTP sink, in the background on 127.0.0.1. The logic lives in
# src/titanic_mlops/local_stack.py, the configs in deploy/local/.
# ======================================================================================

STACK_STATE = "folder of the stack's pids, logs, rendered configs and mails (default .stack/)"


def _stack_state(state: str) -> Path:
    from titanic_mlops.local_stack import STATE_DIR

    return Path(state) if state else STATE_DIR


@task(
    help={
        "storage": "storage URI of both services (registry + prediction log)",
        "state": STACK_STATE,
        "fast": "alerts within seconds: every rule's `for:` cut to 10 s, 2 s evaluation, "
        "1 s group wait (what the end-to-end tests use); expressions unchanged",
        "free_ports": "free loopback ports instead of those in deploy/local/stack.yaml",
    }
)
def stack_up(
    c: Context,
    storage: str = DEFAULT_STORAGE,
    state: str = "",
    fast: bool = False,
    free_ports: bool = False,
) -> None:
    """Start the local monitoring stack in the background, wait until healthy, print URLs."""
    from titanic_mlops import local_stack

    folder = _stack_state(state)
    try:
        components = local_stack.up(storage, folder, fast=fast, free_ports=free_ports)
    except local_stack.StackError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(local_stack.banner(components, folder))


@task(help={"state": STACK_STATE})
def stack_status(c: Context, state: str = "") -> None:
    """Show each component of the local stack up or down, with its URL (exit 1 if any is down)."""
    from titanic_mlops import local_stack

    found = local_stack.status(_stack_state(state))
    if not found:
        raise SystemExit(
            f"the local stack is not running (nothing started from {_stack_state(state)})"
        )
    for component, healthy, answer in found:
        print(local_stack.line(component, healthy, answer))
    if not all(healthy for _, healthy, _ in found):
        raise SystemExit(1)


@task(help={"state": STACK_STATE})
def stack_down(c: Context, state: str = "") -> None:
    """Stop every component of the local stack (SIGTERM, then SIGKILL); safe to repeat."""
    from titanic_mlops import local_stack

    stopped = local_stack.down(_stack_state(state))
    print(f"stopped: {', '.join(stopped)}" if stopped else "the local stack was not running")


# --- one-line errors ----------------------------------------------------------------------
# Every task turns the project's own errors (registry, bundle, settings, storage, schema,
# data, a busy port, an unreachable service) into one line on stderr and exit code 1. A
# traceback is for bugs: `LOG_LEVEL=DEBUG uv run invoke ...` (or `invoke --debug`) shows it.


def _debugging() -> bool:
    return (
        os.environ.get("LOG_LEVEL", "").upper() == "DEBUG"
        or bool(os.environ.get("INVOKE_DEBUG"))
        or "--debug" in sys.argv
        or "-d" in sys.argv[1:2]
    )


def _one_line_errors(body):
    import functools

    @functools.wraps(body)
    def run(*args, **kwargs):
        try:
            return body(*args, **kwargs)
        except Exception as exc:
            from titanic_mlops.errors import expected, one_line

            if _debugging() or not expected(exc):
                raise
            raise SystemExit(f"error: {one_line(exc)}") from None

    return run


def _wrap_tasks() -> None:
    from invoke.tasks import Task

    for value in list(globals().values()):
        if isinstance(value, Task) and not getattr(value.body, "__wrapped__", None):
            value.body = _one_line_errors(value.body)


_wrap_tasks()
