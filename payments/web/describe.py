"""A tariff in plain words, for the start page and the printed labels."""

from __future__ import annotations

from payments.pricing import Tariff
from payments.web.texts import Texts


def tariff_in_words(tariff: Tariff, t: Texts) -> list[str]:
    """One phrase per component that costs something, in `t`'s language; empty for a free
    tariff."""

    def money(amount: int) -> str:
        return t.fmt.money(amount, tariff.currency)

    words = []
    if tariff.price_per_kwh:
        words.append(t("price.per_kwh", amount=money(tariff.price_per_kwh)))
    if tariff.session_fee:
        words.append(t("price.session_fee", amount=money(tariff.session_fee)))
    if tariff.time_fee_per_minute:
        amount = money(tariff.time_fee_per_minute)
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
                amount=money(tariff.idle_fee_per_minute),
                minutes=tariff.idle_grace_minutes,
                cap=tariff.idle_fee_max_minutes,
            )
        )
    return words
