"""The lookups the bulk history import and the visit reactor read by this name; they are
functions of `orders_service.queries`, where every read-side lookup of the service lives."""

from __future__ import annotations

from orders_service.queries.catalogue import product_groups
from orders_service.queries.customers import customer_card, customer_cards
from orders_service.queries.orders import orders_with_heads
from orders_service.queries.receivables import open_invoices_of

__all__ = ["customer_card", "customer_cards", "open_invoices_of", "orders_with_heads", "product_groups"]
