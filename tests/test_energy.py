"""Energy billed when the register goes back, restarts or jumps (payments.energy): the rule
alone, through the reservation state machine, and end to end over a real WebSocket."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import aiohttp
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from csms.app import CentralSystem
from payments.codec import decode_reservation, encode_reservation
from payments.energy import ROUNDING_WH, advance, deliverable_wh
from payments.pricing import Tariff, hold_amount
from payments.reservation import (
    Capture,
    ChargerFacts,
    Event,
    Hold,
    MeterReading,
    Policy,
    ReleaseHold,
    Reservation,
    State,
    TransactionStarted,
    TransactionStopped,
    transition,
)
from tests.conftest import MakeConfig, ocpp_url
from tests.ocpp_client import RawCharger
from tests.payflow import Driver

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
# 0.40/kWh and 1.00 a session, no time or idle fee, up to 60 kWh: a hold of 25.00.
TARIFF = Tariff("eur", price_per_kwh=40, session_fee=100, max_energy_wh=60_000)
POLICY = Policy()
FACTS = ChargerFacts(online=True, connector_status="Charging")


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def charging(meter_start_wh: int, policy: Policy = POLICY) -> Reservation:
    """A paid reservation whose transaction started at T0 with `meter_start_wh`."""
    r = Reservation(
        id="r1",
        charger_id="CP-1",
        connector_id=1,
        id_tag="PAYR1",
        tariff=TARIFF,
        hold_amount=hold_amount(TARIFF),
        created_at=T0,
        payment_deadline=T0 + timedelta(minutes=30),
        state=State.START_REQUESTED,
        hold=Hold.HELD,
        payment_intent_id="pi_1",
        authorised_at=T0,
        start_deadline=T0 + timedelta(minutes=5),
    )
    return feed(r, TransactionStarted(7, meter_start_wh, T0), policy)


def feed(r: Reservation, event: Event, policy: Policy = POLICY) -> Reservation:
    return transition(r, event, FACTS, T0, policy).reservation


def meter(r: Reservation, wh: int, at: datetime, policy: Policy = POLICY) -> Reservation:
    return feed(r, MeterReading(wh, None, at), policy)


def stop(r: Reservation, wh: int, at: datetime, *readings: tuple[datetime, int]) -> Capture:
    """StopTransaction, unplugged: returns the capture it decided."""
    decision = transition(
        r,
        TransactionStopped(wh, at, tuple(readings)),
        ChargerFacts(online=True, connector_status="Available"),
        at,
        POLICY,
    )
    (capture,) = decision.effects
    assert isinstance(capture, Capture), decision.effects
    assert decision.reservation.breakdown is not None
    assert decision.reservation.breakdown.energy_wh == decision.reservation.energy_wh
    return capture


def price_of(energy_wh: int) -> int:
    return round(energy_wh * 40 / 1000) + 100


# --- meterStop never erases metered energy


def test_a_meter_stop_far_below_the_last_sample_keeps_the_metered_energy() -> None:
    r = meter(charging(1_000), 9_000, minutes(30))
    # Some firmwares send meterStop 0 (or a register that restarted) after a session.
    capture = stop(r, 0, minutes(31))
    assert capture == Capture("pi_1", price_of(8_000))


def test_a_meter_stop_a_little_below_the_last_sample_is_rounding() -> None:
    # Samples in kWh with one decimal, meterStop in Wh: 9.0 kWh, then 8,960 Wh.
    r = meter(charging(1_000), 9_000, minutes(30))
    capture = stop(r, 8_960, minutes(31))
    assert capture == Capture("pi_1", price_of(8_000))


def test_a_meter_stop_below_the_start_no_longer_releases_the_hold() -> None:
    r = meter(charging(50_000), 58_000, minutes(30))
    decision = transition(
        r,
        TransactionStopped(20, minutes(31)),
        ChargerFacts(online=True, connector_status="Available"),
        minutes(31),
        POLICY,
    )
    assert ReleaseHold("pi_1") not in decision.effects
    assert decision.effects == (Capture("pi_1", price_of(8_000)),)


# --- a register that restarts


def test_a_register_restart_keeps_the_energy_before_and_counts_on_from_the_new_value() -> None:
    r = charging(1_000)
    r = meter(r, 6_000, minutes(30))  # 5 kWh
    r = meter(r, 200, minutes(35))  # rebooted: the register began again at 0
    assert (r.energy_wh, r.meter_restarts) == (5_000, 1)
    assert r.meter_warning and "restart" in r.meter_warning
    r = meter(r, 3_200, minutes(55))  # 3 kWh more
    assert r.energy_wh == 8_000
    capture = stop(r, 3_500, minutes(60))
    assert capture == Capture("pi_1", price_of(8_300))


def test_a_late_sample_from_before_the_restart_is_not_counted_again() -> None:
    r = charging(1_000)
    r = meter(r, 6_000, minutes(30))
    r = meter(r, 200, minutes(35))
    r = meter(r, 5_000, minutes(20))  # older than the last one applied: delivered late
    r = meter(r, 1_200, minutes(40))
    assert (r.energy_wh, r.meter_register_wh) == (6_000, 1_200)


def test_duplicates_change_nothing() -> None:
    r = charging(1_000)
    for wh, at in [(6_000, 30), (200, 35), (1_200, 40)]:
        once = meter(r, wh, minutes(at))
        assert meter(once, wh, minutes(at)) == once
        r = once
    assert (r.energy_wh, r.meter_restarts) == (6_000, 1)


# --- a register that jumps


def test_a_jump_is_bounded_by_what_the_connector_can_deliver_and_flagged() -> None:
    r = meter(charging(1_000), 3_000, minutes(10))
    r = meter(r, 9_000_000_000, minutes(11))  # 9 GWh in a minute
    allowed = math.ceil(350_000 * (60 + 60) / 3600) + 100  # a minute, plus the tolerance
    assert r.energy_wh == 2_000 + allowed
    assert r.meter_bounded_wh == 9_000_000_000 - 3_000 - allowed
    assert r.meter_warning and "350 kW" in r.meter_warning
    # Counting goes on from the new value.
    r = meter(r, 9_000_000_500, minutes(12))
    capture = stop(r, 9_000_000_600, minutes(13))
    assert capture.amount == price_of(2_000 + allowed + 600) < r.hold_amount


def test_the_bound_follows_the_setting() -> None:
    home = Policy(max_power_w=7_400)
    r = meter(charging(0, home), 7_400, minutes(60), home)  # exactly 7.4 kW for an hour
    assert (r.energy_wh, r.meter_bounded_wh, r.meter_warning) == (7_400, 0, None)
    r = meter(r, 7_400 + 5_000, minutes(61), home)
    limit = math.ceil(7_400 * 120 / 3600) + 100
    assert (r.energy_wh, r.meter_bounded_wh) == (7_400 + limit, 5_000 - limit)


# --- transactionData


def test_transaction_data_is_counted_in_order_before_the_meter_stop() -> None:
    r = meter(charging(1_000), 4_000, minutes(20))
    # Offline since: StopTransaction carries what the MeterValues would have said,
    # including a restart; an old reading (the begin) is skipped.
    capture = stop(
        r,
        2_500,
        minutes(60),
        (minutes(50), 1_000),
        (T0, 1_000),
        (minutes(30), 7_000),
        (minutes(40), 100),
    )
    # 3,000 before the first sample's end, 3,000 to 7,000, restart, 900, then 1,500.
    assert capture == Capture("pi_1", price_of(3_000 + 3_000 + 900 + 1_500))


# --- the rule alone: for random registers, the bounded sum of the increases


@st.composite
def registers(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]]]:
    """A start and (seconds since the previous reading, register) readings with gains,
    roundings, restarts and jumps."""
    start = draw(st.integers(0, 10**9))
    register, readings = start, []
    for _ in range(draw(st.integers(0, 30))):
        seconds = draw(st.integers(0, 3_600))
        kind = draw(st.sampled_from(["gain", "gain", "gain", "rounding", "restart", "jump"]))
        if kind == "gain":
            register += draw(st.integers(0, 60_000))
        elif kind == "rounding":
            register -= draw(st.integers(0, min(ROUNDING_WH, register)))
        elif kind == "restart":
            register = draw(st.integers(0, 5_000))
        else:
            register += draw(st.integers(10**6, 10**12))
        readings.append((seconds, register))
    return start, readings


@settings(max_examples=300, deadline=None)
@given(registers())
def test_billed_energy_is_the_bounded_sum_of_the_increases(
    case: tuple[int, list[tuple[int, int]]],
) -> None:
    start, readings = case
    energy, baseline, increases, bounded = 0, start, 0, 0
    for seconds, wh in readings:
        count = advance(energy, baseline, wh, timedelta(seconds=seconds), 350_000)
        assert 0 <= energy <= count.energy_wh, "never negative, never decreasing"
        # The increase over the register value that was counted from, at most the bound.
        limit = math.ceil(350_000 * (seconds + 60) / 3600) + ROUNDING_WH
        gain = wh - baseline
        assert count.energy_wh - energy == (min(gain, limit) if gain > 0 else 0)
        assert count.bounded_wh == max(0, gain - limit)
        assert count.restarted == (gain < -ROUNDING_WH)
        increases += max(0, gain)
        bounded += count.bounded_wh
        energy, baseline = count.energy_wh, count.register_wh
        assert baseline == (wh if gain > 0 or gain < -ROUNDING_WH else baseline)
        # The same reading again counts nothing.
        again = advance(energy, baseline, wh, timedelta(0), 350_000)
        assert again.energy_wh == energy and not again.restarted
    assert energy == increases - bounded


@st.composite
def gains_and_restarts(draw: st.DrawFn) -> list[int]:
    """Register values that only gain (within the bound for a minute) or restart lower."""
    values = [draw(st.integers(0, 10**6))]
    for _ in range(draw(st.integers(0, 40))):
        previous = values[-1]
        if previous > ROUNDING_WH and draw(st.booleans()):
            values.append(draw(st.integers(0, previous - ROUNDING_WH - 1)))
        else:
            values.append(previous + draw(st.integers(0, 11_000)))
    return values


@settings(max_examples=200, deadline=None)
@given(gains_and_restarts())
def test_without_jumps_it_is_exactly_the_sum_of_the_positive_deltas(values: list[int]) -> None:
    energy, baseline = 0, values[0]
    for wh in values[1:]:
        count = advance(energy, baseline, wh, timedelta(minutes=1), 350_000)
        energy, baseline = count.energy_wh, count.register_wh
    assert energy == sum(max(0, b - a) for a, b in pairwise(values))


# --- the same through the reservation: late and repeated samples, then the stop


@settings(max_examples=200, deadline=None)
@given(registers(), st.lists(st.integers(0, 1000), max_size=10), st.integers(0, 10**6))
def test_the_reservation_bills_the_same_whatever_is_late_or_repeated(
    case: tuple[int, list[tuple[int, int]]], replays: list[int], meter_stop: int
) -> None:
    start, readings = case
    timed, at = [], T0
    for seconds, wh in readings:
        at += timedelta(seconds=max(seconds, 1))
        timed.append((at, wh))
    # Expected: the rule over the readings in order, once each.
    energy, baseline, last = 0, start, T0
    for moment, wh in timed:
        count = advance(energy, baseline, wh, moment - last, POLICY.max_power_w)
        energy, baseline, last = count.energy_wh, count.register_wh, moment
    r = charging(start)
    billed = 0
    for n, (moment, wh) in enumerate(timed):
        r = meter(r, wh, moment)
        assert r.energy_wh >= billed >= 0
        billed = r.energy_wh
        if replays:
            old_at, old_wh = timed[replays[n % len(replays)] % (n + 1)]
            r = meter(r, old_wh, old_at)  # a duplicate, or a late one
            assert r.energy_wh == billed
    assert r.energy_wh == energy
    stopped_at = last + timedelta(minutes=1)
    final = advance(energy, baseline, meter_stop, stopped_at - last, POLICY.max_power_w)
    decision = transition(
        r,
        TransactionStopped(meter_stop, stopped_at),
        ChargerFacts(online=True, connector_status="Available"),
        stopped_at,
        POLICY,
    )
    after = decision.reservation
    assert after.energy_wh == final.energy_wh >= r.energy_wh
    assert after.breakdown is not None
    assert after.breakdown.energy_wh == min(after.energy_wh, TARIFF.max_energy_wh or 0)
    assert all(e.amount <= after.hold_amount for e in decision.effects if isinstance(e, Capture))


def test_deliverable_energy_has_the_stated_tolerance() -> None:
    assert deliverable_wh(350_000, timedelta(0)) == 5_834 + 100
    assert deliverable_wh(350_000, timedelta(hours=1)) == 350_000 + 5_834 + 100
    assert deliverable_wh(11_000, timedelta(seconds=-5)) == deliverable_wh(11_000, timedelta(0))


# --- end to end: a charger that sends exactly these frames over a real WebSocket


class Wire:
    """A raw charger that also answers the calls the central system makes to it."""

    def __init__(self, raw: RawCharger) -> None:
        self.raw = raw
        self.pending: list[list[Any]] = []  # calls from the central system, not yet answered
        self.sent = 0

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.sent += 1
        unique_id = f"e{self.sent}"
        await self.raw.send([2, unique_id, action, payload])
        while True:
            frame = await asyncio.wait_for(self.raw.receive(), 10)
            if frame[0] == 2:
                self.pending.append(frame)
                continue
            assert frame[:2] == [3, unique_id], frame
            return frame[2]

    async def answer(self, action: str, reply: dict[str, Any]) -> dict[str, Any]:
        """Wait for the central system's call `action`, answer it; returns its payload."""
        while True:
            for frame in self.pending:
                if frame[2] == action:
                    self.pending.remove(frame)
                    await self.raw.send([3, frame[1], reply])
                    return frame[3]
            self.pending.append(await asyncio.wait_for(self.raw.receive(), 10))

    async def status(self, status: str) -> None:
        await self.call(
            "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": status}
        )

    async def meter(self, transaction_id: int, at: datetime, *values: dict[str, Any]) -> None:
        await self.call(
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": transaction_id,
                "meterValue": [{"timestamp": stamp(at), "sampledValue": list(values)}],
            },
        )


def stamp(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# 0.40/kWh, 0.50 a session, at most 5 kWh: a hold of 2.50 EUR; the price is the energy.
E2E_TARIFF = {
    "currency": "eur",
    "price_per_kwh": "0.40",
    "session_fee": "0.50",
    "idle_fee_per_minute": "0",
    "idle_fee_max_minutes": 0,
    "max_energy_wh": 5000,
    "max_duration_minutes": 0,
}


async def _paid_session(
    system: CentralSystem, driver: Driver, wire: Wire, meter_start_wh: int, t0: datetime
) -> tuple[str, int]:
    """Boot, pay with 4242, plug in, accept the remote start: (reservation, transaction)."""
    await wire.call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
    await wire.status("Available")
    status, created = await driver.create("CP-1", 1)
    assert status == 200, created
    rid = created["reservationId"]
    await driver.pay(created["checkoutUrl"])
    await driver.wait_for_state(rid, "AwaitingPlug")
    await wire.status("Preparing")
    start = await wire.answer("RemoteStartTransaction", {"status": "Accepted"})
    started = await wire.call(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": start["idTag"],
            "meterStart": meter_start_wh,
            "timestamp": stamp(t0),
        },
    )
    assert started["idTagInfo"]["status"] == "Accepted"
    await wire.status("Charging")
    await driver.wait_for_state(rid, "Charging")
    return rid, started["transactionId"]


async def _finish(
    system: CentralSystem, driver: Driver, wire: Wire, rid: str, stop: dict[str, Any]
) -> tuple[dict, dict, list[str]]:
    """StopTransaction, unplug: the final view, the sandbox's ledger and the audit actions."""
    await wire.call("StopTransaction", {**stop, "reason": "Local"})
    await wire.status("Available")
    done = await driver.wait_for_state(rid, "Completed")
    reservation = await system.reservations.get(rid)
    assert reservation is not None and reservation.payment_intent_id
    assert system.sandbox is not None
    ledger = system.sandbox.ledger()[reservation.payment_intent_id]
    actions = [line["action"] for line in await system.audit.lines(rid)]
    return done, ledger, actions


async def test_a_meter_reset_mid_session_is_captured_before_and_after(
    make_config: MakeConfig,
) -> None:
    config = make_config(tariff=E2E_TARIFF, payments={"minimum_energy_wh": 100})
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    async with (
        CentralSystem(config) as system,
        aiohttp.ClientSession() as http,
        RawCharger.connect(ocpp_url(system), "CP-1") as raw,
    ):
        driver, wire = Driver(system, http), Wire(raw)
        rid, tx = await _paid_session(system, driver, wire, 100_000, t0)
        await wire.meter(tx, t0 + timedelta(minutes=10), {"value": "101.5", "unit": "kWh"})
        # The charger rebooted: its register began again at 0.
        await wire.meter(tx, t0 + timedelta(minutes=20), {"value": "40"})
        view = await driver.status(rid)
        assert view["energyWh"] == 1_500
        assert "restart" in view["meterWarning"]
        await wire.meter(tx, t0 + timedelta(minutes=30), {"value": "1540"})
        assert (await driver.status(rid))["energyWh"] == 3_000
        # Then offline: the rest comes in transactionData, with another restart, Inlet first.
        data = [
            {
                "timestamp": stamp(t0 + timedelta(minutes=35)),
                "sampledValue": [
                    {"value": "2600", "location": "Inlet", "context": "Sample.Periodic"},
                    {"value": "2540", "location": "Outlet", "context": "Sample.Periodic"},
                ],
            },
            {"timestamp": stamp(t0 + timedelta(minutes=38)), "sampledValue": [{"value": "60"}]},
        ]
        stop = {
            "transactionId": tx,
            "meterStop": 560,  # below meterStart and below the last sample
            "timestamp": stamp(t0 + timedelta(minutes=40)),
            "transactionData": data,
        }
        done, ledger, actions = await _finish(system, driver, wire, rid, stop)
    # 1.5 kWh before the first restart, 1.5 + 1.0 kWh before the second, 0.5 kWh after.
    assert done["energyWh"] == done["breakdown"]["energyWh"] == 4_500
    assert done["capturedAmount"] == 180 + 50
    assert (ledger["amount_captured"], ledger["capture_requests"]) == (230, 1)
    assert actions.count("meter register restarted") == 2
    assert "captured" in actions


async def test_a_meter_jump_is_bounded_flagged_and_audited(make_config: MakeConfig) -> None:
    config = make_config(tariff=E2E_TARIFF, payments={"minimum_energy_wh": 100, "max_power_kw": 11})
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    async with (
        CentralSystem(config) as system,
        aiohttp.ClientSession() as http,
        RawCharger.connect(ocpp_url(system), "CP-1") as raw,
    ):
        driver, wire = Driver(system, http), Wire(raw)
        rid, tx = await _paid_session(system, driver, wire, 1_000, t0)
        await wire.meter(tx, t0 + timedelta(minutes=10), {"value": "2000"})
        # 9 GWh thirty seconds later: at 11 kW, 30 s plus the minute of tolerance and 100 Wh.
        await wire.meter(tx, t0 + timedelta(minutes=10, seconds=30), {"value": "9000000000"})
        view = await driver.status(rid)
        allowed = math.ceil(11_000 * 90 / 3600) + 100
        assert view["energyWh"] == 1_000 + allowed
        assert "11 kW" in view["meterWarning"]
        assert view["state"] == "Charging"
        stop = {
            "transactionId": tx,
            "meterStop": 9_000_000_100,
            "timestamp": stamp(t0 + timedelta(minutes=11)),
        }
        done, ledger, actions = await _finish(system, driver, wire, rid, stop)
    energy = 1_000 + allowed + 100
    assert done["breakdown"]["energyWh"] == energy
    price = round(energy * 40 / 1000) + 50
    assert done["capturedAmount"] == ledger["amount_captured"] == price < 250
    assert done["meterWarning"]
    assert actions.count("meter reading bounded") == 1


def test_a_reservation_stored_before_the_meter_fields_decodes_and_counts_on() -> None:
    r = meter(charging(1_000), 4_000, minutes(10))
    stored = orjson.loads(encode_reservation(r))
    for name in ("meter_register_wh", "meter_restarts", "meter_bounded_wh", "meter_warning"):
        del stored[name]
    old = decode_reservation(orjson.dumps(stored).decode())
    assert (old.meter_register_wh, old.meter_restarts, old.meter_warning) == (None, 0, None)
    # The baseline is then meterStart plus the energy so far.
    assert meter(old, 4_500, minutes(20)).energy_wh == 3_500
