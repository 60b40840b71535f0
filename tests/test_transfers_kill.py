"""Kill -9 the server while owners' shares are being transferred, restart it, and count in
the Stripe sandbox: exactly one transfer per session, for the owner's share, net of the
reversals for refunds; nothing lost, nothing twice.

The server, the sandbox and a pass-through between them (bench/faults/stripe_proxy.py) run
apart, the sandbox outliving the server. Sessions are paid while the owner's account is
not ready, so their shares accrue; one is partly refunded meanwhile. Then the owner
completes onboarding and the server is killed:
- `answer_lost`: the first transfer has reached Stripe but its answer is held back by the
  proxy when the server dies (Stripe made it; our books do not know);
- `at_onboarding`: at once after the owner submitted Stripe's onboarding form, while the
  readiness webhook and the transfers it starts are under way;
- `reversal_answer_lost`: the shares transferred, a refund's reversal has reached Stripe
  but its answer is held back when the server dies.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import stripe

from bench.faults.processes import API_KEY, Processes
from bench.faults.stripe_proxy import StripeProxy
from payments.split import SplitRule, after_refunds, split
from simulators.chargepoint import Behaviour, SimulatedCharger
from tests.payflow import VISA
from tests.waiting import eventually

HEADERS = {"X-API-Key": API_KEY}
RULE = {"commission_basis_points": 1500, "fixed_per_kwh": 2}
SESSIONS = 3  # one per connector, at the same time
CARD = {
    "email": "d@example.com",
    "cardNumber": VISA,
    "cardExpiry": "12/34",
    "cardCvc": "123",
    "billingName": "D",
}
pytestmark = pytest.mark.sqlite_only(reason="the books are read from the server's SQLite file")


@pytest.fixture
async def proxy() -> AsyncIterator[StripeProxy]:
    running = StripeProxy()
    yield running
    await running.stop()


@pytest.fixture
def processes(tmp_path: Path, proxy: StripeProxy) -> Iterator[Processes]:
    running = Processes(tmp_path, extra_env={"CSMS_STRIPE_API_BASE": proxy.url})
    running.start_sandbox()
    running.start_server()
    try:
        yield running
    finally:
        running.stop()
        for name in ("server.log", "sandbox.log"):
            print(f"--- last lines of {name} ---", running.tail(name), sep="\n")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _up(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def _api(
    http: aiohttp.ClientSession, processes: Processes, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    async with http.request(
        method, f"{processes.base}{path}", json=body, headers=HEADERS
    ) as response:
        return response.status, await response.json(content_type=None)


async def _state(http: aiohttp.ClientSession, processes: Processes, rid: str) -> dict[str, Any]:
    try:
        status, view = await _api(http, processes, "GET", f"/api/payments/{rid}")
    except aiohttp.ClientError:
        return {}  # restarting
    return view if status == 200 else {}


async def _session(
    http: aiohttp.ClientSession, processes: Processes, sim: SimulatedCharger, connector: int
) -> str:
    status, created = await _api(
        http,
        processes,
        "POST",
        "/api/payments",
        {"chargePointId": "CP-1", "connectorId": connector},
    )
    assert status == 200 and created["status"] == "Redirect", created
    rid = created["reservationId"]
    async with http.post(created["checkoutUrl"], data=CARD, allow_redirects=False) as paid:
        assert paid.status in (302, 303), await paid.text()
    await eventually(lambda: _in(http, processes, rid, "AwaitingPlug"), timeout=30)
    await sim.plug_in(connector)
    await eventually(lambda: _energy_over(http, processes, rid, 1500), timeout=30)
    assert (await _api(http, processes, "POST", f"/api/payments/{rid}/stop"))[0] == 200
    await eventually(lambda: _in(http, processes, rid, "Completed"), timeout=30)
    return rid


async def _in(http: aiohttp.ClientSession, processes: Processes, rid: str, state: str) -> bool:
    return (await _state(http, processes, rid)).get("state") == state


async def _energy_over(
    http: aiohttp.ClientSession, processes: Processes, rid: str, wh: int
) -> bool:
    return (await _state(http, processes, rid)).get("energyWh", 0) > wh


async def _accrued(http: aiohttp.ClientSession, processes: Processes, rid: str) -> bool:
    view = await _state(http, processes, rid)
    return (view.get("ownerShare") or {}).get("transferStatus") == "accrued"


async def _settled(http: aiohttp.ClientSession, processes: Processes, rid: str) -> bool:
    share = (await _state(http, processes, rid)).get("ownerShare") or {}
    return share.get("transferStatus") == "transferred" and share.get("reversedAmount") == (
        share.get("transferredAmount", 0) - share.get("ownerShare", 0)
    )


async def _onboarding_form(http: aiohttp.ClientSession, processes: Processes) -> str:
    status, link = await _api(http, processes, "POST", "/api/owners/owner-1/onboarding-link")
    assert status in (200, 201), link
    return str(link["url"])


@pytest.mark.parametrize("kill_at", ["answer_lost", "at_onboarding", "reversal_answer_lost"])
async def test_killed_while_transferring_pays_each_share_exactly_once(
    processes: Processes, proxy: StripeProxy, http: aiohttp.ClientSession, kill_at: str
) -> None:
    await proxy.start(processes.stripe)
    await eventually(lambda: _up(http, f"{processes.base}/healthz"), timeout=30)
    await eventually(lambda: _up(http, f"{processes.stripe}/_sandbox"), timeout=30)
    sim = SimulatedCharger(
        f"ws://127.0.0.1:{processes.ocpp_port}/ocpp",
        "CP-1",
        connectors=SESSIONS,
        power_kw=11.0,
        meter_interval=0.2,
        speed=300,
        behaviour=Behaviour(unplug_after_stop=0.1),
    )
    await sim.start()
    try:
        await sim.wait_online(30)
        owner = {"id": "owner-1", "name": "Harbour", "email": "o@h.example", "country": "DE"}
        status, created = await _api(http, processes, "POST", "/api/owners", owner)
        assert status == 201, created
        site = {"id": "harbour", "name": "Harbour", "timeZone": "Europe/Berlin"}
        site |= {"ownerId": "owner-1", "split": RULE}
        assert (await _api(http, processes, "POST", "/api/sites", site))[0] == 201
        status, joined = await _api(
            http, processes, "PATCH", "/api/chargers/CP-1", {"siteId": "harbour"}
        )
        assert status == 200, joined

        rids = list(
            await asyncio.gather(
                *(_session(http, processes, sim, n) for n in range(1, SESSIONS + 1))
            )
        )
        for rid in rids:
            await eventually(lambda rid=rid: _accrued(http, processes, rid), timeout=30)
        # A refund while the share is accrued: the share shrinks before it is ever sent.
        status, refund = await _api(
            http,
            processes,
            "POST",
            f"/api/payments/{rids[0]}/refunds",
            {"amount": 100, "reason": "x"},
        )
        assert status == 201, refund
        await eventually(lambda: _refunded(http, processes, rids[0]), timeout=30)

        form = await _onboarding_form(http, processes)
        held = proxy.hold("POST", "/v1/transfers") if kill_at == "answer_lost" else None
        async with http.post(form, data={"action": "submit"}, allow_redirects=False) as page:
            assert page.status == 303, await page.text()
        if kill_at == "reversal_answer_lost":
            # Every share transferred; then a refund whose reversal's answer is lost.
            for rid in rids:
                await eventually(lambda rid=rid: _settled(http, processes, rid), timeout=60)
            transfer_id = (await _state(http, processes, rids[1]))["ownerShare"]["transferId"]
            held = proxy.hold("POST", f"/v1/transfers/{transfer_id}/reversals")
            body = {"amount": 100, "reason": "a short session"}
            path = f"/api/payments/{rids[1]}/refunds"
            assert (await _api(http, processes, "POST", path, body))[0] == 201
        if held is not None:
            await asyncio.wait_for(held.reached.wait(), 30)  # made at Stripe, answer held
        processes.kill_server()
        if held is not None:
            held.release()
        processes.start_server()
        await eventually(lambda: _up(http, f"{processes.base}/healthz"), timeout=30)
        for rid in rids:
            await eventually(lambda rid=rid: _settled(http, processes, rid), timeout=60)
    finally:
        await sim.stop()

    views = [await _state(http, processes, rid) for rid in rids]
    processes.kill_server()  # nothing moves any more: the counts below are final
    assert processes.kills == 2
    await _check_books_against_stripe(processes, views)
    if kill_at == "reversal_answer_lost":
        refunded = views[1]
        assert refunded["refundedAmount"] == 100 and refunded["ownerShare"]["reversedAmount"] > 0


async def _refunded(http: aiohttp.ClientSession, processes: Processes, rid: str) -> bool:
    return (await _state(http, processes, rid)).get("refundedAmount") == 100


def _billed(view: dict[str, Any]) -> int:
    """The energy paid for: what was metered, up to the tariff's maximum (the split's per
    kWh amount counts it)."""
    cap = view["maxEnergyWh"]
    return view["energyWh"] if cap is None else min(view["energyWh"], cap)


async def _check_books_against_stripe(processes: Processes, views: list[dict[str, Any]]) -> None:
    http = stripe.AIOHTTPClient(timeout=10)
    sdk = stripe.StripeClient(
        "sk_test_fault_runs",
        base_addresses={"api": processes.stripe},
        http_client=http,
        max_network_retries=0,
    )
    try:
        everything = await sdk.v1.transfers.list_async({"limit": 100})
        assert len(everything.data) == SESSIONS, [t.transfer_group for t in everything.data]
        for view in views:
            rid, share = view["reservationId"], view["ownerShare"]
            expected = after_refunds(
                split(SplitRule(**RULE), view["capturedAmount"], _billed(view)),
                view["refundedAmount"],
            )
            assert expected.owner > 0
            assert share["ownerShare"] == expected.owner
            assert share["ownerShare"] + share["operatorShare"] == (
                view["capturedAmount"] - view["refundedAmount"]
            )
            (transfer,) = (await sdk.v1.transfers.list_async({"transfer_group": rid})).data
            assert transfer.id == share["transferId"]
            assert transfer.amount - transfer.amount_reversed == expected.owner
            assert transfer.amount == share["transferredAmount"]
            assert transfer.amount_reversed == share["reversedAmount"]
            reversals = (await sdk.v1.transfers.reversals.list_async(transfer.id)).data
            assert [r.amount for r in reversals] == (
                [share["reversedAmount"]] if share["reversedAmount"] else []
            )
    finally:
        await http.close_async()
    books = sqlite3.connect(processes.database)
    try:
        pending = books.execute("SELECT COUNT(*) FROM effects WHERE status = 'pending'").fetchone()
        rows = books.execute(
            "SELECT reservation_id, kind, amount, status FROM transfers ORDER BY reservation_id"
        ).fetchall()
    finally:
        books.close()
    assert pending == (0,)
    expected_rows = [(view["reservationId"], "transfer", "succeeded") for view in views]
    expected_rows += [
        (view["reservationId"], "reversal", "succeeded")
        for view in views
        if view["ownerShare"]["reversedAmount"]
    ]
    assert sorted((r, k, s) for r, k, _, s in rows) == sorted(expected_rows)
