"""Property tests of the reservation state machine against a model of Stripe and a charger.

Hypothesis drives random runs: the driver pays or not, cancels, stops; the charger
goes on- and offline, plugs in, starts, meters, stops; webhooks and effect results come
late, twice or out of order; time jumps. A crash and restart is the same as effect
results being delivered again (the machine is pure and the outbox persists its
decisions with the state), so duplicated results model it. After the run everything
outstanding is carried out and time runs out, then the money invariants are checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments.energy import deliverable_wh
from payments.pricing import Tariff, hold_amount
from payments.reservation import (
    TERMINAL,
    Cancel,
    Capture,
    Captured,
    ChargerChanged,
    ChargerFacts,
    CheckoutCreated,
    CheckoutExpired,
    CheckoutUnavailable,
    CreateCheckout,
    Effect,
    Event,
    ExpireCheckout,
    Hold,
    HoldCancelledElsewhere,
    HoldReleased,
    MeterReading,
    PaymentAuthorised,
    PaymentCompleted,
    PaymentNotAuthorised,
    Policy,
    Refund,
    RefundFailed,
    RefundRequested,
    RefundSucceeded,
    ReleaseHold,
    RemoteStart,
    RemoteStartAnswered,
    RemoteStartUnanswered,
    RemoteStartUndelivered,
    RemoteStop,
    RemoteStopAnswered,
    RemoteStopUndelivered,
    Reservation,
    State,
    StopRequested,
    Tick,
    TransactionStarted,
    TransactionStopped,
    VerifyPayment,
    transition,
)

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
TARIFF = Tariff(
    "eur",
    price_per_kwh=40,
    session_fee=100,
    idle_fee_per_minute=10,
    idle_grace_minutes=5,
    idle_fee_max_minutes=30,
    max_energy_wh=20_000,
    max_duration_minutes=240,
)
POLICY = Policy()


@dataclass
class World:
    """Stripe's and the charger's side of the story, and everything the machine asked for."""

    reservation: Reservation
    now: datetime = T0
    online: bool = True
    status: str = "Available"
    pi_status: str = "none"  # none, requires_payment_method, requires_capture, succeeded, canceled
    captured: int = 0
    refunded: int = 0
    outstanding: list[Effect] = field(default_factory=list)
    delivered: list[Event] = field(default_factory=list)
    emitted: list[Effect] = field(default_factory=list)
    transaction_running: bool = False
    start_sent_while_unauthorised: bool = False
    meter_wh: int = 1000
    stray_running: int | None = None  # a transaction started with the tag after it ended
    strays: int = 0  # how many: the central system numbers transactions, never twice
    # A look-up asked for before the card was paid, still outstanding: its answer may be
    # "not paid yet" even once it is. One asked for after the payment sees it.
    stale_verify_possible: bool = False

    def facts(self) -> ChargerFacts:
        return ChargerFacts(self.online, self.status if self.online else None)

    def feed(self, event: Event) -> None:
        decision = transition(self.reservation, event, self.facts(), self.now, POLICY)
        # Energy never goes down, whatever the meter says (resets, a low meterStop).
        assert decision.reservation.energy_wh >= self.reservation.energy_wh >= 0
        for effect in decision.effects:
            if isinstance(effect, RemoteStart) and self.pi_status != "requires_capture":
                self.start_sent_while_unauthorised = True
            if isinstance(effect, VerifyPayment):
                self.stale_verify_possible = self.pi_status == "none"
            self.emitted.append(effect)
            self.outstanding.append(effect)
        self.reservation = decision.reservation
        self.delivered.append(event)

    def carry_out(self, effect: Effect, outcome: int) -> None:
        """What Stripe or the charger does with an effect, and the event it reports back."""
        r = self.reservation
        match effect:
            case CreateCheckout():
                if outcome % 5 == 0:
                    self.feed(CheckoutUnavailable("connection refused"))
                else:
                    self.feed(CheckoutCreated(f"cs_{r.id}", "https://pay.example/cs"))
            case ExpireCheckout():
                if self.pi_status == "none":
                    self.pi_status = "expired"
                    self.feed(CheckoutExpired())
                elif self.pi_status == "requires_capture":
                    self.feed(PaymentCompleted())  # paid first: the session is complete
            case VerifyPayment():
                if self.pi_status == "requires_capture":
                    self.feed(PaymentAuthorised(f"pi_{r.id}", r.hold_amount))
                else:
                    self.feed(PaymentNotAuthorised(None, self.pi_status))
            case RemoteStart():
                if not self.online:
                    self.feed(RemoteStartUndelivered())
                elif outcome % 4 == 0:
                    self.feed(RemoteStartAnswered(False))
                elif outcome % 4 == 1:
                    self.feed(RemoteStartUnanswered())
                else:
                    self.feed(RemoteStartAnswered(True))
                    self.transaction_running = True
                    self.status = "Charging"
                    self.feed(TransactionStarted(7, self.meter_wh, self.now))
            case RemoteStop(transaction_id, charger_id) if charger_id is not None:
                # A stray transaction: the effect waits for the charger (retried).
                if not self.online:
                    self.outstanding.append(effect)
                elif transaction_id == self.stray_running:
                    self.stray_running = None
                    self.feed(RemoteStopAnswered(True))
            case RemoteStop():
                if not self.online:
                    self.feed(RemoteStopUndelivered())
                    return
                self.feed(RemoteStopAnswered(True))
                if self.transaction_running:
                    self.stop_transaction()
            case Capture(_, amount):
                # Stripe: a second capture with the same idempotency key replays the first.
                if self.pi_status == "requires_capture":
                    self.pi_status, self.captured = "succeeded", amount
                if self.pi_status == "succeeded":
                    self.feed(Captured(self.captured))
            case ReleaseHold():
                if self.pi_status in ("requires_capture", "canceled"):
                    self.pi_status = "canceled"
                    self.feed(HoldReleased())
            case Refund(_, refund_id, amount):
                # Stripe refunds at most what is left of the charge.
                if outcome % 7 and self.refunded + amount <= self.captured:
                    self.refunded += amount
                    self.feed(RefundSucceeded(refund_id, amount, f"re_{refund_id}"))
                else:
                    self.feed(RefundFailed(refund_id, amount, "declined"))

    def stop_transaction(self) -> None:
        self.transaction_running = False
        self.status = "Finishing"
        self.feed(TransactionStopped(self.meter_wh, self.now))


actions = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "carry_out",
                "carry_out",
                "carry_out",
                "duplicate",
                "pay",
                "pay_silently",
                "stale_verify",
                "start_anyway",
                "decline",
                "completed",
                "expire",
                "cancel",
                "stop",
                "plug",
                "unplug",
                "offline",
                "online",
                "meter",
                "meter_reset",
                "local_stop",
                "cancelled_elsewhere",
                "refund",
                "wait",
            ]
        ),
        st.integers(min_value=0, max_value=1000),
    ),
    max_size=60,
)


def _act(world: World, action: str, n: int) -> None:
    r = world.reservation
    match action:
        case "carry_out" if world.outstanding:
            world.carry_out(world.outstanding.pop(n % len(world.outstanding)), n)
        case "duplicate" if world.delivered:
            world.feed(world.delivered[n % len(world.delivered)])
        case "pay" if world.pi_status == "none" and r.checkout_session_id:
            world.pi_status = "requires_capture"
            world.feed(PaymentCompleted())
        case "pay_silently" if world.pi_status == "none" and r.checkout_session_id:
            world.pi_status = "requires_capture"  # no webhook, no return to the success page
        case "stale_verify" if (
            world.stale_verify_possible
            and VerifyPayment(r.checkout_session_id or "") in world.outstanding
        ):
            # The look-up happened before the payment: its answer is "not paid yet".
            world.outstanding.remove(VerifyPayment(r.checkout_session_id or ""))
            world.feed(PaymentNotAuthorised(None, "requires_payment_method"))
        case "start_anyway" if r.state in TERMINAL and world.online and world.stray_running is None:
            world.strays += 1
            world.stray_running = 90 + world.strays
            world.feed(TransactionStarted(world.stray_running, world.meter_wh, world.now))
        case "decline" if world.pi_status == "none" and r.checkout_session_id:
            world.pi_status = "requires_payment_method"
            world.feed(PaymentCompleted())
            world.pi_status = "none"
        case "completed":
            world.feed(PaymentCompleted())
        case "expire" if world.pi_status == "none":
            world.pi_status = "expired"
            world.feed(CheckoutExpired())
        case "cancel":
            world.feed(Cancel("driver"))
        case "stop":
            world.feed(StopRequested("driver"))
        case "plug" if world.online and world.status == "Available":
            world.status = "Preparing"
            world.feed(ChargerChanged(world.now))
        case "unplug" if world.online and not world.transaction_running:
            world.status = "Available"
            world.feed(ChargerChanged(world.now))
        case "offline":
            world.online = False
            world.feed(ChargerChanged())
        case "online":
            world.online = True
            world.feed(ChargerChanged())
        case "meter" if world.transaction_running:
            world.meter_wh += n * 10
            world.feed(MeterReading(world.meter_wh, 11_000, world.now))
        case "meter_reset" if world.transaction_running:
            world.meter_wh = n  # the charger rebooted: its register began again near 0
            world.feed(MeterReading(world.meter_wh, 11_000, world.now))
        case "local_stop" if world.transaction_running and world.online:
            world.stop_transaction()
        case "cancelled_elsewhere" if world.pi_status == "requires_capture" and n % 3 == 0:
            world.pi_status = "canceled"
            world.feed(HoldCancelledElsewhere("expired"))
        case "refund":
            world.feed(RefundRequested(f"rf{n}", n % 300 + 1))
        case "wait":
            world.now += timedelta(seconds=n * 7)
            world.feed(Tick())


def _drain(world: World) -> None:
    """Let everything outstanding happen and time run out: the reservation must end."""
    for _ in range(200):
        if world.outstanding:
            effect = world.outstanding.pop(0)
            world.carry_out(effect, 2)
            if effect in world.outstanding and not world.online:  # it waits for the charger
                world.online = True
                world.feed(ChargerChanged(world.now))
            continue
        if world.transaction_running:
            world.stop_transaction()
            continue
        settled = world.reservation.hold not in (Hold.CAPTURING, Hold.RELEASING)
        if world.reservation.state in TERMINAL and settled:
            return
        world.online, world.status = True, "Available"
        world.now += timedelta(days=1)
        world.feed(ChargerChanged(world.now))
    raise AssertionError(f"never ended: {world.reservation}")


def _new_world() -> World:
    reservation = Reservation(
        id="r1",
        charger_id="CP-1",
        connector_id=1,
        id_tag="PAY-R1",
        tariff=TARIFF,
        hold_amount=hold_amount(TARIFF),
        created_at=T0,
        payment_deadline=T0 + timedelta(minutes=30),
    )
    world = World(reservation)
    world.outstanding.append(CreateCheckout())
    world.emitted.append(CreateCheckout())
    return world


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions, st.lists(st.integers(min_value=-5, max_value=400), max_size=6))
def test_money_invariants(steps: list[tuple[str, int]], refunds: list[int]) -> None:
    world = _new_world()
    for action, n in steps:
        _act(world, action, n)
    _drain(world)
    # Operators refund afterwards, some requests repeated, in any order with the results.
    for n, amount in enumerate(refunds):
        world.feed(RefundRequested(f"late{n}", amount))
        if n % 2 and world.outstanding:
            world.carry_out(world.outstanding.pop(0), n)
    while world.outstanding:
        world.carry_out(world.outstanding.pop(), 1)

    r = world.reservation
    captures = [e for e in world.emitted if isinstance(e, Capture)]
    releases = [e for e in world.emitted if isinstance(e, ReleaseHold)]
    assert not world.start_sent_while_unauthorised, "RemoteStart before requires_capture"
    assert world.stray_running is None, f"charging for free after {r.state}: {world.emitted}"
    assert len(captures) + len(releases) <= 1, f"capture and release: {world.emitted}"
    assert all(c.amount <= r.hold_amount for c in captures)
    assert r.captured_amount <= r.hold_amount
    if world.pi_status in ("requires_capture",):
        raise AssertionError(f"hold left behind in {r.state}: {world.emitted}")
    if world.pi_status == "succeeded":
        assert r.state is State.COMPLETED and r.hold is Hold.CAPTURED
        assert r.captured_amount == captures[0].amount
    if r.hold is Hold.RELEASED:
        assert len(releases) == 1
    assert r.state in TERMINAL
    refunds = [e for e in world.emitted if isinstance(e, Refund)]
    assert sum(e.amount for e in refunds) <= r.captured_amount
    assert r.refunded_amount == world.refunded <= r.captured_amount
    assert not refunds or r.hold is Hold.CAPTURED


def _charging_world() -> World:
    world = _new_world()
    world.carry_out(world.outstanding.pop(), 1)  # checkout created
    world.pi_status = "requires_capture"
    world.feed(PaymentCompleted())
    world.carry_out(world.outstanding.pop(), 1)  # verified -> awaiting plug
    world.status = "Preparing"
    world.feed(ChargerChanged(world.now))
    world.carry_out(world.outstanding.pop(), 2)  # remote start accepted, transaction started
    assert world.reservation.state is State.CHARGING
    return world


def test_happy_path_captures_the_price() -> None:
    world = _charging_world()
    world.now += timedelta(minutes=30)
    world.meter_wh += 5_500
    world.feed(MeterReading(world.meter_wh, 11_000, world.now))
    world.stop_transaction()
    assert world.reservation.state is State.WAITING_FOR_DISCONNECT  # idle fee tariff
    world.now += timedelta(minutes=8)
    world.status = "Available"
    world.feed(ChargerChanged(world.now))
    (capture,) = world.outstanding
    # 5.5 kWh x 0.40 + 1.00 session fee + 3 idle minutes after the 5 minute grace x 0.10
    assert capture == Capture("pi_r1", 220 + 100 + 30)
    world.carry_out(world.outstanding.pop(), 0)
    assert world.reservation.state is State.COMPLETED
    assert world.reservation.captured_amount == 350


def test_stops_before_the_energy_cap() -> None:
    world = _charging_world()
    for _ in range(3):  # 18 kWh in three minutes (more in one would be a bogus meter)
        world.now += timedelta(seconds=60)
        world.meter_wh += 6_000
        world.feed(MeterReading(world.meter_wh, 11_000, world.now))
        assert world.reservation.state is State.CHARGING
    # 19.9 kWh in, 11 kW: the next sample a minute later would pass the 20 kWh cap.
    world.now += timedelta(seconds=60)
    world.meter_wh += 1_900
    world.feed(MeterReading(world.meter_wh, 11_000, world.now))
    assert world.reservation.state is State.STOPPING
    assert world.outstanding == [RemoteStop(7)]


def test_zero_energy_releases() -> None:
    world = _charging_world()
    world.stop_transaction()
    world.status = "Available"
    world.feed(ChargerChanged(world.now))
    assert world.outstanding == [ReleaseHold("pi_r1")]


def test_no_stop_transaction_settles_from_the_last_meter_value() -> None:
    world = _charging_world()
    world.now += timedelta(minutes=20)
    world.meter_wh += 3_000
    world.feed(MeterReading(world.meter_wh, 11_000, world.now))
    world.status = "Available"  # unplugged, StopTransaction lost
    world.feed(ChargerChanged(world.now))
    world.now += POLICY.settle_after_available
    world.feed(Tick())
    assert world.outstanding == [Capture("pi_r1", 120 + 100)]


def test_late_payment_after_cancel_is_released() -> None:
    world = _new_world()
    world.carry_out(world.outstanding.pop(), 1)
    world.feed(Cancel("driver"))
    assert world.reservation.state is State.CANCELLED
    assert world.outstanding == [ExpireCheckout("cs_r1")]
    world.outstanding.clear()
    world.pi_status = "requires_capture"  # paid in another tab just before the cancel
    world.feed(PaymentCompleted())
    world.carry_out(world.outstanding.pop(), 0)
    assert world.outstanding == [ReleaseHold("pi_r1")]
    assert world.reservation.state is State.CANCELLED


def test_a_repeated_remote_start_refused_is_not_the_end() -> None:
    world = _new_world()
    world.carry_out(world.outstanding.pop(), 1)
    world.pi_status = "requires_capture"
    world.feed(PaymentCompleted())
    world.carry_out(world.outstanding.pop(), 1)
    world.status = "Preparing"
    world.feed(ChargerChanged(world.now))
    # The first RemoteStart reached the charger, but its answer was lost in a crash.
    world.outstanding.clear()
    world.feed(RemoteStartUndelivered())
    assert world.reservation.state is State.START_REQUESTED  # asked again at once
    world.feed(RemoteStartAnswered(False))  # "already starting"
    assert world.reservation.state is State.START_REQUESTED
    world.feed(TransactionStarted(7, 1000, world.now))
    assert world.reservation.state is State.CHARGING


def test_the_maximum_session_duration_stops_the_charge() -> None:
    world = _charging_world()
    world.now += timedelta(minutes=TARIFF.max_duration_minutes or 0, seconds=1)
    world.feed(Tick())
    assert world.reservation.state is State.STOPPING
    assert world.outstanding == [RemoteStop(7)]


def test_the_capture_deadline_settles_before_the_authorisation_lapses() -> None:
    world = _charging_world()
    world.meter_wh += 4_000
    world.feed(MeterReading(world.meter_wh, 11_000, world.now))
    world.now += timedelta(days=0, minutes=5)
    world.feed(Tick())
    assert world.reservation.state is State.CHARGING  # nothing due yet
    # The charger never reports a stop; a card hold lapses after 7 days.
    world.now = world.reservation.authorised_at + POLICY.capture_deadline  # type: ignore[operator]
    world.feed(Tick())
    assert world.reservation.state is State.SETTLING
    assert RemoteStop(7) in world.outstanding
    assert Capture("pi_r1", 160 + 100) in world.outstanding


meter_steps = st.lists(
    st.tuples(
        st.sampled_from(["gain", "gain", "gain", "reset", "jump", "wait", "duplicate"]),
        st.integers(min_value=0, max_value=1000),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(meter_steps)
def test_the_capture_is_the_price_of_the_meters_bounded_increases(
    steps: list[tuple[str, int]],
) -> None:
    """Registers that restart near 0 and jump by gigawatt-hours, with duplicated readings:
    the energy billed is the sum of the register's increases (each at most what the
    connector could deliver since the previous reading), never negative, never decreasing
    (World.feed checks that at every event), and the capture its price within the hold."""
    world = _charging_world()
    expected, last_at = 0, world.now
    for action, n in steps:
        before = world.meter_wh
        match action:
            case "gain":  # at most 10 kWh a minute: within the bound
                world.now += timedelta(seconds=60)
                world.meter_wh += n * 10
            case "reset" if world.meter_wh > n + 100:
                world.meter_wh = n  # the charger rebooted: the register began again near 0
            case "jump":
                world.meter_wh += 10**9
            case "wait":
                world.now += timedelta(seconds=n)
                continue
            case "duplicate":
                world.feed(MeterReading(world.meter_wh, 11_000, last_at))
                continue
            case _:
                continue
        gain = world.meter_wh - before
        if gain > 0:
            expected += min(gain, deliverable_wh(POLICY.max_power_w, world.now - last_at))
        last_at = world.now
        world.feed(MeterReading(world.meter_wh, 11_000, world.now))
        assert world.reservation.energy_wh == expected
    world.stop_transaction()  # meterStop: the same register once more, changes nothing
    world.status = "Available"
    world.feed(ChargerChanged(world.now))
    while world.outstanding:
        world.carry_out(world.outstanding.pop(0), 2)
    r = world.reservation
    assert r.energy_wh == expected and r.breakdown is not None
    assert r.breakdown.energy_wh == min(expected, TARIFF.max_energy_wh or 0)
    assert r.state is State.COMPLETED
    if r.hold is Hold.CAPTURED:
        assert r.captured_amount == min(r.breakdown.total, r.hold_amount) == world.captured
    else:
        assert r.hold is Hold.RELEASED and expected < POLICY.minimum_energy_wh
