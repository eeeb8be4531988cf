"""The catalogue: SKUs with a price list per region (片区) and a floor price, and the required-SKU
list (必备SKU) of each channel."""

from __future__ import annotations

from collections.abc import Iterable

from orders_service.domain.events import RequiredSkusSet, SkuDefined, SkuPriceSet
from salesplatform.aggregate import Aggregate
from salesplatform.errors import DomainError
from salesplatform.events import Event


def _check_prices(list_price_fen: int, floor_price_fen: int) -> None:
    if floor_price_fen > list_price_fen:
        raise DomainError(
            f"floor price {floor_price_fen} is above list price {list_price_fen}",
            code="floor_above_list",
            field="floor_price_fen",
        )


class Sku(Aggregate):
    stream_prefix = "sku"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.name = ""
        self.brand = ""
        self.product_group = ""
        self.package = ""
        self.list_price_fen = 0
        self.floor_price_fen = 0
        self.area_prices: dict[str, tuple[int, int]] = {}

    def apply(self, event: Event) -> None:
        match event:
            case SkuDefined():
                self.name, self.brand = event.name, event.brand
                self.product_group, self.package = event.product_group, event.package
                self.list_price_fen, self.floor_price_fen = event.list_price_fen, event.floor_price_fen
            case SkuPriceSet(area_id=None):
                self.list_price_fen, self.floor_price_fen = event.list_price_fen, event.floor_price_fen
            case SkuPriceSet():
                assert event.area_id is not None
                self.area_prices[event.area_id] = (event.list_price_fen, event.floor_price_fen)

    def prices_for(self, area_id: str | None) -> tuple[int, int]:
        """(list, floor) in the customer's area; the default list where the area has none."""
        if area_id is not None and area_id in self.area_prices:
            return self.area_prices[area_id]
        return self.list_price_fen, self.floor_price_fen

    def define(
        self,
        *,
        name: str,
        brand: str,
        product_group: str,
        package: str,
        list_price_fen: int,
        floor_price_fen: int,
    ) -> None:
        if self.exists:
            raise DomainError(f"SKU {self.id} is already defined", code="sku_exists", field="sku")
        _check_prices(list_price_fen, floor_price_fen)
        self.record(
            SkuDefined(
                sku=self.id,
                name=name,
                brand=brand,
                product_group=product_group,
                package=package,
                list_price_fen=list_price_fen,
                floor_price_fen=floor_price_fen,
            )
        )

    def set_price(self, *, area_id: str | None, list_price_fen: int, floor_price_fen: int) -> None:
        _check_prices(list_price_fen, floor_price_fen)
        if self.prices_for(area_id) == (list_price_fen, floor_price_fen) and (
            area_id is None or area_id in self.area_prices
        ):
            return  # nothing changes: no event
        self.record(
            SkuPriceSet(
                sku=self.id,
                area_id=area_id,
                list_price_fen=list_price_fen,
                floor_price_fen=floor_price_fen,
            )
        )


class RequiredSkuList(Aggregate):
    """必备SKU of one channel: the SKUs every outlet of the channel should carry."""

    stream_prefix = "required_skus"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.skus: tuple[str, ...] = ()

    def apply(self, event: Event) -> None:
        if isinstance(event, RequiredSkusSet):
            self.skus = event.skus

    def set(self, skus: Iterable[str], known: set[str]) -> None:
        wanted = tuple(dict.fromkeys(skus))
        unknown = [s for s in wanted if s not in known]
        if unknown:
            raise DomainError(f"unknown SKUs: {', '.join(unknown)}", code="unknown_sku", field="skus")
        if self.exists and wanted == self.skus:
            return
        self.record(RequiredSkusSet(channel=self.id, skus=wanted))
