"""What each report counts, in words: numerator, denominator, events and date. The HTTP routes
show these texts and README.md repeats them; change both together."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Definition:
    title: str
    text: str


SALES = Definition(
    "Sales per day / week / month (日报, 周报, 月报)",
    """Quantity (units) and amount (fen) sold, net of approved returns.
- Delivered: the lines (`sku`, `product_group`, `quantity`, `amount_fen`, `gift_quantity`) of an
  order's `order.placed`, counted when `order.delivered` arrives, on the business date of
  `delivered_at` in the company time zone. Rep, district and area are the ones on `order.placed`.
- Returned: the lines of `return.requested`, subtracted when `return.approved` arrives, on the
  business date of the approval (its `occurred_at`), whatever the later resolution; attributed to
  the original order's rep, district and area.
- `quantity` = delivered − returned units; `amount_fen` = delivered − returned fen; the gross
  and returned figures are shown too. Cancelled orders are never delivered, so never counted.
- Periods: `day`; `week` (ISO, Monday first); `month`; `total`. Group by any of rep, customer,
  sku, product_group, district, area.""",
)

COMPOSITION = Definition(
    "Sales composition (客户构成分析)",
    """Each group's share of net sales (as in the sales report) in the date range:
`amount_share` = group's net amount / net amount of all groups in the reader's line;
`quantity_share` likewise for units. Customer grade, channel and credit rating are those in
force on the business date the figure counts on (a delivery's date; a return's approval date):
the last `customer.registered`, `customer.classified`, `customer.credit_limit_set` or
`customer.profile_updated` on or before that day in the company time zone (for a day before
the first one, the first one), so a regrade moves no earlier sale. `classification=current`
groups by the customer's current classification instead. Product group, SKU, district
(`district_id`) and area (`area_id`) are those of the order lines.""",
)

CREDIT = Definition(
    "Credit-rating analysis (信誉等级)",
    """Per credit rating (current `customer.credit_limit_set`; none = `unrated`), or per customer:
customers with an archive entry, the sum of their credit limits, their net sales in the date range,
the receivables open on `as_of` (as in the ageing report) and how many customers owe more than
their limit (`customers_over_limit`). `limit_used` = open receivables / credit limits.""",
)

KPI = Definition(
    "Rep KPI board (KPI看板)",
    """Per rep (or rolled up by the rep's current district or area), for visits whose business date
(from the visit events) falls in the range; each figure has numerator, denominator, goal, met:
- planned_visit_completion = planned visits checked out / planned visits (`visit.planned` with
  planned = true; done = `visit.checked_out`). Goal 100%.
- visit_success = checked-out visits with successful = true (an order was taken) / checked-out
  visits. Goal ≥ 85%.
- suggested_order_adoption = `visit.order_taken` with suggested_adopted / `visit.order_suggested`.
  Goal 100%.
- required_sku_distribution = required SKUs present / required SKUs, over all
  `visit.merchandising_audited`. Goal 100%.
- price_tag_compliance, display_compliance = audits with price_tags_ok (display_ok) / audits.
  Goal 100%.
- cooler_compliance = `visit.cooler_checked` with compliant / cooler checks. Goal 100%;
  cooler_misuse = misused / cooler checks, goal 0%.
- check_in_verification = verified check-ins / judged check-ins. A `visit.checked_in` is judged
  when its position_verified is true or false (the outlet's position was known; a check-in
  from before positions were judged, or at an outlet without one, is counted in check_ins
  only); verified when it is true (within the visit service's distance of the outlet, not
  faked). A `visit.check_in_confirmed` (a supervisor vouched for the rep) makes a check-in not
  verified so far verified, and one not judged judged. Goal 100%.
- on_time_delivery = `order.delivered` with on_time (within 24 h) / deliveries of the rep's
  orders, by the delivery's business date. Goal 100%.
- complaint_ack_48h = complaints acknowledged within 48 h (`complaint.acknowledged`
  within_sla) / complaints whose 48 hours are decided: acknowledged, or flagged
  `complaint.sla_breached` (one still inside its 48 hours counts in neither). Complaints by
  the business date of received_at; rep = the complaint's rep, else the customer's. Goal 100%.
Also shown: planned and unplanned visits, visits done, missed (`visit.missed`), orders taken
and refused, check-ins (all, judged, verified).""",
)

TARGETS = Definition(
    "Target achievement (销售指标完成率), month to date",
    """For each target of the month (`target.set`): actual = net sales amount (as in the sales
report) from the first of the month to `as_of` (capped at the month's end) of the target's rep,
district or area (the order's), restricted to the target's product group if it has one.
achievement = actual / target amount (goal 100%); expected_by_now = target × days elapsed /
days in month; on_track = actual ≥ expected_by_now.""",
)

RECEIVABLES = Definition(
    "Receivables ageing (应收账款账龄)",
    """As of a date: every invoice issued by then (`invoice.issued`) with its open amount =
amount − payments allocated to it by then (`payment.received` allocations, by received_on) −
credit notes settling it by then. A credit note (`return.resolved` with resolution credit_note)
settles the invoice of the returned order, on the business date of the resolution, for its
amount but at most what that invoice still had open when it was resolved — the orders
service's rule, so both show the same open amount. Open amounts are bucketed by days past due
= as_of − due_on: not_due (≤ 0: an invoice due today is not overdue yet), d1_30 (1–30),
d31_60, d61_90, d90_plus (> 90). Per customer, rep, district or area (the customer's current
ones); past_due_fen = what is overdue: due before `as_of` (the orders service's `overdue_fen`
is the same rule).""",
)

COLLECTIONS = Definition(
    "Collections (回款)",
    """Payments received in the date range (`payment.received`, by received_on): payments,
collected_fen = their amounts; overdue_collected_fen = the part allocated to invoices after
their due date (received_on later than the invoice's due_on). Per customer, rep, district or
area (the customer's current ones).""",
)

RETURNS = Definition(
    "Returns by reason, product and resolution (退货)",
    """Returns requested in the date range (`return.requested`, by the business date it was
requested), counted and summed (quantity, amount_fen) by reason, SKU, product group,
resolution (`return.resolved`), scope or status (requested → inspected → approved / rejected →
resolved). Approved, rejected and resolved counts come from `return.approved`,
`return.rejected`, `return.resolved`.""",
)

COMPLAINTS = Definition(
    "Complaints by category with SLA (投诉)",
    """Complaints received in the date range (`complaint.received`, business date of
received_at), by category (or severity, channel, department): received, acknowledged,
acknowledged within 48 h (`complaint.acknowledged` within_sla), breached
(`complaint.sla_breached`), awaiting acknowledgement (neither yet), resolved, closed, customer
misuse. sla_compliance = acknowledged within 48 h / complaints acknowledged or breached (those
still inside their 48 hours are not judged yet); goal 100%.""",
)

PROMOTIONS = Definition(
    "Promotion statistics (促销活动的销售统计报表)",
    """Per promotion (`promotion.planned`): net sales of its SKUs to its channels (all, when it names
none) during its period (starts_on … ends_on) against the same number of days just before
(`before_*`), uplift = during / before − 1; promoted sales and gifts issued = delivered lines
carrying the promotion's id (net of returns; gifts from gift_quantity); budget spent = sum of
`promotion.cost_incurred` less `promotion.cost_released` (an order cancelled or rejected gives
its cost back); budget_used = spent / budget.""",
)

SATISFACTION = Definition(
    "Customer satisfaction per half-year (满意度调查)",
    """Per half-year period of `survey.recorded` (optionally per rep, district, area): satisfied
surveys / surveys. Goal by the year of the survey programme, counted from the first period
any survey was recorded: 95% in the first year (its first two half-years), 97% in the
second, 98% from the third.""",
)

CUSTOMER_BASE = Definition(
    "Customer base (客户构成): new, active, dormant, lost",
    """Customers with an archive entry, by their status on `as_of` (the last of
`customer.registered` / `approved` / `rejected` / `status_changed` / `merged` by then):
- new: became active (first status `active`) between `from` and `as_of`;
- active: status active (or dormant) and an order placed (`order.placed`, not cancelled by
  then) in the last N days, or became active in the last N days;
- dormant: status active (or dormant) and no order placed in the last N days (N =
  `dormant_days`, default 60);
- lost: status lost; prospects: pending or prospect.
Per rep, district or area of the customer's current assignment.""",
)

# -- the sales offices (案场) ------------------------------------------------------------------

OFFICE_LEADS = Definition(
    "Lead registers per day and rep (来电来访登记)",
    """Register lines (`lead_register.entry_recorded`) by business date and by the rep who took
the line, in the date range:
- calls / walk_ins: lines of the phone / walk-in register received as new customers (`new_lead`:
  not known before, or their registration lapsed or they were released);
- returning_visits: walk-in lines of a customer received by their own rep (`basis` own);
- duty_receptions: lines received on duty (`basis` duty, remark "duty"), counted for the duty rep
  and in no other figure;
- first_visits_in_7_days: of the calls, those whose caller came to see (a walk-in line of the same
  lead, not as a new customer) within 7 days of the call; first_visit_rate = that / calls;
- deposits, subscriptions, contracts: of the new customers (calls + walk_ins), those with a unit
  reserved (`unit.reserved`), a subscription signed (`unit.subscribed`), a contract signed
  (`unit.contracted`) on or after the line's day and before they were next received as new
  (a later sale of a released customer counts for the later line); each with its rate over the
  new customers.
Group by any of day, rep, project.""",
)

DAILY_CLOSE = Definition(
    "Daily close-out (日清): today's result, tomorrow's forecast",
    """Per rep of a sales office for one business date (`date`, default today): the reps who signed
in that day, had a deal step credited that day, or closed that day or the day before.
- result: deposits (units reserved, `unit.reserved`), subscriptions (signed, `unit.subscribed`),
  contracts (`unit.contracted`) credited to the rep on that day, and amount_fen = the signed
  subscriptions' prices;
- forecast: what the rep forecast for this day in the previous day's close
  (`daily_close.recorded`); forecast_missed = any result below its forecast; miss_reason = the
  reason given in this day's close (reason_missing when missed and none was given);
- forecast_for_tomorrow: this day's close; closed = the rep recorded it.""",
)

WEEKLY_TARGETS = Definition(
    "Weekly targets claimed at the Monday meeting (周例会申领业绩指标)",
    """Per rep, the claim of the week (`weekly_target.claimed`, week = its Monday): claimed
subscriptions and amount, and what was achieved that week (Monday to Sunday): signed
subscriptions (`unit.subscribed`) credited to the rep, less signed subscriptions released
(`unit.reservation_released` from subscribed), count and amount; completion = achieved /
claimed. week_over says the figures are final, for the next Monday's meeting.""",
)

PERFORMANCE_WARNINGS = Definition(
    "Performance warnings (考核预警)",
    """Per rep who signed in at a sales office in the month: the month's target (`target.set`,
level rep, all products), actual = signed subscriptions credited to the rep from the first of the
month to `as_of` (default today) less signed subscriptions released, expected_fen = the target
spread evenly over the days from the rep's first sign-in of the month (`started_on`) to the
month's end, for the days from then to `as_of` (rounded down), achievement = actual / target,
behind = actual is more than the margin (`REPORTING_WARNING_MARGIN_PERCENT`, default 20%) below
expected. flag = the latest warning of the month: oral (口头预警) the first time the review finds
the rep behind, written (书面预警) when still behind `REPORTING_WARNING_ESCALATION_DAYS` (default 7)
days after the oral one; history = every warning with its figures (`performance_warning.given`).
The review runs every hour (and on `review_performance`) and judges the days already closed: the
month up to yesterday.""",
)

OFFICE_SALES = Definition(
    "Sales by project, building and layout (销售统计)",
    """Deal steps whose business date falls in the range, by project, building, layout (户型) or
the rep credited: reservations (`unit.reserved`), subscriptions signed (`unit.subscribed`) and
their amount, contracts (`unit.contracted`) and their amount, handovers (`unit.handed_over`),
releases (`unit.reservation_released`). Amounts are the deals' prices in fen.""",
)

UNIT_INVENTORY = Definition(
    "Unit inventory by status (销控)",
    """Units now (`unit.defined`, then each status step) per project, building or layout: units,
and how many are unreleased (in no price list yet), available, reserved, subscribed, contracted,
mortgage in progress, handed over; available_value_fen and available_area_sqm = the total
prices and areas of the available units. A rep reads their office's inventory.""",
)

DEPOSITS_DUE = Definition(
    "Deposits due to be completed (补足定金)",
    """Reserved units whose deposit is partial (`unit.deposit_received` with due_by): agreed,
paid, missing, due by (24 hours after the first payment) and overdue (flagged
`unit.deposit_overdue`, or past due_by now), with the lead and the rep credited.""",
)

REPORTS: dict[str, Definition] = {
    "sales": SALES,
    "composition": COMPOSITION,
    "credit": CREDIT,
    "kpi": KPI,
    "target_achievement": TARGETS,
    "receivables": RECEIVABLES,
    "collections": COLLECTIONS,
    "returns": RETURNS,
    "complaints": COMPLAINTS,
    "promotions": PROMOTIONS,
    "satisfaction": SATISFACTION,
    "customer_base": CUSTOMER_BASE,
    "office_leads": OFFICE_LEADS,
    "daily_close": DAILY_CLOSE,
    "weekly_targets": WEEKLY_TARGETS,
    "performance_warnings": PERFORMANCE_WARNINGS,
    "office_sales": OFFICE_SALES,
    "unit_inventory": UNIT_INVENTORY,
    "deposits_due": DEPOSITS_DUE,
}


# Reports whose changes are announced on reporting.changed.<report> (plus `targets`).
CHANGE_SUBJECTS = (*REPORTS, "targets")
