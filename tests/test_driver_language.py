"""The driver's pages in English and German: which language a request gets, the two
catalogues kept in step, and money, numbers and dates as each language writes them."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta, timezone

import pytest

from payments.codec import decode_effect, encode_effect
from payments.pricing import Tariff
from payments.reservation import CreateCheckout
from payments.web.describe import tariff_in_words
from payments.web.formats import Formats
from payments.web.language import COOKIE, accepted, choose, supported
from payments.web.pages import _busy_words
from payments.web.texts import CATALOGUES, Texts
from payments.web.texts_de import GERMAN
from payments.web.texts_en import ENGLISH

# -- which language


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", ["de-DE", "de", "en"]),
        ("en;q=0.5, de;q=0.9, fr", ["fr", "de", "en"]),
        ("fr;q=0, de", ["de"]),  # q=0: not wanted at all
        ("de;q=0.8, en;q=0.8", ["de", "en"]),  # a tie keeps the header's order
        ("de;q=abc, en", ["en"]),
        ("", []),
        (None, []),
    ],
)
def test_accept_language_is_ordered_by_weight(header: str | None, expected: list[str]) -> None:
    assert accepted(header) == expected


@pytest.mark.parametrize(
    ("query", "cookies", "header", "expected"),
    [
        ({}, {}, None, "en"),
        ({}, {}, "de-AT,de;q=0.9,en;q=0.5", "de"),
        ({}, {}, "en-GB,en;q=0.9,de;q=0.8", "en"),
        ({}, {}, "fr-FR,fr;q=0.9,de;q=0.7,en;q=0.6", "de"),  # French is not offered
        ({}, {}, "en;q=0.4,de;q=0.9", "de"),  # weights, not order
        ({}, {}, "fr,it", "en"),  # nothing offered: English
        ({}, {}, "*", "en"),
        ({}, {COOKIE: "de"}, "en", "de"),  # the remembered choice beats the browser
        ({"lang": "en"}, {COOKIE: "de"}, "de", "en"),  # the link beats both
        ({"lang": "DE"}, {}, None, "de"),
        ({"lang": "xx"}, {}, "de", "de"),  # an unknown ?lang is ignored
        ({"lang": "xx"}, {COOKIE: "zz"}, None, "en"),
    ],
)
def test_language_choice(
    query: dict[str, str], cookies: dict[str, str], header: str | None, expected: str
) -> None:
    assert choose(query, cookies, header) == expected


def test_supported_takes_regional_variants() -> None:
    assert [supported(c) for c in ("de", "de-CH", "de_AT", " EN ", "fr", "", None)] == [
        *("de", "de", "de", "en"),
        *(None, None, None),
    ]


# -- the catalogues


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_every_language_has_every_text_with_the_same_placeholders() -> None:
    assert set(CATALOGUES) == {"en", "de"}
    assert set(GERMAN) == set(ENGLISH)
    for key, english in ENGLISH.items():
        assert _placeholders(GERMAN[key]) == _placeholders(english), key
        assert GERMAN[key].strip(), key


def test_texts_fall_back_to_english() -> None:
    assert Texts("fr").language == "en"
    assert Texts("fr")("receipt.title") == "Receipt"
    assert Texts("de")("receipt.title") == "Quittung"
    assert Texts("de")("start.connector", connector=2) == "Anschluss 2"


def test_busy_reasons_are_worded_in_the_language() -> None:
    de = Texts("de")
    assert _busy_words("the connector is Charging", de) == "der Anschluss meldet „Lädt“"
    assert _busy_words("reserved by another driver", de) == "von einer anderen Person reserviert"
    # Neither an unknown OCPP status nor an internal reason is shown as it is.
    assert _busy_words("the connector is Mystery", de) == "der Anschluss meldet „Unbekannt“"
    assert _busy_words("something new", de) == "er ist nicht frei"


# -- formats


@pytest.mark.parametrize(
    ("language", "minor", "currency", "shown"),
    [
        ("en", 123456, "eur", "€1,234.56"),
        ("de", 123456, "eur", "1.234,56\xa0€"),
        ("en", 5, "eur", "€0.05"),
        ("de", 5, "EUR", "0,05\xa0€"),
        ("en", 123456, "jpy", "¥123,456"),  # zero-decimal: 123456 is 123,456 yen
        ("de", 500, "jpy", "500\xa0¥"),
        ("en", 5120, "kwd", "KWD5.120"),  # three decimals
        ("de", 5120, "kwd", "5,120\xa0KWD"),
        ("de", 500, "isk", "5,00\xa0ISK"),  # two decimals on Stripe's wire, whatever CLDR says
        ("en", 0, "usd", "$0.00"),
        ("de", 99_999_999, "chf", "999.999,99\xa0CHF"),
    ],
)
def test_money_in_each_language(language: str, minor: int, currency: str, shown: str) -> None:
    assert Formats(language).money(minor, currency) == shown


def test_numbers_and_units() -> None:
    en, de = Formats("en"), Formats("de")
    assert (en.kwh(12345), de.kwh(12345)) == ("12.35 kWh", "12,35 kWh")
    assert (en.kwh(1234567, 3), de.kwh(1234567, 3)) == ("1,234.567 kWh", "1.234,567 kWh")
    assert (en.kwh(0), de.kwh(0)) == ("0.00 kWh", "0,00 kWh")
    assert (en.kw(7400), de.kw(11000.0)) == ("7.4 kW", "11,0 kW")
    assert (en.energy_limit(20000), de.energy_limit(7500)) == ("20", "7,5")
    assert (en.number(1234.5, 2), de.number(1234.5, 0)) == ("1,234.50", "1.235")
    assert (en.number(0.125, 2), de.number(2.5, 0)) == ("0.13", "3")  # halves round up


def test_moments_are_in_utc_and_say_so() -> None:
    berlin = timezone(timedelta(hours=1))
    moment = datetime(2026, 3, 5, 15, 7, tzinfo=berlin)  # 14:07 UTC
    assert Formats("de").moment(moment) == "05.03.2026, 14:07 UTC"
    assert Formats("en").moment(moment).replace("\u202f", " ") == "Mar 5, 2026, 2:07 PM UTC"
    naive = datetime(2026, 12, 24, 8, 30)  # taken as UTC
    assert Formats("de").moment(naive) == "24.12.2026, 08:30 UTC"
    assert Formats("de").moment(naive.replace(tzinfo=UTC)) == "24.12.2026, 08:30 UTC"


def test_tariff_in_each_language() -> None:
    tariff = Tariff(
        "eur", price_per_kwh=40, session_fee=50, time_fee_per_minute=5, time_fee_free_minutes=30
    )
    assert tariff_in_words(tariff, Texts("de")) == [
        "0,40\xa0€ pro kWh",
        "0,50\xa0€ pro Ladevorgang",
        "0,05\xa0€ pro Minute Ladezeit nach 30 Minuten",
    ]
    assert tariff_in_words(Tariff("jpy", price_per_kwh=45), Texts("en")) == ["¥45 per kWh"]


def test_checkouts_locale_travels_through_the_outbox() -> None:
    queued = CreateCheckout("de")
    assert decode_effect("CreateCheckout", encode_effect(queued)) == queued
    # An effect queued before the locale was kept still decodes: Stripe picks the language.
    assert decode_effect("CreateCheckout", "{}") == CreateCheckout(None)
