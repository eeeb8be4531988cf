"""Sales, deliveries, returns and promotions, from the orders service's events.

Sales are recognised when an order is delivered (`order.delivered`), on the business date of
`delivered_at` in the company time zone, with the lines of its `order.placed`. An approved
return (`return.approved`) takes its lines back on the business date of the approval. Both
land in `sales_daily`, one row per day × customer × SKU × rep × district × area × promotion,
so every sales, composition, target and promotion report is a sum over it.
"""

from __future__ import annotations

import asyncpg

from reporting_service.projections.base import SqlProjection, Statement, keys, month_of
from salesplatform.projections import Change
from salesplatform.published import RETURN_EVENTS

SCHEMA = """
CREATE TABLE orders (
    order_id     text PRIMARY KEY,
    customer_id  text NOT NULL,
    rep_id       text NOT NULL,      -- '' when the order has no rep
    district_id  text NOT NULL,
    area_id      text NOT NULL,
    source       text,
    visit_id     text,
    placed_on    date NOT NULL,
    amount_fen   bigint NOT NULL,
    lines        jsonb NOT NULL,
    cancelled_on date
);

CREATE TABLE order_deliveries (
    order_id     text PRIMARY KEY,
    delivered_on date NOT NULL,
    on_time      boolean NOT NULL
);

CREATE TABLE sales_daily (
    business_date        date NOT NULL,
    customer_id          text NOT NULL,
    sku                  text NOT NULL,
    rep_id               text NOT NULL,
    district_id          text NOT NULL,
    area_id              text NOT NULL,
    promotion_id         text NOT NULL,
    product_group        text NOT NULL,
    quantity             bigint NOT NULL,   -- delivered
    amount_fen           bigint NOT NULL,
    returned_quantity    bigint NOT NULL,   -- approved returns
    returned_amount_fen  bigint NOT NULL,
    gift_quantity        bigint NOT NULL,
    PRIMARY KEY (business_date, customer_id, sku, rep_id, district_id, area_id, promotion_id)
);

CREATE TABLE deliveries_daily (
    business_date date NOT NULL,
    rep_id        text NOT NULL,
    district_id   text NOT NULL,
    area_id       text NOT NULL,
    deliveries    integer NOT NULL,
    on_time       integer NOT NULL,
    PRIMARY KEY (business_date, rep_id, district_id, area_id)
);

CREATE TABLE returns (
    return_id             text PRIMARY KEY,
    order_id              text,
    customer_id           text,
    rep_id                text NOT NULL,
    district_id           text NOT NULL,
    area_id               text NOT NULL,
    scope                 text,
    reason                text,
    detail                text,
    requested_on          date NOT NULL,
    quantity              bigint NOT NULL,
    amount_fen            bigint NOT NULL,
    inspected_on          date,
    inspection_confirmed  boolean,
    approved_on           date,
    approver_id           text,
    rejected_on           date,
    rejection_reason      text,
    resolved_on           date,
    resolution            text,
    resolved_amount_fen   bigint,
    goods_received_on     date,
    corrective_department text,
    corrective_action     text
);

CREATE TABLE return_lines (
    return_id     text NOT NULL,
    line_no       integer NOT NULL,
    sku           text NOT NULL,
    product_group text NOT NULL,
    promotion_id  text NOT NULL,
    quantity      bigint NOT NULL,
    amount_fen    bigint NOT NULL,
    PRIMARY KEY (return_id, line_no)
);

CREATE TABLE promotions (
    promotion_id     text PRIMARY KEY,
    name             text,
    starts_on        date NOT NULL,
    ends_on          date NOT NULL,
    skus             text[] NOT NULL,
    channels         text[] NOT NULL,
    discount_percent numeric,
    gift_rule        jsonb,
    budget_fen       bigint NOT NULL
);

CREATE TABLE promotion_costs (
    promotion_id  text NOT NULL,
    business_date date NOT NULL,
    cost_fen      bigint NOT NULL,
    entries       integer NOT NULL,
    PRIMARY KEY (promotion_id, business_date)
);
"""

# Add rows of (business_date, customer_id, sku, rep_id, district_id, area_id, promotion_id,
# product_group, quantity, amount_fen, returned_quantity, returned_amount_fen, gift_quantity)
# to sales_daily; {source} is a query giving such rows, not yet summed.
_ADD_SALES = """
INSERT INTO sales_daily AS t
SELECT business_date, customer_id, sku, rep_id, district_id, area_id, promotion_id,
       min(product_group), sum(quantity), sum(amount_fen), sum(returned_quantity),
       sum(returned_amount_fen), sum(gift_quantity)
FROM ({source}) AS s
GROUP BY business_date, customer_id, sku, rep_id, district_id, area_id, promotion_id
ON CONFLICT (business_date, customer_id, sku, rep_id, district_id, area_id, promotion_id) DO UPDATE SET
    quantity = t.quantity + excluded.quantity,
    amount_fen = t.amount_fen + excluded.amount_fen,
    returned_quantity = t.returned_quantity + excluded.returned_quantity,
    returned_amount_fen = t.returned_amount_fen + excluded.returned_amount_fen,
    gift_quantity = t.gift_quantity + excluded.gift_quantity
"""

# The lines of delivered orders: {x} has the columns of `orders` plus delivered_on.
_DELIVERED_LINES = """
SELECT x.delivered_on AS business_date, x.customer_id, l->>'sku' AS sku, x.rep_id, x.district_id,
       x.area_id, coalesce(l->>'promotion_id', '') AS promotion_id,
       coalesce(l->>'product_group', '') AS product_group,
       coalesce((l->>'quantity')::bigint, 0) AS quantity,
       coalesce((l->>'amount_fen')::bigint,
                (l->>'quantity')::bigint * (l->>'unit_price_fen')::bigint, 0) AS amount_fen,
       0::bigint AS returned_quantity, 0::bigint AS returned_amount_fen,
       coalesce((l->>'gift_quantity')::bigint, 0) AS gift_quantity
FROM {x} AS x, jsonb_array_elements(x.lines) AS l
"""

_ADD_DELIVERIES = """
INSERT INTO deliveries_daily AS t
SELECT delivered_on, rep_id, district_id, area_id, count(*), count(*) FILTER (WHERE on_time)
FROM {x} GROUP BY delivered_on, rep_id, district_id, area_id
ON CONFLICT (business_date, rep_id, district_id, area_id) DO UPDATE SET
    deliveries = t.deliveries + excluded.deliveries, on_time = t.on_time + excluded.on_time
"""

ORDER_PLACED = f"""
WITH new_orders AS (
    -- In log order, so the first order.placed of an order wins; a repeat changes nothing.
    INSERT INTO orders (order_id, customer_id, rep_id, district_id, area_id, source, visit_id,
                        placed_on, amount_fen, lines)
    SELECT e.data->>'order_id', e.data->>'customer_id', coalesce(e.data->>'rep_id', ''),
           coalesce(e.data->>'district_id', ''), coalesce(e.data->>'area_id', ''),
           e.data->>'source', e.data->>'visit_id', (e.data->>'business_date')::date,
           coalesce((e.data->>'amount_fen')::bigint, 0), coalesce(e.data->'lines', '[]'::jsonb)
    FROM public.events e
    WHERE e.event_type = 'order.placed' AND __RANGE__
    ORDER BY e.tx_id, e.position
    ON CONFLICT (order_id) DO NOTHING
    RETURNING *
), late AS (
    -- A delivery that arrived before its order: the sale counts now, on the delivery's date.
    SELECT o.*, dl.delivered_on, dl.on_time
    FROM new_orders o
    CROSS JOIN LATERAL (
        SELECT delivered_on, on_time FROM order_deliveries d
        WHERE d.order_id = o.order_id LIMIT 1
    ) dl
), late_sales AS (
    {_ADD_SALES.format(source=_DELIVERED_LINES.format(x="late"))}
), late_deliveries AS (
    {_ADD_DELIVERIES.format(x="late")}
)
SELECT 'order' AS kind, placed_on AS day, rep_id, district_id, area_id, customer_id FROM new_orders
UNION ALL
SELECT 'sale', delivered_on, rep_id, district_id, area_id, customer_id FROM late
"""

ORDER_DELIVERED = f"""
WITH new AS (
    INSERT INTO order_deliveries
    SELECT e.data->>'order_id',
           (coalesce((e.data->>'delivered_at')::timestamptz, e.occurred_at)
               AT TIME ZONE '__TZ__')::date,
           coalesce((e.data->>'on_time')::boolean, false)
    FROM public.events e
    WHERE e.event_type = 'order.delivered' AND __RANGE__
    ORDER BY e.tx_id, e.position
    ON CONFLICT (order_id) DO NOTHING
    RETURNING order_id, delivered_on, on_time
), sold AS (
    -- One primary-key lookup per delivery (a lateral subquery with LIMIT 1 is not turned into
    -- a join), rather than hashing every order kept, once per stretch, as the table grows.
    SELECT n.delivered_on, n.on_time, o.*
    FROM new n
    CROSS JOIN LATERAL (
        SELECT customer_id, rep_id, district_id, area_id, lines FROM orders
        WHERE orders.order_id = n.order_id LIMIT 1
    ) o
), add_sales AS (
    {_ADD_SALES.format(source=_DELIVERED_LINES.format(x="sold"))}
), add_deliveries AS (
    {_ADD_DELIVERIES.format(x="sold")}
    RETURNING business_date, rep_id, district_id, area_id
)
SELECT 'sale' AS kind, business_date AS day, rep_id, district_id, area_id, NULL AS customer_id
FROM add_deliveries
"""

ORDER_CANCELLED = """
UPDATE orders o SET cancelled_on = c.day
FROM (
    SELECT DISTINCT ON (e.data->>'order_id') e.data->>'order_id' AS order_id,
           (e.occurred_at AT TIME ZONE '__TZ__')::date AS day
    FROM public.events e
    WHERE e.event_type = 'order.cancelled' AND __RANGE__
    ORDER BY e.data->>'order_id', e.tx_id, e.position
) c
WHERE o.order_id = c.order_id AND o.cancelled_on IS NULL
RETURNING 'order' AS kind, o.placed_on AS day, o.rep_id, o.district_id, o.area_id, o.customer_id
"""

RETURN_REQUESTED = """
WITH requested AS (
    SELECT DISTINCT ON (e.data->>'return_id') e.data AS d,
           (e.occurred_at AT TIME ZONE '__TZ__')::date AS day
    FROM public.events e
    WHERE e.event_type = 'return.requested' AND __RANGE__
    ORDER BY e.data->>'return_id', e.tx_id, e.position
), new AS (
    INSERT INTO returns (return_id, order_id, customer_id, rep_id, district_id, area_id, scope,
                         reason, detail, requested_on, quantity, amount_fen)
    SELECT r.d->>'return_id', r.d->>'order_id', coalesce(r.d->>'customer_id', o.customer_id),
           coalesce(o.rep_id, ''), coalesce(o.district_id, ''), coalesce(o.area_id, ''),
           r.d->>'scope', r.d->>'reason', r.d->>'detail', r.day,
           (SELECT coalesce(sum((l->>'quantity')::bigint), 0) FROM jsonb_array_elements(r.d->'lines') l),
           (SELECT coalesce(sum((l->>'amount_fen')::bigint), 0) FROM jsonb_array_elements(r.d->'lines') l)
    FROM requested r LEFT JOIN orders o ON o.order_id = r.d->>'order_id'
    ON CONFLICT (return_id) DO NOTHING
    RETURNING return_id, order_id, requested_on, reason
), new_lines AS (
    -- Product group and promotion come from the order's line of the same SKU.
    INSERT INTO return_lines
    SELECT n.return_id, l.n, l.v->>'sku', coalesce(ol.product_group, ''),
           coalesce(ol.promotion_id, ''), coalesce((l.v->>'quantity')::bigint, 0),
           coalesce((l.v->>'amount_fen')::bigint, 0)
    FROM new n
    JOIN requested r ON r.d->>'return_id' = n.return_id
    CROSS JOIN LATERAL jsonb_array_elements(r.d->'lines') WITH ORDINALITY AS l(v, n)
    LEFT JOIN LATERAL (
        SELECT x->>'product_group' AS product_group, x->>'promotion_id' AS promotion_id
        FROM orders o, jsonb_array_elements(o.lines) AS x
        WHERE o.order_id = n.order_id AND x->>'sku' = l.v->>'sku'
        LIMIT 1
    ) ol ON true
)
SELECT requested_on AS day, reason FROM new
"""

RETURN_APPROVED = f"""
WITH approved AS (
    SELECT DISTINCT ON (e.data->>'return_id') e.data->>'return_id' AS return_id,
           (e.occurred_at AT TIME ZONE '__TZ__')::date AS day, e.data->>'approver_id' AS approver_id
    FROM public.events e
    WHERE e.event_type = 'return.approved' AND __RANGE__
    ORDER BY e.data->>'return_id', e.tx_id, e.position
), done AS (
    UPDATE returns r SET approved_on = a.day, approver_id = a.approver_id
    FROM approved a
    WHERE r.return_id = a.return_id AND r.approved_on IS NULL
    RETURNING r.*
), taken_back AS (
    {
    _ADD_SALES.format(
        source='''
        SELECT d.approved_on AS business_date, d.customer_id, rl.sku, d.rep_id, d.district_id,
               d.area_id, rl.promotion_id, rl.product_group, 0::bigint AS quantity,
               0::bigint AS amount_fen, rl.quantity AS returned_quantity,
               rl.amount_fen AS returned_amount_fen, 0::bigint AS gift_quantity
        FROM done d JOIN return_lines rl USING (return_id)'''
    )
}
)
SELECT approved_on AS day, requested_on, reason, rep_id, district_id, area_id, customer_id FROM done
"""


def _return_update(event_type: str, assignments: str, columns: str, *, first_wins: str = "") -> str:
    order = "e.tx_id, e.position" if first_wins else "e.tx_id DESC, e.position DESC"
    guard = f" AND r.{first_wins} IS NULL" if first_wins else ""
    return f"""
UPDATE returns r SET {assignments}
FROM (
    SELECT DISTINCT ON (e.data->>'return_id') e.data->>'return_id' AS return_id,
           (e.occurred_at AT TIME ZONE '__TZ__')::date AS day, {columns}
    FROM public.events e
    WHERE e.event_type = '{event_type}' AND __RANGE__
    ORDER BY e.data->>'return_id', {order}
) x
WHERE r.return_id = x.return_id{guard}
RETURNING r.requested_on AS day, r.reason
"""


RETURN_INSPECTED = _return_update(
    "return.inspected",
    "inspected_on = x.day, inspection_confirmed = x.confirmed",
    "(e.data->>'confirmed')::boolean AS confirmed",
)
RETURN_REJECTED = _return_update(
    "return.rejected",
    "rejected_on = x.day, rejection_reason = x.reason",
    "e.data->>'reason' AS reason",
    first_wins="rejected_on",
)
RETURN_RESOLVED = _return_update(
    "return.resolved",
    "resolved_on = x.day, resolution = x.resolution, resolved_amount_fen = x.amount_fen",
    "e.data->>'resolution' AS resolution, (e.data->>'amount_fen')::bigint AS amount_fen",
    first_wins="resolved_on",
)
RETURN_GOODS_RECEIVED = _return_update(
    "return.goods_received", "goods_received_on = x.day", "1 AS one", first_wins="goods_received_on"
)
CORRECTIVE_ACTION = _return_update(
    "corrective_action.assigned",
    "corrective_department = x.department, corrective_action = x.action",
    "e.data->>'department' AS department, e.data->>'action' AS action",
)

PROMOTION_PLANNED = """
INSERT INTO promotions AS t
SELECT DISTINCT ON (e.data->>'promotion_id')
       e.data->>'promotion_id', e.data->>'name', (e.data->>'starts_on')::date,
       (e.data->>'ends_on')::date,
       ARRAY(SELECT jsonb_array_elements_text(coalesce(e.data->'skus', '[]'::jsonb))),
       ARRAY(SELECT jsonb_array_elements_text(coalesce(e.data->'channels', '[]'::jsonb))),
       (e.data->>'discount_percent')::numeric, e.data->'gift_rule',
       coalesce((e.data->>'budget_fen')::bigint, 0)
FROM public.events e
WHERE e.event_type = 'promotion.planned' AND __RANGE__
ORDER BY e.data->>'promotion_id', e.tx_id DESC, e.position DESC
ON CONFLICT (promotion_id) DO UPDATE SET
    name = excluded.name, starts_on = excluded.starts_on, ends_on = excluded.ends_on,
    skus = excluded.skus, channels = excluded.channels,
    discount_percent = excluded.discount_percent, gift_rule = excluded.gift_rule,
    budget_fen = excluded.budget_fen
RETURNING promotion_id
"""

PROMOTION_COST = """
-- Costs an order incurred, less those given back when an order was cancelled or rejected.
INSERT INTO promotion_costs AS t
SELECT e.data->>'promotion_id', (e.occurred_at AT TIME ZONE '__TZ__')::date,
       sum(CASE e.event_type WHEN 'promotion.cost_released' THEN -1 ELSE 1 END
           * coalesce((e.data->>'cost_fen')::bigint, 0)),
       count(*) FILTER (WHERE e.event_type = 'promotion.cost_incurred')
           - count(*) FILTER (WHERE e.event_type = 'promotion.cost_released')
FROM public.events e
WHERE e.event_type IN ('promotion.cost_incurred', 'promotion.cost_released') AND __RANGE__
GROUP BY 1, 2
ON CONFLICT (promotion_id, business_date) DO UPDATE SET
    cost_fen = t.cost_fen + excluded.cost_fen, entries = t.entries + excluded.entries
RETURNING promotion_id
"""


def _order_keys(row: asyncpg.Record) -> list[Change]:
    day = row["day"]
    territory = {"rep_id": row["rep_id"] or None, "district_id": row["district_id"], "area_id": row["area_id"]}
    if row["kind"] == "order":
        return list(keys({"report": "customer_base", "customer_id": row["customer_id"]}))
    return list(
        keys(
            {"report": "sales", "period": day, **territory},
            {"report": "composition", "period": day},
            {"report": "target_achievement", "month": month_of(day), **territory},
            {"report": "kpi", "period": day, "rep_id": territory["rep_id"]},
            {"report": "promotions", "period": day},
        )
    )


def _return_keys(row: asyncpg.Record) -> list[Change]:
    return list(keys({"report": "returns", "period": row["day"], "reason": row["reason"]}))


def _approved_keys(row: asyncpg.Record) -> list[Change]:
    day = row["day"]
    territory = {"rep_id": row["rep_id"] or None, "district_id": row["district_id"], "area_id": row["area_id"]}
    return list(
        keys(
            {"report": "returns", "period": row["requested_on"], "reason": row["reason"]},
            {"report": "sales", "period": day, **territory},
            {"report": "composition", "period": day},
            {"report": "target_achievement", "month": month_of(day), **territory},
            {"report": "promotions", "period": day},
        )
    )


def _promotion_keys(row: asyncpg.Record) -> list[Change]:
    return list(keys({"report": "promotions", "promotion_id": row["promotion_id"]}))


class SalesProjection(SqlProjection):
    name = "sales"
    code_version = 1
    rebuild_weight = 4.0  # its share of a rebuild of all reports
    schema_sql = SCHEMA
    event_types = RETURN_EVENTS | {
        "order.placed",
        "order.delivered",
        "order.cancelled",
        "promotion.planned",
        "promotion.cost_incurred",
        "promotion.cost_released",
    }
    # Order matters: an order is known before its delivery is counted, a return's lines
    # before its approval takes them back.
    statements = (
        Statement(frozenset({"order.placed"}), ORDER_PLACED, _order_keys),
        Statement(frozenset({"order.delivered"}), ORDER_DELIVERED, _order_keys),
        Statement(frozenset({"order.cancelled"}), ORDER_CANCELLED, _order_keys),
        Statement(frozenset({"return.requested"}), RETURN_REQUESTED, _return_keys),
        Statement(frozenset({"return.inspected"}), RETURN_INSPECTED, _return_keys),
        Statement(frozenset({"return.approved"}), RETURN_APPROVED, _approved_keys),
        Statement(frozenset({"return.rejected"}), RETURN_REJECTED, _return_keys),
        Statement(frozenset({"return.resolved"}), RETURN_RESOLVED, _return_keys),
        Statement(frozenset({"return.goods_received"}), RETURN_GOODS_RECEIVED, _return_keys),
        Statement(frozenset({"corrective_action.assigned"}), CORRECTIVE_ACTION, _return_keys),
        Statement(frozenset({"promotion.planned"}), PROMOTION_PLANNED, _promotion_keys),
        Statement(frozenset({"promotion.cost_incurred", "promotion.cost_released"}), PROMOTION_COST, _promotion_keys),
    )
