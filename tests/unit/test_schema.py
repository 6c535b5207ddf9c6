import math

import numpy as np
import pytest

from titanic_mlops import encoding, schema

VALID = {
    "pclass": 3,
    "sex": "male",
    "age": 22.0,
    "sibsp": 1,
    "parch": 0,
    "fare": 7.25,
    "embarked": "S",
}


def test_encoded_columns_follow_the_schema():
    cols = schema.encoded_columns()
    assert len(cols) == schema.N_ENCODED == 11
    assert cols[:4] == ["pclass_1", "pclass_2", "pclass_3", "sex_male"]


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("pclass", 4, "must be one of 1, 2, 3"),
        ("pclass", "3", "must be one of 1, 2, 3"),
        ("pclass", True, "must be one of 1, 2, 3"),
        ("sex", "m", "must be one of 'male', 'female'"),
        ("age", -1, "must be a number between 0 and 120"),
        ("age", 121, "must be a number between 0 and 120"),
        ("age", "ten", "must be a number between 0 and 120"),
        ("age", math.inf, "must be a number between 0 and 120"),
        ("fare", -0.01, "must be a number between 0 and 10000"),
        ("sibsp", 1.5, "must be an integer between 0 and 20"),
        ("parch", 99, "must be an integer between 0 and 20"),
        ("embarked", "X", "must be one of 'S', 'C', 'Q'"),
        ("embarked", {}, "must be one of 'S', 'C', 'Q'"),  # unhashable values
        ("sex", ["male"], "must be one of 'male', 'female'"),
        ("sibsp", True, "must be an integer between 0 and 20"),
        ("fare", [1.0], "must be a number between 0 and 10000"),
    ],
)
def test_invalid_values_name_field_and_rule(field, value, rule):
    with pytest.raises(schema.SchemaError) as err:
        schema.check_record({**VALID, field: value}, index=2)
    assert err.value.field == field
    assert err.value.rule == rule
    assert str(err.value) == f"instances[2].{field}: {rule}"


def test_required_fields_and_unknown_fields():
    with pytest.raises(schema.SchemaError, match="sex: is required"):
        schema.check_record({"pclass": 1})
    with pytest.raises(schema.SchemaError, match="cabin: is not a model input"):
        schema.check_record({**VALID, "cabin": "C85"})


def test_optional_fields_may_be_missing_and_values_are_normalised():
    record = schema.check_record({"pclass": 2.0, "sex": "female", "sibsp": 2.0, "age": None})
    assert record == {
        "pclass": 2,
        "sex": "female",
        "age": None,
        "sibsp": 2,
        "parch": None,
        "fare": None,
        "embarked": None,
    }


def test_fit_learns_from_the_given_records_only():
    records = [dict(VALID, age=a, embarked=e) for a, e in ((10, "C"), (20, "C"), (None, "S"))]
    prep = encoding.fit(records)
    assert prep.impute["age"] == 15.0
    assert prep.impute["embarked"] == "C"
    assert prep.mean["age"] == pytest.approx(np.mean([10, 20, 15]))


def test_fit_rejects_no_records():
    with pytest.raises(ValueError, match="zero records"):
        encoding.fit([])


def test_encode_imputes_missing_values_like_training():
    prep = encoding.fit([VALID, dict(VALID, age=40, fare=20, embarked="Q")])
    full = encoding.encode(
        [dict(VALID, age=prep.impute["age"], embarked=prep.impute["embarked"])], prep
    )
    missing = encoding.encode([dict(VALID, age=None, embarked=None)], prep)
    np.testing.assert_array_equal(full, missing)
    assert missing.dtype == np.float32 and missing.shape == (1, schema.N_ENCODED)


def test_constant_column_does_not_divide_by_zero():
    prep = encoding.fit([VALID, VALID])
    assert prep.std["age"] == 1.0
    assert np.isfinite(encoding.encode([VALID], prep)).all()


def test_preprocessing_json_round_trip_and_version_check():
    prep = encoding.fit([VALID, dict(VALID, age=30)])
    text = prep.to_json()
    assert encoding.Preprocessing.from_json(text) == prep
    with pytest.raises(schema.SchemaError, match="schema '0'"):
        encoding.Preprocessing.from_json(
            text.replace('"schema_version": "1"', '"schema_version": "0"')
        )
    with pytest.raises(schema.SchemaError, match="encoded_columns"):
        encoding.Preprocessing.from_json(text.replace('"sex_male"', '"sex_female"'))
