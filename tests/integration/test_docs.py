"""The documentation site builds strictly, offline, and says what the code says."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from titanic_mlops.api import openapi
from titanic_mlops.settings import DEFAULT_FILE, load_settings

DOCS = ROOT / "docs"
ALERTS = [
    "Error rate above 5 %",
    "p95 latency above 1 s",
    "No traffic (possible downtime)",
    "Prediction-log drops",
    "Prediction-log write errors",
    "Model load failures",
    "Dataset drift detected",
]
# Tasks the guide names that other branches add (the monitoring branch: alert policies and
# dashboard): expected failures until they exist, checked for real afterwards.
PENDING_TASKS = {"alerts-apply", "dashboard-apply"}


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=config.parent, capture_output=True, text=True, timeout=180,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = mkdocs_build(ROOT / "mkdocs.yml", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_the_api_reference_is_the_openapi_document(site):
    document = openapi.build(load_settings(DEFAULT_FILE, env={}).max_instances)
    assert json.loads((site / "openapi.json").read_text()) == document
    page = (site / "api" / "index.html").read_text()
    for path, operations in document["paths"].items():
        for method in operations:
            assert f"<code>{method.upper()} {path}</code>" in page, (method, path)
    for name in document["components"]["schemas"]:
        assert f'id="{name.lower()}"' in page


def test_the_architecture_has_a_mermaid_data_flow(site):
    page = (site / "architecture" / "index.html").read_text()
    assert '<pre class="mermaid">' in page and "flowchart LR" in page


def test_configuration_includes_the_real_files(site):
    page = (site / "configuration" / "index.html").read_text()
    for key in ("flush_records", "min_roc_auc", "_TAG", "registry"):
        assert key in page


def test_the_runbook_covers_every_alert_with_meaning_confirmation_and_action():
    text = (DOCS / "runbook.md").read_text()
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    titles = [s.splitlines()[0] for s in sections]
    assert titles == ALERTS
    for section in sections:
        for part in ("**Means**", "**Confirm**", "**Do**"):
            assert part in section, (section.splitlines()[0], part)


def invoke_tasks() -> set[str]:
    proc = subprocess.run([sys.executable, "-m", "invoke", "--complete"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    return set(proc.stdout.split())


@pytest.mark.parametrize(
    "task",
    sorted({t for page in DOCS.glob("*.md")
            for t in re.findall(r"(?:`|uv run )invoke ([a-z][a-z-]+)", page.read_text())}),
)  # fmt: skip
def test_every_task_the_docs_name_exists(task):
    if task in PENDING_TASKS and task not in invoke_tasks():
        pytest.xfail(f"invoke {task} arrives with the monitoring branch")
    assert task in invoke_tasks()


def test_the_guide_walks_through_every_step():
    guide = (DOCS / "gcp.md").read_text()
    steps = ["gcp-setup", "train-cloud", "promote", "deploy", "alerts-apply", "dashboard-apply"]
    steps = [f"uv run invoke {step} " for step in steps]
    positions = [guide.index(s) for s in steps]
    assert positions == sorted(positions)


def test_a_broken_link_fails_the_strict_build(tmp_path):
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    for name in ("configs", "cloudbuild.yaml"):  # the snippets the configuration page includes
        target = tmp_path / name
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, target)
    page = tmp_path / "docs" / "index.md"
    page.write_text(page.read_text() + "\n[gone](no-such-page.md)\n")
    proc = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert proc.returncode != 0 and "no-such-page.md" in proc.stderr


def test_the_readme_screenshot_stays_where_the_readme_links_it():
    assert (DOCS / "web-page.png").is_file()
    assert "docs/web-page.png" in (ROOT / "README.md").read_text()
