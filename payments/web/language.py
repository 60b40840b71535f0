"""Which language a driver's page is in: `?lang=` (then remembered in a cookie), the cookie,
the browser's Accept-Language, English otherwise."""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("en", "de")
DEFAULT = "en"
PARAM = "lang"
COOKIE = "csms_lang"
# The language's own name, for the switch on every page.
NAMES = {"en": "English", "de": "Deutsch"}


def supported(code: str | None) -> str | None:
    """`"de"`, `"DE"`, `"de-AT"`, `"de_CH"` -> "de"; None for a language not offered."""
    if not code:
        return None
    primary = code.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in LANGUAGES else None


def accepted(header: str | None) -> list[str]:
    """The languages of an Accept-Language header, most wanted first (RFC 9110 q-values;
    q=0 means "not this one"; equal weights keep the header's order)."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")):
        tag, *params = (piece.strip() for piece in part.split(";"))
        if not tag:
            continue
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if weight > 0:
            weighted.append((-weight, position, tag))
    return [tag for _, _, tag in sorted(weighted)]


def choose(query: Mapping[str, str], cookies: Mapping[str, str], accept: str | None) -> str:
    """The page's language: asked for in the link, remembered, or the browser's first offered."""
    for asked in (query.get(PARAM), cookies.get(COOKIE)):
        found = supported(asked)
        if found:
            return found
    for tag in accepted(accept):
        if tag == "*":
            return DEFAULT
        found = supported(tag)
        if found:
            return found
    return DEFAULT
