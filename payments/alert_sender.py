"""Signed outbound webhooks for operator alerts.

Each POST carries a JSON body and a signature header made the way Stripe signs its own
webhooks, so a receiver can check it the same way:

    Csms-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>

The receiver recomputes the HMAC over the timestamp, a dot and the raw body bytes with
the shared secret (`alerts.webhook_secret`), compares it in constant time, and refuses a
timestamp too far from its own clock (replays). Each attempt is signed afresh.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import aiohttp

SIGNATURE_HEADER = "Csms-Signature"
USER_AGENT = "csms-alerts/1"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `Csms-Signature` header's value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    header: str, body: bytes, secret: str, tolerance: float = 300, now: float | None = None
) -> bool:
    """Whether `header` signs `body` with `secret`, within `tolerance` seconds of `now`
    (for receivers, and the tests)."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        parts.setdefault(name, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).partition("v1=")[2]
    return any(hmac.compare_digest(expected, given) for given in parts.get("v1", []))


class DeliveryFailed(Exception):
    """The receiver could not be reached, or did not answer 2xx; the message says which."""


class WebhookSender:
    """POSTs signed JSON bodies to one URL; one connection pool, opened on first use."""

    def __init__(self, url: str, secret: str, timeout: float = 10.0) -> None:
        self.url = url
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, body: bytes, alert_id: str) -> None:
        """Deliver `body`; raises DeliveryFailed unless the receiver answers 2xx."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(self._secret, int(time.time()), body),
            "Csms-Alert-Id": alert_id,  # the same on every attempt: receivers drop repeats
        }
        try:
            async with self._session.post(self.url, data=body, headers=headers) as response:
                await response.read()
                if not 200 <= response.status < 300:
                    raise DeliveryFailed(f"HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError) as error:
            raise DeliveryFailed(f"{type(error).__name__}: {error}"[:300]) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
