"""Command handlers: targets. Thin: look up the territory, decide, save."""

from __future__ import annotations

from typing import Any

from reporting_service.application import office
from reporting_service.application.territory import children_of, subject
from reporting_service.config import OfficeRules
from reporting_service.domain.commands import DecomposeTarget, SetTarget
from reporting_service.domain.target import (
    Target,
    check_can_decompose,
    check_child_of,
    check_may_set_target,
    split_amount,
    target_id_for,
)
from reporting_service.projections.office_plans import OfficePlansProjection
from reporting_service.projections.targets import TargetsProjection
from salesplatform.clock import Clock
from salesplatform.commands import CommandBus
from salesplatform.errors import DomainError, NotFound
from salesplatform.events import EventRegistry, Role
from salesplatform.uow import UnitOfWork

TARGET_SETTERS = {Role.area_manager, Role.sales_manager, Role.general_manager}


SET_TARGET = (
    "Set a monthly sales target (销售指标) of a rep, district or area, optionally for one "
    "product group. Sales managers and up: any target; area managers: the districts and "
    "reps of their own area."
)
DECOMPOSE_TARGET = (
    "Split an area's (or a district's) monthly target over its districts or reps (目标分解), "
    "by the given integer weights or equally. The parts are whole fen and sum exactly to the "
    "parent; the fen left over by rounding go to the largest remainders (ties: smaller id)."
)


def build_bus(
    registry: EventRegistry, clock: Clock, timezone: str = "Asia/Shanghai", rules: OfficeRules | None = None
) -> CommandBus:
    bus = CommandBus(registry, clock, inline_projections=[TargetsProjection(), OfficePlansProjection()])
    # The sales offices' close-outs, claims and warnings: functions of application/office.py.
    office.register(bus, timezone, rules or OfficeRules())
    bus.command(SetTarget, roles=TARGET_SETTERS, summary=SET_TARGET)(set_target)
    bus.command(DecomposeTarget, roles=TARGET_SETTERS, summary=DECOMPOSE_TARGET)(decompose_target)
    return bus


async def set_target(cmd: SetTarget, uow: UnitOfWork) -> dict[str, Any]:
    who = await subject(uow.conn, cmd.level, cmd.subject_id)
    check_may_set_target(uow.actor, who)
    target = await uow.load(Target, target_id_for(cmd.month, cmd.level, cmd.subject_id, cmd.product_group))
    changed = target.set(cmd.month, cmd.level, cmd.subject_id, cmd.product_group, cmd.amount_fen)
    await uow.save(target)
    return {**_view(target), "changed": changed}


async def decompose_target(cmd: DecomposeTarget, uow: UnitOfWork) -> dict[str, Any]:
    check_can_decompose(cmd.level, cmd.into)
    parent_subject = await subject(uow.conn, cmd.level, cmd.subject_id)
    parent = await uow.load(Target, target_id_for(cmd.month, cmd.level, cmd.subject_id, cmd.product_group))
    if not parent.exists:
        raise NotFound(f"no {cmd.level} target for {cmd.subject_id} in {cmd.month}", code="target_not_found")
    if cmd.weights is not None:
        children = [await subject(uow.conn, cmd.into, child_id) for child_id in sorted(cmd.weights)]
        weights = dict(cmd.weights)
    else:
        children = await children_of(uow.conn, parent_subject, cmd.into)
        if not children:
            raise DomainError(f"{cmd.level} {cmd.subject_id} has no {cmd.into}s to split over", code="no_children")
        weights = {c.id: 1 for c in children}
    for child in children:
        check_child_of(parent_subject, child)
        check_may_set_target(uow.actor, child)
    parts = split_amount(parent.amount_fen, weights)
    targets = []
    for child in children:
        t = await uow.load(Target, target_id_for(cmd.month, cmd.into, child.id, cmd.product_group))
        t.set(cmd.month, cmd.into, child.id, cmd.product_group, parts[child.id])
        targets.append(t)
    await uow.save(*targets)
    return {"parent": _view(parent), "targets": [_view(t) for t in targets]}


def _view(target: Target) -> dict[str, Any]:
    return {
        "target_id": target.id,
        "month": target.month,
        "level": target.level,
        "subject_id": target.subject_id,
        "product_group": target.product_group,
        "amount_fen": target.amount_fen,
        "version": target.version,
    }
