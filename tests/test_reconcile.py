"""The reconciliation comparison, rule by rule: our books and Stripe's objects in,
findings out (payments.reconcile). Pure: no server, no Stripe."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments import reservation as machine
from payments.pricing import Tariff
from payments.reconcile import (
    CLOCK_SKEW,
    Books,
    Finding,
    Kind,
    OurRefund,
    StripeCharge,
    StripeDispute,
    StripeIntent,
    StripeRefund,
    StripeSession,
    StripeSnapshot,
    compare,
    parse_since,
)
from payments.refunds import RefundRecord
from payments.reservation import Hold, Reservation, State

SINCE = 1_700_000_000
CREATED = SINCE + 2 * CLOCK_SKEW  # well inside the window


def books(state: State = State.CANCELLED, hold: Hold = Hold.NONE, **fields: object) -> Books:
    base = Books(
        reservation_id="res_1",
        state=state,
        hold=hold,
        created_at=CREATED,
        currency="eur",
        hold_amount=250,
        checkout_session_id="cs_1",
        payment_intent_id=None if hold is Hold.NONE else "pi_1",
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def session(status: str = "complete", **fields: object) -> StripeSession:
    return replace(StripeSession("cs_1", status, "pi_1", "res_1", CREATED), **fields)  # type: ignore[arg-type]


def intent(status: str = "requires_capture", **fields: object) -> StripeIntent:
    held = status == "requires_capture"
    base = StripeIntent(
        "pi_1",
        status,
        amount=250,
        amount_capturable=250 if held else 0,
        amount_received=0,
        reservation_id="res_1",
        currency="eur",
        created=CREATED,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def snapshot(**objects: object) -> StripeSnapshot:
    return StripeSnapshot(since=SINCE, **objects)  # type: ignore[arg-type]


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


# --- PaymentIntents: requires_capture


def test_a_hold_for_a_reservation_that_ended_is_a_late_payment_to_release() -> None:
    found = only(compare([books()], snapshot(sessions=[session()], intents=[intent()])))
    assert (found.kind, found.reservation_id, found.stripe_id) == (
        Kind.LATE_PAYMENT,
        "res_1",
        "pi_1",
    )
    assert found.event == machine.PaymentAuthorised("pi_1", 250)
    assert found.key == "reconcile:late_payment:pi_1"
    assert (found.amount, found.currency) == (250, "eur")


@pytest.mark.parametrize("state", [State.EXPIRED, State.START_TIMEOUT, State.PAYMENT_FAILED])
def test_every_ended_state_with_nothing_held_releases_a_late_hold(state: State) -> None:
    found = only(compare([books(state)], snapshot(sessions=[session()], intents=[intent()])))
    assert found.kind is Kind.LATE_PAYMENT


def test_a_hold_whose_reservation_is_live_is_fine() -> None:
    live = books(State.PENDING_PAYMENT)
    assert compare([live], snapshot(sessions=[session()], intents=[intent()])) == []


@pytest.mark.parametrize("hold", [Hold.HELD, Hold.CAPTURING, Hold.RELEASING])
def test_a_hold_our_books_hold_too_is_fine(hold: Hold) -> None:
    r = books(State.CHARGING if hold is Hold.HELD else State.SETTLING, hold)
    assert compare([r], snapshot(sessions=[session()], intents=[intent()])) == []


@pytest.mark.parametrize("hold", [Hold.CAPTURED, Hold.RELEASED, Hold.LOST, Hold.FREE])
def test_a_hold_our_books_say_is_gone_goes_to_review(hold: Hold) -> None:
    found = only(compare([books(State.COMPLETED, hold)], snapshot(intents=[intent()])))
    assert found.kind is Kind.REVIEW
    assert isinstance(found.event, machine.ReviewNeeded)
    assert hold.value in found.event.reason
    assert found.key == f"reconcile:review:pi_1:held-but-{hold.value.lower()}"


def test_the_payment_intent_is_confirmed_by_the_stored_session_alone() -> None:
    # Cancelled before paying: no PaymentIntent stored, only the Checkout Session.
    r = books(payment_intent_id=None)
    found = only(compare([r], snapshot(sessions=[session()], intents=[intent()])))
    assert found.kind is Kind.LATE_PAYMENT
    # Without the session in the listing nothing confirms it: reported, not released.
    found = only(compare([r], snapshot(intents=[intent()])))
    assert (found.kind, found.event) == (Kind.UNMATCHED, None)


# --- PaymentIntents: succeeded


def test_a_capture_we_recorded_is_fine() -> None:
    r = books(State.COMPLETED, Hold.CAPTURED, captured_amount=180)
    assert compare([r], snapshot(intents=[intent("succeeded", amount_received=180)])) == []


def test_our_own_capture_in_flight_is_fine() -> None:
    r = books(State.SETTLING, Hold.CAPTURING, capture_amount=180)
    assert compare([r], snapshot(intents=[intent("succeeded", amount_received=180)])) == []


@pytest.mark.parametrize(
    ("state", "hold", "fields"),
    [
        (State.CHARGING, Hold.HELD, {}),
        (State.CANCELLED, Hold.RELEASING, {}),
        (State.COMPLETED, Hold.CAPTURED, {"captured_amount": 150}),
        (State.SETTLING, Hold.CAPTURING, {"capture_amount": 150}),
        (State.CANCELLED, Hold.NONE, {}),
    ],
)
def test_a_capture_at_stripe_not_recorded_here_is_applied(
    state: State, hold: Hold, fields: dict
) -> None:
    r = books(state, hold, **fields)
    found = only(
        compare(
            [r], snapshot(sessions=[session()], intents=[intent("succeeded", amount_received=200)])
        )
    )
    assert found.kind is Kind.CAPTURED_ELSEWHERE
    assert found.event == machine.CapturedElsewhere(200)
    assert found.key == "reconcile:captured_elsewhere:pi_1:200"


# --- PaymentIntents: canceled


@pytest.mark.parametrize("hold", [Hold.HELD, Hold.CAPTURING])
def test_a_hold_canceled_at_stripe_is_applied(hold: Hold) -> None:
    r = books(State.CHARGING, hold)
    pi = intent("canceled", cancellation_reason="requested_by_customer")
    found = only(compare([r], snapshot(intents=[pi])))
    assert found.kind is Kind.HOLD_CANCELLED
    assert found.event == machine.HoldCancelledElsewhere("requested_by_customer")
    assert found.key == "reconcile:hold_cancelled:pi_1"


@pytest.mark.parametrize("hold", [Hold.NONE, Hold.RELEASING, Hold.RELEASED, Hold.LOST])
def test_a_canceled_payment_intent_with_nothing_held_here_is_fine(hold: Hold) -> None:
    r = books(State.CANCELLED, hold)
    assert compare([r], snapshot(sessions=[session()], intents=[intent("canceled")])) == []


def test_a_live_reservation_is_not_sent_to_review_until_it_has_ended() -> None:
    live = books(State.SETTLING, Hold.CAPTURED, captured_amount=180)
    assert compare([live], snapshot(intents=[intent("canceled")])) == []
    ended = replace(live, state=State.COMPLETED)
    assert only(compare([ended], snapshot(intents=[intent("canceled")]))).kind is Kind.REVIEW


def test_captured_here_but_canceled_at_stripe_goes_to_review() -> None:
    r = books(State.COMPLETED, Hold.CAPTURED, captured_amount=180)
    found = only(compare([r], snapshot(intents=[intent("canceled")])))
    assert found.kind is Kind.REVIEW
    assert found.key == "reconcile:review:pi_1:captured-but-canceled"


@pytest.mark.parametrize("status", ["requires_payment_method", "requires_action", "processing"])
def test_a_payment_still_being_attempted_is_no_finding(status: str) -> None:
    assert compare([books()], snapshot(sessions=[session()], intents=[intent(status)])) == []


# --- Checkout Sessions


def test_a_checkout_expired_at_stripe_expires_a_waiting_reservation() -> None:
    r = books(State.PENDING_PAYMENT)
    found = only(compare([r], snapshot(sessions=[session("expired", payment_intent=None)])))
    assert (found.kind, found.event) == (Kind.CHECKOUT_EXPIRED, machine.CheckoutExpired())
    assert found.key == "reconcile:checkout_expired:cs_1"


def test_an_expired_checkout_of_an_ended_reservation_is_fine() -> None:
    assert compare([books()], snapshot(sessions=[session("expired", payment_intent=None)])) == []


# --- who owns what: metadata never moves money alone


def test_a_hold_for_a_reservation_that_does_not_exist_is_an_orphan_reported_only() -> None:
    pi = intent(reservation_id="res_gone", id="pi_9")
    found = only(compare([books()], snapshot(intents=[pi])))
    assert (found.kind, found.reservation_id, found.event, found.key) == (
        Kind.ORPHAN_HOLD,
        None,
        None,
        None,
    )
    assert "res_gone" in found.detail and found.amount == 250 and found.currency == "eur"


def test_a_capture_for_a_reservation_that_does_not_exist_is_an_orphan_payment() -> None:
    pi = intent("succeeded", amount_received=180, reservation_id="res_gone", id="pi_9")
    found = only(compare([], snapshot(intents=[pi])))
    assert (found.kind, found.amount, found.event) == (Kind.ORPHAN_PAYMENT, 180, None)


def test_metadata_naming_a_reservation_whose_ids_do_not_match_is_unmatched() -> None:
    r = books(State.CANCELLED, Hold.NONE, checkout_session_id="cs_ours")
    pi = intent(id="pi_other")
    other_session = session(id="cs_other", payment_intent="pi_other")
    found = only(compare([r], snapshot(sessions=[other_session], intents=[pi])))
    assert (found.kind, found.reservation_id, found.event) == (Kind.UNMATCHED, "res_1", None)


def test_metadata_naming_one_reservation_while_the_ids_confirm_another_is_unmatched() -> None:
    ours = books(State.CANCELLED, Hold.NONE)
    named = books(State.CANCELLED, Hold.NONE, reservation_id="res_2", checkout_session_id="cs_2")
    pi = intent(reservation_id="res_2")
    found = only(compare([ours, named], snapshot(sessions=[session()], intents=[pi])))
    assert (found.kind, found.reservation_id, found.event) == (Kind.UNMATCHED, "res_2", None)
    assert "res_1" in found.detail


def test_unmatched_objects_with_no_money_at_stake_are_not_reported() -> None:
    r = books(checkout_session_id="cs_ours")
    assert compare([r], snapshot(intents=[intent("canceled", id="pi_x")])) == []


def test_a_payment_intent_that_is_not_ours_is_ignored() -> None:
    foreign = intent(reservation_id=None, id="pi_shop")
    assert compare([books()], snapshot(intents=[foreign])) == []


def test_a_stored_payment_intent_id_confirms_even_without_metadata() -> None:
    r = books(State.CHARGING, Hold.HELD)
    found = only(compare([r], snapshot(intents=[intent("canceled", reservation_id=None)])))
    assert found.kind is Kind.HOLD_CANCELLED


@given(
    status=st.sampled_from(["requires_capture", "succeeded", "canceled", "processing"]),
    state=st.sampled_from(list(State)),
    hold=st.sampled_from(list(Hold)),
    named=st.sampled_from(["res_1", "res_2", None]),
)
def test_no_money_moves_for_a_payment_intent_our_ids_do_not_confirm(
    status: str, state: State, hold: Hold, named: str | None
) -> None:
    r = books(state, hold, payment_intent_id="pi_stored", checkout_session_id="cs_stored")
    pi = intent(status, id="pi_unknown", reservation_id=named, amount_received=100)
    refund = StripeRefund("re_1", "pi_unknown", None, 100, "succeeded")
    dispute = StripeDispute("dp_1", "pi_unknown", None, 100)
    other = session(id="cs_unknown", payment_intent="pi_unknown", reservation_id=named)
    stripe = snapshot(sessions=[other], intents=[pi], refunds=[refund], disputes=[dispute])
    assert [f for f in compare([r], stripe) if f.event is not None] == []


# --- refunds


def captured(**fields: object) -> Books:
    """A payment captured before the window; its refunds and disputes come later."""
    fields.setdefault("created_at", SINCE - 86400)
    return books(State.COMPLETED, Hold.CAPTURED, captured_amount=200, **fields)


def refund(**fields: object) -> StripeRefund:
    return replace(StripeRefund("re_1", "pi_1", "ch_1", 50, "succeeded", None, CREATED), **fields)  # type: ignore[arg-type]


def test_a_refund_we_recorded_is_fine() -> None:
    r = captured(refunds=(OurRefund("rf_1", 50, "succeeded", "re_1"),))
    assert compare([r], snapshot(refunds=[refund()])) == []


def test_our_refund_in_flight_is_recognised_by_its_request_id() -> None:
    r = captured(refunds=(OurRefund("rf_1", 50, "pending", None),))
    assert compare([r], snapshot(refunds=[refund(request_id="rf_1")])) == []


def test_a_refund_made_at_stripe_is_applied() -> None:
    found = only(compare([captured()], snapshot(refunds=[refund()])))
    assert found.kind is Kind.REFUNDED_ELSEWHERE
    assert found.event == machine.RefundedElsewhere("re_1", 50)
    assert (found.key, found.amount) == ("reconcile:refunded_elsewhere:re_1", 50)


@pytest.mark.parametrize("status", ["failed", "canceled"])
def test_a_refund_that_failed_at_stripe_is_ignored(status: str) -> None:
    assert compare([captured()], snapshot(refunds=[refund(status=status)])) == []


@pytest.mark.parametrize("status", ["pending", "requires_action"])
def test_a_refund_under_way_at_stripe_counts(status: str) -> None:
    assert only(compare([captured()], snapshot(refunds=[refund(status=status)]))).kind is (
        Kind.REFUNDED_ELSEWHERE
    )


def test_one_request_refunded_twice_goes_to_review() -> None:
    r = captured(refunds=(OurRefund("rf_1", 50, "succeeded", "re_1"),))
    found = only(compare([r], snapshot(refunds=[refund(), refund(id="re_2", request_id="rf_1")])))
    assert found.kind is Kind.REVIEW and found.stripe_id == "re_2"
    assert "re_1" in found.detail and "re_2" in found.detail


def test_a_refund_failed_here_but_made_at_stripe_goes_to_review() -> None:
    r = captured(refunds=(OurRefund("rf_1", 50, "failed", None),))
    found = only(compare([r], snapshot(refunds=[refund(request_id="rf_1")])))
    assert found.kind is Kind.REVIEW


def test_a_refund_naming_only_its_charge_is_found_through_the_charge() -> None:
    charge = StripeCharge("ch_1", "pi_1")
    found = only(
        compare([captured()], snapshot(charges=[charge], refunds=[refund(payment_intent=None)]))
    )
    assert found.kind is Kind.REFUNDED_ELSEWHERE


def test_a_refund_of_someone_elses_payment_is_ignored() -> None:
    assert compare([captured()], snapshot(refunds=[refund(payment_intent="pi_shop")])) == []


# --- disputes


def test_a_dispute_opened_at_stripe_is_applied_once() -> None:
    dispute = StripeDispute("dp_1", None, "ch_1", 200, "needs_response")
    stripe = snapshot(charges=[StripeCharge("ch_1", "pi_1", disputed=True)], disputes=[dispute])
    found = only(compare([captured()], stripe))
    assert found.kind is Kind.DISPUTE_OPENED
    assert found.event == machine.DisputeOpened("dp_1", 200)
    assert found.key == "reconcile:dispute_opened:dp_1"
    assert compare([captured(disputed_amount=200)], stripe) == []


def test_a_disputed_charge_without_a_dispute_to_see_goes_to_review() -> None:
    stripe = snapshot(charges=[StripeCharge("ch_1", "pi_1", disputed=True)])
    found = only(compare([captured()], stripe))
    assert (found.kind, found.stripe_id) == (Kind.REVIEW, "ch_1")
    assert compare([captured(disputed_amount=200)], stripe) == []


# --- our side


def test_a_hold_here_that_stripe_does_not_list_is_missing_reported_only() -> None:
    found = only(compare([books(State.CHARGING, Hold.HELD)], snapshot()))
    assert (found.kind, found.stripe_id, found.event) == (Kind.MISSING, "pi_1", None)


def test_a_reservation_at_the_edge_of_the_window_is_not_expected_in_it() -> None:
    early = books(State.CHARGING, Hold.HELD, created_at=SINCE + 60)
    assert compare([early], snapshot()) == []


@pytest.mark.parametrize("hold", [Hold.NONE, Hold.RELEASED, Hold.LOST, Hold.FREE])
def test_nothing_held_here_needs_nothing_at_stripe(hold: Hold) -> None:
    assert compare([books(State.COMPLETED, hold)], snapshot()) == []


# --- order and keys


def test_a_reservation_hears_of_the_capture_before_the_refunds() -> None:
    r = books(State.CHARGING, Hold.HELD)
    stripe = snapshot(
        refunds=[refund(id="re_a")], intents=[intent("succeeded", amount_received=200)]
    )
    kinds = [f.kind for f in compare([r], stripe)]
    assert kinds == [Kind.CAPTURED_ELSEWHERE, Kind.REFUNDED_ELSEWHERE]


def test_keys_are_stable_and_distinct() -> None:
    r1 = captured(refunds=())
    r2 = books(
        State.CHARGING,
        Hold.HELD,
        reservation_id="res_2",
        checkout_session_id="cs_2",
        payment_intent_id="pi_2",
    )
    stripe = snapshot(
        intents=[
            intent("succeeded", amount_received=200),
            intent("canceled", id="pi_2", reservation_id="res_2"),
        ],
        refunds=[refund(id="re_a"), refund(id="re_b")],
    )
    first = [f.key for f in compare([r1, r2], stripe)]
    assert first == [f.key for f in compare([r2, r1], stripe)]
    assert len(set(first)) == len(first) == 3


# --- from Stripe's JSON


def _fixtures() -> dict:
    path = Path(__file__).parents[2] / "shared" / "stripe-fixtures.json"
    if not path.exists():
        pytest.skip("no Stripe fixtures")
    return json.loads(path.read_text())["resources"]


def test_stripe_objects_are_read_from_stripes_own_fixtures() -> None:
    fixtures = _fixtures()
    refund_fixture = StripeRefund.of(
        {**fixtures["refund"], "metadata": {"refund_request_id": "rf_1"}}
    )
    assert (refund_fixture.charge, refund_fixture.payment_intent) == (
        "ch_1PgafuB7WZ01zgkWXYmPNZs8",
        None,
    )
    assert (refund_fixture.amount, refund_fixture.request_id) == (100, "rf_1")
    dispute = StripeDispute.of(fixtures["dispute"])
    assert (dispute.amount, dispute.status) == (1000, "warning_needs_response")
    pi = StripeIntent.of({**fixtures["payment_intent"], "metadata": {"reservation_id": "res_1"}})
    assert (pi.status, pi.amount, pi.reservation_id) == ("requires_payment_method", 1099, "res_1")
    cs = StripeSession.of(fixtures["checkout.session"])
    assert (cs.payment_intent, cs.reservation_id) == ("pi_1PgafyB7WZ01zgkWSjxsAJo3", None)
    charge = StripeCharge.of(fixtures["charge"])
    assert (charge.disputed, charge.payment_intent) == (False, None)


def test_expanded_ids_are_read_as_ids() -> None:
    cs = StripeSession.of(
        {"id": "cs_1", "payment_intent": {"id": "pi_1", "object": "payment_intent"}}
    )
    assert cs.payment_intent == "pi_1"


def test_books_are_read_from_a_reservation_and_its_refunds() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    r = Reservation(
        id="res_1",
        charger_id="CP-1",
        connector_id=1,
        id_tag="PAYX",
        tariff=Tariff(currency="eur", price_per_kwh=40),
        hold_amount=250,
        created_at=now,
        payment_deadline=now,
        state=State.COMPLETED,
        hold=Hold.CAPTURED,
        payment_intent_id="pi_1",
        captured_amount=180,
    )
    record = RefundRecord("rf_1", "res_1", 50, "x", "succeeded", "re_1", None, "operator", "")
    b = Books.of(r, [record])
    assert (b.created_at, b.currency, b.captured_amount) == (int(now.timestamp()), "eur", 180)
    assert b.refunds == (OurRefund("rf_1", 50, "succeeded", "re_1"),)


# --- --since


@pytest.mark.parametrize(
    ("text", "back"),
    [
        ("90m", timedelta(minutes=90)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("1d12h", timedelta(hours=36)),
        ("2w", timedelta(weeks=2)),
        ("45s", timedelta(seconds=45)),
    ],
)
def test_since_as_a_duration(text: str, back: timedelta) -> None:
    now = datetime(2030, 1, 10, tzinfo=UTC)
    assert parse_since(text, now) == now - back


def test_since_as_a_time() -> None:
    now = datetime(2030, 1, 10, tzinfo=UTC)
    assert parse_since("2030-01-02T03:04:05Z", now) == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_since("2030-01-02T03:04:05", now) == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_since("2030-01-02T04:04:05+01:00", now) == datetime(
        2030, 1, 2, 3, 4, 5, tzinfo=UTC
    )


@pytest.mark.parametrize("text", ["", "yesterday", "10x", "-5h"])
def test_since_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_since(text, datetime(2030, 1, 10, tzinfo=UTC))


# --- the command's table


def _summary(findings: list[dict], **fields: object) -> dict:
    base = {
        "since": "2030-01-02T00:00:00.000Z",
        "listed": {
            "checkout_sessions": 1,
            "payment_intents": 2,
            "charges": 2,
            "refunds": 1,
            "disputes": None,
        },
        "reservations": 2,
        "counts": {},
        "applied": 0,
        "reported": 0,
        "failed": 0,
        "alreadyApplied": 0,
        "findings": findings,
    }
    return {**base, **fields}


def _finding(kind: str, outcome: str, amount: int | None = 250) -> dict:
    return {
        "kind": kind,
        "reservationId": "res_1" if kind != "orphan_hold" else None,
        "stripeId": "pi_1",
        "amount": amount,
        "currency": "eur",
        "detail": "some detail",
        "action": None,
        "outcome": outcome,
    }


def test_the_table_shows_new_findings_with_money_and_totals() -> None:
    from csms.cli_reconcile import render

    text = render(
        _summary(
            [
                _finding("late_payment", "applied"),
                _finding("orphan_hold", "reported", 1000),
                _finding("refunded_elsewhere", "already_applied"),
            ],
            counts={"late_payment": 1, "orphan_hold": 1},
            applied=1,
            reported=1,
            alreadyApplied=1,
        )
    )
    assert "Listed 1 Checkout Session, 2 PaymentIntents, 2 charges, 1 refund, disputes not" in text
    assert "late_payment  res_1" in text and " 2.50 EUR  applied" in text
    assert "orphan_hold   -" in text and "10.00 EUR  reported" in text
    assert "refunded_elsewhere" not in text.split("\n\n")[1]
    assert text.endswith(
        "late_payment 1, orphan_hold 1: 1 applied, 1 reported, 0 failed,"
        " 1 applied by an earlier run."
    )


def test_the_table_says_when_the_books_agree() -> None:
    from csms.cli_reconcile import render

    text = render(_summary([_finding("refunded_elsewhere", "already_applied")], alreadyApplied=1))
    assert "Our books agree with Stripe: nothing to do." in text
    assert "(1 finding applied by an earlier run.)" in text
