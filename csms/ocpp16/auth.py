"""Charger authentication: OCPP 1.6 Security Whitepaper profiles 1, 2 and 3.

Profile 1 is HTTP Basic auth on the WebSocket upgrade: the username is the charge point
id, the password the charger's AuthorizationKey. Profile 2 is the same over TLS. Profile 3
is TLS with a client certificate from the operator CA whose CN is the charge point id.
Profile 0 is no authentication, for chargers registered without a password.

Passwords are kept only as scrypt hashes (`scrypt$n=..,r=..,p=..$salt$hash`, hex), and
compared in constant time. Failed attempts are counted per client address by
`FailureThrottle`, in the database shared by every node. The rest is pure except
`tls_context`, which reads the key files, and the CPU time of scrypt (about 50 ms: call
`hash_password` and `check_basic_auth` off the loop).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
import secrets
import ssl
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from csms.config import ConfigError, ServerSettings
from storage.clock import utc_now
from storage.db import Database
from storage.limits import WindowCounter

PROFILE_NONE = 0
PROFILE_BASIC = 1
PROFILE_TLS_BASIC = 2
PROFILE_TLS_CERTIFICATE = 3
SECURITY_PROFILES = (PROFILE_NONE, PROFILE_BASIC, PROFILE_TLS_BASIC, PROFILE_TLS_CERTIFICATE)

CHALLENGE = 'Basic realm="csms"'

# The whitepaper's AuthorizationKey: 16 to 40 characters; printable ASCII (space to tilde).
PASSWORD_PATTERN = r"^[\x20-\x7e]{16,40}$"
PASSWORD_RULE = "16 to 40 printable ASCII characters"
_PASSWORD = re.compile(PASSWORD_PATTERN)

# scrypt cost: 16 MiB of memory and about 50 ms per hash. Hashes keep their own parameters,
# so these can be raised later; verification accepts a bounded range of them.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_SALT_BYTES, _KEY_BYTES = 16, 32
_MAX_N, _MAX_R, _MAX_P = 2**17, 16, 4
_HASH = re.compile(r"scrypt\$n=(\d{1,7}),r=(\d{1,3}),p=(\d{1,3})\$([0-9a-f]{32})\$([0-9a-f]{64})")


def valid_password(password: str) -> bool:
    return _PASSWORD.fullmatch(password) is not None


def hash_password(password: str) -> str:
    """A salted scrypt hash of `password`; ValueError when it breaks the AuthorizationKey rule."""
    if not valid_password(password):
        raise ValueError(f"a charger password is {PASSWORD_RULE}")
    return scrypt_hash(password)


def scrypt_hash(password: str) -> str:
    """A salted scrypt hash of any `password`, checked by `verify_password`: for rules of
    their own (operator users' passwords), which check the password first."""
    salt = secrets.token_bytes(_SALT_BYTES)
    key = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _KEY_BYTES)
    return f"scrypt$n={_SCRYPT_N},r={_SCRYPT_R},p={_SCRYPT_P}${salt.hex()}${key.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` is the one `stored` was made from; False for a malformed hash."""
    match = _HASH.fullmatch(stored)
    if match is None:
        return False
    n, r, p = int(match[1]), int(match[2]), int(match[3])
    if not (1 < n <= _MAX_N and n & (n - 1) == 0 and 0 < r <= _MAX_R and 0 < p <= _MAX_P):
        return False
    expected = bytes.fromhex(match[5])
    key = _scrypt(password, bytes.fromhex(match[4]), n, r, p, _KEY_BYTES)
    return hmac.compare_digest(key, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    memory = 128 * r * (n + p + 2) + 1024 * 1024
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=memory)


def parse_basic_auth(values: Sequence[str]) -> tuple[str, str] | None:
    """(username, password) from the Authorization header's values; None unless one valid Basic."""
    if len(values) != 1:
        return None
    scheme, _, token = values[0].strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon else None


def check_basic_auth(
    values: Sequence[str], charge_point_id: str, password_hash: str | None
) -> str | None:
    """None when the Authorization header proves to be `charge_point_id`, else what is wrong.

    Slow (scrypt) when the username matches: run it in a thread.
    """
    credentials = parse_basic_auth(values)
    if credentials is None:
        return "malformed"
    username, password = credentials
    if username.lower() != charge_point_id.lower():  # ids are CiStrings: case does not count
        return "wrong_username"
    if password_hash is None or not verify_password(password, password_hash):
        return "wrong_password"
    return None


def transport_allowed(security_profile: int, *, over_tls: bool) -> bool:
    """Profile 2 needs TLS; the lower profiles are accepted over TLS too (it only adds to them)."""
    return over_tls or security_profile < PROFILE_TLS_BASIC


def security_profile(charger: Mapping[str, Any]) -> int:
    """A charger row's profile: 3 when it must show a client certificate, else its own."""
    if charger["certificate_required"]:
        return PROFILE_TLS_CERTIFICATE
    return int(charger["security_profile"])


def check_client_certificate(peer: dict[str, Any] | None, charge_point_id: str) -> str | None:
    """None when the verified client certificate (`SSLObject.getpeercert()`) names
    `charge_point_id` in its subject's CN, else what is wrong. TLS has already checked
    that the operator CA issued it and that it is within its validity."""
    if not peer:
        return "no_certificate"
    names = [value for rdn in peer.get("subject", ()) for key, value in rdn if key == "commonName"]
    if names != [charge_point_id]:
        return "cn_mismatch"
    return None


def throttle_key(address: str) -> str:
    """What failures are counted against: the IPv4 address, or the IPv6 /64 network.

    One IPv6 host usually has a whole /64 to pick addresses from.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class FailureThrottle:
    """After `allowed` failures within `window` seconds from one key, refuse it until that
    window ends: cluster-wide, the failures being counted in the database
    (`storage.limits`: fixed windows, each key its own, opened at its first failure).

    A guess is counted only once it has failed (`record_failure`: one write), so a charger
    that logs in costs one read (`retry_after`) and no write. While a guess is checked
    (`guessing`), it counts as a failure in this node's answers, so that guesses sent in
    parallel are limited too; on other nodes only once it has failed, some 50 ms later.
    Memory stays bounded: the guesses under way, and at most `capacity` keys known to be
    refused (the one remembered longest ago forgotten first; the database keeps them all).
    """

    SCOPE = "charger_auth"

    def __init__(
        self,
        db: Database,
        allowed: int,
        window: float,
        *,
        capacity: int = 10_000,
        clock: Callable[[], datetime] = utc_now,
        scope: str = SCOPE,
    ) -> None:
        self._counter = WindowCounter(
            db, scope, limit=allowed, window=window, clock=clock, capacity=capacity
        )
        self._clock = clock
        self._guessing: dict[str, int] = {}  # key -> guesses being checked on this node

    def __len__(self) -> int:
        """How many keys this node remembers as refused (at most `capacity`)."""
        return len(self._counter)

    async def retry_after(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when it may now. One read at most."""
        window = await self._counter.current(key)
        failures = (window.count if window else 0) + self._guessing.get(key, 0)
        if failures < self._counter.limit:
            return 0.0
        now = self._clock()
        ends = window.ends_at if window else now + self._counter.window
        return max((ends - now).total_seconds(), 0.0)

    @contextmanager
    def guessing(self, key: str) -> Iterator[None]:
        """Around the check of a guess from `key`: it counts as a failure meanwhile. A failed
        guess is recorded inside it, so that it counts without a gap."""
        self._guessing[key] = self._guessing.get(key, 0) + 1
        try:
            yield
        finally:
            left = self._guessing.pop(key) - 1
            if left:
                self._guessing[key] = left

    async def record_failure(self, key: str) -> None:
        """Count a failed guess from `key`, for every node."""
        await self._counter.hit(key)


def tls_context(settings: ServerSettings, client_ca: str = "") -> ssl.SSLContext | None:
    """The OCPP endpoint's TLS context from [server] tls_cert and tls_key; None without them.

    With `client_ca` (the operator CA's certificate, PEM), clients are asked for a
    certificate: one it did not issue fails the handshake, none at all is let through (the
    charger's profile decides). A file that cannot be read, or that is not a PEM
    certificate (chain) or key, is a ConfigError naming its key.
    """
    if not settings.tls_cert and not settings.tls_key:
        return None
    for key, path, marker, what in (
        ("tls_cert", settings.tls_cert, b"-----BEGIN CERTIFICATE-----", "certificate"),
        ("tls_key", settings.tls_key, b"PRIVATE KEY-----", "private key"),
    ):
        try:
            content = Path(path).read_bytes()
        except OSError as error:
            raise ConfigError(f"server.{key}: cannot read {path}: {error.strerror}") from None
        if marker not in content:
            raise ConfigError(f"server.{key}: {path} holds no PEM {what}")
        if key == "tls_key" and b"ENCRYPTED" in content:
            raise ConfigError(f"server.tls_key: {path} is encrypted; give an unencrypted key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        # The callback keeps OpenSSL from prompting on the terminal for a passphrase.
        context.load_cert_chain(settings.tls_cert, settings.tls_key, password=lambda: b"")
    except (ssl.SSLError, OSError) as error:
        raise ConfigError(
            f"server.tls_cert, server.tls_key: not a certificate and its private key"
            f" ({settings.tls_cert}, {settings.tls_key}): {error}"
        ) from None
    if client_ca:
        try:
            context.load_verify_locations(cafile=client_ca)
        except (ssl.SSLError, OSError) as error:
            raise ConfigError(f"certs.folder: cannot load the CA {client_ca}: {error}") from None
        context.verify_mode = ssl.CERT_OPTIONAL
    return context
