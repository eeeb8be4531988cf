"""The platform's HTTP app answers every failure in the one error body: a fault in a query is
500 `internal_error` (never Starlette's plain text), and the business dates and months every
service takes are read only as written (`0` is no date)."""

from __future__ import annotations

import dataclasses
from datetime import date

import httpx
import orjson
import pytest
from fastapi import APIRouter
from tally import SIGNING_KEY, definition

from salesplatform.auth import mint
from salesplatform.events import Actor, Role
from salesplatform.inputs import Day, Month
from salesplatform.service import Runtime, http_app

REP = Actor(id="r1", role=Role.rep, district="d1", area="a1")


def faulty_queries(_: Runtime) -> APIRouter:
    api = APIRouter()

    @api.get("/sheets/broken")
    async def broken() -> dict[str, str]:
        raise RuntimeError("a bug in a query")

    @api.get("/sheets/on")
    async def on(day: Day, month: Month) -> dict[str, str]:
        return {"day": day.isoformat(), "month": month}

    return api


async def test_a_fault_in_a_query_is_500_in_the_error_body(service_settings) -> None:
    defn = dataclasses.replace(definition(), routers=[faulty_queries])
    async with Runtime(defn, service_settings) as rt:
        transport = httpx.ASGITransport(app=http_app(rt))
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as api:
            broken = await api.get("/sheets/broken", headers={"Authorization": f"Bearer {mint(REP, SIGNING_KEY)}"})
            assert broken.status_code == 500
            assert broken.json()["error"]["code"] == "internal_error"
            fine = await api.get("/sheets/on", params={"day": "2026-03-02", "month": "2026-03"})
            assert fine.json() == {"day": "2026-03-02", "month": "2026-03"}
            for day, month in (("0", "2026-03"), ("2026-02-30", "2026-03"), ("2026-03-02", "0000-01")):
                refused = await api.get("/sheets/on", params={"day": day, "month": month})
                assert refused.status_code == 422, (day, month)
                assert refused.json()["error"]["code"] == "validation_failed"


@pytest.mark.fast
@pytest.mark.parametrize("written", ["0", "1700000000", "2026-3-2", "2026-02-30", "0001-01-01", "9999-12-31", ""])
def test_a_business_date_is_only_a_written_date(written: str) -> None:
    from pydantic import TypeAdapter, ValidationError

    with pytest.raises(ValidationError):
        TypeAdapter(Day).validate_python(written)


@pytest.mark.fast
def test_a_business_date_and_month_within_the_years() -> None:
    from pydantic import TypeAdapter, ValidationError

    assert TypeAdapter(Day).validate_python("2999-12-31") == date(2999, 12, 31)
    assert TypeAdapter(Month).validate_python("1900-01") == "1900-01"
    for month in ("0000-01", "9999-12", "2026-13", "2026-00", "1899-12"):
        with pytest.raises(ValidationError):
            TypeAdapter(Month).validate_python(month)


async def test_a_fault_in_a_command_over_nats_is_500_not_unavailable(service_settings, outside) -> None:
    """503 tells the caller to send it again later; a fault that will fail again is a 500."""
    async with Runtime(definition(), service_settings) as rt:
        reply = await outside.request(
            rt.topology.subject("cmd", "break_transaction"),
            b"{}",
            headers={"Authorization": f"Bearer {mint(REP, SIGNING_KEY)}"},
            timeout=60,
        )
    answer = orjson.loads(reply.data)
    assert answer["ok"] is False and answer["status"] == 500
    assert answer["error"]["code"] == "internal_error"
