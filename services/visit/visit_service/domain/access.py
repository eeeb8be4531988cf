"""Territory lines (docs/domain.md): who may act on, read or approve what.

rep → own customers, routes and visits; supervisor → the team's (same district); area manager
→ the same area; sales manager and general manager → everything; clerk → reads everything,
changes nothing; system → acts for other systems and timers. Anything outside the line is
refused with a reason (403), never filtered silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from salesplatform.errors import PermissionDenied
from salesplatform.events import Actor, Role


@dataclass(frozen=True)
class Territory:
    """Where a thing belongs: the rep who owns it and the district/area it lies in."""

    rep_id: str | None
    district_id: str | None
    area_id: str | None


def _in_line(actor: Actor, where: Territory) -> bool:
    if actor.role is Role.system or actor.is_manager:
        return True
    if actor.role is Role.rep:
        return where.rep_id is not None and where.rep_id == actor.id
    if actor.role is Role.supervisor:
        return actor.district is not None and where.district_id == actor.district
    if actor.role is Role.area_manager:
        return actor.area is not None and where.area_id == actor.area
    return False


def ensure_can_act(actor: Actor, where: Territory, what: str) -> None:
    """Changes: the owner rep, the team's supervisor, the area manager, managers, systems."""
    if actor.role in (Role.clerk, Role.inspector):
        raise PermissionDenied(f"a {actor.role} may read but not change {what}", code="read_only_role")
    if not _in_line(actor, where):
        raise PermissionDenied(_reason(actor, where, what), code="out_of_line")


def ensure_can_read(actor: Actor, where: Territory, what: str) -> None:
    """Reads: everyone in the line, and the clerk (who keeps the archives)."""
    if actor.role is Role.clerk:
        return
    if not _in_line(actor, where):
        raise PermissionDenied(_reason(actor, where, what), code="out_of_line")


def ensure_can_approve(actor: Actor, where: Territory, what: str) -> None:
    """Approvals: the supervisor of the district or above in the line; never clerks or reps."""
    if not actor.at_least(Role.supervisor):
        raise PermissionDenied(
            f"only a supervisor or above may approve {what}; a {actor.role} may not",
            code="approver_role_required",
        )
    if not _in_line(actor, where):
        raise PermissionDenied(_reason(actor, where, what), code="out_of_line")


def ensure_supervises(actor: Actor, where: Territory, what: str) -> None:
    """Supervisor work (coaching, spot checks): supervisor or above, in the line."""
    if not actor.at_least(Role.supervisor):
        raise PermissionDenied(f"{what} is recorded by supervisors and above", code="supervisor_role_required")
    if not _in_line(actor, where):
        raise PermissionDenied(_reason(actor, where, what), code="out_of_line")


@dataclass(frozen=True)
class ListScope:
    """The part of the territory a list query covers (None: no limit on that level)."""

    district_id: str | None
    area_id: str | None


def list_scope(
    actor: Actor,
    district_id: str | None,
    area_id: str | None,
    district_area: str | None,
    what: str,
) -> ListScope:
    """Lists that span customers (approval queues, open complaints, key accounts): a supervisor
    lists the team's district, an area manager the area, managers and the clerk anything.
    Asking for a district or area outside the line is refused; `district_area` is the area the
    asked-for district lies in (from the directory)."""
    if actor.role is Role.clerk or actor.is_manager or actor.role is Role.system:
        return ListScope(district_id, area_id)
    if actor.role is Role.supervisor:
        if actor.district is None:
            raise PermissionDenied(f"supervisor {actor.id} has no district", code="out_of_line")
        if district_id not in (None, actor.district) or area_id is not None:
            raise PermissionDenied(
                f"supervisor {actor.id} lists {what} of district {actor.district} only", code="out_of_line"
            )
        return ListScope(actor.district, None)
    if actor.role is Role.area_manager:
        if actor.area is None:
            raise PermissionDenied(f"area manager {actor.id} has no area", code="out_of_line")
        if area_id not in (None, actor.area) or (district_id is not None and district_area != actor.area):
            raise PermissionDenied(
                f"area manager {actor.id} lists {what} of area {actor.area} only", code="out_of_line"
            )
        return ListScope(district_id, actor.area)
    raise PermissionDenied(f"{what} is listed for supervisors and above; a {actor.role} may not", code="out_of_line")


def _reason(actor: Actor, where: Territory, what: str) -> str:
    match actor.role:
        case Role.rep:
            return f"{what} belongs to rep {where.rep_id}, not to rep {actor.id}"
        case Role.supervisor:
            return (
                f"{what} lies in district {where.district_id},"
                f" outside supervisor {actor.id}'s district {actor.district}"
            )
        case Role.area_manager:
            return f"{what} lies in area {where.area_id}, outside area manager {actor.id}'s area {actor.area}"
        case _:
            return f"a {actor.role} has no rights on {what}"
