"""The catalogue as read: SKUs, prices per area, required SKUs per channel."""

from __future__ import annotations

import asyncpg

from orders_service.projections.base import Run, RunProjection, column, occurred


class Catalogue(RunProjection):
    name = "catalogue"
    inline = True
    code_version = 1
    event_types = frozenset({"sku.defined", "sku.price_set", "required_skus.set"})
    schema_sql = """
    CREATE TABLE skus (
        sku             text PRIMARY KEY,
        name            text NOT NULL,
        brand           text NOT NULL,
        product_group   text NOT NULL,
        package         text NOT NULL,
        list_price_fen  bigint NOT NULL,
        floor_price_fen bigint NOT NULL,
        updated_at      timestamptz NOT NULL
    );
    CREATE TABLE area_prices (
        sku             text NOT NULL,
        area_id         text NOT NULL,
        list_price_fen  bigint NOT NULL,
        floor_price_fen bigint NOT NULL,
        updated_at      timestamptz NOT NULL,
        PRIMARY KEY (sku, area_id)
    );
    CREATE TABLE required_skus (
        channel     text PRIMARY KEY,
        skus        text[] NOT NULL,
        updated_at  timestamptz NOT NULL
    );
    """

    async def on_sku_defined(self, conn: asyncpg.Connection, run: Run) -> None:
        await conn.execute(
            """
            INSERT INTO skus SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                                                 $5::text[], $6::bigint[], $7::bigint[], $8::timestamptz[])
            """,
            column(run, "sku"),
            column(run, "name"),
            column(run, "brand"),
            column(run, "product_group"),
            column(run, "package"),
            column(run, "list_price_fen"),
            column(run, "floor_price_fen"),
            occurred(run),
        )

    async def on_sku_price_set(self, conn: asyncpg.Connection, run: Run) -> None:
        for e in run:  # rare and small; in order, so the last price wins
            d = e.data
            if d["area_id"] is None:
                await conn.execute(
                    "UPDATE skus SET list_price_fen = $2, floor_price_fen = $3, updated_at = $4 WHERE sku = $1",
                    d["sku"],
                    d["list_price_fen"],
                    d["floor_price_fen"],
                    e.envelope.occurred_at,
                )
            else:
                await conn.execute(
                    "INSERT INTO area_prices VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sku, area_id) DO UPDATE"
                    " SET list_price_fen = $3, floor_price_fen = $4, updated_at = $5",
                    d["sku"],
                    d["area_id"],
                    d["list_price_fen"],
                    d["floor_price_fen"],
                    e.envelope.occurred_at,
                )

    async def on_required_skus_set(self, conn: asyncpg.Connection, run: Run) -> None:
        for e in run:
            await conn.execute(
                "INSERT INTO required_skus VALUES ($1, $2, $3) ON CONFLICT (channel) DO UPDATE"
                " SET skus = $2, updated_at = $3",
                e.data["channel"],
                e.data["skus"],
                e.envelope.occurred_at,
            )
