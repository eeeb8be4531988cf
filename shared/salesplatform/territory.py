"""The line of command: which actor may act on or read what, by where it lies in the territory.

A rep reaches their own customers (and what belongs to them), a supervisor the team's district,
an area manager the area; sales and general managers and other systems reach everything. A
service names its variants in one argument: the roles that read (or also change) everything
on top of those (`readers`: the archive clerk, the inspector), and whether a rep reaches the
whole own district (`reps_reach_district`: the release pool, a sales office).

Every refusal is a 403 with one of three codes, the same in every service:

- `outside_line`: the thing, or the filter asked for, lies outside the actor's line;
- `no_territory`: the token names no district (a supervisor) or no area (an area manager),
  so the actor's line is unknown;
- `role_not_allowed`: the role has no rights on this at all.

A filter is never narrowed: asking for a part of the territory that does not lie wholly
within the line (a supervisor asking for the whole area, a rep for the district, an area
manager for a district of another area) is refused, not answered with the part that fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from salesplatform.errors import PermissionDenied
from salesplatform.events import Actor, Role

OUTSIDE_LINE = "outside_line"
NO_TERRITORY = "no_territory"
ROLE_NOT_ALLOWED = "role_not_allowed"

# Who reaches everything, in every service.
WHOLE_COMPANY = frozenset({Role.sales_manager, Role.general_manager, Role.system})


@dataclass(frozen=True)
class Place:
    """Where a thing lies: the rep it belongs to and its district and area (None: unknown or
    none). As a filter: the rep, district or area asked for."""

    rep_id: str | None = None
    district_id: str | None = None
    area_id: str | None = None


@dataclass(frozen=True)
class Reach:
    """The part of the territory an actor's line covers: one rep's things, one district or one
    area; all None is everything."""

    rep_id: str | None = None
    district_id: str | None = None
    area_id: str | None = None

    @property
    def everything(self) -> bool:
        return self.rep_id is None and self.district_id is None and self.area_id is None

    def covers(self, place: Place) -> bool:
        if self.rep_id is not None:
            return place.rep_id == self.rep_id
        if self.district_id is not None:
            return place.district_id == self.district_id
        if self.area_id is not None:
            return place.area_id == self.area_id
        return True

    def conditions(self, asked: Place = Place()) -> list[tuple[str, str]]:
        """The query filter, as (column, value) pairs: the reach's own level and the filters
        asked for (checked with `require_filter_in_line` first)."""
        out = [
            (column, value)
            for column, value in (("rep_id", self.rep_id), ("district_id", self.district_id), ("area_id", self.area_id))
            if value is not None
        ]
        for column, value in (("rep_id", asked.rep_id), ("district_id", asked.district_id), ("area_id", asked.area_id)):
            if value is not None and (column, value) not in out:
                out.append((column, value))
        return out


def reach_of(actor: Actor, *, readers: frozenset[Role] = frozenset(), reps_reach_district: bool = False) -> Reach:
    """The actor's line. Refused when the role has none here, or when the token does not say
    where the actor works."""
    if actor.role in WHOLE_COMPANY or actor.role in readers:
        return Reach()
    if actor.role is Role.rep:
        if reps_reach_district:
            if not actor.district:
                raise PermissionDenied(f"rep {actor.id}'s token names no district", code=NO_TERRITORY)
            return Reach(district_id=actor.district)
        return Reach(rep_id=actor.id)
    if actor.role is Role.supervisor:
        if not actor.district:
            raise PermissionDenied(f"supervisor {actor.id}'s token names no district", code=NO_TERRITORY)
        return Reach(district_id=actor.district)
    if actor.role is Role.area_manager:
        if not actor.area:
            raise PermissionDenied(f"area manager {actor.id}'s token names no area", code=NO_TERRITORY)
        return Reach(area_id=actor.area)
    raise PermissionDenied(f"a {actor.role} has no rights here", code=ROLE_NOT_ALLOWED)


def in_line(actor: Actor, place: Place, *, readers: frozenset[Role] = frozenset()) -> bool:
    """Whether `place` lies within the actor's line (False also where the line is unknown)."""
    try:
        return reach_of(actor, readers=readers).covers(place)
    except PermissionDenied:
        return False


def require_in_line(
    actor: Actor,
    place: Place,
    what: str = "this",
    *,
    readers: frozenset[Role] = frozenset(),
    reps_reach_district: bool = False,
) -> None:
    """403 unless `place` (where `what` lies) is within the actor's line."""
    reach = reach_of(actor, readers=readers, reps_reach_district=reps_reach_district)
    if not reach.covers(place):
        raise PermissionDenied(_reason(actor, reach, place, what), code=OUTSIDE_LINE)


class Directory(Protocol):
    """Where reps and districts lie, from a service's own copy of the territory."""

    async def place_of_rep(self, rep_id: str) -> Place | None: ...

    async def area_of_district(self, district_id: str) -> str | None: ...


async def require_filter_in_line(reach: Reach, asked: Place, directory: Directory) -> None:
    """403 unless every filter asked for (a rep, a district, an area) names a part of the
    territory wholly within `reach`; never narrowed to the part that fits."""
    if reach.everything:
        return
    if asked.area_id is not None and asked.area_id != reach.area_id:
        raise _outside(f"area {asked.area_id}", reach)
    if asked.district_id is not None:
        if reach.area_id is not None:
            if await directory.area_of_district(asked.district_id) != reach.area_id:
                raise _outside(f"district {asked.district_id}", reach)
        elif asked.district_id != reach.district_id:
            raise _outside(f"district {asked.district_id}", reach)
    if asked.rep_id is not None and asked.rep_id != reach.rep_id:
        place = None if reach.rep_id is not None else await directory.place_of_rep(asked.rep_id)
        if place is None or not reach.covers(Place(asked.rep_id, place.district_id, place.area_id)):
            raise _outside(f"rep {asked.rep_id}", reach)


def _outside(asked: str, reach: Reach) -> PermissionDenied:
    if reach.rep_id is not None:
        line = f"rep {reach.rep_id}'s own"
    elif reach.district_id is not None:
        line = f"district {reach.district_id}"
    else:
        line = f"area {reach.area_id}"
    return PermissionDenied(f"{asked} is not wholly within {line}", code=OUTSIDE_LINE)


def _reason(actor: Actor, reach: Reach, place: Place, what: str) -> str:
    if reach.rep_id is not None:
        return f"{what} belongs to rep {place.rep_id}, not to rep {actor.id}"
    if reach.district_id is not None:
        return (
            f"{what} lies in district {place.district_id}, outside {actor.role} {actor.id}'s district {actor.district}"
        )
    return f"{what} lies in area {place.area_id}, outside area manager {actor.id}'s area {actor.area}"
