"""Through the real POST /ingest with the shipped config: the issue's inflected
examples become cases of the right brand, with language, topics and places; the
near-misses are dropped with "no brand matched"."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from socialcare.adapters.collectors.signature import sign
from socialcare.deps import Deps
from socialcare.storage.schema import case_places, case_topics, cases
from tests.e2e.conftest import SECRET

INFLECTED = {
    "У Кселла опять авария": "Kcell", "Кселлу позор": "Kcell",
    "С Кселлом невозможно дозвониться": "Kcell", "Кселлдің интернеті нашар": "Kcell",
    "Кселлге қоңырау шалдым": "Kcell", "Kcellден кеттім": "Kcell",
    "@kcell_kz помогите": "Kcell", "Kcell'а нет в Алматы": "Kcell", "Kcell-ге жаздым": "Kcell",
    "#kcell связи нет": "Kcell", "KCELL": "Kcell", "#кселлкз позор": "Kcell",
    "Актив Казахстана это касается": "activ", "Активтің интернеті жоқ": "activ",
}
NEAR_MISSES = ["Кселлофан", "Активный отдых", "Активировал промокод",
               "Концерт в Kcell Arena", "Kcell Arena-да концерт", "Иду в activ fitness"]


def _mention(i: int, text: str) -> dict[str, Any]:
    return {"source": "webhook", "external_id": f"u-{i}", "text": text,
            "published_at": "2026-11-25T14:55:00+05:00", "platform": "instagram"}


async def test_inflected_mentions_become_cases_and_near_misses_are_dropped(
    http: TestClient, app_deps: Deps
) -> None:
    texts = [*INFLECTED, *NEAR_MISSES]
    body = json.dumps([_mention(i, t) for i, t in enumerate(texts)]).encode()
    response = await http.post("/ingest", data=body, headers={
        "X-Signature": sign(body, SECRET), "Content-Type": "application/json"})
    results = (await response.json())["results"]

    assert response.status == 200
    outcomes = dict(zip(texts, results, strict=True))
    assert [t for t in INFLECTED if outcomes[t]["outcome"] != "created"] == []
    assert {t: outcomes[t].get("reason") for t in NEAR_MISSES} == dict.fromkeys(
        NEAR_MISSES, "no brand matched")
    async with app_deps.engine.connect() as conn:
        stored = {row.id: row for row in await conn.execute(select(cases))}
        topics = {(r.case_id, r.topic) for r in await conn.execute(select(case_topics))}
        places = {(r.case_id, r.place) for r in await conn.execute(select(case_places))}
    brands = {t: stored[outcomes[t]["case_id"]].brand for t in INFLECTED}
    assert brands == INFLECTED
    internet = stored[outcomes["Кселлдің интернеті нашар"]["case_id"]]
    assert (internet.language, internet.topics) == ("kk", "internet")
    assert (internet.id, "internet") in topics
    almaty = stored[outcomes["Kcell'а нет в Алматы"]["case_id"]]
    assert almaty.places == "almaty" and (almaty.id, "almaty") in places
    assert stored[outcomes["У Кселла опять авария"]["case_id"]].language == "ru"
