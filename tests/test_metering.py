from decimal import Decimal

from csms.ocpp16.metering import latest_reading, parse_meter_values, readings


def _mv(timestamp: str, *values: dict) -> dict:
    return {"timestamp": timestamp, "sampledValue": list(values)}


def test_defaults_and_wh() -> None:
    (sample,) = parse_meter_values([_mv("2026-01-01T10:00:00Z", {"value": "1234"})])
    assert sample.measurand == "Energy.Active.Import.Register"
    assert sample.unit == "Wh"
    assert sample.context == "Sample.Periodic"
    assert sample.location == "Outlet"
    assert sample.format == "Raw"
    assert sample.normalised == 1234
    assert sample.timestamp == "2026-01-01T10:00:00.000Z"


def test_kwh_and_kw_are_normalised() -> None:
    samples = parse_meter_values(
        [
            _mv(
                "2026-01-01T10:00:00+01:00",
                {"value": "12.3456", "unit": "kWh"},
                {"value": "7.4", "unit": "kW", "measurand": "Power.Active.Import"},
                {"value": "16.2", "unit": "A", "measurand": "Current.Import", "phase": "L1"},
            )
        ]
    )
    # Exact, never rounded; billing reads the register rounded to whole Wh.
    assert [s.normalised for s in samples] == [Decimal("12345.6"), 7400, Decimal("16.2")]
    assert [s.rounded for s in samples] == [12346, 7400, 16]
    assert samples[0].timestamp == "2026-01-01T09:00:00.000Z"
    reading = latest_reading(samples)
    assert (reading.energy_wh, reading.power_w) == (12346, 7400)


def test_latest_sample_wins_and_phases_add_up() -> None:
    samples = parse_meter_values(
        [
            _mv("2026-01-01T10:01:00Z", {"value": "500"}),
            _mv(
                "2026-01-01T10:02:00Z",
                {"value": "200", "phase": "L1"},
                {"value": "210", "phase": "L2"},
                {"value": "220", "phase": "L3"},
                {"value": "3", "unit": "kW", "measurand": "Power.Active.Import", "phase": "L1-N"},
            ),
            _mv("2026-01-01T10:00:00Z", {"value": "100"}),
        ]
    )
    reading = latest_reading(samples)
    assert reading.energy_wh == 630
    assert reading.power_w == 3000
    assert reading.at == "2026-01-01T10:02:00.000Z"


def test_signed_and_garbage_values_are_kept_but_not_normalised() -> None:
    samples = parse_meter_values(
        [
            _mv(
                "2026-01-01T10:00:00Z",
                {"value": "AB12CD==", "format": "SignedData"},
                {"value": "NaN"},
                {"value": "n/a"},
            )
        ]
    )
    assert [s.normalised for s in samples] == [None, None, None]
    assert latest_reading(samples).energy_wh is None


def test_ev_side_energy_is_not_the_charger_register() -> None:
    samples = parse_meter_values(
        [_mv("2026-01-01T10:00:00Z", {"value": "99", "location": "EV"}, {"value": "40"})]
    )
    assert latest_reading(samples).energy_wh == 40


def _energy(*values: dict) -> int | None:
    return latest_reading(parse_meter_values([_mv("2026-01-01T10:00:00Z", *values)])).energy_wh


OUTLET = {"value": "5000", "location": "Outlet"}
INLET = {"value": "5150", "location": "Inlet"}


def test_outlet_before_inlet_whatever_the_order() -> None:
    assert _energy(OUTLET, INLET) == 5000
    assert _energy(INLET, OUTLET) == 5000
    # No location means Outlet; no measurand means the energy register.
    assert _energy({"value": "5000"}, INLET) == 5000
    assert _energy(INLET, {"value": "5000"}) == 5000


def test_the_inlet_when_there_is_no_outlet_register() -> None:
    power = {"value": "7", "unit": "kW", "measurand": "Power.Active.Import"}
    assert _energy(INLET, power, {"value": "1", "location": "EV"}) == 5150
    assert _energy({"value": "1", "location": "Body"}, {"value": "2", "location": "Cable"}) is None


def test_the_total_before_the_phases_whatever_the_order() -> None:
    phases = [{"value": "1700", "phase": p} for p in ("L1", "L2", "L3")]
    assert _energy(*phases, {"value": "5000"}) == 5000
    assert _energy({"value": "5000"}, *phases) == 5000
    assert _energy(*phases) == 5100
    # An Outlet given per phase still comes before an Inlet total.
    assert _energy(INLET, *phases) == 5100


def test_several_values_for_the_same_place_do_not_depend_on_their_order() -> None:
    wh = {"value": "5004", "context": "Sample.Periodic"}
    kwh = {"value": "5.0", "unit": "kWh", "context": "Sample.Clock"}
    assert _energy(wh, kwh) == _energy(kwh, wh) == 5004
    both = [{"value": "1700", "phase": "L1"}, {"value": "1710", "phase": "L1-N"}]
    assert _energy(*both) == _energy(*reversed(both)) == 1710


def test_readings_are_one_per_timestamp_oldest_first() -> None:
    samples = parse_meter_values(
        [
            _mv("2026-01-01T10:02:00Z", {"value": "200"}),  # the register restarted
            _mv("2026-01-01T10:00:00Z", INLET, OUTLET),
            _mv(
                "2026-01-01T10:01:00Z",
                {"value": "9000", "location": "Inlet"},
                {"value": "8900"},
                {"value": "11", "unit": "kW", "measurand": "Power.Active.Import"},
            ),
            _mv("2026-01-01T10:03:00Z", {"value": "20", "measurand": "Current.Import"}),
        ]
    )
    assert [(r.at, r.energy_wh, r.power_w) for r in readings(samples)] == [
        ("2026-01-01T10:00:00.000Z", 5000, None),
        ("2026-01-01T10:01:00.000Z", 8900, 11000),
        ("2026-01-01T10:02:00.000Z", 200, None),
    ]
    latest = latest_reading(samples)
    assert (latest.energy_wh, latest.power_w, latest.at) == (200, 11000, "2026-01-01T10:03:00.000Z")
