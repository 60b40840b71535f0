"""Stripe-shaped API errors: `{"error": {"type", "code", "message", "param", "doc_url", ...}}`.

The SDK maps the HTTP status and `error.type` to its exception classes (400/404 ->
InvalidRequestError or IdempotencyError, 401 -> AuthenticationError, 402 -> CardError,
5xx -> APIError), so both must match what Stripe sends.
"""

from __future__ import annotations

from typing import Any

DOC_BASE = "https://stripe.com/docs/error-codes/"


class StripeError(Exception):
    """An error answered to an API call.

    `saved` says whether the idempotency layer stores it: Stripe saves a result only once
    the endpoint has started executing, so parameter validation errors are not saved (the
    client may fix the request and retry with the same key) while state errors such as
    `payment_intent_unexpected_state` are.
    """

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: dict[str, Any] | None = None,
        saved: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}
        self.saved = saved
        self.headers = headers or {}

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        error: dict[str, Any] = {}
        if self.code is not None:
            error["code"] = self.code
        if self.decline_code is not None:
            error["decline_code"] = self.decline_code
        if self.code is not None:
            error["doc_url"] = DOC_BASE + self.code.replace("_", "-")
        error["message"] = self.message
        if self.param is not None:
            error["param"] = self.param
        error.update(self.extra)
        if request_id is not None:
            error["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        error["type"] = self.type
        return {"error": error}


def invalid_request(
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    status: int = 400,
    saved: bool = False,
    extra: dict[str, Any] | None = None,
) -> StripeError:
    return StripeError(
        status,
        "invalid_request_error",
        message,
        code=code,
        param=param,
        saved=saved,
        extra=extra,
    )


def missing_param(param: str) -> StripeError:
    return invalid_request(
        f"Missing required param: {param}.", param=param, code="parameter_missing"
    )


def unknown_param(param: str) -> StripeError:
    return invalid_request(
        f"Received unknown parameter: {param}", param=param, code="parameter_unknown"
    )


def unsupported_param(param: str) -> StripeError:
    # A real Stripe parameter the sandbox does not model: refusing beats silently
    # diverging from what Stripe would do with it.
    return invalid_request(
        f"The Stripe sandbox does not support the parameter `{param}`.", param=param
    )


def invalid_value(
    param: str, message: str, *, code: str = "parameter_invalid_string"
) -> StripeError:
    return invalid_request(message, param=param, code=code)


def resource_missing(kind: str, object_id: str, param: str) -> StripeError:
    return invalid_request(
        f"No such {kind}: '{object_id}'",
        param=param,
        code="resource_missing",
        status=404,
    )


def unrecognized_url(method: str, path: str) -> StripeError:
    return invalid_request(
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
        "or we can help at https://support.stripe.com/.",
        status=404,
    )


def api_error(message: str = "An unknown error occurred") -> StripeError:
    return StripeError(500, "api_error", message)


def authentication(message: str) -> StripeError:
    return StripeError(
        401,
        "invalid_request_error",
        message,
        headers={"WWW-Authenticate": 'Basic realm="Stripe"'},
    )


def unexpected_state(message: str, *, extra: dict[str, Any] | None = None) -> StripeError:
    return invalid_request(message, code="payment_intent_unexpected_state", saved=True, extra=extra)
