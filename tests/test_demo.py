import pytest

from csms.app import CentralSystem
from csms.config import Config
from csms.demo import DEMO_CHARGER, DemoFailed, run_demo
from payments.pricing import Tariff
from storage.clock import utc_now


async def test_demo_pays_charges_and_captures(make_config) -> None:  # type: ignore[no-untyped-def]
    config: Config = make_config()
    summary = await run_demo(config, energy_wh=1500)
    assert summary.state == "Completed"
    assert summary.energy_wh >= 1500
    assert summary.captured == summary.breakdown["total"] > 0
    assert summary.captured + summary.released == summary.hold
    assert "captured" in summary.text()


async def test_demo_on_a_free_charger_says_why_in_one_line(make_config) -> None:  # type: ignore[no-untyped-def]
    config: Config = make_config()
    async with CentralSystem(config) as system:  # CP-DEMO given a free tariff beforehand
        await system.chargers.register(DEMO_CHARGER)
        await system.tariffs.put("free", Tariff(currency="eur", max_energy_wh=5000), utc_now())
        await system.tariffs.assign("free", DEMO_CHARGER, 0)
    with pytest.raises(DemoFailed, match="charges for free here"):
        await run_demo(config, energy_wh=1500)
