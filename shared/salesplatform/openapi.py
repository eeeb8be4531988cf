"""The OpenAPI document of a service's HTTP API, complete enough for a client generator and a
fuzzer, and the Swagger UI page that shows it with its own files.

FastAPI describes the routes; this adds what it leaves out: the command bodies' definitions
(each command's model is written into the document, its nested models under
`components/schemas`), every error status with the one error body, bearer authentication,
and the CSV form of the reports.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "description": "The body of every 4xx and 5xx answer.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Why, for programs: a stable snake_case reason such as "
                    "`validation_failed`, `unauthenticated`, `not_found` or a rule's own code "
                    "(each service's README lists its rules' codes).",
                },
                "message": {"type": "string", "description": "Why, for people."},
                "field": {"type": "string", "description": "The field at fault, where there is one."},
                "details": {
                    "type": "array",
                    "description": "Each problem of input that does not have the right shape (422).",
                    "items": {
                        "type": "object",
                        "properties": {
                            "field": {"type": ["string", "null"]},
                            "code": {"type": ["string", "null"]},
                            "message": {"type": ["string", "null"]},
                        },
                    },
                },
            },
        }
    },
}

_STATUS_TEXT = {
    "400": "The request cannot be served as sent.",
    "401": "No valid bearer token.",
    "403": "The token's actor may not do this.",
    "404": "No such thing (or no such path).",
    "409": "A business rule refused it, or another writer got there first; nothing changed.",
    "413": "The body is too large.",
    "415": "The body is not of a type the operation takes.",
    "422": "The input does not have the right shape; `details` names each field.",
    "500": "A fault of the service.",
    "503": "A dependency (database, NATS, the key set) is unavailable: try again later.",
}
# Routes anyone may call: a probe, a scraper, a reader of the published contract.
PUBLIC_TAGS = frozenset({"health", "contract"})
_SECURED_STATUSES = ("400", "401", "403", "404", "409", "422", "500", "503")
_PUBLIC_STATUSES = ("422", "500", "503")
DOCS_ASSETS = "/docs/assets"
# Swagger UI's own files, as the fastapi-offline package ships them.
_SWAGGER_UI_FILES = Path(fastapi_offline.__file__).parent / "static"


Item = TypeVar("Item", bound=BaseModel)


class Page(BaseModel, Generic[Item]):
    """One page of a list: its rows, how many the whole list has, and where the page lies."""

    items: list[Item]
    total: int = Field(description="rows of the whole list, past this page")
    limit: int
    offset: int


def answers(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """A route's documented 200 answer, as `responses=`: the document describes the body while
    the route's own JSON goes out unchanged (a `response_model` would filter and re-encode it)."""
    return {200: {"model": model}}


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The app's document, made once."""
    if app.openapi_schema is None:
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        app.openapi_schema = complete(doc)
    return app.openapi_schema


def complete(doc: dict[str, Any]) -> dict[str, Any]:
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    components["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A token naming the actor (`python -m salesplatform.auth mint`).",
        }
    }
    doc["security"] = [{"bearer": []}]
    schemas["Error"] = ERROR_SCHEMA
    # FastAPI's own 422 body is not what the services answer.
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    for path, method, op in operations(doc):
        for name, schema in op.pop("x-defs", {}).items():
            schemas.setdefault(name, schema)
        public = bool(PUBLIC_TAGS & set(op.get("tags", ())))
        if public:
            op["security"] = []
        responses = op.setdefault("responses", {})
        statuses = _PUBLIC_STATUSES if public else _SECURED_STATUSES
        media = set(op.get("requestBody", {}).get("content", {}))
        if method == "post" and path.startswith("/commands/"):
            statuses = (*statuses, "413")
        elif media - {"application/json"}:
            statuses = (*statuses, "413", "415")  # an upload: too large, or not of its type
        for status in statuses:
            responses[status] = {
                "description": _STATUS_TEXT[status],
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        if _offers_csv(op) and "200" in responses:
            content = responses["200"].setdefault("content", {})
            content["text/csv"] = {"schema": {"type": "string", "description": "the same rows, one per line"}}
    return doc


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if method in ("get", "put", "post", "delete", "patch", "head", "options"):
                yield path, method, op


def _offers_csv(op: dict[str, Any]) -> bool:
    for param in op.get("parameters", ()):
        if param.get("name") == "format" and "csv" in _enum(param.get("schema", {})):
            return True
    return False


def _enum(schema: dict[str, Any]) -> list[Any]:
    found = list(schema.get("enum", ()))
    for option in schema.get("anyOf", ()):
        found += _enum(option)
    return found


def dangling_refs(doc: dict[str, Any]) -> list[str]:
    """Every `$ref` of the document that names nothing in it."""

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    missing = []
    for ref in refs(doc):
        target: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        if target is None:
            missing.append(ref)
    return sorted(set(missing))


def serve_docs(app: FastAPI) -> None:
    """`/docs`: Swagger UI from the files the `fastapi-offline` package ships, so the page
    works on a machine without internet; "Authorize" takes a bearer token."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=_SWAGGER_UI_FILES), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )


__all__ = [
    "ERROR_SCHEMA",
    "Page",
    "answers",
    "complete",
    "dangling_refs",
    "openapi_document",
    "operations",
    "serve_docs",
]
