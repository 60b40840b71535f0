"""The operator CLI: API keys and payments on the database, commands and refunds through a
running server's API."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from csms.app import CentralSystem
from csms.cli import main
from csms.store.api_keys import ApiKeys
from storage.db import Database
from tests.payflow import charger, run_cli


def test_api_keys_are_shown_once_and_stored_as_digests(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database_url: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CSMS_DATABASE_PATH", str(tmp_path / "k.db"))
    monkeypatch.setenv("CSMS_DATABASE_URL", database_url)
    assert main(["apikeys", "create", "billing"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("csms_")

    async def check() -> tuple[bool, bool, list[str]]:
        db = await Database.open(database_url or str(tmp_path / "k.db"), [])
        try:
            keys = ApiKeys(db)
            rows = await db.fetchall("SELECT digest FROM api_keys")
            return await keys.verify(key), await keys.verify(key + "x"), [r[0] for r in rows]
        finally:
            await db.close()

    good, bad, digests = asyncio.run(check())
    assert good and not bad
    assert key not in digests[0]
    assert main(["payments", "list"]) == 0


async def test_commands_and_refunds_through_the_server(csms: CentralSystem) -> None:
    sim = charger(csms)
    await sim.start()
    try:
        code, out = await run_cli(
            csms, "command", "CP-1", "GetConfiguration", '{"key": ["HeartbeatInterval"]}'
        )
        assert code == 0, out
        assert json.loads(out)["configurationKey"][0]["key"] == "HeartbeatInterval"
    finally:
        await sim.stop()
    code, out = await run_cli(csms, "command", "CP-1", "ClearCache")
    assert code == 1 and json.loads(out)["error"]["code"] == "offline"
    code, out = await run_cli(csms, "refund", "res_nope", "--reason", "test")
    assert code == 1 and json.loads(out)["error"]["code"] == "not_found"
