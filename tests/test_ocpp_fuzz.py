"""Fuzzing the chargers' endpoint: whatever arrives, the server answers correctly or closes
that one connection, never crashes, and its memory does not grow with the abuse."""

from __future__ import annotations

import asyncio
import gc
import json
import tracemalloc
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from csms.app import CentralSystem
from csms.ocpp16.frames import ErrorCode
from csms.ocpp16.schemas import CHARGER_ACTIONS
from tests.conftest import ocpp_url
from tests.ocpp_client import RawCharger

CODES = {code.value for code in ErrorCode}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
# Frames shaped like a CALL, with anything in the action and the payload.
calls = st.tuples(
    st.just(2),
    st.text(min_size=1, max_size=36),
    st.sampled_from(sorted(CHARGER_ACTIONS)) | st.text(max_size=40),
    st.dictionaries(
        st.sampled_from(["connectorId", "idTag", "status", "errorCode", "meterStart",
                         "timestamp", "transactionId", "meterValue", "vendorId", "x"]),
        json_values,
        max_size=5,
    ),
)  # fmt: skip
frames = (
    calls.map(lambda c: json.dumps(list(c)))
    | json_values.map(json.dumps)
    | st.text(max_size=200)
    | st.binary(max_size=200)
)


async def _alive(system: CentralSystem) -> bool:
    async with RawCharger.connect(ocpp_url(system), "CP-CHECK") as probe:
        return "currentTime" in await probe.call("Heartbeat", {})


async def test_random_frames_get_answers_or_nothing_never_a_crash(csms: CentralSystem) -> None:
    async with RawCharger.connect(ocpp_url(csms), "CP-FUZZ") as charger:
        answers: list[Any] = []

        @settings(
            max_examples=300,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(frame=frames)
        def send(frame: str | bytes) -> None:
            answers.append(frame)

        send()
        for frame in answers:
            await charger.connection.send(frame)
            # A CALL with a usable id must be answered: a result or a known CALLERROR code.
            await charger.send([2, "probe", "Heartbeat", {}])
            while True:
                reply = orjson.loads(await charger.connection.recv())
                if reply[1] == "probe":
                    assert reply[0] == 3
                    break
                assert reply[0] in (3, 4), reply
                if reply[0] == 4:
                    assert reply[2] in CODES, reply
    assert await _alive(csms)


async def test_huge_and_binary_frames(csms: CentralSystem) -> None:
    async with RawCharger.connect(ocpp_url(csms), "CP-HUGE") as charger:
        await charger.connection.send(b"\x00" * 1000)
        await charger.send([2, "1", "Heartbeat", {}])
        assert (await charger.receive())[:2] == [3, "1"]
        try:
            await charger.connection.send("[" * 70_000)
            await charger.receive()
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1009
    assert await _alive(csms)


async def test_deeply_nested_json_is_refused(csms: CentralSystem) -> None:
    async with RawCharger.connect(ocpp_url(csms), "CP-DEEP") as charger:
        await charger.connection.send('[2,"1","DataTransfer",' + "[" * 5000 + "]" * 5000 + "]")
        await charger.send([2, "2", "Heartbeat", {}])
        assert (await charger.receive())[:2] == [3, "2"]


async def test_floods_of_connections_leave_memory_bounded(csms: CentralSystem) -> None:
    async def churn(worker: int, n: int) -> None:
        for i in range(n):
            async with connect(
                f"{ocpp_url(csms)}/CP-FLOOD-{worker}-{i % 20}",
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                proxy=None,
            ) as ws:
                await ws.send('[2,"1","Heartbeat",{}]')
                await ws.recv()

    await asyncio.gather(*(churn(w, 20) for w in range(5)))  # warm up caches and pools
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    await asyncio.gather(*(churn(w, 60) for w in range(5)))  # 300 more connections
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert after - before < 2_000_000, f"grew by {after - before} bytes"
    assert csms.sessions.ids() == []
    assert await _alive(csms)
