import dataclasses
from typing import get_type_hints

import pytest

from titanic_mlops.settings import (
    DEFAULT_FILE,
    AlertingSettings,
    MetricsExportSettings,
    ServeSettings,
    SettingsError,
    UptimeCheckSettings,
    load_settings,
)


def test_defaults_come_from_configs_serving_yaml():
    settings = load_settings(env={})
    assert settings.model_alias == "production"
    assert settings.max_instances == 1000
    assert settings.prediction_log.flush_records == 500
    assert isinstance(settings.prediction_log.flush_seconds, float)


def test_environment_overrides_with_types():
    settings = load_settings(
        env={
            "MODEL_ALIAS": "staging",
            "MAX_INSTANCES": "7",
            "PREDICTION_LOG_ENABLED": "off",
            "PREDICTION_LOG_FLUSH_SECONDS": "2",
        }
    )
    assert settings.model_alias == "staging" and settings.max_instances == 7
    assert settings.prediction_log.enabled is False
    assert settings.prediction_log.flush_seconds == 2.0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MAX_INSTANCES": "many"}, "MAX_INSTANCES='many': expected int"),
        ({"PREDICTION_LOG_ENABLED": "maybe"}, "expected true or false"),
        ({"MAX_INSTANCES": "0"}, "must be positive"),
    ],
)
def test_bad_values_are_rejected_clearly(env, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(env=env)


def test_missing_file_and_missing_key(tmp_path):
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "nope.yaml", env={})
    partial = tmp_path / "partial.yaml"
    partial.write_text(DEFAULT_FILE.read_text().replace("max_instances: 1000", ""))
    with pytest.raises(SettingsError, match="max_instances is missing"):
        load_settings(partial, env={})


def test_serving_config_variable_points_at_another_file(tmp_path):
    other = tmp_path / "serving.yaml"
    other.write_text(
        DEFAULT_FILE.read_text().replace("model_alias: production", "model_alias: canary")
    )
    assert load_settings(env={"SERVING_CONFIG": str(other)}).model_alias == "canary"


# --- sections built from their own types --------------------------------------------------


def _leaves(cls: type, path: tuple[str, ...] = ()):
    """(attribute path, type, field) of every leaf setting, walking nested sections."""
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _leaves(hints[f.name], (*path, f.name))
        else:
            yield (*path, f.name), hints[f.name], f


LEAVES = list(_leaves(ServeSettings))
# Valid replacement values for text settings, the first one passing the field's rule is used.
TEXT_CANDIDATES = ("x-test", "/x-test", "gs://b/x-test", "a@b.example", "auto")


def test_new_sections_have_their_own_types_and_defaults():
    settings = load_settings(env={})
    export = settings.metrics_export
    assert isinstance(export, MetricsExportSettings)
    assert export.enabled is False and export.project_id == "" and export.active is False
    assert (export.period_seconds, export.max_series_per_call) == (60.0, 200)
    assert export.job == "titanic-api"
    alerting = settings.alerting
    assert isinstance(alerting, AlertingSettings)
    assert isinstance(alerting.uptime_check, UptimeCheckSettings)
    assert (alerting.uptime_check.path, alerting.uptime_check.period_seconds) == ("/health", 300)
    assert (alerting.policy_label_key, alerting.policy_label_value) == (
        "managed-by",
        "titanic-mlops",
    )


@pytest.mark.parametrize(
    ("path", "kind", "spec"),
    [pytest.param(*leaf, id="_".join(leaf[0]).upper()) for leaf in LEAVES],
)
def test_every_setting_has_its_environment_variable(path, kind, spec):
    name = "_".join(path).upper()
    if kind is str:
        rule = spec.metadata.get("rule", (bool, ""))[0]
        value = next(c for c in TEXT_CANDIDATES if rule(c))
        settings = load_settings(env={name: value})
        for part in path:
            settings = getattr(settings, part)
        assert settings == value
    else:
        with pytest.raises(SettingsError, match=f"^{name}='not-a-value': expected "):
            load_settings(env={name: "not-a-value"})


def test_nested_overrides_and_fallback_variables():
    settings = load_settings(
        env={
            "METRICS_EXPORT_ENABLED": "true",
            "GOOGLE_CLOUD_PROJECT": "proj-from-gcp",
            "K_SERVICE": "titanic-api-canary",
            "ALERTING_UPTIME_CHECK_PERIOD_SECONDS": "60",
            "ALERTING_UPTIME_CHECK_HOST": "titanic.example.run.app",
            "ALERTING_NOTIFICATION_EMAIL": "oncall@example.com",
        }
    )
    assert settings.metrics_export.active
    assert settings.metrics_export.project_id == "proj-from-gcp"
    assert settings.metrics_export.job == "titanic-api-canary"
    assert settings.alerting.uptime_check.period_seconds == 60
    assert settings.alerting.uptime_check.host == "titanic.example.run.app"
    # the setting's own variable wins over the fallback
    explicit = load_settings(
        env={
            "GOOGLE_CLOUD_PROJECT": "a",
            "METRICS_EXPORT_PROJECT_ID": "b",
            "K_SERVICE": "x",
            "METRICS_EXPORT_JOB": "y",
        }
    )
    assert (explicit.metrics_export.project_id, explicit.metrics_export.job) == ("b", "y")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"METRICS_EXPORT_PERIOD_SECONDS": "abc"},
            "METRICS_EXPORT_PERIOD_SECONDS='abc': expected a number (from environment)",
        ),
        (
            {"METRICS_EXPORT_PERIOD_SECONDS": "1"},
            "METRICS_EXPORT_PERIOD_SECONDS=1.0: must be between 5",
        ),
        ({"METRICS_EXPORT_MAX_SERIES_PER_CALL": "500"}, "must be between 1 and 200"),
        ({"METRICS_EXPORT_JOB": ""}, "METRICS_EXPORT_JOB='': must not be empty"),
        ({"STORAGE_URI": "s3://bucket/x"}, "STORAGE_URI='s3://bucket/x': unsupported storage URI"),
        ({"STORAGE_URI": "gs://"}, "unsupported storage URI"),
        ({"INFERENCE": "tensorrt"}, "INFERENCE='tensorrt': expected one of auto, onnxruntime"),
        ({"ALERTING_UPTIME_CHECK_PERIOD_SECONDS": "120"}, "expected one of 60, 300, 600, 900"),
        ({"ALERTING_UPTIME_CHECK_PATH": "health"}, "must start with /"),
        ({"ALERTING_POLICY_LABEL_KEY": "Managed By"}, "expected a GCP label key"),
        ({"ALERTING_NOTIFICATION_EMAIL": "nobody"}, "expected an email"),
        (
            {"PREDICTION_LOG_FLUSH_RECORDS": "-1"},
            "PREDICTION_LOG_FLUSH_RECORDS=-1: must be positive",
        ),
    ],
)
def test_misconfigured_values_name_the_setting_and_the_rule(env, message):
    with pytest.raises(SettingsError) as info:
        load_settings(env=env)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("max_instances: 1000", "max_instances: many", "MAX_INSTANCES='many': expected integer"),
        ("max_instances: 1000", "max_instances: true", "MAX_INSTANCES=True: expected integer"),
        ("  period_seconds: 60 ", "  period_seconds: abc ", "METRICS_EXPORT_PERIOD_SECONDS='abc'"),
        ("  enabled: false", "  enabled: sometimes", "METRICS_EXPORT_ENABLED='sometimes'"),
        (
            "  period_seconds: 60 ",
            "  peroid_seconds: 60 ",
            "unknown setting metrics_export.peroid_seconds",
        ),
        ("model_name: titanic-logreg", "model_name: x\ncolour: blue", "unknown setting colour"),
        ("alerting:", "alerting: 3\nold_alerting:", "alerting in"),
        ("storage_uri: artifacts", "storage_uri: [a", "is not valid YAML"),
    ],
)
def test_misconfigured_files_name_the_setting_and_the_rule(tmp_path, old, new, message):
    text = DEFAULT_FILE.read_text()
    assert old in text
    bad = tmp_path / "serving.yaml"
    bad.write_text(text.replace(old, new, 1))
    with pytest.raises(SettingsError) as info:
        load_settings(bad, env={})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_yaml_numbers_become_the_declared_type(tmp_path):
    other = tmp_path / "serving.yaml"
    other.write_text(
        DEFAULT_FILE.read_text()
        .replace("model_alias: production", "model_alias: 3")
        .replace("  period_seconds: 60 ", "  period_seconds: 30 ")
    )
    settings = load_settings(other, env={})
    assert settings.model_alias == "3"
    assert settings.metrics_export.period_seconds == 30.0
    assert isinstance(settings.metrics_export.period_seconds, float)
