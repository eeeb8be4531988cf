"""Apache ECharts options for the console's charts, built from report rows.

Each option is plain JSON placed in the page; `unit` (yuan, percent, count) tells the page's
script how to format axes and tooltips, since JSON cannot carry formatter functions. Money is
drawn in yuan, shares in percent points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

Unit = Literal["yuan", "percent", "count"]

# The console's palette: the company's blue first, then colours that stay apart in print.
PALETTE = ["#1f6feb", "#2da44e", "#d4a72c", "#cf222e", "#8250df", "#1b7c83", "#bc4c00", "#57606a"]


@dataclass(frozen=True)
class Chart:
    id: str
    option: dict[str, Any]


def _base(title: str, unit: Unit) -> dict[str, Any]:
    return {
        "unit": unit,
        "color": PALETTE,
        "title": {"text": title, "left": 0, "textStyle": {"fontSize": 14, "fontWeight": 600}},
        "tooltip": {"trigger": "axis", "confine": True},
        "grid": {"left": 8, "right": 28, "top": 48, "bottom": 8, "containLabel": True},
        "animation": False,
    }


def _ceiling(
    series: Sequence[tuple[str, Sequence[float | None]]], goal: float | None, unit: Unit, stacked: bool
) -> dict[str, Any]:
    """A percent axis reaches 100% (and a goal line above the bars stays in view)."""
    if unit != "percent":
        return {}
    values = [v for _, vs in series for v in vs if v is not None]
    top = max([*values, goal or 0, 0])
    return {"min": 0, "max": 100} if top <= 100 and not stacked else {"min": 0}


def bars(
    title: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    unit: Unit,
    goal: float | None = None,
    goal_label: str = "",
    stacked: bool = False,
) -> dict[str, Any]:
    option = _base(title, unit)
    option["legend"] = {"top": 30, "left": 0} if len(series) > 1 else {"show": False}
    if len(series) > 1:
        option["grid"]["top"] = 72
    option["xAxis"] = {"type": "category", "data": list(categories), "axisLabel": {"interval": 0, "rotate": 30}}
    option["yAxis"] = {"type": "value", **_ceiling(series, goal, unit, stacked)}
    option["series"] = []
    for name, values in series:
        entry: dict[str, Any] = {"name": name, "type": "bar", "data": list(values), "barMaxWidth": 36}
        if stacked:
            entry["stack"] = "total"
        option["series"].append(entry)
    if goal is not None and option["series"]:
        option["series"][0]["markLine"] = {
            "symbol": "none",
            "lineStyle": {"color": "#cf222e", "type": "dashed"},
            "label": {"formatter": goal_label or str(goal), "position": "insideEndTop"},
            "data": [{"yAxis": goal}],
        }
    return option


def trend(
    title: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    unit: Unit,
    step_goal: bool = False,
) -> dict[str, Any]:
    """Lines over periods; a series named with `step_goal` is drawn as a dashed step (a goal)."""
    option = _base(title, unit)
    option["legend"] = {"top": 30, "left": 0}
    option["grid"]["top"] = 72
    option["xAxis"] = {"type": "category", "data": list(categories), "boundaryGap": False}
    option["yAxis"] = {"type": "value", **_ceiling(series, None, unit, False)}
    option["series"] = []
    for i, (name, values) in enumerate(series):
        entry: dict[str, Any] = {"name": name, "type": "line", "data": list(values), "smooth": False}
        if step_goal and i == len(series) - 1:
            entry.update(step="middle", lineStyle={"type": "dashed"}, symbol="none")
        else:
            entry["areaStyle"] = {"opacity": 0.08}
        option["series"].append(entry)
    return option


def pie(title: str, items: Sequence[tuple[str, float]], *, unit: Unit) -> dict[str, Any]:
    option = _base(title, unit)
    option["tooltip"] = {"trigger": "item", "confine": True}
    option["legend"] = {"type": "scroll", "orient": "vertical", "right": 0, "top": 28}
    option["series"] = [
        {
            "type": "pie",
            "radius": ["38%", "68%"],
            "center": ["40%", "56%"],
            "data": [{"name": name, "value": value} for name, value in items],
            "label": {"formatter": "{b}: {d}%"},
        }
    ]
    return option
