from csms.ocpp16.metering import latest_reading, parse_meter_values


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
    assert [s.normalised for s in samples] == [12346, 7400, 16]
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
