"""Names instead of ids, read through the services' APIs.

The territory tree and the staff (customer service: `/territory`, `/staff`) and the SKUs (orders
service: `/catalogue/skus`) are open to every signed-in person, so one copy serves every viewer;
it is read again after `REFRESH_SECONDS`, or at once when a page meets an id it does not know
(at most every `MISS_REFRESH_SECONDS`). Customer names are read card by card
(`/customers/{id}`) with the viewer's own token and kept per viewer, so a viewer is only ever
told the names the customer service lets them read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from console_service.adapters.services import ApiError, Services
from salesplatform.events import Actor, Role

REFRESH_SECONDS = 60.0
MISS_REFRESH_SECONDS = 5.0
CUSTOMER_NAMES_KEPT = 20_000


@dataclass(frozen=True)
class StaffMember:
    staff_id: str
    name: str
    role: str
    district_id: str | None
    area_id: str | None


@dataclass
class Names:
    areas: dict[str, str] = field(default_factory=dict)
    districts: dict[str, tuple[str, str]] = field(default_factory=dict)  # id → (name, area id)
    area_order: list[str] = field(default_factory=list)
    staff: dict[str, StaffMember] = field(default_factory=dict)
    skus: dict[str, tuple[str, str]] = field(default_factory=dict)  # sku → (name, product group)

    def area(self, area_id: str | None) -> str:
        return self.areas.get(area_id or "", area_id or "")

    def district(self, district_id: str | None) -> str:
        found = self.districts.get(district_id or "")
        return found[0] if found else district_id or ""

    def person(self, staff_id: str | None) -> str:
        found = self.staff.get(staff_id or "")
        return found.name if found else staff_id or ""

    def sku(self, sku: str | None) -> str:
        found = self.skus.get(sku or "")
        return found[0] if found else sku or ""

    def knows(self, kind: str, key: str | None) -> bool:
        if not key:
            return True
        tables: dict[str, Mapping[str, Any]] = {
            "area": self.areas,
            "district": self.districts,
            "rep": self.staff,
            "sku": self.skus,
        }
        return key in tables[kind]

    def reps(self) -> list[StaffMember]:
        return sorted((s for s in self.staff.values() if s.role == "rep"), key=lambda s: s.staff_id)


@dataclass(frozen=True)
class Option:
    value: str
    label: str


@dataclass(frozen=True)
class TerritoryOptions:
    """What the territory filter offers a viewer: the own part of the tree."""

    areas: list[Option]
    districts: list[Option]
    reps: list[Option]


def territory_options(actor: Actor, names: Names) -> TerritoryOptions:
    """The areas, districts and reps to offer in a viewer's filters: a rep only themselves, a
    supervisor the own district, an area manager the own area, the others the whole tree.
    This only shapes the form; what may be read is the APIs' decision (a filter reaching
    outside the viewer's line is answered with their 403, shown as such)."""
    area_ids = list(names.area_order)
    district_ids = sorted(names.districts)
    reps = names.reps()
    if actor.role == Role.rep:
        area_ids = [a for a in area_ids if a == actor.area]
        district_ids = [d for d in district_ids if d == actor.district]
        reps = [r for r in reps if r.staff_id == actor.id]
    elif actor.role == Role.supervisor:
        area_ids = [a for a in area_ids if a == actor.area]
        district_ids = [d for d in district_ids if d == actor.district]
        reps = [r for r in reps if r.district_id == actor.district]
    elif actor.role == Role.area_manager:
        area_ids = [a for a in area_ids if a == actor.area]
        district_ids = [d for d in district_ids if names.districts[d][1] == actor.area]
        reps = [r for r in reps if r.area_id == actor.area]
    return TerritoryOptions(
        areas=[Option(a, names.area(a)) for a in area_ids],
        districts=[Option(d, names.district(d)) for d in district_ids],
        reps=[Option(r.staff_id, r.name) for r in reps],
    )


class Directory:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._names = Names()
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()
        self._customers: dict[tuple[str, str], str] = {}

    async def names(self, token: str, *, missing: Iterable[tuple[str, str | None]] = ()) -> Names:
        """The names, read again when old, or when one of `missing` ((kind, id) pairs) is not
        known yet and the last reading is a few seconds old."""
        now = time.monotonic()
        stale = now - self._loaded_at > REFRESH_SECONDS
        unknown = any(not self._names.knows(kind, key) for kind, key in missing)
        if stale or (unknown and now - self._loaded_at > MISS_REFRESH_SECONDS):
            async with self._lock:
                if self._loaded_at <= now - (0 if stale else MISS_REFRESH_SECONDS):
                    await self._load(token)
        return self._names

    async def _load(self, token: str) -> None:
        territory, staff, skus = await asyncio.gather(
            self._services.get("customer", "/territory", token),
            self._services.get("customer", "/staff", token, {"active": "true"}),
            self._services.get("orders", "/catalogue/skus", token),
        )
        names = Names()
        for division in territory.get("divisions", []):
            for area in division.get("areas", []):
                names.areas[area["area_id"]] = area["name"]
                names.area_order.append(area["area_id"])
                for district in area.get("districts", []):
                    names.districts[district["district_id"]] = (district["name"], area["area_id"])
        for s in staff.get("items", []):
            names.staff[s["staff_id"]] = StaffMember(
                s["staff_id"], s["name"], s["role"], s.get("district_id"), s.get("area_id")
            )
        for s in skus.get("skus", []):
            names.skus[s["sku"]] = (s["name"], s.get("product_group") or "")
        self._names = names
        self._loaded_at = time.monotonic()

    async def customer_names(self, customer_ids: Iterable[str], viewer: str, token: str) -> dict[str, str]:
        """Names of customers shown to a viewer; an id the viewer may not read (or that is
        unknown) stays an id."""
        wanted = {c for c in customer_ids if c}
        unknown = [c for c in wanted if (viewer, c) not in self._customers]

        async def one(customer_id: str) -> None:
            try:
                card = await self._services.get("customer", f"/customers/{customer_id}", token)
            except ApiError:
                return
            name = card.get("name")
            if name:
                if len(self._customers) >= CUSTOMER_NAMES_KEPT:
                    self._customers.clear()
                self._customers[(viewer, customer_id)] = str(name)

        await asyncio.gather(*(one(c) for c in unknown))
        return {c: self._customers.get((viewer, c), c) for c in wanted}
