"""`POST /api/chargers/{chargerId}/commands/{Operation}`: any of the 26 central-system
operations of OCPP 1.6 (its feature profiles' 19 and its security extension's 7), its
body checked against the operation's own schema, answered with the charger's reply.
One route per operation, so the document shows each body.

A charger that is not registered is a 404 `unknown_charger`; a registered one that is not
connected a 404 `offline`."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from csms.ocpp16.commands import Answered, ChargerCommands, Failed, InvalidCommand, Offline
from csms.ocpp16.schemas import CSMS_ACTIONS, load_schema
from csms.store.chargers import ChargerStore
from httpapi.errors import ApiError
from httpapi.routing import Api, json_response


def _schema(name: str) -> dict[str, Any]:
    """An OCPP 1.6 JSON Schema (draft 4) made fit for OpenAPI 3.1."""
    schema = load_schema(name)
    for keyword in ("$schema", "id", "title"):
        schema.pop(keyword, None)
    return schema


class CommandRoutes:
    def __init__(self, commands: ChargerCommands, chargers: ChargerStore) -> None:
        self._commands = commands
        self._chargers = chargers

    def register(self, api: Api) -> None:
        for operation in sorted(CSMS_ACTIONS):
            api.add(
                "POST",
                f"/api/chargers/{{chargerId}}/commands/{operation}",
                self._handler(operation),
                tag="commands",
                role="support",
                summary=f"Send {operation} to a connected charger and return its answer",
                description="404 unknown_charger: no such charger is registered;"
                " 404 offline: it is registered but not connected",
                body_schema=_schema(operation),
                response_schema=_schema(f"{operation}Response"),
                errors=(404, 502, 504),
            )

    def _handler(self, operation: str):  # type: ignore[no-untyped-def]
        async def send(request: web.Request) -> web.Response:
            return await self.send(request, operation)

        send.__name__ = f"send_{operation[0].lower()}{operation[1:]}"
        return send

    async def send(self, request: web.Request, operation: str) -> web.Response:
        try:
            payload = json.loads(await request.read() or b"{}")
        except ValueError:
            raise ApiError(400, "invalid_json", "the body is not valid JSON", "body") from None
        if not isinstance(payload, dict):
            raise ApiError(400, "invalid", "the body must be a JSON object", "body")
        charger_id = request.match_info["chargerId"]
        try:
            result = await self._commands.send(charger_id, operation, payload)
        except InvalidCommand as invalid:
            raise ApiError(400, "invalid", str(invalid), invalid.field or "body") from None
        match result:
            case Answered(reply):
                return json_response(reply)
            case Offline(sent=False):
                if await self._chargers.get(charger_id) is None:
                    raise ApiError(404, "unknown_charger", f"unknown charger {charger_id}")
                raise ApiError(404, "offline", f"{charger_id} is not connected")
            case Offline(sent=True):
                raise ApiError(404, "offline", f"{charger_id}: {result.description}")
            case Failed(code, description, _):
                raise ApiError(502, code, description or "the charger refused the call")
        raise ApiError(504, "timeout", f"{charger_id} did not answer in time")
