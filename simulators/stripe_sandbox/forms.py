"""Decoding Stripe's form encoding: `metadata[k]=v`, `line_items[0][quantity]=1`, `expand[]=x`.

The SDK encodes nested dicts with brackets and lists with explicit indices (it writes
`expand[0]=...`); curl users often write `expand[]=...`. Both become nested dicts here
(`{"expand": {"0": "x"}}`), with every leaf left as the string that was sent: only
`params.py` knows whether a parameter is a list, an integer or a metadata hash whose
keys happen to be digits.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from .errors import invalid_request

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def decode(encoded: str) -> dict[str, Any]:
    """Form body or query string -> nested dicts and lists of strings."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(encoded, keep_blank_values=True):
        _insert(root, _split(key), value, key)
    return root


def _split(key: str) -> list[str]:
    match = _KEY.match(key)
    if match is None:
        raise invalid_request(f"Invalid parameter name: {key}", param=key)
    return [match.group(1), *_SEGMENT.findall(match.group(2))]


def _insert(root: dict[str, Any], parts: list[str], value: str, key: str) -> None:
    node = root
    for depth, part in enumerate(parts):
        if part == "":
            # `name[]` appends: the next free index of a dict that will become a list.
            part = str(len(node))
        if depth == len(parts) - 1:
            if isinstance(node.get(part), dict):
                raise invalid_request(f"Invalid hash: {key}", param=key)
            node[part] = value
            return
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            # `metadata=` (unset all) combined with `metadata[k]=v`: the later wins, as on Stripe.
            if child == "":
                child = node[part] = {}
            else:
                raise invalid_request(f"Invalid hash: {key}", param=key)
        node = child
