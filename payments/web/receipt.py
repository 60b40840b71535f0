"""What the receipt shows: the session, the price's lines, what was charged, the refunds and
what remains paid after them, the VAT included, and who to ask. Amounts stay integer minor
units until formatted; nothing here changes an amount, it only shows it."""

from __future__ import annotations

from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from payments.pricing import included_tax
from payments.refunds import RefundRecord
from payments.reservation import Reservation
from payments.views import released_amount
from payments.web.describe import band_label
from payments.web.operator import Operator, known_time_zone
from payments.web.texts import Texts

# Refunds the driver is told of: done, or asked of Stripe and not yet answered.
_SHOWN = ("succeeded", "pending")


def receipt_values(
    r: Reservation,
    refunds: list[RefundRecord],
    t: Texts,
    operator: Operator,
    time_zone: str | None = None,
) -> dict[str, Any]:
    """The receipt template's values for a finished session `r` and its refunds; times in
    the zone the session was priced in (its snapshot, taken at its start: a charger moved
    to another site since keeps its sessions' times and bands together), else, for a
    session older than the snapshot, the charger's `time_zone` (its own, else its site's),
    else the operator's. `operator` is as the charger's site shows it (Operator.at_site)."""
    fmt, money = t.fmt, r.tariff.currency
    zone = next(
        (ZoneInfo(name) for name in (r.time_zone, time_zone) if name and known_time_zone(name)),
        operator.time_zone,
    )
    refunded = sum(x.amount for x in refunds if x.status == "succeeded")
    paid = r.captured_amount - refunded
    rate = r.tariff.tax_rate_basis_points
    return {
        "started": fmt.moment(r.started_at, zone) if r.started_at else None,
        "stopped": fmt.moment(r.stopped_at, zone) if r.stopped_at else None,
        "energy": fmt.kwh(r.energy_wh, 3),
        "transaction": r.transaction_id,
        "reference": r.id,
        "lines": [(label, fmt.money(amount, money)) for label, amount in _lines(r, t)],
        "total": fmt.money(r.breakdown.total if r.breakdown else 0, money),
        "captured": fmt.money(r.captured_amount, money),
        "released": fmt.money(released_amount(r), money),
        "refunds": [_refund(x, t, money, zone) for x in refunds if x.status in _SHOWN],
        "paid": fmt.money(paid, money) if refunded else None,
        "vat": (t("receipt.vat", rate=tax_rate(rate, t)) if rate and paid > 0 else None),
        "vat_amount": fmt.money(included_tax(paid, rate), money),
        "operator": operator,
    }


def tax_rate(basis_points: int, t: Texts) -> str:
    """1900 -> "19", 770 -> "7.7" (German "7,7"): a rate with the decimals it has."""
    digits = 0 if basis_points % 100 == 0 else 1 if basis_points % 10 == 0 else 2
    return t.fmt.number(Decimal(basis_points).scaleb(-2), digits)


def _refund(x: RefundRecord, t: Texts, currency: str, zone: tzinfo) -> dict[str, Any]:
    when = datetime.fromisoformat(x.updated_at or x.created_at)
    return {
        "amount": t.fmt.money(x.amount, currency),
        "date": t.fmt.moment(when, zone),
        "pending": x.status == "pending",
    }


def _lines(r: Reservation, t: Texts) -> list[tuple[str, int]]:
    """The breakdown's lines: what each is for, and its amount in minor units."""
    b = r.breakdown
    if b is None:
        return []
    lines = _energy_lines(r, t) or [
        (t("receipt.line.energy", energy=t.fmt.energy(b.energy_wh, 3)), b.energy)
    ]
    lines.append((t("receipt.line.session_fee"), b.session_fee))
    if b.time_fee:
        lines.append((t("receipt.line.time_fee", minutes=b.time_minutes), b.time_fee))
    if b.idle_fee:
        lines.append((t("receipt.line.idle_fee", minutes=b.idle_minutes), b.idle_fee))
    return lines


def _energy_lines(r: Reservation, t: Texts) -> list[tuple[str, int]]:
    """One line per band the session used: "Peak Mon-Fri 07:00-22:00: 3.200 kWh x 0.45 EUR"
    (dashes and the multiplication sign as typeset)."""
    assert r.breakdown is not None
    lines = []
    for charge in r.breakdown.bands:
        if charge.part == 0:
            band = t("receipt.line.other_times")
        else:
            band = band_label(r.tariff.bands[charge.part - 1], t)
        text = t(
            "receipt.line.band",
            band=band,
            energy=t.fmt.energy(charge.energy_wh, 3),
            price=t.fmt.money(charge.price_per_kwh, r.tariff.currency),
        )
        lines.append((text, charge.amount))
    return lines
