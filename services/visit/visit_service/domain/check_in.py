"""Where a check-in happened, judged against where the outlet is (GPS check-in, 定位签到).

A check-in carries the phone's position and its accuracy (the radius, in metres, the phone
is sure of). It is verified when the outlet's position is known and the check-in lies within
`max_distance_m` of it (200 m by default), read with an accuracy no coarser than that same
distance. Flags say why one is not:

- `far_from_outlet`: farther than `max_distance_m` from the outlet (the distance is recorded);
- `low_accuracy`: the phone's accuracy radius is wider than `max_distance_m`, so the reading
  cannot show the rep was at the outlet;
- `repeated_coordinates`: exactly the same coordinates were used for a check-in at another
  outlet in the last `repeat_window_days` days — a real GPS fix never repeats to the last digit
  at two places, a faked location does;
- `outlet_position_unknown`: the outlet has no position (none on the card yet, or it is an
  individual customer's home, which stays sealed): the check-in cannot be judged.

`verified` is True, False (any of the first three flags) or None (only the last one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from visit_service.domain.geo import Point, haversine_m

FAR_FROM_OUTLET = "far_from_outlet"
LOW_ACCURACY = "low_accuracy"
REPEATED_COORDINATES = "repeated_coordinates"
OUTLET_POSITION_UNKNOWN = "outlet_position_unknown"

# Flags that make a check-in not verified (the last one leaves it undecided).
DISQUALIFYING = frozenset({FAR_FROM_OUTLET, LOW_ACCURACY, REPEATED_COORDINATES})


@dataclass(frozen=True)
class PositionRules:
    max_distance_m: float = 200.0
    repeat_window_days: int = 30


@dataclass(frozen=True)
class PositionCheck:
    distance_m: float | None
    flags: tuple[str, ...]
    repeated_at: tuple[str, ...]  # the other visits with the same coordinates

    @property
    def verified(self) -> bool | None:
        if DISQUALIFYING.intersection(self.flags):
            return False
        if OUTLET_POSITION_UNKNOWN in self.flags:
            return None
        return True


def assess_position(
    at: Point,
    accuracy_m: float | None,
    outlet: Point | None,
    rules: PositionRules,
    same_coordinates_elsewhere: Sequence[str] = (),
) -> PositionCheck:
    """Judge one check-in. `same_coordinates_elsewhere`: visits to other outlets checked in at
    exactly these coordinates within the window (the caller looks them up)."""
    flags: list[str] = []
    distance: float | None = None
    if outlet is None:
        flags.append(OUTLET_POSITION_UNKNOWN)
    else:
        distance = round(haversine_m(at, outlet), 1)
        if distance > rules.max_distance_m:
            flags.append(FAR_FROM_OUTLET)
    if accuracy_m is not None and accuracy_m > rules.max_distance_m:
        flags.append(LOW_ACCURACY)
    if same_coordinates_elsewhere:
        flags.append(REPEATED_COORDINATES)
    return PositionCheck(distance, tuple(flags), tuple(sorted(same_coordinates_elsewhere)))
