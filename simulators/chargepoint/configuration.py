"""The charger's OCPP configuration keys, as read by GetConfiguration and ChangeConfiguration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ocpp.v16.datatypes import KeyValue
from ocpp.v16.enums import ConfigurationStatus, Measurand

Kind = Literal["int", "bool", "text", "measurands"]

# What this simulator samples; MeterValuesSampledData may select any subset of it.
SAMPLED_MEASURANDS = (
    Measurand.energy_active_import_register,
    Measurand.power_active_import,
    Measurand.current_import,
    Measurand.soc,
)
FEATURE_PROFILES = (
    "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger"
)


@dataclass
class _Key:
    value: str
    kind: Kind
    readonly: bool = False
    # Write-only keys are never reported back (the Security whitepaper's AuthorizationKey).
    secret: bool = False


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class Configuration:
    """Known keys with their values; key lookups are case-insensitive like OCPP CiStrings."""

    def __init__(self, *, connectors: int, meter_interval: float, password: str | None) -> None:
        self._keys: dict[str, _Key] = {
            "AllowOfflineTxForUnknownId": _Key("true", "bool"),
            # Fixed behaviour is reported read-only: no cache, offline starts allowed, and
            # unplugging always ends the session.
            "AuthorizationCacheEnabled": _Key("false", "bool", readonly=True),
            "AuthorizationKey": _Key(password or "", "text", secret=True),
            # Remote starts are trusted: no Authorize before a remotely started transaction.
            "AuthorizeRemoteTxRequests": _Key("false", "bool", readonly=True),
            "ChargeProfileMaxStackLevel": _Key("10", "int", readonly=True),
            "ChargingScheduleAllowedChargingRateUnit": _Key("Current,Power", "text", readonly=True),
            "ChargingScheduleMaxPeriods": _Key("24", "int", readonly=True),
            # Clock-aligned sampling is not simulated.
            "ClockAlignedDataInterval": _Key("0", "int", readonly=True),
            "ConnectionTimeOut": _Key("60", "int"),
            "GetConfigurationMaxKeys": _Key("50", "int", readonly=True),
            # Until the BootNotification reply says otherwise.
            "HeartbeatInterval": _Key("300", "int"),
            "LocalAuthListEnabled": _Key("true", "bool"),
            "LocalAuthListMaxLength": _Key("100", "int", readonly=True),
            "LocalAuthorizeOffline": _Key("true", "bool", readonly=True),
            "LocalPreAuthorize": _Key("false", "bool"),
            "MaxChargingProfilesInstalled": _Key("10", "int", readonly=True),
            "MeterValueSampleInterval": _Key(_seconds(meter_interval), "int"),
            "MeterValuesAlignedData": _Key(
                str(Measurand.energy_active_import_register), "measurands"
            ),
            "MeterValuesSampledData": _Key(",".join(SAMPLED_MEASURANDS), "measurands"),
            "NumberOfConnectors": _Key(str(connectors), "int", readonly=True),
            "ReserveConnectorZeroSupported": _Key("false", "bool", readonly=True),
            "ResetRetries": _Key("3", "int"),
            "SendLocalListMaxLength": _Key("100", "int", readonly=True),
            "StopTransactionOnEVSideDisconnect": _Key("true", "bool", readonly=True),
            "StopTransactionOnInvalidId": _Key("true", "bool"),
            "StopTxnAlignedData": _Key("", "measurands"),
            "StopTxnSampledData": _Key(str(Measurand.energy_active_import_register), "measurands"),
            "SupportedFeatureProfiles": _Key(FEATURE_PROFILES, "text", readonly=True),
            "TransactionMessageAttempts": _Key("3", "int"),
            "TransactionMessageRetryInterval": _Key("10", "int"),
            "UnlockConnectorOnEVSideDisconnect": _Key("true", "bool"),
        }
        self._names = {name.lower(): name for name in self._keys}

    def canonical(self, key: str) -> str | None:
        return self._names.get(key.lower())

    def report(self, keys: list[str] | None) -> tuple[list[KeyValue], list[str]]:
        """GetConfiguration: the requested (or all) known keys, and the unknown ones."""
        wanted = keys or list(self._keys)
        known: list[KeyValue] = []
        unknown: list[str] = []
        for key in wanted:
            name = self.canonical(key)
            if name is None:
                unknown.append(key)
                continue
            entry = self._keys[name]
            value = None if entry.secret else entry.value
            known.append(KeyValue(key=name, readonly=entry.readonly, value=value))
        return known, unknown

    def change(self, key: str, value: str) -> ConfigurationStatus:
        """ChangeConfiguration: validate and store the value."""
        name = self.canonical(key)
        if name is None:
            return ConfigurationStatus.not_supported
        entry = self._keys[name]
        if entry.readonly or not _valid(entry.kind, value):
            return ConfigurationStatus.rejected
        entry.value = value.lower() if entry.kind == "bool" else value
        return ConfigurationStatus.accepted

    def set(self, key: str, value: str | float) -> None:
        """Set a value from the charger itself (e.g. the heartbeat interval the CSMS returned)."""
        entry = self._keys[key]
        entry.value = _seconds(value) if entry.kind == "int" else str(value)

    def text(self, key: str) -> str:
        return self._keys[key].value

    def seconds(self, key: str) -> float:
        return float(self._keys[key].value)

    def flag(self, key: str) -> bool:
        return self._keys[key].value == "true"

    def measurands(self, key: str) -> list[str]:
        return [item.strip() for item in self._keys[key].value.split(",") if item.strip()]


def _valid(kind: Kind, value: str) -> bool:
    if kind == "int":
        return value.isdigit()
    if kind == "bool":
        return value.lower() in ("true", "false")
    if kind == "measurands":
        # Only what the simulated meter can measure.
        return all(item.strip() in SAMPLED_MEASURANDS for item in value.split(",") if item.strip())
    return True
