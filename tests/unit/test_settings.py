import pytest

from titanic_mlops.settings import DEFAULT_FILE, SettingsError, load_settings


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
