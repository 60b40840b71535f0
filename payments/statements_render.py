"""An owner's monthly statement as CSV and as a printable HTML page.

The CSV is one table, a row per line of the statement (`kind`: session, transfer,
reversal, payout, total), amounts in integer minor units and energy in Wh, as the JSON
says them; text that a spreadsheet would take for a formula is neutralised
(httpapi.csv_export.neutralise). The page is black on white when printed, in the
receipt's style, in English or German (`?lang=`, else the browser's language); it names
the operator (`[operator]` name and address), the owner and the month.
"""

from __future__ import annotations

import csv
import io
from datetime import date, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date
from jinja2 import Environment, PackageLoader, select_autoescape

from httpapi.csv_export import neutralise
from payments.statements import Statement
from payments.web.operator import Operator
from payments.web.texts import Texts

CSV_COLUMNS = (
    "kind", "date", "reference", "charger", "site", "currency", "energy_wh", "captured",
    "stripe_fee", "refunded", "owner_share", "operator_share", "transferred", "reversed",
    "amount", "status",
)  # fmt: skip


def _blank(value: int | None) -> int | str:
    return "" if value is None else value


def csv_rows(s: Statement) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for x in s.sessions:
        rows.append({
            "kind": "session", "date": x.stopped_at.isoformat(), "reference": x.reservation_id,
            "charger": x.charger_name or x.charger_id, "site": x.site_name or "",
            "currency": x.currency, "energy_wh": x.energy_wh, "captured": x.captured,
            "stripe_fee": _blank(x.stripe_fee), "refunded": x.refunded,
            "owner_share": x.owner_share, "operator_share": x.operator_share,
            "transferred": x.transferred, "reversed": x.reversed,
            "status": x.transfer_status or "",
        })  # fmt: skip
    for m in s.movements:
        rows.append({
            "kind": m.kind, "date": m.at.isoformat(), "reference": m.stripe_id or m.id,
            "currency": m.currency, "amount": m.amount, "status": m.status,
        })  # fmt: skip
    for p in s.payouts:
        rows.append({
            "kind": "payout", "date": p.at.isoformat(), "reference": p.id,
            "currency": p.currency, "amount": p.amount, "status": p.status,
        })  # fmt: skip
    for t in s.totals:
        rows.append({
            "kind": "total", "reference": f"{s.owner_id} {s.month}", "currency": t.currency,
            "energy_wh": t.energy_wh, "captured": t.captured, "stripe_fee": _blank(t.stripe_fee),
            "refunded": t.refunded, "owner_share": t.owner_share,
            "operator_share": t.operator_share, "transferred": t.transferred,
            "reversed": t.reversed, "amount": t.net,
        })  # fmt: skip
    return rows


def to_csv(s: Statement) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in csv_rows(s):
        writer.writerow([neutralise(row.get(column, "")) for column in CSV_COLUMNS])
    return buffer.getvalue()


_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Statement", "owner": "Owner", "month": "Month", "zone": "Times in",
        "sessions": "Sessions", "date": "Stopped", "charger": "Charger", "site": "Site",
        "energy": "Energy", "captured": "Paid", "fee": "Stripe fee", "refunded": "Refunded",
        "owner_share": "Owner's share", "operator_share": "Operator's share",
        "transferred": "Transferred", "reversed": "Reversed", "none": "None this month.",
        "movements": "Transfers and reversals", "kind": "Kind", "reference": "Reference",
        "amount": "Amount", "status": "Status", "payouts": "Payouts", "totals": "Totals",
        "net": "Paid less refunded", "transfers_in_month": "Transferred this month",
        "reversals_in_month": "Reversed this month", "payouts_paid": "Paid out this month",
        "count": "Sessions", "transfer": "Transfer", "reversal": "Reversal",
        "fee_unknown": "Stripe fee: blank where Stripe did not say it; totals add the known.",
        "print": "Print",
    },
    "de": {
        "title": "Abrechnung", "owner": "Eigentümer", "month": "Monat", "zone": "Zeiten in",
        "sessions": "Ladevorgänge", "date": "Beendet", "charger": "Ladestation",
        "site": "Standort", "energy": "Energie", "captured": "Bezahlt", "fee": "Stripe-Gebühr",
        "refunded": "Erstattet", "owner_share": "Anteil Eigentümer",
        "operator_share": "Anteil Betreiber", "transferred": "Überwiesen",
        "reversed": "Zurückgebucht", "none": "Keine in diesem Monat.",
        "movements": "Überweisungen und Rückbuchungen", "kind": "Art",
        "reference": "Referenz", "amount": "Betrag", "status": "Status",
        "payouts": "Auszahlungen", "totals": "Summen", "net": "Bezahlt abzüglich Erstattungen",
        "transfers_in_month": "In diesem Monat überwiesen",
        "reversals_in_month": "In diesem Monat zurückgebucht",
        "payouts_paid": "In diesem Monat ausgezahlt", "count": "Ladevorgänge",
        "transfer": "Überweisung", "reversal": "Rückbuchung",
        "fee_unknown": "Stripe-Gebühr: leer, wo Stripe sie nicht nannte; Summen: die bekannten.",
        "print": "Drucken",
    },
}  # fmt: skip

_templates = Environment(
    loader=PackageLoader("payments.web"), autoescape=select_autoescape(["html"])
)


def _zone(s: Statement) -> tzinfo:
    try:
        return ZoneInfo(s.time_zone)
    except (ValueError, KeyError):
        return s.start.tzinfo or ZoneInfo("UTC")


def to_html(s: Statement, operator: Operator, language: str) -> str:
    t = Texts(language)
    words = _WORDS.get(t.language, _WORDS["en"])
    fmt, zone = t.fmt, _zone(s)

    def money(amount: int | None, currency: str) -> str:
        return "" if amount is None else fmt.money(amount, currency)

    month = format_date(date(s.month.year, s.month.month, 1), "LLLL y", locale=t.language)
    return _templates.get_template("statement.html").render(
        t=t,
        lang=t.language,
        languages=[],
        w=words,
        title=f"{words['title']} {s.owner_name} {s.month}",
        s=s,
        operator=operator,
        month=month,
        moment=lambda at: fmt.moment(at, zone),
        money=money,
        kwh=fmt.kwh,
    )
