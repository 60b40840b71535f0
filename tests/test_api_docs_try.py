"""`/api/docs` as an operator uses it, in headless Chromium: a key entered at the top (kept in
the tab's session storage only), operations tried from their "Try it" forms, their answers
shown (200 with the list, a 400 naming the field, a 401 without a key), a change confirmed
before it is sent; the page passes the console's accessibility checks. Then the page's pure
parts: minimal example bodies, and the role an operation needs when the document says so."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import fastjsonschema
import pytest
from aiohttp import web

from csms.api.docs import _reference_page
from csms.api.docs_try import example, references
from csms.app import CentralSystem
from tests.browser import Browser
from tests.conftest import MakeConfig
from tests.console_a11y import accessibility_problems
from tests.console_fixtures import base_url, console_browser

browser = console_browser  # Chromium at a desktop's size, no cookie left over

LIST_CHARGERS = "try-list_chargers"
NEW_ID_TAG = "try-create_id_tag"
ONE_CHARGER = "try-get_charger"
CSV = "try-export_transactions"


@pytest.fixture
async def system(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    async with CentralSystem(make_config()) as running:
        await running.chargers.register("CP-DOCS", name="Docs bay", location="Level 1")
        yield running


async def _open_docs(browser: Browser, system: CentralSystem) -> None:
    await browser.open(base_url(system) + "/api/docs")
    await browser.evaluate("sessionStorage.clear(); return true")
    await browser.open(base_url(system) + "/api/docs")


async def _open(browser: Browser, form: str) -> None:
    """Open the form's "Try it" section."""
    await browser.evaluate(
        f"document.getElementById('{form}').closest('details').open = true; return true"
    )


async def _try(browser: Browser, form: str) -> None:
    """Open the form's "Try it" section and press its Send button."""
    await _open(browser, form)
    await browser.click(f"{form}-send")


async def _answered(browser: Browser, form: str, status: int) -> str:
    """The form's status line once it shows `status`."""

    async def shown() -> bool:
        return (await browser.text(f"{form}-status")).startswith(f"HTTP {status}")

    await browser.until(shown)
    return await browser.text(f"{form}-status")


async def _id_tags(system: CentralSystem, key: str) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession(headers={"X-API-Key": key}) as http,
        http.get(base_url(system) + "/api/id-tags") as response,
    ):
        return (await response.json())["items"]


async def _stored(browser: Browser) -> dict[str, Any]:
    return await browser.evaluate(
        "return {session: {...sessionStorage}, local: {...localStorage}, cookie: document.cookie}"
    )


async def test_try_a_list_with_a_key_then_without(system: CentralSystem, browser: Browser) -> None:
    key = await system.api_keys.create("docs")
    await _open_docs(browser, system)
    assert await browser.language() == "en"
    assert await browser.attribute("api-key", "type") == "password"
    await browser.fill("api-key", key)
    await browser.screenshot("api-docs-key")

    await _try(browser, LIST_CHARGERS)
    assert "200" in await _answered(browser, LIST_CHARGERS, 200)
    answer = await browser.text(f"{LIST_CHARGERS}-answer")
    assert "application/json" in answer and '"CP-DOCS"' in answer  # pretty-printed list
    assert '  "items": [' in await browser.text(f"{LIST_CHARGERS}-answer")
    await browser.evaluate(
        f"document.getElementById('{LIST_CHARGERS}').scrollIntoView(); return true"
    )
    await browser.screenshot("api-docs-try")

    await _try(browser, CSV)
    assert "200" in await _answered(browser, CSV, 200)
    answer = await browser.text(f"{CSV}-answer")
    assert "text/csv" in answer and "chargerId" in answer and "{" not in answer  # as text

    await _try(browser, ONE_CHARGER)  # its chargerId left empty
    assert await browser.text(f"{ONE_CHARGER}-status") == "Not sent: chargerId is required."

    await browser.click("forget-key")
    assert await browser.attribute("api-key", "value") == ""
    assert (await _stored(browser))["session"] == {}
    await _try(browser, LIST_CHARGERS)
    status = await _answered(browser, LIST_CHARGERS, 401)
    assert "a valid X-API-Key header is required" in status and "no key entered" in status
    assert "CP-DOCS" not in await browser.text(f"{LIST_CHARGERS}-answer")


async def test_a_change_is_confirmed_and_a_bad_body_named(
    system: CentralSystem, browser: Browser
) -> None:
    key = await system.api_keys.create("docs")
    await _open_docs(browser, system)
    await browser.fill("api-key", key)
    await _open(browser, NEW_ID_TAG)
    body = await browser.attribute(f"{NEW_ID_TAG}-body", "value")
    assert body is not None and '"idTag": "string"' in body  # the required field, prefilled

    await browser.fill(f"{NEW_ID_TAG}-body", '{"blocked": false}')  # no idTag
    await _try(browser, NEW_ID_TAG)
    assert await browser.visible(f"{NEW_ID_TAG}-confirm")
    await browser.click(f"{NEW_ID_TAG}-confirm-no")
    assert await browser.text(f"{NEW_ID_TAG}-status") == "Not sent."
    assert not await browser.visible(f"{NEW_ID_TAG}-confirm")

    await browser.click(f"{NEW_ID_TAG}-send")
    await browser.click(f"{NEW_ID_TAG}-confirm-yes")
    status = await _answered(browser, NEW_ID_TAG, 400)
    assert "field: idTag" in status
    assert "field: idTag" in await browser.text(f"{NEW_ID_TAG}-answer")
    assert await _id_tags(system, key) == []  # nothing was created

    await browser.fill(f"{NEW_ID_TAG}-body", '{"idTag": "DOCS-1"}')
    await browser.click(f"{NEW_ID_TAG}-send")
    await browser.click(f"{NEW_ID_TAG}-confirm-yes")
    assert "201" in await _answered(browser, NEW_ID_TAG, 201)
    assert [tag["idTag"] for tag in await _id_tags(system, key)] == ["DOCS-1"]


async def test_the_key_stays_in_the_tab_session_only(
    system: CentralSystem, browser: Browser
) -> None:
    key = await system.api_keys.create("docs")
    await _open_docs(browser, system)
    await browser.fill("api-key", key)
    await browser.open(base_url(system) + "/api/docs")  # a reload in the same tab
    assert await browser.attribute("api-key", "value") == key
    kept = await _stored(browser)
    assert list(kept["session"].values()) == [key]
    assert kept["local"] == {} and kept["cookie"] == ""

    await browser.evaluate("sessionStorage.clear(); return true")  # the tab's session ends
    await browser.open(base_url(system) + "/api/docs")
    assert await browser.attribute("api-key", "value") == ""
    await _try(browser, LIST_CHARGERS)
    await _answered(browser, LIST_CHARGERS, 401)


async def test_the_page_is_accessible(system: CentralSystem, browser: Browser) -> None:
    """Every form open (a closed one's controls look visible to the checks, yet are
    rightly not reached with Tab), with an answer and a confirmation shown; then nothing
    wider than a phone's screen."""
    await _open_docs(browser, system)
    await _try(browser, LIST_CHARGERS)
    await _answered(browser, LIST_CHARGERS, 401)
    await _try(browser, NEW_ID_TAG)
    assert await browser.visible(f"{NEW_ID_TAG}-confirm")  # its buttons are checked too
    opened = await browser.evaluate(
        "const all = document.querySelectorAll('details.try');"
        "all.forEach(d => { d.open = true; }); return all.length"
    )
    assert opened == await browser.evaluate("return document.querySelectorAll('.op').length")
    assert await accessibility_problems(browser) == []
    await browser.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    await browser.emulate_phone()
    try:
        assert await browser.overflowing() == []  # a phone's width: nothing reaches past it
    finally:
        await browser.emulate_phone(False)


async def test_a_403_says_which_role_is_needed(browser: Browser) -> None:
    """A stand-in server: the page of a document whose operation needs a role, and that
    operation answering 403 as a key without the role gets. Its parameter is named `id`,
    which a form control must not shadow (`form.id`)."""
    op = {
        "summary": "Refund a payment",
        "operationId": "refund",
        "tags": ["payments"],
        "x-role": "finance",
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {}}],
        "responses": {"200": {"description": "OK"}},
    }
    document = {
        "info": {"title": "csms", "version": "1"},
        "paths": {"/api/refunds/{id}": {"post": op}},
        "components": {"schemas": {}},
    }
    page = _reference_page(document)

    async def docs(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    async def refund(request: web.Request) -> web.Response:
        assert request.match_info["id"] == "py_1" and request.headers["X-API-Key"] == "k"
        body = {"error": {"code": "forbidden", "message": "this key may not refund"}}
        return web.json_response(body, status=403)

    app = web.Application()
    app.router.add_get("/api/docs", docs)
    app.router.add_post("/api/refunds/{id}", refund)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        await browser.open(f"http://127.0.0.1:{port}/api/docs")
        assert "needs role finance" in await browser.page_text()
        await browser.fill("api-key", "k")
        await _open(browser, "try-refund")
        await browser.fill("try-refund-path-id", "py_1")
        await browser.click("try-refund-send")
        await browser.click("try-refund-confirm-yes")
        status = await _answered(browser, "try-refund", 403)
        assert "this key may not refund" in status and "needs role finance" in status
    finally:
        await runner.cleanup()


# -- the page's pure parts


def test_example_bodies_hold_the_required_fields_with_placeholders() -> None:
    components = {
        "Band": {
            "type": "object",
            "properties": {"start": {"type": "string", "format": "time"}},
            "required": ["start"],
        }
    }
    schema = {
        "type": "object",
        "properties": {
            "connectorId": {"type": "integer", "minimum": 1},
            "kind": {"type": "string", "enum": ["Hard", "Soft"]},
            "currency": {"type": "string", "maxLength": 3},
            "when": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
            "bands": {"type": "array", "items": {"$ref": "#/components/schemas/Band"}},
            "first": {"$ref": "#/components/schemas/Band"},
            "optional": {"type": "string"},
        },
        "required": ["connectorId", "kind", "currency", "when", "bands", "first"],
    }
    assert example(schema, references(components)) == {
        "connectorId": 1,
        "kind": "Hard",
        "currency": "str",
        "when": "2026-01-31T09:00:00Z",
        "bands": [],
        "first": {"start": "09:00:00"},
    }


async def test_every_example_body_is_valid_for_its_schema(system: CentralSystem) -> None:
    """The prefilled bodies of the real document, the OCPP commands' inline schemas (and
    their own definitions) included, pass their schemas: only the values are to replace."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(base_url(system) + "/api/openapi.json") as response,
    ):
        document = await response.json()
    components = document["components"]["schemas"]
    bodies = [
        op["requestBody"]["content"]["application/json"]["schema"]
        for methods in document["paths"].values()
        for op in methods.values()
        if "requestBody" in op
    ]
    assert len(bodies) > 30
    for schema in bodies:
        value = example(schema, references(components, schema))
        check = fastjsonschema.compile({**schema, "components": {"schemas": components}})
        assert check(value) == value


def test_an_operation_with_a_role_says_so() -> None:
    op = {
        "summary": "Refund",
        "operationId": "refund",
        "tags": ["payments"],
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {}}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}},
        "responses": {"200": {"description": "OK"}},
    }
    document = {
        "info": {"title": "csms", "version": "1"},
        "paths": {"/api/x/{id}": {"post": {**op, "x-role": "admin"}}, "/api/y": {"get": op}},
        "components": {"schemas": {}},
    }
    page = _reference_page(document)
    assert page.count("needs role admin") == 1
    assert "data-role='admin'" in page and "may move money" in page
    assert "src=" not in page and "<link" not in page
