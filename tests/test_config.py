import re
from pathlib import Path

import pytest

from csms.config import Config, ConfigError, load_config, with_overrides


def test_shipped_file_documents_the_defaults() -> None:
    shipped = load_config(Path(__file__).parent.parent / "config.toml", env={})
    assert shipped == Config()
    assert shipped.server.ocpp_port == 9000
    assert shipped.server.http_port == 8080
    assert shipped.ocpp.unknown_chargers == "reject"
    assert shipped.ocpp.ping_interval == 30.0


def test_file_then_environment(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('[ocpp]\nunknown_chargers = "accept"\nheartbeat_interval = 60\n')
    config = load_config(
        file, env={"CSMS_OCPP_HEARTBEAT_INTERVAL": "120", "CSMS_LOG_FORMAT": "console"}
    )
    assert config.ocpp.unknown_chargers == "accept"
    assert config.ocpp.heartbeat_interval == 120
    assert config.log.format == "console"


def test_int_in_file_is_accepted_for_float_setting(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text("[ocpp]\nping_interval = 10\n")
    config = load_config(file, env={})
    assert config.ocpp.ping_interval == 10.0
    assert isinstance(config.ocpp.ping_interval, float)


@pytest.mark.parametrize(
    ("text", "env", "named"),
    [
        ("[ocpp]\nunknown_chargers = 'maybe'\n", {}, "ocpp.unknown_chargers"),
        ("[ocpp]\nheartbeat_interval = 'often'\n", {}, "ocpp.heartbeat_interval"),
        ("[ocpp]\nheartbeat_interval = 0\n", {}, "ocpp.heartbeat_interval"),
        ("[ocpp]\nheartbeet_interval = 10\n", {}, "ocpp.heartbeet_interval"),
        ("[serve]\nport = 1\n", {}, "[serve]"),
        ("[server]\nocpp_port = true\n", {}, "server.ocpp_port"),
        ("[server]\nocpp_path = 'no-slash'\n", {}, "server.ocpp_path"),
        ("", {"CSMS_SERVER_HTTP_PORT": "eighty"}, "server.http_port"),
        ("", {"CSMS_OCPP_REJECT_CONCURRENT_TX": "perhaps"}, "ocpp.reject_concurrent_tx"),
        ("[ocpp\n", {}, "not valid TOML"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, env: dict, named: str) -> None:
    file = tmp_path / "c.toml"
    file.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_config(file, env=env)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})


def test_without_a_file_the_defaults_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(env={"CSMS_OCPP_REJECT_CONCURRENT_TX": "false"})
    assert config.ocpp.reject_concurrent_tx is False
    assert config.database.path == "csms.db"


def test_overrides_are_validated() -> None:
    config = load_config(env={})
    with pytest.raises(ConfigError, match=r"ocpp\.call_timeout"):
        with_overrides(config, ocpp={"call_timeout": 0})
    with pytest.raises(ConfigError, match=r"ocpp\.nonsense"):
        with_overrides(config, ocpp={"nonsense": 1})
    assert with_overrides(config, ocpp={"call_timeout": 5}).ocpp.call_timeout == 5.0
