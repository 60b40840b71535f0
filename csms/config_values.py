"""The config's sections as the values the parts take: the database (opened and migrated),
the operator the driver's pages name, the default tariff, the payment policy.

Each turns settings config.py has already checked into the part's own value; a value only
the part can judge (a tariff Stripe would refuse) stops start-up naming its setting.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from zoneinfo import ZoneInfo

from csms import startup
from csms.config import Config, ConfigError
from payments.bands import BandError, bands_from_text, window_from_text
from payments.pricing import Tariff, TariffError, tariff_from_major_units
from payments.reservation import Policy
from payments.web.operator import Operator
from storage.db import Database, is_postgres
from storage.db import open_database as open_database_at
from storage.migrate import Migration, load_migrations


def migrations(dialect: str = "sqlite") -> list[Migration]:
    return [
        *load_migrations("cluster", "storage", dialect),
        *load_migrations("csms", "csms.store", dialect),
        *load_migrations("payments", "payments", dialect),
    ]


async def open_database(config: Config) -> Database:
    """The configured database, migrated; StartupError naming database.path or database.url
    when it cannot be opened or reached."""
    settings = config.database
    target = settings.target
    dialect = "postgresql" if is_postgres(target) else "sqlite"
    startup.check_database_folder(settings)
    try:
        return await open_database_at(target, migrations(dialect), synchronous=settings.synchronous)
    except startup.database_errors(target) as error:
        raise startup.database_error(settings, error) from None


def operator(config: Config) -> Operator:
    """The [operator] section as the driver's pages use it (the zone is checked by config)."""
    settings = asdict(config.operator)
    return Operator(**{**settings, "time_zone": ZoneInfo(settings["time_zone"])})


def default_tariff(config: Config) -> Tariff:
    """The [tariff] section as a Tariff; a bad value stops start-up naming its key."""
    settings = asdict(config.tariff)
    currency = settings.pop("currency")
    # In the file, 0 means "no cap" for the optional limits.
    for name in (
        "time_fee_max_minutes",
        "idle_fee_max_minutes",
        "max_energy_wh",
        "max_duration_minutes",
    ):
        settings[name] = settings[name] or None
    try:
        settings["bands"] = bands_from_text(settings["bands"])
        settings["time_fee_excluded"] = window_from_text(settings["time_fee_excluded"])
        return tariff_from_major_units(currency, settings)
    except (TariffError, BandError) as error:
        raise ConfigError(f"tariff.{error.field}: {error.message}") from None


def payment_policy(config: Config) -> Policy:
    settings = config.payments
    return Policy(
        handover_window=timedelta(seconds=settings.handover_window),
        start_window=timedelta(seconds=settings.start_window),
        start_reply_window=timedelta(seconds=settings.start_reply_window),
        stop_retry_interval=timedelta(seconds=settings.stop_retry_interval),
        settle_after_available=timedelta(seconds=settings.settle_after_available),
        capture_deadline=timedelta(hours=settings.capture_deadline_hours),
        meter_interval=timedelta(seconds=settings.meter_interval),
        minimum_energy_wh=settings.minimum_energy_wh,
        minimum_amount=None if settings.minimum_amount < 0 else settings.minimum_amount,
        max_power_w=round(settings.max_power_kw * 1000),
    )
