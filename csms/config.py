"""Settings: `config.toml`, then `CSMS_<SECTION>_<KEY>` environment variables, validated.

Each section is a frozen dataclass; a field's metadata carries its constraints, so the
file, the environment and the defaults are all checked by one piece of code and every
error names the key it is about.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from httpapi.forwarded import TrustedProxies
from payments.web.operator import known_time_zone

ENV_PREFIX = "CSMS_"
# The CSMS_ variables that are not settings, and what reads them. Any other CSMS_ name that
# is not a setting stops start-up: a misspelt setting would otherwise be ignored silently.
OTHER_VARIABLES = {
    "CSMS_API_KEY": "the API key that csms refund, review and command send to the server",
    "CSMS_TEST_BACKEND": "the test suite's database: sqlite or postgresql",
    "CSMS_SCREENSHOTS": "where the browser tests save their screenshots",
    "CSMS_README_SCREENSHOTS": "1: the browser tests also write the README's screenshots",
}
MAX_PORT = 65535

# Stripe keys: secret (sk_) or restricted (rk_), for test mode or live mode.
TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")
LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_")
# Stripe lets a Checkout Session expire 30 minutes to 24 hours after it is created. csms
# sets expires_at 2 minutes beyond checkout_expiry_minutes (so that a request reaching
# Stripe late still gets its 30 minutes), which leaves 24 hours - 2 minutes at most.
CHECKOUT_EXPIRY_MINUTES = (30, 24 * 60 - 2)

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A setting is missing, unknown or out of range; the message names the key."""


def _setting(
    default: Any,
    *,
    choices: tuple[str, ...] = (),
    min: float | None = None,
    max: float | None = None,
    pattern: str = "",
) -> Any:
    metadata = {"choices": choices, "min": min, "max": max, "pattern": pattern}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class ServerSettings:
    ocpp_host: str = _setting("0.0.0.0")
    ocpp_port: int = _setting(9000, min=0, max=MAX_PORT)
    ocpp_path: str = _setting("/ocpp", pattern=r"/[A-Za-z0-9._~/-]*")
    http_host: str = _setting("0.0.0.0")
    http_port: int = _setting(8080, min=0, max=MAX_PORT)
    shutdown_timeout: float = _setting(10.0, min=0)
    gc_freeze_interval: float = _setting(1.0, min=0)
    gc_full_collection_interval: float = _setting(900.0, min=1)
    tls_cert: str = _setting("")
    tls_key: str = _setting("")
    # Reverse proxies (addresses or CIDR networks, comma-separated) whose X-Forwarded-For
    # names the client: httpapi/forwarded.py. Empty: the peer is the client.
    trusted_proxies: str = _setting("")

    def __post_init__(self) -> None:
        try:  # a bad entry stops start-up here, naming the key
            TrustedProxies.parse(self.trusted_proxies)
        except ValueError as error:
            raise ConfigError(f"server.trusted_proxies: {error}") from None
        # Both or neither, and readable: a typo stops start-up here, naming the key.
        for key, other in (("tls_cert", "tls_key"), ("tls_key", "tls_cert")):
            path = getattr(self, key)
            if not path and getattr(self, other):
                raise ConfigError(f"server.{key}: must be set too when server.{other} is")
            if path:
                try:
                    with open(path, "rb"):
                        pass
                except OSError as error:
                    raise ConfigError(
                        f"server.{key}: cannot read {path}: {error.strerror}"
                    ) from None

    @property
    def proxies(self) -> TrustedProxies:
        """`trusted_proxies` parsed; ValueError for an entry that is no address or network."""
        return TrustedProxies.parse(self.trusted_proxies)


@dataclass(frozen=True)
class OcppSettings:
    unknown_chargers: str = _setting("reject", choices=("reject", "accept"))
    heartbeat_interval: int = _setting(300, min=1)
    boot_retry_interval: int = _setting(60, min=1)
    ping_interval: float = _setting(30.0, min=0)
    ping_timeout: float = _setting(20.0, min=0.1)
    call_timeout: float = _setting(30.0, min=0.1)
    max_frame_bytes: int = _setting(65536, min=1024)
    reject_concurrent_tx: bool = _setting(True)
    # A transaction whose start was refused (ConcurrentTx, Invalid...) but that the charger
    # keeps running (it sends MeterValues for it) is stopped with RemoteStopTransaction.
    stop_refused_transactions: bool = _setting(True)
    # The highest connector id a charger may name; a higher one is refused
    # (PropertyConstraintViolation) and never becomes a connector.
    max_connector_id: int = _setting(100, min=1, max=2**31 - 1)
    # A timestamp without a time zone (2026-11-30T10:00:00): "lenient" reads it as UTC and
    # logs a warning, "strict" refuses the message (PropertyConstraintViolation).
    timestamps_without_zone: str = _setting("lenient", choices=("lenient", "strict"))
    auth_failures_allowed: int = _setting(5, min=1)
    auth_failure_window: int = _setting(300, min=1)


@dataclass(frozen=True)
class DatabaseSettings:
    path: str = _setting("csms.db")
    synchronous: str = _setting("full", choices=("full", "normal"))
    # PostgreSQL instead of the SQLite file: postgresql://user:password@host:port/name
    url: str = _setting("", pattern=r"(postgresql|postgres)://.*|")

    @property
    def target(self) -> str:
        """What storage.db opens: the PostgreSQL URL when set, else the SQLite file."""
        return self.url or self.path

    @property
    def shown(self) -> str:
        """The target for logs: a password in the URL is masked."""
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", self.target)


@dataclass(frozen=True)
class ClusterSettings:
    # This node's name among several (PostgreSQL); empty: host name and process id. Keep it
    # stable across restarts (the host name, say): a node started again under the same name
    # takes back at once what it held, instead of after its old lease ran out.
    node_id: str = _setting("", pattern=r"[A-Za-z0-9._:-]{0,100}")
    # Seconds a node's lease lasts unless renewed (every third of it). What a dead node
    # held (its chargers, effects, jobs) is taken over by the others this long after.
    lease: float = _setting(15.0, min=1.0)


@dataclass(frozen=True)
class CertsSettings:
    # The operator CA for chargers' client certificates (security profile 3): a folder
    # holding ca.key and ca.pem (`csms certs init`). Empty: no CA, so no profile 3.
    folder: str = _setting("")
    # The O (organisation) of the CA and of chargers' certificates; when set, a charger's
    # certificate signing request must carry it.
    organisation: str = _setting("")
    # Days a charger's certificate is valid, and how many days before its end it is renewed.
    charger_validity_days: int = _setting(365, min=1)
    renew_before_days: int = _setting(30, min=0)
    # Seconds between checks for certificates due for renewal (0: never).
    renewal_check_interval: float = _setting(3600.0, min=0)
    # Instead of the operator CA: a command given the request (PEM) on its standard input
    # that prints the certificate chain (PEM, the charger's first) and exits 0.
    external_ca_command: str = _setting("")
    external_ca_timeout: float = _setting(60.0, min=1)

    def __post_init__(self) -> None:
        try:  # split as csms/certs/issuer.py runs it: a stray quote stops start-up here
            shlex.split(self.external_ca_command)
        except ValueError as error:
            raise ConfigError(f"certs.external_ca_command: {error}") from None


@dataclass(frozen=True)
class ApiSettings:
    keys: str = _setting("")


@dataclass(frozen=True)
class StripeSettings:
    api_key: str = _setting("")
    webhook_secrets: str = _setting("")
    api_base: str = _setting("")
    sandbox_host: str = _setting("127.0.0.1")
    sandbox_port: int = _setting(12111, min=0, max=MAX_PORT)
    checkout_expiry_minutes: int = _setting(
        30, min=CHECKOUT_EXPIRY_MINUTES[0], max=CHECKOUT_EXPIRY_MINUTES[1]
    )
    max_network_retries: int = _setting(2, min=0)
    timeout: float = _setting(20.0, min=1)
    insecure_webhooks: bool = _setting(False)
    allow_incomplete_test_setup: bool = _setting(False)

    @property
    def live(self) -> bool:
        return self.api_key.startswith(LIVE_KEY_PREFIXES)

    @property
    def signing_secrets(self) -> list[str]:
        return [s.strip() for s in self.webhook_secrets.split(",") if s.strip()]


@dataclass(frozen=True)
class PaymentsSettings:
    enabled: bool = _setting(True)
    public_base_url: str = _setting("", pattern=r"(https?://[^\s]+)?")
    handover_window: int = _setting(120, min=10)
    # Seconds an unpaid reservation holds its connector after the Checkout link was handed
    # over (capped by stripe.checkout_expiry_minutes): then it expires, and so does its
    # Checkout Session.
    pending_window: int = _setting(300, min=10)
    start_window: int = _setting(300, min=1)
    start_reply_window: int = _setting(120, min=1)
    stop_retry_interval: int = _setting(60, min=1)
    settle_after_available: int = _setting(600, min=1)
    capture_deadline_hours: int = _setting(144, min=1)
    minimum_energy_wh: int = _setting(1000, min=0)
    minimum_amount: int = _setting(-1, min=-1)
    meter_interval: int = _setting(60, min=1)
    max_power_kw: float = _setting(350.0, min=0.1)
    retry_base: float = _setting(1.0, min=0.01)
    retry_ceiling: float = _setting(30.0, min=0.1)
    tick_interval: float = _setting(5.0, min=0.05)
    start_limit_count: int = _setting(10, min=1)
    start_limit_window: int = _setting(600, min=1)
    reconcile_interval: float = _setting(300.0, min=0)
    reconcile_window_hours: int = _setting(192, min=1)


@dataclass(frozen=True)
class TariffSettings:
    currency: str = _setting("eur", pattern=r"[A-Za-z]{3}")
    price_per_kwh: str = _setting("0.40")
    session_fee: str = _setting("0.50")
    time_fee_per_minute: str = _setting("0")
    time_fee_free_minutes: int = _setting(0, min=0)
    time_fee_max_minutes: int = _setting(0, min=0)
    idle_fee_per_minute: str = _setting("0.10")
    idle_grace_minutes: int = _setting(15, min=0)
    idle_fee_max_minutes: int = _setting(60, min=0)
    max_energy_wh: int = _setting(50000, min=0)
    max_duration_minutes: int = _setting(480, min=0)
    # VAT included in the prices (they are gross), in percent: "19", "7.7"; "0": none shown.
    tax_rate_percent: str = _setting("0")
    # Prices by time of day (payments.bands.bands_from_text): "Peak mon-fri 07:00-22:00 0.45; ..."
    bands: str = _setting("")
    # No time fee inside this span of every day: "22:00-07:00"; "": none.
    time_fee_excluded: str = _setting("")


_URL = r"(https?://[^\s]+)?"


@dataclass(frozen=True)
class OperatorSettings:
    """Who runs the chargers, as the driver's pages and receipts name them."""

    name: str = _setting("")
    address: str = _setting("")
    support_email: str = _setting("", pattern=r"([^@\s]+@[^@\s]+\.[^@\s]+)?")
    support_phone: str = _setting("", pattern=r"(\+?[0-9 ()/-]{3,30})?")
    support_url: str = _setting("", pattern=_URL)
    terms_url: str = _setting("", pattern=_URL)
    privacy_url: str = _setting("", pattern=_URL)
    time_zone: str = _setting("UTC")

    def __post_init__(self) -> None:
        if not known_time_zone(self.time_zone):
            raise ConfigError(
                f"operator.time_zone: not a known IANA time zone (e.g. Europe/Berlin, UTC); "
                f"got {self.time_zone!r}"
            )


@dataclass(frozen=True)
class LogSettings:
    format: str = _setting("json", choices=("json", "console"))
    level: str = _setting("info", choices=("debug", "info", "warning", "error"))


@dataclass(frozen=True)
class AlertsSettings:
    check_interval: float = _setting(60.0, min=0.05)
    review_hold_age: float = _setting(3600.0, min=0)
    outbox_stuck_after: float = _setting(600.0, min=0)
    webhook_url: str = _setting("", pattern=r"(https?://[^\s]+)?")
    webhook_secret: str = _setting("")
    webhook_timeout: float = _setting(10.0, min=0.1)
    retry_base: float = _setting(5.0, min=0.01)
    retry_ceiling: float = _setting(900.0, min=0.1)

    def __post_init__(self) -> None:
        if self.webhook_url and not self.webhook_secret:
            raise ConfigError("alerts.webhook_secret: required when alerts.webhook_url is set")


@dataclass(frozen=True)
class MetricsSettings:
    """`/metrics` for Prometheus: open on the HTTP endpoint by default, as scrapers expect."""

    # true: a scrape needs an API key (X-API-Key, or Authorization: Bearer KEY).
    require_api_key: bool = _setting(False)
    # "HOST:PORT" (e.g. 127.0.0.1:9100): served there alone, no longer on the HTTP endpoint.
    listen: str = _setting("", pattern=r"(\S*:[0-9]{1,5})?")

    def __post_init__(self) -> None:
        if self.address is not None and self.address[1] > MAX_PORT:
            raise ConfigError(f"metrics.listen: port above {MAX_PORT}; got {self.listen!r}")

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) of `listen`, brackets of an IPv6 host removed; None: not set."""
        if not self.listen:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.removeprefix("[").removesuffix("]"), int(port)


@dataclass(frozen=True)
class ConsoleSettings:
    """The operator console at /console."""

    # Hours a login lasts (not extended by use); then the operator logs in again.
    session_hours: float = _setting(8.0, min=0.01, max=24 * 30)
    # Failed logins allowed from one address within login_window seconds; then refused
    # until the window ends.
    login_attempts: int = _setting(5, min=1)
    login_window: float = _setting(900.0, min=1)
    # The overview lists chargers offline for longer than this many minutes.
    offline_alert_minutes: float = _setting(15.0, min=0)


@dataclass(frozen=True)
class Config:
    server: ServerSettings = field(default_factory=ServerSettings)
    ocpp: OcppSettings = field(default_factory=OcppSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    certs: CertsSettings = field(default_factory=CertsSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    stripe: StripeSettings = field(default_factory=StripeSettings)
    payments: PaymentsSettings = field(default_factory=PaymentsSettings)
    tariff: TariffSettings = field(default_factory=TariffSettings)
    operator: OperatorSettings = field(default_factory=OperatorSettings)
    log: LogSettings = field(default_factory=LogSettings)
    alerts: AlertsSettings = field(default_factory=AlertsSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)

    def __post_init__(self) -> None:
        overridden = self.stripe.allow_incomplete_test_setup and self.stripe.api_key.startswith(
            TEST_KEY_PREFIXES
        )
        for problem in self.incomplete_stripe_setup():
            if not overridden:
                raise ConfigError(problem)

    def incomplete_stripe_setup(self) -> list[str]:
        """What keeps a real Stripe key from taking real money safely, one line per setting.

        With a test key, `stripe.allow_incomplete_test_setup` lets these through (load_config
        warns); with a live key nothing does. Without a key (the sandbox) there is nothing.
        """
        stripe = self.stripe
        if not stripe.api_key:
            return []
        if not stripe.api_key.startswith(TEST_KEY_PREFIXES + LIVE_KEY_PREFIXES):
            # A publishable key (pk_) or a typo: every call would fail.
            return [
                "stripe.api_key: not a Stripe secret or restricted key "
                f"({', '.join(TEST_KEY_PREFIXES + LIVE_KEY_PREFIXES)}...)"
            ]
        problems = []
        if not stripe.signing_secrets:
            problems.append(
                "stripe.webhook_secrets: must be set with stripe.api_key (the endpoint's "
                "signing secret, whsec_...); without it every webhook is refused"
            )
        elif not all(secret.startswith("whsec_") for secret in stripe.signing_secrets):
            problems.append(
                "stripe.webhook_secrets: a Stripe signing secret starts with whsec_; "
                "copy it from the webhook endpoint in the dashboard"
            )
        if stripe.live and not self.payments.public_base_url.startswith("https://"):
            problems.append(
                "payments.public_base_url: must be an https:// URL with a live Stripe key "
                f"(drivers come back there from Checkout); got {self.payments.public_base_url!r}"
            )
        if stripe.live and stripe.insecure_webhooks:
            problems.append("stripe.insecure_webhooks: must be false with a live Stripe key")
        return problems


_SECTIONS: dict[str, type] = {f.name: f.default_factory for f in fields(Config)}  # type: ignore[misc]


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read `path` (or ./config.toml when it exists), apply the environment, validate."""
    env = os.environ if env is None else env
    _refuse_unknown_variables(env)
    raw: dict[str, Any] = {}
    if path is not None or Path("config.toml").exists():
        file = Path(path or "config.toml")
        try:
            raw = tomllib.loads(file.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {file} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
    config = _build(raw, env)
    for problem in config.incomplete_stripe_setup():  # only a test key gets here with one
        log.warning("config warning: %s (stripe.allow_incomplete_test_setup is on)", problem)
    return config


def _build(raw: dict[str, Any], env: Mapping[str, str]) -> Config:
    for section in raw:
        if section not in _SECTIONS:
            hint = _did_you_mean(section, _SECTIONS, "[{}]") or f"; known: {', '.join(_SECTIONS)}"
            raise ConfigError(f"unknown section [{section}]{hint}")
    built = {}
    for section, cls in _SECTIONS.items():
        values = raw.get(section, {})
        if not isinstance(values, dict):
            raise ConfigError(f"{section}: must be a table")
        known = {f.name for f in fields(cls)}
        for key in values:
            if key not in known:
                hint = _did_you_mean(key, known, f"{section}.{{}}")
                raise ConfigError(f"unknown key {section}.{key}{hint}")
        settings = {}
        for f in fields(cls):
            name = f"{section}.{f.name}"
            env_key = f"{ENV_PREFIX}{section}_{f.name}".upper()
            if env_key in env:
                value = _from_env(name, env_key, env[env_key], f.type)
            elif f.name in values:
                value = _typed(name, values[f.name], f.type)
            else:
                assert f.default is not MISSING
                value = f.default
            _check(name, value, f.metadata)
            settings[f.name] = value
        built[section] = cls(**settings)
    return Config(**built)


def setting_variables() -> dict[str, str]:
    """Each setting's environment variable and the key it sets: CSMS_OCPP_HEARTBEAT_INTERVAL
    sets ocpp.heartbeat_interval."""
    return {
        f"{ENV_PREFIX}{section}_{f.name}".upper(): f"{section}.{f.name}"
        for section, cls in _SECTIONS.items()
        for f in fields(cls)
    }


def _refuse_unknown_variables(env: Mapping[str, str]) -> None:
    known = {*setting_variables(), *OTHER_VARIABLES}
    unknown = sorted(name for name in env if name.startswith(ENV_PREFIX) and name not in known)
    if not unknown:
        return
    # Compared without the prefix, which every name shares.
    name, rest = unknown[0], [known_name.removeprefix(ENV_PREFIX) for known_name in known]
    hint = _did_you_mean(name.removeprefix(ENV_PREFIX), rest, ENV_PREFIX + "{}") or (
        f"; settings are named {ENV_PREFIX}<SECTION>_<KEY> after the keys of config.toml"
    )
    raise ConfigError(f"{name}: unknown setting{hint}")


def _did_you_mean(name: str, known: Any, shown: str) -> str:
    """ "; did you mean X?" with the known name closest to `name`; "" when none is close."""
    closest = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {shown.format(closest[0])}?" if closest else ""


def _typed(name: str, value: Any, type_name: str) -> Any:
    expected = {"str": str, "int": int, "float": (int, float), "bool": bool}[type_name]
    # bool is an int in Python; a port of `true` is still a mistake.
    if (isinstance(value, bool) and type_name != "bool") or not isinstance(value, expected):
        raise ConfigError(f"{name}: expected {type_name}, got {value!r}")
    return float(value) if type_name == "float" else value


def _from_env(name: str, env_key: str, text: str, type_name: str) -> Any:
    try:
        if type_name == "int":
            return int(text)
        if type_name == "float":
            return float(text)
    except ValueError:
        raise ConfigError(f"{name} (from {env_key}): expected {type_name}, got {text!r}") from None
    if type_name == "bool":
        lowered = text.strip().lower()
        if lowered not in ("1", "0", "true", "false", "yes", "no"):
            raise ConfigError(f"{name} (from {env_key}): expected true or false, got {text!r}")
        return lowered in ("1", "true", "yes")
    return text


def _check(name: str, value: Any, metadata: Mapping[str, Any]) -> None:
    choices, pattern = metadata["choices"], metadata["pattern"]
    minimum, maximum = metadata["min"], metadata["max"]
    if pattern and not re.fullmatch(pattern, value):
        raise ConfigError(f"{name}: must match {pattern}; got {value!r}")
    if choices and value not in choices:
        raise ConfigError(f"{name}: must be one of {', '.join(choices)}; got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}; got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}: must be at most {maximum}; got {value!r}")


def with_overrides(config: Config, **sections: dict[str, Any]) -> Config:
    """A copy of `config` with some keys changed, validated like the file (tests, dev tools)."""
    changed = {}
    for section, values in sections.items():
        current = getattr(config, section)
        known = {f.name: f for f in fields(current)}
        typed = {}
        for key, value in values.items():
            if key not in known:
                hint = _did_you_mean(key, known, f"{section}.{{}}")
                raise ConfigError(f"unknown key {section}.{key}{hint}")
            typed[key] = _typed(f"{section}.{key}", value, known[key].type)
            _check(f"{section}.{key}", typed[key], known[key].metadata)
        changed[section] = replace(current, **typed)
    return replace(config, **changed)
