"""The numbers the orders rules use, in one place so a deployment can change them.

Approval rights are tiered (审批权限): the amount of an order decides which role may approve it,
credit and overdue debt go to the sales manager, prices under the floor to the area manager.
Values come from settings (`ORDERS_…` variables, see `orders_service.config`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from salesplatform.events import Role, rank


@dataclass(frozen=True)
class ApprovalPolicy:
    # An order whose amount is above this needs approval (5,000 yuan).
    threshold_fen: int = 500_000
    # Tiers for amount approvals: up to 20,000 yuan a supervisor, up to 100,000 yuan an area
    # manager, above that the sales manager.
    supervisor_up_to_fen: int = 2_000_000
    area_manager_up_to_fen: int = 10_000_000
    credit_role: Role = Role.sales_manager
    overdue_role: Role = Role.sales_manager
    below_floor_role: Role = Role.area_manager
    # 价格浮动权: below list price but not below the floor; who holds it needs no approval.
    price_float_role: Role = Role.area_manager

    def role_for_amount(self, amount_fen: int) -> Role:
        if amount_fen <= self.supervisor_up_to_fen:
            return Role.supervisor
        if amount_fen <= self.area_manager_up_to_fen:
            return Role.area_manager
        return Role.sales_manager


@dataclass(frozen=True)
class OrderPolicy:
    approval: ApprovalPolicy = field(default_factory=ApprovalPolicy)
    delivery_hours: int = 24  # 24小时内送货
    deposit_hours: int = 24  # a partial deposit must be completed within this
    timezone: str = "Asia/Shanghai"


def highest(roles: list[Role]) -> Role:
    return max(roles, key=rank)
