"""The columns of every report's rows, as the JSON pages carry them (`?format=csv` flattens
nested figures to `<figure>.value`, `<figure>.goal` … columns).

Money is integer fen, quantities are units, dates are ISO business dates in the company time
zone, rates are fractions (0.85 = 85%) rounded to four places. A column shown only for some
groupings is optional (absent otherwise); a column that can be empty is nullable. Rows carry
no other keys: a column added to a query without its field here fails the tests.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Row(BaseModel):
    """A report row: exactly the fields below."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _optional(description: str) -> Any:
    """A text column shown only for some groupings (nullable when the directory lacks it)."""
    return Field(default=None, description=description)


class Measure(Row):
    """A figure against its goal: value = numerator / denominator."""

    value: float | None = Field(description="numerator / denominator; null when the denominator is 0")
    numerator: int = Field(description="what was achieved")
    denominator: int = Field(description="what it is measured against")
    goal: float = Field(description="the figure's goal, a fraction")
    met: bool | None = Field(description="whether value reaches the goal (for cooler_misuse: stays below it)")


# -- sales ---------------------------------------------------------------------------------------


class SalesRow(Row):
    period_start: date | None = Field(
        default=None, description="first day of the day / ISO week / month (absent for period=total)"
    )
    rep_id: str | None = _optional("the order's rep (group_by rep)")
    rep_name: str | None = _optional("the rep's name (group_by rep)")
    customer_id: str | None = _optional("the order's customer (group_by customer)")
    customer_name: str | None = _optional("the customer's name (group_by customer)")
    sku: str | None = _optional("the line's SKU (group_by sku)")
    product_group: str | None = _optional("the line's product group (group_by product_group)")
    district_id: str | None = _optional("the order's district (group_by district)")
    district_name: str | None = _optional("the district's name (group_by district)")
    area_id: str | None = _optional("the order's area (group_by area)")
    area_name: str | None = _optional("the area's name (group_by area)")
    gross_quantity: int = Field(description="units delivered")
    gross_amount_fen: int = Field(description="fen delivered")
    returned_quantity: int = Field(description="units of approved returns")
    returned_amount_fen: int = Field(description="fen of approved returns")
    quantity: int = Field(description="net units: delivered − returned")
    amount_fen: int = Field(description="net fen: delivered − returned")
    gift_quantity: int = Field(description="gift units delivered")


class CompositionRow(Row):
    grade: str | None = _optional("customer grade (by=grade; ungraded when none)")
    channel: str | None = _optional("customer channel (by=channel; unknown when none)")
    credit_rating: str | None = _optional("customer credit rating (by=credit_rating; unrated when none)")
    product_group: str | None = _optional("the line's product group (by=product_group)")
    sku: str | None = _optional("the line's SKU (by=sku)")
    district_id: str | None = _optional("the order's district (by=district)")
    area_id: str | None = _optional("the order's area (by=area)")
    quantity: int = Field(description="net units of the group")
    amount_fen: int = Field(description="net fen of the group")
    amount_share: float | None = Field(description="group's net fen / net fen of all groups; null when that is 0")
    quantity_share: float | None = Field(description="group's net units / net units of all groups; null when 0")


class TargetRow(Row):
    target_id: str = Field(description="the target (`target.set`)")
    month: str = Field(description="YYYY-MM")
    level: str = Field(description="rep, district or area")
    subject_id: str = Field(description="the rep, district or area the target is set for")
    product_group: str | None = Field(description="the product group the target is restricted to; null: all")
    target_fen: int = Field(description="the month's target amount")
    district_id: str | None = Field(description="the subject's district (rep: its current one; area: null)")
    area_id: str | None = Field(description="the subject's area")
    actual_fen: int = Field(description="net sales from the first of the month to as_of")
    as_of: date = Field(description="the day counted up to (capped at the month's end)")
    achievement: Measure = Field(description="actual_fen / target_fen, goal 100%")
    expected_by_now_fen: int = Field(description="target × days elapsed / days in month, rounded down")
    on_track: bool = Field(description="actual_fen ≥ expected_by_now_fen")


class PromotionRow(Row):
    promotion_id: str = Field(description="the promotion (`promotion.planned`)")
    name: str | None = Field(description="its name")
    starts_on: date = Field(description="first day")
    ends_on: date = Field(description="last day")
    skus: list[str] = Field(description="the SKUs it covers (empty: all)")
    channels: list[str] = Field(description="the channels it covers (empty: all)")
    budget_fen: int = Field(description="its budget")
    spent_fen: int = Field(description="costs incurred less costs released")
    budget_left_fen: int = Field(description="budget_fen − spent_fen")
    promoted_quantity: int = Field(description="net units of lines carrying the promotion")
    promoted_amount_fen: int = Field(description="net fen of lines carrying the promotion")
    gifts_issued: int = Field(description="gift units of lines carrying the promotion")
    period_quantity: int = Field(description="net units of its SKUs to its channels during the promotion")
    period_amount_fen: int = Field(description="net fen of its SKUs to its channels during the promotion")
    before_quantity: int = Field(description="the same, in as many days just before")
    before_amount_fen: int = Field(description="the same, in as many days just before")
    before_starts_on: date = Field(description="first day of the comparison period")
    before_ends_on: date = Field(description="last day of the comparison period")
    uplift: float | None = Field(description="period_amount_fen / before_amount_fen − 1; null when before is 0")
    budget_used: float | None = Field(description="spent_fen / budget_fen; null when the budget is 0")


# -- receivables and credit ------------------------------------------------------------------------


class CreditRow(Row):
    credit_rating: str = Field(description="current credit rating (unrated when none)")
    customer_id: str | None = _optional("the customer (group_by customer)")
    customer_name: str | None = _optional("the customer's name (group_by customer)")
    payment_terms_days: int | None = Field(default=None, description="payment terms (group_by customer)")
    rep_id: str | None = _optional("the customer's current rep (group_by customer)")
    district_id: str | None = _optional("the customer's current district (group_by customer)")
    area_id: str | None = _optional("the customer's current area (group_by customer)")
    customers: int | None = Field(default=None, description="customers of the rating (group_by credit_rating)")
    credit_limit_fen: int | None = Field(description="credit limit (a rating: their sum); null: no limit set")
    sales_amount_fen: int = Field(description="net sales in the date range")
    open_fen: int = Field(description="receivables open on as_of")
    past_due_fen: int = Field(description="of them, overdue on as_of")
    over_limit: bool | None = Field(default=None, description="open_fen > credit_limit_fen (group_by customer)")
    headroom_fen: int | None = Field(
        default=None, description="credit_limit_fen − open_fen (group_by customer; null: no limit)"
    )
    customers_over_limit: int | None = Field(
        default=None, description="customers owing more than their limit (group_by credit_rating)"
    )
    limit_used: float | None = Field(
        default=None, description="open_fen / credit_limit_fen (group_by credit_rating; null when no limits)"
    )
    sales_share: float | None = Field(
        default=None, description="the rating's share of the page's net sales (group_by credit_rating)"
    )
    as_of: date = Field(description="the day of the open receivables")


class ReceivablesRow(Row):
    customer_id: str | None = _optional("the customer (group_by customer)")
    customer_name: str | None = _optional("the customer's name (group_by customer)")
    rep_id: str | None = _optional("the customer's current rep (group_by customer, rep)")
    district_id: str | None = _optional("the customer's current district (group_by customer, district)")
    area_id: str | None = _optional("the customer's current area (group_by customer, area)")
    credit_limit_fen: int | None = Field(default=None, description="credit limit (group_by customer; null: none)")
    payment_terms_days: int | None = Field(default=None, description="payment terms (group_by customer)")
    not_due: int = Field(description="fen open, not yet past due (days past due ≤ 0)")
    d1_30: int = Field(description="fen open 1–30 days past due")
    d31_60: int = Field(description="fen open 31–60 days past due")
    d61_90: int = Field(description="fen open 61–90 days past due")
    d90_plus: int = Field(description="fen open more than 90 days past due")
    open_fen: int = Field(description="fen open in all")
    past_due_fen: int = Field(description="fen open and overdue (due before as_of)")
    open_invoices: int = Field(description="invoices with an open amount")
    as_of: date = Field(description="the day of the ageing")


class CollectionsRow(Row):
    customer_id: str | None = _optional("the paying customer (group_by customer)")
    customer_name: str | None = _optional("the customer's name (group_by customer)")
    rep_id: str | None = _optional("the customer's current rep (group_by customer, rep)")
    district_id: str | None = _optional("the customer's current district (group_by customer, district)")
    area_id: str | None = _optional("the customer's current area (group_by customer, area)")
    payments: int = Field(description="payments received in the range")
    collected_fen: int = Field(description="their amounts")
    overdue_collected_fen: int = Field(description="the part allocated to invoices past their due date")


# -- field work and service quality ---------------------------------------------------------------


class KpiFigures(Row):
    planned_visit_completion: Measure = Field(description="planned visits done / planned visits, goal 100%")
    visit_success: Measure = Field(description="successful visits / visits done, goal ≥ 85%")
    suggested_order_adoption: Measure = Field(description="suggestions adopted / orders suggested, goal 100%")
    required_sku_distribution: Measure = Field(description="required SKUs present / required SKUs, goal 100%")
    price_tag_compliance: Measure = Field(description="audits with price tags ok / audits, goal 100%")
    display_compliance: Measure = Field(description="audits with display ok / audits, goal 100%")
    cooler_compliance: Measure = Field(description="compliant coolers / cooler checks, goal 100%")
    cooler_misuse: Measure = Field(description="misused coolers / cooler checks, goal 0%")
    check_in_verification: Measure = Field(description="verified check-ins / judged check-ins, goal 100%")
    on_time_delivery: Measure = Field(description="deliveries on time (within 24 h) / deliveries, goal 100%")
    complaint_ack_48h: Measure = Field(
        description="complaints acknowledged within 48 h / complaints decided, goal 100%"
    )


class KpiRow(Row):
    rep_id: str | None = _optional("the rep (group_by rep)")
    rep_name: str | None = _optional("the rep's name (group_by rep)")
    district_id: str | None = _optional("the rep's current district (group_by rep, district)")
    area_id: str | None = _optional("the rep's current area (group_by rep, area)")
    done: int = Field(description="visits checked out")
    planned_done: int = Field(description="planned visits checked out")
    successful: int = Field(description="visits checked out with an order taken")
    missed: int = Field(description="visits missed (`visit.missed`)")
    orders_taken: int = Field(description="orders taken on visits")
    refused: int = Field(description="orders refused on visits")
    suggested: int = Field(description="orders suggested")
    adopted: int = Field(description="orders taken with the suggestion adopted")
    audits: int = Field(description="merchandising audits")
    required_skus: int = Field(description="required SKUs over all audits")
    required_present: int = Field(description="of them, present")
    price_tags_ok: int = Field(description="audits with price tags ok")
    display_ok: int = Field(description="audits with display ok")
    cooler_checks: int = Field(description="cooler checks")
    coolers_compliant: int = Field(description="cooler checks found compliant")
    coolers_misused: int = Field(description="cooler checks found misused")
    check_ins: int = Field(description="check-ins")
    check_ins_judged: int = Field(description="check-ins whose position was judged")
    check_ins_verified: int = Field(description="check-ins verified (or confirmed by a supervisor)")
    planned: int = Field(description="planned visits")
    unplanned: int = Field(description="unplanned visits")
    deliveries: int = Field(description="deliveries of the rep's orders")
    on_time: int = Field(description="of them, within 24 h")
    complaints: int = Field(description="complaints received")
    complaints_acknowledged: int = Field(description="of them, acknowledged")
    complaints_decided: int = Field(description="of them, acknowledged or breached")
    complaints_within_sla: int = Field(description="of them, acknowledged within 48 h")
    kpis: KpiFigures = Field(description="every KPI of the board against its goal")


class ReturnsRow(Row):
    reason: str | None = _optional("the return's reason (group_by reason)")
    sku: str | None = _optional("the returned line's SKU (group_by sku)")
    product_group: str | None = _optional("the returned line's product group (group_by product_group)")
    resolution: str | None = _optional("the resolution, unresolved when none yet (group_by resolution)")
    scope: str | None = _optional("the return's scope (group_by scope)")
    status: str | None = _optional("requested, inspected, approved, rejected or resolved (group_by status)")
    rep: str | None = _optional("the original order's rep (group_by rep)")
    district: str | None = _optional("the original order's district (group_by district)")
    area: str | None = _optional("the original order's area (group_by area)")
    returns: int = Field(description="returns requested in the range")
    approved: int = Field(description="of them, approved")
    rejected: int = Field(description="of them, rejected")
    resolved: int = Field(description="of them, resolved")
    quantity: int = Field(description="units requested back")
    amount_fen: int = Field(description="fen requested back")
    resolved_amount_fen: int | None = Field(
        default=None, description="fen of the resolutions (absent when grouped by sku or product_group)"
    )


class ComplaintsRow(Row):
    category: str | None = _optional("the complaint's category (group_by category)")
    severity: str | None = _optional("its severity (group_by severity)")
    channel: str | None = _optional("the channel it came by (group_by channel)")
    department: str | None = _optional("the department it concerns (group_by department)")
    received: int = Field(description="complaints received in the range")
    acknowledged: int = Field(description="of them, acknowledged")
    acknowledged_within_sla: int = Field(description="of them, acknowledged within 48 h")
    breached: int = Field(description="of them, flagged `complaint.sla_breached`")
    awaiting_acknowledgement: int = Field(description="of them, neither acknowledged nor breached yet")
    resolved: int = Field(description="of them, resolved")
    closed: int = Field(description="of them, closed")
    customer_misuse: int = Field(description="of them, found to be customer misuse")
    sla_compliance: Measure = Field(description="acknowledged within 48 h / acknowledged or breached, goal 100%")


class SatisfactionRow(Row):
    period: str = Field(description="the half-year, YYYYH1 or YYYYH2")
    rep_id: str | None = _optional("the survey's rep, else the customer's (group_by rep)")
    district_id: str | None = _optional("the customer's current district (group_by district)")
    area_id: str | None = _optional("the customer's current area (group_by area)")
    surveys: int = Field(description="surveys recorded")
    satisfied: int = Field(description="of them, satisfied")
    satisfaction: Measure = Field(description="satisfied / surveys against the programme year's goal")
    first_period: str | None = Field(description="the programme's first half-year, which sets the goals")


class CustomerBaseRow(Row):
    rep_id: str | None = _optional("the customer's current rep (group_by rep)")
    district_id: str | None = _optional("the customer's current district (group_by district)")
    area_id: str | None = _optional("the customer's current area (group_by area)")
    new: int = Field(description="became active between from and as_of")
    active: int = Field(description="active or dormant, with an order (or activation) in the last dormant_days")
    dormant: int = Field(description="active or dormant, no order in the last dormant_days")
    lost: int = Field(description="status lost")
    prospects: int = Field(description="status pending or prospect")
    from_: date = Field(alias="from", description="first day counted for new customers")
    as_of: date = Field(description="the day of the statuses")
    dormant_days: int = Field(description="days without an order that make a customer dormant")


# -- the sales offices --------------------------------------------------------------------------------


class Rate(Row):
    """A rate with what it is computed from (the offices set no goal)."""

    value: float | None = Field(description="numerator / denominator; null when the denominator is 0")
    numerator: int = Field(description="what was achieved")
    denominator: int = Field(description="what it is measured against")


class OfficeLeadsRow(Row):
    business_date: date | None = _optional("the lines' business date (group_by day)")
    rep_id: str | None = _optional("the rep who took the lines (group_by rep)")
    rep_name: str | None = _optional("the rep's name (group_by rep)")
    project_id: str | None = _optional("the sales office's project (group_by project)")
    project_name: str | None = _optional("the project's name (group_by project)")
    calls: int = Field(description="phone lines received as new customers")
    walk_ins: int = Field(description="walk-in lines received as new customers")
    returning_visits: int = Field(description="walk-in lines of a customer received by their own rep")
    duty_receptions: int = Field(description="lines received on duty (in no other figure)")
    first_visits_in_7_days: int = Field(description="calls whose caller came to see within 7 days")
    deposits: int = Field(description="new customers with a unit reserved since the line")
    subscriptions: int = Field(description="new customers with a subscription signed since the line")
    contracts: int = Field(description="new customers with a contract signed since the line")
    new_customers: int = Field(description="calls + walk_ins")
    first_visit_rate: Rate = Field(description="first_visits_in_7_days / calls")
    deposit_rate: Rate = Field(description="deposits / new_customers")
    subscription_rate: Rate = Field(description="subscriptions / new_customers")
    contract_rate: Rate = Field(description="contracts / new_customers")


class DayFigures(Row):
    """A rep's results (or forecast) of a day."""

    deposits: int = Field(description="units reserved")
    subscriptions: int = Field(description="subscriptions signed")
    contracts: int = Field(description="contracts signed")
    amount_fen: int = Field(description="prices of the subscriptions signed")


class DailyCloseRow(Row):
    project_id: str = Field(description="the sales office's project")
    rep_id: str = Field(description="the rep")
    rep_name: str | None = Field(description="the rep's name")
    district_id: str = Field(description="the project's district")
    area_id: str = Field(description="the project's area")
    business_date: date = Field(description="the day closed out")
    result: DayFigures = Field(description="deal steps credited to the rep that day")
    forecast: DayFigures | None = Field(description="the forecast for this day in the previous day's close")
    forecast_missed: bool | None = Field(description="any result below its forecast; null: no forecast")
    miss_reason: str | None = Field(description="the reason given in this day's close")
    reason_missing: bool = Field(description="missed and no reason given")
    closed: bool = Field(description="the rep recorded this day's close")
    forecast_for_tomorrow: DayFigures | None = Field(description="this day's close: the forecast for the next day")


class WeeklyTargetsRow(Row):
    project_id: str = Field(description="the sales office's project")
    rep_id: str = Field(description="the rep who claimed")
    rep_name: str | None = Field(description="the rep's name")
    district_id: str = Field(description="the project's district")
    area_id: str = Field(description="the project's area")
    week: date = Field(description="the week's Monday")
    claimed_subscriptions: int = Field(description="subscriptions claimed at the Monday meeting")
    claimed_amount_fen: int = Field(description="amount claimed")
    subscriptions: int = Field(description="subscriptions signed that week less those released")
    amount_fen: int = Field(description="their amount")
    subscription_completion: Rate = Field(description="subscriptions / claimed_subscriptions")
    amount_completion: Rate = Field(description="amount_fen / claimed_amount_fen")
    week_over: bool = Field(description="the week has ended: the figures are final")


class WarningGiven(Row):
    """A performance warning given (`performance_warning.given`) and its figures then."""

    level: str = Field(description="oral or written")
    given_on: date = Field(description="the day it was given")
    target_fen: int = Field(description="the month's target")
    expected_fen: int = Field(description="what was expected by then")
    actual_fen: int = Field(description="what was achieved by then")
    margin_percent: int = Field(description="the margin below expected that counted as behind")


class PerformanceWarningsRow(Row):
    rep_id: str = Field(description="the rep who signed in at a sales office in the month")
    rep_name: str | None = Field(description="the rep's name")
    project_id: str = Field(description="the project of the rep's latest sign-in")
    district_id: str = Field(description="the project's district")
    area_id: str = Field(description="the project's area")
    started_on: date = Field(description="the rep's first sign-in of the month")
    target_fen: int | None = Field(description="the month's target (rep level, all products); null: none set")
    actual_fen: int = Field(description="subscriptions signed from the first of the month to as_of, less releases")
    month: str = Field(description="YYYY-MM")
    as_of: date = Field(description="the day counted up to")
    expected_fen: int | None = Field(description="the target spread from started_on, for the days to as_of")
    achievement: Rate | None = Field(description="actual_fen / target_fen; null: no target")
    behind: bool | None = Field(description="actual is more than the margin below expected; null: no target")
    flag: str | None = Field(description="the month's latest warning: oral or written")
    history: list[WarningGiven] = Field(description="every warning of the month")


class OfficeSalesRow(Row):
    project_id: str | None = _optional("the project (group_by project)")
    project_name: str | None = _optional("the project's name (group_by project)")
    building: str | None = _optional("the building (group_by building)")
    layout_name: str | None = _optional("the layout, 户型 (group_by layout)")
    rep_id: str | None = _optional("the rep credited (group_by rep)")
    rep_name: str | None = _optional("the rep's name (group_by rep)")
    reservations: int = Field(description="units reserved")
    subscriptions: int = Field(description="subscriptions signed")
    subscribed_amount_fen: int = Field(description="their prices")
    contracts: int = Field(description="contracts signed")
    contracted_amount_fen: int = Field(description="their prices")
    handovers: int = Field(description="units handed over")
    releases: int = Field(description="reservations released")


class UnitInventoryRow(Row):
    project_id: str | None = _optional("the project (group_by project)")
    project_name: str | None = _optional("the project's name (group_by project)")
    building: str | None = _optional("the building (group_by building)")
    layout_name: str | None = _optional("the layout, 户型 (group_by layout)")
    units: int = Field(description="units defined")
    unreleased: int = Field(description="in no price list yet")
    available: int = Field(description="for sale")
    reserved: int = Field(description="reserved (a deposit paid)")
    subscribed: int = Field(description="subscription signed")
    contracted: int = Field(description="contract signed")
    mortgage: int = Field(description="mortgage in progress")
    handed_over: int = Field(description="handed over")
    available_value_fen: int = Field(description="total prices of the available units")
    available_area_sqm: float = Field(description="total area of the available units, square metres")


class DepositsDueRow(Row):
    unit_id: str = Field(description="the reserved unit")
    project_id: str = Field(description="its project")
    building: str = Field(description="its building")
    unit_no: str = Field(description="its number")
    lead_id: str | None = Field(description="the customer (lead) who reserved it")
    rep_id: str | None = Field(description="the rep credited")
    rep_name: str | None = Field(description="the rep's name")
    deposit_agreed_fen: int = Field(description="the deposit agreed")
    deposit_total_fen: int = Field(description="paid so far")
    missing_fen: int = Field(description="still to pay")
    deposit_due_by: datetime = Field(description="24 hours after the first payment (ISO timestamp)")
    overdue: bool = Field(description="flagged overdue, or past deposit_due_by now")


ROWS: dict[str, type[Row]] = {
    "sales": SalesRow,
    "composition": CompositionRow,
    "credit": CreditRow,
    "kpi": KpiRow,
    "target_achievement": TargetRow,
    "receivables": ReceivablesRow,
    "collections": CollectionsRow,
    "returns": ReturnsRow,
    "complaints": ComplaintsRow,
    "promotions": PromotionRow,
    "satisfaction": SatisfactionRow,
    "customer_base": CustomerBaseRow,
    "office_leads": OfficeLeadsRow,
    "daily_close": DailyCloseRow,
    "weekly_targets": WeeklyTargetsRow,
    "performance_warnings": PerformanceWarningsRow,
    "office_sales": OfficeSalesRow,
    "unit_inventory": UnitInventoryRow,
    "deposits_due": DepositsDueRow,
}
