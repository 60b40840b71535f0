"""Logging in to the console: the form, its token, wrong passwords counted and throttled,
the session cookie's flags, logout ending the login in the database, expiry, roles."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import aiohttp

from csms.app import CentralSystem
from simulators.chargepoint import SimulatedCharger
from storage.clock import utc_now
from tests.conftest import MakeConfig
from tests.console_fixtures import PASSWORD, ConsoleClient, base_url, console_client, ensure_user


async def test_the_root_leads_to_the_console_and_the_console_to_the_login(
    system: CentralSystem,
) -> None:
    async with aiohttp.ClientSession() as http:
        root = await http.get(base_url(system) + "/", allow_redirects=False)
        assert root.status == 302 and root.headers["Location"] == "/console"
        page = await http.get(base_url(system) + "/console/sessions?state=x", allow_redirects=False)
        assert page.status == 303
        location = urlsplit(page.headers["Location"])
        assert location.path == "/console/login"
        assert parse_qs(location.query)["next"] == ["/console/sessions?state=x"]
        login = await http.get(base_url(system) + "/console/login")
        text = await login.text()
        assert '<html lang="en">' in text and 'for="password"' in text


async def test_a_login_sets_a_strict_http_only_cookie_and_shows_the_user(
    system: CentralSystem,
) -> None:
    await ensure_user(system, "finance", "fiona")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        client = ConsoleClient(http, base_url(system))
        response = await client.login("fiona")
        assert response.status == 303
        (cookie,) = [c for c in response.headers.getall("Set-Cookie") if "csms_console=" in c]
        flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"httponly", "samesite", "path", "max-age"} <= flags
        assert "SameSite=Strict" in cookie and "Path=/console" in cookie
        assert "secure" not in flags  # plain http here; Secure behind an https base URL
        page = await client.text("/console")
        assert "fiona" in page and "(finance)" in page and "<h1>Overview</h1>" in page


async def test_a_wrong_password_or_a_missing_token_logs_nobody_in(system: CentralSystem) -> None:
    await ensure_user(system, "viewer", "vera")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        client = ConsoleClient(http, base_url(system))
        wrong = await client.login("vera", "not the password at all")
        assert wrong.status == 401 and "Wrong name or password" in await wrong.text()
        unknown = await client.login("nobody-here", PASSWORD)
        assert unknown.status == 401
        no_token = await http.post(
            base_url(system) + "/console/login",
            data={"name": "vera", "password": PASSWORD, "token": "forged"},
            allow_redirects=False,
        )
        assert no_token.status == 403
        assert (await client.get("/console")).status == 303  # still not logged in


async def test_failed_logins_are_throttled_even_with_the_right_password_then(
    make_config: MakeConfig,
) -> None:
    config = make_config(console={"login_attempts": 3, "login_window": 600})
    async with CentralSystem(config) as system:
        await ensure_user(system, "admin", "ada")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            client = ConsoleClient(http, base_url(system))
            for _ in range(3):
                assert (await client.login("ada", "wrong password, again")).status == 401
            refused = await client.login("ada", PASSWORD)
            assert refused.status == 429
            assert re.search(r"try again in \d+ minutes?", await refused.text())


async def test_logout_ends_the_login_even_for_a_copied_cookie(system: CentralSystem) -> None:
    async with console_client(system, "support") as client:
        token = client.http.cookie_jar.filter_cookies(client.base + "/console")["csms_console"]
        assert (await client.post("/console/logout")).status == 303
        async with aiohttp.ClientSession() as other:
            copied = await other.get(
                client.base + "/console",
                cookies={"csms_console": token.value},
                allow_redirects=False,
            )
            assert copied.status == 303  # to the login page: the login ended in the database


async def test_logout_needs_the_form_token(system: CentralSystem) -> None:
    async with console_client(system, "viewer") as client:
        forged = await client.post("/console/logout", {"csrf": "forged"})
        assert forged.status == 403
        assert (await client.get("/console")).status == 200


async def test_a_login_expires(make_config: MakeConfig) -> None:
    now = [utc_now()]
    config = make_config(console={"session_hours": 8})
    async with (
        CentralSystem(config, clock=lambda: now[0]) as system,
        console_client(system, "viewer") as client,
    ):
        now[0] += timedelta(hours=7, minutes=59)
        assert (await client.get("/console")).status == 200  # use does not extend it...
        now[0] += timedelta(minutes=2)
        assert (await client.get("/console")).status == 303  # ...and at 8 hours it ends


async def test_a_disabled_user_is_logged_out(system: CentralSystem) -> None:
    async with console_client(system, "support", name="sam") as client:
        await system.users.disable("sam")
        assert (await client.get("/console")).status == 303


async def test_the_next_page_after_login_stays_in_the_console(system: CentralSystem) -> None:
    await ensure_user(system, "viewer")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        page = await http.get(base_url(system) + "/console/login")
        token = re.search(r'name="token" value="([^"]+)"', await page.text())
        assert token
        for target, expected in (
            ("https://evil.example/console", "/console"),
            ("//evil.example/console", "/console"),
            ("/console/sessions", "/console/sessions"),
        ):
            # a new token per try: the form's cookie is replaced by each login page
            page = await http.get(base_url(system) + "/console/login")
            token = re.search(r'name="token" value="([^"]+)"', await page.text())
            assert token
            response = await http.post(
                base_url(system) + "/console/login",
                data={"name": "viewer", "password": PASSWORD, "token": token[1], "next": target},
                allow_redirects=False,
            )
            assert response.status == 303 and response.headers["Location"] == expected


async def test_the_overview_streams_live_values(
    system: CentralSystem, sim: SimulatedCharger
) -> None:
    async with console_client(system, "viewer") as client:
        response = await client.get("/console/events")
        assert response.status == 200
        line = await response.content.readline()
        assert line.startswith(b"data: ")
        values = __import__("orjson").loads(line[6:])
        assert (
            values["overview:online"] == "1"
            and values[f"charger:{sim.charge_point_id}:online"] == "online"
        )
        response.close()


async def test_a_new_password_ends_the_users_logins(system: CentralSystem) -> None:
    async with console_client(system, "finance", name="fred") as client:
        assert (await client.get("/console")).status == 200
        assert await system.users.set_password("fred", "a brand new passphrase")
        assert (await client.get("/console")).status == 303  # logged out everywhere


async def test_the_cookie_is_secure_when_a_trusted_proxy_says_https(
    make_config: MakeConfig,
) -> None:
    config = make_config(server={"trusted_proxies": "127.0.0.1"})
    async with CentralSystem(config) as system:
        await ensure_user(system, "viewer", "tess")
        async with aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"X-Forwarded-Proto": "https"}
        ) as http:
            page = await http.get(base_url(system) + "/console/login")
            (form_cookie,) = page.headers.getall("Set-Cookie")
            assert "Secure" in form_cookie.split("; ")
            token = re.search(r'name="token" value="([^"]+)"', await page.text())
            assert token
            response = await http.post(
                base_url(system) + "/console/login",
                data={"name": "tess", "password": PASSWORD, "token": token[1]},
                cookies={"csms_console_login": token[1]},  # sent by a browser over https
                allow_redirects=False,
            )
            assert response.status == 303
            (cookie,) = [c for c in response.headers.getall("Set-Cookie") if "csms_console=" in c]
            assert "Secure" in cookie.split("; ")


async def test_the_header_alone_from_an_untrusted_peer_changes_nothing(
    system: CentralSystem,
) -> None:
    async with aiohttp.ClientSession(headers={"X-Forwarded-Proto": "https"}) as http:
        page = await http.get(base_url(system) + "/console/login")
        assert "Secure" not in page.headers["Set-Cookie"].split("; ")
