"""The console's admin pages over HTTP: id tags, the audit log (filters, pages, CSV), QR
labels, sites and owners (with statements), users and their API keys; and who may do what."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import aiohttp

from csms.app import CentralSystem
from tests.conftest import API_HEADERS
from tests.console_fixtures import console_client

# The first start makes a user "admin" with a password of its own: log in as another admin.
ADMIN = "console-admin"


def as_admin(system: CentralSystem):  # type: ignore[no-untyped-def]
    return console_client(system, "admin", name=ADMIN)


PAGES = (
    "/console/id-tags",
    "/console/audit",
    "/console/qr",
    "/console/sites",
    "/console/owners/new",
)


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


async def test_each_page_renders(system: CentralSystem) -> None:
    await system.chargers.register("CP-1", name="Harbour car park")
    async with as_admin(system) as admin:
        for path in PAGES:
            page = await admin.text(path)
            assert page.count("<h1") == 1, path
            assert 'lang="en"' in page, path
        assert "Harbour car park" in await admin.text("/console/qr")


async def test_id_tag_add_search_block_change_delete(system: CentralSystem) -> None:
    async with console_client(system, role="support") as support:
        response = await support.post(
            "/console/id-tags",
            {"id_tag": "CARD-0001", "parent_id_tag": "FLEET-7", "expiry_date": "2030-01-31T12:00"},
        )
        assert response.status in (200, 303)
        tag = await system.id_tags.get("CARD-0001")
        assert tag is not None and not tag.blocked
        assert tag.parent_id_tag == "FLEET-7"
        assert tag.expiry_date == "2030-01-31T12:00:00.000Z"
        await system.id_tags.put("OTHER-9")

        found = await support.text("/console/id-tags?q=card")
        assert "CARD-0001" in found and "OTHER-9" not in found
        assert "2030-01-31 12:00" in found
        assert "CARD-0001" in await support.text("/console/id-tags?q=fleet")

        await support.post("/console/id-tags/block", {"id_tag": "CARD-0001"})
        tag = await system.id_tags.get("CARD-0001")
        assert tag is not None and tag.blocked and tag.parent_id_tag == "FLEET-7"
        assert re.search(r'data-state="Blocked">Blocked<', await support.text("/console/id-tags"))

        await support.post("/console/id-tags/unblock", {"id_tag": "CARD-0001"})
        tag = await system.id_tags.get("CARD-0001")
        assert tag is not None and not tag.blocked

        editing = await support.text("/console/id-tags?edit=CARD-0001")
        assert 'id="change-tag-form"' in editing and 'value="FLEET-7"' in editing
        await support.post(
            "/console/id-tags/change",
            {"id_tag": "CARD-0001", "parent_id_tag": "", "expiry_date": "2020-05-01T00:00"},
        )
        tag = await system.id_tags.get("CARD-0001")
        assert tag is not None and tag.parent_id_tag is None
        assert tag.expiry_date == "2020-05-01T00:00:00.000Z"
        assert 'data-state="Expired"' in await support.text("/console/id-tags?q=CARD")

        await support.post("/console/id-tags/delete", {"id_tag": "CARD-0001"})
        assert await system.id_tags.get("CARD-0001") is None


async def test_id_tag_refused_values_change_nothing(system: CentralSystem) -> None:
    async with console_client(system, role="support") as support:
        too_long = await support.post("/console/id-tags", {"id_tag": "X" * 21})
        assert too_long.status == 400
        page = await too_long.text()
        assert 'id="new-id-tag-error"' in page and "20 characters" in page
        assert await system.id_tags.list() == []

        bad_date = await support.post(
            "/console/id-tags", {"id_tag": "CARD-2", "expiry_date": "next tuesday"}
        )
        assert bad_date.status == 400
        assert 'id="new-expiry-error"' in await bad_date.text()
        assert await system.id_tags.get("CARD-2") is None

        await system.id_tags.put("CARD-3", parent_id_tag="P")
        again = await support.post("/console/id-tags", {"id_tag": "CARD-3"})
        assert again.status == 409
        tag = await system.id_tags.get("CARD-3")
        assert tag is not None and tag.parent_id_tag == "P"


async def test_a_viewer_may_not_add_an_id_tag(system: CentralSystem) -> None:
    async with console_client(system, role="viewer") as viewer:
        page = await viewer.text("/console/id-tags")
        assert "Add an id tag" not in page and "Block" not in page
        response = await viewer.post("/console/id-tags", {"id_tag": "CARD-9"})
        assert response.status == 403
    assert await system.id_tags.get("CARD-9") is None


async def _audit_lines(system: CentralSystem) -> None:
    at = [datetime(2026, 11, day, 8, 0, tzinfo=UTC) for day in (1, 2, 3)]

    def write(conn):  # type: ignore[no-untyped-def]
        audit = system.audit
        audit.write(conn, at[0], "system", "captured", "res_1", 1234, "eur", "pi_1", None)
        audit.write(conn, at[1], "user:alice", "refund requested", "res_1", -500, "eur")
        audit.write(conn, at[2], "=HYPERLINK(\"x\")", "captured", "res_2", 99, "eur", None,
                    "@SUM(A1:A9)")  # fmt: skip

    await system.db.write(write)


async def test_audit_filters_pages_and_csv(system: CentralSystem) -> None:
    await _audit_lines(system)
    async with console_client(system, role="viewer") as viewer:
        everything = await viewer.text("/console/audit")
        assert everything.index("res_2") < everything.index("res_1")  # newest first
        assert "12.34 EUR" in everything

        by_session = await viewer.text("/console/audit?reservationId=res_1")
        assert "res_2" not in by_session and by_session.count("<td>captured</td>") == 1
        by_actor = await viewer.text("/console/audit?actor=user%3Aalice")
        assert "refund requested" in by_actor and "<td>captured</td>" not in by_actor
        by_action = await viewer.text("/console/audit?action=captured")
        assert "refund requested" not in by_action and "res_2" in by_action
        window = await viewer.text("/console/audit?from=2026-11-02T00:00&to=2026-11-03T00:00")
        assert "refund requested" in window and "<td>captured</td>" not in window
        csv_link = "/console/audit.csv?from=2026-11-02T00%3A00&amp;to=2026-11-03T00%3A00"
        assert f'href="{csv_link}"' in window

        bad = await viewer.get("/console/audit?from=yesterday")
        assert bad.status == 400 and 'id="audit-from-error"' in await bad.text()

        export = await viewer.get("/console/audit.csv?action=captured")
        assert export.status == 200 and export.content_type == "text/csv"
        rows = _rows(await export.text())
        assert [row["reservationId"] for row in rows] == ["res_2", "res_1"]
        assert rows[0]["actor"] == '\'=HYPERLINK("x")'  # a formula, neutralised
        assert rows[0]["detail"] == "'@SUM(A1:A9)"
        assert rows[1]["amount"] == "1234"
        negative = _rows(await (await viewer.get("/console/audit.csv?actor=user:alice")).text())
        assert [row["amount"] for row in negative] == ["-500"]  # a number stays one
    # The API filters by actor too.
    async with aiohttp.ClientSession(headers=API_HEADERS) as http:
        url = f"http://127.0.0.1:{system.http.port}/api/audit?actor=user:alice"
        async with http.get(url) as response:
            assert response.status == 200
            items = (await response.json())["items"]
    assert [item["action"] for item in items] == ["refund requested"]


async def test_audit_pages_go_on_below_the_last_line(system: CentralSystem) -> None:
    def write(conn):  # type: ignore[no-untyped-def]
        for n in range(55):
            at = datetime(2026, 11, 1, 8, n, tzinfo=UTC)
            system.audit.write(conn, at, "system", "captured", f"res_{n:02d}", n, "eur")

    await system.db.write(write)
    async with as_admin(system) as admin:
        first = await admin.text("/console/audit?action=captured")
        assert "res_54" in first and "res_05" in first and "res_04" not in first
        older = re.search(r'<a rel="next" href="([^"]+)"', first)
        assert older is not None
        second = await admin.text(older.group(1).replace("&amp;", "&"))
        assert "res_04" in second and "res_00" in second and "res_05" not in second
        assert 'rel="next"' not in second


async def test_qr_sheet_for_two_chosen_chargers(system: CentralSystem) -> None:
    for charger in ("CP-1", "CP-2", "CP-3"):
        await system.chargers.register(charger, name=f"Bay {charger[-1]}")
    async with console_client(system, role="viewer") as viewer:
        chooser = await viewer.text("/console/qr?q=bay")
        assert chooser.count('name="charger"') == 3
        assert (await viewer.text("/console/qr?q=CP-2")).count('name="charger"') == 1
        sheet = await viewer.get("/console/qr/sheet?charger=CP-1&charger=CP-3")
        assert sheet.status == 200
        html = await sheet.text()
        assert html.count('class="label"') == 2
        base = system.executor.public_base_url
        assert f"{base}/c/CP-1/1" in html and f"{base}/c/CP-3/1" in html
        assert "/c/CP-2/" not in html
        assert "@media print" in html and html.count("<svg") == 2

        none = await viewer.get("/console/qr/sheet")
        assert none.status == 400
        unknown = await viewer.get("/console/qr/sheet?charger=CP-404")
        assert unknown.status == 404


async def test_qr_sheet_for_chosen_connectors(system: CentralSystem) -> None:
    await system.chargers.register("CP-1")
    await system.chargers.register("CP-2")
    for charger, connector in (("CP-1", 0), ("CP-1", 1), ("CP-1", 2), ("CP-2", 1), ("CP-2", 2)):
        status = {"connectorId": connector, "status": "Available", "errorCode": "NoError"}
        await system.chargers.record_status(charger, status)
    async with console_client(system, role="viewer") as viewer:
        chooser = await viewer.text("/console/qr")
        assert 'value="CP-1/2"' in chooser and 'value="CP-1/0"' not in chooser
        # CP-1 as a whole (both its connectors), and CP-2's second connector only.
        html = await viewer.text("/console/qr/sheet?charger=CP-1&connector=CP-2/2")
        base = system.executor.public_base_url
        urls = re.findall(r'<div class="url">([^<]+)</div>', html)
        assert urls == [f"{base}/c/CP-1/1", f"{base}/c/CP-1/2", f"{base}/c/CP-2/2"]


async def _site_form(**values: str) -> dict[str, str]:
    form = {
        "id": "harbour",
        "name": "Harbour car park",
        "time_zone": "Europe/Berlin",
        "address": "Kai 1\n20457 Hamburg",
        "owner_id": "",
        "split_commission_basis_points": "1500",
        "split_fixed_per_kwh": "",
        "split_operator_minimum": "",
        "support_email": "help@harbour.example",
        "support_phone": "",
        "support_url": "",
    }
    return {**form, **values}


async def test_site_with_a_bad_time_zone_is_refused_naming_the_field(
    system: CentralSystem,
) -> None:
    async with as_admin(system) as admin:
        response = await admin.post("/console/sites", await _site_form(time_zone="Mars/Olympus"))
        assert response.status == 400
        page = await response.text()
        assert 'id="new-site-time_zone-error"' in page and "IANA time zone" in page
        assert 'value="Mars/Olympus"' in page  # what was typed is kept
        assert await system.sites.find() == []

        split = await admin.post(
            "/console/sites", await _site_form(split_commission_basis_points="20000")
        )
        assert split.status == 400
        assert 'id="new-site-split_commission_basis_points-error"' in await split.text()
        unknown_owner = await admin.post("/console/sites", await _site_form(owner_id="nobody"))
        assert unknown_owner.status == 400
        assert 'id="new-site-owner_id-error"' in await unknown_owner.text()
        assert await system.sites.find() == []


async def test_site_create_change_and_remove(system: CentralSystem) -> None:
    async with as_admin(system) as admin:
        await admin.post("/console/sites", await _site_form())
        site = await system.sites.get("harbour")
        assert site is not None and site.time_zone == "Europe/Berlin"
        assert site.address_lines == ["Kai 1", "20457 Hamburg"]
        assert site.split == {
            "commission_basis_points": 1500,
            "fixed_per_kwh": 0,
            "operator_minimum": 0,
        }
        assert "Harbour car park" in await admin.text("/console/sites")

        form = await _site_form(name="Harbour", time_zone="Europe/Lisbon", support_email="")
        del form["id"]
        form["split_commission_basis_points"] = ""
        await admin.post("/console/sites/harbour", form)
        site = await system.sites.get("harbour")
        assert site is not None and (site.name, site.time_zone) == ("Harbour", "Europe/Lisbon")
        assert site.split is None and site.support_email is None

        refused = await admin.post("/console/sites/harbour", {**form, "time_zone": "Nowhere"})
        assert refused.status == 400 and 'id="site-time_zone-error"' in await refused.text()
        site = await system.sites.get("harbour")
        assert site is not None and site.time_zone == "Europe/Lisbon"

        await system.chargers.register("CP-1")
        await system.chargers.set_site("CP-1", "harbour")
        kept = await admin.post("/console/sites/harbour/delete", {})
        assert kept.status == 409 and "CP-1" in await kept.text()
        await system.chargers.set_site("CP-1", None)
        await admin.post("/console/sites/harbour/delete", {})
        assert await system.sites.get("harbour") is None


async def test_owner_added_with_its_onboarding_link_and_statement(system: CentralSystem) -> None:
    async with as_admin(system) as admin:
        refused = await admin.post(
            "/console/owners", {"id": "hotel", "name": "Hotel", "email": "x", "country": "DE"}
        )
        assert refused.status == 400 and 'id="new-owner-email-error"' in await refused.text()
        assert await system.owners.get("hotel") is None

        added = await admin.post(
            "/console/owners",
            {"id": "hotel", "name": "Hotel Kai", "email": "owner@hotel.example", "country": "DE"},
        )
        assert added.status == 200 and added.headers["Cache-Control"] == "no-store"
        page = await added.text()
        link = re.search(r'id="link-url" type="text" readonly value="([^"]+)"', page)
        assert link is not None and link.group(1).startswith("http")
        owner = await system.owners.get("hotel")
        assert owner is not None and owner.stripe_account_id is not None
        lines = await system.audit.lines()
        assert any(line["action"] == "owner added" and line["actor"].startswith("user:")
                   for line in lines)  # fmt: skip

        listing = await admin.text("/console/sites")
        assert "Hotel Kai" in listing and "Not ready" in listing
        assert (await admin.post("/console/owners/hotel/refresh", {})).status in (200, 303)

        statement = await admin.get("/console/owners/hotel/statements/2026-11.csv")
        assert statement.status == 200 and statement.content_type == "text/csv"
        printable = await admin.text("/console/owners/hotel/statements/2026-11.html")
        assert "Hotel Kai" in printable
        assert (await admin.get("/console/owners/hotel/statements/2026-13.html")).status == 400
        chosen = await admin.get("/console/owners/statement?owner=hotel&month=2026-10&format=csv")
        assert chosen.status == 303
        assert chosen.headers["Location"] == "/console/owners/hotel/statements/2026-10.csv"
        assert (await admin.get("/console/owners/nobody/statements/2026-11.csv")).status == 404


async def test_statements_are_for_finance(system: CentralSystem) -> None:
    async with console_client(system, role="support") as support:
        response = await support.get("/console/owners/hotel/statements/2026-11.csv")
        assert response.status == 403
    async with console_client(system, role="viewer") as viewer:
        page = await viewer.text("/console/sites")
        assert 'id="new-site"' not in page and "/console/owners/new" not in page
        assert (await viewer.post("/console/sites", await _site_form())).status == 403
        assert await system.sites.find() == []


async def test_user_added_and_a_key_shown_once(system: CentralSystem) -> None:
    async with as_admin(system) as admin:
        short = await admin.post(
            "/console/users", {"name": "alice", "role": "support", "password": "short"}
        )
        assert short.status == 400 and 'id="new-user-password-error"' in await short.text()
        assert await system.users.get("alice") is None

        await admin.post(
            "/console/users",
            {"name": "alice", "role": "support", "password": "a long passphrase 1"},
        )
        alice = await system.users.get("alice")
        assert alice is not None and alice.role == "support"
        assert await system.users.authenticate("alice", "a long passphrase 1") is not None
        again = await admin.post(
            "/console/users", {"name": "alice", "role": "viewer", "password": "x" * 12}
        )
        assert again.status == 409

        made = await admin.post("/console/users/alice/keys", {"key_name": "alice-laptop"})
        assert made.status == 200 and made.headers["Cache-Control"] == "no-store"
        shown = re.search(r'id="key-value" type="text" readonly value="([^"]+)"', await made.text())
        assert shown is not None
        key = shown.group(1)
        principal = await system.api_keys.verify(key)
        assert principal is not None and principal.role == "support"
        listing = await admin.text("/console/users")
        assert "alice-laptop" in listing and key not in listing  # shown once only
        taken = await admin.post("/console/users/alice/keys", {"key_name": "alice-laptop"})
        assert taken.status == 409

        await admin.post("/console/users/alice/role", {"role": "finance"})
        principal = await system.api_keys.verify(key)
        assert principal is not None and principal.role == "finance"
        await admin.post("/console/users/alice/password", {"password": "another passphrase"})
        assert await system.users.authenticate("alice", "another passphrase") is not None
        # A key of the same name of another user's (the CLI does not insist on unique names)
        # keeps the console from revoking by that name.
        await system.users.add("bob", "viewer", "bob's long passphrase")
        bobs = await system.api_keys.create("alice-laptop", "bob")
        shared = await admin.post("/console/users/alice/keys/revoke", {"key_name": "alice-laptop"})
        assert shared.status == 409 and await system.api_keys.verify(key) is not None
        await system.api_keys.revoke("alice-laptop")
        assert await system.api_keys.verify(bobs) is None
        assert await system.api_keys.verify(key) is None

        third = await admin.post("/console/users/alice/keys", {"key_name": "alice-3"})
        found = re.search(r'readonly value="([^"]+)"', await third.text())
        assert found is not None
        await admin.post("/console/users/alice/keys/revoke", {"key_name": "alice-3"})
        assert await system.api_keys.verify(found.group(1)) is None

        second = await admin.post("/console/users/alice/keys", {"key_name": "alice-2"})
        found = re.search(r'readonly value="([^"]+)"', await second.text())
        assert found is not None and await system.api_keys.verify(found.group(1)) is not None
        await admin.post("/console/users/alice/disable", {})
        alice = await system.users.get("alice")
        assert alice is not None and alice.disabled
        assert await system.api_keys.verify(found.group(1)) is None  # its keys went with it
        await admin.post("/console/users/alice/enable", {})
        alice = await system.users.get("alice")
        assert alice is not None and not alice.disabled
    # Each change is an audit line naming the console's user, never a password or a key.
    lines = [line for line in await system.audit.lines() if line["actor"] == f"user:{ADMIN}"]
    assert [line["action"] for line in lines] == [
        "user added",
        "api key created",
        "user role changed",
        "user password set",
        "api key created",
        "api key revoked",
        "api key created",
        "user disabled",
        "user enabled",
    ]
    assert lines[2]["detail"] == "alice: support to finance"
    assert not any("passphrase" in (line["detail"] or "") for line in lines)


async def test_an_admin_does_not_demote_or_disable_themselves(system: CentralSystem) -> None:
    async with as_admin(system) as admin:
        demoted = await admin.post(f"/console/users/{ADMIN}/role", {"role": "viewer"})
        assert demoted.status == 409 and "yourself" in await demoted.text()
        disabled = await admin.post(f"/console/users/{ADMIN}/disable", {})
        assert disabled.status == 409
        me = await system.users.get(ADMIN)
        assert me is not None and me.role == "admin" and not me.disabled
        # Another admin may be given another role.
        assert (await admin.post("/console/users/admin/role", {"role": "viewer"})).status == 303
        first = await system.users.get("admin")
        assert first is not None and first.role == "viewer"


async def test_users_are_for_admins_only(system: CentralSystem) -> None:
    async with console_client(system, role="support") as support:
        assert (await support.get("/console/users")).status == 403
        added = await support.post(
            "/console/users", {"name": "mallory", "role": "admin", "password": "x" * 16}
        )
        assert added.status == 403
    assert await system.users.get("mallory") is None
