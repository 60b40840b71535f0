"""The console's reports page: a real paid session's figures per day and per charger, the CSV
links, a bad range shown naming the field, and the page kept to finance (and admin)."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

from csms.app import CentralSystem
from payments.currency import format_money
from simulators.chargepoint import SimulatedCharger
from tests.console_fixtures import console_client
from tests.payflow import Driver, finished_session, refund_and_wait


async def test_a_paid_session_in_the_reports(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> None:
    rid, _ = await finished_session(driver, sim)
    await refund_and_wait(driver, rid, {"amount": 30, "reason": "late start"})
    status = await driver.status(rid)
    captured = status["capturedAmount"]
    assert system.sandbox is not None
    (ledger,) = system.sandbox.ledger().values()
    assert ledger["amount_captured"] == captured and ledger["amount_refunded"] == 30

    today = datetime.now(UTC).date()  # the operator's zone is UTC here
    since, until = (today - timedelta(days=2)).isoformat(), today.isoformat()
    async with console_client(system, "finance") as finance:
        page = await finance.text(f"/console/reports?from={since}&to={until}")
        assert "<h1>Reports</h1>" in page
        days = re.findall(r'<tr data-date="([0-9-]+)">', page)
        assert days == [(today - timedelta(days=n)).isoformat() for n in (2, 1, 0)]
        revenue = format_money(captured - 30, "eur")
        row = page.split(f'<tr data-date="{today.isoformat()}">')[1].split("</tr>")[0]
        cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row)
        assert cells[0] == today.isoformat() and cells[1] == "1"  # one OCPP transaction
        assert cells[3:] == [
            "EUR",
            "1",
            f"{status['energyWh'] / 1000:.3f}",
            format_money(captured, "eur"),
            format_money(30, "eur"),
            revenue,
        ]
        charger = page.split('<tr data-charger="CP-1">')[1].split("</tr>")[0]
        assert revenue in charger
        # The CSV links give the same figures.
        link = re.search(r'id="daily-csv" href="([^"]+)"', page)
        assert link is not None
        export = await finance.get(link[1].replace("&amp;", "&"))
        assert export.status == 200 and export.content_type == "text/csv"
        rows = list(csv.DictReader(io.StringIO(await export.text())))
        assert len(rows) == 3
        (line,) = [r for r in rows if r["date"] == today.isoformat()]
        assert int(line["captured"]) == captured and int(line["revenue"]) == captured - 30
        by_charger = await finance.get(f"/console/reports/chargers.csv?from={since}&to={until}")
        (only,) = list(csv.DictReader(io.StringIO(await by_charger.text())))
        assert only["chargerId"] == "CP-1" and int(only["refunded"]) == 30


async def test_a_bad_range_is_shown_naming_the_field(system: CentralSystem) -> None:
    async with console_client(system, "admin") as admin:  # admin has finance's role
        response = await admin.get("/console/reports?from=2026-11-05&to=2026-11-01")
        page = await response.text()
        assert response.status == 400
        assert 'id="range-error" data-field="to"' in page and 'data-date="' not in page
        year = await admin.get("/console/reports?from=2024-01-01&to=2025-01-01")
        assert year.status == 400 and 'data-field="to"' in await year.text()
        bad = await admin.get("/console/reports?from=yesterday&to=2026-11-01")
        assert bad.status == 400 and 'data-field="from"' in await bad.text()
        export = await admin.get("/console/reports/daily.csv?from=2026-11-02&to=2026-11-01")
        assert export.status == 400
        default = await admin.text("/console/reports")
        assert len(re.findall(r'<tr data-date="', default)) == 7  # the last 7 days


async def test_only_finance_reads_the_reports(system: CentralSystem) -> None:
    for role in ("viewer", "support"):
        async with console_client(system, role) as other:
            page = await other.get("/console/reports")
            assert page.status == 403 and "needs the role finance" in await page.text()
            export = await other.get("/console/reports/daily.csv?from=2026-11-01&to=2026-11-01")
            assert export.status == 403
            assert 'href="/console/reports"' not in await other.text("/console")
