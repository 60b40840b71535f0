"""The deployment examples in deploy/ stay true: every setting they name exists, the compose
file's HAProxy configuration is the one bench.haproxy renders, and the systemd unit runs a
command line csms accepts."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import yaml

from bench.haproxy import Node, render
from csms.cli import _parser as csms_parser
from csms.config import Config

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def _settings() -> set[str]:
    names = set()
    for section in fields(Config):
        for setting in fields(section.default_factory):  # type: ignore[misc]
            names.add(f"CSMS_{section.name}_{setting.name}".upper())
    return names


def _named_in(text: str) -> set[str]:
    return set(re.findall(r"\bCSMS_[A-Z0-9_]+", text))


def test_every_setting_the_examples_name_exists() -> None:
    known = _settings()
    for name in ("compose.yaml", "csms.service"):
        named = _named_in((DEPLOY / name).read_text())
        assert named, name
        assert named <= known, (name, sorted(named - known))


def test_the_compose_file_runs_three_nodes_on_postgresql_behind_haproxy() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    nodes = sorted(name for name in services if name.startswith("csms"))
    assert nodes == ["csms1", "csms2", "csms3"]
    ids = {services[name]["environment"]["CSMS_CLUSTER_NODE_ID"] for name in nodes}
    assert ids == set(nodes)
    for name in nodes:
        assert services[name]["environment"]["CSMS_DATABASE_URL"].startswith("postgresql://")
    proxied = render([Node(name, name) for name in nodes], run_as=None)
    assert (DEPLOY / "haproxy-compose.cfg").read_text().strip() == proxied.strip()


def test_the_systemd_unit_runs_a_command_line_csms_accepts() -> None:
    unit = (DEPLOY / "csms.service").read_text()
    command = re.search(r"^ExecStart=\S+/csms (.*)$", unit, re.MULTILINE)
    assert command is not None
    parsed = csms_parser().parse_args(command[1].split())
    assert parsed.config == "/etc/csms/config.toml"
