"""The driver's way back from Stripe Checkout, and a live page of the charging session.

Minimal pages served by the server itself (no external assets); the session page
refreshes itself every few seconds and works without JavaScript.
"""

from __future__ import annotations

from html import escape

from aiohttp import web

from payments import reservation as machine
from payments.coordinator import Coordinator
from payments.http import PaymentRoutes
from payments.pricing import format_money
from payments.store import PaymentStore
from payments.views import cost_so_far, released_amount, stage

_STAGE_TEXT = {
    "payment": "Waiting for your payment",
    "waiting_for_charger": "Payment received. Waiting for the charger",
    "waiting_for_plug": "Payment received. Plug in your car to start",
    "starting": "Starting the charge",
    "charging": "Charging",
    "stopping": "Stopping the charge",
    "waiting_for_disconnect": "Charge finished. Unplug your car",
    "finishing": "Charge finished. Settling the payment",
    "done": "Done. Thank you",
    "failed": "This session did not go through",
}


class DriverPages:
    def __init__(
        self, store: PaymentStore, coordinator: Coordinator, routes: PaymentRoutes
    ) -> None:
        self._store = store
        self._coordinator = coordinator
        self._routes = routes

    def register(self, app: web.Application) -> None:
        app.router.add_get("/pay/{token}/success", self.success)
        app.router.add_get("/pay/{token}/cancel", self.cancelled)
        app.router.add_get("/session/{token}", self.session)
        app.router.add_post("/session/{token}/stop", self.stop)

    async def _reservation_id(self, request: web.Request) -> str:
        found = await self._store.find_id("token", request.match_info["token"])
        if found is None:
            raise web.HTTPNotFound(
                text=_page("Not found", "<p>This charging session does not exist.</p>"),
                content_type="text/html",
            )
        return found

    async def success(self, request: web.Request) -> web.Response:
        reservation_id = await self._reservation_id(request)
        await self._routes.confirm_payment(reservation_id)
        raise web.HTTPSeeOther(f"/session/{request.match_info['token']}")

    async def cancelled(self, request: web.Request) -> web.Response:
        reservation_id = await self._reservation_id(request)
        await self._coordinator.handle(reservation_id, machine.Cancel("driver"), actor="driver")
        return web.Response(
            text=_page(
                "Payment cancelled",
                "<p>No money was taken: any hold on your card has been released.</p>",
            ),
            content_type="text/html",
        )

    async def stop(self, request: web.Request) -> web.Response:
        reservation_id = await self._reservation_id(request)
        await self._coordinator.handle(
            reservation_id, machine.StopRequested("driver"), actor="driver"
        )
        raise web.HTTPSeeOther(f"/session/{request.match_info['token']}")

    async def session(self, request: web.Request) -> web.Response:
        r = await self._store.get(await self._reservation_id(request))
        assert r is not None
        current = stage(r)
        money = r.tariff.currency
        rows = [
            ("Charger", f"{r.charger_id}, connector {r.connector_id}"),
            ("Energy", f"{r.energy_wh / 1000:.3f} kWh"),
            ("Cost so far", format_money(cost_so_far(r, self._coordinator.clock()), money)),
            ("Hold on your card", format_money(r.hold_amount, money)),
        ]
        if current == "done":
            rows += [
                ("Charged", format_money(r.captured_amount, money)),
                ("Released", format_money(released_amount(r), money)),
            ]
        if current == "failed" and r.failure_reason:
            rows.append(("Reason", r.failure_reason))
        table = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
        stop = (
            f'<form method="post" action="/session/{escape(request.match_info["token"])}/stop">'
            '<button type="submit">Stop charging</button></form>'
            if current in ("charging", "waiting_for_plug", "waiting_for_charger", "starting")
            else ""
        )
        refresh = current not in ("done", "failed")
        heading = f"<p id='stage' data-stage='{current}'>{escape(_STAGE_TEXT[current])}</p>"
        body = f"{heading}<table>{table}</table>{stop}"
        return web.Response(
            text=_page("Your charging session", body, refresh), content_type="text/html"
        )


def _page(title: str, body: str, refresh: bool = False) -> str:
    meta = '<meta http-equiv="refresh" content="5">' if refresh else ""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"{meta}<title>{escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:32rem}"
        "th{text-align:left;padding-right:1rem}"
        "button{font-size:1.1rem;padding:.6rem 1.2rem}</style>"
        f"</head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
