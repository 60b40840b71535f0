"""The effect runner: carries out pending effects from the outbox, retries, resumes.

Effects survive a crash because they are rows; after a restart the runner simply finds
them due. While running, it is handed each commit's new effects and starts them at once,
without a look in the outbox; it looks there after a wake-up and at each retry's time.
Each effect's outcome is applied through the coordinator together with marking the effect
done, so an effect carried out twice (a crash between the Stripe call and the commit) is
reported once; its idempotency key made Stripe do it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Sequence
from datetime import datetime, timedelta

import structlog

from payments.codec import event_name
from payments.coordinator import Coordinator
from payments.effects import ChargerUnreachable, EffectExecutor
from payments.outbox import Outbox, PendingEffect
from payments.reservation import CheckoutUnavailable
from payments.reservations_store import ReservationStore
from payments.stripe_gateway import StripeUnavailable
from storage.clock import to_text
from storage.nodes import Leader, sole_node

log = structlog.get_logger()

# How many finished effects the runner remembers: far more than can finish while one
# outbox read is under way.
FINISHED_KEPT = 1000


def backoff(attempts: int, base: float, ceiling: float, rng: random.Random) -> timedelta:
    """Exponential backoff with +-25 % jitter: base, 2 base, 4 base ... at most `ceiling`."""
    delay = min(ceiling, base * 2**attempts)
    return timedelta(seconds=delay * rng.uniform(0.75, 1.25))


class EffectRunner:
    def __init__(
        self,
        outbox: Outbox,
        reservations: ReservationStore,
        coordinator: Coordinator,
        executor: EffectExecutor,
        *,
        retry_base: float = 1.0,
        retry_ceiling: float = 30.0,
        idle_poll: float = 5.0,
        lead: Leader = sole_node,
    ) -> None:
        self._outbox = outbox
        self._reservations = reservations
        self._coordinator = coordinator
        self._executor = executor
        self._retry_base = retry_base
        self._retry_ceiling = retry_ceiling
        self._idle_poll = idle_poll
        self._lead = lead  # deadlines fire on one node at a time, cluster-wide
        self._rng = random.Random()
        self._wake = asyncio.Event()
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        # Effect id -> number of the completion that ended its run, for the latest ones: an
        # outbox read that began before that completion shows the effect still pending.
        self._finished: dict[int, int] = {}
        self._completions = 0
        self._task: asyncio.Task[None] | None = None
        self._started_at = ""  # effects queued before it were perhaps carried out already
        coordinator.on_effects(self._committed)

    def start(self) -> None:
        self._started_at = to_text(self._coordinator.clock())
        self._task = asyncio.create_task(self._loop(), name="effect-runner")

    async def stop(self, grace: float = 0.0) -> None:
        """Take no new effects; give those in flight `grace` seconds to finish, then park them.

        A parked effect was cancelled mid-call: it is still pending in the outbox, and the
        next start carries it out again under the same idempotency key.
        """
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        in_flight = list(self._in_flight.values())
        if in_flight and grace > 0:
            await asyncio.wait(in_flight, timeout=grace)
        parked = [task for task in in_flight if not task.done()]
        for task in parked:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)
        if parked:
            log.info("payments.effects_parked", count=len(parked))

    async def run_now(self, reservation_id: str, *, give_up_when_unavailable: bool = False) -> None:
        """Carry out this reservation's due effects at once, for an answer within the request.

        With `give_up_when_unavailable`, an effect Stripe cannot take now ends as its failure
        event instead of being retried (creating a checkout: the driver gets an answer now).
        """
        read_from = self._completions
        now = self._coordinator.clock()
        due = await self._outbox.due(now, reservation_id=reservation_id)
        for pending in due:
            task = self._in_flight.get(pending.id)
            if task is None and not self._finished_since(pending.id, read_from):
                task = self._spawn(pending, give_up_when_unavailable)
            if task is not None:
                await asyncio.shield(task)

    def _committed(self, queued: Sequence[PendingEffect]) -> None:
        """Effects just committed: start them now (none handed over: look in the outbox)."""
        if not queued or self._task is None or self._task.done():
            self._wake.set()
            return
        for pending in queued:
            if pending.id not in self._in_flight:
                self._spawn(pending, False)

    async def _loop(self) -> None:
        while True:
            try:
                if await self._lead("deadlines"):
                    await self._coordinator.tick()
                read_from = self._completions
                for pending in await self._outbox.due(self._coordinator.clock()):
                    if pending.id not in self._in_flight and not self._finished_since(
                        pending.id, read_from
                    ):
                        self._spawn(pending, False)
            except Exception:
                log.exception("payments.runner_failed")
            self._wake.clear()
            pause = await self._sleep_for()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)

    def _spawn(self, pending: PendingEffect, give_up_when_unavailable: bool) -> asyncio.Task[None]:
        task = asyncio.create_task(
            self._execute(pending, give_up_when_unavailable), name=f"effect-{pending.id}"
        )
        self._in_flight[pending.id] = task
        task.add_done_callback(lambda _: self._finish(pending.id))
        return task

    def _finish(self, effect_id: int) -> None:
        self._in_flight.pop(effect_id, None)
        self._completions += 1
        self._finished[effect_id] = self._completions
        if len(self._finished) > FINISHED_KEPT:
            del self._finished[next(iter(self._finished))]  # the oldest

    def _finished_since(self, effect_id: int, read_from: int) -> bool:
        return self._finished.get(effect_id, -1) > read_from

    async def _sleep_for(self) -> float:
        next_at = await self._outbox.next_at(self._coordinator.clock())
        if next_at is None:
            return self._idle_poll
        due = datetime.fromisoformat(next_at) - self._coordinator.clock()
        return max(0.01, min(self._idle_poll, due.total_seconds()))

    async def _execute(self, pending: PendingEffect, give_up_when_unavailable: bool) -> None:
        # Bound for the whole effect, so that the gateway's, the chargers' and the
        # coordinator's lines name the payment too.
        with structlog.contextvars.bound_contextvars(
            reservation_id=pending.reservation_id, effect=type(pending.effect).__name__
        ):
            await self._carry_out(pending, give_up_when_unavailable)

    async def _carry_out(self, pending: PendingEffect, give_up_when_unavailable: bool) -> None:
        bound = log.bind(attempt=pending.attempts + 1)
        r, token, email = await self._reservations.load_for_driver(pending.reservation_id)
        try:
            event = await self._executor.execute(
                pending, r, token, email, repeated=self._repeated(pending)
            )
        except ChargerUnreachable as error:
            bound.info("payments.effect_retry", error=str(error))
            await self._retry(pending, str(error))
            return
        except StripeUnavailable as error:
            if not give_up_when_unavailable:
                bound.warning("payments.effect_retry", error=str(error))
                await self._retry(pending, str(error))
                return
            event = CheckoutUnavailable(str(error))
        except Exception as error:
            # A bug or an unexpected failure: retried like an outage, and loud in the log.
            bound.exception("payments.effect_failed")
            await self._retry(pending, repr(error))
            return
        bound.info("payments.effect_done", outcome=event_name(event))
        await self._coordinator.handle(pending.reservation_id, event, effect_id=pending.id)

    def _repeated(self, pending: PendingEffect) -> bool:
        """Whether the effect may have been carried out already: retried here, queued
        before this runner started, or taken over from a node whose lease ran out (a
        process that died may have been carrying it out)."""
        return (
            pending.attempts > 0
            or pending.taken_over
            or bool(pending.created_at and pending.created_at < self._started_at)
        )

    async def _retry(self, pending: PendingEffect, error: str) -> None:
        delay = backoff(pending.attempts, self._retry_base, self._retry_ceiling, self._rng)
        await self._outbox.retry(pending.id, self._coordinator.clock() + delay, error)
        self._wake.set()
