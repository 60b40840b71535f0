"""QR codes and label sheets for connectors: every code is decoded back to its URL."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path
from urllib.parse import unquote
from xml.etree import ElementTree

import pytest
import zxingcpp
from PIL import Image

from csms.cli import main
from csms.config import load_config
from csms.config_values import default_tariff, open_database
from csms.qr import (
    BaseUrlError,
    Label,
    connector_url,
    label_sheet_html,
    price_in_words,
    qr_png,
    qr_svg,
)
from csms.store.chargers import ChargerStore
from payments.pricing import Tariff

BASE = "https://charge.example.com"


def decode(image: Image.Image) -> list[str]:
    return [barcode.text for barcode in zxingcpp.read_barcodes(image)]


def rasterise(svg: str, pixels_per_module: int = 8) -> Image.Image:
    """Draw segno's SVG: one path of horizontal strokes one module thick, centred on y + 0.5."""
    root = ElementTree.fromstring(svg.encode())  # also proves the SVG is well-formed
    width, height = (int(n) for n in root.attrib["viewBox"].split()[2:])
    [path] = [e for e in root.iter() if e.tag.endswith("path") and e.get("class") == "qrline"]
    d = path.attrib["d"]
    assert set(re.findall("[A-Za-z]", d)) <= {"M", "m", "h"}, "a command this drawing ignores"
    image = Image.new("L", (width, height), 255)
    x = y = 0.0
    for command, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", d):
        if command == "M":
            x, y = float(a), float(b)
        elif command == "m":
            x, y = x + float(a), y + float(b)
        else:
            image.paste(0, (int(x), int(y - 0.5), int(x + float(a)), int(y + 0.5)))
            x += float(a)
    return image.resize((width * pixels_per_module, height * pixels_per_module), Image.NEAREST)


# -- URLs and codes


def test_connector_url() -> None:
    assert connector_url(BASE, "CP-1", 2) == f"{BASE}/c/CP-1/2"
    assert connector_url(f"{BASE}/", "CP-1", 1) == f"{BASE}/c/CP-1/1"
    assert (
        connector_url("http://10.0.0.5:8080/ev/", "CP-1", 1) == "http://10.0.0.5:8080/ev/c/CP-1/1"
    )


def test_connector_url_percent_encodes_the_id() -> None:
    charger_id = "A*b=c+d|e@f.g_h"  # every punctuation mark a charge point id may hold
    url = connector_url(BASE, charger_id, 3)
    assert url == f"{BASE}/c/A%2Ab%3Dc%2Bd%7Ce%40f.g_h/3"
    assert unquote(url.split("/")[-2]) == charger_id
    assert connector_url(BASE, "../x y", 1) == f"{BASE}/c/..%2Fx%20y/1"


@pytest.mark.parametrize(
    "base_url",
    ["", "charge.example.com", "ftp://charge.example.com", "https://", "javascript:alert(1)",
     f"{BASE}/?a=1", f"{BASE}/#top", "https://charge example.com"],
)  # fmt: skip
def test_bad_base_urls_are_refused(base_url: str) -> None:
    with pytest.raises(BaseUrlError):
        connector_url(base_url, "CP-1", 1)


def test_connector_zero_is_not_a_label() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        connector_url(BASE, "CP-1", 0)


def test_png_decodes_to_the_url() -> None:
    url = connector_url(BASE, "A*b=c+d|e@f.g_h", 12)
    image = Image.open(io.BytesIO(qr_png(url)))
    assert image.format == "PNG"
    assert decode(image) == [url]
    # A white quiet zone of 4 modules (10 px each) around the symbol.
    corner = image.convert("L").crop((0, 0, 40, 40))
    assert corner.getextrema() == (255, 255)


def test_png_scale() -> None:
    url = f"{BASE}/c/CP-1/1"
    small, large = (Image.open(io.BytesIO(qr_png(url, scale=s))) for s in (4, 12))
    assert large.width == 3 * small.width
    assert decode(small) == [url]


def test_svg_decodes_to_the_url_and_prints_at_1_mm_per_module() -> None:
    url = connector_url(BASE, "CP-1", 2)
    svg = qr_svg(url)
    root = ElementTree.fromstring(svg.encode())
    modules = int(root.attrib["viewBox"].split()[2])
    assert root.attrib["width"] == f"{modules}mm"
    assert decode(rasterise(svg)) == [url]


# -- prices and the label sheet


def test_price_in_words() -> None:
    eur = Tariff("eur", price_per_kwh=40, session_fee=50, max_energy_wh=50_000)
    assert price_in_words(eur) == "€0.40 per kWh + €0.50 per session"
    jpy = Tariff("jpy", price_per_kwh=45, session_fee=100, max_energy_wh=50_000)
    assert price_in_words(jpy) == "¥45 per kWh + ¥100 per session"
    timed = Tariff("eur", time_fee_per_minute=5, time_fee_free_minutes=30, max_duration_minutes=240)
    assert price_in_words(timed) == "€0.05 per minute of charging after 30 minutes"
    idle = Tariff(
        "eur", session_fee=1000, idle_fee_per_minute=10, idle_grace_minutes=15,
        idle_fee_max_minutes=60,
    )  # fmt: skip
    assert price_in_words(idle) == (
        "€10.00 per session + €0.10 per minute the car stays plugged in after charging,"
        " after 15 minutes, for at most 60 minutes"
    )
    assert price_in_words(Tariff("eur")) == "Free"


def sheet_svgs(html: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", html, flags=re.DOTALL)


def test_label_sheet() -> None:
    labels = [
        Label(f"CP-{n}", f"Lot {n}", c, f"{BASE}/c/CP-{n}/{c}", f"{n}.00 EUR per kWh")
        for n in range(1, 6)
        for c in (1, 2)
    ]
    html = label_sheet_html(labels)
    assert html.startswith("<!DOCTYPE html>")
    assert html.count('<div class="label">') == 10
    assert html.count('<section class="page">') == 2  # 9 labels a page
    assert "Lot 5" in html and "Connector 2" in html and "5.00 EUR per kWh" in html
    # Every code on the sheet decodes to its own label's URL, in order.
    assert [decode(rasterise(svg)) for svg in sheet_svgs(html)] == [[lb.url] for lb in labels]
    assert all(f'<div class="url">{lb.url}</div>' in html for lb in labels)
    # Printable: A4, and a label is never cut by a page break.
    assert "size: A4" in html and "@media print" in html
    assert "break-inside: avoid" in html and "page-break-inside: avoid" in html
    # Self-contained: nothing is fetched, and the only URLs are the labels' own.
    assert set(re.findall(r"https?://[^\s<\"']+", html)) == {lb.url for lb in labels}
    for fetching in ("src=", "href=", "url(", "@import"):
        assert fetching not in html


def test_label_sheet_escapes_text() -> None:
    hostile = '<script>alert("x")</script>'
    html = label_sheet_html([Label("CP-1", hostile, 1, f"{BASE}/c/CP-1/1", "1 < 2 & 3")])
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "1 &lt; 2 &amp; 3" in html
    # With a name, the id is printed too; without one, the id is the title.
    assert '<div class="connector">CP-1 · Connector 1</div>' in html
    untitled = label_sheet_html([Label("CP-<2>", None, 1, f"{BASE}/c/CP-2/1", "Free")])
    title = '<div class="name">CP-&lt;2&gt;</div><div class="connector">Connector 1</div>'
    assert title in untitled


# -- the command line


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CSMS_DATABASE_PATH", str(tmp_path / "cli.db"))
    monkeypatch.setenv("CSMS_DATABASE_URL", database_url)
    monkeypatch.delenv("CSMS_PAYMENTS_PUBLIC_BASE_URL", raising=False)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def report_connectors(charger_id: str, *connector_ids: int) -> None:
    """What StatusNotifications leave in the database."""

    async def report() -> None:
        db = await open_database(load_config())
        try:
            for connector_id in connector_ids:
                await ChargerStore(db).record_status(
                    charger_id,
                    {"connectorId": connector_id, "status": "Available", "errorCode": "NoError"},
                )
        finally:
            await db.close()

    asyncio.run(report())


def test_cli_writes_one_code(scratch: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "chargers", "add", "CP-1", "--name", "Lot A")[0] == 0
    url = f"{BASE}/c/CP-1/2"
    code, out, _ = run(
        capsys, "qr", "CP-1", "--connector", "2", "--format", "png", "--base-url", f"{BASE}/"
    )
    assert (code, out) == (0, f"CP-1-2.png: {url}\n")
    assert decode(Image.open(scratch / "CP-1-2.png")) == [url]

    code, out, _ = run(capsys, "qr", "CP-1", "--base-url", BASE)
    assert (code, out) == (0, f"CP-1-1.svg: {BASE}/c/CP-1/1\n")
    assert decode(rasterise((scratch / "CP-1-1.svg").read_text())) == [f"{BASE}/c/CP-1/1"]


def test_cli_base_url_from_the_config(
    scratch: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSMS_PAYMENTS_PUBLIC_BASE_URL", "https://from-config.example")
    run(capsys, "chargers", "add", "CP-1")
    code, out, _ = run(capsys, "qr", "CP-1", "--format", "png", "--output", "door.png")
    assert (code, out) == (0, "door.png: https://from-config.example/c/CP-1/1\n")
    assert decode(Image.open(scratch / "door.png")) == ["https://from-config.example/c/CP-1/1"]


def test_cli_sheet(scratch: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "chargers", "add", "CP-1", "--name", "<script>alert(1)</script>")
    run(capsys, "chargers", "add", "CP-2", "--name", "Lot B")
    report_connectors("CP-1", 0, 1, 2)  # 0 is the charger itself: no label
    run(
        capsys, "tariffs", "set", "yen", "--currency", "JPY", "--price-per-kwh", "45",
        "--max-energy-wh", "50000",
    )  # fmt: skip
    run(capsys, "tariffs", "assign", "yen", "CP-1", "--connector", "2")

    code, out, _ = run(capsys, "qr", "--sheet", "--base-url", BASE)
    assert (code, out) == (0, "labels.html: 3 labels\n")
    html = (scratch / "labels.html").read_text()
    urls = [f"{BASE}/c/CP-1/1", f"{BASE}/c/CP-1/2", f"{BASE}/c/CP-2/1"]
    assert [decode(rasterise(svg)) for svg in sheet_svgs(html)] == [[url] for url in urls]
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    prices = re.findall(r'<div class="price">(.*?)</div>', html)
    default_price = price_in_words(default_tariff(load_config()))
    assert default_price.startswith("€0.40 per kWh + €0.50 per session")
    assert prices == [default_price, "¥45 per kWh", default_price]

    code, out, _ = run(capsys, "qr", "--sheet", "CP-2", "--base-url", BASE, "--output", "b.html")
    assert (code, out) == (0, "b.html: 1 label\n")
    assert "Lot B" in (scratch / "b.html").read_text()


def test_cli_errors(scratch: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "qr", "--sheet", "--base-url", BASE)
    assert code == 2 and "no chargers registered" in err
    run(capsys, "chargers", "add", "CP-1")
    cases = {
        ("qr", "CP-9", "--base-url", BASE): "no charger 'CP-9'",
        ("qr", "--sheet", "CP-1", "CP-9", "--base-url", BASE): "no charger 'CP-9'",
        ("qr", "CP-1", "--base-url", "charge.example.com"): "--base-url: not an http",
        ("qr", "CP-1", "--base-url", "ftp://charge.example.com"): "--base-url: not an http",
        ("qr", "CP-1"): "--base-url is needed",
        ("qr", "--base-url", BASE): "name one charger",
        ("qr", "CP-1", "CP-2", "--base-url", BASE): "name one charger",
        ("qr", "CP-1", "--connector", "0", "--base-url", BASE): "start at 1",
        ("qr", "--sheet", "--format", "png", "--base-url", BASE): "not --sheet",
    }
    for argv, message in cases.items():
        code, out, err = run(capsys, *argv)
        assert (code, out) == (2, ""), argv
        assert message in err, (argv, err)
    assert sorted(p.name for p in scratch.iterdir() if not p.name.startswith("cli.db")) == []


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["qr", "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert "csms qr CHARGER [--connector N]" in out and "csms qr --sheet [CHARGER ...]" in out
