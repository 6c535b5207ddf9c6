"""Metric-name mapping to Cloud Monitoring's PromQL: metric names only, from metrics.py."""

import pytest

from titanic_mlops.monitoring import metrics, promql

NAMES = promql.query_names(metrics.REGISTRY)


def test_the_documented_mapping():
    assert promql.promql_name("custom.googleapis.com/titanic_requests_total") == (
        "custom_googleapis_com:titanic_requests_total"
    )
    assert promql.promql_name("example.com/a.b/c") == "example_com:a_b_c"


def test_every_metric_of_metrics_py_is_queryable_under_its_exposed_names():
    assert NAMES["titanic_requests_total"] == "custom_googleapis_com:titanic_requests_total"
    for suffix in ("_bucket", "_count", "_sum"):
        name = "titanic_request_duration_seconds" + suffix
        assert NAMES[name] == "custom_googleapis_com:" + name
    assert (
        NAMES["titanic_drift_dataset_drift"] == "custom_googleapis_com:titanic_drift_dataset_drift"
    )
    assert "titanic_requests" not in NAMES and "titanic_requests_created" not in NAMES


C = "custom_googleapis_com:"


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (
            'sum by (route, le) (rate(titanic_request_duration_seconds_bucket{r!="/"}[5m]))',
            f'sum by (route, le) (rate({C}titanic_request_duration_seconds_bucket{{r!="/"}}[5m]))',
        ),
        (
            "sum(rate(titanic_requests_total[1h30m] offset 5m)) by (status) > 1e-3",
            f"sum(rate({C}titanic_requests_total[1h30m] offset 5m)) by (status) > 1e-3",
        ),
        (  # label values, strings and label lists that look like metric names stay
            "titanic_drift_share * on (titanic_drift_share) group_left (titanic_model_info) "
            'titanic_model_info{v="titanic_drift_share"}',
            f"{C}titanic_drift_share * on (titanic_drift_share) group_left (titanic_model_info) "
            f'{C}titanic_model_info{{v="titanic_drift_share"}}',
        ),
        (
            '(sum(rate(titanic_requests_total{route="/"}[15m])) or vector(0)) == 0',
            f'(sum(rate({C}titanic_requests_total{{route="/"}}[15m])) or vector(0)) == 0',
        ),
        (
            'label_replace(titanic_predictions_total, "x", "$1", "y", "(.*)") # titanic_x',
            f'label_replace({C}titanic_predictions_total, "x", "$1", "y", "(.*)") # titanic_x',
        ),
    ],
)
def test_rewrite_touches_metric_names_only(expr, expected):
    assert promql.rewrite(expr, NAMES) == expected


@pytest.mark.parametrize("expr", ["up == 0", "rate(titanic_requests[5m])", "titanic_nope > 1"])
def test_metrics_that_are_not_exported_are_refused(expr):
    with pytest.raises(promql.UnknownMetric, match="is not exported"):
        promql.rewrite(expr, NAMES)
