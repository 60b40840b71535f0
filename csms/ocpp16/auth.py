"""Charger authentication: OCPP 1.6 Security Whitepaper profiles 1 and 2.

Profile 1 is HTTP Basic auth on the WebSocket upgrade: the username is the charge point
id, the password the charger's AuthorizationKey. Profile 2 is the same over TLS. Profile 0
is no authentication, for chargers registered without a password.

Passwords are kept only as scrypt hashes (`scrypt$n=..,r=..,p=..$salt$hash`, hex), and
compared in constant time. Failed attempts are counted per client address by
`FailureThrottle`. All of it is pure except `tls_context`, which reads the key files, and the
CPU time of scrypt (about 50 ms: call `hash_password` and `check_basic_auth` off the loop).
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
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

from csms.config import ConfigError, ServerSettings

PROFILE_NONE = 0
PROFILE_BASIC = 1
PROFILE_TLS_BASIC = 2
SECURITY_PROFILES = (PROFILE_NONE, PROFILE_BASIC, PROFILE_TLS_BASIC)

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
    if username != charge_point_id:
        return "wrong_username"
    if password_hash is None or not verify_password(password, password_hash):
        return "wrong_password"
    return None


def transport_allowed(security_profile: int, *, over_tls: bool) -> bool:
    """Profile 2 needs TLS; the lower profiles are accepted over TLS too (it only adds to them)."""
    return over_tls or security_profile < PROFILE_TLS_BASIC


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
    """After `allowed` failures in `window` seconds from one key, refuse it until the window ends.

    A window opens at a key's first failure and lasts `window` seconds; the next failure
    after it opens a new one. At most `capacity` keys are remembered: beyond that the key
    that failed least recently is forgotten first, so memory stays bounded.
    """

    def __init__(
        self,
        allowed: int,
        window: float,
        *,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.allowed = allowed
        self.window = window
        self.capacity = capacity
        self._clock = clock
        # key -> [window start, failures in it]; least recently failing first.
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def retry_after(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        entry = self._failures.get(key)
        if entry is None:
            return 0.0
        left = entry[0] + self.window - self._clock()
        if left <= 0:
            del self._failures[key]
            return 0.0
        return left if entry[1] >= self.allowed else 0.0

    def record_failure(self, key: str) -> None:
        now = self._clock()
        entry = self._failures.get(key)
        if entry is None or now - entry[0] >= self.window:
            self._failures[key] = [now, 1]
        else:
            entry[1] += 1
        self._failures.move_to_end(key)
        while len(self._failures) > self.capacity:
            self._failures.popitem(last=False)

    def forgive(self, key: str) -> None:
        """Take back one failure: it was counted before the check, which then succeeded."""
        entry = self._failures.get(key)
        if entry is not None:
            entry[1] -= 1
            if entry[1] <= 0:
                del self._failures[key]


def tls_context(settings: ServerSettings) -> ssl.SSLContext | None:
    """The OCPP endpoint's TLS context from [server] tls_cert and tls_key; None without them.

    A file that cannot be read, or that is not a PEM certificate (chain) or key, is a
    ConfigError naming its key.
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
    return context
