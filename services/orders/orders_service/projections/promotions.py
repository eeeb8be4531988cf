"""Promotions as read: plan, budget spent, orders and gifts (促销活动的销售统计). Inline: placing an
order looks up the promotions in scope here."""

from __future__ import annotations

import asyncpg

from orders_service.projections.base import Run, RunProjection
from salesplatform.store import RecordedEvent


class Promotions(RunProjection):
    name = "promotions"
    inline = True
    code_version = 1
    event_types = frozenset(
        {
            "promotion.planned",
            "promotion.cost_incurred",
            "promotion.cost_released",
            "order.placed",
        }
    )
    schema_sql = """
    CREATE TABLE promotions (
        promotion_id        text PRIMARY KEY,
        name                text NOT NULL,
        starts_on           date NOT NULL,
        ends_on             date NOT NULL,
        skus                text[] NOT NULL,
        channels            text[] NOT NULL,
        discount_percent    integer,
        gift_buy            integer,
        gift_get            integer,
        budget_fen          bigint NOT NULL,
        spent_fen           bigint NOT NULL DEFAULT 0
    );
    CREATE INDEX promotions_by_period ON promotions (starts_on, ends_on);
    CREATE TABLE promotion_orders (
        promotion_id    text NOT NULL,
        order_id        text NOT NULL,
        cost_fen        bigint NOT NULL DEFAULT 0,
        gift_quantity   integer NOT NULL DEFAULT 0,
        released        boolean NOT NULL DEFAULT false,
        PRIMARY KEY (promotion_id, order_id)
    );
    """

    def handles(self, event: RecordedEvent) -> bool:
        # Most orders use no promotion: those are not this read model's business at all, which
        # spares their transactions the work of applying it.
        if event.event_type == "order.placed":
            return any(line.get("promotion_id") for line in event.data["lines"])
        return super().handles(event)

    async def on_promotion_planned(self, conn: asyncpg.Connection, run: Run) -> None:
        for e in run:
            d = e.data
            gift = d.get("gift_rule") or {}
            await conn.execute(
                "INSERT INTO promotions (promotion_id, name, starts_on, ends_on, skus, channels,"
                " discount_percent, gift_buy, gift_get, budget_fen)"
                " VALUES ($1, $2, $3::text::date, $4::text::date, $5, $6, $7, $8, $9, $10)",
                d["promotion_id"],
                d["name"],
                d["starts_on"],
                d["ends_on"],
                d["skus"],
                d["channels"],
                d["discount_percent"],
                gift.get("buy"),
                gift.get("get"),
                d["budget_fen"],
            )

    async def on_order_placed(self, conn: asyncpg.Connection, run: Run) -> None:
        rows = [
            (line["promotion_id"], e.data["order_id"], line.get("gift_quantity", 0))
            for e in run
            for line in e.data["lines"]
            if line.get("promotion_id")
        ]
        if rows:
            await conn.execute(
                """
                INSERT INTO promotion_orders (promotion_id, order_id, gift_quantity)
                SELECT p, o, sum(g) FROM unnest($1::text[], $2::text[], $3::int[]) AS t(p, o, g)
                GROUP BY p, o
                ON CONFLICT (promotion_id, order_id) DO UPDATE SET gift_quantity = EXCLUDED.gift_quantity
                """,
                [r[0] for r in rows],
                [r[1] for r in rows],
                [r[2] for r in rows],
            )

    async def on_promotion_cost_incurred(self, conn: asyncpg.Connection, run: Run) -> None:
        for e in run:
            d = e.data
            await conn.execute(
                "INSERT INTO promotion_orders (promotion_id, order_id, cost_fen) VALUES ($1, $2, $3)"
                " ON CONFLICT (promotion_id, order_id) DO UPDATE"
                " SET cost_fen = promotion_orders.cost_fen + EXCLUDED.cost_fen",
                d["promotion_id"],
                d["order_id"],
                d["cost_fen"],
            )
            await conn.execute(
                "UPDATE promotions SET spent_fen = spent_fen + $2 WHERE promotion_id = $1",
                d["promotion_id"],
                d["cost_fen"],
            )

    async def on_promotion_cost_released(self, conn: asyncpg.Connection, run: Run) -> None:
        for e in run:
            d = e.data
            await conn.execute(
                "UPDATE promotion_orders SET released = true WHERE promotion_id = $1 AND order_id = $2",
                d["promotion_id"],
                d["order_id"],
            )
            await conn.execute(
                "UPDATE promotions SET spent_fen = spent_fen - $2 WHERE promotion_id = $1",
                d["promotion_id"],
                d["cost_fen"],
            )
