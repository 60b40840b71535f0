"""One error shape for the API: `{"error": {"code", "message", "field"?}}`."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def response(self) -> web.Response:
        return error_response(self.status, self.code, self.message, self.field)


def error_response(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return web.Response(
        body=orjson.dumps({"error": body}), status=status, content_type="application/json"
    )


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"no such {what}")
