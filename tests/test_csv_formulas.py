"""Every CSV export neutralises what a spreadsheet would run as a formula: the transactions
(API and `csms transactions export`), the audit log, and owners' statements. Text cells
starting with = + - @, a tab or a carriage return get a leading apostrophe; numbers
(negative amounts and energies included), empty cells and dates come out unchanged
(httpapi.csv_export states the rule)."""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from csms.app import CentralSystem
from csms.cli import main
from csms.store.transactions import StartRequest
from httpapi.csv_export import neutralise
from payments.statements_render import to_csv
from tests.conftest import API_HEADERS, MakeConfig
from tests.test_statements import session, statement_of

# A charger id may hold = + - @ (OCPP's and our id rules allow them); an id tag any text.
EVIL_CHARGER = "=1+2"
EVIL_TAGS = ("@SUM(A1:A9)", "-2+3", "+cmd|' /C calc'!A0", "\tx", "\rx", '=HYPERLINK("x")')
STARTED = "2026-11-03T08:00:00.000Z"


def _table(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_neutralise_goes_by_type() -> None:
    for text in ("=1", "+1", "-1", "@x", "\tx", "\rx", "-5"):
        assert neutralise(text) == "'" + text
    for plain in ("CP-1", "2026-11-03T08:00:00.000Z", "1.5", "", "a=b", " =1"):
        assert neutralise(plain) == plain
    assert neutralise(-150) == -150 and neutralise(0) == 0 and neutralise(None) is None


async def _seed_transactions(system: CentralSystem) -> None:
    await system.chargers.register(EVIL_CHARGER)
    for number, tag in enumerate(EVIL_TAGS, start=1):
        started = await system.transactions.start(
            StartRequest(EVIL_CHARGER, number, tag, 1000, STARTED),
            "Accepted",
            reject_concurrent=False,
        )
        # The meter went back: a negative energy, a number, stays one.
        await system.transactions.stop(
            EVIL_CHARGER, started.transaction_id, meter_stop_wh=900,
            stopped_at=STARTED.replace("T08", "T09"), reason="Local", id_tag=None, samples=[],
        )  # fmt: skip


async def _get(system: CentralSystem, path: str, **params: Any) -> tuple[Any, str]:
    base = f"http://127.0.0.1:{system.http.port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(base + path, params=params, headers=API_HEADERS) as response:
            assert response.status == 200, await response.text()
            listing = await response.json()
        async with http.get(base + path + ".csv", params=params, headers=API_HEADERS) as response:
            assert response.status == 200 and response.content_type == "text/csv"
            return listing, await response.text()


def _check_transactions(text: str, listing: list[dict[str, Any]]) -> None:
    rows = _table(text)
    assert len(rows) == len(EVIL_TAGS) == len(listing)
    for row, item in zip(rows, listing, strict=True):
        assert row["chargerId"] == "'" + EVIL_CHARGER
        assert row["idTag"] == "'" + item["idTag"] and item["idTag"] in EVIL_TAGS
        assert (row["meterStartWh"], row["meterStopWh"], row["energyWh"]) == ("1000", "900", "-100")
        assert row["id"] == str(item["id"]) and row["powerW"] == ""
        assert row["startedAt"] == item["startedAt"] == STARTED
        assert row["stoppedAt"] == item["stoppedAt"] and row["stopReason"] == "Local"


def test_transactions_export_api_and_cli(
    make_config: MakeConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = make_config()

    async def exported() -> tuple[Any, str]:
        async with CentralSystem(config) as system:
            await _seed_transactions(system)
            return await _get(system, "/api/transactions")

    listing, text = asyncio.run(exported())
    _check_transactions(text, listing["items"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CSMS_DATABASE_PATH", config.database.path)
    monkeypatch.setenv("CSMS_DATABASE_URL", config.database.url)
    assert main(["transactions", "export"]) == 0
    assert capsys.readouterr().out == text


async def test_audit_export(csms: CentralSystem) -> None:
    now = datetime(2026, 11, 3, 8, tzinfo=UTC)

    def lines(conn: Any) -> None:
        for n, detail in enumerate(EVIL_TAGS):
            csms.audit.write(
                conn, now, "@operator", "=refund", "-res_1", amount=-150 * (n + 1),
                currency="eur", stripe_id="+re_1", detail=detail,
            )  # fmt: skip
        csms.audit.write(conn, now, "system", "captured", "res_2", 1234, "eur", "pi_1", None)

    await csms.db.write(lines)
    listing, text = await _get(csms, "/api/audit")
    rows = _table(text)
    assert len(rows) == len(listing["items"]) == len(EVIL_TAGS) + 1
    plain, *evil = rows  # newest first
    assert plain == {
        "id": str(listing["items"][0]["id"]), "at": listing["items"][0]["at"], "actor": "system",
        "action": "captured", "reservationId": "res_2", "amount": "1234", "currency": "eur",
        "stripeId": "pi_1", "detail": "",
    }  # fmt: skip
    assert plain["at"].startswith("2026-11-03T08:00:00")
    for row, item in zip(evil, listing["items"][1:], strict=True):
        assert (row["actor"], row["action"], row["reservationId"], row["stripeId"]) == (
            "'@operator", "'=refund", "'-res_1", "'+re_1"
        )  # fmt: skip
        assert row["detail"] == "'" + item["detail"] and item["detail"] in EVIL_TAGS
        assert row["amount"] == str(item["amount"]) and item["amount"] < 0  # a number still
        assert row["at"] == item["at"] and row["currency"] == "eur"


def test_statement_export() -> None:
    evil = replace(session(1, 1000), charger_name="-1+1", site_name="\t=x", reservation_id="@res")
    rows = _table(to_csv(statement_of([evil])))
    line, total = rows[0], rows[-1]
    assert (line["charger"], line["site"], line["reference"]) == ("'-1+1", "'\t=x", "'@res")
    assert line["date"] == evil.stopped_at.isoformat() and line["date"][0].isdigit()
    assert line["captured"] == str(evil.captured) and line["energy_wh"] == str(evil.energy_wh)
    assert total["kind"] == "total" and total["captured"] == str(evil.captured)
