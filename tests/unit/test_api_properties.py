"""Property test: no body a client can send makes the service answer 5xx."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from titanic_mlops import schema

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
arbitrary_json = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=8) | st.dictionaries(st.text(max_size=10), children, max_size=8)
    ),
    max_leaves=30,
)


def near_valid_value(spec: schema.FieldSpec):
    valid = (
        st.sampled_from(spec.allowed)
        if spec.allowed
        else st.floats(spec.minimum, spec.maximum, allow_nan=False)
    )
    return valid | json_scalars


near_valid_instance = st.fixed_dictionaries(
    {},
    optional={spec.name: near_valid_value(spec) for spec in schema.FIELDS}
    | {"cabin": json_scalars},
)
positional = st.lists(
    json_scalars | st.sampled_from([1, 2, 3, "male", "S"]), min_size=5, max_size=9
)
bodies = (
    arbitrary_json
    | near_valid_instance
    | positional
    | st.fixed_dictionaries({"instances": st.lists(near_valid_instance | positional, max_size=6)})
    | st.fixed_dictionaries({"instances": arbitrary_json})
)


@pytest.fixture
def client(make_client):
    return make_client(PREDICTION_LOG_ENABLED="false")[0]


def check(response):
    assert response.status_code < 500, response.text
    body = response.json()
    if response.status_code == 200:
        assert len(body["predictions"]) >= 1
        for p in body["predictions"]:
            assert 0 <= p["probability"] <= 1 and p["survived"] in (0, 1)
    else:
        assert response.status_code in (400, 413)
        assert isinstance(body["error"]["field"], str) and body["error"]["rule"]


@settings(
    max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
def test_json_bodies_never_cause_a_5xx(client, body):
    check(client.post("/", content=json.dumps(body), headers={"Content-Type": "application/json"}))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=200))
def test_raw_bytes_never_cause_a_5xx(client, raw):
    check(client.post("/", content=raw, headers={"Content-Type": "application/octet-stream"}))
