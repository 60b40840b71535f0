"""A tariff in plain words, for the start page and the printed labels."""

from __future__ import annotations

from payments.pricing import Tariff, format_money
from payments.web.texts import Texts


def tariff_in_words(tariff: Tariff, t: Texts) -> list[str]:
    """One phrase per component that costs something; empty for a free tariff."""
    money = tariff.currency
    words = []
    if tariff.price_per_kwh:
        words.append(t("price.per_kwh", amount=format_money(tariff.price_per_kwh, money)))
    if tariff.session_fee:
        words.append(t("price.session_fee", amount=format_money(tariff.session_fee, money)))
    if tariff.time_fee_per_minute:
        amount = format_money(tariff.time_fee_per_minute, money)
        if tariff.time_fee_free_minutes:
            words.append(
                t("price.time_fee_after", amount=amount, minutes=tariff.time_fee_free_minutes)
            )
        else:
            words.append(t("price.time_fee", amount=amount))
    if tariff.idle_fee_per_minute:
        words.append(
            t(
                "price.idle_fee",
                amount=format_money(tariff.idle_fee_per_minute, money),
                minutes=tariff.idle_grace_minutes,
                cap=tariff.idle_fee_max_minutes,
            )
        )
    return words
