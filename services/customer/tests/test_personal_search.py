"""Finding customers by the personal data sealed on their cards (names and phones of
individuals, owners and contacts) through a blind index that an erasure empties."""

from __future__ import annotations

PERSON = {
    "name": "刘 芳",
    "address": "上海市徐汇区漕溪北路8弄3号",
    "phone": "13700001111",
    "nature": "individual",
    "ownership": None,
    "channel": "retail",
    "location_type": "residential",
    "base": {"owner": {"name": "刘芳", "phone": "13700001111"}},
    "contacts": [{"name": "刘芳丈夫", "phone": "13700002222"}],
}


async def found(api, actor, q: str) -> list[str]:
    r = await api.get(actor, "/customers", q=q)
    assert r.status_code == 200, r.text
    return [item["customer_id"] for item in r.json()["items"]]


async def test_a_customer_is_found_by_a_whole_sealed_name_or_phone_within_the_readers_line(
    rt,
    api,
    archive,
    org,
    outlet,
    owner,
) -> None:
    person = (await api.ok(org.r1, "register_customer", outlet(**PERSON)))["customer_id"]
    company = await archive.approved(org.r1)
    elsewhere = await archive.approved(
        org.r4,
        name="西湖烟酒店",
        base={"owner": {"name": "孙立", "phone": "13600003333"}},
        contacts=[{"name": "李小红", "phone": "13998765432"}],
    )
    await rt.runner.run_once()

    assert await found(api, org.clerk, "137 0000 1111") == [person]  # the individual's phone, spaced
    assert await found(api, org.clerk, "刘芳") == [person]  # the individual's name, whatever its spacing
    assert await found(api, org.clerk, "13700002222") == [person]  # a contact's phone
    assert await found(api, org.clerk, owner["phone"]) == [company]  # the owner's phone
    assert await found(api, org.clerk, "王建国") == [company]  # the owner's name
    assert sorted(await found(api, org.clerk, "李小红")) == sorted([company, elsewhere])  # a contact's name
    assert await found(api, org.r1, "李小红") == [company]  # a rep finds only own customers
    assert await found(api, org.r4, "13700001111") == []
    assert await found(api, org.clerk, "1370000") == []  # whole numbers only: sealed data is not scanned
    composition = (await api.get(org.sm, "/customers/composition", q="13700001111", status="pending")).json()
    assert composition["total"] == 1

    async with rt.pool.acquire() as conn:
        schema = await conn.fetchval("SELECT active_schema FROM projections WHERE name = 'personal_search'")
        kept = await conn.fetch(f"SELECT term, customer_id FROM {schema}.personal_terms")
    assert len(kept) > 0
    assert all(b"13700001111" not in r["term"] and "刘芳".encode() not in r["term"] for r in kept)


async def test_a_changed_phone_is_found_and_the_old_one_no_longer(rt, api, archive, org, owner) -> None:
    company = await archive.approved(org.r1)
    await api.ok(
        org.clerk,
        "update_profile",
        {"customer_id": company, "changes": {"base.owner.phone": "13511112222"}, "reason": "老板换了号码"},
    )
    await rt.runner.run_once()
    assert await found(api, org.clerk, "13511112222") == [company]
    assert await found(api, org.clerk, owner["phone"]) == []
    assert await found(api, org.clerk, "王建国") == [company]


async def test_an_erased_customer_is_no_longer_found_also_after_a_rebuild(rt, api, archive, org, outlet) -> None:
    person = (await api.ok(org.r1, "register_customer", outlet(**PERSON)))["customer_id"]
    company = await archive.approved(org.r1)
    await rt.runner.run_once()
    assert await found(api, org.clerk, "13700001111") == [person]

    await api.ok(org.clerk, "erase_personal_data", {"customer_id": person, "reason": "本人申请删除"})
    await rt.runner.run_once()
    assert await found(api, org.clerk, "13700001111") == []
    assert await found(api, org.clerk, "刘芳") == []

    assert await rt.rebuild("personal_search") == 2
    assert await found(api, org.clerk, "13700001111") == []
    assert await found(api, org.clerk, "王建国") == [company]
    async with rt.pool.acquire() as conn:
        left = await conn.fetchval(
            "SELECT count(*) FROM p_personal_search_2.personal_terms WHERE customer_id = $1", person
        )
    assert left == 0
