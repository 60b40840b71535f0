"""The standalone simulator (`python -m simulators.chargepoint`, a process of its own) walks a
paid session with a real central system: plugged in by --plug-after or by a command on its
control interface (standard input, or HTTP on 127.0.0.1), and bad commands answered in one
line."""

from __future__ import annotations

import asyncio
import re
import shlex
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from csms.app import CentralSystem
from tests.conftest import API_HEADERS, MakeConfig, ocpp_url
from tests.payflow import TARIFF, Driver
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parent.parent
# Guards against a hang only; no assertion depends on it.
HANG_GUARD = 30


@dataclass
class Simulator:
    process: asyncio.subprocess.Process
    log: Path
    control_url: str | None

    async def command(self, http: aiohttp.ClientSession, line: str) -> tuple[int, str]:
        """One command over HTTP: the status and the answer."""
        assert self.control_url is not None
        async with http.post(self.control_url, data=line.encode()) as response:
            return response.status, (await response.text()).rstrip("\n")

    async def say(self, line: str) -> str:
        """One command on standard input; its answer's first line."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()
        async with asyncio.timeout(HANG_GUARD):
            return (await self.process.stdout.readline()).decode().rstrip("\n")


@asynccontextmanager
async def simulator(system: CentralSystem, folder: Path, *argv: str) -> AsyncIterator[Simulator]:
    """The simulator as a developer runs it, fast: 600 times real time (unless `argv` says
    otherwise), a sample each 0.2 s."""
    program = [sys.executable, "-m", "simulators.chargepoint", "--url", ocpp_url(system)]
    fast = ["--speed", "600", "--meter-interval", "0.2"]
    async with running([*program, *fast, *argv], folder) as sim:
        yield sim


@asynccontextmanager
async def running(command: list[str], folder: Path) -> AsyncIterator[Simulator]:
    """`command` (a simulator) in a process of its own. On leaving it gets SIGTERM, must exit
    0 and must have logged no traceback."""
    log = folder / "simulator.log"
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    try:
        control_url = None
        if "--control-port" in command:
            assert process.stdout is not None
            async with asyncio.timeout(HANG_GUARD):
                first = (await process.stdout.readline()).decode()
            found = re.fullmatch(r"control: POST commands to (http://127\.0\.0\.1:\d+/)\n", first)
            assert found, (first, log.read_text())
            control_url = found[1]
        yield Simulator(process, log, control_url)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(HANG_GUARD):
            code = await process.wait()
    assert code == 0, log.read_text()
    assert "Traceback" not in log.read_text()


async def connectors(driver: Driver, charger: str) -> list[str]:
    """The statuses of the charger's connectors 1.. as the central system knows them."""
    async with driver.http.get(
        f"{driver.base}/api/chargers/{charger}", headers=API_HEADERS
    ) as response:
        if response.status == 404:
            return []
        assert response.status == 200
        view = await response.json()
    return [c["status"] for c in view["connectors"] if c["connectorId"] > 0]


async def online(driver: Driver, charger: str) -> bool:
    async with driver.http.get(
        f"{driver.base}/api/chargers/{charger}", headers=API_HEADERS
    ) as response:
        return response.status == 200 and (await response.json())["online"]


async def until_connectors(driver: Driver, charger: str, *statuses: str) -> None:
    async def reached() -> bool:
        return await connectors(driver, charger) == list(statuses)

    await eventually(reached, HANG_GUARD)


async def assert_captured(system: CentralSystem, done: dict, reason: str, hold: int = 250) -> None:
    """The capture is the energy at 0.40/kWh plus the 0.50 session fee, taken once; the
    rest of the `hold` is released."""
    transaction = await system.transactions.get(done["transactionId"])
    assert transaction is not None and transaction["stop_reason"] == reason
    energy = transaction["meter_stop_wh"] - transaction["meter_start_wh"]
    assert 100 < energy < 5000
    expected = round(energy * 40 / 1000 + 1e-9) + 50
    assert (done["capturedAmount"], done["releasedAmount"]) == (expected, hold - expected)
    reservation = await system.reservations.get(done["reservationId"])
    assert reservation is not None and reservation.payment_intent_id
    assert system.sandbox is not None
    ledger = system.sandbox.ledger()[reservation.payment_intent_id]
    assert (ledger["amount_captured"], ledger["capture_requests"]) == (expected, 1)


async def test_plug_after_lets_a_paid_session_start_and_a_local_stop_ends_it(
    system: CentralSystem, driver: Driver, tmp_path: Path
) -> None:
    async with simulator(
        system,
        tmp_path,
        "--id",
        "CP-1",
        "--speed",
        "60",
        "--plug-after",
        "0",
        "--control-port",
        "0",
    ) as sim:
        # The cable is in before anybody pays: no RemoteStart came, none was needed.
        await until_connectors(driver, "CP-1", "Preparing")
        status, created = await driver.create("CP-1", 1)
        assert status == 200, created
        rid = created["reservationId"]
        await driver.pay(created["checkoutUrl"])
        await driver.wait_for_state(rid, "Charging")
        await eventually(lambda: driver.has_energy(rid), HANG_GUARD)
        status, answer = await sim.command(driver.http, "status")
        assert status == 200
        assert re.search(r"connector 1: Charging, plugged in, .*, transaction \d+ for ", answer)
        # The driver stops at the charger.
        status, answer = await sim.command(driver.http, "stop")
        assert status == 200, answer
        assert re.fullmatch(
            r"CP-1: transaction \d+ on connector 1 stopped \(Local\) at \d+ Wh \(Finishing\)",
            answer,
        )
        done = await driver.wait_for_state(rid, "Completed")
        await assert_captured(system, done, "Local")
        status, answer = await sim.command(driver.http, "unplug")
        assert (status, answer) == (200, "CP-1: connector 1 unplugged (Available)")
        await until_connectors(driver, "CP-1", "Available")


async def test_stdin_plug_and_unplug_walk_a_paid_session_with_idle_fees(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """The default kind of tariff, with idle fees: the session only settles once the car
    is unplugged, which the developer does with `unplug`."""
    tariff = {**TARIFF, "idle_fee_per_minute": "0.10", "idle_grace_minutes": 15}
    config = make_config(
        tariff={**tariff, "idle_fee_max_minutes": 60}, payments={"minimum_energy_wh": 100}
    )
    async with (
        CentralSystem(config) as system,
        aiohttp.ClientSession() as http,
        simulator(system, tmp_path, "--id", "CP-1", "--speed", "60", "--control-stdin") as sim,
    ):
        driver = Driver(system, http)
        await until_connectors(driver, "CP-1", "Available")
        _, created = await driver.create("CP-1", 1)
        rid = created["reservationId"]
        await driver.pay(created["checkoutUrl"])
        await driver.wait_for_state(rid, "AwaitingPlug")
        assert re.fullmatch(
            r"CP-1: connector 1 plugged in \((Preparing|Charging)\)", await sim.say("plug")
        )
        await driver.wait_for_state(rid, "Charging")
        await eventually(lambda: driver.has_energy(rid), HANG_GUARD)
        status, _ = await driver.post(f"/api/payments/{rid}/stop")
        assert status == 200
        await driver.wait_for_state(rid, "WaitingForDisconnect")
        assert await sim.say("unplug") == "CP-1: connector 1 unplugged (Available)"
        done = await driver.wait_for_state(rid, "Completed")
        assert done["breakdown"]["idleFee"] == 0
        # The hold covers 5 kWh, the session fee and an hour of idle fees: 8.50.
        await assert_captured(system, done, "Remote", hold=850)


def readme_walkthrough() -> tuple[str, list[str]]:
    """The Quick start's paid session by hand: the command that starts the simulator, and
    the commands its steps type, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n### A paid session by hand", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 1, blocks
    steps = section.split("\n1. ", 1)[1].split("\n\n", 1)[0]
    return blocks[0], re.findall(r"type `(\w+)`", steps, re.IGNORECASE)


async def test_the_readme_walkthrough_works_as_written(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    """The default tariff (idle fees), the simulator started exactly as the README says (only
    the server's port and the Python are put in), and the steps' commands typed in order; the
    browser's part done over HTTP as the pages would."""
    script, typed = readme_walkthrough()
    assert typed == ["plug", "stop", "unplug"]
    async with CentralSystem(make_config()) as system, aiohttp.ClientSession() as http:
        for written, actual in (
            ("ws://127.0.0.1:9000/ocpp", ocpp_url(system)),
            (".venv/bin/python", shlex.quote(sys.executable)),
        ):
            assert written in script, written
            script = script.replace(written, actual)
        driver = Driver(system, http)
        async with running(["bash", "-c", f"exec {script}"], tmp_path) as sim:
            await until_connectors(driver, "CP-1", "Available")
            async with http.get(f"{driver.base}/c/CP-1/1") as page:
                assert page.status == 200
            _, created = await driver.create("CP-1", 1)
            rid = created["reservationId"]
            await driver.pay(created["checkoutUrl"])
            await driver.wait_for_state(rid, "AwaitingPlug")
            assert (await sim.say(typed[0])).startswith("CP-1: connector 1 plugged in")
            await driver.wait_for_state(rid, "Charging")
            # Past payments.minimum_energy_wh (1 kWh), as the README says to wait for.
            await eventually(lambda: driver.has_energy(rid, 1000), HANG_GUARD)
            assert "stopped (Local)" in await sim.say(typed[1])
            await driver.wait_for_state(rid, "WaitingForDisconnect")
            assert await sim.say(typed[2]) == "CP-1: connector 1 unplugged (Available)"
            done = await driver.wait_for_state(rid, "Completed")
    # 0.40/kWh and 0.50 per session, the default tariff; unplugged within the idle grace.
    energy = done["breakdown"]["energyWh"]
    assert energy > 1000 and done["breakdown"]["idleFee"] == 0
    assert done["capturedAmount"] == round(energy * 40 / 1000 + 1e-9) + 50
    assert done["capturedAmount"] + done["releasedAmount"] == created["maxAmount"]


async def test_a_fleet_plugs_in_and_takes_commands_per_charger(
    system: CentralSystem, driver: Driver, tmp_path: Path
) -> None:
    argv = ("--id", "CP-F", "--count", "2", "--plug-after", "0", "--control-port", "0")
    async with simulator(system, tmp_path, *argv) as sim:
        await until_connectors(driver, "CP-F-1", "Preparing")
        await until_connectors(driver, "CP-F-2", "Preparing")
        status, answer = await sim.command(driver.http, "unplug CP-F-1")
        assert (status, answer) == (200, "CP-F-1: connector 1 unplugged (Available)")
        await until_connectors(driver, "CP-F-1", "Available")
        assert await connectors(driver, "CP-F-2") == ["Preparing"]
        # Without a charger id, a command acts on each.
        status, answer = await sim.command(driver.http, "plug")
        assert status == 200
        assert answer.splitlines() == [
            "CP-F-1: connector 1 plugged in (Preparing)",
            "CP-F-2: connector 1 is plugged in already",
        ]
        await until_connectors(driver, "CP-F-1", "Preparing")
        status, answer = await sim.command(driver.http, "power CP-F-2 22")
        assert (status, answer) == (200, "CP-F-2: charging power 22 kW")
        _, answer = await sim.command(driver.http, "status")
        assert re.search(r"CP-F-1: online\n  connector 1: Preparing, .*, 11 kW max", answer)
        assert re.search(r"CP-F-2: online\n  connector 1: Preparing, .*, 22 kW max", answer)
        status, answer = await sim.command(driver.http, "offline CP-F-2")
        assert (status, answer) == (200, "CP-F-2: offline until `online`")
        await eventually(lambda: _offline(driver, "CP-F-2"), HANG_GUARD)
        assert await online(driver, "CP-F-1")
        _, answer = await sim.command(driver.http, "status CP-F-2")
        assert answer.startswith("CP-F-2: offline\n")
        status, answer = await sim.command(driver.http, "online CP-F-2")
        assert (status, answer) == (200, "CP-F-2: online")
        assert await online(driver, "CP-F-2")


async def _offline(driver: Driver, charger: str) -> bool:
    return not await online(driver, charger)


BAD_COMMANDS = {
    "fly": "error: unknown command 'fly' (try help)",
    "   ": "error: empty command (try help)",
    "plug 7": "CP-1: error: CP-1 has no connector 7",
    "plug 0": "error: '0' is neither a charger nor a connector number (1, 2...)",
    "unplug CP-9": "error: 'CP-9' is neither a charger nor a connector number (1, 2...)",
    "unplug 1 2": "error: too many arguments, or no such charger:"
    " usage unplug [CHARGER] [CONNECTOR]",
    "stop": "CP-1: error: no transaction on connector 1",
    "power": "error: KW missing: usage power [CHARGER] KW",
    "power -3": "error: KW must be a number of kilowatts > 0, not '-3'",
    "power nan": "error: KW must be a number of kilowatts > 0, not 'nan'",
    "offline soon": "error: SECONDS must be a number of seconds >= 0, not 'soon'",
    "status CP-9": "error: no charger 'CP-9' (the chargers: CP-1)",
    "help me": "error: help takes no arguments",
}


async def test_bad_commands_get_one_line_and_the_simulator_goes_on(
    system: CentralSystem, driver: Driver, tmp_path: Path
) -> None:
    argv = ("--id", "CP-1", "--control-port", "0", "--control-stdin")
    async with simulator(system, tmp_path, *argv) as sim:
        await until_connectors(driver, "CP-1", "Available")
        for line, expected in BAD_COMMANDS.items():
            assert await sim.command(driver.http, line) == (400, expected), line
        for line in ("fly", "plug 0", "stop", "power -3"):
            assert await sim.say(line) == BAD_COMMANDS[line], line
        async with driver.http.post(sim.control_url or "", data=b"\xff\xfe") as response:
            assert response.status == 400
            assert await response.text() == "error: the command is not UTF-8\n"
        status, answer = await sim.command(driver.http, "help")
        assert status == 200 and answer.splitlines()[0].startswith("plug [CHARGER] [CONNECTOR]")
        # Still working after all that.
        assert await sim.say("plug") == "CP-1: connector 1 plugged in (Preparing)"
        await until_connectors(driver, "CP-1", "Preparing")


async def _run(*argv: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulators.chargepoint",
        "--url",
        "ws://127.0.0.1:9/ocpp",
        "--id",
        "CP-1",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(HANG_GUARD):
        _, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_bad_options_are_refused_in_one_line() -> None:
    code, err = await _run("--plug-after", "-1")
    assert code == 2 and err.splitlines()[-1].endswith(
        "error: --plug-after must be a number of seconds >= 0, not -1"
    )
    code, err = await _run("--control-port", "70000")
    assert code == 2 and err.splitlines()[-1].endswith(
        "error: --control-port must be 0 to 65535, not 70000"
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = await _run("--control-port", str(port))
    assert (code, err.strip().splitlines()) == (
        2,
        [f"--control-port {port}: Address already in use"],
    )
