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
