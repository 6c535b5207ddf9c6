"""The gcloud commands that prepare a project, least privilege first (`invoke gcp-setup`).

One pure function, :func:`setup_commands`, returns every command; the task prints them and
runs them only with ``--project``. Roles, by account (see :data:`gcp.ACCOUNTS`):

=============  ==================================================================================
titanic-api    objectViewer on ``<prefix>/registry/``; objectCreator on ``<prefix>/predictions/``;
               monitoring.metricWriter
titanic-drift  objectViewer on ``<prefix>/predictions/``, ``<prefix>/registry/`` and
               ``<prefix>/drift/`` (``GET /report`` reads stored reports); objectCreator on
               ``<prefix>/drift/``; monitoring.metricWriter
titanic-train  objectUser on ``<prefix>/registry/`` (alias moves overwrite, which needs delete);
               secretAccessor on the ``wandb-api-key`` secret only
titanic-ci     artifactregistry.writer on the repository only; run.admin (deploys, and sets the
               invoker policy of the drift service); aiplatform.user (submits training jobs);
               logging.logWriter (Cloud Build logs); serviceAccountUser on api/drift/train only;
               objectViewer on ``<prefix>/registry/`` (gate, deploy check) and ``cloudbuild/``
titanic-scheduler  run.invoker on the drift service only (granted by cloudbuild.yaml)
=============  ==================================================================================

Bucket roles carry IAM conditions on the object name (``resource.name``) and, for roles that
list, on the listing prefix (``storage.googleapis.com/objectListPrefix``). Where GCS does not
allow prefix scoping: conditions need uniform bucket-level access (set at creation); an
unconditional bucket-wide listing stays denied, so every reader lists with a prefix; and a
prefix cannot be made append-only for an account that may overwrite (objectUser may delete
registry objects): soft delete (7 days by default) is what protects old versions.
"""

from __future__ import annotations

from titanic_mlops.delivery.gcp import ACCOUNTS, BUILD_SOURCE_PREFIX, Target

POOL = "github"
PROVIDER = "github"
WANDB_SECRET = "wandb-api-key"
SERVICES = (
    "run.googleapis.com", "artifactregistry.googleapis.com", "cloudbuild.googleapis.com",
    "aiplatform.googleapis.com", "iam.googleapis.com", "iamcredentials.googleapis.com",
    "sts.googleapis.com", "secretmanager.googleapis.com", "monitoring.googleapis.com",
    "cloudscheduler.googleapis.com", "storage.googleapis.com",
)  # fmt: skip
VIEWER, CREATOR, USER = (
    "roles/storage.objectViewer",
    "roles/storage.objectCreator",
    "roles/storage.objectUser",
)
LISTING_ROLES = {VIEWER, USER}

# (account, bucket role, folder under the storage prefix)
BUCKET_GRANTS: tuple[tuple[str, str, str], ...] = (
    ("api", VIEWER, "registry/"),
    ("api", CREATOR, "predictions/"),
    ("drift", VIEWER, "predictions/"),
    ("drift", VIEWER, "registry/"),
    ("drift", VIEWER, "drift/"),  # GET /report answers stored reports
    ("drift", CREATOR, "drift/"),
    ("train", USER, "registry/"),
    ("ci", VIEWER, "registry/"),
)
PROJECT_GRANTS: tuple[tuple[str, str], ...] = (
    ("api", "roles/monitoring.metricWriter"),
    ("drift", "roles/monitoring.metricWriter"),
    ("ci", "roles/run.admin"),
    ("ci", "roles/aiplatform.user"),
    ("ci", "roles/logging.logWriter"),
)
# The deployer may act as exactly these runtime accounts (no project-wide actAs).
CI_ACTS_AS = ("api", "drift", "train")
# GitHub Actions may impersonate these accounts, from the main branch of one repository only.
GITHUB_ACCOUNTS = ("ci", "train")


def prefix_condition(bucket: str, object_prefix: str, listing: bool) -> str:
    """A CEL condition limiting a bucket role to objects (and listings) under ``object_prefix``."""
    expr = f'resource.name.startsWith("projects/_/buckets/{bucket}/objects/{object_prefix}")'
    if listing:
        expr += (
            ' || api.getAttribute("storage.googleapis.com/objectListPrefix", "")'
            f'.startsWith("{object_prefix}")'
        )
    return expr


def _bucket_grant(t: Target, account: str, role: str, object_prefix: str) -> list[str]:
    title = f"{role.rsplit('.', 1)[-1]} {object_prefix}"
    expr = prefix_condition(t.bucket, object_prefix, listing=role in LISTING_ROLES)
    return [
        "gcloud", "storage", "buckets", "add-iam-policy-binding", f"gs://{t.bucket}",
        f"--project={t.project}", f"--member=serviceAccount:{t.account(account)}",
        f"--role={role}",
        # "^;^" makes ";" the separator: the expression itself contains commas
        f"--condition=^;^expression={expr};title={title}",
    ]  # fmt: skip


def principal_set(project_number: str) -> str:
    """Runs on the main branch, as an IAM principal set (the provider's attribute condition
    already admits only tokens of the one GitHub repository)."""
    pool = f"projects/{project_number}/locations/global/workloadIdentityPools/{POOL}"
    return f"principalSet://iam.googleapis.com/{pool}/attribute.ref/refs/heads/main"


def provider_name(project_number: str) -> str:
    return (
        f"projects/{project_number}/locations/global/workloadIdentityPools/{POOL}"
        f"/providers/{PROVIDER}"
    )


def setup_commands(t: Target, github_repo: str, project_number: str) -> list[list[str]]:
    """Every command, in order: APIs, bucket, repository, accounts, grants, secret, WIF."""
    p = f"--project={t.project}"
    cmds: list[list[str]] = [["gcloud", "services", "enable", *SERVICES, p]]
    cmds.append([
        "gcloud", "storage", "buckets", "create", f"gs://{t.bucket}", p,
        f"--location={t.region}", "--uniform-bucket-level-access", "--public-access-prevention",
    ])  # fmt: skip
    cmds.append([
        "gcloud", "artifacts", "repositories", "create", t.repo, p, f"--location={t.region}",
        "--repository-format=docker", "--description=titanic-mlops images",
    ])  # fmt: skip
    for account in ACCOUNTS.values():
        cmds.append([
            "gcloud", "iam", "service-accounts", "create", account.name, p,
            f"--display-name={account.name}", f"--description={account.purpose}",
        ])  # fmt: skip
    for account, role, sub in BUCKET_GRANTS:
        cmds.append(_bucket_grant(t, account, role, f"{t.prefix}/{sub}"))
    cmds.append(_bucket_grant(t, "ci", VIEWER, BUILD_SOURCE_PREFIX))  # build sources
    for account, role in PROJECT_GRANTS:
        cmds.append([
            "gcloud", "projects", "add-iam-policy-binding", t.project,
            f"--member=serviceAccount:{t.account(account)}", f"--role={role}", "--condition=None",
        ])  # fmt: skip
    cmds.append([
        "gcloud", "artifacts", "repositories", "add-iam-policy-binding", t.repo, p,
        f"--location={t.region}", f"--member=serviceAccount:{t.account('ci')}",
        "--role=roles/artifactregistry.writer",
    ])  # fmt: skip
    for runtime in CI_ACTS_AS:
        cmds.append(_account_grant(t, runtime, f"serviceAccount:{t.account('ci')}",
                                   "roles/iam.serviceAccountUser"))  # fmt: skip
    cmds.append(["gcloud", "secrets", "create", WANDB_SECRET, p, "--replication-policy=automatic"])
    cmds.append([
        "gcloud", "secrets", "add-iam-policy-binding", WANDB_SECRET, p,
        f"--member=serviceAccount:{t.account('train')}",
        "--role=roles/secretmanager.secretAccessor",
    ])  # fmt: skip
    cmds += _workload_identity(t, github_repo, project_number)
    return cmds


def _account_grant(t: Target, account: str, member: str, role: str) -> list[str]:
    return [
        "gcloud", "iam", "service-accounts", "add-iam-policy-binding", t.account(account),
        f"--project={t.project}", f"--member={member}", f"--role={role}",
    ]  # fmt: skip


def _workload_identity(t: Target, github_repo: str, project_number: str) -> list[list[str]]:
    p = f"--project={t.project}"
    cmds = [
        ["gcloud", "iam", "workload-identity-pools", "create", POOL, p, "--location=global",
         "--display-name=GitHub Actions"],
        ["gcloud", "iam", "workload-identity-pools", "providers", "create-oidc", PROVIDER, p,
         "--location=global", f"--workload-identity-pool={POOL}", "--display-name=GitHub OIDC",
         "--issuer-uri=https://token.actions.githubusercontent.com",
         "--attribute-mapping=google.subject=assertion.sub,"
         "attribute.repository=assertion.repository,attribute.ref=assertion.ref",
         f"--attribute-condition=assertion.repository == '{github_repo}'"],
    ]  # fmt: skip
    member = principal_set(project_number)
    for account in GITHUB_ACCOUNTS:
        cmds.append(_account_grant(t, account, member, "roles/iam.workloadIdentityUser"))
    return cmds


def github_variables(t: Target, project_number: str) -> dict[str, str]:
    """The repository variables the workflows read (Settings → Secrets and variables)."""
    return {
        "GCP_PROJECT": t.project,
        "GCP_REGION": t.region,
        "GCP_ARTIFACT_REPOSITORY": t.repo,
        "STORAGE_URI": t.storage_uri,
        "GCP_WORKLOAD_IDENTITY_PROVIDER": provider_name(project_number),
        "GCP_SERVICE_ACCOUNT": t.account("ci"),
        "GCP_TRAINING_SERVICE_ACCOUNT": t.account("train"),
    }
