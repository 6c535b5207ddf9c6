import hashlib
import statistics

import numpy as np
import pytest
import torch

from titanic_mlops import data, schema

RAW_SHA256 = "4a437fde05fe5264e1701a7387ac6fb75393772ba38bb2c9c566405af5af4bd7"


def test_raw_csv_is_the_pristine_kaggle_file():
    assert hashlib.sha256(data.RAW_CSV.read_bytes()).hexdigest() == RAW_SHA256


def test_processed_shapes_and_no_nan(data_dirs):
    train = data.titanic_dataset("train", data_dirs["processed"])
    test = data.titanic_dataset("test", data_dirs["processed"])
    assert len(train) == 712 and len(test) == 179
    for ds in (train, test):
        x, y = ds.tensors
        assert x.shape[1] == schema.N_ENCODED and x.dtype == torch.float32
        assert not torch.isnan(x).any()
        assert set(y.unique().tolist()) == {0.0, 1.0}


def test_split_is_stratified(data_dirs):
    y_train = data.titanic_dataset("train", data_dirs["processed"]).tensors[1]
    y_test = data.titanic_dataset("test", data_dirs["processed"]).tensors[1]
    assert abs(y_train.mean().item() - y_test.mean().item()) < 0.01


def test_imputation_uses_training_statistics_only(data_dirs):
    prep = data.load_preprocessing(data_dirs["processed"])
    train_records, _ = data.read_records_csv(data_dirs["train_raw"])
    test_records, _ = data.read_records_csv(data_dirs["processed"] / "test_raw.csv")
    ages = lambda rs: [r["age"] for r in rs if r["age"] is not None]  # noqa: E731
    assert prep.impute["age"] == statistics.median(ages(train_records))
    # The full-data median differs, so this would catch a fit on all rows.
    assert prep.impute["age"] != statistics.median(ages(train_records + test_records))
    fares = np.log1p([r["fare"] for r in train_records])
    assert prep.mean["fare"] == pytest.approx(fares.mean())


def test_preprocessing_twice_is_byte_identical(tmp_path, data_dirs):
    data.preprocess(data.RAW_CSV, tmp_path / "p")
    for name in ("train.pt", "test.pt", "preprocessing.json", "test_raw.csv", "train_raw.csv"):
        assert (tmp_path / "p" / name).read_bytes() == (data_dirs["processed"] / name).read_bytes()


def test_a_different_seed_gives_a_different_split(tmp_path, data_dirs):
    data.preprocess(data.RAW_CSV, tmp_path / "p", seed=7)
    assert (tmp_path / "p" / "train_raw.csv").read_bytes() != data_dirs["train_raw"].read_bytes()


def test_train_split_holds_raw_unit_features(data_dirs):
    import pandas as pd

    ref = pd.read_csv(data_dirs["train_raw"])
    assert list(ref.columns) == [*schema.FEATURES, schema.TARGET]
    assert len(ref) == 712
    assert set(ref["sex"]) == {"male", "female"}
    assert ref["age"].isna().sum() > 0  # raw units: missing values stay missing


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.replace("Sex,", "Gender,", 1), "missing column\\(s\\) Sex"),
        (lambda t: t.replace(",male,", ",robot,", 1), "row 2, column Sex: must be one of"),
        (lambda t: t.replace(",22,", ",-5,", 1), "row 2, column Age: must be a number"),
        (lambda t: t.replace("\n1,0,3,", "\n1,7,3,", 1), "row 2: Survived must be 0 or 1"),
        (lambda t: t.splitlines()[0] + "\n", "no rows"),
        (lambda t: "", "not a readable CSV"),
    ],
)
def test_malformed_raw_file_is_rejected(tmp_path, mutate, message):
    bad = tmp_path / "bad.csv"
    bad.write_text(mutate(data.RAW_CSV.read_text()))
    with pytest.raises(data.RawDataError, match=message):
        data.load_raw(bad)


def test_loader_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="split must be"):
        data.titanic_dataset("validation")
    with pytest.raises(FileNotFoundError, match="preprocess-data"):
        data.titanic_dataset("train", tmp_path)
