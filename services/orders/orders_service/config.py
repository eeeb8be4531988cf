"""The orders rules' numbers from the environment (`ORDERS_…`, `COMPANY_TIMEZONE`), checked at
start: a value that cannot be used stops the service naming its variable."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from orders_service.domain.policy import ApprovalPolicy, OrderPolicy
from salesplatform.events import Role
from salesplatform.settings import TimeZoneName, company_timezone


class OrderRulesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore", populate_by_name=True)

    approval_threshold_fen: int = Field(500_000, gt=0)
    supervisor_approves_up_to_fen: int = Field(2_000_000, gt=0)
    area_manager_approves_up_to_fen: int = Field(10_000_000, gt=0)
    credit_approver: Role = Role.sales_manager
    overdue_approver: Role = Role.sales_manager
    below_floor_approver: Role = Role.area_manager
    price_float_role: Role = Role.area_manager
    delivery_hours: int = Field(24, gt=0)
    deposit_hours: int = Field(24, gt=0)
    timezone: TimeZoneName = company_timezone()

    def policy(self) -> OrderPolicy:
        return OrderPolicy(
            approval=ApprovalPolicy(
                threshold_fen=self.approval_threshold_fen,
                supervisor_up_to_fen=self.supervisor_approves_up_to_fen,
                area_manager_up_to_fen=self.area_manager_approves_up_to_fen,
                credit_role=self.credit_approver,
                overdue_role=self.overdue_approver,
                below_floor_role=self.below_floor_approver,
                price_float_role=self.price_float_role,
            ),
            delivery_hours=self.delivery_hours,
            deposit_hours=self.deposit_hours,
            timezone=self.timezone,
        )
