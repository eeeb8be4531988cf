"""Synthetic history for the bulk import: valid JSON-lines records and the customers they need.

Used by figure 4 (bench/import_worker.py) and by the orders service's import tests.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from salesplatform.events import Envelope, service_actor


def synthetic_history(
    n: int,
    customer_ids: list[str],
    skus: dict[str, int],
    *,
    end: datetime,
    seed: int = 7,
) -> Iterator[dict[str, Any]]:
    """`n` valid records: about half orders, three in ten deliveries, two in ten payments.

    The first half of the customers pay their oldest invoices first, the others pay named
    invoices, so the generator knows what is open without mirroring the importer's ordering.
    `skus` maps SKU → list price in fen. Times run up to `end`.
    """
    rng = random.Random(seed)
    start = end - timedelta(days=365)
    step = (end - start - timedelta(days=3)) / max(n, 1)
    sku_list = sorted(skus)
    oldest_first = set(customer_ids[: len(customer_ids) // 2])
    undelivered: list[tuple[str, str, int, datetime]] = []  # (record id, customer, amount, placed_at)
    open_total: dict[str, int] = {}
    open_named: dict[str, list[list[Any]]] = {}  # customer → [[order record id, open fen]]
    orders = deliveries = payments = 0
    for i in range(n):
        at = start + step * i
        kind = i % 10
        if kind >= 8 and (open_total or open_named):
            payments += 1
            customer = rng.choice(sorted(set(open_total) | set(open_named)))
            record: dict[str, Any] = {
                "kind": "payment",
                "record_id": f"P{payments}",
                "customer_id": customer,
                "received_on": (at + timedelta(days=1)).date().isoformat(),
            }
            if customer in oldest_first:
                amount = min(open_total[customer], rng.randint(1, 400) * 100)
                open_total[customer] -= amount
                if not open_total[customer]:
                    del open_total[customer]
            else:
                entry = rng.choice(open_named[customer])
                amount = min(entry[1], rng.randint(1, 400) * 100)
                entry[1] -= amount
                record["allocations"] = [{"order_record_id": entry[0], "amount_fen": amount}]
                open_named[customer] = [e for e in open_named[customer] if e[1] > 0]
                if not open_named[customer]:
                    del open_named[customer]
            record["amount_fen"] = amount
            yield record
        elif kind >= 5 and undelivered:
            deliveries += 1
            rid, customer, amount, placed_at = undelivered.pop(0)
            yield {
                "kind": "delivery",
                "record_id": f"D{deliveries}",
                "order_record_id": rid,
                "delivered_at": (placed_at + timedelta(hours=rng.randint(2, 30))).isoformat(),
            }
            if customer in oldest_first:
                open_total[customer] = open_total.get(customer, 0) + amount
            else:
                open_named.setdefault(customer, []).append([rid, amount])
        else:
            orders += 1
            customer = rng.choice(customer_ids)
            chosen = rng.sample(sku_list, k=min(len(sku_list), rng.randint(1, 3)))
            lines: list[dict[str, Any]] = [
                {"sku": s, "quantity": rng.randint(1, 48), "unit_price_fen": skus[s] - rng.choice((0, 0, 10))}
                for s in chosen
            ]
            rid = f"H{orders}"
            undelivered.append((rid, customer, sum(x["quantity"] * x["unit_price_fen"] for x in lines), at))
            yield {
                "kind": "order",
                "record_id": rid,
                "customer_id": customer,
                "placed_at": at.isoformat(),
                "lines": lines,
            }


def customer_envelopes(customer_ids: list[str], *, at: datetime, terms_days: int = 30) -> list[Envelope]:
    """The customer service's events for test and benchmark customers (registered, credit set)."""
    actor = service_actor("customer")
    out = []
    for n, cid in enumerate(customer_ids):
        base = {
            "stream_id": f"customer-{cid}",
            "occurred_at": at,
            "recorded_at": at,
            "actor": actor,
            "schema_version": 1,
        }
        out.append(
            Envelope(
                event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"registered:{cid}"),
                event_type="customer.registered",
                stream_version=1,
                data={
                    "customer_id": cid,
                    "name": f"Outlet {n}",
                    "district_id": f"d{n % 4}",
                    "area_id": f"a{n % 2}",
                    "division_id": "v1",
                    "rep_id": f"r{n % 8}",
                    "channel": "retail",
                    "status": "pending",
                },
                **base,
            )
        )
        out.append(
            Envelope(
                event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"credit:{cid}"),
                event_type="customer.credit_limit_set",
                stream_version=2,
                data={
                    "customer_id": cid,
                    "credit_rating": "A",
                    "credit_limit_fen": 10**12,
                    "payment_terms_days": terms_days,
                },
                **base,
            )
        )
    return out
