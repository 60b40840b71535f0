"""`/metrics` behind an API key (metrics.require_api_key) and on its own address
(metrics.listen), and the settings' checks."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from csms import startup
from csms.app import CentralSystem
from csms.config import ConfigError, load_config
from csms.startup import StartupError
from tests.conftest import API_HEADERS, API_KEY, MakeConfig


async def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers or {}) as response:
        return response.status, await response.text()


async def test_metrics_are_open_by_default(csms: CentralSystem) -> None:
    status, text = await _get(f"http://127.0.0.1:{csms.http.port}/metrics")
    assert status == 200 and "csms_" in text
    assert csms.metrics_http is None


async def test_metrics_can_require_an_api_key(make_config: MakeConfig) -> None:
    config = make_config(metrics={"require_api_key": True})
    async with CentralSystem(config) as system:
        url = f"http://127.0.0.1:{system.http.port}/metrics"
        for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
            status, text = await _get(url, headers)
            assert status == 401, (headers, text)
            assert '"field":"X-API-Key"' in text and "csms_" not in text
        for headers in (API_HEADERS, {"Authorization": f"Bearer {API_KEY}"}):
            status, text = await _get(url, headers)
            assert status == 200 and "csms_" in text, headers
        # /healthz stays open for load balancers.
        status, _ = await _get(f"http://127.0.0.1:{system.http.port}/healthz")
        assert status == 200


async def test_metrics_can_listen_on_their_own_address(make_config: MakeConfig) -> None:
    config = make_config(metrics={"listen": "127.0.0.1:0", "require_api_key": True})
    async with CentralSystem(config) as system:
        assert system.metrics_http is not None
        own = f"http://127.0.0.1:{system.metrics_http.port}"
        assert system.metrics_http.port not in (system.http.port, 0)
        status, _ = await _get(f"http://127.0.0.1:{system.http.port}/metrics", API_HEADERS)
        assert status == 404  # no longer on the HTTP endpoint
        assert (await _get(f"{own}/metrics"))[0] == 401
        status, text = await _get(f"{own}/metrics", API_HEADERS)
        assert status == 200 and "csms_" in text
        assert (await _get(f"{own}/healthz"))[0] == 404  # /metrics alone there
        assert (await _get(f"{own}/api/chargers", API_HEADERS))[0] == 404


def test_the_metrics_settings_are_checked() -> None:
    config = load_config(
        env={"CSMS_METRICS_LISTEN": "[::1]:9100", "CSMS_METRICS_REQUIRE_API_KEY": "true"}
    )
    assert config.metrics.address == ("::1", 9100)
    assert config.metrics.require_api_key is True
    assert load_config(env={"CSMS_METRICS_LISTEN": ":9100"}).metrics.address == ("", 9100)
    assert load_config(env={}).metrics.address is None
    for wrong in ("9100", "127.0.0.1", "host:port", "127.0.0.1:70000"):
        with pytest.raises(ConfigError, match=r"metrics\.listen"):
            load_config(env={"CSMS_METRICS_LISTEN": wrong})


async def test_a_taken_metrics_address_stops_start_up_naming_the_setting(
    make_config: MakeConfig,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = make_config(metrics={"listen": f"127.0.0.1:{port}"})
        with pytest.raises(StartupError, match=rf"^metrics\.listen: port {port} is already in use"):
            async with CentralSystem(config):
                pass
    shared = make_config(server={"http_port": port}, metrics={"listen": f"127.0.0.1:{port}"})
    with pytest.raises(StartupError, match=rf"^metrics\.listen: port {port} is server\.http_port"):
        startup.check_before_start(shared)
