"""Territory lines for field work (docs/domain.md): who may act on, read or approve what.

The rule is the platform's (`salesplatform.territory`): rep → own customers, routes and visits;
supervisor → the team's (same district); area manager → the same area; sales manager and
general manager → everything; system → acts for other systems and timers. The field's variant:
the clerk reads everything and changes nothing. Anything outside the line is refused with a
reason (403 `outside_line`), never filtered silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from salesplatform.errors import PermissionDenied
from salesplatform.events import Actor, Role
from salesplatform.territory import ROLE_NOT_ALLOWED, Place, reach_of, require_filter_in_line, require_in_line

# Where a thing belongs: the rep who owns it and the district/area it lies in.
Territory = Place


def territory_of(row: Mapping[str, Any]) -> Territory:
    """Where a row of the directory or the visit service's books belongs (its rep, district
    and area columns)."""
    return Territory(row["rep_id"], row["district_id"], row["area_id"])


# Beyond the line of command, reading only: the clerk, who keeps the archives.
FIELD_READERS = frozenset({Role.clerk})


def ensure_can_act(actor: Actor, where: Territory, what: str) -> None:
    """Changes: the owner rep, the team's supervisor, the area manager, managers, systems."""
    if actor.role in (Role.clerk, Role.inspector):
        raise PermissionDenied(f"a {actor.role} may read but not change {what}", code=ROLE_NOT_ALLOWED)
    require_in_line(actor, where, what)


def ensure_can_read(actor: Actor, where: Territory, what: str) -> None:
    """Reads: everyone in the line, and the clerk (who keeps the archives)."""
    require_in_line(actor, where, what, readers=FIELD_READERS)


def ensure_can_approve(actor: Actor, where: Territory, what: str) -> None:
    """Approvals: the supervisor of the district or above in the line; never clerks or reps."""
    if not actor.at_least(Role.supervisor):
        raise PermissionDenied(
            f"only a supervisor or above may approve {what}; a {actor.role} may not", code=ROLE_NOT_ALLOWED
        )
    require_in_line(actor, where, what)


def ensure_supervises(actor: Actor, where: Territory, what: str) -> None:
    """Supervisor work (coaching, spot checks): supervisor or above, in the line."""
    if not actor.at_least(Role.supervisor):
        raise PermissionDenied(f"{what} is recorded by supervisors and above", code=ROLE_NOT_ALLOWED)
    require_in_line(actor, where, what)


@dataclass(frozen=True)
class ListScope:
    """The part of the territory a list query covers (None: no limit on that level)."""

    district_id: str | None
    area_id: str | None


class _KnownDistrict:
    """The one district a list asks for, with the area the directory says it lies in."""

    def __init__(self, district_area: str | None) -> None:
        self.district_area = district_area

    async def place_of_rep(self, rep_id: str) -> Place | None:
        return None

    async def area_of_district(self, district_id: str) -> str | None:
        return self.district_area


async def list_scope(
    actor: Actor,
    district_id: str | None,
    area_id: str | None,
    district_area: str | None,
    what: str,
) -> ListScope:
    """Lists that span customers (approval queues, open complaints, key accounts): a supervisor
    lists the team's district, an area manager the area, managers and the clerk anything.
    Asking for a district or area not wholly within the line is refused; `district_area` is the
    area the asked-for district lies in (from the directory)."""
    if actor.role is Role.rep:
        raise PermissionDenied(f"{what} is listed for supervisors and above; a rep may not", code=ROLE_NOT_ALLOWED)
    reach = reach_of(actor, readers=FIELD_READERS)
    asked = Place(district_id=district_id, area_id=area_id)
    await require_filter_in_line(reach, asked, _KnownDistrict(district_area))
    conditions = dict(reach.conditions(asked))
    return ListScope(conditions.get("district_id"), conditions.get("area_id"))
