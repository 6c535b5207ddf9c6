import json

import numpy as np
import pytest

from tests.conftest import load_torch_model
from titanic_mlops import bundle, data, predictions, schema
from titanic_mlops.predictor import (
    LINEAR_BACKEND,
    N_PROBES,
    ONNX_BACKEND,
    OnnxGraph,
    Predictor,
    extract_linear_form,
    linear_certificate,
)
from titanic_mlops.registry import Registry
from titanic_mlops.storage import open_storage


@pytest.fixture(scope="module")
def sealed(trained):
    manifest = bundle.make_manifest(trained.files, version=1)
    return bundle.verify(manifest, trained.files, "test")


def test_onnx_matches_torch_over_the_whole_test_split(trained, sealed, data_dirs):
    x, _ = data.titanic_dataset("test", data_dirs["processed"]).tensors
    p_torch = load_torch_model(trained.files).predict_proba(x).numpy()
    p_onnx = Predictor(sealed).predict_encoded(x.numpy())
    assert p_onnx.shape == p_torch.shape == (179,)
    assert np.max(np.abs(p_onnx - p_torch)) <= 1e-5


def test_onnx_has_a_dynamic_batch_axis(sealed):
    predictor = Predictor(sealed)
    for n in (1, 3, 500):
        assert predictor.predict_encoded(np.zeros((n, 11), np.float32)).shape == (n,)


def test_predictor_encodes_raw_records(sealed, data_dirs):
    records, _ = data.read_records_csv(data_dirs["processed"] / "test_raw.csv")
    predictor = Predictor(sealed)
    x, _ = data.titanic_dataset("test", data_dirs["processed"]).tensors
    np.testing.assert_allclose(
        predictor.predict_proba(records), predictor.predict_encoded(x.numpy())
    )
    assert predictor.predict_proba([]).shape == (0,)


def test_manifest_lists_every_file_hash(trained):
    manifest = bundle.make_manifest(trained.files, version=3)
    # the required files, and linear.json: training seals it for a logistic regression
    assert set(manifest["files"]) == {*bundle.BUNDLE_FILES, bundle.LINEAR}
    assert manifest["files"][bundle.MODEL_ONNX] == bundle.sha256(trained.files[bundle.MODEL_ONNX])
    assert manifest["version"] == 3


def test_tampered_file_is_rejected(trained):
    manifest = bundle.make_manifest(trained.files)
    files = dict(trained.files, **{bundle.METRICS: b'{"test": "looks better now"}'})
    with pytest.raises(bundle.BundleIntegrityError, match="metrics.json has sha256 .* refusing"):
        bundle.verify(manifest, files, "v1")


def test_missing_file_is_rejected(trained):
    manifest = bundle.make_manifest(trained.files)
    files = {k: v for k, v in trained.files.items() if k != bundle.MODEL_ONNX}
    with pytest.raises(bundle.BundleIntegrityError, match="model.onnx is missing"):
        bundle.verify(manifest, files, "v1")
    with pytest.raises(bundle.BundleIntegrityError, match="lacks model.onnx"):
        bundle.make_manifest(files)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "no 'files' table"),
        (json.dumps({"files": {"model.onnx": "x"}}).encode(), "does not list model.pt"),
    ],
)
def test_bad_manifest_is_rejected(payload, message):
    with pytest.raises(bundle.BundleIntegrityError, match=message):
        bundle.parse_manifest(payload, "v1")


def test_bundle_exposes_its_parts(sealed, trained):
    assert sealed.version == 1
    assert sealed.metrics == trained.metrics
    assert sealed.preprocessing.schema_version == "1"


def test_fast_path_is_used_for_the_logistic_regression_and_agrees(sealed, data_dirs):
    x, _ = data.titanic_dataset("test", data_dirs["processed"]).tensors
    fast = Predictor(sealed)
    reference = Predictor(sealed, backend="onnxruntime")
    assert fast.backend == LINEAR_BACKEND and reference.backend == ONNX_BACKEND
    p_fast, p_ort = fast.predict_encoded(x.numpy()), reference.predict_encoded(x.numpy())
    assert p_fast.dtype == p_ort.dtype == np.float32
    assert np.max(np.abs(p_fast - p_ort)) <= 1e-6


@pytest.mark.filterwarnings(
    "ignore::DeprecationWarning"
)  # the TorchScript exporter, as in model.py
def test_a_non_linear_graph_runs_in_onnxruntime(sealed, tmp_path):
    import io

    import torch

    torch.manual_seed(0)
    mlp = torch.nn.Sequential(
        torch.nn.Linear(11, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1), torch.nn.Sigmoid()
    )
    buf = io.BytesIO()
    torch.onnx.export(
        mlp,
        (torch.zeros(2, 11),),
        buf,
        dynamo=False,
        input_names=["features"],
        dynamic_axes={"features": {0: "batch"}},
    )
    assert linear_certificate(buf.getvalue()) is None  # training seals no linear form
    files = dict(sealed.files, **{bundle.MODEL_ONNX: buf.getvalue()})
    del files[bundle.LINEAR]
    mlp_bundle = bundle.verify(bundle.make_manifest(files), files, "mlp")
    predictor = Predictor(mlp_bundle)
    assert predictor.backend == "onnxruntime"
    x = np.random.default_rng(1).normal(size=(5, 11)).astype(np.float32)
    expected = mlp(torch.from_numpy(x)).detach().numpy().reshape(-1)
    np.testing.assert_allclose(predictor.predict_encoded(x), expected, atol=1e-6)


def test_training_seals_the_linear_form_it_read_out_of_the_graph(sealed):
    form = json.loads(sealed.files[bundle.LINEAR])
    assert form["verified_against"].startswith("onnxruntime ")
    assert form["probes"] == N_PROBES and 0 <= form["max_abs_error"] <= form["tolerance"]
    weights, bias = sealed.linear
    read, read_bias, _ = extract_linear_form(OnnxGraph(sealed.onnx).run)
    assert len(weights) == schema.N_ENCODED
    np.testing.assert_allclose(weights, read, atol=1e-9)
    assert bias == pytest.approx(read_bias, abs=1e-9)


def test_a_bundle_without_a_linear_form_is_checked_when_its_predictor_is_built(sealed):
    """Bundles registered before linear.json: the form is read from the graph at start."""
    files = {n: b for n, b in sealed.files.items() if n != bundle.LINEAR}
    old = Predictor(bundle.verify(bundle.make_manifest(files), files, "old"))
    assert old.backend == LINEAR_BACKEND
    x = np.random.default_rng(2).normal(size=(40, schema.N_ENCODED)).astype(np.float32)
    np.testing.assert_allclose(
        old.predict_encoded(x), Predictor(sealed).predict_encoded(x), atol=1e-6
    )


def test_a_linear_form_of_the_wrong_width_is_refused(sealed):
    form = json.loads(sealed.files[bundle.LINEAR])
    files = dict(sealed.files, **{bundle.LINEAR: bundle.dumps({**form, "weights": [0.5] * 3})})
    with pytest.raises(bundle.BundleIntegrityError, match="3 weights"):
        Predictor(bundle.verify(bundle.make_manifest(files), files, "bad"))


def test_a_one_row_prediction_imports_neither_numpy_nor_onnxruntime(sealed, tmp_path):
    """What keeps both imports out of the service's cold start."""
    import subprocess
    import sys

    registry = Registry(open_storage(tmp_path / "bucket"), "titanic-logreg")
    version = registry.register(sealed.files)
    code = f"""
import sys
from titanic_mlops.api import service  # everything the service imports
from titanic_mlops.predictor import Predictor
from titanic_mlops.registry import Registry
from titanic_mlops.storage import open_storage
registry = Registry(open_storage({str(tmp_path / "bucket")!r}), "titanic-logreg")
p = Predictor(registry.load({version}))
(probability,) = p.probabilities([{{"pclass": 3, "sex": "male", "age": 22}}])
assert 0 < probability < 1
print(sorted({{"numpy", "onnxruntime"}} & set(sys.modules)))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_the_bundle_seals_its_drift_reference(trained, sealed, data_dirs):
    import io

    import pandas as pd

    ref = pd.read_csv(io.BytesIO(sealed.reference))
    assert list(ref.columns) == [*schema.FEATURES, schema.TARGET, predictions.PROBABILITY]
    train = pd.read_csv(data_dirs["train_raw"])
    assert len(ref) == len(train) == 712
    pd.testing.assert_frame_equal(ref[list(train.columns)], train)  # raw units, NaNs kept
    # the probabilities are the model's own, as served (ONNX) for the same raw rows
    records, _ = data.read_records_csv(data_dirs["train_raw"])
    served = Predictor(sealed, backend="onnxruntime").predict_proba(records)
    assert np.max(np.abs(ref[predictions.PROBABILITY].to_numpy() - served)) <= 1e-5
    assert sealed.manifest["format"] == bundle.MANIFEST_FORMAT == 2
    assert sealed.manifest["files"][bundle.REFERENCE] == bundle.sha256(sealed.reference)


def test_an_old_format_bundle_still_serves_but_has_no_drift_reference(trained):
    old_files = {k: v for k, v in trained.files.items() if k != bundle.REFERENCE}
    manifest = {**bundle.make_manifest(trained.files, version=4), "format": 1}
    manifest["files"] = {k: v for k, v in manifest["files"].items() if k != bundle.REFERENCE}
    parsed = bundle.parse_manifest(json.dumps(manifest).encode(), "v4")
    old = bundle.verify(parsed, old_files, "v4")
    assert Predictor(old).predict_proba([{"pclass": 1, "sex": "female"}]).shape == (1,)
    with pytest.raises(bundle.NoDriftReference, match="version 4 .* retrain"):
        _ = old.reference


def test_a_current_format_manifest_must_list_the_reference(trained):
    manifest = bundle.make_manifest(trained.files, version=2)
    del manifest["files"][bundle.REFERENCE]
    with pytest.raises(bundle.BundleIntegrityError, match="does not list reference.csv"):
        bundle.parse_manifest(json.dumps(manifest).encode(), "v2")
    with pytest.raises(bundle.BundleIntegrityError, match="format 9"):
        bundle.parse_manifest(json.dumps({**manifest, "format": 9}).encode(), "v2")
