"""The catalogue: SKUs with their prices, the required-SKU lists, the promotions."""

from __future__ import annotations

import asyncpg

from salesplatform.projections import active_schema


async def known_skus(conn: asyncpg.Connection, skus: list[str]) -> set[str]:
    """Which of `skus` the catalogue defines."""
    schema = await active_schema(conn, "catalogue")
    rows = await conn.fetch(f"SELECT sku FROM {schema}.skus WHERE sku = ANY($1::text[])", skus)
    return {r["sku"] for r in rows}


async def product_groups(conn: asyncpg.Connection) -> dict[str, str]:
    """Every SKU's product group (the catalogue is small)."""
    schema = await active_schema(conn, "catalogue")
    return {r["sku"]: r["product_group"] for r in await conn.fetch(f"SELECT sku, product_group FROM {schema}.skus")}


async def skus_with_prices(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every SKU with its area prices (JSON), by SKU."""
    return list(
        await conn.fetch(
            "SELECT s.*, coalesce(json_agg(json_build_object('area_id', a.area_id, 'list_price_fen',"
            " a.list_price_fen, 'floor_price_fen', a.floor_price_fen)) FILTER (WHERE a.area_id IS NOT NULL),"
            " '[]') AS area_prices FROM skus s LEFT JOIN area_prices a USING (sku) GROUP BY s.sku ORDER BY s.sku"
        )
    )


async def required_skus(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT channel, skus FROM required_skus ORDER BY channel"))


async def promotions(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every promotion with the orders it discounted and the gifts it gave (released ones left out)."""
    return list(
        await conn.fetch(
            "SELECT p.*, count(po.order_id) FILTER (WHERE NOT po.released AND po.cost_fen > 0) AS orders,"
            " coalesce(sum(po.gift_quantity) FILTER (WHERE NOT po.released), 0)::bigint AS gifts_issued"
            " FROM promotions p LEFT JOIN promotion_orders po USING (promotion_id)"
            " GROUP BY p.promotion_id ORDER BY p.starts_on, p.promotion_id"
        )
    )
