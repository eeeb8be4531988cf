"""Positions on the earth and the distance between them.

Road distance is approximated by the great-circle (haversine) distance on a sphere of the
earth's mean radius unless a distance matrix is given; within a town the two differ by a
roughly constant detour factor, which does not change which order of stops is shortest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The earth's mean radius (IUGG), in metres.
EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class Point:
    latitude: float
    longitude: float

    def __post_init__(self) -> None:
        if not (-90.0 <= self.latitude <= 90.0) or not (-180.0 <= self.longitude <= 180.0):
            raise ValueError(f"not a position on the earth: {self.latitude}, {self.longitude}")


def haversine_m(a: Point, b: Point) -> float:
    """Great-circle distance between two points, in metres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.latitude, a.longitude, b.latitude, b.longitude))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))
