"""The validation gate on real bundles: good, tampered, below floor, regressed, inconsistent."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, load_torch_model, register_production
from titanic_mlops import bundle
from titanic_mlops.registry import Registry, version_prefix
from titanic_mlops.storage import open_storage
from titanic_mlops.validation import Policy, load_policy, validate

MODEL = "titanic-logreg"


@pytest.fixture(scope="module")
def policy(data_dirs) -> Policy:
    """The configured policy, pointed at the session's held-out rows."""
    return load_policy([f"held_out={data_dirs['processed'] / 'test_raw.csv'}"])


@pytest.fixture
def registry(tmp_path) -> Registry:
    return Registry(open_storage(tmp_path / "bucket"), MODEL)


def variant(files: dict[str, bytes], edit) -> dict[str, bytes]:
    """A consistent bundle (ONNX exported from the same weights) of an edited copy of the model."""
    import torch

    from titanic_mlops.model import model_files

    model = load_torch_model(files)
    with torch.no_grad():
        edit(model.linear)
    kept = {name: data for name, data in files.items() if name != bundle.LINEAR}
    return {**kept, **model_files(model)}  # linear.json only if this graph's form verifies


def failed(report) -> list[str]:
    return [c.name for c in report.checks if not c.passed]


def test_policy_is_the_one_configured_file():
    policy = load_policy()
    assert policy.held_out_path == ROOT / "data" / "processed" / "test_raw.csv"
    assert 0.5 < policy.min_accuracy < 1 and 0.5 < policy.min_roc_auc < 1
    assert policy.onnx_torch_tolerance == 1e-5
    assert load_policy(["min_accuracy=0.9"]).min_accuracy == 0.9


def test_a_good_model_passes(registry, trained, policy):
    version = registry.register(trained.files)
    report = validate(registry, version, policy)
    assert report.accepted, report.reasons
    assert [c.name for c in report.checks] == [
        "integrity",
        "onnx-vs-torch",
        "served-vs-onnx",
        "accuracy floor",
        "roc_auc floor",
        "vs-production",
        "latency",
    ]


def test_a_good_model_passes_against_the_production_it_replaces(registry, trained, policy):
    first = register_production(str(registry.storage.uri), trained.files)
    second = registry.register(trained.files)
    assert validate(registry, second, policy).accepted
    registry.set_alias("production", second)  # the gate also runs after a promotion
    report = validate(registry, "production", policy)
    assert report.accepted, report.reasons
    assert any(f"production v{first}" in c.detail for c in report.checks)


def test_a_tampered_bundle_is_rejected(registry, trained, policy):
    version = registry.register(trained.files)
    key = f"{version_prefix(MODEL, version)}/{bundle.MODEL_ONNX}"
    registry.storage.write(key, trained.files[bundle.MODEL_ONNX] + b"\0")
    report = validate(registry, version, policy)
    assert not report.accepted
    assert failed(report) == ["integrity"]
    (reason,) = report.reasons
    assert "model.onnx has sha256" in reason and "\n" not in reason


def test_a_below_floor_model_is_rejected(registry, trained, policy):
    def reverse(linear):  # ranks passengers backwards: AUC ≈ 1 - 0.84
        linear.weight.neg_()
        linear.bias.neg_()

    version = registry.register(variant(trained.files, reverse))
    report = validate(registry, version, policy)
    assert failed(report) == ["accuracy floor", "roc_auc floor"]
    assert all("< floor" in r for r in report.reasons)


def test_a_regression_against_production_is_rejected(registry, trained, policy):
    register_production(str(registry.storage.uri), trained.files)

    def shift(linear):  # same ranking (same AUC), many more predicted survivors
        linear.bias.add_(1.5)

    candidate = registry.register(variant(trained.files, shift))
    lenient = dataclasses.replace(policy, min_accuracy=0.5, min_roc_auc=0.5)
    report = validate(registry, candidate, lenient)
    assert failed(report) == ["accuracy vs prod"], report.reasons
    (reason,) = report.reasons
    assert "vs production v1" in reason and "allowed 0.0200" in reason


def test_onnx_and_torch_must_agree(registry, trained, policy):
    other = variant(trained.files, lambda linear: linear.bias.add_(0.01))
    files = {**trained.files, bundle.MODEL_STATE: other[bundle.MODEL_STATE]}
    report = validate(registry, registry.register(files), policy)
    assert failed(report) == ["onnx-vs-torch"]
    assert "tolerance 1e-05" in report.reasons[0]


def test_a_graph_onnxruntime_cannot_load_is_a_reason_not_a_crash(registry, trained, policy):
    files = {**trained.files, bundle.MODEL_ONNX: b"not an onnx graph"}  # hashes match
    report = validate(registry, registry.register(files), policy)
    assert failed(report) == ["onnx-vs-torch"]
    (reason,) = report.reasons
    assert "onnxruntime cannot load model.onnx" in reason and "\n" not in reason


def test_the_sealed_linear_form_must_agree_with_the_graph(registry, trained, policy):
    """A linear.json that is not the graph's (hashes valid) is caught before promotion."""
    other = variant(trained.files, lambda linear: linear.bias.add_(0.01))
    files = {**trained.files, bundle.LINEAR: other[bundle.LINEAR]}
    report = validate(registry, registry.register(files), policy)
    assert failed(report) == ["served-vs-onnx"]
    assert "max |p_served - p_onnx|" in report.reasons[0] and "tolerance 1e-06" in report.reasons[0]


def test_latency_over_budget_is_rejected(registry, trained, policy):
    version = registry.register(trained.files)
    report = validate(registry, version, dataclasses.replace(policy, latency_budget_ms=0.0))
    assert failed(report) == ["latency"]


def test_unknown_ref_and_missing_rows_are_one_line_reasons(registry, trained, policy, tmp_path):
    assert validate(registry, "staging", policy).reasons == [
        f"resolve: {MODEL} has no alias 'staging'"
    ]
    registry.register(trained.files)
    missing = dataclasses.replace(policy, held_out=str(tmp_path / "nope.csv"))
    (reason,) = validate(registry, "latest", missing).reasons
    assert "invoke preprocess-data" in reason


def invoke(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ,
    )


@pytest.mark.integration
def test_invoke_validate_exits_non_zero_with_one_line_reasons(tmp_path, trained, data_dirs):
    storage = tmp_path / "bucket"
    good = Registry(open_storage(storage), MODEL).register(trained.files)
    held_out = f"held_out={data_dirs['processed'] / 'test_raw.csv'}"

    ok = invoke("validate", "--ref", str(good), "--storage", str(storage), "--overrides", held_out)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"ACCEPTED {MODEL} {good} (version {good})" in ok.stdout

    strict = invoke("validate", "--ref", str(good), "--storage", str(storage), "--overrides",
                    f"{held_out} min_accuracy=0.99 min_roc_auc=0.99")  # fmt: skip
    assert strict.returncode == 1
    lines = strict.stderr.strip().splitlines()
    assert lines[0] == f"REJECTED {MODEL} {good} (version {good}):"
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "accuracy floor",
        "roc_auc floor",
    ]
    assert "Traceback" not in strict.stderr


@pytest.mark.integration
def test_promote_gate_refuses_a_rejected_version(tmp_path, trained):
    from titanic_mlops import data

    data.preprocess()  # the configured held-out rows (data/processed/test_raw.csv)
    storage = tmp_path / "bucket"
    registry = Registry(open_storage(storage), MODEL)
    good = registry.register(trained.files)
    bad = registry.register(variant(trained.files, lambda linear: linear.weight.neg_()))
    refused = invoke("promote", "--version", str(bad), "--storage", str(storage), "--gate")
    assert refused.returncode == 1 and "REJECTED" in refused.stderr
    assert registry.aliases() == {}
    ok = invoke("promote", "--version", str(good), "--storage", str(storage), "--gate")
    assert ok.returncode == 0, ok.stderr
    assert registry.aliases() == {"production": good}
