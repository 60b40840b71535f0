"""QR codes for the connectors, and a printable sheet of labels to stick on the chargers.

A driver scans a connector's code and lands on its start page, `/c/{charger}/{connector}`.
The codes are QR only (never Micro QR, which phones do not read), at error correction M or
better, with the 4-module quiet zone the standard asks for, on a white background so that
they scan on any label stock.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import quote, urlsplit

import segno

from csms.store.chargers import ChargerStore
from payments.pricing import Tariff
from payments.tariff_store import TariffStore
from payments.web.describe import tariff_in_words
from payments.web.texts import Texts
from storage.db import Database

QUIET_ZONE_MODULES = 4
LABELS_PER_PAGE = 9  # 3 x 3 labels of 63 x 90 mm on A4
_TEXTS = Texts()


class BaseUrlError(ValueError):
    """A base URL that the codes cannot point at."""


class UnknownChargerError(LookupError):
    def __init__(self, charger_id: str) -> None:
        super().__init__(f"no charger {charger_id!r}")
        self.charger_id = charger_id


@dataclass(frozen=True)
class Label:
    charger_id: str
    charger_name: str | None
    connector_id: int
    url: str
    price: str


def check_base_url(base_url: str) -> str:
    """`base_url` without its trailing slash, or BaseUrlError saying what is wrong with it."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BaseUrlError(f"not an http:// or https:// URL: {base_url!r}")
    if parts.query or parts.fragment or any(c.isspace() for c in base_url):
        raise BaseUrlError(f"a base URL has no spaces, query or fragment: {base_url!r}")
    return base_url.rstrip("/")


def connector_url(base_url: str, charge_point_id: str, connector_id: int) -> str:
    """The driver's short start URL for one connector."""
    if connector_id < 1:
        raise ValueError(f"connector numbers start at 1, got {connector_id}")
    charger = quote(charge_point_id, safe="")
    return f"{check_base_url(base_url)}/c/{charger}/{connector_id}"


def _qr_code(url: str) -> segno.QRCode:
    # boost_error raises the level above M whenever that fits in the same symbol size.
    return segno.make_qr(url, error="m", boost_error=True)


def qr_svg(url: str) -> str:
    """A standalone SVG file, 1 mm per module: about 4 cm wide, readable from arm's length."""
    out = io.BytesIO()
    _qr_code(url).save(
        out, kind="svg", unit="mm", border=QUIET_ZONE_MODULES, light="#fff", title=url
    )
    return out.getvalue().decode()


def qr_png(url: str, scale: int = 10) -> bytes:
    """A PNG with `scale` pixels per module (10: about 400 px, sharp at 1 mm per module)."""
    out = io.BytesIO()
    _qr_code(url).save(out, kind="png", scale=scale, border=QUIET_ZONE_MODULES, light="#fff")
    return out.getvalue()


def price_in_words(tariff: Tariff) -> str:
    """The price as the start page words it, e.g. "€0.40 per kWh + €0.50 per session"."""
    return " + ".join(tariff_in_words(tariff, _TEXTS)) or "Free"


async def labels_from_database(
    db: Database, base_url: str, default_tariff: Tariff, charger_ids: Sequence[str] | None = None
) -> list[Label]:
    """One label per connector of the named chargers (None: every registered charger).

    A charger that has not reported its connectors yet gets a label for connector 1,
    the one every charger has.
    """
    chargers = ChargerStore(db)
    tariffs = TariffStore(db)
    if charger_ids is None:
        rows = await chargers.list()
    else:
        rows = []
        for charger_id in charger_ids:
            row = await chargers.get(charger_id)
            if row is None:
                raise UnknownChargerError(charger_id)
            rows.append(row)
    labels = []
    for row in rows:
        reported = [c.connector_id for c in await chargers.connectors(row["id"])]
        # Connector 0 is the charger as a whole: nobody plugs into it.
        for connector_id in [n for n in reported if n >= 1] or [1]:
            tariff = await tariffs.for_connector(row["id"], connector_id) or default_tariff
            labels.append(
                Label(
                    charger_id=row["id"],
                    charger_name=row["name"],
                    connector_id=connector_id,
                    url=connector_url(base_url, row["id"], connector_id),
                    price=price_in_words(tariff),
                )
            )
    return labels


_SHEET_STYLE = """
@page { size: A4; margin: 10mm; }
* { box-sizing: border-box; }
body { margin: 0; font-family: system-ui, sans-serif; color: #000; background: #ddd; }
.page {
  display: grid; grid-template-columns: repeat(3, 63mm); grid-auto-rows: 90mm;
  width: 210mm; height: 297mm; margin: 10mm auto; padding: 13.5mm 10.5mm; background: #fff;
}
.label {
  display: flex; flex-direction: column; align-items: center; gap: 1mm;
  padding: 3mm; border: 0.2mm dashed #999; text-align: center; overflow: hidden;
  break-inside: avoid; page-break-inside: avoid;
}
.name { font-size: 12pt; font-weight: 700; overflow-wrap: anywhere; }
.connector { font-size: 9pt; overflow-wrap: anywhere; }
/* 36 mm: modules of about 0.6 mm for the longest ids, and room for a long price. */
.label svg { width: 36mm; height: 36mm; flex: none; }
.url { font: 7pt ui-monospace, monospace; overflow-wrap: anywhere; }
.price { font-size: 8pt; overflow-wrap: anywhere; }
@media print {
  body { background: none; }
  /* The printer's page margin replaces the on-screen one: 3 x 3 labels fill 190 x 277 mm. */
  .page { width: auto; height: auto; margin: 0; padding: 0; }
  .page + .page { break-before: page; page-break-before: always; }
}
"""


def _label_html(label: Label) -> str:
    connector = _TEXTS("start.connector", connector=label.connector_id)
    # With a name, the id is printed too, so that the label goes on the right charger.
    subtitle = f"{label.charger_id} · {connector}" if label.charger_name else connector
    # HTML needs no SVG namespace; leaving it out keeps every URL on the page a label's own.
    svg = _qr_code(label.url).svg_inline(border=QUIET_ZONE_MODULES, light="#fff", omitsize=True)
    return (
        f'<div class="label"><div class="name">{escape(label.charger_name or label.charger_id)}'
        f'</div><div class="connector">{escape(subtitle)}</div>{svg}'
        f'<div class="url">{escape(label.url)}</div>'
        f'<div class="price">{escape(label.price)}</div></div>'
    )


def label_sheet_html(labels: Sequence[Label]) -> str:
    """One self-contained HTML page of A4 sheets of labels: print it, cut along the dashes."""
    pages = [labels[i : i + LABELS_PER_PAGE] for i in range(0, len(labels), LABELS_PER_PAGE)]
    body = "\n".join(
        '<section class="page">' + "".join(_label_html(label) for label in page) + "</section>"
        for page in pages
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Connector labels</title><style>{_SHEET_STYLE}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )
