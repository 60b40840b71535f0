from csms.config import Config
from csms.demo import run_demo


async def test_demo_pays_charges_and_captures(make_config) -> None:  # type: ignore[no-untyped-def]
    config: Config = make_config()
    summary = await run_demo(config, energy_wh=1500)
    assert summary.state == "Completed"
    assert summary.energy_wh >= 1500
    assert summary.captured == summary.breakdown["total"] > 0
    assert summary.captured + summary.released == summary.hold
    assert "captured" in summary.text()
