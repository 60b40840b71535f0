"""The `node-kill` scenario: csms as three nodes on one PostgreSQL database behind HAProxy
(bench.cluster.LocalCluster), one node at a time killed with SIGKILL while paid sessions
are under way, and started again a while later.

The simulated chargers connect through HAProxy, which hashes each to a node by its charge
point id; drivers' requests and Stripe's webhooks reach the nodes through it too (round
robin). Stripe is slow to answer (`LATENCY`: captures and cancels, and the Checkout
Session that POST /api/payments creates before it answers), as on a bad day, so that nodes
die with Stripe calls in flight.

Kill after kill the victim is in turn: a node holding a charger whose transaction is under
way (`mid-session`), a node creating a Checkout Session for a driver's POST /api/payments
(`mid-checkout`), a node that has claimed any effect not done yet (`mid-effect`), any
node. The first kill of each kind comes as soon as its moment does; after that, kills come
at random moments. While the victim is down the run checks (`Report.case`):

- chargers-back: every charger the victim held is connected to a live node again within
  `CHARGERS_BACK` seconds (the simulated chargers reconnect on their own; HAProxy sends
  them to the other nodes);
- taken-over: each effect the victim had claimed and not done is done, or claimed by
  another node, within `TAKEOVER` seconds of its lease running out, and not before that
  lease could have run out.

The victim stays down until those checks are settled (and, after the first kills, for a
random while shorter or longer than its lease), then is started again. At the end:

- mid-session: at least one kill hit a node holding a charger mid-session;
- stray-reservation: a reservation that a refused driver found holding its connector, and
  that no driver was given (the answer to the request that made it was lost with its
  node), must have ended (see driving.create_payment).

A crash is a node that exited without being killed, or did not come back healthy after
being started again; the SIGKILLs are counted as kills. The run ends with the audit of
every scenario: each reservation, the whole of the Stripe sandbox's ledger and the energy
the chargers delivered.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psycopg

from bench.cluster import LocalCluster, NodeProcess
from bench.faults.adversarial_steps import sandbox
from bench.faults.driving import TERMINAL, Api, SessionLog
from bench.faults.ledger import Report
from bench.faults.processes import CSMS_SETTINGS
from bench.faults.scenarios import FAST_WINDOWS, Fleet, settle_and_audit
from bench.haproxy import Unavailable as NoHaproxy
from bench.pg.cluster import Unavailable as NoPostgresql
from simulators.chargepoint import SimulatedCharger

NODES = 3
LEASE = 3.0  # seconds: a dead node's lease runs out this long after its last renewal
# Seconds Stripe takes to answer a POST (csms waits 3): captures and cancels of
# PaymentIntents, and the Checkout Session that POST /api/payments creates before answering.
LATENCY = {"/v1/payment_intents/": 2.0, "/v1/checkout/sessions": 1.0}
PAUSE = (0.5, 3.0)  # seconds between a node's return and the next kill
DOWN = (0.5, 2 * LEASE)  # seconds a victim stays down, at least (its checks may take longer)
PATIENCE = 15.0  # seconds to wait for a victim of the kind wanted before taking any node
CHARGERS_BACK = 20.0
TAKEOVER = 10.0
PICKS = ("mid-session", "mid-checkout", "mid-effect", "any")
# A lease is renewed every third of it: a dead node's runs out 2/3 of a lease to a whole
# lease after its death. Taken over sooner (less a margin) is a bug.
EARLIEST_EXPIRY = LEASE * 2 / 3 - 0.2


@dataclass(frozen=True)
class Through:
    """The load balancer's HTTP port for csms, and the Stripe sandbox."""

    base: str
    stripe: str


@dataclass
class Kill:
    """One SIGKILL: the victim, and what it held at its death."""

    number: int
    node: NodeProcess
    pick: str
    at: float  # time.monotonic()
    chargers: list[str]  # connected to it
    charging: list[str]  # ... with a transaction under way
    effects: list[int]  # claimed by it and not done
    timings: dict[str, float] = field(default_factory=dict)  # check -> seconds after the kill

    def describe(self) -> str:
        waits = "".join(f", {name} after {s:.1f} s" for name, s in sorted(self.timings.items()))
        return (
            f"kill {self.number} ({self.pick}): {self.node.name} holding {len(self.chargers)}"
            f" chargers ({len(self.charging)} charging), {len(self.effects)} effects{waits}"
        )


async def run(name: str, folder: Path, chargers: int, sessions_each: int) -> Report:
    """The scenario, with its report; skipped (noted) without PostgreSQL or HAProxy."""
    report = Report(name)
    env = CSMS_SETTINGS | FAST_WINDOWS
    try:
        async with _running(LocalCluster(folder, NODES, extra_env=env, lease=LEASE)) as cluster:
            return await _under_kills(cluster, report, Fleet(chargers, sessions_each), folder)
    except (NoPostgresql, NoHaproxy) as error:
        report.notes.append(f"skipped: {error}")
    except RuntimeError as error:  # a node, the sandbox or HAProxy never came up
        report.server_crashes += 1
        report.notes.append(f"the cluster never came up: {error}")
    return report


@asynccontextmanager
async def _running(cluster: LocalCluster) -> AsyncIterator[LocalCluster]:
    await asyncio.to_thread(cluster.__enter__)
    try:
        yield cluster
    finally:
        await asyncio.to_thread(cluster.__exit__, None, None, None)


async def _under_kills(cluster: LocalCluster, report: Report, fleet: Fleet, folder: Path) -> Report:
    async with (
        aiohttp.ClientSession() as http,
        await psycopg.AsyncConnection.connect(cluster.database_url, autocommit=True) as db,
    ):
        api = Api(Through(cluster.http_url, cluster.stripe_url), http)
        for path, seconds in LATENCY.items():
            fault = {"count": 1_000_000, "delay_seconds": seconds, "method": "POST", "path": path}
            await sandbox(api, "POST", "/faults", fault)
        sims = fleet.chargers(cluster.ocpp_url)
        killer = NodeKiller(cluster, Holdings(db), sims, report, folder / "kills.log")
        log = await fleet.drive(api, sims, report, killer.run)
        await _strays(api, report, log)
        return await settle_and_audit(api, report, log, sims)


async def _strays(api: Api, report: Report, log: SessionLog) -> None:
    """Each reservation a refused driver found holding its connector, never given to any
    driver (its node died under POST /api/payments), must have ended by now."""
    now = asyncio.get_running_loop().time()
    for reservation_id, stray in log.strays.items():
        state = await api.state(reservation_id)
        ended = state["state"] in TERMINAL
        report.case(
            "stray-reservation",
            ended,
            None
            if ended
            else (
                f"{reservation_id} on {stray.charger_id}, never given to a driver, still"
                f" {state['state']} (checkout {'made' if state['checkoutUrl'] else 'not made'})"
                f" {now - stray.seen_at:.0f} s after a driver was refused for it"
                " (ConnectorBusy: reserved by another driver)"
            ),
        )


class Holdings:
    """What the cluster's database says the nodes hold, read on the harness's connection."""

    def __init__(self, db: psycopg.AsyncConnection) -> None:
        self._db = db

    async def chargers(self) -> dict[str, str]:
        """Charger id -> the node its connection is on, as last recorded."""
        cursor = await self._db.execute(
            "SELECT charger_id, node_id FROM charger_connections WHERE node_id IS NOT NULL"
        )
        return {charger: node for charger, node in await cursor.fetchall()}

    async def claimed(self, kind: str = "%") -> dict[int, str]:
        """Effect id -> the node that claimed it, for the effects (of `kind`) not done."""
        cursor = await self._db.execute(
            "SELECT id, claimed_by FROM effects WHERE status = 'pending'"
            " AND claimed_by IS NOT NULL AND kind LIKE %s",
            (kind,),
        )
        return {effect: node for effect, node in await cursor.fetchall()}

    async def effects(self, ids: list[int]) -> dict[int, tuple[str, str | None]]:
        """Effect id -> (status, the node that claimed it)."""
        cursor = await self._db.execute(
            "SELECT id, status, claimed_by FROM effects WHERE id = ANY(%s)", (ids,)
        )
        return {effect: (status, node) for effect, status, node in await cursor.fetchall()}


@dataclass
class NodeKiller:
    """The chaos of the scenario: kills, checks while the victim is down, restarts."""

    cluster: LocalCluster
    holdings: Holdings
    sims: list[SimulatedCharger]
    report: Report
    log: Path  # a line for each kill
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    kills: list[Kill] = field(default_factory=list)
    down: NodeProcess | None = None  # killed by the run, not started again yet
    gone: set[str] = field(default_factory=set)  # nodes that did not come back: out of the run

    async def run(self, stop: asyncio.Event) -> None:
        """Kill, check, bring back, pause; until `stop` is set. Then the verdicts. The first
        kill of each kind comes as soon as its moment does, and its victim is back once its
        checks are done, so that a short run has them all."""
        try:
            while not stop.is_set():
                first = len(self.kills) < len(PICKS)
                if not first and await _stopped(stop, self.rng.uniform(*PAUSE)):
                    break
                await self._revive_crashed()
                kill = await self._kill(PICKS[len(self.kills) % len(PICKS)], stop)
                if kill is None:
                    break
                await self._while_down(kill, 0.0 if first else self.rng.uniform(*DOWN))
                await self._bring_back(kill.node)
        finally:
            if self.down is not None:
                await self._bring_back(self.down)
            await self._revive_crashed()
            self._verdicts()

    # -- the kill

    async def _kill(self, pick: str, stop: asyncio.Event) -> Kill | None:
        chosen = await self._choose(pick, stop)
        if chosen is None:
            return None
        node, pick = chosen
        await asyncio.to_thread(node.kill)
        self.down = node
        at = time.monotonic()
        held = [c for c, holder in (await self.holdings.chargers()).items() if holder == node.name]
        effects = [
            e for e, holder in (await self.holdings.claimed()).items() if holder == node.name
        ]
        charging = [c for c in held if c in self._charging()]
        kill = Kill(len(self.kills) + 1, node, pick, at, held, charging, effects)
        self.kills.append(kill)
        return kill

    async def _choose(self, pick: str, stop: asyncio.Event) -> tuple[NodeProcess, str] | None:
        """A live node of the kind `pick` wants, and that kind; any node once PATIENCE has
        passed (except for the first of each kind: the run is about those)."""
        first = not any(kill.pick == pick for kill in self.kills)
        deadline = time.monotonic() + (math.inf if first and pick != "any" else PATIENCE)
        while not stop.is_set():
            live = {
                n.name: n for n in self.cluster.nodes if n.running() and n.name not in self.gone
            }
            if time.monotonic() > deadline:
                pick = "any"
            candidates = sorted(set(live) & await self._wanted(pick))
            if candidates:
                return live[self.rng.choice(candidates)], pick
            await asyncio.sleep(0.05)
        return None

    async def _wanted(self, pick: str) -> set[str]:
        if pick == "mid-session":
            holders = await self.holdings.chargers()
            return {holders[c] for c in self._charging() if c in holders}
        if pick == "mid-checkout":
            return set((await self.holdings.claimed("CreateCheckout")).values())
        if pick == "mid-effect":
            return set((await self.holdings.claimed()).values())
        return {node.name for node in self.cluster.nodes}

    def _charging(self) -> set[str]:
        return {s.charge_point_id for s in self.sims if s.connector(1).transaction is not None}

    # -- while the victim is down

    async def _while_down(self, kill: Kill, at_least: float) -> None:
        checks = [self._chargers_back(kill), asyncio.sleep(at_least)]
        if kill.effects:
            checks.append(self._taken_over(kill))
        await asyncio.gather(*checks)
        with self.log.open("a") as out:
            out.write(kill.describe() + "\n")

    async def _chargers_back(self, kill: Kill) -> None:
        async def look(waited: float) -> str | None:
            holders = await self.holdings.chargers()
            away = [c for c in kill.chargers if holders.get(c, kill.node.name) == kill.node.name]
            if not away:
                return ""
            if waited > CHARGERS_BACK:
                return f"{', '.join(away)} not on a live node {CHARGERS_BACK:.0f} s after"
            return None

        await self._check(kill, "chargers-back", look)

    async def _taken_over(self, kill: Kill) -> None:
        async def look(waited: float) -> str | None:
            now = await self.holdings.effects(kill.effects)
            mine = kill.node.name
            moved = [e for e, (_, by) in now.items() if by != mine]
            stuck = [e for e, (status, by) in now.items() if status == "pending" and by == mine]
            if moved and waited < EARLIEST_EXPIRY:
                return f"effects {moved} claimed by another node before the lease could run out"
            if not stuck:
                return ""
            if waited > LEASE + TAKEOVER:
                return f"effects {stuck} still the dead node's {TAKEOVER:.0f} s after its lease"
            return None

        await self._check(kill, "taken-over", look)

    async def _check(
        self, kill: Kill, case: str, look: Callable[[float], Awaitable[str | None]]
    ) -> None:
        """Ask `look(seconds since the kill)` every 0.1 s until it has a verdict: "" when
        the check passed, else what failed."""
        while True:
            waited = time.monotonic() - kill.at
            verdict = await look(waited)
            if verdict is not None:
                break
            await asyncio.sleep(0.1)
        if verdict:
            self.report.case(case, False, f"{kill.describe()}: {verdict} ({waited:.1f} s)")
        else:
            kill.timings[case] = waited
            self.report.case(case, True)

    # -- bringing nodes back; crashes

    async def _bring_back(self, node: NodeProcess) -> None:
        self.down = None
        if not await self._start(node):
            self.report.server_crashes += 1
            self.report.notes.append(f"{node.name} did not come back after its kill")

    async def _start(self, node: NodeProcess) -> bool:
        """Start the node and wait for it to answer; False (and out of the run) if it does not."""
        await asyncio.to_thread(node.start)
        try:
            await asyncio.to_thread(node.wait_healthy)
        except RuntimeError as error:
            self.gone.add(node.name)
            self.report.notes.append(str(error))
            return False
        return True

    async def _revive_crashed(self) -> None:
        """A node that exited without being killed is a crash; it is started again."""
        for node in self.cluster.nodes:
            if node is self.down or node.name in self.gone or node.running():
                continue
            self.report.server_crashes += 1
            tail = node.log.read_text(errors="replace").splitlines()[-30:]
            self.report.notes.append(
                f"{node.name} exited on its own; its log ends:\n" + "\n".join(tail)
            )
            await self._start(node)

    def _verdicts(self) -> None:
        self.report.kills = sum(node.kills for node in self.cluster.nodes)
        hit = [kill for kill in self.kills if kill.charging]
        self.report.case(
            "mid-session",
            bool(hit),
            None
            if hit
            else f"no kill (of {len(self.kills)}) hit a node holding a charging charger",
        )
        taken = sum(len(kill.effects) for kill in self.kills)
        self.report.notes.append(
            f"{len(self.kills)} kills: {len(hit)} of a node holding a charger mid-session,"
            f" {sum(1 for k in self.kills if k.effects)} with effects claimed ({taken} in all);"
            f" each kill in {self.log}"
        )


async def _stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds`, or less if `stop` is set meanwhile; whether it is."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True
