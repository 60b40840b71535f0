"""`csms serve` that cannot start: one line on stderr naming the setting, a non-zero exit,
and nothing created. Each case runs the real command in a subprocess."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from csms import startup
from csms.app import CentralSystem
from csms.startup import StartupError

ROOT = Path(__file__).resolve().parent.parent
CONFIG_ERROR, CANNOT_START = 2, 1


def serve(folder: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """`python -m csms [args] serve` in `folder` (no config.toml there), on loopback ephemeral
    ports and `folder`/csms.db unless `settings` (CSMS_ variables) say otherwise."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
    env |= {
        "PYTHONPATH": str(ROOT),
        "CSMS_DATABASE_PATH": str(folder / "csms.db"),
        "CSMS_SERVER_OCPP_HOST": "127.0.0.1",
        "CSMS_SERVER_OCPP_PORT": "0",
        "CSMS_SERVER_HTTP_HOST": "127.0.0.1",
        "CSMS_SERVER_HTTP_PORT": "0",
        "CSMS_STRIPE_SANDBOX_PORT": "0",
        **settings,
    }
    # A server that did start would run on: the timeout ends such a broken test.
    return subprocess.run(
        [sys.executable, "-m", "csms", *args, "serve"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], code: int, named: str) -> str:
    err = result.stderr
    assert result.returncode == code, err
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("csms: "), err
    assert named in err, err
    return err


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something else already listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def refusing() -> Iterator[int]:
    """A port held but not listened on: a connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.mark.parametrize("setting", ["ocpp_port", "http_port", "sandbox_port"])
def test_a_busy_port_is_named_before_anything_is_created(
    tmp_path: Path, listening: int, setting: str
) -> None:
    section = "stripe" if setting == "sandbox_port" else "server"
    result = serve(tmp_path, **{f"CSMS_{section}_{setting}".upper(): str(listening)})
    err = assert_one_line(result, CANNOT_START, f"{section}.{setting}: port {listening}")
    assert "already in use" in err
    assert list(tmp_path.iterdir()) == []  # no database, so no API key made and shown


def test_one_port_given_twice(tmp_path: Path, listening: int) -> None:
    port = str(listening)  # told before any port is tried, whether it is free or not
    result = serve(tmp_path, CSMS_SERVER_OCPP_PORT=port, CSMS_SERVER_HTTP_PORT=port)
    assert_one_line(result, CANNOT_START, "server.http_port: port")
    assert "server.ocpp_port too" in result.stderr


def test_a_port_out_of_range_is_a_config_error(tmp_path: Path) -> None:
    result = serve(tmp_path, CSMS_SERVER_HTTP_PORT="70000")
    err = assert_one_line(result, CONFIG_ERROR, "server.http_port: must be at most 65535")
    assert err.startswith("csms: config error: ")


def test_a_host_that_is_no_address_here(tmp_path: Path) -> None:
    result = serve(tmp_path, CSMS_SERVER_HTTP_HOST="192.0.2.1")  # TEST-NET-1, never local
    assert_one_line(result, CANNOT_START, "server.http_host: 192.0.2.1 is no address")
    assert list(tmp_path.iterdir()) == []


def test_the_database_folder_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "state"
    result = serve(tmp_path, CSMS_DATABASE_PATH=str(missing / "csms.db"))
    assert_one_line(result, CANNOT_START, f"database.path: the folder {missing} does not exist")
    assert not missing.exists()


def test_a_file_that_is_no_database(tmp_path: Path) -> None:
    (tmp_path / "csms.db").write_bytes(b"not a database, but long enough to be read" * 50)
    result = serve(tmp_path)
    assert_one_line(result, CANNOT_START, f"database.path: cannot open {tmp_path / 'csms.db'}")


def test_an_unreachable_postgresql_is_named_without_its_password(
    tmp_path: Path, refusing: int
) -> None:
    url = f"postgresql://csms:hunter2@127.0.0.1:{refusing}/csms"
    result = serve(tmp_path, CSMS_DATABASE_URL=url)
    err = assert_one_line(
        result, CANNOT_START, "database.url: cannot connect to postgresql://csms:***@127.0.0.1"
    )
    assert "hunter2" not in err


@pytest.mark.parametrize("content", [None, b"no certificate here\n"])
def test_a_tls_certificate_that_cannot_be_used(tmp_path: Path, content: bytes | None) -> None:
    cert = tmp_path / "cert.pem"
    if content is not None:
        cert.write_bytes(content)
    result = serve(tmp_path, CSMS_SERVER_TLS_CERT=str(cert), CSMS_SERVER_TLS_KEY=str(cert))
    assert_one_line(result, CONFIG_ERROR, f"server.tls_cert: {'' if content else 'cannot read '}")
    assert sorted(p.name for p in tmp_path.iterdir()) == (["cert.pem"] if content else [])


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[ocpp]\nheartbeat_interval = "often"\n', "ocpp.heartbeat_interval: expected int"),
        ("[server]\nhttp_prot = 8081\n", "server.http_prot; did you mean server.http_port?"),
        ("[ocpp\n", "is not valid TOML"),
    ],
)
def test_a_bad_config_file(tmp_path: Path, text: str, named: str) -> None:
    (tmp_path / "csms.toml").write_text(text)
    result = serve(tmp_path, "--config", "csms.toml")
    assert_one_line(result, CONFIG_ERROR, named)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["csms.toml"]


def test_an_unknown_variable_is_refused_with_the_closest_name(tmp_path: Path) -> None:
    result = serve(tmp_path, CSMS_SERVER_HTTP_PROT="8081")
    assert result.stderr == (
        "csms: config error: CSMS_SERVER_HTTP_PROT: unknown setting;"
        " did you mean CSMS_SERVER_HTTP_PORT?\n"
    )
    assert result.returncode == CONFIG_ERROR


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_a_port_taken_after_the_check_lets_go_of_what_had_opened(
    make_config, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    # Another process may take the port between the check and the listening: the start
    # fails the same way, and lets go of the database, the sandbox and the chargers' port.
    config = make_config(
        server={"ocpp_port": free_port(), "http_port": free_port()},
        stripe={"sandbox_port": free_port()},
    )
    with monkeypatch.context() as patched, socket.socket() as taken:
        patched.setattr(startup, "check_before_start", lambda config: None)
        taken.bind(("127.0.0.1", config.server.http_port))
        taken.listen()
        system = CentralSystem(config)
        with pytest.raises(StartupError, match=f"server.http_port: port {taken.getsockname()[1]}"):
            await system.start()
        with pytest.raises(RuntimeError, match="closed"):
            await system.db.fetchone("SELECT 1")
    async with CentralSystem(config) as again:  # the same ports, files and database
        assert again.http.port == config.server.http_port


def readme_examples() -> list[tuple[dict[str, str], str]]:
    """The README's `$ [VARIABLE=value ...] csms serve` examples under Configuration, each
    with the line it says csms answers."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    found = re.findall(r"^\$ ((?:CSMS_\w+=\S+ )*)csms serve\n(csms: .*)$", section, re.MULTILINE)
    return [(dict(v.split("=", 1) for v in env.split()), said) for env, said in found]


def test_the_readme_examples_are_what_csms_says(tmp_path: Path, listening: int) -> None:
    examples = readme_examples()
    assert len(examples) == 4
    for env, said in examples:
        # The busy port of its example is one taken here; the other ports are free ones.
        said = said.replace("8080", str(listening))
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        defaults = {"CSMS_SERVER_HTTP_HOST": "0.0.0.0", "CSMS_SERVER_HTTP_PORT": str(listening)}
        result = serve(folder, **defaults, **env)
        assert result.stderr == said + "\n"
        assert result.returncode == (CONFIG_ERROR if "config error" in said else CANNOT_START)
