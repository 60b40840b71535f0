"""The `csms` command line, run in-process on a scratch database."""

from __future__ import annotations

from pathlib import Path

import pytest

from csms.cli import main


@pytest.fixture(autouse=True)
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CSMS_DATABASE_PATH", str(tmp_path / "cli.db"))
    monkeypatch.setenv("CSMS_DATABASE_URL", database_url)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_chargers(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "chargers", "add", "CP-1", "--name", "Lot A")[:2] == (
        0,
        "CP-1: registered\n",
    )
    assert run(capsys, "chargers", "add", "CP-1")[1] == "CP-1: already registered\n"
    code, _, err = run(capsys, "chargers", "add", "bad  id")
    assert code == 2 and "invalid charge point id" in err
    code, out, _ = run(capsys, "chargers", "list")
    assert code == 0 and out.startswith("CP-1\tAccepted\toffline")


def test_an_id_that_differs_only_in_case_is_the_same_charger(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(capsys, "chargers", "add", "RDAM 123")[:2] == (0, "RDAM 123: registered\n")
    code, out, _ = run(
        capsys, "chargers", "add", "rdam 123", "--password", "a-long-random-key-0042"
    )
    assert (code, out) == (0, "RDAM 123: already registered; password set, security profile 1\n")
    code, out, _ = run(capsys, "chargers", "list")
    assert out.count("\n") == 1 and out.startswith("RDAM 123\t")


def test_tags(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "tags", "add", "RFID-1", "--expiry", "2030-01-01T00:00:00Z")[0] == 0
    code, _, err = run(capsys, "tags", "add", "X" * 21)
    assert code == 2 and "20 characters" in err
    code, _, err = run(capsys, "tags", "add", "T", "--expiry", "soon")
    assert code == 2 and "--expiry" in err
    assert run(capsys, "tags", "list")[1] == "RFID-1\tactive\t2030-01-01T00:00:00.000Z\t-\n"


def test_tariffs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "tariffs", "set", "fast", "--currency", "EUR", "--price-per-kwh", "0.59",
        "--session-fee", "1", "--max-energy-wh", "60000",
    )  # fmt: skip
    assert code == 0 and "36.40 EUR" in out
    code, _, err = run(
        capsys, "tariffs", "set", "open", "--currency", "EUR", "--price-per-kwh", "1"
    )
    assert code == 2 and "--max-energy-wh" in err
    code, _, err = run(
        capsys, "tariffs", "set", "yen", "--currency", "JPY", "--price-per-kwh", "0.5",
        "--max-energy-wh", "100",
    )  # fmt: skip
    assert code == 2 and "more decimals" in err
    code, _, err = run(capsys, "tariffs", "assign", "fast", "CP-1")
    assert code == 2 and err == "csms: CHARGE_POINT_ID: no such charger\n"  # not registered
    assert run(capsys, "chargers", "add", "CP-1")[0] == 0
    assert run(capsys, "tariffs", "assign", "fast", "CP-1", "--connector", "2")[0] == 0
    assert run(capsys, "tariffs", "assign", "nope", "CP-1")[0] == 2
    code, out, _ = run(capsys, "tariffs", "list")
    assert code == 0 and out.startswith("fast\thold 36.40 EUR")


def test_tariff_in_an_unknown_currency_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "tariffs", "set", "odd", "--currency", "XYZ", "--price-per-kwh", "0.40",
        "--max-energy-wh", "5000",
    )  # fmt: skip
    assert code == 2 and "--currency" in err and "Stripe does not charge in XYZ" in err
    assert run(capsys, "tariffs", "list")[1] == ""  # nothing was saved


def test_tariff_tax_rate(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "tariffs", "set", "vat", "--currency", "EUR", "--price-per-kwh", "0.59",
        "--max-energy-wh", "60000", "--tax-rate-percent", "19",
    )  # fmt: skip
    assert code == 0 and "vat: saved" in out
    code, _, err = run(
        capsys, "tariffs", "set", "vat", "--currency", "EUR", "--price-per-kwh", "0.59",
        "--max-energy-wh", "60000", "--tax-rate-percent", "19 %",
    )  # fmt: skip
    assert code == 2 and "--tax-rate-percent: must be a percentage from 0 to 100" in err


def test_bad_config_stops_with_the_key_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSMS_OCPP_UNKNOWN_CHARGERS", "sometimes")
    code, _, err = run(capsys, "chargers", "list")
    assert code == 2 and "ocpp.unknown_chargers" in err


def test_bad_default_tariff_stops_serve(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSMS_TARIFF_MAX_ENERGY_WH", "0")
    code, _, err = run(capsys, "serve")
    assert code == 2 and "tariff.max_energy_wh" in err
