"""`invoke gcp-setup`: every account, only its roles, prefix-scoped; runs only if asked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import defaultdict

import pytest

from tests.conftest import ROOT
from tests.integration.test_cloud_deployment import gcloud_parse_check
from titanic_mlops.delivery import gcp, gcp_setup

TARGET = gcp.Target.from_defaults("test-project")
REPO = "octo/titanic-mlops"
COMMANDS = gcp_setup.setup_commands(TARGET, REPO, "123456")
FORBIDDEN = {"roles/owner", "roles/editor", "roles/viewer", "roles/storage.admin",
             "roles/storage.objectAdmin", "roles/iam.serviceAccountUser",
             "roles/iam.serviceAccountTokenCreator", "roles/artifactregistry.admin"}  # fmt: skip


def flag(cmd: list[str], name: str) -> str | None:
    return next((a.split("=", 1)[1] for a in cmd if a.startswith(f"--{name}=")), None)


def bindings() -> dict[str, set[tuple[str, str, str]]]:
    """Account → {(resource, role, condition expression or "")} granted by the commands."""
    out: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    for cmd in COMMANDS:
        if "add-iam-policy-binding" not in cmd:
            continue
        member, role = flag(cmd, "member"), flag(cmd, "role")
        verb = cmd.index("add-iam-policy-binding")
        resource = " ".join([*cmd[1:verb], cmd[verb + 1]])  # e.g. "storage buckets gs://b"
        condition = flag(cmd, "condition") or ""
        expr = re.search(r"expression=(.*?);title=", condition)
        out[member].add((resource, role, expr.group(1) if expr else ""))
    return out


def account(role: str) -> str:
    return f"serviceAccount:{TARGET.account(role)}"


def bucket_roles(member: str) -> set[tuple[str, str]]:
    """(role, object prefix) of the member's conditional bucket grants."""
    out = set()
    for resource, role, expr in bindings()[member]:
        if resource.startswith("storage buckets"):
            (prefix,) = re.findall(r'/objects/([^"]*)"', expr)
            out.add((role, prefix))
    return out


def test_one_account_per_role_is_created():
    created = [c[4] for c in COMMANDS if c[1:4] == ["iam", "service-accounts", "create"]]
    assert created == [a.name for a in gcp.ACCOUNTS.values()]
    assert len(set(created)) == len(created)


def test_bucket_repository_and_workload_identity_are_created():
    verbs = [" ".join(c[1:4]) for c in COMMANDS]
    assert "storage buckets create" in verbs and "artifacts repositories create" in verbs
    (bucket,) = [c for c in COMMANDS if c[1:4] == ["storage", "buckets", "create"]]
    assert "--uniform-bucket-level-access" in bucket and "--public-access-prevention" in bucket
    (provider,) = [c for c in COMMANDS if "create-oidc" in c]
    assert flag(provider, "attribute-condition") == f"assertion.repository == '{REPO}'"


def test_runtime_accounts_get_only_their_prefixes():
    p = TARGET.prefix
    viewer, creator, user = gcp_setup.VIEWER, gcp_setup.CREATOR, gcp_setup.USER
    assert bucket_roles(account("api")) == {(viewer, f"{p}/registry/"),
                                            (creator, f"{p}/predictions/")}  # fmt: skip
    assert bucket_roles(account("drift")) == {(viewer, f"{p}/predictions/"),
                                              (viewer, f"{p}/registry/"),
                                              (viewer, f"{p}/drift/"),
                                              (creator, f"{p}/drift/")}  # fmt: skip
    assert bucket_roles(account("train")) == {(user, f"{p}/registry/")}
    assert bucket_roles(account("ci")) == {(viewer, f"{p}/registry/"), (viewer, "cloudbuild/")}


def test_every_bucket_grant_is_conditional_and_listing_is_prefix_scoped():
    for member, grants in bindings().items():
        for resource, role, expr in grants:
            if not resource.startswith("storage buckets"):
                continue
            assert expr.startswith(f'resource.name.startsWith("projects/_/buckets/{TARGET.bucket}')
            if role in gcp_setup.LISTING_ROLES:
                assert "objectListPrefix" in expr, (member, role)


def test_project_level_roles_are_few_and_never_broad():
    project_level = {
        (member, role)
        for member, grants in bindings().items()
        for resource, role, _ in grants
        if resource.startswith("projects")
    }
    assert project_level == {
        (account("api"), "roles/monitoring.metricWriter"),
        (account("drift"), "roles/monitoring.metricWriter"),
        (account("ci"), "roles/run.admin"),
        (account("ci"), "roles/aiplatform.user"),
        (account("ci"), "roles/logging.logWriter"),
    }
    assert not {role for _, role in project_level} & FORBIDDEN
    # the training and scheduler accounts hold no project-wide role at all
    assert not any(m in (account("train"), account("scheduler")) for m, _ in project_level)


def test_impersonation_is_granted_per_account():
    acting = {(r.split()[-1], m) for m, g in bindings().items() for r, role, _ in g
              if role == "roles/iam.serviceAccountUser"}  # fmt: skip
    assert acting == {(TARGET.account(a), account("ci")) for a in ("api", "drift", "train")}
    wif = {r.split()[-1] for m, g in bindings().items() for r, role, _ in g
           if role == "roles/iam.workloadIdentityUser"}  # fmt: skip
    assert wif == {TARGET.account("ci"), TARGET.account("train")}
    members = {m for m, g in bindings().items() for _, role, _ in g
               if role == "roles/iam.workloadIdentityUser"}  # fmt: skip
    assert members == {gcp_setup.principal_set("123456")}
    assert members.pop().endswith("/attribute.ref/refs/heads/main")


def test_the_wandb_secret_is_readable_by_training_only():
    readers = {m for m, g in bindings().items() for r, role, _ in g
               if role == "roles/secretmanager.secretAccessor"}  # fmt: skip
    assert readers == {account("train")}


def invoke(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in gcp.PROJECT_ENV}
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**environment, "GCLOUD": "/nonexistent/gcloud", **env},
    )  # fmt: skip


@pytest.mark.parametrize("args", [["--project", "test-project", "--dry-run"], []])
def test_dry_run_prints_every_account_and_runs_nothing(args):
    proc = invoke("gcp-setup", "--github-repo", REPO, *args)
    # GCLOUD points nowhere: had anything tried to run, the task would have failed
    assert proc.returncode == 0, proc.stderr
    project = "test-project" if args else "PROJECT_ID"
    for acct in gcp.ACCOUNTS.values():
        assert f"service-accounts create {acct.name} --project={project}" in proc.stdout
    assert proc.stdout.count("$ gcloud ") == len(COMMANDS)
    assert ("dry run: nothing run" if args else "no --project: printed only") in proc.stdout
    assert f"GCP_SERVICE_ACCOUNT={gcp.ACCOUNTS['ci'].email(project)}" in proc.stdout


def test_with_a_project_it_runs_and_a_missing_gcloud_is_one_line():
    proc = invoke("gcp-setup", "--project", "test-project", "--github-repo", REPO,
                  "--project-number", "123456")  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "error: /nonexistent/gcloud not found: install the Google Cloud CLI "
        "(https://cloud.google.com/sdk/docs/install) or set GCLOUD"
    )


def test_every_command_parses_with_gcloud(tmp_path):
    shapes = {}
    for cmd in COMMANDS:  # one per subcommand and set of flags: ~2 s each
        verb = tuple(a for a in cmd[1:6] if not a.startswith("-") and "@" not in a)
        shapes.setdefault((verb[:4], tuple(sorted(a.split("=")[0] for a in cmd[2:]
                                                   if a.startswith("--")))), cmd)  # fmt: skip
    for cmd in shapes.values():
        gcloud_parse_check(*cmd[1:], tmp_path=tmp_path)
