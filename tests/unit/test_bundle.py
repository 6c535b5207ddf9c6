import json

import numpy as np
import pytest

from tests.conftest import load_torch_model
from titanic_mlops import bundle, data
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
