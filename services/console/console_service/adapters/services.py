"""The four services' HTTP APIs, called with the viewer's token.

An answer other than 2xx becomes an `ApiError` carrying the service's own status, code and
message (the platform's error body `{"error": {"code", "message", ...}}`), so a page shows
exactly what the API said — a 403 `outside_line` stays a 403 with that code. A service that
does not answer is a 502 `service_unavailable` naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import structlog

log = structlog.get_logger(__name__)

# The reporting service's largest JSON page.
REPORT_PAGE = 1000


@dataclass
class ApiError(Exception):
    status: int
    code: str
    message: str
    service: str
    details: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.service}: {self.status} {self.code}: {self.message}"


def _error_of(service: str, response: httpx.Response) -> ApiError:
    try:
        body = orjson.loads(response.content)
        error = body.get("error") if isinstance(body, dict) else None
    except orjson.JSONDecodeError:
        error = None
    if isinstance(error, dict):
        return ApiError(
            status=response.status_code,
            code=str(error.get("code") or "error"),
            message=str(error.get("message") or ""),
            service=service,
            details=list(error.get("details") or []),
        )
    return ApiError(response.status_code, "error", response.text[:200], service)


def _params(params: Mapping[str, Any] | None) -> dict[str, str]:
    return {k: str(v) for k, v in (params or {}).items() if v is not None and v != ""}


class Services:
    """One HTTP client per service (`customer`, `visit`, `orders`, `reporting`)."""

    def __init__(self, clients: Mapping[str, httpx.AsyncClient]) -> None:
        self._clients = dict(clients)

    @classmethod
    def over_http(cls, urls: Mapping[str, str], *, timeout: float) -> Services:
        return cls(
            {
                name: httpx.AsyncClient(
                    base_url=url, timeout=timeout, limits=httpx.Limits(max_connections=32, max_keepalive_connections=16)
                )
                for name, url in urls.items()
            }
        )

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()

    def _client(self, service: str) -> httpx.AsyncClient:
        return self._clients[service]

    async def get(self, service: str, path: str, token: str, params: Mapping[str, Any] | None = None) -> Any:
        try:
            response = await self._client(service).get(
                path, params=_params(params), headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError as exc:
            log.warning("service_unreachable", service=service, path=path, error=repr(exc))
            raise ApiError(502, "service_unavailable", f"the {service} service is not answering", service) from None
        if response.status_code >= 300:
            raise _error_of(service, response)
        return orjson.loads(response.content)

    async def content(self, service: str, path: str, token: str) -> tuple[bytes, str]:
        """The bytes of a file the service serves (a visit's photo) and their media type."""
        try:
            response = await self._client(service).get(path, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            log.warning("service_unreachable", service=service, path=path, error=repr(exc))
            raise ApiError(502, "service_unavailable", f"the {service} service is not answering", service) from None
        if response.status_code >= 300:
            raise _error_of(service, response)
        return response.content, response.headers.get("content-type", "application/octet-stream")

    async def report(
        self,
        path: str,
        token: str,
        params: Mapping[str, Any] | None = None,
        *,
        limit: int = REPORT_PAGE,
    ) -> tuple[list[dict[str, Any]], int]:
        """Rows of a report (`/reports/...`), up to `limit` of them, paging through the
        reporting service's pages; and the total the report has."""
        rows: list[dict[str, Any]] = []
        total = 0
        while True:
            page = min(REPORT_PAGE, limit - len(rows))
            body = await self.get("reporting", path, token, {**(params or {}), "limit": page, "offset": len(rows)})
            items = body.get("items", [])
            rows.extend(items)
            total = int(body.get("total", len(rows)))
            if not items or len(rows) >= min(total, limit):
                return rows, total

    async def command(
        self, service: str, name: str, payload: Mapping[str, Any], token: str, *, idempotency_key: str
    ) -> Any:
        """`POST /commands/<name>` as the viewer; the result, or the service's refusal."""
        try:
            response = await self._client(service).post(
                f"/commands/{name}",
                content=orjson.dumps(dict(payload)),
                headers={
                    "Authorization": f"Bearer {token}",
                    "Idempotency-Key": idempotency_key,
                    "Content-Type": "application/json",
                },
            )
        except httpx.HTTPError as exc:
            log.warning("service_unreachable", service=service, command=name, error=repr(exc))
            raise ApiError(502, "service_unavailable", f"the {service} service is not answering", service) from None
        if response.status_code >= 300:
            raise _error_of(service, response)
        return orjson.loads(response.content)

    async def reachable(self) -> dict[str, bool]:
        """Which services answer `/health/live` (shown on the console's readiness page)."""
        out = {}
        for name, client in self._clients.items():
            try:
                out[name] = (await client.get("/health/live", timeout=2.0)).status_code == 200
            except httpx.HTTPError:
                out[name] = False
        return out
