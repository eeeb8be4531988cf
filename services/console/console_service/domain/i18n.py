"""The console's words in Chinese (the default) and English.

`text(key, lang)` gives a label; `term(kind, value, lang)` the name of a value the services
use (a role, a return reason, a channel …), falling back to the value itself when the console
has no word for it (a product group the catalogue added later, say).
"""

from __future__ import annotations

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"

TEXTS: dict[str, tuple[str, str]] = {
    # the console
    "console": ("销售控制台", "Sales console"),
    "kpi": ("KPI看板", "KPI board"),
    "sales": ("销售报表", "Sales"),
    "targets": ("目标达成", "Target achievement"),
    "composition": ("销售构成", "Composition"),
    "receivables": ("应收账龄", "Receivables ageing"),
    "returns": ("退货", "Returns"),
    "complaints": ("投诉", "Complaints"),
    "satisfaction": ("满意度", "Satisfaction"),
    "customer_base": ("客户构成", "Customer base"),
    "approvals": ("审批", "Approvals"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "language": ("English", "中文"),
    "signed_in_as": ("当前用户", "Signed in as"),
    "live": ("实时更新", "Live"),
    "live_off": ("未连接实时更新", "Not live"),
    "updated_at": ("已更新", "Updated"),
    "download_csv": ("下载CSV", "Download CSV"),
    "apply": ("查询", "Apply"),
    "all": ("全部", "All"),
    "none": ("无", "None"),
    "showing_rows": (
        "显示 {shown} / {total} 行，完整数据请下载CSV",
        "Showing {shown} of {total} rows; the CSV has all",
    ),
    "no_rows": ("所选范围内没有数据", "Nothing in this range"),
    "error_title": ("无法显示", "Cannot show this"),
    "error_403": ("您无权查看此内容（由业务系统判定）", "You may not see this (the service's decision)"),
    "error_502": ("服务暂时无法访问", "A service is not answering"),
    "error_other": ("业务系统拒绝了请求", "The service refused the request"),
    "page_not_found": ("页面不存在", "No such page"),
    # filters
    "period": ("期间", "Period"),
    "today": ("今天", "Today"),
    "week": ("本周", "This week"),
    "month": ("本月", "This month"),
    "last_month": ("上月", "Last month"),
    "last_30_days": ("近30天", "Last 30 days"),
    "custom": ("自定义", "Custom"),
    "from": ("从", "From"),
    "to": ("到", "To"),
    "as_of": ("截至", "As of"),
    "area": ("片区", "Area"),
    "district": ("小区", "District"),
    "rep": ("业务员", "Rep"),
    "customer": ("客户", "Customer"),
    "sku": ("单品", "SKU"),
    "product_group": ("产品类别", "Product group"),
    "grade": ("客户等级", "Grade"),
    "channel": ("渠道", "Channel"),
    "credit_rating": ("信誉等级", "Credit rating"),
    "group_by": ("分组", "Group by"),
    "granularity": ("周期", "Per"),
    "day": ("日", "Day"),
    "week_period": ("周", "Week"),
    "month_period": ("月", "Month"),
    "level": ("层级", "Level"),
    "target_month": ("月份", "Month"),
    "dormant_days": ("休眠天数", "Dormant after days"),
    "total": ("合计", "Total"),
    "role_queue": ("审批队列", "Queue"),
    # KPI board
    "planned": ("计划拜访", "Planned"),
    "done": ("完成拜访", "Done"),
    "successful": ("成功拜访", "Successful"),
    "missed": ("未拜访", "Missed"),
    "unplanned": ("计划外", "Unplanned"),
    "orders_taken": ("下单", "Orders taken"),
    "planned_visit_completion": ("计划拜访完成率", "Planned visits done"),
    "visit_success": ("拜访成功率", "Visit success"),
    "suggested_order_adoption": ("建议订单采纳率", "Suggested orders adopted"),
    "required_sku_distribution": ("必备SKU铺货率", "Required-SKU distribution"),
    "price_tag_compliance": ("价签合格率", "Price tags"),
    "display_compliance": ("陈列合格率", "Display"),
    "cooler_compliance": ("冰柜合格率", "Coolers"),
    "cooler_misuse": ("冰柜挪用率", "Cooler misuse"),
    "on_time_delivery": ("24小时送达率", "Delivered within 24 h"),
    "complaint_ack_48h": ("48小时投诉响应率", "Complaints answered in 48 h"),
    "net_sales": ("销售额（净）", "Net sales"),
    "collected": ("回款", "Collected"),
    "goal": ("目标", "Goal"),
    "legend_green": ("达标", "Goal met"),
    "legend_amber": ("差距5个百分点以内", "Within 5 points"),
    "legend_red": ("未达标", "Goal missed"),
    "legend_none": ("无数据", "No data"),
    "chart_visit_success": ("拜访成功率（目标85%）", "Visit success (goal 85%)"),
    "chart_net_sales_by_rep": ("销售额（净）", "Net sales"),
    # sales
    "quantity": ("数量", "Quantity"),
    "amount": ("金额", "Amount"),
    "gross_amount": ("送货金额", "Delivered"),
    "returned_amount": ("退货金额", "Returned"),
    "gift_quantity": ("赠品数量", "Gifts"),
    "chart_sales_trend": ("销售趋势（净额）", "Sales trend (net)"),
    "chart_top": ("前10名", "Top 10"),
    "period_start": ("期间", "Period"),
    "amount_share": ("金额占比", "Share of amount"),
    "quantity_share": ("数量占比", "Share of quantity"),
    # targets
    "subject": ("对象", "Target of"),
    "target_amount": ("目标金额", "Target"),
    "actual": ("实际完成", "Actual"),
    "achievement": ("完成率", "Achievement"),
    "expected_by_now": ("时间进度目标", "Expected by now"),
    "on_track": ("进度", "On track"),
    "on_track_yes": ("正常", "On track"),
    "on_track_no": ("落后", "Behind"),
    "progress": ("进度条", "Progress"),
    # receivables
    "not_due": ("未到期", "Not due"),
    "d0_30": ("0–30天", "0–30 days"),
    "d31_60": ("31–60天", "31–60 days"),
    "d61_90": ("61–90天", "61–90 days"),
    "d90_plus": ("90天以上", "Over 90 days"),
    "open_amount": ("未收金额", "Open"),
    "past_due": ("逾期金额", "Past due"),
    "open_invoices": ("未结发票", "Open invoices"),
    "credit_limit": ("信用额度", "Credit limit"),
    "chart_ageing": ("账龄分布", "Ageing"),
    "payments": ("收款笔数", "Payments"),
    "overdue_collected": ("逾期回款", "Collected after due"),
    # returns
    "reason": ("原因", "Reason"),
    "resolution": ("处理方式", "Resolution"),
    "scope": ("范围", "Scope"),
    "status": ("状态", "Status"),
    "returns_count": ("退货单数", "Returns"),
    "approved": ("已批准", "Approved"),
    "rejected": ("已驳回", "Rejected"),
    "resolved": ("已处理", "Resolved"),
    "resolved_amount": ("处理金额", "Settled"),
    "chart_returns_by_reason": ("退货原因（金额）", "Returns by reason (amount)"),
    # complaints
    "category": ("类别", "Category"),
    "severity": ("严重程度", "Severity"),
    "department": ("责任部门", "Department"),
    "received": ("收到", "Received"),
    "acknowledged": ("已响应", "Acknowledged"),
    "acknowledged_within_sla": ("48小时内响应", "Within 48 h"),
    "breached": ("超时", "Breached"),
    "awaiting_acknowledgement": ("待响应", "Awaiting answer"),
    "closed": ("已关闭", "Closed"),
    "customer_misuse": ("客户使用不当", "Customer misuse"),
    "sla_compliance": ("48小时响应率", "48 h compliance"),
    "chart_complaints": ("投诉（按类别）", "Complaints by category"),
    # satisfaction
    "half_year": ("半年度", "Half-year"),
    "surveys": ("调查数", "Surveys"),
    "satisfied": ("满意", "Satisfied"),
    "satisfaction_rate": ("满意度", "Satisfaction"),
    "chart_satisfaction": ("满意度趋势与目标", "Satisfaction against its goal"),
    # customer base
    "new": ("新增", "New"),
    "active": ("活跃", "Active"),
    "dormant": ("休眠", "Dormant"),
    "lost": ("流失", "Lost"),
    "prospects": ("潜在/待审", "Prospects"),
    "chart_customer_base": ("客户状态", "Customers by state"),
    # approvals
    "orders_awaiting": ("待审批订单", "Orders awaiting approval"),
    "visits_awaiting": ("待审批拜访", "Visits awaiting approval"),
    "returns_awaiting": ("待审批退货", "Returns awaiting a decision"),
    "requested_at": ("提交时间", "Requested"),
    "due_at": ("审批时限（24小时）", "Decide by (24 h)"),
    "overdue": ("已超时", "Overdue"),
    "waiting": ("等待中", "Waiting"),
    "approve": ("批准", "Approve"),
    "reject": ("驳回", "Reject"),
    "reject_reason": ("驳回原因", "Reason for rejecting"),
    "approval_reasons": ("需审批原因", "Needs approval because"),
    "visit_date": ("拜访日期", "Visit day"),
    "lines": ("明细", "Lines"),
    "inspection": ("复检", "Inspection"),
    "inspection_confirmed": ("复检确认", "Confirmed"),
    "inspection_not_confirmed": ("复检未确认（只能驳回）", "Not confirmed (can only be rejected)"),
    "queue_empty": ("没有等待您决定的事项", "Nothing waits for your decision"),
    "decision_done_approve": ("已批准", "Approved"),
    "decision_done_reject": ("已驳回", "Rejected"),
    "decision_refused": ("业务系统未接受该操作", "The service did not accept this"),
    "order": ("订单", "Order"),
    "visit": ("拜访", "Visit"),
    "return": ("退货单", "Return"),
    # sign-in
    "sign_in_local": (
        "本地演示环境：选择部门中的一位员工登录。令牌由控制台用本地签名密钥签发。",
        "Local system: sign in as a member of the department. The console signs the token with the local key.",
    ),
    "sign_in_department_roles": ("部门级角色", "Department-wide roles"),
    "staff_id": ("工号", "Staff id"),
    "sign_in_token": ("使用平台令牌登录", "Sign in with a platform token"),
    "token": ("令牌", "Token"),
    "sign_in_proxy": (
        "请通过公司的统一身份认证（OIDC）访问控制台；未收到有效令牌。",
        "Open the console through the company's sign-in (OIDC); no valid token arrived.",
    ),
    "sign_in_failed": ("登录失败", "Sign-in failed"),
    "session_expired": ("登录已过期，请重新登录", "Your session has expired; sign in again"),
    "staff_not_found": ("找不到该员工", "No such staff member"),
}

TERMS: dict[str, dict[str, tuple[str, str]]] = {
    "role": {
        "rep": ("业务员", "Rep"),
        "supervisor": ("主管", "Supervisor"),
        "area_manager": ("片区经理", "Area manager"),
        "sales_manager": ("销售经理", "Sales manager"),
        "general_manager": ("总经理", "General manager"),
        "inspector": ("质检员", "Inspector"),
        "clerk": ("文员", "Clerk"),
        "system": ("系统", "System"),
    },
    "channel": {
        "wholesale": ("批发", "Wholesale"),
        "retail": ("零售", "Retail"),
        "agent": ("代理", "Agent"),
        "franchise": ("加盟", "Franchise"),
        "chain": ("连锁", "Chain"),
        "specialty": ("专营", "Specialty"),
    },
    "grade": {"A": ("A类", "A"), "B": ("B类", "B"), "C": ("C类", "C")},
    "credit_rating": {"unrated": ("未评级", "Unrated")},
    "product_group": {
        "carbonated": ("碳酸饮料", "Carbonated"),
        "juice": ("果汁", "Juice"),
        "water": ("饮用水", "Water"),
        "tea": ("茶饮料", "Tea"),
        "dairy": ("乳制品", "Dairy"),
    },
    "reason": {
        "quality_defect": ("质量问题", "Quality defect"),
        "wrong_shipment": ("发错货", "Wrong shipment"),
        "selection_error": ("客户选错", "Customer's wrong choice"),
        "transit_damage": ("运输损坏", "Damaged in transit"),
    },
    "resolution": {
        "exchange": ("换货", "Exchange"),
        "refund": ("退款", "Refund"),
        "credit_note": ("红字发票", "Credit note"),
        "compensation": ("赔偿", "Compensation"),
        "unresolved": ("未处理", "Not settled"),
    },
    "scope": {"whole_batch": ("整批", "Whole batch"), "part": ("部分", "Part")},
    "status": {
        "requested": ("已申请", "Requested"),
        "inspected": ("已复检", "Inspected"),
        "approved": ("已批准", "Approved"),
        "rejected": ("已驳回", "Rejected"),
        "resolved": ("已处理", "Resolved"),
        "closed": ("已关闭", "Closed"),
    },
    "category": {
        "quality": ("质量", "Quality"),
        "technical": ("技术", "Technical"),
        "logistics": ("物流", "Logistics"),
        "service": ("服务", "Service"),
    },
    "severity": {
        "low": ("低", "Low"),
        "medium": ("中", "Medium"),
        "high": ("高", "High"),
        "critical": ("严重", "Critical"),
    },
    "department": {
        "production": ("生产部", "Production"),
        "technical": ("技术部", "Technical"),
        "logistics": ("物流部", "Logistics"),
        "sales": ("销售部", "Sales"),
        "unrouted": ("未分派", "Not routed"),
    },
    "complaint_channel": {
        "phone": ("电话", "Phone"),
        "letter": ("信函", "Letter"),
        "email": ("电子邮件", "Email"),
        "visit": ("拜访", "Visit"),
        "web": ("网站", "Web"),
        "in_person": ("当面", "In person"),
        "other": ("其他", "Other"),
    },
    "approval_reason": {
        "amount_over_threshold": ("金额超过审批线", "Amount over the threshold"),
        "credit_limit_exceeded": ("超出信用额度", "Over the credit limit"),
        "overdue_receivables": ("有逾期欠款", "Overdue receivables"),
        "price_below_floor": ("低于底价", "Price below the floor"),
        "price_below_list": ("低于牌价", "Price below the list"),
        "key_account": ("重点客户拜访", "Key-account visit"),
        "unplanned": ("计划外拜访", "Unplanned visit"),
    },
    "level": {
        "rep": ("业务员", "Rep"),
        "district": ("小区", "District"),
        "area": ("片区", "Area"),
    },
}


def language(value: str | None) -> str:
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def text(key: str, lang: str, **values: object) -> str:
    pair = TEXTS.get(key)
    if pair is None:
        return key
    words = pair[0] if lang == "zh" else pair[1]
    return words.format(**values) if values else words


def term(kind: str, value: object, lang: str) -> str:
    if value is None:
        return ""
    pair = TERMS.get(kind, {}).get(str(value))
    if pair is None:
        return str(value)
    return pair[0] if lang == "zh" else pair[1]
