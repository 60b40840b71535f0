"""The console's QR labels page, `/console/qr`: choose chargers (searched by id or name) and
their connectors, and get the printable sheet of labels to stick on them.

The sheet is the one `csms qr --sheet` writes (csms/qr.py: `labels_from_database`,
`label_sheet_html`): the same codes, pointing at the same start pages, with each connector's
price, A4 pages of 3 x 3 labels and their print styles. What is chosen:
- a charger ticked with none of its connectors ticked: all its connectors;
- connectors ticked (`connector=CHARGER/N`): those, whether or not their charger is.
Read-only: every role may print labels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from csms.config_values import default_tariff
from csms.console.framework import Console
from csms.qr import (
    BaseUrlError,
    Label,
    UnknownChargerError,
    label_sheet_html,
    labels_from_database,
)
from csms.store.chargers import ChargerStore
from payments.pricing import Tariff
from storage.db import Database

if TYPE_CHECKING:
    from csms.app import CentralSystem

PATH = "/console/qr"
MOST_CHOSEN = 500  # labels on one sheet: 56 A4 pages


@dataclass(frozen=True)
class Choice:
    """What the form asks for: whole chargers, and single connectors."""

    chargers: tuple[str, ...]
    connectors: frozenset[tuple[str, int]]

    @classmethod
    def of(cls, chargers: Sequence[str], connectors: Sequence[str]) -> Choice:
        picked: set[tuple[str, int]] = set()
        for value in connectors:
            charger, _, number = value.rpartition("/")
            if charger and number.isdigit() and 0 < int(number) < 1000:
                picked.add((charger, int(number)))
        named = list(dict.fromkeys([*chargers, *(charger for charger, _ in sorted(picked))]))
        return cls(tuple(named), frozenset(picked))

    def keeps(self, label: Label) -> bool:
        """Whether the sheet has this label: its connector was ticked, or its charger was
        and none of that charger's connectors were."""
        if (label.charger_id, label.connector_id) in self.connectors:
            return True
        return all(charger != label.charger_id for charger, _ in self.connectors)


class QrPages:
    def __init__(
        self,
        console: Console,
        db: Database,
        base_url: Callable[[], str],
        default_tariff: Tariff,
    ) -> None:
        self._console = console
        self._db = db
        self._chargers = ChargerStore(db)
        self._base_url = base_url
        self._tariff = default_tariff

    def routes(self) -> list[web.RouteDef]:
        return [web.get(PATH, self.choose), web.get(f"{PATH}/sheet", self.sheet)]

    async def choose(self, request: web.Request) -> web.Response:
        self._console.require(request, "viewer")
        search = request.query.get("q", "").strip()[:100]
        wanted = search.lower()
        rows = [
            row
            for row in await self._chargers.list()
            if not wanted or wanted in row["id"].lower() or wanted in (row["name"] or "").lower()
        ]
        reported = await self._chargers.connectors_of([row["id"] for row in rows])
        chargers = [
            {
                "id": row["id"],
                "name": row["name"],
                # Connector 0 is the charger as a whole; one that reported none has a 1.
                "connectors": [c.connector_id for c in reported[row["id"]] if c.connector_id >= 1]
                or [1],
            }
            for row in rows
        ]
        return self._console.render(
            request, "qr.html", title="QR labels", chargers=chargers, search=search
        )

    async def sheet(self, request: web.Request) -> web.Response:
        self._console.require(request, "viewer")
        choice = Choice.of(
            request.query.getall("charger", []), request.query.getall("connector", [])
        )
        if not choice.chargers:
            return self._console.problem(request, 400, "Choose at least one charger.")
        if len(choice.chargers) > MOST_CHOSEN:
            return self._console.problem(request, 400, f"Choose at most {MOST_CHOSEN} chargers.")
        try:
            labels = await labels_from_database(
                self._db, self._base_url(), self._tariff, choice.chargers
            )
        except UnknownChargerError as error:
            return self._console.problem(request, 404, f"No charger {error.charger_id}.")
        except BaseUrlError as error:
            return self._console.problem(request, 409, f"payments.public_base_url: {error}")
        chosen = [label for label in labels if choice.keeps(label)]
        if not chosen:
            return self._console.problem(request, 400, "None of the chosen connectors exist.")
        response = web.Response(
            text=label_sheet_html(chosen[:MOST_CHOSEN]), content_type="text/html"
        )
        response.headers["Cache-Control"] = "no-store"
        return response


def qr_pages(console: Console, system: CentralSystem) -> QrPages:
    """The labels page over the system's chargers, with its public address and tariff."""
    return QrPages(
        console, system.db, lambda: system.executor.public_base_url, default_tariff(system.config)
    )
