"""The 7-day follow-up rule (跟踪): a prospect must be followed up by its rep — a visit or a
logged contact — at least every 7 days; one left longer is released from that rep
(超过7天未跟踪的客户视为自动放弃) and may be claimed by another rep of the district.

The clock starts when the rep got the prospect (approval, assignment, claim, or the status
turning back to prospect) and restarts with each visit check-in or logged contact by that rep.
"""

from __future__ import annotations

from datetime import datetime, timedelta

FOLLOW_UP_WINDOW = timedelta(days=7)


def follow_up_overdue(last_follow_up: datetime, now: datetime) -> bool:
    """More than 7 days since the last follow-up."""
    return now - last_follow_up > FOLLOW_UP_WINDOW


def release_due_before(now: datetime) -> datetime:
    """Prospects last followed up before this instant are due for release."""
    return now - FOLLOW_UP_WINDOW
