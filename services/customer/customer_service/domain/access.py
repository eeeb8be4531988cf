"""The line of command over customer cards (客户档案 ... 严格的查阅和利用的管理方法).

A rep sees only own customers, a supervisor the team's (same district), an area manager the
area's; sales and general managers and the archive clerk see all; other systems act for the
company. Restricted personal notes are for managers (sales manager and up) and the clerk.
Out-of-line access is refused with a reason, never filtered silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from salesplatform.errors import PermissionDenied
from salesplatform.events import Actor, Role

SEES_ALL = {Role.sales_manager, Role.general_manager, Role.clerk, Role.system}


@dataclass(frozen=True)
class Line:
    """Where a customer sits in the territory and whose it is."""

    district_id: str | None
    area_id: str | None
    rep_id: str | None


def refusal(actor: Actor, line: Line) -> PermissionDenied | None:
    """Why `actor` may not touch a customer in `line`, or None if it may."""
    if actor.role in SEES_ALL:
        return None
    if actor.role == Role.rep:
        if line.rep_id is not None and line.rep_id == actor.id:
            return None
        return PermissionDenied(f"rep {actor.id} may only work with own customers", code="not_your_customer")
    if actor.role == Role.supervisor:
        if actor.district is not None and line.district_id == actor.district:
            return None
        return PermissionDenied(
            f"supervisor of district {actor.district} may not reach a customer of district {line.district_id}",
            code="outside_district",
        )
    if actor.role == Role.area_manager:
        if actor.area is not None and line.area_id == actor.area:
            return None
        return PermissionDenied(
            f"area manager of {actor.area} may not reach a customer of area {line.area_id}", code="outside_area"
        )
    return PermissionDenied(f"role {actor.role} has no access to customer cards", code="role_not_in_line")


def require_in_line(actor: Actor, line: Line) -> None:
    denied = refusal(actor, line)
    if denied is not None:
        raise denied


def require_over_district(actor: Actor, district_id: str | None, area_id: str | None) -> None:
    """Supervisor of that district, or above in line (approvals, assignments, territory)."""
    if actor.role == Role.rep or actor.role == Role.clerk:
        raise PermissionDenied(f"role {actor.role} may not decide this", code="role_not_allowed")
    require_in_line(actor, Line(district_id, area_id, rep_id=None))


def sees_restricted(actor: Actor) -> bool:
    """Personal notes (personality, hobbies, family, education, age) are for managers and the
    archive clerk only."""
    return actor.is_manager or actor.role == Role.clerk
