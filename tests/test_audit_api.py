"""The money audit log over the API (JSON pages and CSV), and the security headers that
every HTTP response carries."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from csms.app import CentralSystem
from simulators.chargepoint import SimulatedCharger
from tests.conftest import API_HEADERS
from tests.payflow import Driver

CSV_HEADER = [
    "id",
    "at",
    "actor",
    "action",
    "reservationId",
    "amount",
    "currency",
    "stripeId",
    "detail",
]
CSP = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; form-action 'self' https: {sandbox}; frame-ancestors 'none'"
)


async def paid_session(driver: Driver, sim: SimulatedCharger) -> dict[str, Any]:
    """One charge on connector 1 paid, charged and captured; its final payment view."""
    rid = await driver.start_charging(sim)
    await driver.post(f"/api/payments/{rid}/stop")
    return await driver.wait_for_state(rid, "Completed")


async def get(
    driver: Driver, path: str, headers: dict[str, str] | None = API_HEADERS, **query: Any
) -> tuple[int, Any]:
    async with driver.http.get(f"{driver.base}{path}", params=query, headers=headers) as response:
        if response.content_type == "text/csv":
            return response.status, await response.text()
        return response.status, await response.json()


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


async def test_audit_lists_a_paid_sessions_money_movements(
    driver: Driver, sim: SimulatedCharger
) -> None:
    done = await paid_session(driver, sim)
    rid = done["reservationId"]
    # A second session, cancelled before paying, so that the filters have work to do.
    _, other = await driver.create("CP-1", 2)
    await driver.post(f"/api/payments/{other['reservationId']}/cancel")

    status, everything = await get(driver, "/api/audit")
    assert status == 200 and everything["nextCursor"] is None
    ids = [line["id"] for line in everything["items"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    assert {line["reservationId"] for line in everything["items"]} == {
        rid,
        other["reservationId"],
    }

    _, mine = await get(driver, "/api/audit", reservationId=rid)
    actions = [line["action"] for line in reversed(mine["items"])]
    assert actions == ["reservation created", "checkout created", "hold confirmed", "captured"]
    created, _, confirmed, captured = reversed(mine["items"])
    assert (created["actor"], created["amount"], created["detail"]) == ("driver", 250, "CP-1/1")
    assert (confirmed["amount"], confirmed["currency"]) == (250, "eur")
    assert captured["amount"] == done["capturedAmount"]
    assert captured["stripeId"] == confirmed["stripeId"] and captured["stripeId"].startswith("pi_")

    _, only_captures = await get(driver, "/api/audit", action="captured")
    assert [line["id"] for line in only_captures["items"]] == [captured["id"]]
    _, nothing = await get(driver, "/api/audit", reservationId=rid, action="hold released")
    assert nothing["items"] == []

    # from is inclusive, to exclusive, both on the line's time.
    at = captured["at"]
    _, since = await get(driver, "/api/audit", reservationId=rid, **{"from": at})
    assert captured["id"] in [line["id"] for line in since["items"]]
    assert all(line["at"] >= at for line in since["items"])
    _, until = await get(driver, "/api/audit", reservationId=rid, to=at)
    assert captured["id"] not in [line["id"] for line in until["items"]]
    assert len(since["items"]) + len(until["items"]) == len(mine["items"])
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    _, future = await get(driver, "/api/audit", **{"from": tomorrow})
    assert future["items"] == []

    # Pages of two, following the cursor, give the same lines in the same order.
    pages, cursor = [], None
    while True:
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        status, page = await get(driver, "/api/audit", **query)
        assert status == 200 and len(page["items"]) <= 2
        pages.extend(page["items"])
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert pages == everything["items"]


async def test_audit_csv_has_the_same_lines(driver: Driver, sim: SimulatedCharger) -> None:
    done = await paid_session(driver, sim)
    rid = done["reservationId"]
    _, listed = await get(driver, "/api/audit", reservationId=rid)
    async with driver.http.get(
        f"{driver.base}/api/audit.csv", params={"reservationId": rid}, headers=API_HEADERS
    ) as response:
        assert response.status == 200
        assert response.content_type == "text/csv"
        assert "attachment" in response.headers["Content-Disposition"]
        rows = _rows(await response.text())
    assert rows[0] == CSV_HEADER
    expected = [
        ["" if line[column] is None else str(line[column]) for column in CSV_HEADER]
        for line in listed["items"]
    ]
    assert rows[1:] == expected
    _, captured = await get(driver, "/api/audit.csv", action="captured")
    assert [row[3] for row in _rows(captured)[1:]] == ["captured"]
    assert _rows(captured)[1][5] == str(done["capturedAmount"])
    _, empty = await get(driver, "/api/audit.csv", action="no such action")
    assert _rows(empty) == [CSV_HEADER]


@pytest.mark.parametrize("path", ["/api/audit", "/api/audit.csv"])
async def test_audit_needs_the_api_key(driver: Driver, path: str) -> None:
    status, body = await get(driver, path, headers=None)
    assert status == 401 and body["error"]["code"] == "unauthorised"
    status, _ = await get(driver, path, headers={"X-API-Key": "wrong"})
    assert status == 401


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WyJ4Il0="}, "cursor"),  # ["x"]: a cursor, but not one of ours
        ({"limit": "0"}, "limit"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-01-01T00:00:00"}, "to"),  # no time zone
    ],
)
async def test_audit_refuses_bad_queries_naming_the_field(
    driver: Driver, query: dict[str, str], field: str
) -> None:
    status, body = await get(driver, "/api/audit", **query)
    assert status == 400
    assert body["error"]["field"] == field


# -- security headers on every response


async def test_security_headers_on_html_json_metrics_and_more(
    system: CentralSystem, driver: Driver
) -> None:
    assert system.sandbox is not None
    answers: dict[str, aiohttp.ClientResponse] = {}
    for name, path, headers in (
        ("html", "/c/CP-1/1", None),  # the driver's start page (the charger is offline)
        ("json", "/healthz", None),
        ("api", "/api/audit", API_HEADERS),
        ("metrics", "/metrics", None),
        ("csv", "/api/audit.csv", API_HEADERS),  # streamed: headers sent by the handler
        ("unauthorised", "/api/audit", None),
        ("not_found", "/no/such/page", None),
    ):
        async with driver.http.get(f"{driver.base}{path}", headers=headers) as response:
            await response.read()
            answers[name] = response
    assert answers["html"].content_type == "text/html"
    assert answers["json"].content_type == "application/json"
    assert (answers["unauthorised"].status, answers["not_found"].status) == (401, 404)
    for name, response in answers.items():
        assert response.headers.get("X-Content-Type-Options") == "nosniff", name
        assert response.headers.get("X-Frame-Options") == "DENY", name
        assert response.headers.get("Referrer-Policy") == "same-origin", name
    # Pages only: the policy lets their inline style and script run, and the payment form
    # reach Checkout (here the sandbox, which is plain http on another port).
    csp = answers["html"].headers["Content-Security-Policy"]
    assert csp == CSP.format(sandbox=system.sandbox.base_url)
    for name in ("json", "api", "metrics", "csv", "unauthorised"):
        assert "Content-Security-Policy" not in answers[name].headers, name


async def test_redirects_carry_the_security_headers(driver: Driver, sim: SimulatedCharger) -> None:
    _, created = await driver.create()
    async with driver.http.get(
        f"{driver.base}/pay/{created['token']}/success", allow_redirects=False
    ) as response:
        assert response.status == 303
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
