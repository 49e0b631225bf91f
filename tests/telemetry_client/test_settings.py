"""Client settings: an argument wins over its environment variable, which wins over the default;
a setting the client cannot run with is refused when the client is created, by name."""

import socket

import pytest
from telemetry_client.config import VARIABLES, ClientSettings

from telemetry_client import ConfigurationError, TelemetryClient
from tests.helpers import REPO


@pytest.fixture(autouse=True)
def no_client_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, _ in VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)


def test_defaults_then_environment_then_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = ClientSettings.resolve(token="t")
    assert (defaults.endpoint, defaults.batch_size, defaults.flush_interval, defaults.max_queue,
            defaults.timeout, defaults.exit_flush_timeout) == (
        "http://127.0.0.1:8080", 500, 1.0, 10_000, 10.0, 5.0)  # fmt: skip
    assert defaults.role_instance == socket.gethostname()
    assert defaults.events_url == "http://127.0.0.1:8080/v1/events"

    environment = {
        "TELEMETRY_CLIENT_ENDPOINT": "http://receiver:9000/v1/events",
        "TELEMETRY_CLIENT_TOKEN": "from-env",
        "TELEMETRY_CLIENT_ENVIRONMENT": "prod-eu",
        "TELEMETRY_CLIENT_ROLE": "quote-svc",
        "TELEMETRY_CLIENT_ROLE_INSTANCE": "vm-3",
        "TELEMETRY_CLIENT_BATCH_SIZE": "50",
        "TELEMETRY_CLIENT_FLUSH_INTERVAL": "0.25",
        "TELEMETRY_CLIENT_MAX_QUEUE": "77",
        "TELEMETRY_CLIENT_TIMEOUT": "3",
        "TELEMETRY_CLIENT_EXIT_FLUSH_TIMEOUT": "1.5",
    }
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    client = TelemetryClient()
    try:
        settings = client.settings
        assert (settings.endpoint, settings.token, settings.environment, settings.role,
                settings.role_instance, settings.batch_size, settings.flush_interval,
                settings.max_queue, settings.timeout, settings.exit_flush_timeout) == (
            "http://receiver:9000/v1/events", "from-env", "prod-eu", "quote-svc", "vm-3", 50,
            0.25, 77, 3.0, 1.5)  # fmt: skip
        assert settings.events_url == "http://receiver:9000/v1/events"
        assert (client.environment, client.role, client.role_instance) == (
            "prod-eu", "quote-svc", "vm-3")  # fmt: skip
    finally:
        client.close(timeout=0)

    given = ClientSettings.resolve(endpoint="http://other:1", token="arg", batch_size=7,
                                   environment="")  # fmt: skip
    assert (given.endpoint, given.token, given.batch_size, given.max_queue) == (
        "http://other:1", "arg", 7, 77)  # fmt: skip
    # An empty string given is a value: it does not fall back to the environment.
    assert given.environment == ""


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("TELEMETRY_CLIENT_BATCH_SIZE", "lots", "TELEMETRY_CLIENT_BATCH_SIZE must be a whole number"),
    ("TELEMETRY_CLIENT_BATCH_SIZE", "2.5", "TELEMETRY_CLIENT_BATCH_SIZE must be a whole number"),
    ("TELEMETRY_CLIENT_MAX_QUEUE", "0", "TELEMETRY_CLIENT_MAX_QUEUE must be greater than 0"),
    ("TELEMETRY_CLIENT_FLUSH_INTERVAL", "-1", "must be greater than 0"),
    ("TELEMETRY_CLIENT_TIMEOUT", "nan", "TELEMETRY_CLIENT_TIMEOUT must be greater than 0"),
    ("TELEMETRY_CLIENT_EXIT_FLUSH_TIMEOUT", "soon", "must be a number of seconds"),
])  # fmt: skip
def test_a_bad_variable_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, variable: str,
                                           value: str, message: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=message):
        TelemetryClient(token="t")


def test_a_missing_token_or_bad_argument_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="TELEMETRY_CLIENT_TOKEN"):
        TelemetryClient("http://127.0.0.1:8080")
    with pytest.raises(ConfigurationError, match="batch_size= must be a whole number"):
        TelemetryClient(token="t", batch_size=1.5)  # type: ignore[arg-type]


def test_every_variable_is_in_the_readme_table() -> None:
    readme = (REPO / "telemetry_client" / "README.md").read_text()
    for option, (variable, _) in VARIABLES.items():
        assert f"| `{option}` | `{variable}` |" in readme
