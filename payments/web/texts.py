"""Every text the driver reads, one catalogue per language (`texts_en`, `texts_de`), each
with the same keys and placeholders; numbers, money and dates go through `formats`."""

from __future__ import annotations

from typing import Any

from payments.web.formats import Formats
from payments.web.language import DEFAULT
from payments.web.texts_de import GERMAN
from payments.web.texts_en import ENGLISH

CATALOGUES: dict[str, dict[str, str]] = {"en": ENGLISH, "de": GERMAN}


class Texts:
    def __init__(self, language: str = DEFAULT) -> None:
        self.language = language if language in CATALOGUES else DEFAULT
        self._texts = CATALOGUES[self.language]
        self.fmt = Formats(self.language)

    def __call__(self, key: str, **values: Any) -> str:
        return self._texts[key].format(**values)

    def has(self, key: str) -> bool:
        return key in self._texts
