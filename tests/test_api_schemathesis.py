"""Schemathesis against the server's own OpenAPI document: generated requests, valid and
not, to every route; no server error and no answer outside the document."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import API_HEADERS, API_KEY


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("schemathesis")
    http_port = _free_port()
    env = {
        **os.environ,
        "CSMS_SERVER_HTTP_HOST": "127.0.0.1",
        "CSMS_SERVER_HTTP_PORT": str(http_port),
        "CSMS_SERVER_OCPP_HOST": "127.0.0.1",
        "CSMS_SERVER_OCPP_PORT": str(_free_port()),
        "CSMS_STRIPE_SANDBOX_PORT": "0",
        "CSMS_DATABASE_PATH": str(folder / "csms.db"),
        "CSMS_DATABASE_SYNCHRONOUS": "normal",
        "CSMS_API_KEYS": API_KEY,
        "CSMS_LOG_LEVEL": "warning",
    }
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "csms", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{http_port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(Path(folder / "server.log").read_text()) from None
            time.sleep(0.2)
    try:
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
        text = (folder / "server.log").read_text(errors="replace")
        # Shown when a test failed: a server error leaves its traceback here.
        print(text[-5000:])


CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
)


def test_api_keeps_to_its_document(server: str) -> None:
    schema = schemathesis.openapi.from_url(f"{server}/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=8,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def keeps_to_the_document(case: schemathesis.Case) -> None:
            response = case.call(headers=API_HEADERS, timeout=10)
            case.validate_response(response, checks=CHECKS)

        keeps_to_the_document()
