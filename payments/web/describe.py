"""A tariff in plain words, for the start page and the printed labels."""

from __future__ import annotations

from payments.bands import DAYS, Band
from payments.pricing import Tariff
from payments.web.texts import Texts

DASH = "\u2013"  # en dash, as in 07:00-22:00 typeset


def tariff_in_words(tariff: Tariff, t: Texts) -> list[str]:
    """One phrase per component that costs something, in `t`'s language; empty for a free
    tariff."""

    def money(amount: int) -> str:
        return t.fmt.money(amount, tariff.currency)

    words = []
    for band in tariff.bands:
        words.append(
            t("price.per_kwh_band", amount=money(band.price_per_kwh), band=band_label(band, t))
        )
    if tariff.price_per_kwh:
        key = "price.per_kwh_other" if tariff.bands else "price.per_kwh"
        words.append(t(key, amount=money(tariff.price_per_kwh)))
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
        window = tariff.time_fee_excluded
        if window is not None:
            words.append(t("price.time_fee_excluded", span=f"{window.start}{DASH}{window.end}"))
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


def band_label(band: Band, t: Texts) -> str:
    """ "Peak Mon-Fri 07:00-22:00" (typeset with en dashes), the parts it has."""
    return " ".join(
        x for x in (band.name, _days(band.days, t), f"{band.start}{DASH}{band.end}") if x
    )


def _days(days: tuple[str, ...], t: Texts) -> str:
    """ "" for every day, "Mon-Fri" for a run of three or more, "Sat, Sun" otherwise."""
    if not days or len(set(days)) == len(DAYS):
        return ""
    indexes = sorted(DAYS.index(d) for d in days)
    names = [t(f"receipt.day.{DAYS[i]}") for i in indexes]
    if len(indexes) > 2 and indexes == list(range(indexes[0], indexes[-1] + 1)):
        return f"{names[0]}{DASH}{names[-1]}"
    return ", ".join(names)
