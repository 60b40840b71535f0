"""Knobs that make a simulated charger (or its driver) behave in a particular way."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Behaviour:
    """How the simulated charger and its driver react; mutable while the charger runs."""

    reject_remote_start: bool = False
    # Never answer RemoteStartTransaction at all, like a charger with broken firmware.
    ignore_remote_start: bool = False
    # Seconds after an accepted RemoteStart until the driver plugs in; None: only plug_in() does.
    plug_after: float | None = None
    # Seconds after a transaction stops until the driver unplugs; None: only unplug() does.
    unplug_after_stop: float | None = None
    # Energy (Wh) the EV takes in one session: power tapers above 80 % of it and is 0 at it.
    max_energy_wh: int | None = None
    # Accept a remote start before the cable is in and wait ConnectionTimeOut for it.
    accept_remote_start_without_plug: bool = True
    # The meter misreads once per transaction, after meter_anomaly_at_wh went in: its
    # register goes "down", "reset"s to 0 or "jump"s by gigawatt-hours (Connector.meter_anomaly).
    meter_anomaly: str | None = None
    meter_anomaly_at_wh: float = 1000.0
