"""The line of command over customer cards (客户档案 ... 严格的查阅和利用的管理方法).

The rule is the platform's (`salesplatform.territory`): a rep reaches own customers, a
supervisor the team's district, an area manager the area, sales and general managers and other
systems all. The archive's variant: the archive clerk reads and keeps every card. Restricted
personal notes are for managers (sales manager and up) and the clerk. Out-of-line access is
refused with a reason, never filtered silently.
"""

from __future__ import annotations

from salesplatform.errors import PermissionDenied
from salesplatform.events import Actor, Role
from salesplatform.territory import ROLE_NOT_ALLOWED, Place, Reach, reach_of
from salesplatform.territory import require_in_line as _require_in_line

# Beyond the line of command: the clerk who keeps the archive.
ARCHIVE_KEEPERS = frozenset({Role.clerk})


def customer_reach(actor: Actor) -> Reach:
    return reach_of(actor, readers=ARCHIVE_KEEPERS)


def require_in_line(actor: Actor, place: Place, what: str = "the customer") -> None:
    _require_in_line(actor, place, what, readers=ARCHIVE_KEEPERS)


def require_over_district(actor: Actor, district_id: str | None, area_id: str | None) -> None:
    """Supervisor of that district, or above in line (approvals, assignments, territory)."""
    if actor.role == Role.rep or actor.role == Role.clerk:
        raise PermissionDenied(f"role {actor.role} may not decide this", code=ROLE_NOT_ALLOWED)
    require_in_line(actor, Place(district_id=district_id, area_id=area_id))


def sees_restricted(actor: Actor) -> bool:
    """Personal notes (personality, hobbies, family, education, age) are for managers and the
    archive clerk only."""
    return actor.is_manager or actor.role == Role.clerk
