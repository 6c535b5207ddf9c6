import json

import numpy as np
import pytest

from tests.conftest import load_torch_model
from titanic_mlops import bundle, data, predictions, schema
from titanic_mlops.predictor import Predictor


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
    assert set(manifest["files"]) == set(bundle.BUNDLE_FILES)
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
    assert fast.backend.startswith("numpy") and reference.backend == "onnxruntime"
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
    files = dict(sealed.files, **{bundle.MODEL_ONNX: buf.getvalue()})
    mlp_bundle = bundle.verify(bundle.make_manifest(files), files, "mlp")
    predictor = Predictor(mlp_bundle)
    assert predictor.backend == "onnxruntime"
    x = np.random.default_rng(1).normal(size=(5, 11)).astype(np.float32)
    expected = mlp(torch.from_numpy(x)).detach().numpy().reshape(-1)
    np.testing.assert_allclose(predictor.predict_encoded(x), expected, atol=1e-6)


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
