"""Routes declared with their models; requests validated; the OpenAPI document derived.

    api = Api("csms", "1.0")

    @api.operation("POST", "/api/things", summary="Create a thing", tag="things",
                   body=NewThing, response=Thing, status=201, errors=(409,))
    async def create_thing(request, body: NewThing) -> Thing: ...

A handler gets the request plus `body=` and `query=` (validated models) when declared,
and returns a model (serialised as JSON with the declared status) or any aiohttp
response. Invalid input never reaches it: the client gets a 400 naming the field.

Each operation names the role it needs (`role=`, `csms.roles`): by default "viewer" for a
GET and "admin" for anything else, so that a write nobody thought about is the admin's
(least privilege). A request whose principal (`httpapi.principal`, set by the API key check
or the console's sign-in) lacks it gets a 403 naming the role, before its input is read;
the OpenAPI document says it as `x-role`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.json_schema import models_json_schema

from csms.roles import Role, allows
from httpapi.errors import ApiError, ErrorResponse
from httpapi.principal import PRINCIPAL

Handler = Callable[..., Awaitable[Any]]
H = TypeVar("H", bound=Handler)

_REF = "#/components/schemas/{model}"
_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No content",
    400: "Invalid request: the error names the field",
    401: "Missing or wrong API key",
    403: "The key's role is not enough: the error names the role needed",
    404: "Not found",
    409: "Conflict with the current state",
    429: "Too many requests",
    502: "The charger answered with a CALLERROR",
    503: "A dependency is unavailable",
    504: "The charger did not answer in time",
}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    tag: str
    handler: Handler
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None  # a model, list[model], or None
    status: int = 200
    errors: tuple[int, ...] = ()
    auth: bool = True
    produces: str = "application/json"
    description: str = ""
    path_parameters: dict[str, Any] = field(default_factory=dict)
    # False: the body model only documents; the handler reads and checks the body itself.
    validate_body: bool = True
    # True: the body may be left out, and is then validated as an empty object.
    body_optional: bool = False
    # The shape of this route's error answers (some routes keep an older shape).
    error_model: type[BaseModel] = ErrorResponse
    # Plain JSON Schemas, for bodies defined elsewhere (OCPP's own schemas); the handler
    # validates such a body itself.
    body_schema: dict[str, Any] | None = None
    response_schema: dict[str, Any] | None = None
    # The role a principal needs (csms.roles.allows); Api.add defaults it by the method.
    role: Role = "admin"


class Api:
    def __init__(self, title: str, version: str, description: str = "") -> None:
        self.title = title
        self.version = version
        self.description = description
        self.operations: list[Operation] = []

    def operation(self, method: str, path: str, **options: Any) -> Callable[[H], H]:
        def register(handler: H) -> H:
            self.add(method, path, handler, **options)
            return handler

        return register

    def add(self, method: str, path: str, handler: Handler, **options: Any) -> None:
        method = method.upper()
        options.setdefault("role", default_role(method))
        self.operations.append(Operation(method, path, handler=handler, **options))

    def register(self, app: web.Application) -> None:
        for op in self.operations:
            app.router.add_route(op.method, op.path, _endpoint(op))

    # -- the OpenAPI document

    def openapi(self) -> dict[str, Any]:
        models = _models(self.operations)
        _, definitions = models_json_schema(
            [(model, "validation") for model in models], ref_template=_REF
        )
        paths: dict[str, dict[str, Any]] = {}
        for op in self.operations:
            paths.setdefault(op.path, {})[op.method.lower()] = _describe(op)
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": self.version, "description": self.description},
            "paths": paths,
            "components": {
                "schemas": definitions.get("$defs", {}),
                "securitySchemes": {
                    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}
                },
            },
        }


def default_role(method: str) -> Role:
    """What an operation needs unless it says: reading is the viewer's, the rest the admin's."""
    return "viewer" if method in ("GET", "HEAD") else "admin"


def _models(operations: list[Operation]) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = [ErrorResponse]
    for op in operations:
        for candidate in (op.body, op.query, _item_model(op.response), op.error_model):
            if candidate is not None and candidate not in found:
                found.append(candidate)
    return found


def _item_model(response: Any) -> type[BaseModel] | None:
    if isinstance(response, type) and issubclass(response, BaseModel):
        return response
    args = getattr(response, "__args__", ())
    return args[0] if args and isinstance(args[0], type) else None


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _describe(op: Operation) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": op.path_parameters.get(name, {"type": "string", "minLength": 1}),
        }
        for name in re.findall(r"{(\w+)}", op.path)
    ]
    if op.query is not None:
        schema = op.query.model_json_schema(ref_template=_REF)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            parameters.append(
                {"name": name, "in": "query", "required": name in required, "schema": prop}
            )
    described: dict[str, Any] = {
        "summary": op.summary,
        "operationId": op.handler.__name__,
        "tags": [op.tag],
        "parameters": parameters,
        "responses": {},
    }
    if op.description:
        described["description"] = op.description
    if op.auth:
        described["security"] = [{"ApiKey": []}]
        described["x-role"] = op.role
    if op.body is not None or op.body_schema is not None:
        body = op.body_schema if op.body_schema is not None else _ref(op.body)  # type: ignore[arg-type]
        described["requestBody"] = {
            "required": not op.body_optional,
            "content": {"application/json": {"schema": body}},
        }
    success: dict[str, Any] = {"description": _STATUS_TEXT.get(op.status, "OK")}
    if op.produces != "application/json":
        success["content"] = {op.produces: {"schema": {"type": "string"}}}
    elif op.response_schema is not None:
        success["content"] = {"application/json": {"schema": op.response_schema}}
    elif op.response is not None:
        item = _item_model(op.response)
        assert item is not None
        schema = _ref(item) if op.response is item else {"type": "array", "items": _ref(item)}
        success["content"] = {"application/json": {"schema": schema}}
    described["responses"][str(op.status)] = success
    errors = set(op.errors) | {400} | ({401} if op.auth else set())
    if op.auth and op.role != "viewer":
        errors.add(403)
    for status in sorted(errors):
        # The key and role checks answer before any route, always in the common shape.
        shape = ErrorResponse if status in (401, 403) else op.error_model
        described["responses"][str(status)] = {
            "description": _STATUS_TEXT.get(status, "Error"),
            "content": {"application/json": {"schema": _ref(shape)}},
        }
    return described


# -- serving one operation


def _endpoint(op: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        principal = request.get(PRINCIPAL)
        if principal is not None and not allows(principal.role, op.role):
            raise ApiError(403, "forbidden", f"needs the role {op.role}")
        kwargs: dict[str, Any] = {}
        _refuse_nul(dict(request.match_info), "")
        _refuse_nul(dict(request.query), "")
        if op.query is not None:
            kwargs["query"] = _validated(op.query, dict(request.query), "query")
        if op.body is not None and op.validate_body:
            data = await _json(request)
            if data is None and op.body_optional:
                data = {}
            kwargs["body"] = _validated(op.body, data, "body")
        result = await op.handler(request, **kwargs)
        if isinstance(result, web.StreamResponse):
            return result
        return json_response(result, op.status)

    return endpoint


async def _json(request: web.Request) -> Any:
    raw = await request.read()
    try:
        data = orjson.loads(raw or b"null")
    except orjson.JSONDecodeError:
        raise ApiError(400, "invalid_json", "the body is not valid JSON", "body") from None
    _refuse_nul(data, "")
    return data


def _refuse_nul(data: Any, where: str) -> None:
    """A 400 naming the field for a NUL character anywhere in a path parameter, the query or
    the body (names included): no store keeps one (PostgreSQL refuses it outright)."""
    if isinstance(data, str):
        if "\x00" in data:
            raise ApiError(400, "invalid", "must not contain a NUL character", where or "body")
    elif isinstance(data, dict):
        for key, value in data.items():
            place = f"{where}.{key}" if where else str(key)
            _refuse_nul(key, place)
            _refuse_nul(value, place)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            _refuse_nul(value, f"{where}[{index}]" if where else f"[{index}]")


def _validated(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"]) or where
        raise ApiError(400, "invalid", first["msg"], location) from None


def json_response(result: Any, status: int = 200) -> web.Response:
    if isinstance(result, BaseModel):
        payload = result.model_dump(mode="json", by_alias=True)
    elif isinstance(result, list):
        payload = TypeAdapter(list[Any]).dump_python(result, mode="json", by_alias=True)
    else:
        payload = result
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")
