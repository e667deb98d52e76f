"""The corpus view over HTTP: groups paged by rank (every group once), a name looked up by any
spelling, pairs by documents and by Jaccard, documents mentioning an entity paged (each once),
clear errors for a bad cursor, an unknown name or a large running job."""

from __future__ import annotations

from collections import Counter

from fastapi.testclient import TestClient

from storage.core.settings import Settings
from storage.sql import groups
from tests.api.conftest import submit, work
from tests.api.test_entities import DOCS, _all_pages

# Traditional and full-width spellings of names the fake tagger finds: they group with them.
TRADITIONAL = [{"id": "t1", "text": "張偉在北京。"}, {"id": "t2", "text": "張偉去了上海。"}]


def _job(client: TestClient, settings: Settings, docs: list[dict] = DOCS) -> str:
    jid = submit(client, docs)
    work(settings, jid)
    return jid


def test_groups_page_by_rank_and_count_like_the_entities(client: TestClient, settings: Settings) -> None:
    jid = _job(client, settings)
    whole = client.get(f"/jobs/{jid}/groups", params={"limit": 1000}).json()
    assert whole["complete"] and whole["documents"] == len(DOCS) and whole["next_cursor"] is None
    assert _all_pages(client, f"/jobs/{jid}/groups", limit=3) == whole["items"]
    entities = _all_pages(client, f"/jobs/{jid}/entities", limit=1000)
    mentions = Counter((e["label"], e["text"]) for e in entities)
    docs: dict[tuple[str, str], set[str]] = {}
    for e in entities:
        docs.setdefault((e["label"], e["text"]), set()).add(e["doc_id"])
    assert {(g["label"], g["name"]): (g["mentions"], g["documents"]) for g in whole["items"]} == \
        {k: (mentions[k], len(docs[k])) for k in mentions}
    ranked = [(-g["documents"], -g["mentions"]) for g in whole["items"]]
    assert ranked == sorted(ranked)
    loc = client.get(f"/jobs/{jid}/groups", params={"type": "LOC", "limit": 1000}).json()["items"]
    assert loc and {g["label"] for g in loc} == {"LOC"}


def test_a_traditional_spelling_finds_its_group_and_its_documents(client: TestClient, settings: Settings) -> None:
    jid = _job(client, settings, DOCS[:6] + TRADITIONAL)
    found = client.get(f"/jobs/{jid}/groups", params={"name": "張偉"}).json()["items"]
    # The tagger reads the folded text, so 張偉 is found in the original characters: one group,
    # named by its commonest form (twice 張偉, once 张伟).
    assert [(g["label"], g["name"], g["documents"]) for g in found] == [("PER", "張偉", 3)]
    assert [(f["text"], f["mentions"]) for f in found[0]["forms"]] == [("張偉", 2), ("张伟", 1)]
    page = client.get(f"/jobs/{jid}/mentions", params={"name": "张伟", "limit": 1}).json()
    assert page["group"]["name"] == "張偉" and len(page["items"]) == 1 and page["next_cursor"]
    seen = [d["doc_id"] for d in _all_pages(client, f"/jobs/{jid}/mentions", name="张伟", limit=1)]
    assert len(seen) == len(set(seen)) == page["group"]["documents"]
    first = page["items"][0]
    assert all(first["snippet"][m["start"] - first["snippet_start"]:m["end"] - first["snippet_start"]] == m["text"]
               for m in first["mentions"] if m["end"] - first["snippet_start"] <= len(first["snippet"]))


def test_pairs_by_documents_and_jaccard(client: TestClient, settings: Settings) -> None:
    jid = _job(client, settings)
    by_docs = client.get(f"/jobs/{jid}/cooccur", params={"limit": 1000}).json()["items"]
    assert by_docs and all(p["documents"] >= groups.MIN_PAIR_DOCUMENTS for p in by_docs)
    assert [p["documents"] for p in by_docs] == sorted((p["documents"] for p in by_docs), reverse=True)
    by_j = client.get(f"/jobs/{jid}/cooccur", params={"by": "jaccard", "limit": 1000}).json()["items"]
    assert [p["jaccard"] for p in by_j] == sorted((p["jaccard"] for p in by_j), reverse=True)
    for p in by_docs:
        assert p["jaccard"] == round(p["documents"] / (p["a"]["documents"] + p["b"]["documents"] - p["documents"]), 4)
    name = by_docs[0]["a"]["name"]
    mine = client.get(f"/jobs/{jid}/cooccur", params={"with": name, "limit": 1000}).json()["items"]
    assert mine and all(name in (p["a"]["name"], p["b"]["name"]) for p in mine)


def test_bad_requests_get_clear_errors(client: TestClient, settings: Settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    jid = _job(client, settings, DOCS[:4])
    assert client.get(f"/jobs/{jid}/groups", params={"cursor": "x1"}).status_code == 422
    assert client.get(f"/jobs/{jid}/cooccur", params={"by": "pmi"}).status_code == 422
    gone = client.get(f"/jobs/{jid}/mentions", params={"name": "没有这个人"})
    assert gone.status_code == 404 and "没有这个人" in gone.json()["error"]["message"]
    assert client.get(f"/jobs/{jid}/mentions").status_code == 422  # a name is required
    assert client.get(f"/jobs/{jid}/groups", params={"name": "a\x00b"}).status_code == 422
    assert client.get("/jobs/0123456789abcdef0123456789abcdef/groups").status_code == 404
    # A running job over the live limit with no view yet: 409 saying when it will have one.
    running = submit(client, DOCS[:4])
    work(settings, running)
    from sqlalchemy import update

    from storage.sql.db import get_database
    from storage.sql.schema import job

    with get_database(settings).write() as conn:
        conn.execute(update(job).where(job.c.id == running).values(status="running", finished_at=None,
                                                                   grouped_at=None))
    monkeypatch.setattr(groups, "LIVE_LIMIT", 1)
    got = client.get(f"/jobs/{running}/groups")
    assert got.status_code == 409 and "grouped when it finishes" in got.json()["error"]["message"]


def test_hostile_names_cursors_and_types_get_a_4xx(client: TestClient, settings: Settings) -> None:
    jid = _job(client, settings, DOCS[:4])
    nul, huge = "a%00b", "北" * 5000
    for url in (f"/jobs/{jid}/groups?name={nul}", f"/jobs/{jid}/groups?type={nul}",
                f"/jobs/{jid}/groups?name={huge}", f"/jobs/{jid}/mentions?name={nul}",
                f"/jobs/{jid}/mentions?name={huge}", f"/jobs/{jid}/cooccur?with={nul}",
                f"/jobs/{jid}/cooccur?with={huge}", f"/jobs/{jid}/groups?cursor=99999999999999999999",
                f"/jobs/{jid}/mentions?name=a&cursor=-1", f"/jobs/{jid}/groups?limit=100000"):
        got = client.get(url)
        assert got.status_code == 422 and "error" in got.json(), (url, got.status_code, got.text[:200])
    # A lone surrogate cannot be sent in a URL: its UTF-8 bytes arrive as U+FFFD, a name like any other.
    got = client.get(f"/jobs/{jid}/mentions?name=%ED%A0%80")
    assert got.status_code == 404 and "error" in got.json()
