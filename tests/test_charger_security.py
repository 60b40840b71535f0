"""Charger authentication (OCPP 1.6 security profiles 0, 1, 2) over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import logging
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage, InvalidStatus

from csms.app import CentralSystem
from csms.cli import main
from csms.config import ConfigError, load_config
from csms.logs import configure_logging
from csms.ocpp16.auth import (
    CHALLENGE,
    FailureThrottle,
    check_basic_auth,
    hash_password,
    parse_basic_auth,
    throttle_key,
    tls_context,
    transport_allowed,
    valid_password,
    verify_password,
)
from csms.store.chargers import ChargerStore
from simulators.chargepoint import SimulatedCharger
from storage.db import Database
from tests.conftest import API_HEADERS, MakeConfig, ocpp_url

PASSWORD = "correct-horse-battery-42"
OTHER = "incorrect-horse-battery-42"
_HASH = hash_password(PASSWORD)  # once: about 50 ms each


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def upgrade(
    url: str, headers: dict[str, str] | None = None, tls: ssl.SSLContext | None = None
) -> int:
    """The HTTP status the upgrade is answered with (101 when the WebSocket opened)."""
    try:
        async with connect(
            url,
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            additional_headers=headers,
            ssl=tls,
            proxy=None,
            open_timeout=5,
        ) as ws:
            await ws.send('[2,"1","Heartbeat",{}]')
            assert '"currentTime"' in await ws.recv()
            return 101
    except InvalidStatus as refused:
        response = refused.response
        if response.status_code == 401:
            assert response.headers["WWW-Authenticate"] == CHALLENGE
        return response.status_code


async def secure(system: CentralSystem, charger_id: str, profile: int) -> None:
    assert await system.chargers.register_with_password(charger_id, profile, _HASH)


@pytest.fixture
async def csms(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    async with CentralSystem(make_config(ocpp={"unknown_chargers": "reject"})) as system:
        await secure(system, "CP-1", 1)
        await secure(system, "CP-2", 2)
        await system.chargers.register("CP-0")
        yield system


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made with the openssl tool."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _keys(value: Any) -> set[str]:
    """Every key in a JSON document, however deep."""
    if isinstance(value, dict):
        return set(value).union(*(_keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_keys(v) for v in value))
    return set()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """main() points logging at pytest's captured stderr, which closes after the test."""
    yield
    configure_logging("console", "warning")


def trusting(cert: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cert)
    return context


# Pure parts


def test_password_hash_is_salted_scrypt_and_verifies() -> None:
    assert PASSWORD not in _HASH and PASSWORD.encode().hex() not in _HASH
    assert _HASH.startswith("scrypt$n=16384,r=8,p=1$")
    assert verify_password(PASSWORD, _HASH)
    assert not verify_password(OTHER, _HASH)
    assert not verify_password(PASSWORD[:-1], _HASH)
    assert hash_password(PASSWORD) != _HASH  # a fresh salt each time
    for broken in ("", PASSWORD, _HASH[:-1], _HASH[:-2], _HASH.replace("n=16384", "n=1000")):
        assert not verify_password(PASSWORD, broken)


@pytest.mark.parametrize(
    ("password", "valid"),
    [("x" * 16, True), ("x" * 40, True), ("x" * 15, False), ("x" * 41, False),
     ("with space: ~!@#$%^&*()", True), ("é" * 16, False), ("tab\there-0123456", False)],
)  # fmt: skip
def test_password_rule(password: str, valid: bool) -> None:
    assert valid_password(password) is valid
    if not valid:
        with pytest.raises(ValueError, match="16 to 40"):
            hash_password(password)


def test_basic_auth_parsing() -> None:
    header = basic("CP-1", "pass:with:colons")["Authorization"]
    assert parse_basic_auth([header]) == ("CP-1", "pass:with:colons")
    assert parse_basic_auth([header.replace("Basic", "basic")]) == ("CP-1", "pass:with:colons")
    no_colon = base64.b64encode(b"CP-1").decode()
    for values in ([], [header, header], ["Bearer abc"], ["Basic %%%"], [f"Basic {no_colon}"]):
        assert parse_basic_auth(values) is None
    assert check_basic_auth([header], "CP-1", _HASH) == "wrong_password"
    assert check_basic_auth(["Basic ???"], "CP-1", _HASH) == "malformed"
    right = basic("CP-1", PASSWORD)["Authorization"]
    assert check_basic_auth([right], "CP-2", _HASH) == "wrong_username"
    assert check_basic_auth([right], "CP-1", None) == "wrong_password"
    assert check_basic_auth([right], "CP-1", _HASH) is None


def test_profile_2_needs_tls_and_the_others_may_use_it() -> None:
    assert [transport_allowed(p, over_tls=False) for p in (0, 1, 2)] == [True, True, False]
    assert [transport_allowed(p, over_tls=True) for p in (0, 1, 2)] == [True, True, True]


async def test_throttle_counts_per_key_within_the_window(csms: CentralSystem) -> None:
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    throttle = FailureThrottle(csms.db, 3, 60, clock=lambda: now[0])
    for _ in range(2):
        await throttle.record_failure("10.0.0.1")
    assert await throttle.retry_after("10.0.0.1") == 0
    await throttle.record_failure("10.0.0.1")
    now[0] += timedelta(seconds=10)
    assert await throttle.retry_after("10.0.0.1") == 50
    assert await throttle.retry_after("10.0.0.2") == 0  # another address may still try
    now[0] += timedelta(seconds=49)
    assert await throttle.retry_after("10.0.0.1") == 1
    now[0] += timedelta(seconds=1)
    assert await throttle.retry_after("10.0.0.1") == 0  # the window has passed
    assert len(throttle) == 0
    # A failure after the window opens a new one; a guess being checked counts meanwhile.
    await throttle.record_failure("10.0.0.1")
    await throttle.record_failure("10.0.0.1")
    with throttle.guessing("10.0.0.1"):
        assert await throttle.retry_after("10.0.0.1") > 0
    assert await throttle.retry_after("10.0.0.1") == 0  # that guess was right
    await throttle.record_failure("10.0.0.1")
    assert await throttle.retry_after("10.0.0.1") > 0


async def test_throttle_memory_is_bounded(csms: CentralSystem) -> None:
    throttle = FailureThrottle(csms.db, 1, 60, capacity=100)
    for n in range(1000):
        await throttle.record_failure(f"10.0.{n // 256}.{n % 256}")
    assert len(throttle) == 100
    # The oldest were forgotten here, not by the database; the newest are remembered.
    assert await throttle.retry_after("10.0.0.0") > 0
    assert await throttle.retry_after("10.0.3.231") > 0


def test_throttle_key() -> None:
    assert throttle_key("192.0.2.7") == "192.0.2.7"
    assert throttle_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert throttle_key("2001:db8:1:2:aaaa::1") == throttle_key("2001:db8:1:2:bbbb::2")
    assert throttle_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert throttle_key("2001:db8:1:3::1") != throttle_key("2001:db8:1:2::1")
    assert throttle_key("") == ""


# The endpoint, plain ws://


async def test_profile_1_with_the_right_password_connects(csms: CentralSystem) -> None:
    assert await upgrade(f"{ocpp_url(csms)}/CP-1", basic("CP-1", PASSWORD)) == 101
    sim = SimulatedCharger(ocpp_url(csms), "CP-1", password=PASSWORD, meter_interval=0)
    await sim.start()
    try:
        assert sim.booted and csms.sessions.get("CP-1") is not None
    finally:
        await sim.stop()


@pytest.mark.parametrize(
    "headers",
    [
        None,
        basic("CP-1", OTHER),
        basic("CP-2", PASSWORD),  # another charger's name with this one's password
        basic("CP-1", ""),
        {"Authorization": "Basic not-base64!"},
        {"Authorization": "Bearer " + PASSWORD},
    ],
    ids=["none", "wrong-password", "wrong-username", "empty", "malformed", "not-basic"],
)
async def test_profile_1_without_the_right_credentials_gets_401(
    csms: CentralSystem, headers: dict[str, str] | None
) -> None:
    assert await upgrade(f"{ocpp_url(csms)}/CP-1", headers) == 401
    assert csms.sessions.get("CP-1") is None
    row = await csms.chargers.get("CP-1")
    assert row is not None and row["online"] == 0 and row["connected_at"] is None


async def test_the_simulator_with_a_wrong_password_is_refused(csms: CentralSystem) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await SimulatedCharger(ocpp_url(csms), "CP-1", password=OTHER).start()
    assert refused.value.response.status_code == 401
    assert csms.sessions.get("CP-1") is None


async def test_profile_2_over_plain_ws_is_refused(csms: CentralSystem) -> None:
    assert await upgrade(f"{ocpp_url(csms)}/CP-2", basic("CP-2", PASSWORD)) == 403
    assert csms.sessions.get("CP-2") is None


async def test_profile_0_connects_with_or_without_credentials(csms: CentralSystem) -> None:
    assert await upgrade(f"{ocpp_url(csms)}/CP-0") == 101
    assert await upgrade(f"{ocpp_url(csms)}/CP-0", basic("CP-0", "anything at all")) == 101


async def test_accept_policy_registers_unknown_chargers_with_profile_0(
    make_config: MakeConfig,
) -> None:
    async with CentralSystem(make_config()) as system:
        assert await upgrade(f"{ocpp_url(system)}/CP-NEW", basic("CP-NEW", PASSWORD)) == 101
        row = await system.chargers.get("CP-NEW")
        assert row is not None
        assert (row["security_profile"], row["password_hash"]) == (0, None)


async def test_failures_are_logged_without_the_password(
    csms: CentralSystem, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    headers = basic("CP-1", OTHER)
    assert await upgrade(f"{ocpp_url(csms)}/CP-1", headers) == 401
    events = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
    failed = [e for e in events if e.get("event") == "ocpp.auth_failed"]
    assert len(failed) == 1
    assert failed[0]["charge_point_id"] == "CP-1"
    assert failed[0]["remote"].startswith("127.0.0.1:")
    assert failed[0]["reason"] == "wrong_password"
    text = caplog.text + repr(events)
    assert OTHER not in text and headers["Authorization"] not in text


async def test_repeated_failures_are_throttled(make_config: MakeConfig) -> None:
    config = make_config(ocpp={"auth_failures_allowed": 2, "auth_failure_window": 60})
    async with CentralSystem(config) as system:
        await secure(system, "CP-1", 1)
        url, right = f"{ocpp_url(system)}/CP-1", basic("CP-1", PASSWORD)
        # No credentials at all is not a guess: it does not count.
        for _ in range(3):
            assert await upgrade(url) == 401
        assert await upgrade(url, right) == 101
        assert await upgrade(url, basic("CP-1", OTHER)) == 401
        assert await upgrade(url, basic("CP-1", OTHER)) == 401
        with pytest.raises(InvalidStatus) as throttled:
            async with connect(url, subprotocols=["ocpp1.6"], additional_headers=right):  # type: ignore[list-item]
                pass
        assert throttled.value.response.status_code == 429
        assert 0 < int(throttled.value.response.headers["Retry-After"]) <= 60
        # Before any other check: even a bad path gets 429 now.
        assert await upgrade(f"{ocpp_url(system)}/bad%20id") == 429
        assert system.sessions.get("CP-1") is None


# The endpoint over TLS


async def test_tls_endpoint(make_config: MakeConfig, tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    config = make_config(server={"tls_cert": str(cert), "tls_key": str(key)})
    async with CentralSystem(config) as system:
        await secure(system, "CP-2", 2)
        await secure(system, "CP-1", 1)
        await system.chargers.register("CP-0")
        base, tls = f"wss://127.0.0.1:{system.ocpp.port}/ocpp", trusting(cert)
        assert await upgrade(f"{base}/CP-2", basic("CP-2", PASSWORD), tls) == 101
        assert await upgrade(f"{base}/CP-2", basic("CP-2", OTHER), tls) == 401
        assert await upgrade(f"{base}/CP-2", None, tls) == 401
        # Profile 1 over TLS is accepted: TLS only adds to it, and the port speaks only TLS.
        assert await upgrade(f"{base}/CP-1", basic("CP-1", PASSWORD), tls) == 101
        assert await upgrade(f"{base}/CP-0", None, tls) == 101
        # Plain ws:// to the TLS port does not get a WebSocket.
        with pytest.raises(InvalidMessage):
            await upgrade(f"ws://127.0.0.1:{system.ocpp.port}/ocpp/CP-0")
        # A client that does not trust the certificate does not get through either.
        with pytest.raises(ssl.SSLCertVerificationError):
            await upgrade(f"{base}/CP-0", None, ssl.create_default_context())


def test_tls_settings_are_checked(tmp_path: Path, tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    with pytest.raises(ConfigError, match=r"server\.tls_cert: cannot read .*nope\.pem"):
        load_config(env={"CSMS_SERVER_TLS_CERT": str(tmp_path / "nope.pem"),
                         "CSMS_SERVER_TLS_KEY": str(key)})  # fmt: skip
    with pytest.raises(ConfigError, match=r"server\.tls_key: must be set too"):
        load_config(env={"CSMS_SERVER_TLS_CERT": str(cert)})
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    for env, named in (
        ({"CSMS_SERVER_TLS_CERT": str(garbage), "CSMS_SERVER_TLS_KEY": str(key)}, "tls_cert"),
        ({"CSMS_SERVER_TLS_CERT": str(cert), "CSMS_SERVER_TLS_KEY": str(garbage)}, "tls_key"),
        ({"CSMS_SERVER_TLS_CERT": str(key), "CSMS_SERVER_TLS_KEY": str(cert)}, "tls_cert"),
    ):
        with pytest.raises(ConfigError, match=rf"server\.{named}"):
            tls_context(load_config(env=env).server)
    context = tls_context(load_config(env={"CSMS_SERVER_TLS_CERT": str(cert),
                                           "CSMS_SERVER_TLS_KEY": str(key)}).server)  # fmt: skip
    assert context is not None and context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_a_bad_tls_path_stops_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CSMS_SERVER_TLS_CERT", str(tmp_path / "missing-cert.pem"))
    monkeypatch.setenv("CSMS_SERVER_TLS_KEY", str(tmp_path / "missing-key.pem"))
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "server.tls_cert" in err and "missing-cert.pem" in err


# Setting passwords: the command line and the API


@pytest.mark.usefixtures("restore_logging")
def test_cli_sets_a_password(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database_url: str,
) -> None:
    database = tmp_path / "csms.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CSMS_DATABASE_PATH", str(database))
    monkeypatch.setenv("CSMS_DATABASE_URL", database_url)

    def run(*argv: str) -> tuple[int, str]:
        code = main(["chargers", "add", *argv])
        out, err = capsys.readouterr()
        assert PASSWORD not in out + err
        return code, out + err

    assert run("CP-1", "--password", PASSWORD) == (
        0,
        "CP-1: registered; password set, security profile 1\n",
    )
    code, out = run("CP-2", "--security-profile", "2")
    assert code == 2 and "--security-profile needs --password" in out
    code, out = run("CP-2", "--password", "short")
    assert code == 2 and "16 to 40" in out
    assert run("CP-0")[0] == 0
    assert run("CP-2", "--password", PASSWORD, "--security-profile", "2")[0] == 0
    # Again on a registered charger: the password and profile change.
    assert run("CP-1", "--password", OTHER, "--security-profile", "2") == (
        0,
        "CP-1: already registered; password set, security profile 2\n",
    )

    async def stored() -> dict[str, tuple[int, str | None]]:
        db = await Database.open(database_url or str(database), [])
        try:
            rows = await ChargerStore(db).list()
        finally:
            await db.close()
        return {row["id"]: (row["security_profile"], row["password_hash"]) for row in rows}

    rows = asyncio.run(stored())
    assert rows["CP-0"] == (0, None)
    assert rows["CP-2"][0] == 2 and verify_password(PASSWORD, rows["CP-2"][1] or "")
    assert rows["CP-1"][0] == 2 and verify_password(OTHER, rows["CP-1"][1] or "")
    assert not verify_password(PASSWORD, rows["CP-1"][1] or "")
    for file in tmp_path.glob("csms.db*"):
        assert PASSWORD.encode() not in file.read_bytes()


async def test_api_sets_a_password_and_never_returns_it(csms: CentralSystem) -> None:
    base = f"http://127.0.0.1:{csms.http.port}/api/chargers"
    async with aiohttp.ClientSession(headers=API_HEADERS) as http:

        async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
            async with http.request(method, base + path, json=body) as response:
                text = await response.text()
                assert PASSWORD not in text and OTHER not in text and "scrypt" not in text
                answer = await response.json()
                if response.status == 200:
                    assert not {"password", "passwordHash"} & _keys(answer)
                return response.status, answer

        status, answer = await call("PATCH", "/CP-0", {"password": PASSWORD, "name": "Bay 1"})
        assert status == 200 and (answer["name"], answer["securityProfile"]) == ("Bay 1", 1)
        row = await csms.chargers.get("CP-0")
        assert row is not None and row["security_profile"] == 1
        assert verify_password(PASSWORD, row["password_hash"])
        assert await upgrade(f"{ocpp_url(csms)}/CP-0") == 401
        assert await upgrade(f"{ocpp_url(csms)}/CP-0", basic("CP-0", PASSWORD)) == 101

        # Profile 2 keeps the password; a new password keeps profile 2.
        assert (await call("PATCH", "/CP-0", {"securityProfile": 2}))[0] == 200
        assert (await call("PATCH", "/CP-0", {"password": OTHER}))[0] == 200
        row = await csms.chargers.get("CP-0")
        assert row is not None and row["security_profile"] == 2
        assert verify_password(OTHER, row["password_hash"])

        for body, field in (
            ({"password": "too-short"}, "password"),
            ({"password": "é" * 20}, "password"),
            ({"password": None}, "password"),
            ({"password": PASSWORD, "securityProfile": 0}, "securityProfile"),
            ({"password": PASSWORD, "securityProfile": 3}, "password"),
            ({"securityProfile": 4}, "securityProfile"),
        ):
            status, answer = await call("PATCH", "/CP-0", {**body, "name": "not applied"})
            assert status == 400 and answer["error"]["field"] == field, (body, answer)
        row = await csms.chargers.get("CP-0")
        assert row is not None and row["name"] == "Bay 1" and row["security_profile"] == 2
        assert verify_password(OTHER, row["password_hash"])
        # Profiles 1 and 2 need a password, given now or before.
        await csms.chargers.register("CP-9")
        status, answer = await call("PATCH", "/CP-9", {"securityProfile": 1, "name": "x"})
        assert status == 400 and answer["error"]["field"] == "password"
        row = await csms.chargers.get("CP-9")
        assert row is not None and row["name"] is None and row["security_profile"] == 0

        # Profile 3 asks for a client certificate instead; another profile takes it off 3
        # again, with the password it kept.
        status, answer = await call("PATCH", "/CP-0", {"securityProfile": 3})
        assert status == 200 and answer["securityProfile"] == 3
        assert await upgrade(f"{ocpp_url(csms)}/CP-0", basic("CP-0", OTHER)) == 403  # ws://
        status, answer = await call("PATCH", "/CP-0", {"securityProfile": 1})
        assert status == 200 and answer["securityProfile"] == 1
        assert await upgrade(f"{ocpp_url(csms)}/CP-0", basic("CP-0", OTHER)) == 101

        # Profile 0 removes the password.
        status, answer = await call("PATCH", "/CP-0", {"securityProfile": 0})
        assert status == 200
        row = await csms.chargers.get("CP-0")
        assert row is not None and (row["security_profile"], row["password_hash"]) == (0, None)
        assert await upgrade(f"{ocpp_url(csms)}/CP-0") == 101
        assert (await call("GET", "/CP-0"))[0] == 200
        assert (await call("GET", ""))[0] == 200
