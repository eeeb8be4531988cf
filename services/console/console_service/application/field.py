"""Field work for supervisors: the check-ins not verified where the outlet is (distance, coarse
readings, coordinates repeated at other outlets: likely faked), and the review of the visits'
photos against the channel's standard picture (成功图象).

Both read the visit service's supervisor queries with the viewer's token; who may read them
(a supervisor and up, in their line, and the clerk) is the visit service's decision, so a rep
sees its 403. Photos are shown through the console (`/photos/<visit>/<photo>`), which fetches
them with the viewer's token: the browser never holds a token of its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from console_service.application.directory import Option
from console_service.application.office import local_time
from console_service.application.pages import (
    CHART_BARS,
    Card,
    Context,
    PageBuilder,
    PageView,
    Select,
    date_filters,
    gather,
    territory_filters,
)
from console_service.domain import charts
from console_service.domain.charts import Chart
from console_service.domain.tables import Column, Table

FLAGS = ("far_from_outlet", "low_accuracy", "repeated_coordinates", "outlet_position_unknown")
REVIEW_STATES = ("pending", "reviewed", "all")


def territory_of_visits(territory: Mapping[str, str]) -> dict[str, str]:
    """The visit service's supervisor queries take a district or an area (not a rep)."""
    return {"district_id": territory["district_id"], "area_id": territory["area_id"]}


async def check_ins(ctx: Context) -> PageView:
    view = ctx.begin("check_ins", [])
    filters = view.filters
    dates = date_filters(ctx, filters)
    territory = territory_of_visits(await territory_filters(ctx, filters))
    filters.territory = _without_reps(filters.territory)
    body = await ctx.services.get("visit", "/check-ins/flagged", ctx.viewer.token, {**dates, **territory})
    found = body.get("check_ins", [])
    repeated = body.get("repeated_coordinates", [])
    customers = await ctx.directory.customer_names(
        [c["customer_id"] for c in found[: ctx.rows]] + [c for r in repeated for c in r.get("customer_ids", [])],
        ctx.viewer.actor.id,
        ctx.viewer.token,
    )
    names = await ctx.names(found, rep="rep_id")
    rows = [
        {
            "visit_id": c["visit_id"],
            "business_date": c["business_date"],
            "at": local_time(ctx, c.get("at")),
            "rep": names.person(c["rep_id"]),
            "customer": customers.get(c["customer_id"], c["customer_id"]),
            "district": names.district(c.get("district_id")),
            "distance_m": round(c["distance_m"]) if c.get("distance_m") is not None else None,
            "accuracy_m": round(c["accuracy_m"]) if c.get("accuracy_m") is not None else None,
            "flags": ", ".join(ctx.term("check_in_flag", f) for f in c.get("flags") or []),
            "coordinates": _coordinates(c),
            "confirmed_by": names.person(c["confirmed_by"]) if c.get("confirmed_by") else "",
        }
        for c in found
    ]
    view.tables.append(
        Table(
            "flagged-check-ins",
            "flagged_check_ins",
            [
                Column("business_date", "business_date"),
                Column("at", "time"),
                Column("rep", "rep"),
                Column("customer", "customer"),
                Column("district", "district"),
                Column("distance_m", "distance_m", "count"),
                Column("accuracy_m", "accuracy_m", "count"),
                Column("flags", "check_in_flags"),
                Column("coordinates", "coordinates"),
                Column("confirmed_by", "confirmed_by"),
            ],
            rows[: ctx.rows],
            total=len(rows),
            key="visit_id",
        )
    )
    sets = [
        {
            "coordinates": _coordinates(r),
            "outlets": ", ".join(customers.get(c, c) for c in r.get("customer_ids", [])),
            "outlet_count": len(r.get("customer_ids", [])),
            "check_ins": len(r.get("visit_ids", [])),
        }
        for r in repeated
    ]
    view.tables.append(
        Table(
            "repeated-coordinates",
            "repeated_coordinates",
            [
                Column("coordinates", "coordinates"),
                Column("outlet_count", "outlet_count", "count"),
                Column("check_ins", "check_ins", "count"),
                Column("outlets", "outlets"),
            ],
            sets,
            key="coordinates",
        )
    )
    flags = Counter(f for c in found for f in c.get("flags") or [])
    view.cards = [
        Card("flagged_check_ins", len(found), "count"),
        *(Card(f"flag_{f}", flags.get(f, 0), "count") for f in FLAGS),
        Card("repeated_coordinates", len(repeated), "count"),
    ]
    per_rep = Counter(r["rep"] for r in rows)
    top = per_rep.most_common(CHART_BARS * 2)
    view.charts.append(
        Chart(
            "check-ins-by-rep",
            charts.bars(
                ctx.t("chart_flagged_by_rep"),
                [name for name, _ in top],
                [(ctx.t("flagged_check_ins"), [n for _, n in top])],
                unit="count",
            ),
        )
    )
    return view


def _coordinates(row: Mapping[str, Any]) -> str:
    lat, lon = row.get("latitude"), row.get("longitude")
    return f"{lat:.6f}, {lon:.6f}" if lat is not None and lon is not None else ""


def _without_reps(territory: Any) -> Any:
    """The visit service's lists are by district or area: the form offers no rep."""
    return None if territory is None else replace(territory, reps=[])


def photo_path(visit_id: str, photo_id: str) -> str:
    """Where the console shows a photo (it fetches the image with the viewer's token)."""
    return f"/photos/{quote(visit_id, safe='')}/{quote(photo_id, safe='')}"


async def photos(ctx: Context) -> PageView:
    view = ctx.begin("photos", [])
    filters = view.filters
    dates = date_filters(ctx, filters)
    territory = territory_of_visits(await territory_filters(ctx, filters))
    filters.territory = _without_reps(filters.territory)
    state = Select(
        "status",
        "review_status",
        [Option(s, ctx.t(f"review_{s}")) for s in REVIEW_STATES],
        ctx.param("status", REVIEW_STATES, "pending"),
    )
    filters.selects.append(state)
    body, pictures = await gather(
        ctx.services.get("visit", "/photos/review", ctx.viewer.token, {**dates, **territory, "status": state.value}),
        ctx.services.get("visit", "/standard-pictures", ctx.viewer.token),
    )
    # The checklist's items by code, as the standard pictures describe them.
    described = {
        item["code"]: item["description"]
        for picture in pictures.get("standard_pictures", [])
        for item in picture.get("items") or []
    }
    found = body.get("photos", [])
    customers = await ctx.directory.customer_names(
        [p["customer_id"] for p in found[: ctx.rows]], ctx.viewer.actor.id, ctx.viewer.token
    )
    names = await ctx.names(found, rep="rep_id")
    rows = []
    for p in found:
        audit = p.get("audit") or {}
        rows.append(
            {
                "photo_id": p["photo_id"],
                "image": photo_path(p["visit_id"], p["photo_id"]) if p.get("content_url") else "",
                "business_date": p["business_date"],
                "taken_at": local_time(ctx, p.get("taken_at")),
                "rep": names.person(p["rep_id"]),
                "customer": customers.get(p["customer_id"], p["customer_id"]),
                "kind": ctx.term("photo_kind", p.get("kind")),
                "standard_met": _standard(ctx, audit.get("standard_met")),
                "missing_items": "; ".join(described.get(i, i) for i in audit.get("missing_items") or []),
                "verdict": ctx.term("verdict", p.get("verdict")) if p.get("verdict") else ctx.t("review_pending"),
                "review_note": p.get("review_note") or "",
            }
        )
    view.tables.append(
        Table(
            "photo-review",
            "photo_review",
            [
                Column("image", "photo", "photo"),
                Column("business_date", "business_date"),
                Column("taken_at", "time"),
                Column("rep", "rep"),
                Column("customer", "customer"),
                Column("kind", "photo_kind"),
                Column("standard_met", "standard_met"),
                Column("missing_items", "missing_items"),
                Column("verdict", "verdict"),
                Column("review_note", "review_note"),
            ],
            rows[: ctx.rows],
            total=len(rows),
            key="photo_id",
        )
    )
    met = sum(1 for p in found if (p.get("audit") or {}).get("standard_met") is True)
    missed = sum(1 for p in found if (p.get("audit") or {}).get("standard_met") is False)
    view.cards = [
        Card("photos_count", len(found), "count"),
        Card("standard_met", met, "count"),
        Card("standard_missed", missed, "count"),
        Card("review_pending", sum(1 for p in found if not p.get("verdict")), "count"),
    ]
    kinds = Counter(r["kind"] for r in rows)
    view.charts.append(
        Chart(
            "photos-by-kind",
            charts.pie(ctx.t("chart_photos_by_kind"), [(k, n) for k, n in kinds.items()], unit="count"),
        )
    )
    return view


def _standard(ctx: Context, met: bool | None) -> str:
    if met is None:
        return ""
    return ctx.t("standard_yes" if met else "standard_no")


FIELD_PAGES: dict[str, PageBuilder] = {"check_ins": check_ins, "photos": photos}
