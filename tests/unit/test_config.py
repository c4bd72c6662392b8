import pytest

from pipeline import resources
from pipeline.config import ConfigError, EnvVar, Settings
from pipeline.providers.gopro.config import GoProEnv, GoProSettings


def test_defaults_follow_the_environment_names() -> None:
    settings = Settings.from_env({EnvVar.ENVIRONMENT: "staging"})
    names = resources.names_for("staging")
    assert settings.table_name == names.table
    assert settings.credentials_secret_id == names.credentials_secret
    assert GoProSettings.of(settings).api_url == "https://api.gopro.com"


def test_values_are_read_and_typed() -> None:
    settings = Settings.from_env(
        {
            GoProEnv.API_URL: "http://127.0.0.1:9999/",
            EnvVar.RETRY_MAX_ATTEMPTS: "7",
            EnvVar.HTTP_READ_TIMEOUT: "2.5",
            EnvVar.INCLUDE_PHOTOS: "yes",
            EnvVar.ALLOWED_DOWNLOAD_HOSTS: "A.example.com, b.example.com,,",
        }
    )
    assert GoProSettings.of(settings).api_url == "http://127.0.0.1:9999"
    assert settings.retry_max_attempts == 7
    assert settings.http_read_timeout == 2.5
    assert settings.include_photos is True
    assert settings.allowed_download_hosts == ("a.example.com", "b.example.com")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (EnvVar.ENVIRONMENT, "production"),
        (EnvVar.RETRY_MAX_ATTEMPTS, "many"),
        (EnvVar.RETRY_MAX_ATTEMPTS, "0"),
        (EnvVar.INCLUDE_PHOTOS, "perhaps"),
        (EnvVar.LIST_PAGE_SIZE, "500"),
        (EnvVar.PART_SIZE, "1024"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_a_bad_provider_value_names_the_variable_when_the_provider_reads_it() -> None:
    settings = Settings.from_env({GoProEnv.API_URL: "ftp://example.com"})
    with pytest.raises(ConfigError, match=GoProEnv.API_URL):
        GoProSettings.of(settings)


def test_credentials_never_appear_in_repr() -> None:
    settings = Settings.from_env({GoProEnv.REFRESH_TOKEN: "rt-very-secret", GoProEnv.CLIENT_SECRET: "cs-x"})
    gopro = GoProSettings.of(settings)
    assert gopro.credentials_override.present
    for shown in (repr(settings), repr(gopro)):
        assert "rt-very-secret" not in shown
        assert "cs-x" not in shown


def test_with_env_sets_and_removes_variables_without_touching_the_process() -> None:
    settings = Settings.from_env({GoProEnv.ACCESS_TOKEN: "at"}).with_env(
        {GoProEnv.API_URL: "http://127.0.0.1:1", GoProEnv.ACCESS_TOKEN: None}
    )
    gopro = GoProSettings.of(settings)
    assert gopro.api_url == "http://127.0.0.1:1"
    assert not gopro.credentials_override.present


def test_with_overrides_validates_and_refuses_unknown_fields() -> None:
    settings = Settings()
    assert settings.with_overrides(list_page_size=10).list_page_size == 10
    with pytest.raises(ConfigError):
        settings.with_overrides(list_page_size=0)
    with pytest.raises(ConfigError, match="unknown"):
        settings.with_overrides(nonsense=1)


def test_resource_names_are_per_environment() -> None:
    tables = {resources.names_for(env).table for env in resources.ENVIRONMENTS}
    assert len(tables) == len(resources.ENVIRONMENTS)
    with pytest.raises(ValueError, match="unknown environment"):
        resources.names_for("qa")
    assert resources.QUEUE_VISIBILITY_TIMEOUT_SECONDS >= 6 * resources.DOWNLOADER_TIMEOUT_SECONDS


def test_listing_mode_settings() -> None:
    defaults = Settings.from_env({})
    assert (defaults.full_reconcile_days, defaults.report_quiet_nights) == (7, False)
    settings = Settings.from_env({EnvVar.FULL_RECONCILE_DAYS: "0", EnvVar.REPORT_QUIET_NIGHTS: "true"})
    assert (settings.full_reconcile_days, settings.report_quiet_nights) == (0, True)
    for bad in ("-1", "400", "weekly"):
        with pytest.raises(ConfigError, match=EnvVar.FULL_RECONCILE_DAYS):
            Settings.from_env({EnvVar.FULL_RECONCILE_DAYS: bad})
