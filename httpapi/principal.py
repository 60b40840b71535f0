"""Who is acting in a request, and with which role: set by whatever authenticated it (the
API key check, the console's sign-in) as `request[PRINCIPAL]`, and read by the routes (each
names the role it needs, `httpapi.routing.Operation.role`) and by the audit (`actor`).

`actor` is how the audit names them: "key:{name}" for an API key, "user:{name}" for a user
signed in to the console.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from csms.roles import Role


@dataclass(frozen=True)
class Principal:
    actor: str  # "key:{name}" or "user:{name}"
    role: Role


PRINCIPAL = web.RequestKey("principal", Principal)
