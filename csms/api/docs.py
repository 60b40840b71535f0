"""`/api/openapi.json`, and at `/api/docs` a reference where each operation can be tried,
both from the same document.

The page is self-contained (no build step, no external asset, no third-party script): its
style and its own small script (static/docs.js, inlined) travel in it, as the page's
Content-Security-Policy allows. At the top the operator enters an API key, which the script
keeps in the tab's sessionStorage only and sends as `X-API-Key`; each operation has a
"Try it" form (docs_try.py) whose answer is shown with its status, headers and body. The
page needs no key itself: it holds no data, only the document.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from csms.api.docs_try import roles, try_form
from httpapi.routing import Api

_SCRIPT = (Path(__file__).parent / "static" / "docs.js").read_text(encoding="utf-8")

_STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:0 auto;padding:1rem;"
    "color:#1b1f24;background:#fff}"
    "code,pre,textarea{font:13px ui-monospace,monospace}pre{background:#f4f5f7;padding:.6rem;"
    "overflow:auto;max-height:30rem}.op{border:1px solid #8a93a0;border-radius:8px;"
    "padding:.6rem 1rem;margin:.8rem 0}.op h3{font-size:1rem;margin:.2rem 0}"
    "h3 code{overflow-wrap:anywhere}"
    ".m{font-weight:700;text-transform:uppercase;margin-right:.5rem}"
    ".role{display:inline-block;margin-left:.6rem;padding:0 .4rem;border-radius:4px;"
    "background:#fff3cd;color:#5a3d00;font-size:.85rem;font-weight:600}"
    ".key{background:#eef2f8;border:1px solid #8a93a0;"
    "border-radius:8px;padding:.6rem 1rem;margin:.8rem 0}.key p{margin:.3rem 0}"
    ".key input{width:min(28rem,100%)}"
    "label{font-weight:600;margin-right:.5rem}input,select,textarea{color:#1b1f24;"
    "background:#fff;border:1px solid #6b7480;border-radius:4px;padding:.25rem .4rem;"
    "max-width:100%;box-sizing:border-box}textarea{width:100%;display:block}"
    ".field{margin:.5rem 0}.hint{display:block;color:#4a525c;font-size:.85rem}"
    "button{font:inherit;padding:.3rem .9rem;border-radius:4px;border:1px solid #1f4fbf;"
    "background:#1f4fbf;color:#fff;cursor:pointer}button[type=button]{background:#fff;"
    "color:#1f4fbf}.confirm button.yes{background:#a4262c;border-color:#a4262c;color:#fff}"
    ".confirm{border-left:4px solid #a4262c;background:#fdf1f1;padding:.4rem .8rem}"
    ":focus-visible{outline:3px solid #b35c00;outline-offset:2px}"
    "summary{cursor:pointer;font-weight:600;color:#1f4fbf}.status{font-weight:600}"
    ".problem{color:#a4262c}.headers dt{font-weight:600;float:left;margin-right:.5rem}"
    ".headers dd{margin:0}a{color:#1f4fbf}"
    ".visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;"
    "clip:rect(0 0 0 0);white-space:nowrap}"
)


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
    """The document as one self-contained page: the key, then operations grouped by tag,
    each with its "Try it" form, then the schemas."""
    components = document.get("components", {}).get("schemas", {})
    by_tag: dict[str, list[str]] = {}
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            by_tag.setdefault(op["tags"][0], []).append(_operation(path, method, op, components))
    sections = "".join(
        f"<section><h2>{escape(tag)}</h2>{''.join(ops)}</section>" for tag, ops in by_tag.items()
    )
    schemas = "".join(
        f"<details id='schema-{escape(name)}'><summary><code>{escape(name)}</code></summary>"
        f"<pre>{escape(orjson.dumps(schema, option=orjson.OPT_INDENT_2).decode())}</pre></details>"
        for name, schema in components.items()
    )
    info = document["info"]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(info['title'])} API</title><style>{_STYLE}</style></head><body>"
        f"<main><h1>{escape(info['title'])} API {escape(info['version'])}</h1>"
        f"<p>{escape(info.get('description', ''))}</p>"
        "<p>Machine-readable: <a href='/api/openapi.json'>/api/openapi.json</a> (OpenAPI 3.1). "
        "Send the key in the <code>X-API-Key</code> header.</p>"
        f"{_key_bar()}{sections}<h2>Schemas</h2>{schemas}</main>"
        f"<script>{_SCRIPT}</script></body></html>"
    )


def _key_bar() -> str:
    return (
        "<div class='key' id='key-bar' role='region' aria-label='API key'>"
        "<p><label for='api-key'>API key</label>"
        "<input type='password' id='api-key' name='api-key' autocomplete='off' "
        "spellcheck='false' aria-describedby='api-key-note api-key-state'> "
        "<button type='button' id='forget-key'>Forget</button></p>"
        "<p class='hint' id='api-key-note'>Sent as <code>X-API-Key</code> with each request "
        "tried below; kept in this tab's session storage only, never in a cookie.</p>"
        "<p class='hint' id='api-key-state' aria-live='polite'></p></div>"
    )


def _operation(path: str, method: str, op: dict[str, Any], components: dict[str, Any]) -> str:
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
    needs = " or ".join(roles(op))
    role = f"<span class='role'>needs role {escape(needs)}</span>" if needs else ""
    return (
        f"<div class='op'><h3><span class='m'>{escape(method)}</span><code>{escape(path)}</code>"
        f"{role}</h3><p>{escape(op['summary'])}</p>"
        f"{f'<ul>{parameters}</ul>' if parameters else ''}{body}"
        f"<p class='responses'>Responses: {responses}</p>"
        f"{try_form(path, method, op, components)}</div>"
    )
