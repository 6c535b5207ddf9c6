"""Cloud Build files, Cloud Run service files and the Vertex AI job spec, checked offline.

With the real types where they exist: gcloud's own parsers (Build, Service) and
google-cloud-aiplatform's ``CustomJobSpec``; structure against the Dockerfiles, the serving
settings and the service accounts of ``invoke gcp-setup``.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from google.protobuf.json_format import ParseError

from tests.conftest import ROOT
from titanic_mlops.delivery import cloudrun, gcp, render, vertex

CLOUDBUILD_FILES = [gcp.CLOUDBUILD, gcp.CLOUDBUILD_TRAIN]
# Built-in substitutions Cloud Build fills in every build, manual `gcloud builds submit` too.
# (COMMIT_SHA, SHORT_SHA, BRANCH_NAME, ... exist only in triggered builds: empty otherwise.)
MANUAL_BUILTINS = {"PROJECT_ID", "BUILD_ID", "PROJECT_NUMBER", "LOCATION",
                   "SERVICE_ACCOUNT_EMAIL", "SERVICE_ACCOUNT"}  # fmt: skip
REFERENCE = re.compile(r"\$(?:\{(\w+)[^}]*\}|(\w+))")
TARGET = gcp.Target.from_defaults("test-project")
TAG = "abc123def456"
# The functions-framework target each service's image must start.
TARGETS = {"api": "logreg_classifier", "drift": "drift_check"}
# Files and settings that other branches add; until they land, their checks are expected
# failures (reported as XFAIL with the reason), and they run for real once the files exist.
PENDING_FILES = {"dockerfiles/drift.dockerfile": "the drift branch adds the drift image"}
PENDING_ENV = {
    "METRICS_PUBLIC": "the serving settings gain metrics_public (404 on /metrics when false)",
    "METRICS_EXPORT_ENABLED": "the monitoring branch adds metrics_export.enabled",
    "METRICS_EXPORT_PROJECT_ID": "the monitoring branch adds metrics_export.project_id",
}
GCLOUD_AUTH_ERROR = "You do not currently have an active account selected"


def strings(node) -> list[str]:
    """Every string value in a parsed YAML document."""
    if isinstance(node, dict):
        return [s for v in node.values() for s in strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return [node] if isinstance(node, str) else []


def references(text: str) -> set[str]:
    """``$NAME`` / ``${NAME...}`` substitutions in ``text`` (``$$`` is an escaped dollar)."""
    return {a or b for a, b in REFERENCE.findall(text.replace("$$", ""))}


def build_images(path: Path) -> dict[str, str]:
    """Image reference → Dockerfile, from the `docker build -f ... -t ...` steps (unrendered)."""
    out = {}
    for step in yaml.safe_load(path.read_text())["steps"]:
        args = step.get("args", [])
        if args[:1] == ["build"]:
            out[args[args.index("-t") + 1]] = args[args.index("-f") + 1]
    return out


def cloudbuild_render_step(path: Path) -> tuple[list[str], dict[str, str]]:
    """(template files, NAME=value assignments) of the build's render step."""
    (step,) = [s for s in yaml.safe_load(path.read_text())["steps"] if s["id"] == "render"]
    assert step["args"][0] == "src/titanic_mlops/delivery/render.py"
    items = step["args"][3:]
    files = [i for i in items if "=" not in i]
    return files, render.parse_assignments([i for i in items if "=" in i])


def cloudbuild_substitute(text: str, path: Path) -> str:
    """``text`` with the build's defaults and built-ins filled in (as Cloud Build would)."""
    values = {k: render.render(v, {"PROJECT_ID": TARGET.project})
              for k, v in gcp.cloudbuild_defaults(path).items()}  # fmt: skip
    values.update(PROJECT_ID=TARGET.project, _TAG=TAG)
    return render.render(text, values)


def dockerfile(relative: str) -> str:
    path = ROOT / relative
    if not path.is_file() and relative in PENDING_FILES:
        pytest.xfail(f"{relative} missing: {PENDING_FILES[relative]}")
    assert path.is_file(), f"{relative} does not exist"
    return path.read_text()


def gcloud_parse_check(*args: str, tmp_path: Path) -> None:
    """Run gcloud with an empty configuration: it must get past parsing to the login check."""
    binary = shutil.which("gcloud")
    if not binary:
        pytest.skip("gcloud (Google Cloud CLI) not installed: its parsers cannot be used here")
    env = {
        "PATH": str(Path(binary).parent) + ":/usr/bin:/bin",
        "HOME": str(tmp_path),
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),  # no account: stops right after parsing
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
    }
    proc = subprocess.run([binary, *args], capture_output=True, text=True, env=env, timeout=120)
    assert GCLOUD_AUTH_ERROR in proc.stderr, f"{shlex.join(args[:4])}:\n{proc.stderr}"


# --- Cloud Build ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", CLOUDBUILD_FILES, ids=lambda p: p.name)
def test_every_substitution_exists_in_a_manual_build(path):
    spec = yaml.safe_load(path.read_text())
    declared = gcp.cloudbuild_defaults(path)
    used = set().union(*(references(s) for s in strings({k: v for k, v in spec.items()
                                                         if k != "substitutions"})))  # fmt: skip
    for name in sorted(used):
        if name.startswith("_"):
            assert declared.get(name), f"{path.name}: {name} has no non-empty default"
        else:
            assert name in MANUAL_BUILTINS, f"{path.name}: ${{{name}}} is empty in manual builds"
    assert set(declared) <= used, f"declared but unused: {set(declared) - used}"
    for name, default in declared.items():  # defaults may only lean on built-ins
        assert references(default) <= MANUAL_BUILTINS, f"{name}: {default}"
        if references(default):
            assert spec["options"]["dynamicSubstitutions"] is True


def test_both_builds_share_their_defaults():
    deploy, train = (gcp.cloudbuild_defaults(p) for p in CLOUDBUILD_FILES)
    for name in ("_REGION", "_REPO", "_BUCKET", "_PREFIX", "_TAG"):
        assert deploy[name] == train[name], name


def test_the_old_empty_tag_would_have_been_caught():
    assert references("…/api:${SHORT_SHA}") == {"SHORT_SHA"} and "SHORT_SHA" not in MANUAL_BUILTINS


@pytest.mark.parametrize("path", CLOUDBUILD_FILES, ids=lambda p: p.name)
def test_cloudbuild_files_parse_with_gcloud(path, tmp_path):
    (tmp_path / "src").mkdir()
    gcloud_parse_check("builds", "submit", str(tmp_path / "src"), "--project=p",
                       f"--config={path}", tmp_path=tmp_path)  # fmt: skip


@pytest.mark.parametrize("path", CLOUDBUILD_FILES, ids=lambda p: p.name)
def test_images_are_built_from_existing_dockerfiles_and_pushed(path):
    spec = yaml.safe_load(path.read_text())
    built = build_images(path)
    assert set(built) == set(spec["images"])
    for dockerfile_path in built.values():
        dockerfile(dockerfile_path)
    pushed = {s["args"][1] for s in spec["steps"] if s.get("args", [])[:1] == ["push"]}
    assert pushed == set(built)


@pytest.mark.parametrize("path", CLOUDBUILD_FILES, ids=lambda p: p.name)
def test_render_step_fills_exactly_the_placeholders_the_python_side_fills(path):
    files, assignments = cloudbuild_render_step(path)
    wanted = set().union(*(render.placeholders((ROOT / f).read_text()) for f in files))
    assert set(assignments) == wanted
    python_side = (  # _GIT_COMMIT defaults to "unknown" in the training build
        vertex.job_values(TARGET, TAG, "unknown") if path == gcp.CLOUDBUILD_TRAIN
        else TARGET.placeholders(TAG)
    )  # fmt: skip
    assert set(python_side) == wanted
    # same values on both sides: what invoke prints is what Cloud Build deploys
    assert {k: cloudbuild_substitute(v, path) for k, v in assignments.items()} == python_side


def test_the_training_build_submits_the_job_after_the_push():
    steps = [s["id"] for s in yaml.safe_load(gcp.CLOUDBUILD_TRAIN.read_text())["steps"]]
    assert steps.index("push") < steps.index("submit")
    submit = yaml.safe_load(gcp.CLOUDBUILD_TRAIN.read_text())["steps"][steps.index("submit")]
    assert submit["args"][:3] == ["ai", "custom-jobs", "create"]
    assert "--config=rendered/train-job.yaml" in submit["args"]


def test_the_deploy_build_applies_both_services_after_their_pushes():
    steps = {s["id"]: s for s in yaml.safe_load(gcp.CLOUDBUILD.read_text())["steps"]}
    for name, path in cloudrun.SERVICE_FILES.items():
        step = steps[f"deploy-{name}"]
        assert step["args"][:4] == ["run", "services", "replace", f"rendered/{path.name}"]
        assert f"push-{name}" in step["waitFor"] and "render" in step["waitFor"]


# --- Cloud Run services ---------------------------------------------------------------------


def serving_env_names() -> set[str]:
    """Environment names the serving settings read: configs/serving.yaml keys, upper-cased."""

    def walk(node: dict, prefix: str) -> set[str]:
        out = set()
        for key, value in node.items():
            name = f"{prefix}{key}".upper()
            out |= walk(value, f"{name}_") if isinstance(value, dict) else {name}
        return out

    return walk(yaml.safe_load((ROOT / "configs" / "serving.yaml").read_text()), "")


@pytest.fixture(scope="module")
def services() -> dict[str, dict]:
    values = TARGET.placeholders(TAG)
    return {k: cloudrun.load_service(p, values) for k, p in cloudrun.SERVICE_FILES.items()}


@pytest.mark.parametrize("name", list(cloudrun.SERVICE_FILES))
def test_service_runs_the_image_the_build_makes_from_the_right_dockerfile(name, services):
    doc = services[name]
    assert doc["apiVersion"] == "serving.knative.dev/v1" and doc["kind"] == "Service"
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    built = {cloudbuild_substitute(ref, gcp.CLOUDBUILD): f
             for ref, f in build_images(gcp.CLOUDBUILD).items()}  # fmt: skip
    assert container["image"] in built, container["image"]
    text = dockerfile(built[container["image"]])
    exposed = {int(p) for p in re.findall(r"^EXPOSE (\d+)", text, re.M)}
    (port,) = [p["containerPort"] for p in container["ports"]]
    assert exposed == {port}
    cmd = re.findall(r"^CMD (.+)$", text, re.M)[-1]
    assert f'"--target", "{TARGETS[name]}"' in cmd
    probe = container["startupProbe"]["httpGet"]
    assert probe == {"path": "/health", "port": port}


@pytest.mark.parametrize("name", list(cloudrun.SERVICE_FILES))
def test_service_settings(name, services):
    s = cloudrun.ServiceSummary.of(services[name])
    notes = services[name]["spec"]["template"]["metadata"]["annotations"]
    assert notes["run.googleapis.com/startup-cpu-boost"] == "true"
    assert notes["run.googleapis.com/cpu-throttling"] in ("true", "false")  # chosen, not default
    assert s.account == TARGET.account(name)  # its own least-privilege account
    assert s.min_instances == 0 and s.cpu == "1"
    if name == "api":
        assert (s.public, s.concurrency, s.max_instances, s.memory) == (True, 80, 4, "512Mi")
        assert s.env["METRICS_PUBLIC"] == "false"  # /metrics is not exposed publicly
        assert not s.cpu_always  # metrics are exported from request activity (documented)
    else:
        assert not s.public and 1 <= s.concurrency <= 4 and s.memory == "2Gi"
    assert s.env["STORAGE_URI"] == TARGET.storage_uri


@pytest.mark.parametrize(
    ("name", "env"),
    [(n, e) for n, p in cloudrun.SERVICE_FILES.items()
     for e in cloudrun.ServiceSummary.of(cloudrun.load_service(p, TARGET.placeholders(TAG))).env],
)  # fmt: skip
def test_service_env_names_are_known_to_the_settings(name, env):
    if env not in serving_env_names() and env in PENDING_ENV:
        pytest.xfail(f"{env}: {PENDING_ENV[env]}")
    assert env in serving_env_names(), f"{name}: {env} is read by nothing"


def test_only_the_scheduler_may_invoke_the_private_drift_service():
    steps = yaml.safe_load(gcp.CLOUDBUILD.read_text())["steps"]
    grants = [s["args"] for s in steps if "add-iam-policy-binding" in s.get("args", [])]
    assert len(grants) == 1
    args = grants[0]
    assert args[3] == "titanic-drift" and "--role=roles/run.invoker" in args
    member = "--member=serviceAccount:" + gcp.ACCOUNTS["scheduler"].email("${PROJECT_ID}")
    assert member in args
    assert "allUsers" not in gcp.CLOUDBUILD.read_text()


@pytest.mark.parametrize("name", list(cloudrun.SERVICE_FILES))
def test_service_files_parse_with_gcloud(name, tmp_path):
    (path,) = render.render_files(
        [cloudrun.SERVICE_FILES[name]], TARGET.placeholders(TAG), tmp_path / "out"
    )
    gcloud_parse_check("run", "services", "replace", str(path), "--region=europe-west1",
                       "--project=p", tmp_path=tmp_path)  # fmt: skip


def test_a_bad_service_file_fails_the_gcloud_check(tmp_path):
    doc = cloudrun.load_service(cloudrun.SERVICE_FILES["api"], TARGET.placeholders(TAG))
    doc["spec"]["template"]["spec"]["containerConcurency"] = 80  # misspelt
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(AssertionError, match="Failed to parse"):
        gcloud_parse_check("run", "services", "replace", str(bad), "--region=europe-west1",
                           "--project=p", tmp_path=tmp_path)  # fmt: skip


# --- Vertex AI ------------------------------------------------------------------------------


def test_job_spec_parses_into_the_custom_job_spec_proto():
    spec = vertex.to_proto(vertex.load_spec(vertex.job_values(TARGET, TAG, "c0ffee")))
    (pool,) = spec.worker_pool_specs
    assert pool.machine_spec.machine_type and pool.replica_count == 1
    container = pool.container_spec
    built = {
        cloudbuild_substitute(r, gcp.CLOUDBUILD_TRAIN) for r in build_images(gcp.CLOUDBUILD_TRAIN)
    }
    assert container.image_uri == TARGET.image("train", TAG) and container.image_uri in built
    assert list(container.command) == ["python", "-m", "titanic_mlops.delivery.train_job"]
    assert list(container.args)[:2] == ["--alias", "staging"]
    env = {e.name: e.value for e in container.env}
    assert env["STORAGE_URI"] == TARGET.storage_uri and env["GIT_COMMIT"] == "c0ffee"
    assert "WANDB_API_KEY" not in env  # a secret never sits in the spec
    assert spec.service_account == TARGET.account("train")
    assert spec.scheduling.timeout.total_seconds() > 0


def test_a_misplaced_field_fails_the_proto_check():
    spec = vertex.load_spec(vertex.job_values(TARGET, TAG, "c0ffee"))
    spec["workerPoolSpecs"][0]["containerSpec"]["serviceAccount"] = "x"  # belongs one level up
    with pytest.raises(ParseError):
        vertex.to_proto(spec)


def test_a_placeholder_without_a_value_is_a_one_line_error(tmp_path):
    with pytest.raises(render.RenderError, match="no value for GIT_COMMIT"):
        vertex.load_spec(TARGET.placeholders(TAG))
    proc = subprocess.run(  # -S: no site-packages, as in Cloud Build's plain python image
        [sys.executable, "-S", str(ROOT / "src/titanic_mlops/delivery/render.py"), "--out",
         str(tmp_path), str(vertex.JOB_SPEC), "PROJECT_ID=p"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "no value for" in proc.stderr
