"""The "Try it" form of one operation on `/api/docs`, rendered from the OpenAPI document.

Pure: HTML text from the document's own description of the operation, nothing else. A form
has an input per path and query parameter (its name, whether it is required, its type; an
enum or a boolean as a select), a JSON body prefilled with a minimal example of the body's
schema (its required fields only, each with a placeholder of the right type), and a Send
button. The page's script (static/docs.js) sends it with the key and shows the answer; a
request that is not a GET first shows the confirmation rendered here, since it changes
things and may move money. Nothing is validated here: the server checks what is sent, and
its 400 names the field, which is what the operator needs to see.
"""

from __future__ import annotations

import re
from contextlib import suppress
from html import escape
from typing import Any

import orjson

Refs = dict[str, dict[str, Any]]

_COMPONENTS = "#/components/schemas/"
_DEPTH = 8  # a self-referencing schema ends in an empty value rather than recursing forever
_MONEY_TAGS = frozenset({"payments", "owners"})
# Placeholders tried in turn against a string's pattern (an id, a currency, a country, a month).
_PATTERNED = ("string", "str", "st", "2026-01", "2026-01-31", "09:00", "1")
_STRING_FORMATS = {
    "date-time": "2026-01-31T09:00:00Z",
    "date": "2026-01-31",
    "time": "09:00:00",
    "email": "operator@example.com",
    "uri": "https://example.com/",
}


def references(components: dict[str, Any], root: dict[str, Any] | None = None) -> Refs:
    """What each `$ref` may name: the document's components, and the definitions an inline
    schema carries (OCPP's security extension has `#/definitions/...` of its own)."""
    refs = {_COMPONENTS + name: schema for name, schema in components.items()}
    for key in ("definitions", "$defs"):
        for name, schema in (root or {}).get(key, {}).items():
            refs[f"#/{key}/{name}"] = schema
    return refs


def resolve(schema: dict[str, Any], refs: Refs) -> dict[str, Any]:
    """`schema` itself, or what its `$ref` names."""
    for _ in range(_DEPTH):
        ref = schema.get("$ref")
        if not isinstance(ref, str):
            return schema
        schema = refs.get(ref, {})
    return schema


def unwrap(schema: dict[str, Any], refs: Refs) -> dict[str, Any]:
    """The schema of an optional value without its `null` alternative (pydantic's
    `anyOf: [X, {type: null}]`); the first alternative of any other anyOf or oneOf."""
    schema = resolve(schema, refs)
    for key in ("anyOf", "oneOf"):
        options = [o for o in schema.get(key, []) if o.get("type") != "null"]
        if options:
            return unwrap(options[0], refs)
    return schema


def _type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    return str(kind)


def example(schema: dict[str, Any], refs: Refs, depth: int = 0) -> Any:
    """A minimal value `schema` accepts as far as types go: an object's required fields only,
    an enum's first value, a string that fits its length and simple pattern, a number at its
    minimum."""
    schema = unwrap(schema, refs)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if schema.get("allOf"):
        return example(schema["allOf"][0], refs, depth)
    kind = _type(schema)
    if kind == "object":
        if depth >= _DEPTH:
            return {}
        properties = schema.get("properties", {})
        return {
            name: example(properties.get(name, {}), refs, depth + 1)
            for name in schema.get("required", [])
        }
    if kind == "array":
        count = int(schema.get("minItems", 0))
        if count == 0 or depth >= _DEPTH:
            return []
        return [example(schema.get("items", {}), refs, depth + 1)] * count
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = low + 1 if "exclusiveMinimum" in schema and "minimum" not in schema else low
        value = min(value, schema.get("maximum", value))
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return _string(schema)


def _string(schema: dict[str, Any]) -> str:
    text = _STRING_FORMATS.get(str(schema.get("format", "")), "string")
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        with suppress(re.error):  # a pattern Python does not read: the placeholder stays
            text = next((c for c in _PATTERNED if re.search(pattern, c)), text)
    text = text.ljust(int(schema.get("minLength", 0)), "x")
    return text[: int(schema["maxLength"])] if "maxLength" in schema else text


def roles(op: dict[str, Any]) -> list[str]:
    """The roles the document says an operation needs (`x-role`: a name or a list)."""
    role = op.get("x-role")
    if isinstance(role, str) and role:
        return [role]
    if isinstance(role, list):
        return [str(r) for r in role if r]
    return []


def try_form(path: str, method: str, op: dict[str, Any], components: dict[str, Any]) -> str:
    """The operation's <details> "Try it" section."""
    method = method.upper()
    name = str(op.get("operationId") or f"{method}{path}")
    ident = "try-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in name)
    refs = references(components)
    fields = "".join(_parameter(ident, p, refs) for p in op.get("parameters", []))
    body = _body(ident, op, components)
    needs = " or ".join(roles(op))
    confirm = "" if method == "GET" else _confirmation(ident, path, method, op)
    return (
        f"<details class='try'><summary>Try it<span class='visually-hidden'>: {escape(method)} "
        f"{escape(path)}</span></summary>"
        f"<form class='try' id='{ident}' data-method='{escape(method)}' "
        f"data-path='{escape(path)}' data-role='{escape(needs)}' novalidate>"
        f"{fields}{body}<p class='actions'><button type='submit' id='{ident}-send'>"
        f"Send {escape(method)}</button></p>{confirm}"
        f"<p class='status' id='{ident}-status' role='status' aria-live='polite'></p>"
        f"<div class='answer' id='{ident}-answer'></div></form></details>"
    )


def _parameter(ident: str, parameter: dict[str, Any], refs: Refs) -> str:
    name, where = str(parameter["name"]), str(parameter["in"])
    if where not in ("path", "query"):
        return ""  # headers and cookies: the key is the only one, entered at the top
    required = bool(parameter.get("required"))
    declared = parameter.get("schema", {})
    schema = unwrap(declared, refs)
    field = f"{ident}-{where}-{''.join(c if c.isalnum() else '-' for c in name)}"
    kind = _type(schema)
    described = [f"in the {where}", kind, "required" if required else "optional"]
    if schema.get("format"):
        described[1] = f"{kind} ({schema['format']})"
    note = str(
        parameter.get("description")
        or declared.get("description")
        or schema.get("description")
        or ""
    )
    hint = ", ".join(described) + (f": {note}" if note else "")
    attributes = (
        f"id='{field}' data-name='{escape(name)}' data-in='{where}' aria-describedby='{field}-hint'"
        + (" required aria-required='true'" if required else "")
    )
    choices = schema.get("enum") or ([True, False] if kind == "boolean" else None)
    if choices:
        options = "" if required else "<option value=''>(not sent)</option>"
        options += "".join(
            f"<option>{escape(_text(choice))}</option>" for choice in choices if choice is not None
        )
        control = f"<select {attributes}>{options}</select>"
    else:
        numeric = " inputmode='numeric'" if kind == "integer" else ""
        placeholder = _STRING_FORMATS.get(str(schema.get("format", "")), "")
        if "pattern" in schema and not placeholder:
            placeholder = _string(schema)  # e.g. a month as 2026-01
        shown = f" placeholder='{escape(placeholder)}'" if placeholder else ""
        control = f"<input type='text' {attributes}{numeric}{shown} autocomplete='off'>"
    return (
        f"<p class='field'><label for='{field}'><code>{escape(name)}</code></label>"
        f"{control}<span class='hint' id='{field}-hint'>{escape(hint)}</span></p>"
    )


def _body(ident: str, op: dict[str, Any], components: dict[str, Any]) -> str:
    request_body = op.get("requestBody")
    if not request_body:
        return ""
    schema = request_body.get("content", {}).get("application/json", {}).get("schema", {})
    value = example(schema, references(components, schema))
    shown = orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    rows = min(max(shown.count("\n") + 2, 3), 16)
    required = "required" if request_body.get("required") else "optional: leave empty to send none"
    return (
        f"<p class='field'><label for='{ident}-body'>JSON body</label>"
        f"<textarea id='{ident}-body' rows='{rows}' spellcheck='false' "
        f"aria-describedby='{ident}-body-hint'>{escape(shown)}</textarea>"
        f"<span class='hint' id='{ident}-body-hint'>{required}; prefilled with the required "
        "fields only, with placeholder values to replace</span></p>"
    )


def _confirmation(ident: str, path: str, method: str, op: dict[str, Any]) -> str:
    tag = (op.get("tags") or [""])[0]
    if tag in _MONEY_TAGS or "refund" in path:
        effect = "changes data and may move money"
    elif tag == "commands":
        effect = "sends a command to the charger, which may act on it"
    else:
        effect = "changes data"
    return (
        f"<div class='confirm' id='{ident}-confirm' role='group' hidden "
        f"aria-labelledby='{ident}-confirm-text'><p id='{ident}-confirm-text'>"
        f"<strong>{escape(method)} {escape(path)}</strong> {effect}. Send it?</p>"
        f"<button type='button' class='yes' id='{ident}-confirm-yes'>Yes, send</button> "
        f"<button type='button' id='{ident}-confirm-no'>Cancel</button></div>"
    )


def _text(value: Any) -> str:
    return orjson.dumps(value).decode() if isinstance(value, bool) else str(value)
