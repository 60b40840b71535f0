"""`Idempotency-Key` on POST requests, as Stripe implements it for API v1.

- The first request with a key runs; its status and body are saved for 24 hours (on the
  sandbox clock), scoped to the API key (Stripe scopes keys per account).
- The same key with the same endpoint and parameters gets the saved response again, with
  `Idempotent-Replayed: true` and `Original-Request` naming the first request.
- The same key on another endpoint, or with other parameters: 400 `idempotency_error`.
- While the first request is still running: 409 `idempotency_key_in_use` (the SDK
  retries 409s).
- Nothing is saved when the endpoint did not start executing: parameter validation
  errors and injected 5xx faults can be retried with the same key.
- For the state file, so that a retry after a restart still gets the saved response
  instead of running again: `changed` notes each key whose response was saved since the
  state file last wrote; `saved()` gives it, `restore()` puts back what was kept. A
  request still running holds no saved response: it is not kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import StripeError, invalid_request
from .state_types import Clock

TTL = 24 * 3600
MAX_KEY_LENGTH = 255


@dataclass
class Saved:
    endpoint: str
    fingerprint: str
    created: int
    request_id: str
    status: int | None = None
    body: bytes = b""

    @property
    def in_flight(self) -> bool:
        return self.status is None


def fingerprint(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


class IdempotencyStore:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._saved: dict[tuple[str, str], Saved] = {}
        # (scope, key) of the responses saved since the state file took them (ordered).
        self.changed: dict[tuple[str, str], None] = {}

    def begin(
        self, scope: str, key: str, endpoint: str, params: dict[str, Any], request_id: str
    ) -> Saved | None:
        """The saved response to replay, or None after reserving the key for this request."""
        if len(key) > MAX_KEY_LENGTH:
            raise invalid_request(
                f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters long.",
                param="Idempotency-Key",
            )
        now = self._clock.now()
        saved = self._saved.get((scope, key))
        if saved is not None and saved.created + TTL <= now:
            # Expired: a new request, placed after the others (as the state file keeps it).
            del self._saved[(scope, key)]
            saved = None
        if saved is None:
            self._saved[(scope, key)] = Saved(endpoint, fingerprint(params), now, request_id)
            return None
        if saved.in_flight:
            raise StripeError(
                409,
                "invalid_request_error",
                "There is currently another in-progress request using this Idempotent Key "
                "(that probably means you submitted twice, and the other request is still "
                f"going through): {key}. Please try again later.",
                code="idempotency_key_in_use",
            )
        if saved.endpoint != endpoint:
            raise StripeError(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used for the same endpoint they "
                f"were first used for ({saved.endpoint} vs {endpoint}). Try using a key "
                f"other than '{key}' if you meant to execute a different request.",
            )
        if saved.fingerprint != fingerprint(params):
            raise StripeError(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
            )
        return saved

    def save(self, scope: str, key: str, status: int, body: bytes) -> None:
        """Keep the response of a reserved key for replays."""
        saved = self._saved.get((scope, key))
        if saved is not None and saved.in_flight:
            saved.status, saved.body = status, body
            self.changed[(scope, key)] = None

    def saved(self, scope: str, key: str) -> Saved | None:
        return self._saved.get((scope, key))

    def completed(self) -> list[tuple[str, str, Saved]]:
        """The saved responses still valid: (scope, key, saved), oldest first."""
        now = self._clock.now()
        return [
            (scope, key, saved)
            for (scope, key), saved in self._saved.items()
            if not saved.in_flight and saved.created + TTL > now
        ]

    def restore(self, entries: list[tuple[str, str, Saved]]) -> None:
        self._saved = {(scope, key): saved for scope, key, saved in entries}
        self.changed.clear()

    def release(self, scope: str, key: str) -> None:
        """Free a reserved key whose request must not be saved: it may be retried."""
        saved = self._saved.get((scope, key))
        if saved is not None and saved.in_flight:
            del self._saved[(scope, key)]
