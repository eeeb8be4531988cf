"""Queries of the sales offices (案场) over HTTP: the offices, each day's board (sign-in sheet,
rotation, who serves whom), the registers, and the leads. Held to the reader's line: a rep of
the office sees the board and their own lines and leads, a supervisor the office of the own
district, an area manager those of the area; managers and the clerk everything. Names and phone
numbers are opened for readers in line; anything outside it is refused (403), never filtered.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Query

from customer_service.adapters.answers import Board, Lead, LeadWithHistory, OfficeList, Register
from customer_service.adapters.sealing import LEADS, Keys, keys_of, open_sealed
from customer_service.domain.access import require_in_line
from customer_service.domain.follow_up import FOLLOW_UP_WINDOW
from customer_service.domain.reception import VIEWING_WINDOW
from customer_service.domain.values import LeadStage, RegisterKind
from customer_service.queries import offices as offices_directory
from customer_service.queries.territory import staff_names
from salesplatform.clock import business_date
from salesplatform.errors import NotFound, PermissionDenied
from salesplatform.events import Actor, Role
from salesplatform.inputs import Day, Offset
from salesplatform.openapi import Page, answers
from salesplatform.projections import reading
from salesplatform.service import Runtime, http_actor, http_runtime
from salesplatform.territory import OUTSIDE_LINE, ROLE_NOT_ALLOWED, Place, reach_of

Limit = Annotated[int, Query(ge=1, le=500)]

router = APIRouter(tags=["sales office"])


def _office_in_line(actor: Actor, office: asyncpg.Record) -> None:
    """A rep reads the office of the own district; everyone else by the line of command."""
    if actor.role == Role.rep:
        if actor.district != office["district_id"]:
            raise PermissionDenied(
                f"rep {actor.id} does not work at the office of {office['project_id']}", code=OUTSIDE_LINE
            )
        return
    require_in_line(actor, Place(district_id=office["district_id"], area_id=office["area_id"]))


def _lead_in_line(actor: Actor, lead: asyncpg.Record) -> None:
    require_in_line(actor, Place(rep_id=lead["rep_id"], district_id=lead["district_id"], area_id=lead["area_id"]))


async def _office(conn: asyncpg.Connection, project_id: str, actor: Actor) -> asyncpg.Record:
    office = await offices_directory.office(conn, project_id)
    if office is None:
        raise NotFound(f"project {project_id} has no sales office", code="unknown_office")
    _office_in_line(actor, office)
    return office


def _open(tokens: list[str], keys: Keys, lead_id: str) -> tuple[dict[str, Any], bool]:
    """The parts folded (later ones win), and whether some did not open (erased)."""
    folded: dict[str, Any] = {}
    unreadable = False
    for token in tokens:
        part = open_sealed(token, keys, lead_id, LEADS)
        if part is None:
            unreadable = True
        else:
            folded.update(part)
    return folded, unreadable


def present_lead(row: asyncpg.Record, keys: Keys, names: dict[str, str]) -> dict[str, Any]:
    lead_id = row["lead_id"]
    details, unreadable = _open(list(row["personal"]), keys, lead_id)
    members = []
    for member in row["members"]:
        part = open_sealed(member["personal"], keys, lead_id, LEADS) if member.get("personal") else None
        members.append(
            {"relation": member["relation"], "name": (part or {}).get("name"), "phone": (part or {}).get("phone")}
        )
    phones = [details["phone"]] if details.get("phone") else []
    phones += [m["phone"] for m in members if m["phone"] and m["phone"] not in phones]
    stage = row["stage"]
    return {
        "lead_id": lead_id,
        "project_id": row["project_id"],
        "source": row["source"],
        "stage": stage,
        "rep_id": row["rep_id"],
        "rep_name": names.get(row["rep_id"] or ""),
        "referred_by": row["referred_by"],
        "name": details.get("name"),
        "phones": phones,
        "members": members,
        "personal_data": "erased" if row["erased"] or unreadable else "present",
        "registered_at": row["registered_at"],
        "visited_at": row["visited_at"],
        "last_follow_up_at": row["last_follow_up_at"],
        # R4 and R5: when the registration lapses or the walk-in is released, unless seen or followed up.
        "come_to_see_by": row["phone_since"] + VIEWING_WINDOW if stage == "phone" else None,
        "follow_up_by": row["last_follow_up_at"] + FOLLOW_UP_WINDOW
        if stage == "walk_in" and row["last_follow_up_at"]
        else None,
        "receptions": row["receptions"],
        "follow_ups": row["follow_ups"],
    }


def _today(runtime: Runtime) -> date:
    return business_date(runtime.clock.now(), runtime.settings.timezone)


@router.get(
    "/offices", summary="The sales offices in the reader's line", response_model=None, responses=answers(OfficeList)
)
async def offices(runtime: Runtime = Depends(http_runtime), actor: Actor = Depends(http_actor)) -> dict[str, Any]:
    async with reading(runtime.pool, "office_directory") as conn:
        rows = await offices_directory.offices(conn)
    items = []
    for row in rows:
        try:
            _office_in_line(actor, row)
        except PermissionDenied:
            continue  # a list of what the reader may open; each office refuses the others
        items.append(dict(row))
    return {"items": items}


@router.get(
    "/offices/{project_id}/board",
    summary="The day's sign-in sheet, rotation and receptions (轮次)",
    response_model=None,
    responses=answers(Board),
)
async def board(
    project_id: str,
    runtime: Runtime = Depends(http_runtime),
    actor: Actor = Depends(http_actor),
    day: Day | None = Query(None, alias="date"),
) -> dict[str, Any]:
    """`queue`: the reps signed in, the next turn first (a rep serving a walk-in keeps the
    place and is passed over until free); `next_in_turn`: who receives the next new customer.
    Per rep: sign-in place and times, whom they serve since when, turns, own customers and
    duty receptions (义务接待, not turns)."""
    on = day or _today(runtime)
    async with reading(runtime.pool, "office_directory") as conn:
        office = await _office(conn, project_id, actor)
        rows = await offices_directory.sign_ins(conn, project_id, on)
        counts = await offices_directory.day_counts(conn, project_id, on)
        names = await staff_names(conn)
    queue = [r["rep_id"] for r in sorted((r for r in rows if r["present"]), key=lambda r: r["rotation_key"])]
    free = [rep for rep in queue if not next(r for r in rows if r["rep_id"] == rep)["serving_lead"]]
    return {
        "project_id": project_id,
        "name": office["name"],
        "business_date": on.isoformat(),
        "queue": queue,
        "next_in_turn": free[0] if free else None,
        "reps": [
            {
                "rep_id": r["rep_id"],
                "name": names.get(r["rep_id"]),
                "place": r["place"],
                "signed_in_at": r["signed_in_at"],
                "signed_out_at": r["signed_out_at"],
                "present": r["present"],
                "serving_lead_id": r["serving_lead"],
                "serving_since": r["serving_since"],
                "turns": r["turns"],
                "own_customers": r["own"],
                "duty_receptions": r["duties"],
            }
            for r in rows
        ],
        "counts": counts,
    }


@router.get(
    "/offices/{project_id}/registers/{register}",
    summary="A lead register (客户登记本), line by line",
    response_model=None,
    responses=answers(Register),
)
async def register(
    project_id: str,
    register: RegisterKind,
    runtime: Runtime = Depends(http_runtime),
    actor: Actor = Depends(http_actor),
    date_from: Day | None = None,
    date_to: Day | None = None,
    rep_id: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Every line in number order, with what was written (name, phone, note: opened for
    readers in line), the remark "duty" of a duty reception, and each correction with its
    reason. A rep reads their own lines only."""
    if actor.role == Role.rep:
        if rep_id not in (None, actor.id):
            raise PermissionDenied(f"rep {actor.id} reads own register lines only", code=OUTSIDE_LINE)
        rep_id = actor.id
    async with reading(runtime.pool, "office_directory") as conn:
        await _office(conn, project_id, actor)
        total, rows = await offices_directory.register_entries(
            conn,
            project_id,
            register,
            date_from=date_from,
            date_to=date_to,
            rep_id=rep_id,
            limit=limit,
            offset=offset,
        )
        keys = await keys_of(conn, {r["lead_id"] for r in rows}, LEADS)
        names = await staff_names(conn)
    items = []
    for r in rows:
        written, unreadable = _open(list(r["personal"][:1]), keys, r["lead_id"])
        current, _ = _open(list(r["personal"]), keys, r["lead_id"])
        items.append(
            {
                "entry_no": r["entry_no"],
                "business_date": r["business_date"],
                "at": r["at"],
                "lead_id": r["lead_id"],
                "rep_id": r["rep_id"],
                "rep_name": names.get(r["rep_id"]),
                "basis": r["basis"],
                "remark": r["remark"],
                "new_lead": r["new_lead"],
                "first_visit": r["first_visit"],
                "source_channel": r["source_channel"],
                "written": {k: written.get(k) for k in ("name", "phone", "note")},
                "corrected": {k: current.get(k) for k in ("name", "phone", "note")} if r["corrections"] else None,
                "corrections": r["corrections"],
                "personal_data": "erased" if unreadable or not r["personal"] else "present",
            }
        )
    return {
        "project_id": project_id,
        "register": register,
        "total": total,
        "limit": limit,
        "offset": offset,
        "items": items,
    }


@router.get(
    "/leads",
    summary="The leads of an office (a rep: own leads)",
    response_model=None,
    responses=answers(Page[Lead]),
)
async def leads(
    runtime: Runtime = Depends(http_runtime),
    actor: Actor = Depends(http_actor),
    project_id: str | None = None,
    rep_id: str | None = None,
    stage: LeadStage | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    if actor.role == Role.rep:
        if rep_id not in (None, actor.id):
            raise PermissionDenied(f"rep {actor.id} lists own leads only", code=OUTSIDE_LINE)
        rep_id = actor.id
    async with reading(runtime.pool, "office_directory") as conn:
        if project_id is not None:
            await _office(conn, project_id, actor)
        line: dict[str, str] = {}
        if actor.role in (Role.supervisor, Role.area_manager):
            # The line's own check: a token that names no district (area) is refused.
            reach = reach_of(actor)
            line = {"district_id": reach.district_id} if reach.district_id else {"area_id": str(reach.area_id)}
        elif actor.role not in (Role.rep, Role.sales_manager, Role.general_manager, Role.clerk, Role.system):
            raise PermissionDenied(f"role {actor.role} has no access to leads", code=ROLE_NOT_ALLOWED)
        total, rows = await offices_directory.leads(
            conn, project_id=project_id, rep_id=rep_id, stage=stage, limit=limit, offset=offset, **line
        )
        keys = await keys_of(conn, [r["lead_id"] for r in rows], LEADS)
        names = await staff_names(conn)
    return {
        "items": [present_lead(r, keys, names) for r in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.get(
    "/leads/{lead_id}",
    summary="A lead: rep, stage, 7-day deadlines, people, history",
    response_model=None,
    responses=answers(LeadWithHistory),
)
async def lead(
    lead_id: str, runtime: Runtime = Depends(http_runtime), actor: Actor = Depends(http_actor)
) -> dict[str, Any]:
    async with reading(runtime.pool, "office_directory") as conn:
        row = await offices_directory.lead(conn, lead_id)
        if row is None:
            raise NotFound(f"lead {lead_id} does not exist", code="lead_not_found")
        _lead_in_line(actor, row)
        keys = await keys_of(conn, [lead_id], LEADS)
        names = await staff_names(conn)
    return {**present_lead(row, keys, names), "history": row["history"]}
