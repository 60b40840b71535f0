"""Drive a running simulator by hand: one command a line, from standard input or over HTTP
on 127.0.0.1 (`POST /` with the command as the body).

Every answer is text; a command that cannot be done gets one line starting "error:".
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from ocpp.v16.enums import Reason

from .charger import SimulatedCharger

HELP = """\
plug [CHARGER] [CONNECTOR]     the driver plugs in (connector 1 unless given)
unplug [CHARGER] [CONNECTOR]   the driver unplugs; a running transaction stops (EVDisconnected)
stop [CHARGER] [CONNECTOR]     the driver stops at the charger: StopTransaction, reason Local
offline [CHARGER] [SECONDS]    drop the connection, for SECONDS or until `online`
online [CHARGER]               connect again now
power [CHARGER] KW             the charging power of every connector, in kW
status [CHARGER]               connection, connectors, transactions and energy
help                           this list
Without CHARGER a command acts on every charger of the simulator."""

# How long `online` waits for the charger to be back before answering.
ONLINE_WAIT = 10.0
# The largest command accepted over HTTP, in bytes.
MAX_BODY = 1024


class CommandError(Exception):
    """The command line is wrong: unknown command, charger or argument."""


@dataclass(frozen=True)
class Command:
    name: str
    targets: list[SimulatedCharger]
    # The connector, the seconds or the kW, as the command takes; None when not given.
    number: float | None


Handler = Callable[[SimulatedCharger, Command], Awaitable[str]]


class Controller:
    """Parses command lines and carries them out on the chargers."""

    def __init__(self, chargers: list[SimulatedCharger]) -> None:
        self.chargers = {charger.charge_point_id: charger for charger in chargers}
        self._handlers: dict[str, tuple[str | None, Handler]] = {
            "plug": ("connector", _plug),
            "unplug": ("connector", _unplug),
            "stop": ("connector", _stop),
            "offline": ("seconds", _offline),
            "online": (None, _online),
            "power": ("kw", _power),
            "status": (None, _status),
        }

    async def execute(self, line: str) -> tuple[bool, str]:
        """Carry out one command line: whether it all went well, and the answer."""
        try:
            command = self.parse(line)
        except CommandError as exc:
            return False, f"error: {exc}"
        if command.name == "help":
            return True, HELP
        _, handler = self._handlers[command.name]
        ok, answers = True, []
        for charger in command.targets:
            # Every failure is one line of the answer, never a traceback.
            try:
                answers.append(f"{charger.charge_point_id}: {await handler(charger, command)}")
            except Exception as exc:
                ok = False
                answers.append(f"{charger.charge_point_id}: error: {_reason(exc)}")
        return ok, "\n".join(answers)

    def parse(self, line: str) -> Command:
        words = line.split()
        if not words:
            raise CommandError("empty command (try help)")
        name, arguments = words[0].lower(), words[1:]
        if name == "help":
            if arguments:
                raise CommandError("help takes no arguments")
            return Command(name, [], None)
        if name not in self._handlers:
            raise CommandError(f"unknown command {words[0]!r} (try help)")
        targets = list(self.chargers.values())
        if arguments and arguments[0] in self.chargers:
            targets = [self.chargers[arguments.pop(0)]]
        kind, _ = self._handlers[name]
        if kind is None and arguments:
            raise CommandError(
                f"no charger {arguments[0]!r} (the chargers: {', '.join(self.chargers)})"
            )
        return Command(name, targets, _number(name, kind, arguments))


def _number(name: str, kind: str | None, arguments: list[str]) -> float | None:
    """The command's one numeric argument, checked; CommandError with the usage otherwise."""
    usage = next(line for line in HELP.splitlines() if line.startswith(name + " ")).split("  ")[0]
    if len(arguments) > 1:
        raise CommandError(f"too many arguments, or no such charger: usage {usage.strip()}")
    if not arguments:
        if kind == "kw":
            raise CommandError(f"KW missing: usage {usage.strip()}")
        return 1 if kind == "connector" else None
    text = arguments[0]
    try:
        value = float(text) if kind != "connector" else int(text)
    except ValueError:
        value = None
    if kind == "connector" and (value is None or value < 1):
        raise CommandError(f"{text!r} is neither a charger nor a connector number (1, 2...)")
    if kind == "seconds" and (value is None or not math.isfinite(value) or value < 0):
        raise CommandError(f"SECONDS must be a number of seconds >= 0, not {text!r}")
    if kind == "kw" and (value is None or not math.isfinite(value) or value <= 0):
        raise CommandError(f"KW must be a number of kilowatts > 0, not {text!r}")
    return value


def _reason(exc: Exception) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer from the central system in time"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]


def _connector(command: Command) -> int:
    assert command.number is not None
    return int(command.number)


async def _plug(charger: SimulatedCharger, command: Command) -> str:
    connector_id = _connector(command)
    if charger.connector(connector_id).plugged:
        return f"connector {connector_id} is plugged in already"
    await charger.plug_in(connector_id)
    return f"connector {connector_id} plugged in ({charger.connector(connector_id).status})"


async def _unplug(charger: SimulatedCharger, command: Command) -> str:
    connector_id = _connector(command)
    if not charger.connector(connector_id).plugged:
        return f"connector {connector_id} is not plugged in"
    await charger.unplug(connector_id)
    return f"connector {connector_id} unplugged ({charger.connector(connector_id).status})"


async def _stop(charger: SimulatedCharger, command: Command) -> str:
    connector_id = _connector(command)
    transaction_id = charger.connector(connector_id).transaction_id
    await charger.stop_transaction(connector_id, Reason.local)
    connector = charger.connector(connector_id)
    return (
        f"transaction {transaction_id} on connector {connector_id} stopped (Local)"
        f" at {connector.energy_wh} Wh ({connector.status})"
    )


async def _offline(charger: SimulatedCharger, command: Command) -> str:
    seconds = command.number
    await charger.go_offline(seconds)
    return "offline until `online`" if seconds is None else f"offline for {seconds:g} s"


async def _online(charger: SimulatedCharger, command: Command) -> str:
    if charger.connected and charger.booted:
        return "online already"
    try:
        await charger.reconnect(ONLINE_WAIT)
    except TimeoutError:
        return f"still connecting after {ONLINE_WAIT:g} s (it keeps trying)"
    return "online"


async def _power(charger: SimulatedCharger, command: Command) -> str:
    assert command.number is not None
    for connector_id in range(1, len(charger.connectors)):
        # The energy so far accrues at the old power, from now on at the new one.
        charger.connector(connector_id).max_power_w = command.number * 1000
        charger.connector(connector_id)
    return f"charging power {command.number:g} kW"


async def _status(charger: SimulatedCharger, command: Command) -> str:
    online = "online" if charger.connected and charger.booted else "offline"
    lines = [online]
    for connector_id in range(1, len(charger.connectors)):
        connector = charger.connector(connector_id)
        cable = "plugged in" if connector.plugged else "not plugged in"
        text = (
            f"  connector {connector_id}: {connector.status}, {cable},"
            f" meter {connector.energy_wh} Wh, {connector.max_power_w / 1000:g} kW max"
        )
        transaction = connector.transaction
        if transaction is not None:
            text += (
                f", transaction {transaction.transaction_id} for {transaction.id_tag}:"
                f" {transaction.delivered_wh:.0f} Wh delivered at {connector.power_w:.0f} W"
            )
        lines.append(text)
    ended = [t for t in charger.transactions if not t.running]
    if ended:
        last = ended[-1]
        assert last.meter_stop_wh is not None
        lines.append(
            f"  last ended: transaction {last.transaction_id} ({last.stop_reason}),"
            f" {last.meter_stop_wh - last.meter_start_wh} Wh"
        )
    return "\n".join(lines)


# Standard input


async def serve_stdin(controller: Controller) -> None:
    """Read commands from standard input until it ends; print each answer on stdout.

    A thread of its own reads the file descriptor, so standard input may be a terminal, a
    pipe or a file, and a read that never returns does not hold up the exit.
    """
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def deliver(line: str | None) -> bool:
        try:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        except RuntimeError:  # the loop is closed: the simulator is exiting
            return False
        return True

    def read() -> None:
        pending = b""
        while chunk := os.read(0, 4096):
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                if not deliver(raw.decode(errors="replace")):
                    return
        deliver(pending.decode(errors="replace") if pending.strip() else None)
        deliver(None)

    threading.Thread(target=read, name="control-stdin", daemon=True).start()
    while (line := await lines.get()) is not None:
        if line.strip():
            _, answer = await controller.execute(line)
            print(answer, flush=True)


# HTTP


async def serve_http(controller: Controller, port: int) -> tuple[web.AppRunner, int]:
    """`POST /` with a command as the body, on 127.0.0.1:`port` (0: any free port); the
    answer is text/plain, 200 when the command went well and 400 otherwise. The runner (to
    clean up) and the port. Raises OSError when the port cannot be had."""

    async def command(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            line = body.decode()
        except UnicodeDecodeError:
            return web.Response(text="error: the command is not UTF-8\n", status=400)
        ok, answer = await controller.execute(line)
        return web.Response(text=answer + "\n", status=200 if ok else 400)

    async def usage(request: web.Request) -> web.Response:
        return web.Response(text=f"POST a command as the body; the commands:\n{HELP}\n")

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/", command)
    app.router.add_get("/", usage)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
    except OSError:
        await runner.cleanup()
        raise
    return runner, runner.addresses[0][1]
