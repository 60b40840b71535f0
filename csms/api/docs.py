"""`/api/openapi.json` and a readable reference at `/api/docs`, both from the same document."""

from __future__ import annotations

from html import escape
from typing import Any

import orjson
from aiohttp import web

from httpapi.routing import Api


def register_docs(app: web.Application, api: Api) -> None:
    document = api.openapi()
    spec = orjson.dumps(document)
    page = _reference_page(document)

    async def openapi_json(request: web.Request) -> web.Response:
        return web.Response(body=spec, content_type="application/json")

    async def reference(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app.router.add_get("/api/openapi.json", openapi_json)
    app.router.add_get("/api/docs", reference)


def _reference_page(document: dict[str, Any]) -> str:
    """The document as one self-contained page: operations grouped by tag, with schemas."""
    by_tag: dict[str, list[str]] = {}
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            by_tag.setdefault(op["tags"][0], []).append(_operation(path, method, op))
    sections = "".join(
        f"<section><h2>{escape(tag)}</h2>{''.join(ops)}</section>" for tag, ops in by_tag.items()
    )
    schemas = "".join(
        f"<details id='schema-{escape(name)}'><summary><code>{escape(name)}</code></summary>"
        f"<pre>{escape(orjson.dumps(schema, option=orjson.OPT_INDENT_2).decode())}</pre></details>"
        for name, schema in document["components"]["schemas"].items()
    )
    info = document["info"]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(info['title'])} API</title><style>"
        "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:0 auto;padding:1rem}"
        "code,pre{font:13px ui-monospace,monospace}pre{background:#f4f5f7;padding:.6rem;"
        "overflow:auto}.op{border:1px solid #d5d9e0;border-radius:8px;padding:.6rem 1rem;"
        "margin:.8rem 0}.m{font-weight:700;text-transform:uppercase;margin-right:.5rem}"
        "</style></head><body>"
        f"<h1>{escape(info['title'])} API {escape(info['version'])}</h1>"
        f"<p>{escape(info.get('description', ''))}</p>"
        "<p>Machine-readable: <a href='/api/openapi.json'>/api/openapi.json</a> (OpenAPI 3.1). "
        "Send the key in the <code>X-API-Key</code> header.</p>"
        f"{sections}<h2>Schemas</h2>{schemas}</body></html>"
    )


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    parameters = "".join(
        f"<li><code>{escape(p['name'])}</code> ({escape(p['in'])}"
        f"{', required' if p.get('required') else ''})</li>"
        for p in op.get("parameters", [])
    )
    body = ""
    if "requestBody" in op:
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            body = f"<p>Body: <a href='#schema-{escape(name)}'><code>{escape(name)}</code></a></p>"
        else:  # an inline schema (OCPP's own)
            shown = orjson.dumps(schema, option=orjson.OPT_INDENT_2).decode()
            body = f"<details><summary>Body</summary><pre>{escape(shown)}</pre></details>"
    responses = ", ".join(
        f"{escape(status)} {escape(r['description'])}" for status, r in op["responses"].items()
    )
    return (
        f"<div class='op'><p><span class='m'>{escape(method)}</span><code>{escape(path)}</code>"
        f"</p><p>{escape(op['summary'])}</p>"
        f"{f'<ul>{parameters}</ul>' if parameters else ''}{body}"
        f"<p class='responses'>Responses: {responses}</p></div>"
    )
