"""Idempotency keys are the caller's own: a key another caller used before neither answers
with that caller's result nor stops the command."""

from __future__ import annotations


async def test_a_managers_key_reused_by_a_rep_of_another_area_applies_the_reps_update(api, archive, org) -> None:
    of_r1 = await archive.approved(org.r1)
    of_r4 = await archive.approved(org.r4)
    key = {"Idempotency-Key": "K"}

    def change(customer_id: str, quality: str) -> dict:
        return {"customer_id": customer_id, "changes": {"business_status.staff_quality": quality}, "reason": "走访"}

    managers = await api.command(org.sm, "update_profile", change(of_r1, "好"), **key)
    assert managers.status_code == 200, managers.text
    reps = await api.command(org.r4, "update_profile", change(of_r4, "差"), **key)
    assert reps.status_code == 200, reps.text
    assert of_r1 not in reps.text  # nothing of the manager's command leaks
    card = (await api.get(org.r4, f"/customers/{of_r4}")).json()
    assert card["business_status"]["staff_quality"] == "差"
    untouched = (await api.get(org.sm, f"/customers/{of_r1}")).json()
    assert untouched["business_status"]["staff_quality"] == "好"

    again = await api.command(org.r4, "update_profile", change(of_r4, "差"), **key)
    assert again.json() == reps.json()
    reused = await api.command(org.r4, "update_profile", change(of_r4, "好"), **key)
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"
    assert (await api.get(org.r4, f"/customers/{of_r4}")).json()["business_status"]["staff_quality"] == "差"
