"""The approval queues of a supervisor or manager, and their decisions.

Three queues, each the service's own answer for the viewer's token: orders waiting for the
role's approval (orders `/approvals?role`), returns waiting for the role's decision (orders
`/approvals/returns?role`) and key-account and unplanned visits waiting for approval (visit
`/approvals/queue`). A decision sends the documented command as the viewer
(`approve_order` / `reject_order`, `approve_return` / `reject_return`, `approve_visit` /
`reject_visit`); whether the viewer may decide is the service's rule, and its refusal is shown.

The 24-hour SLA: the visit service gives each request its `due_at`; an order waits from the
moment it was placed (its approval was asked for then), a return from its request; both are
due 24 hours later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from console_service.adapters.identity import Viewer
from console_service.adapters.services import ApiError, Services
from console_service.application.directory import Directory
from salesplatform.events import Role, rank

APPROVAL_SLA = timedelta(hours=24)
QUEUE_ROLES = (Role.supervisor, Role.area_manager, Role.sales_manager, Role.general_manager)

# kind → (service, approve command, reject command, id field)
DECISIONS: dict[str, tuple[str, str, str, str]] = {
    "order": ("orders", "approve_order", "reject_order", "order_id"),
    "return": ("orders", "approve_return", "reject_return", "return_id"),
    "visit": ("visit", "approve_visit", "reject_visit", "visit_id"),
}


@dataclass
class Item:
    kind: str  # order | return | visit
    id: str
    customer: str
    rep: str
    requested_at: datetime | None
    due_at: datetime | None
    overdue: bool
    reasons: list[str] = field(default_factory=list)  # terms of the `approval_reason` kind
    amount_fen: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Queue:
    kind: str
    items: list[Item] = field(default_factory=list)
    error: ApiError | None = None


@dataclass
class Queues:
    role: str
    roles: list[str]
    queues: list[Queue]


def queue_roles(viewer_role: Role) -> list[str]:
    """The queues a viewer can pick: the own role's and those below it in the line of
    command (the platform's ranks); the orders service answers for each."""
    return [r.value for r in QUEUE_ROLES if 0 < rank(r) <= rank(viewer_role)]


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _due(requested: datetime | None) -> datetime | None:
    return requested + APPROVAL_SLA if requested else None


async def load(services: Services, directory: Directory, viewer: Viewer, role: str, now: datetime) -> Queues:
    """The queues of `role` (default the viewer's own), as the services answer the viewer: a
    queue the viewer may not see is the service's 403, shown in its place."""
    roles = queue_roles(viewer.actor.role)
    chosen = role if role in {r.value for r in Role} else viewer.actor.role.value
    token = viewer.token
    queues = [Queue("order"), Queue("return"), Queue("visit")]
    raw: dict[str, list[dict[str, Any]]] = {}
    for queue, (service, path, params, field_name) in zip(
        queues,
        (
            ("orders", "/approvals", {"role": chosen}, "orders"),
            ("orders", "/approvals/returns", {"role": chosen}, "returns"),
            ("visit", "/approvals/queue", {}, "approvals"),
        ),
        strict=True,
    ):
        try:
            raw[queue.kind] = (await services.get(service, path, token, params)).get(field_name, [])
        except ApiError as exc:
            queue.error = exc
            raw[queue.kind] = []
    rows = [r for rs in raw.values() for r in rs]
    names = await directory.names(token, missing=[("rep", r.get("rep_id")) for r in rows])
    customers = await directory.customer_names([r.get("customer_id") or "" for r in rows], viewer.actor.id, token)
    for row in raw["order"]:
        requested = _when(row.get("placed_at"))
        due = _due(requested)
        queues[0].items.append(
            Item(
                "order",
                row["order_id"],
                customers.get(row.get("customer_id") or "", row.get("customer_id") or ""),
                names.person(row.get("rep_id")),
                requested,
                due,
                bool(due and due <= now),
                reasons=list(row.get("approval_reasons") or []),
                amount_fen=row.get("amount_fen"),
                detail={"required_role": row.get("required_role"), "business_date": row.get("business_date")},
            )
        )
    for row in raw["return"]:
        requested = _when(row.get("requested_at"))
        due = _due(requested)
        queues[1].items.append(
            Item(
                "return",
                row["return_id"],
                customers.get(row.get("customer_id") or "", row.get("customer_id") or ""),
                names.person(row.get("rep_id")),
                requested,
                due,
                bool(due and due <= now),
                amount_fen=row.get("amount_fen"),
                detail={
                    "reason": row.get("reason"),
                    "scope": row.get("scope"),
                    "detail": row.get("detail"),
                    "inspection_required": row.get("inspection_required"),
                    "inspection_confirmed": row.get("inspection_confirmed"),
                    "lines": [
                        {"sku": names.sku(line["sku"]), "quantity": line["quantity"], "amount_fen": line["amount_fen"]}
                        for line in row.get("lines", [])
                    ],
                },
            )
        )
    for row in raw["visit"]:
        approval = row.get("approval") or {}
        requested = _when(approval.get("requested_at"))
        due = _when(approval.get("due_at")) or _due(requested)
        queues[2].items.append(
            Item(
                "visit",
                row["visit_id"],
                customers.get(row.get("customer_id") or "", row.get("customer_id") or ""),
                names.person(row.get("rep_id")),
                requested,
                due,
                bool(approval.get("overdue")) or bool(due and due <= now),
                reasons=[approval["reason"]] if approval.get("reason") else [],
                detail={"business_date": row.get("business_date"), "district": names.district(row.get("district_id"))},
            )
        )
    return Queues(chosen, roles, queues)


@dataclass(frozen=True)
class Decision:
    kind: str
    id: str
    approve: bool
    reason: str = ""


async def decide(services: Services, viewer: Viewer, decision: Decision) -> Any:
    """Send the decision as the viewer; the service's answer, or its refusal (`ApiError`).
    The idempotency key makes a form sent twice one decision."""
    service, approve, reject, id_field = DECISIONS[decision.kind]
    payload: dict[str, Any] = {id_field: decision.id}
    if not decision.approve:
        payload["reason"] = decision.reason.strip()
    verb = "approve" if decision.approve else "reject"
    return await services.command(
        service,
        approve if decision.approve else reject,
        payload,
        viewer.token,
        idempotency_key=f"console:{viewer.actor.id}:{decision.kind}:{decision.id}:{verb}",
    )
