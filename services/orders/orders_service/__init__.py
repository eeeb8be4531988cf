"""The orders service: catalogue, orders, deliveries, promotions, receivables and returns."""
