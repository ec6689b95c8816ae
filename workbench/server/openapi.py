"""The API reference, generated from the route table (routes.Route, as the live application
serves them): an OpenAPI 3.1 document, and the same as a plain HTML page served by the
workbench itself (no CDN, no script: every text in it goes through one escape)."""

from __future__ import annotations

import html
from typing import Any

from .. import __version__
from .pages import PAGES
from .schemas import BINARY

_ROLE_TEXT = {"any": "any authenticated caller", "ingest": "ingest, operator or admin",
              "viewer": "viewer, operator or admin", "operator": "operator or admin",
              "admin": "admin"}


def document(routes: list[Any]) -> dict[str, Any]:
    """The OpenAPI document of ``routes``."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}

    def ref(model) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            schemas[name] = sub
        schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    for route in routes:
        op: dict[str, Any] = {
            "operationId": route.name, "summary": route.summary,
            "x-role": route.role, "x-audit": route.audit, "x-changes": route.changes,
            "description": f"Role: {_ROLE_TEXT[route.role]}. Audited: {route.audit}.",
            "parameters": [], "responses": _responses(route)}
        for name, choices in route.params():
            if choices and len(choices) == 1:
                continue  # (written into the path)
            schema: dict[str, Any] = {"type": "string"}
            if choices:
                schema["enum"] = choices
            op["parameters"].append({"name": name, "in": "path", "required": True,
                                     "schema": schema})
        if route.query is not None:
            for name, info in route.query.model_fields.items():
                field_schema = route.query.model_json_schema()["properties"][name]
                op["parameters"].append({
                    "name": name, "in": "query", "required": info.is_required(),
                    "schema": field_schema,
                    **({"description": info.description} if info.description else {})})
        if route.body is BINARY:
            op["requestBody"] = {"required": True, "content": {
                route.content: {"schema": {"type": "string", "format": "binary"}}}}
        elif route.body is not None:
            op["requestBody"] = {"content": {"application/json": {"schema": ref(route.body)}}}
        method = "get" if route.method == "WS" else route.method.lower()
        if route.method == "WS":
            op["description"] += " A websocket: upgrade with GET."
        paths.setdefault(_openapi_path(route), {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Happy Observatory API", "version": __version__,
                 "description": "Every route needs authentication whenever any is configured "
                 "(a bearer token from OBSERVATORY_TOKENS, or the dashboards' login cookie "
                 "with X-XSRF-Token on writes); with none configured, loopback clients are "
                 "admins. x-role is the least role a route needs."},
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }


def _openapi_path(route: Any) -> str:
    """The route's path as OpenAPI writes it: a parameter with one choice is that word."""
    out = route.template
    for name, choices in route.params():
        if choices:
            out = out.replace(f"{{{name}:{'|'.join(choices)}}}",
                              choices[0] if len(choices) == 1 else f"{{{name}}}")
    return out


def _responses(route: Any) -> dict[str, Any]:
    out = {"200": {"description": "done"},
           "401": {"description": "no or a wrong token (or login)"},
           "403": {"description": f"needs {_ROLE_TEXT[route.role]}; or a cross-site request"}}
    if route.body is not None or route.query is not None:
        out["400"] = {"description": "a bad body or query: the message names the field"}
    if route.changes:
        out["503"] = {"description": "the store cannot take writes now (the reason is given; "
                      "Retry-After)"}
    return out


def page(routes: list[Any]) -> str:
    """The reference of ``routes`` as one HTML page."""
    e = html.escape
    rows = []
    for route in routes:
        query = ", ".join(route.query.model_fields) if route.query else ""
        if route.body is BINARY:
            body = e(route.content)
        elif route.body is not None:
            body = e(", ".join(route.body.model_fields) or "(empty)")
        else:
            body = ""
        choices = "".join(f"<br><small>{e(name)}: {e(', '.join(c))}</small>"
                          for name, c in route.params() if c and len(c) > 1)
        rows.append(
            f"<tr><td class=m>{e(route.method)}</td><td><code>{e(_openapi_path(route))}"
            f"</code>{choices}</td><td>{e(route.role)}</td><td>{e(route.audit)}</td>"
            f"<td>{'yes' if route.changes else ''}</td><td>{e(route.summary)}</td>"
            f"<td>{e(query)}</td><td>{body}</td></tr>")
    pages = "".join(f"<tr><td><code>{e(p)}</code></td><td>{e(r)}</td><td>{e(w)}</td></tr>"
                    for p, (r, w) in PAGES.items())
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Happy Observatory · API reference</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #223; }}
table {{ border-collapse: collapse; font-size: 13px; width: 100%; }}
td, th {{ border-bottom: 1px solid #dde; padding: 5px 8px; text-align: left;
         vertical-align: top; }}
th {{ background: #f4f6fb; }} code {{ font-size: 12px; }} .m {{ font-weight: 600; }}
@media (prefers-color-scheme: dark) {{ body {{ background: #181b20; color: #dde; }}
  th {{ background: #23272e; }} td, th {{ border-color: #333; }} }}
</style></head><body>
<h1>Happy Observatory · API reference</h1>
<p>Generated from the route table (<code>workbench/server/routes.py</code>); the same as
<a href="openapi.json">openapi.json</a>. Every route needs authentication whenever any is
configured; <em>role</em> is the least role it needs (ingest: writes data only; viewer: reads
only; operator: also writes data and acts on agents; admin: everything). <em>audit</em>:
<code>route</code> — the route's outcome is in the audit log; <code>action</code> — the
action writes its own entry; refusals are always recorded.</p>
<table><tr><th>method</th><th>path</th><th>role</th><th>audit</th><th>changes</th>
<th>what</th><th>query</th><th>body</th></tr>{''.join(rows)}</table>
<h2>Pages and files</h2>
<table><tr><th>pattern</th><th>role</th><th>what</th></tr>{pages}</table>
</body></html>"""


def _kind(prop: dict[str, Any]) -> str:
    """A JSON schema's type as the reference writes it (choices spelled out)."""
    if "enum" in prop:
        return ", ".join(f"`{v}`" for v in prop["enum"])
    if prop.get("type") == "array" and "enum" in prop.get("items", {}):
        return "list of " + _kind(prop["items"])
    return prop.get("type") or prop.get("$ref", "").rsplit("/", 1)[-1] or "any"


def markdown(routes: list[Any]) -> str:
    """The reference of ``routes`` as Markdown (the documentation site's API page): one
    table of every route, then each JSON body's fields."""
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| method | path | role | audit | what | query |", "|---|---|---|---|---|---|"]
    bodies: dict[str, Any] = {}
    for route in routes:
        query = ", ".join(f"`{q}`" for q in route.query.model_fields) if route.query else ""
        path = _openapi_path(route)
        choices = "; ".join(f"{n}: {', '.join(c)}" for n, c in route.params()
                            if c and len(c) > 1)
        lines.append(f"| {route.method} | `{path}`{' (' + cell(choices) + ')' if choices else ''}"
                     f" | {route.role} | {route.audit} | {cell(route.summary)} | {query} |")
        if route.body is not None and route.body is not BINARY and route.body.model_fields:
            bodies.setdefault(route.body.__name__, (route.body, []))[1].append(
                f"{route.method} {path}")
    out = ["\n".join(lines)]
    for name, (model, used) in bodies.items():
        out.append(f"### {name}\n\nBody of {', '.join(f'`{u}`' for u in used)}."
                   + (f" {cell(model.__doc__.strip().splitlines()[0])}"
                      if model.__doc__ else ""))
        rows = ["| field | type | required | meaning |", "|---|---|---|---|"]
        schema = model.model_json_schema()
        for field, info in model.model_fields.items():
            prop = schema.get("properties", {}).get(field, {})
            kind = " or ".join(_kind(p) for p in prop.get("anyOf", [prop])
                               if p.get("type") != "null") or "any"
            rows.append(f"| `{field}` | {cell(kind)} | {'yes' if info.is_required() else ''}"
                        f" | {cell(info.description or '')} |")
        out.append("\n".join(rows))
    return "\n\n".join(out) + "\n"
