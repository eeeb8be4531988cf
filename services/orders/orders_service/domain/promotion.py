"""Promotions (促销): a period, SKUs, channels, a discount or a gift rule (赠品), and a cost budget
(促销费用预算) that no promotion spends past."""

from __future__ import annotations

from datetime import date

from orders_service.domain.events import (
    GiftRule,
    PromotionCostIncurred,
    PromotionCostReleased,
    PromotionPlanned,
)
from salesplatform.aggregate import Aggregate
from salesplatform.errors import DomainError
from salesplatform.events import Event


class Promotion(Aggregate):
    stream_prefix = "promotion"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.name = ""
        self.starts_on = date.min
        self.ends_on = date.min
        self.skus: frozenset[str] = frozenset()
        self.channels: frozenset[str] = frozenset()
        self.discount_percent: int | None = None
        self.gift_rule: GiftRule | None = None
        self.budget_fen = 0
        self.costs: dict[str, int] = {}  # order_id → cost counted against the budget

    @property
    def spent_fen(self) -> int:
        return sum(self.costs.values())

    @property
    def remaining_fen(self) -> int:
        return self.budget_fen - self.spent_fen

    def apply(self, event: Event) -> None:
        match event:
            case PromotionPlanned():
                self.name = event.name
                self.starts_on, self.ends_on = event.starts_on, event.ends_on
                self.skus, self.channels = frozenset(event.skus), frozenset(event.channels)
                self.discount_percent, self.gift_rule = event.discount_percent, event.gift_rule
                self.budget_fen = event.budget_fen
            case PromotionCostIncurred():
                self.costs[event.order_id] = self.costs.get(event.order_id, 0) + event.cost_fen
            case PromotionCostReleased():
                self.costs.pop(event.order_id, None)

    def plan(
        self,
        *,
        name: str,
        starts_on: date,
        ends_on: date,
        skus: list[str],
        channels: list[str],
        discount_percent: int | None,
        gift_rule: GiftRule | None,
        budget_fen: int,
    ) -> None:
        if self.exists:
            raise DomainError(f"promotion {self.id} is already planned", code="promotion_exists")
        if ends_on < starts_on:
            raise DomainError("a promotion cannot end before it starts", code="period_invalid", field="ends_on")
        if (discount_percent is None) == (gift_rule is None):
            raise DomainError("give either a discount or a gift rule", code="promotion_terms_invalid")
        self.record(
            PromotionPlanned(
                promotion_id=self.id,
                name=name,
                starts_on=starts_on,
                ends_on=ends_on,
                skus=tuple(dict.fromkeys(skus)),
                channels=tuple(dict.fromkeys(channels)),
                discount_percent=discount_percent,
                gift_rule=gift_rule,
                budget_fen=budget_fen,
            )
        )

    def covers(self, sku: str, channel: str | None, day: date) -> bool:
        return (
            self.starts_on <= day <= self.ends_on
            and sku in self.skus
            and (not self.channels or channel in self.channels)
        )

    def discounted(self, unit_price_fen: int) -> int:
        """The unit price after the discount, rounded down to whole fen in the customer's favour."""
        assert self.discount_percent is not None
        return unit_price_fen * (100 - self.discount_percent) // 100

    def gifts_for(self, quantity: int) -> int:
        assert self.gift_rule is not None
        return quantity // self.gift_rule.buy * self.gift_rule.get

    def incur(self, order_id: str, cost_fen: int) -> None:
        if cost_fen <= 0:
            return
        if cost_fen > self.remaining_fen:
            raise DomainError(
                f"promotion {self.id} has {self.remaining_fen} fen left, the order costs {cost_fen}",
                code="promotion_budget_exhausted",
            )
        self.record(PromotionCostIncurred(promotion_id=self.id, order_id=order_id, cost_fen=cost_fen))

    def release(self, order_id: str) -> None:
        cost = self.costs.get(order_id, 0)
        if cost:
            self.record(PromotionCostReleased(promotion_id=self.id, order_id=order_id, cost_fen=cost))
