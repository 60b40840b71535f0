import re
import subprocess
from pathlib import Path

import pytest

from csms.cli import main
from csms.config import (
    OTHER_VARIABLES,
    Config,
    ConfigError,
    load_config,
    setting_variables,
    with_overrides,
)


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


@pytest.mark.parametrize(("minutes", "ok"), [(29, False), (30, True), (1438, True), (1439, False)])
def test_checkout_expiry_within_what_stripe_allows(tmp_path: Path, minutes: int, ok: bool) -> None:
    # Stripe: 30 minutes to 24 hours; csms gives the session 2 minutes more than the setting.
    file = tmp_path / "c.toml"
    file.write_text(f"[stripe]\ncheckout_expiry_minutes = {minutes}\n")
    if ok:
        assert load_config(file, env={}).stripe.checkout_expiry_minutes == minutes
    else:
        with pytest.raises(ConfigError, match=r"stripe\.checkout_expiry_minutes"):
            load_config(file, env={})


# -- start-up checks for real money

TEST_KEY = "sk_test_51Abc"
LIVE_KEY = "sk_live_51Abc"
SECRET = "whsec_abc"
HTTPS = "https://charge.example.com"


def _env(**values: str) -> dict[str, str]:
    return {f"CSMS_{key.upper()}": value for key, value in values.items()}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        (_env(stripe_api_key=TEST_KEY), "stripe.webhook_secrets"),
        (_env(stripe_api_key="rk_test_51Abc"), "stripe.webhook_secrets"),
        (_env(stripe_api_key=TEST_KEY, stripe_webhook_secrets=" , "), "stripe.webhook_secrets"),
        (_env(stripe_api_key=TEST_KEY, stripe_webhook_secrets="sk_test_x"), "whsec_"),
        (_env(stripe_api_key="pk_live_51Abc", stripe_webhook_secrets=SECRET), "stripe.api_key"),
        (
            _env(stripe_api_key=LIVE_KEY, stripe_webhook_secrets=SECRET),
            "payments.public_base_url",
        ),
        (
            _env(
                stripe_api_key="rk_live_51Abc",
                stripe_webhook_secrets=SECRET,
                payments_public_base_url="http://charge.example.com",
            ),
            "payments.public_base_url",
        ),
        (
            _env(
                stripe_api_key=LIVE_KEY,
                stripe_webhook_secrets=SECRET,
                payments_public_base_url=HTTPS,
                stripe_insecure_webhooks="true",
            ),
            "stripe.insecure_webhooks",
        ),
        # The override is for test keys only.
        (
            _env(
                stripe_api_key=LIVE_KEY,
                payments_public_base_url=HTTPS,
                stripe_allow_incomplete_test_setup="true",
            ),
            "stripe.webhook_secrets",
        ),
        (
            _env(
                stripe_api_key="pk_test_51Abc",
                stripe_webhook_secrets=SECRET,
                stripe_allow_incomplete_test_setup="true",
            ),
            "stripe.api_key",
        ),
    ],
)
def test_a_stripe_key_without_what_real_money_needs_stops_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=re.escape(named)) as refused:
        load_config(env=env)
    assert "51Abc" not in str(refused.value)  # the key itself is never repeated


def test_complete_stripe_setups_start() -> None:
    config = load_config(
        env=_env(
            stripe_api_key=LIVE_KEY,
            stripe_webhook_secrets=f"{SECRET}, whsec_old",
            payments_public_base_url=HTTPS,
        )
    )
    assert config.stripe.live and config.stripe.signing_secrets == [SECRET, "whsec_old"]
    config = load_config(env=_env(stripe_api_key=TEST_KEY, stripe_webhook_secrets=SECRET))
    assert not config.stripe.live  # a test key may come back to http://127.0.0.1
    insecure = _env(stripe_api_key=TEST_KEY, stripe_webhook_secrets=SECRET)
    assert load_config(env={**insecure, "CSMS_STRIPE_INSECURE_WEBHOOKS": "true"})


def test_without_a_key_the_sandbox_needs_none_of_it() -> None:
    config = load_config(env=_env(stripe_insecure_webhooks="true"))
    assert config.stripe.api_key == "" and config.incomplete_stripe_setup() == []


def test_a_test_key_may_start_incomplete_when_told_so(caplog: pytest.LogCaptureFixture) -> None:
    env = _env(stripe_api_key=TEST_KEY, stripe_allow_incomplete_test_setup="true")
    with caplog.at_level("WARNING", logger="csms.config"):
        config = load_config(env=env)
    assert config.stripe.api_key == TEST_KEY
    assert [r.getMessage() for r in caplog.records] == [
        "config warning: stripe.webhook_secrets: must be set with stripe.api_key (the "
        "endpoint's signing secret, whsec_...); without it every webhook is refused "
        "(stripe.allow_incomplete_test_setup is on)"
    ]


def test_overrides_are_checked_for_real_money_too() -> None:
    config = load_config(env={})
    with pytest.raises(ConfigError, match=r"stripe\.webhook_secrets"):
        with_overrides(config, stripe={"api_key": TEST_KEY})
    live = with_overrides(
        config,
        stripe={"api_key": LIVE_KEY, "webhook_secrets": SECRET},
        payments={"public_base_url": HTTPS},
    )
    with pytest.raises(ConfigError, match=r"stripe\.insecure_webhooks"):
        with_overrides(live, stripe={"insecure_webhooks": True})


def test_start_up_stops_with_one_line_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every command, `csms serve` included, loads the config first and reports a ConfigError
    # the same way; one that ends by itself keeps this test from serving if the check broke.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CSMS_STRIPE_API_KEY", LIVE_KEY)
    monkeypatch.setenv("CSMS_STRIPE_WEBHOOK_SECRETS", SECRET)
    assert main(["chargers", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("csms: config error: payments.public_base_url: must be an https://")
    assert err.count("\n") == 1 and "Traceback" not in err


# -- CSMS_ variables that are no setting


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("CSMS_SERVER_HTTP_PROT", "unknown setting; did you mean CSMS_SERVER_HTTP_PORT?"),
        ("CSMS_HTTP_PORT", "unknown setting; did you mean CSMS_SERVER_HTTP_PORT?"),
        ("CSMS_TEST_BACKENDS", "unknown setting; did you mean CSMS_TEST_BACKEND?"),
        ("CSMS_XYZZY", "unknown setting; settings are named CSMS_<SECTION>_<KEY> after the keys"),
    ],
)
def test_an_unknown_variable_stops_start_up_naming_the_closest(name: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(env={"CSMS_LOG_LEVEL": "info", name: "1", "OTHER_THING": "1"})
    assert str(refused.value).startswith(f"{name}: {message}")


def test_the_variables_that_are_no_settings_are_known() -> None:
    env = {name: "x" for name in OTHER_VARIABLES}
    assert load_config(env=env) == load_config(env={})


def test_every_csms_variable_the_repository_names_is_known() -> None:
    # Anything that sets or reads a CSMS_ variable today (tests, bench, dev.py, deploy/,
    # the docs) must keep working: each name is a setting or one of OTHER_VARIABLES.
    root = Path(__file__).resolve().parent.parent
    files = subprocess.run(
        ["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    named: set[str] = set()
    for name in files:
        path = root / name
        if path.suffix in (".py", ".md", ".toml", ".yaml", ".service", "") and path.is_file():
            text = path.read_text(errors="ignore")
            named |= set(re.findall(r"\bCSMS_[A-Z0-9_]*[A-Z0-9]\b", text))
    constants = {"CSMS_ACTIONS", "CSMS_SETTINGS"}  # Python names, not variables
    # Misspelt on purpose: the README's example and the tests of the refusal.
    misspelt = {"CSMS_SERVER_HTTP_PROT", "CSMS_HTTP_PORT", "CSMS_TEST_BACKENDS", "CSMS_XYZZY"}
    known = {*setting_variables(), *OTHER_VARIABLES}
    assert {"CSMS_TEST_BACKEND", "CSMS_DATABASE_URL", "CSMS_SERVER_HTTP_PROT"} <= named
    assert named - constants - misspelt - known == set()


def test_ports_stop_at_65535() -> None:
    assert load_config(env={"CSMS_SERVER_OCPP_PORT": "65535"}).server.ocpp_port == 65535
    for name in ("CSMS_SERVER_OCPP_PORT", "CSMS_SERVER_HTTP_PORT", "CSMS_STRIPE_SANDBOX_PORT"):
        with pytest.raises(ConfigError, match="must be at most 65535; got 65536"):
            load_config(env={name: "65536"})


def test_an_unknown_key_in_the_file_names_the_closest(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text("[sever]\nhttp_port = 1\n")
    with pytest.raises(ConfigError, match=re.escape("unknown section [sever]; did you mean")):
        load_config(file, env={})
    file.write_text("[ocpp]\nheartbeet_interval = 10\n")
    with pytest.raises(ConfigError) as refused:
        load_config(file, env={})
    assert str(refused.value) == (
        "unknown key ocpp.heartbeet_interval; did you mean ocpp.heartbeat_interval?"
    )
