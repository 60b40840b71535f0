"""A charger that disconnects while a command is in flight: `Offline`, never a timeout.

When the CALL had already been sent, the outcome on the charger is unknown, and the result
says so; the payments side still treats such a command as unanswered, not undelivered.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from csms.app import CentralSystem
from csms.ocpp16.commands import (
    CommandResult,
    Offline,
    TimedOut,
    decode_result,
    encode_result,
)
from csms.ocpp16.control import RemoteControl
from tests import test_cluster
from tests.backends import BACKEND
from tests.conftest import API_HEADERS, ocpp_url
from tests.ocpp_client import RawCharger
from tests.waiting import eventually

BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}
MAYBE_APPLIED = "it may or may not have been applied"

# The two-node fixtures, for the relayed case (PostgreSQL only, as every cluster test).
sandbox = test_cluster.sandbox
nodes = test_cluster.nodes


async def _post(system: CentralSystem, charger_id: str, operation: str, body: Any) -> tuple:
    url = f"http://127.0.0.1:{system.http.port}/api/chargers/{charger_id}/commands/{operation}"
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json=body, headers=API_HEADERS) as response,
    ):
        return response.status, await response.json()


async def _dropped_after_the_call(raw: RawCharger, action: str) -> None:
    """The charger's side: it gets the CALL, then its connection goes away unanswered."""
    call = await raw.receive()
    assert call[0] == 2 and call[2] == action, call
    await raw.connection.close()


async def test_a_connection_dropped_after_the_call_is_offline_and_says_so(
    csms: CentralSystem,
) -> None:
    async with RawCharger.connect(ocpp_url(csms), "CP-1") as raw:
        await raw.call("BootNotification", BOOT)
        sending = asyncio.create_task(csms.commands.send("CP-1", "Reset", {"type": "Soft"}))
        await _dropped_after_the_call(raw, "Reset")
        result = await sending
    assert result == Offline(sent=True)
    assert MAYBE_APPLIED in result.description


async def test_a_command_waiting_behind_it_was_never_sent(csms: CentralSystem) -> None:
    async with RawCharger.connect(ocpp_url(csms), "CP-1") as raw:
        await raw.call("BootNotification", BOOT)
        first = asyncio.create_task(csms.commands.send("CP-1", "ClearCache", {}))
        call = await raw.receive()
        second = asyncio.create_task(csms.commands.send("CP-1", "GetLocalListVersion", {}))
        assert call[2] == "ClearCache"
        await raw.connection.close()
        results = await asyncio.gather(first, second)
    assert results == [Offline(sent=True), Offline(sent=False)]
    assert results[1].description == "not connected: nothing was sent"


async def test_the_api_answers_offline_not_timeout(csms: CentralSystem) -> None:
    async with RawCharger.connect(ocpp_url(csms), "CP-1") as raw:
        await raw.call("BootNotification", BOOT)
        sending = asyncio.create_task(_post(csms, "CP-1", "Reset", {"type": "Hard"}))
        await _dropped_after_the_call(raw, "Reset")
        status, body = await sending
    assert status == 404, body
    assert body["error"]["code"] == "offline"
    assert MAYBE_APPLIED in body["error"]["message"]
    # Not connected at all: nothing was sent, and the message says only that.
    status, body = await _post(csms, "CP-1", "Reset", {"type": "Hard"})
    assert (status, body["error"]["code"]) == (404, "offline")
    assert MAYBE_APPLIED not in body["error"]["message"]


async def test_payments_treat_a_start_that_may_have_reached_the_charger_as_unanswered(
    csms: CentralSystem,
) -> None:
    """A RemoteStart lost with its connection may have begun a charge: not "Offline" (which
    lets the payments side give up on it) but "Timeout" (which waits for the charger)."""
    control = RemoteControl(csms.commands, csms.view, csms.chargers, csms.transactions, csms.sites)
    async with RawCharger.connect(ocpp_url(csms), "CP-1") as raw:
        await raw.call("BootNotification", BOOT)
        starting = asyncio.create_task(control.remote_start("CP-1", 1, "TAG-1"))
        await _dropped_after_the_call(raw, "RemoteStartTransaction")
        assert await starting == "Timeout"
    assert await control.remote_start("CP-1", 1, "TAG-1") == "Offline"


@pytest.mark.parametrize(
    "result", [Offline(), Offline(sent=True), TimedOut()], ids=["not-sent", "sent", "timeout"]
)
def test_results_cross_between_nodes_unchanged(result: CommandResult) -> None:
    assert decode_result(encode_result(result)) == result


@pytest.mark.skipif(BACKEND != "postgresql", reason="several nodes need PostgreSQL")
async def test_relayed_command_to_a_charger_that_drops_is_offline_too(
    nodes: test_cluster.Nodes,
) -> None:
    a, b = nodes.a, nodes.b
    async with RawCharger.connect(ocpp_url(b), "CP-1") as raw:
        await raw.call("BootNotification", BOOT)
        await eventually(test_cluster.holds(lambda: a.view.holder("CP-1") == "node-b"))
        sending = asyncio.create_task(_post(a, "CP-1", "Reset", {"type": "Soft"}))
        await _dropped_after_the_call(raw, "Reset")
        status, body = await sending
    assert status == 404, body
    assert body["error"]["code"] == "offline"
    assert MAYBE_APPLIED in body["error"]["message"]
    assert b.relay.served == 1
