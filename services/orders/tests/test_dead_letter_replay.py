"""An order sent before the customer service's news of its customer arrived is dead-lettered;
once the customer is known an operator replays it, and it is placed once however often it is
replayed; purged, it is gone."""

from __future__ import annotations

import httpx
import orjson
from orders_testkit import REP, SIGNING_KEY, add_customer, define_skus

from salesplatform.auth import mint
from salesplatform.devstack.pytest_plugin import connected_as, next_stream_message
from salesplatform.events import Actor, Role
from salesplatform.service import http_app

OPERATOR = Actor(id="ops1", role=Role.operator)
ORDER = {"customer_id": "c-late", "lines": [{"sku": "COLA", "quantity": 2}]}


async def _orders_of(rt, customer_id: str) -> list:
    async with rt.pool.acquire() as conn:
        return await conn.fetch(
            "SELECT stream_id, actor FROM events WHERE event_type = 'order.placed' AND data->>'customer_id' = $1",
            customer_id,
        )


async def test_an_order_for_a_customer_not_yet_known_is_replayed_once_it_is_known(rt) -> None:
    await define_skus(rt)
    async with connected_as(rt.settings.nats_url, "system") as outside:
        await outside.jetstream().publish(
            rt.topology.subject("ingest", "place_order"),
            orjson.dumps(ORDER),
            headers={"Authorization": f"Bearer {mint(REP, SIGNING_KEY)}", "Correlation-Id": "erp-run-7"},
        )
    first = await next_stream_message(rt.js, rt.topology.dlq_stream)
    assert first.headers["Dlq-Command"] == "place_order"
    assert first.headers["Dlq-Subject"] == rt.topology.subject("ingest", "place_order")
    assert orjson.loads(first.headers["Dlq-Sender"]) == {"id": "r1", "role": "rep", "district": "d1", "area": "a1"}
    assert first.headers["Dlq-Idempotency-Key"].startswith("ingest-") and first.headers["Dlq-Deliveries"] == "1"
    assert "Authorization" not in first.headers

    operator = {"Authorization": f"Bearer {mint(OPERATOR, SIGNING_KEY)}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=http_app(rt)), base_url="http://orders") as http:
        rep = {"Authorization": f"Bearer {mint(REP, SIGNING_KEY)}"}
        refused = await http.post(f"/admin/dead-letters/{first.seq}/replay", headers=rep)
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "operator_only")

        # Still unknown: the replay fails again and a dead letter with one more delivery replaces it.
        again = (await http.post(f"/admin/dead-letters/{first.seq}/replay", headers=operator)).json()
        assert again["status"] == "failed" and "customer" in again["error"]
        assert (await http.get(f"/admin/dead-letters/{first.seq}", headers=operator)).status_code == 404
        second = (await http.get(f"/admin/dead-letters/{again['dead_letter']}", headers=operator)).json()
        assert (second["deliveries"], second["first_failed"]) == (2, first.headers["Dlq-First-Failed"])
        assert second["last_failed"] > second["first_failed"] and second["payload"] == ORDER

        await add_customer(rt, "c-late")
        listed = await http.get("/admin/dead-letters", params={"command": "place_order"}, headers=operator)
        assert [d["seq"] for d in listed.json()["dead_letters"]] == [second["seq"]]
        applied = (await http.post(f"/admin/dead-letters/{second['seq']}/replay?keep=true", headers=operator)).json()
        twice = (await http.post(f"/admin/dead-letters/{second['seq']}/replay?keep=true", headers=operator)).json()
        assert (applied["status"], twice["status"]) == ("applied", "already_applied")
        assert twice["result"] == applied["result"]

        placed = await _orders_of(rt, "c-late")
        assert len(placed) == 1
        assert placed[0]["actor"] == {"id": "r1", "role": "rep", "district": "d1", "area": "a1", "replayed_by": "ops1"}

        purged = await http.delete(f"/admin/dead-letters/{second['seq']}", headers=operator)
        assert purged.json() == {"purged": [second["seq"]]}
        assert (await http.get(f"/admin/dead-letters/{second['seq']}", headers=operator)).status_code == 404
        assert (await http.get("/admin/dead-letters", headers=operator)).json() == {"dead_letters": []}
    assert len(await _orders_of(rt, "c-late")) == 1


async def test_a_purge_names_what_it_removes(rt) -> None:
    operator = {"Authorization": f"Bearer {mint(OPERATOR, SIGNING_KEY)}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=http_app(rt)), base_url="http://orders") as http:
        r = await http.post("/admin/dead-letters/purge", json={}, headers=operator)
        assert (r.status_code, r.json()["error"]["code"]) == (422, "selection_empty")
        r = await http.post("/admin/dead-letters/purge", json={"reason": "rejected", "colour": "red"}, headers=operator)
        assert (r.status_code, r.json()["error"]["code"]) == (422, "validation_failed")
