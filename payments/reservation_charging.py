"""The charge itself: starting it once paid, following the charger and the meter, and
settling when the transaction ends.

`ChargingStep` adds to a `SettlingStep` (payments.reservation_settlement):
- `try_start`: RemoteStart only once the card is authorised (or the session is free), the
  charger online and the cable in; otherwise wait in AUTHORISED or AWAITING_PLUG;
- `charger_changed`: the charger back or the cable in starts a waiting charge; an
  unplugged connector while charging starts the clock to settle without a StopTransaction;
  a stop that found the charger offline is sent again the moment it is back; the cable
  out after the charge ends the idle time and settles;
- `transaction_started`: the reservation owns one transaction; one it cannot own (after it
  let go, or a second one) is stopped remotely, once;
- `meter_reading`, `transaction_stopped`: energy counted by payments.energy's rules (late
  samples never counted twice, a restart or an impossible jump flagged on the reservation),
  the tariff's cap stopping the charge, and settlement when the transaction ends (or once
  the cable is out when idle time is charged).
"""

from __future__ import annotations

from datetime import datetime

from payments import energy
from payments.pricing import would_pass_cap
from payments.reservation_messages import RemoteStart
from payments.reservation_model import (
    BEFORE_START,
    CHARGING_STATES,
    MAY_CHARGE,
    STILL_PLUGGED,
    State,
    band_energy,
)
from payments.reservation_settlement import SettlingStep


class ChargingStep(SettlingStep):
    """A step that can start, follow and end the charge."""

    def try_start(self) -> None:
        """Send RemoteStart once the charger is online and the cable is in."""
        if self.r.state not in (State.AUTHORISED, State.AWAITING_PLUG):
            return
        if not self.facts.online:
            self.set(state=State.AUTHORISED)
        elif self.facts.connector_status == "Preparing":
            deadline = max(
                self.r.start_deadline or self.now, self.now + self.policy.start_reply_window
            )
            self.set(
                state=State.START_REQUESTED,
                start_deadline=deadline,
                start_attempts=self.r.start_attempts + 1,
            )
            self.effects.append(RemoteStart(self.r.id_tag))
        else:
            self.set(state=State.AWAITING_PLUG)

    def charger_changed(self, status_at: datetime | None) -> None:
        r = self.r
        if r.state in (State.AUTHORISED, State.AWAITING_PLUG):
            self.try_start()
        elif r.state in CHARGING_STATES:
            unplugged = self.facts.connector_status == "Available"
            if unplugged and r.available_since is None:
                self.set(available_since=status_at or self.now)
            elif not unplugged and r.available_since is not None:
                self.set(available_since=None)
            if r.state is State.STOPPING and r.stop_undelivered and self.facts.online:
                self.request_stop()  # back online: the stop the driver asked for, at once
        elif r.state is State.WAITING_FOR_DISCONNECT and self.facts.connector_status not in (
            STILL_PLUGGED | {None}
        ):
            self.set(unplugged_at=status_at or self.now)
            self.settle()

    def transaction_started(self, transaction_id: int, meter_start_wh: int, at: datetime) -> None:
        r = self.r
        if r.transaction_id == transaction_id:
            return  # the same StartTransaction again
        if r.state not in BEFORE_START or r.hold not in MAY_CHARGE:
            # Started after the reservation let go (cancel, refusal, timeout...), or a second
            # transaction: the tag was answered Invalid, but the charger may charge anyway.
            self.stray(r.charger_id, transaction_id)
            return
        self.set(
            state=State.CHARGING,
            transaction_id=transaction_id,
            meter_start_wh=meter_start_wh,
            meter_register_wh=meter_start_wh,
            started_at=at,
            charging_since=self.now,
            metered_at=at,
        )

    def meter_reading(self, register_wh: int | None, power_w: int | None, at: datetime) -> None:
        r = self.r
        if r.state not in CHARGING_STATES or r.meter_start_wh is None:
            return
        if r.metered_at is not None and at < r.metered_at:
            return  # an older sample, delivered late: applying it would count twice
        # The charger's own sampling interval, as observed; the policy's until there is one.
        interval = self.policy.meter_interval
        if r.metered_at is not None and at > r.metered_at:
            interval = at - r.metered_at
        if register_wh is not None:
            self.count_energy(register_wh, at)
        self.set(power_w=r.power_w if power_w is None else power_w, metered_at=at)
        if r.state is State.CHARGING and would_pass_cap(
            r.tariff, self.r.energy_wh, self.r.power_w, interval.total_seconds()
        ):
            self.request_stop()

    def count_energy(self, register_wh: int, at: datetime) -> None:
        """Count one reading of the register (rules in payments.energy); a restart or a
        reading above what the connector could deliver is flagged on the reservation."""
        r = self.r
        assert r.meter_start_wh is not None
        baseline = r.meter_register_wh
        if baseline is None:
            baseline = r.meter_start_wh + r.energy_wh
        elapsed = at - (r.metered_at or r.started_at or at)
        count = energy.advance(r.energy_wh, baseline, register_wh, elapsed, self.policy.max_power_w)
        self.set(energy_wh=count.energy_wh, meter_register_wh=count.register_wh)
        if r.tariff.bands and count.counted_wh:
            self.set(band_energy_wh=band_energy(r, count.counted_wh, at))
        when = at.isoformat(timespec="seconds")
        if count.restarted:
            self.set(
                meter_restarts=r.meter_restarts + 1,
                meter_warning=f"meter went back from {baseline} to {register_wh} Wh at {when}:"
                f" a restart; the {r.energy_wh} Wh before are kept",
            )
        if count.bounded_wh:
            self.set(
                meter_bounded_wh=r.meter_bounded_wh + count.bounded_wh,
                meter_warning=f"meter gained {register_wh - baseline} Wh in"
                f" {max(0, int(elapsed.total_seconds()))} s at {when}, more than"
                f" {self.policy.max_power_w // 1000} kW can deliver: {count.counted_wh} Wh counted",
            )

    def transaction_stopped(
        self, meter_stop_wh: int, stopped_at: datetime, readings: tuple[tuple[datetime, int], ...]
    ) -> None:
        r = self.r
        if r.state not in CHARGING_STATES or r.meter_start_wh is None:
            return
        # transactionData in time order, except what is older than the last reading applied;
        # then meterStop, the last reading whatever its timestamp: it adds, never erases.
        for at, register_wh in sorted(readings):
            if self.r.metered_at is None or at >= self.r.metered_at:
                self.count_energy(register_wh, at)
                self.set(metered_at=at)
        self.count_energy(meter_stop_wh, stopped_at)
        self.set(stopped_at=stopped_at, metered_at=stopped_at)
        if r.tariff.idle_fee_per_minute and self.facts.connector_status in STILL_PLUGGED:
            self.set(state=State.WAITING_FOR_DISCONNECT)
        else:
            self.set(unplugged_at=stopped_at)
            self.settle()
