"""Red, amber or green against a goal, for the KPI board.

The reports judge each figure themselves (`{value, goal, met}`): met is green. The console adds
only the warning band a manager asks for: a figure that misses its goal by at most
`AMBER_BAND` (five percentage points) is amber, further off red. A goal of 0% (cooler misuse)
is a ceiling, so the band lies above it. No value (nothing counted yet) is grey.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

Light = Literal["green", "amber", "red", "none"]
AMBER_BAND = 0.05


def light(figure: Mapping[str, Any] | None) -> Light:
    if not figure or figure.get("value") is None:
        return "none"
    if figure.get("met"):
        return "green"
    value, goal = float(figure["value"]), figure.get("goal")
    if goal is None:
        return "red"
    goal = float(goal)
    miss = value - goal if goal == 0 else goal - value
    return "amber" if miss <= AMBER_BAND + 1e-9 else "red"
