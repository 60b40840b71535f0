"""The effect runner: carries out pending effects from the outbox, retries, resumes.

Effects survive a crash because they are rows; after a restart the runner simply finds
them due. Each effect's outcome is applied through the coordinator together with
marking the effect done, so an effect carried out twice (a crash between the Stripe
call and the commit) is reported once; its idempotency key made Stripe do it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import datetime, timedelta

import structlog

from payments.codec import event_name
from payments.coordinator import Coordinator
from payments.effects import EffectExecutor
from payments.reservation import CheckoutUnavailable
from payments.store import PaymentStore, PendingEffect
from payments.stripe_gateway import StripeUnavailable

log = structlog.get_logger()


def backoff(attempts: int, base: float, ceiling: float, rng: random.Random) -> timedelta:
    """Exponential backoff with +-25 % jitter: base, 2 base, 4 base ... at most `ceiling`."""
    delay = min(ceiling, base * 2**attempts)
    return timedelta(seconds=delay * rng.uniform(0.75, 1.25))


class EffectRunner:
    def __init__(
        self,
        store: PaymentStore,
        coordinator: Coordinator,
        executor: EffectExecutor,
        *,
        retry_base: float = 1.0,
        retry_ceiling: float = 30.0,
        idle_poll: float = 5.0,
    ) -> None:
        self._store = store
        self._coordinator = coordinator
        self._executor = executor
        self._retry_base = retry_base
        self._retry_ceiling = retry_ceiling
        self._idle_poll = idle_poll
        self._rng = random.Random()
        self._wake = asyncio.Event()
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None
        coordinator.on_effects(self._wake.set)

    def start(self) -> None:
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
        for pending in await self._store.due_effects(
            self._coordinator.clock(), reservation_id=reservation_id
        ):
            task = self._in_flight.get(pending.id) or self._spawn(pending, give_up_when_unavailable)
            await asyncio.shield(task)

    async def _loop(self) -> None:
        while True:
            try:
                await self._coordinator.tick()
                for pending in await self._store.due_effects(self._coordinator.clock()):
                    if pending.id not in self._in_flight:
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
        task.add_done_callback(lambda _: self._in_flight.pop(pending.id, None))
        return task

    async def _sleep_for(self) -> float:
        next_at = await self._store.next_effect_at()
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
        r, token, email = await self._store.load_for_driver(pending.reservation_id)
        try:
            event = await self._executor.execute(pending, r, token, email)
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

    async def _retry(self, pending: PendingEffect, error: str) -> None:
        delay = backoff(pending.attempts, self._retry_base, self._retry_ceiling, self._rng)
        await self._store.effect_retry(pending.id, self._coordinator.clock() + delay, error)
        self._wake.set()
