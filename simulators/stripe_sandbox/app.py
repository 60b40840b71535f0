"""The aiohttp application: routes, and the path every /v1 request takes.

    Request-Id -> API key -> fault injection -> Idempotency-Key -> endpoint -> expand
        -> commit (POST: the state file holds the change) -> answer

A saved response replayed for an Idempotency-Key also waits for a commit: if the commit
of the first request failed, its retry is not told of a change that is not on disk.

Every response carries a `Request-Id`; /v1 responses also carry `Stripe-Version` and,
for POST, the `Idempotency-Key` they ran under.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from . import forms
from .api import Api, ApiCall, Handler
from .errors import StripeError, api_error, authentication, unrecognized_url
from .faults import Fault, FaultPlan
from .idempotency import IdempotencyStore
from .params import Reader
from .resources import JSON, new_request_id
from .state import Account
from .state_types import Origin

log = logging.getLogger("simulators.stripe_sandbox")

_NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)
_TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")

REQUEST_ID = web.RequestKey("request_id", str)

AiohttpHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(status: int, body: JSON, headers: dict[str, str] | None = None) -> web.Response:
    # Stripe pretty-prints its JSON.
    return web.Response(
        body=json.dumps(body, indent=2).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
    )


@web.middleware
async def request_ids(request: web.Request, handler: AiohttpHandler) -> web.StreamResponse:
    request_id = new_request_id()
    request[REQUEST_ID] = request_id
    try:
        response = await handler(request)
    except StripeError as exc:
        response = json_response(exc.status, exc.body(request_id), exc.headers)
    except web.HTTPException as exc:
        exc.headers["Request-Id"] = request_id
        raise
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        response = json_response(500, api_error().body(request_id))
    response.headers["Request-Id"] = request_id
    return response


def api_key(request: web.Request) -> str:
    """The caller's secret key, from Bearer auth (the SDK) or Basic auth (curl -u)."""
    header = request.headers.get("Authorization", "").strip()
    if not header:
        raise authentication(_NO_KEY)
    scheme, _, credentials = header.partition(" ")
    key = credentials.strip()
    if scheme.lower() == "basic":
        try:
            key = base64.b64decode(key).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            key = ""
    elif scheme.lower() != "bearer":
        key = ""
    if not key.startswith(_TEST_KEY_PREFIXES) or len(key) <= len("sk_test_"):
        redacted = key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else key
        raise authentication(f"Invalid API Key provided: {redacted}")
    return key


@dataclass
class Pipeline:
    account: Account
    idempotency: IdempotencyStore
    faults: FaultPlan
    api_version: str
    stopping: asyncio.Event
    hang_seconds: float
    # Makes the account's state durable (write-through); called before a POST is answered.
    commit: Callable[[], None] = lambda: None

    def wrap(self, handler: Handler) -> AiohttpHandler:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            return await self.run(request, handler)

        return endpoint

    async def run(self, request: web.Request, handler: Handler) -> web.Response:
        request_id = request[REQUEST_ID]
        scope = api_key(request)
        connected = request.headers.get("Stripe-Account")
        if connected:
            self._check_connected(scope, connected)
            # Stripe keeps idempotency keys per account.
            scope = f"{scope}/{connected}"
        version = request.headers.get("Stripe-Version", self.api_version)
        encoded = await request.text() if request.method == "POST" else request.query_string
        params = forms.decode(encoded)
        headers = {"Stripe-Version": version}

        fault = self.faults.take(request.method, request.path)
        if fault is not None and fault.status == "timeout" and not fault.after_processing:
            log.info("fault: %s %s lost (hangs)", request.method, request.path)
            await self._hang()
            raise api_error()

        key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
        if key is not None:
            headers["Idempotency-Key"] = key
            saved = self.idempotency.begin(
                scope, key, f"{request.method} {request.path}", params, request_id
            )
            if saved is not None:
                assert saved.status is not None
                # Replayed only once what it answered is on disk (a commit may have failed).
                self.commit()
                headers |= {"Idempotent-Replayed": "true", "Original-Request": saved.request_id}
                return web.Response(
                    body=saved.body,
                    status=saved.status,
                    headers=headers,
                    content_type="application/json",
                )

        try:
            status, body, save = await self._execute(request, handler, params, key, fault)
        except BaseException:
            if key is not None:
                self.idempotency.release(scope, key)
            raise
        encoded_body = json.dumps(body, indent=2).encode()
        if key is not None:
            if save:
                self.idempotency.save(scope, key, status, encoded_body)
            else:
                self.idempotency.release(scope, key)
        if request.method == "POST":
            self.commit()
        if fault is not None and fault.status == "timeout":
            log.info("fault: %s %s processed, answer withheld", request.method, request.path)
            await self._hang()
        return web.Response(
            body=encoded_body, status=status, headers=headers, content_type="application/json"
        )

    async def _execute(
        self,
        request: web.Request,
        handler: Handler,
        params: JSON,
        key: str | None,
        fault: Fault | None,
    ) -> tuple[int, JSON, bool]:
        """Status, body, and whether the idempotency layer may save them."""
        request_id = request[REQUEST_ID]
        try:
            if fault is not None and fault.delay_seconds:
                log.info("fault: %s %s delayed", request.method, request.path)
                await asyncio.sleep(fault.delay_seconds)
            if fault is not None and isinstance(fault.status, int):
                log.info("fault: %s %s -> %d", request.method, request.path, fault.status)
                raise _injected(fault.status)
            reader = Reader(params)
            expand = reader.strings("expand") or []
            call = ApiCall(
                reader,
                Origin(request_id, key),
                dict(request.match_info),
                request.headers.get("Stripe-Account") or None,
            )
            result = self.account.expand(handler(call), expand)
            return 200, result, True
        except StripeError as exc:
            return exc.status, exc.body(request_id), exc.saved and exc.status < 500

    def _check_connected(self, key: str, account_id: str) -> None:
        obj = self.account.objects.peek(account_id) if account_id in self.account.objects else None
        if obj is None or obj["object"] != "account":
            redacted = key[:8] + "*" * max(0, len(key) - 12) + key[-4:]
            raise StripeError(
                403,
                "invalid_request_error",
                f"The provided key '{redacted}' does not have access to account "
                f"'{account_id}' (or that account does not exist). Application access may "
                "have been revoked.",
                code="account_invalid",
            )

    async def _hang(self) -> None:
        # Longer than any client timeout; ends early when the sandbox stops.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), self.hang_seconds)


def _injected(status: int) -> StripeError:
    if status == 429:
        return StripeError(
            429,
            "invalid_request_error",
            "Too many requests hit the API too quickly. We recommend an exponential backoff "
            "of your requests.",
            code="rate_limit",
        )
    if status >= 500:
        return api_error()
    return StripeError(status, "invalid_request_error", "Injected fault.")


def build_application(
    pipeline: Pipeline,
    api: Api,
    page_routes: list[web.RouteDef],
    control_routes: list[web.RouteDef],
) -> web.Application:
    app = web.Application(middlewares=[request_ids])
    for method, path, handler in api.routes():
        app.router.add_route(method, path, pipeline.wrap(handler))

    async def unrecognized(request: web.Request) -> web.StreamResponse:
        api_key(request)
        raise unrecognized_url(request.method, request.path)

    app.router.add_route("*", "/v1/{tail:.*}", unrecognized)
    app.add_routes(page_routes)
    app.add_routes(control_routes)
    return app
