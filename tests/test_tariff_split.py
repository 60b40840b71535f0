"""A split rule per tariff: it overrides the site's for sessions under that tariff. The pure
parts (the tariff keeps a checked rule, the payee snapshot takes the tariff's rule first),
the API (the tariff's `split`, errors naming `split.<field>`), and one paid session end to
end against the sandbox where the tariff's rule wins over the site's."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from csms.app import CentralSystem
from payments.codec import decode_reservation, encode_reservation
from payments.pricing import Tariff, TariffError, hold_amount
from payments.service import _payee
from payments.split import SplitRule, split
from payments.transfer_messages import TRANSFERRED
from simulators.chargepoint import SimulatedCharger
from tests.payflow import Driver, finished_session
from tests.test_money_paths import pending
from tests.test_transfers_e2e import RULE, _call, _owner_at_site, _settled

HALF = {"commission_basis_points": 5000, "fixed_per_kwh": 0, "operator_minimum": 0}
SITE_RULE = SplitRule(**RULE)


def _info(owner_id: str | None, rule: dict[str, Any] | None) -> Any:
    site = {"id": "s", "name": "S", "time_zone": "UTC", "owner_id": owner_id, "split": rule}
    return {"name": "CP", "site": site}


def test_a_tariff_keeps_a_checked_split_rule_that_prices_nothing() -> None:
    plain = Tariff("eur", price_per_kwh=40, max_energy_wh=10_000)
    shared = Tariff.from_dict({**plain.to_dict(), "split": HALF})
    assert shared.split == SplitRule(commission_basis_points=5000)
    assert Tariff.from_dict(shared.to_dict()) == shared
    assert hold_amount(shared) == hold_amount(plain)
    with pytest.raises(TariffError) as bad:
        Tariff("eur", split={"commission_basis_points": 10001})  # type: ignore[arg-type]
    assert bad.value.field == "split.commission_basis_points"
    with pytest.raises(TariffError) as unknown:
        Tariff("eur", split={"percent": 5})  # type: ignore[arg-type]
    assert unknown.value.field == "split.percent"


def test_a_reservation_snapshot_keeps_its_tariffs_rule() -> None:
    r = pending()
    shared = replace(r, tariff=Tariff.from_dict({**r.tariff.to_dict(), "split": HALF}))
    assert decode_reservation(encode_reservation(shared)) == shared
    assert shared.tariff.split == SplitRule(5000) and r.tariff.split is None


def test_the_payee_takes_the_tariffs_rule_first_then_the_sites() -> None:
    plain = Tariff("eur", price_per_kwh=40, max_energy_wh=10_000)
    shared = Tariff.from_dict({**plain.to_dict(), "split": HALF})
    site_rule = SITE_RULE.to_dict()
    assert _payee(_info("o-1", site_rule), "CP", shared) == ("o-1", SplitRule(5000))
    assert _payee(_info("o-1", site_rule), "CP", plain) == ("o-1", SITE_RULE)
    # A site without a rule of its own: the tariff's rule pays its owner.
    assert _payee(_info("o-1", None), "CP", shared) == ("o-1", SplitRule(5000))
    # No owner: nobody to share with, whatever the tariff says.
    assert _payee(_info(None, site_rule), "CP", shared) is None
    assert _payee(None, "CP", shared) is None
    assert _payee(_info("o-1", None), "CP", plain) is None


# -- over the API, and a paid session end to end


SETTINGS = {"currency": "eur", "pricePerKwh": 40, "sessionFee": 50, "maxEnergyWh": 5000}


async def test_a_tariffs_split_over_the_api(driver: Driver) -> None:
    status, created = await _call(
        driver,
        "POST",
        "/api/tariffs",
        {**SETTINGS, "id": "shared", "split": {"commission_basis_points": 5000}},
    )
    assert status == 201, created
    assert created["split"] == HALF
    status, got = await _call(driver, "GET", "/api/tariffs/shared")
    assert status == 200 and got["split"] == HALF
    for bad, field in (
        ({"commission_basis_points": 10001}, "split.commission_basis_points"),
        ({"fixed_per_kwh": -1}, "split.fixed_per_kwh"),
        ({"operator_minimum": 10**10}, "split.operator_minimum"),
        ({"percent": 5}, "split.percent"),
    ):
        status, error = await _call(
            driver, "PUT", "/api/tariffs/shared", {**SETTINGS, "split": bad}
        )
        assert status == 400 and error["error"]["field"] == field, error
    status, got = await _call(driver, "GET", "/api/tariffs/shared")
    assert got["split"] == HALF  # refused changes changed nothing
    status, replaced = await _call(driver, "PUT", "/api/tariffs/shared", SETTINGS)
    assert status == 200 and replaced["split"] is None


async def test_a_session_under_a_tariff_with_a_rule_is_split_by_it_not_by_the_sites(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> None:
    await _owner_at_site(driver, sim, onboard=True)  # the site's rule: the operator keeps 20 %
    tariff = {**SETTINGS, "id": "shared", "split": {"commission_basis_points": 5000}}
    status, created = await _call(driver, "POST", "/api/tariffs", tariff)
    assert status == 201, created
    status, _ = await _call(
        driver, "PUT", "/api/tariffs/shared/assignments", {"chargerId": sim.charge_point_id}
    )
    assert status == 204
    reservation_id, _ = await finished_session(driver, sim)
    r = await _settled(system, reservation_id, TRANSFERRED)
    assert r.owner_id == "owner-1" and r.split == SplitRule(5000)
    expected = split(SplitRule(5000), r.captured_amount, r.energy_wh)
    by_site = split(SITE_RULE, r.captured_amount, r.energy_wh)
    assert r.captured_amount > 0 and expected != by_site
    assert (r.owner_share, r.operator_share) == (expected.owner, expected.operator)
    rows = await system.transfer_service.store.of_reservation(reservation_id)
    assert [(x["kind"], x["amount"], x["status"]) for x in rows] == [
        ("transfer", expected.owner, "succeeded")
    ]
