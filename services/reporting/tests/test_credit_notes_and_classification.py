"""Credit notes lower receivables, an invoice due today is not overdue, and composition counts a
sale by the classification in force on its day — live, and the same after every kind of rebuild.

The story (company time zone Asia/Shanghai), on top of the month's organisation and customers:
  c1 (grade A, retail): o1 delivered 11-02, 2000 fen; o2 delivered 11-20, 1000 fen.
  c1 is regraded to C on 11-10, between the two sales.
  Invoice i1 (o1) 2000, issued 11-02, due 11-30; invoice i2 (o2) 1000, issued 11-20, due 12-20.
  Payment 500 on i1 on 11-05. Return ret1 of o1, s1×3 (300), approved 11-12 and resolved on
  11-15 with a credit note of 300: i1 open 2000 − 500 − 300 = 1200 from 11-15.
  A second credit note ret2 of o2 for 1500 is more than i2 has open: it credits 1000 on 11-25.
"""

from __future__ import annotations

from typing import Any

from reporting_testkit import MANAGER, Fed, Month, by, local

from salesplatform.projections import rebuild


def story() -> list[Fed]:
    m = Month()
    out = m.organisation() + m.customers()
    out += m.order(
        "o1", "c1", "r1", "d1", "a1", "2026-11-02", [("s1", "beverage", 20, 100)], delivered_at=local("2026-11-02", 15)
    )
    out += m.order(
        "o2", "c1", "r1", "d1", "a1", "2026-11-20", [("s1", "beverage", 10, 100)], delivered_at=local("2026-11-20", 15)
    )
    out.append(
        m.ev(
            "customer",
            "customer-c1",
            "customer.classified",
            {"customer_id": "c1", "nature": "company", "ownership": "private", "channel": "chain", "grade": "C"},
            local("2026-11-10"),
        )
    )
    for iid, order, amount, issued, due in (
        ("i1", "o1", 2000, "2026-11-02", "2026-11-30"),
        ("i2", "o2", 1000, "2026-11-20", "2026-12-20"),
    ):
        out.append(
            m.ev(
                "orders",
                f"invoice-{iid}",
                "invoice.issued",
                {
                    "invoice_id": iid,
                    "order_id": order,
                    "customer_id": "c1",
                    "amount_fen": amount,
                    "issued_on": issued,
                    "due_on": due,
                },
                local(issued, 16),
            )
        )
    out.append(
        m.ev(
            "orders",
            "payment-pay1",
            "payment.received",
            {
                "payment_id": "pay1",
                "customer_id": "c1",
                "amount_fen": 500,
                "received_on": "2026-11-05",
                "allocations": [{"invoice_id": "i1", "amount_fen": 500}],
            },
            local("2026-11-05"),
        )
    )
    out += m.ret(
        "ret1",
        "o1",
        "c1",
        [("s1", 3, 300)],
        "transit_damage",
        "2026-11-11",
        outcome="approved",
        decided="2026-11-12",
    )
    out.append(
        m.ev(
            "orders",
            "return-ret1",
            "return.resolved",
            {"return_id": "ret1", "resolution": "credit_note", "amount_fen": 300},
            local("2026-11-15"),
        )
    )
    out += m.ret(
        "ret2",
        "o2",
        "c1",
        [("s1", 10, 1000)],
        "transit_damage",
        "2026-11-21",
        outcome="approved",
        decided="2026-11-25",
        resolution="credit_note",
        amount=1500,
    )
    return out


def ageing(items: list[dict[str, Any]]) -> tuple[int, ...]:
    (row,) = items
    return tuple(row[b] for b in ("not_due", "d1_30", "d31_60", "open_fen", "past_due_fen"))


async def figures(h) -> dict[str, Any]:
    async def report(path: str, **params: Any) -> list[dict[str, Any]]:
        return await h.report(path, MANAGER, **params)

    return {
        "ageing_11_14": ageing(await report("/reports/receivables", as_of="2026-11-14", customer_id="c1")),
        "ageing_11_30": ageing(await report("/reports/receivables", as_of="2026-11-30", customer_id="c1")),
        "ageing_12_01": ageing(await report("/reports/receivables", as_of="2026-12-01", customer_id="c1")),
        "credit": {
            k: v
            for k, v in (await report("/reports/credit", group_by="customer", customer_id="c1", as_of="2026-11-30"))[
                0
            ].items()
            if k in ("open_fen", "past_due_fen", "headroom_fen", "over_limit")
        },
        "grade": {
            r["grade"]: r["amount_fen"]
            for r in await report("/reports/composition", from_="2026-11-01", to="2026-11-30", by="grade")
        },
        "channel": {
            r["channel"]: r["amount_fen"]
            for r in await report("/reports/composition", from_="2026-11-01", to="2026-11-30", by="channel")
        },
        "current": {
            r["grade"]: r["amount_fen"]
            for r in await report(
                "/reports/composition", from_="2026-11-01", to="2026-11-30", by="grade", classification="current"
            )
        },
        "district": await report("/reports/composition", from_="2026-11-01", to="2026-11-30", by="district"),
    }


async def test_credit_notes_due_today_and_classification_at_sale_survive_rebuilds(h) -> None:
    await h.feed(story())
    seen = await figures(h)

    # Before the credit note: 2000 − 500 = 1500 open on i1, not due before the 30th.
    assert seen["ageing_11_14"] == (1500, 0, 0, 1500, 0)
    # On 11-30 i1 is due today: open 1200 after the credit note, not overdue yet; i2 is not
    # due and fully credited (1500 asked, 1000 open: 1000 credited).
    assert seen["ageing_11_30"] == (1200, 0, 0, 1200, 0)
    # The day after, i1 is one day past due.
    assert seen["ageing_12_01"] == (0, 1200, 0, 1200, 1200)
    # c1's limit is 100,000 (credit rating AA).
    assert seen["credit"] == {"open_fen": 1200, "past_due_fen": 0, "headroom_fen": 98_800, "over_limit": False}

    # o1 (2000) was sold while c1 was grade A and retail; the return of 300 and o2 (1000) and
    # its return of 1000 after the regrade to C / chain (11-10).
    assert seen["grade"] == {"A": 2000, "C": -300}
    assert seen["channel"] == {"retail": 2000, "chain": -300}
    assert seen["current"] == {"C": 1700}
    assert [(r["district_id"], r["amount_fen"]) for r in seen["district"]] == [("d1", 1700)]

    # A rebuild from the log gives the same figures: each projection alone, and all in one pass
    # cut into small stretches (so credit notes and regrades land in stretches of their own).
    for name in ("receivables", "directory", "sales"):
        await h.rt.rebuild(name)
    assert await figures(h) == seen
    await rebuild(h.rt.pool, h.rt.definition.projections, stretch_events=7, lanes=1)
    assert await figures(h) == seen
    assert by(await h.report("/reports/receivables", MANAGER, as_of="2026-11-30"), "customer_id").keys() == {"c1"}
