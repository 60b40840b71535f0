"""The client's address behind a reverse proxy (httpapi/forwarded.py, server.trusted_proxies):
the rule itself, the setting, and both endpoints that key a limit on it (the driver's
starts over HTTP, the chargers' failed logins on the WebSocket handshake)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from csms.app import CentralSystem
from csms.cli import main
from csms.config import ConfigError, load_config
from httpapi.forwarded import TrustedProxies, client_address
from tests.conftest import MakeConfig, ocpp_url
from tests.test_charger_security import OTHER, PASSWORD, basic, secure, upgrade
from tests.test_limits import start

PROXIES = TrustedProxies.parse("10.0.0.0/8, 2001:db8:ffff::/48, 192.0.2.9")


@pytest.mark.parametrize(
    ("peer", "header", "client"),
    [
        # Not a trusted proxy: its own address, whatever it says.
        ("198.51.100.7", ["203.0.113.1"], "198.51.100.7"),
        ("198.51.100.7", [], "198.51.100.7"),
        # A trusted proxy: the rightmost address that is not one of ours.
        ("10.0.0.2", ["203.0.113.1"], "203.0.113.1"),
        ("10.0.0.2", ["6.6.6.6, 203.0.113.1"], "203.0.113.1"),  # the client's own guess
        ("10.0.0.2", ["6.6.6.6, 203.0.113.1, 192.0.2.9"], "203.0.113.1"),  # two proxies
        ("10.0.0.2", ["6.6.6.6", "203.0.113.1"], "203.0.113.1"),  # two header lines
        ("10.0.0.2", [" 203.0.113.1:4711 "], "203.0.113.1"),
        ("10.0.0.2", ["[2001:db8::1]:4711"], "2001:db8::1"),
        ("::ffff:10.0.0.2", ["::ffff:203.0.113.1"], "203.0.113.1"),
        ("2001:db8:ffff:1::1", ["2001:db8:0:0::7"], "2001:db8::7"),
        # Nothing but proxies, or nothing at all: the farthest proxy.
        ("10.0.0.2", [], "10.0.0.2"),
        ("10.0.0.2", ["192.0.2.9, 10.0.0.3"], "192.0.2.9"),
        # Not an address: the proxy that passed it on.
        ("10.0.0.2", ["203.0.113.1, not-an-address"], "10.0.0.2"),
        ("10.0.0.2", ["unknown, 10.0.0.3"], "10.0.0.3"),
        ("10.0.0.2", [""], "10.0.0.2"),
        # A peer without an address.
        (None, ["203.0.113.1"], "unknown"),
    ],
)
def test_the_client_address(peer: str | None, header: list[str], client: str) -> None:
    assert client_address(peer, header, PROXIES) == client


def test_nobody_is_trusted_by_default() -> None:
    assert client_address("127.0.0.1", ["203.0.113.1"], TrustedProxies()) == "127.0.0.1"
    assert load_config(env={}).server.proxies == TrustedProxies()


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("haproxy.internal", "'haproxy.internal' is not an address or a CIDR network"),
        ("10.0.0.1/8", "'10.0.0.1/8' has host bits set: the network is 10.0.0.0/8"),
        ("10.0.0.0/33", "not an address or a CIDR network"),
    ],
)
def test_a_bad_entry_names_the_setting(entry: str, why: str) -> None:
    with pytest.raises(ConfigError, match="^server.trusted_proxies: .*" + why):
        load_config(env={"CSMS_SERVER_TRUSTED_PROXIES": f"10.0.0.0/8, {entry}"})


def test_a_bad_entry_stops_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CSMS_SERVER_TRUSTED_PROXIES", "127.0.0.1, proxy")
    assert main(["serve"]) == 2
    assert capsys.readouterr().err == (
        "csms: config error: server.trusted_proxies: 'proxy' is not an address or a CIDR network\n"
    )


# Both endpoints, behind a proxy on 127.0.0.1 (trusted or not)


@pytest.fixture(params=["trusted", "untrusted"])
async def system(
    request: pytest.FixtureRequest, make_config: MakeConfig
) -> AsyncIterator[CentralSystem]:
    proxies = "127.0.0.0/8, ::1" if request.param == "trusted" else ""
    config = make_config(
        server={"trusted_proxies": proxies},
        payments={"start_limit_count": 1},
        ocpp={"auth_failures_allowed": 1},
    )
    async with CentralSystem(config) as running:
        yield running


def trusted(system: CentralSystem) -> bool:
    return system.config.server.trusted_proxies != ""


async def start_via(system: CentralSystem, forwarded_for: str) -> int:
    async with aiohttp.ClientSession() as http:
        return await start(system, http, {"X-Forwarded-For": forwarded_for})


async def test_driver_starts_are_limited_per_client(system: CentralSystem) -> None:
    assert await start_via(system, "203.0.113.1") == 503
    assert await start_via(system, "203.0.113.1") == 429
    # Another client behind the trusted proxy has its own allowance; from an untrusted peer
    # the header is nobody's word, and the peer has had its one.
    assert await start_via(system, "203.0.113.2") == (503 if trusted(system) else 429)


async def test_charger_logins_are_limited_per_client(
    system: CentralSystem, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    await secure(system, "CP-1", 1)
    url = f"{ocpp_url(system)}/CP-1"

    def via(client: str, credentials: dict[str, str]) -> dict[str, str]:
        return {**credentials, "X-Forwarded-For": client}

    assert await upgrade(url, via("203.0.113.1", basic("CP-1", OTHER))) == 401
    assert await upgrade(url, via("203.0.113.1", basic("CP-1", PASSWORD))) == 429
    right = await upgrade(url, via("203.0.113.2", basic("CP-1", PASSWORD)))
    assert right == (101 if trusted(system) else 429)
    events = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
    [failed] = [e for e in events if e["event"] == "ocpp.auth_failed"]
    if trusted(system):
        assert failed["remote"] == "203.0.113.1"
    else:
        assert failed["remote"].startswith("127.0.0.1:")  # the peer, with its port
