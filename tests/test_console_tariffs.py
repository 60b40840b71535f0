"""The console's tariff pages over HTTP: list, create, edit, assign and remove, bad input shown
on the page naming the field with nothing stored, the preview's JSON, roles."""

from __future__ import annotations

import re

from csms.app import CentralSystem
from csms.console.tariff_form import form_of, preview, tariff_of
from payments.pricing import Tariff, Usage, hold_amount, price
from storage.clock import utc_now
from tests.conftest import ocpp_url
from tests.console_fixtures import console_client
from tests.ocpp_client import RawCharger

# 0.30 EUR/kWh, 1.00 per session, 20 kWh at most, 0.05 a minute after 30 free, at most 120.
FORM = {
    "id": "city",
    "currency": "EUR",
    "pricePerKwh": "0.30",
    "sessionFee": "1.00",
    "maxEnergyWh": "20000",
    "timeFeePerMinute": "0.05",
    "timeFeeFreeMinutes": "30",
    "timeFeeMaxMinutes": "120",
}
CITY = Tariff(
    "eur",
    price_per_kwh=30,
    session_fee=100,
    max_energy_wh=20000,
    time_fee_per_minute=5,
    time_fee_free_minutes=30,
    time_fee_max_minutes=120,
)


async def _charger(system: CentralSystem, charger_id: str = "CP-7", connectors: int = 2) -> None:
    """A charger that booted and reported its connectors (1 to `connectors`)."""
    async with RawCharger.connect(ocpp_url(system), charger_id) as client:
        await client.call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
        for n in range(1, connectors + 1):
            await client.call(
                "StatusNotification",
                {"connectorId": n, "errorCode": "NoError", "status": "Available"},
            )


def _error(page: str) -> str:
    found = re.search(r'<p class="error" role="alert" id="form-error" data-field="([^"]+)"', page)
    assert found is not None, page
    return found[1]


async def test_create_edit_assign_and_remove(system: CentralSystem) -> None:
    await _charger(system)
    async with console_client(system, "admin") as admin:
        created = await admin.post("/console/tariffs/new", FORM)
        assert created.status == 303 and created.headers["Location"] == "/console/tariffs/city"
        assert (await system.tariffs.all())["city"] == CITY
        page = await admin.text("/console/tariffs/city")
        assert "Tariff city added" in page  # the flash
        assert f">{_money(hold_amount(CITY))}<" in page

        # Edit: the price goes up; the form shows what is stored.
        edited = await admin.post("/console/tariffs/city", {**form_of(CITY), "pricePerKwh": "0.35"})
        assert edited.status == 303
        assert (await system.tariffs.all())["city"].price_per_kwh == 35
        assert 'value="0.35"' in await admin.text("/console/tariffs/city")

        # Assign to the whole charger and to connector 2; both listed.
        for connector in ("0", "2"):
            assigned = await admin.post(
                "/console/tariffs/city/assignments", {"chargerId": "CP-7", "connectorId": connector}
            )
            assert assigned.status == 303
        assert await system.tariffs.of_charger("CP-7") == {0: "city", 2: "city"}
        listing = await admin.text("/console/tariffs")
        assert "CP-7, CP-7 connector 2" in listing and "/console/tariffs/city" in listing
        assert "Default tariff" in listing

        removed = await admin.post(
            "/console/tariffs/city/assignments/remove", {"chargerId": "CP-7", "connectorId": "2"}
        )
        assert removed.status == 303
        assert await system.tariffs.of_charger("CP-7") == {0: "city"}


async def test_bad_input_names_the_field_and_changes_nothing(system: CentralSystem) -> None:
    await _charger(system, connectors=2)
    async with console_client(system, "admin") as admin:
        cases = [
            ({**FORM, "pricePerKwh": "0.305"}, "pricePerKwh"),  # more decimals than EUR has
            ({**FORM, "maxEnergyWh": ""}, "maxEnergyWh"),  # a price per kWh with no cap
            ({**FORM, "id": "no spaces"}, "id"),
            ({**FORM, "currency": "EURO"}, "currency"),
            ({**FORM, "currency": "XYZ"}, "currency"),  # not one Stripe charges in
            ({**FORM, "bands": "Peak mon-fir 17:00-20:00 0.60"}, "bands"),
            ({**FORM, "timeFeeMaxMinutes": "", "maxDurationMinutes": ""}, "timeFeeMaxMinutes"),
        ]
        for form, field in cases:
            response = await admin.post("/console/tariffs/new", form)
            page = await response.text()
            assert response.status == 400, (field, page)
            assert _error(page) == field
            assert f'name="{field}"' in page  # the typed values are kept
        assert await system.tariffs.all() == {}

        assert (await admin.post("/console/tariffs/new", FORM)).status == 303
        again = await admin.post("/console/tariffs/new", {**FORM, "pricePerKwh": "0.99"})
        assert again.status == 409 and _error(await again.text()) == "id"
        broken = await admin.post("/console/tariffs/city", {**form_of(CITY), "sessionFee": "x"})
        assert broken.status == 400 and _error(await broken.text()) == "sessionFee"
        assert (await system.tariffs.all())["city"] == CITY

        # Assignments are checked as the API checks them.
        for target, field in [
            ({"chargerId": "CP-404", "connectorId": "0"}, "chargerId"),
            ({"chargerId": "CP-7", "connectorId": "3"}, "connectorId"),
            ({"chargerId": "CP-7", "connectorId": "-1"}, "connectorId"),
        ]:
            response = await admin.post("/console/tariffs/city/assignments", target)
            page = await response.text()
            assert response.status == 400 and _error(page) == field, page
        assert await system.tariffs.of_charger("CP-7") == {}


async def test_the_preview_is_the_pricing_of_the_typed_tariff(system: CentralSystem) -> None:
    async with console_client(system, "viewer") as viewer:
        sample = {**FORM, "sampleKwh": "12.5", "sampleMinutes": "90"}
        response = await viewer.post("/console/tariffs/preview", sample)
        assert response.status == 200
        answer = await response.json()
        # 12.5 kWh x 0.30 = 3.75, 1.00 session fee, (90 - 30) minutes x 0.05 = 3.00.
        expected = price(CITY, Usage(energy_wh=12500, charging_seconds=90 * 60))
        assert expected.total == 775
        assert answer["ok"] is True and answer["sample"]["total"] == 775
        assert answer["hold"] == hold_amount(CITY) == 600 + 100 + 600
        assert answer["holdText"] == "13.00 EUR" and answer["sample"]["totalText"] == "7.75 EUR"

        bad = await viewer.post("/console/tariffs/preview", {**FORM, "maxEnergyWh": "0"})
        refused = await bad.json()
        assert refused["ok"] is False and refused["field"] == "maxEnergyWh"
        no_csrf = await viewer.post("/console/tariffs/preview", {**FORM, "csrf": "forged"})
        assert no_csrf.status == 403

        # A viewer reads the pages but changes nothing.
        assert (await viewer.get("/console/tariffs")).status == 200
        assert (await viewer.get("/console/tariffs/new")).status == 403
        refused_post = await viewer.post("/console/tariffs/new", FORM)
        assert refused_post.status == 403 and "needs the role admin" in await refused_post.text()
        assert await system.tariffs.all() == {}


def test_the_preview_prices_bands_at_the_sample_time() -> None:
    form = {**FORM, "bands": "Peak 17:00-20:00 0.60", "sampleKwh": "4", "sampleMinutes": "120"}
    # 18:00 to 20:00, all in the peak: 4 x 0.60 + 1.00 + 90 minutes x 0.05.
    assert preview({**form, "sampleStart": "18:00"})["sample"]["total"] == 240 + 100 + 450
    # 19:00 to 21:00: half in the peak, half at 0.30.
    assert preview({**form, "sampleStart": "19:00"})["sample"]["total"] == 120 + 60 + 100 + 450
    assert preview({**form, "sampleStart": "7pm"})["field"] == "sampleStart"


def _money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d} EUR"


async def test_editing_keeps_the_split_and_a_viewer_cannot_save(system: CentralSystem) -> None:
    shared = Tariff.from_dict({**CITY.to_dict(), "split": {"commission_basis_points": 1500}})
    await system.tariffs.put("shared", shared, utc_now())
    async with console_client(system, "admin") as admin:
        page = await admin.text("/console/tariffs/shared")
        assert "1500 basis points" in page
        saved = await admin.post("/console/tariffs/shared", {**form_of(CITY), "sessionFee": "2"})
        assert saved.status == 303
    stored = (await system.tariffs.all())["shared"]
    assert stored.session_fee == 200 and stored.split == shared.split
    async with console_client(system, "viewer") as viewer:
        page = await viewer.text("/console/tariffs/shared")
        assert "<fieldset disabled>" in page and 'id="save"' not in page
        assert 'id="assign-form"' not in page


def test_a_stored_tariff_reads_back_from_its_form() -> None:
    banded = Tariff.from_dict(
        {
            **CITY.to_dict(),
            "bands": [
                {"name": "Peak", "start": "17:00", "end": "20:00", "price_per_kwh": 60,
                 "days": ["mon", "tue", "wed", "thu", "fri"]},
                {"name": "Off-peak", "start": "22:00", "end": "06:00", "price_per_kwh": 20},
            ],
            "time_fee_excluded": {"start": "22:00", "end": "07:00"},
            "tax_rate_basis_points": 1900,
            "idle_fee_per_minute": 10,
            "idle_grace_minutes": 15,
            "idle_fee_max_minutes": 60,
        }
    )  # fmt: skip
    assert tariff_of(form_of(banded)) == banded
    assert tariff_of(form_of(CITY)) == CITY
    yen = Tariff("jpy", price_per_kwh=50, session_fee=100, max_energy_wh=20000)
    assert form_of(yen)["pricePerKwh"] == "50" and tariff_of(form_of(yen)) == yen
