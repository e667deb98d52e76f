"""Entities, top entities, documents, export and throughput of a finished job."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from fastapi.testclient import TestClient

from storage.core.settings import Settings
from tests.api.conftest import submit, work
from tests.helpers.fake_tagger import NAMES, make_tagger

# Given: a corpus with a known number of each name (the fake tagger finds exactly these).
TEXTS = [f"{per}和{per2}在{loc}见面，随后去了{org}。" for per, per2, loc, org in zip(
    NAMES["PER"], NAMES["PER"][1:], NAMES["LOC"], NAMES["ORG"], strict=False)] * 3
DOCS = [{"id": f"d{i:02d}", "text": t} for i, t in enumerate(TEXTS)]


@pytest.fixture
def job_id(client: TestClient, settings: Settings) -> str:
    jid = submit(client, DOCS)
    work(settings, jid)
    return jid


def _all_pages(client: TestClient, url: str, **params: object) -> list[dict]:
    out: list[dict] = []
    cursor = None
    for _ in range(1000):
        query = dict(params) | ({"cursor": cursor} if cursor else {})
        page = client.get(url, params=query).json()
        out += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("pagination did not end")


def test_keyset_pages_cover_every_entity_once_in_stable_order(client: TestClient, job_id: str) -> None:
    everything = client.get(f"/jobs/{job_id}/entities", params={"limit": 1000}).json()
    assert everything["next_cursor"] is None
    paged = _all_pages(client, f"/jobs/{job_id}/entities", limit=7)
    assert paged == everything["items"]
    assert len(paged) == 4 * len(DOCS)


def test_filters_by_type_text_and_doc(client: TestClient, job_id: str) -> None:
    per = _all_pages(client, f"/jobs/{job_id}/entities", type="PER", limit=10)
    assert per and {e["label"] for e in per} == {"PER"} and len(per) == 2 * len(DOCS)
    beijing = _all_pages(client, f"/jobs/{job_id}/entities", text="北京", limit=10)
    assert beijing and {e["text"] for e in beijing} == {"北京"}
    assert len(beijing) == sum(t.count("北京") - t.count("北京大学") for t in TEXTS)
    one_doc = _all_pages(client, f"/jobs/{job_id}/entities", doc="d03")
    assert {e["doc_id"] for e in one_doc} == {"d03"} and len(one_doc) == 4
    text = TEXTS[3]
    for e in one_doc:
        assert text[e["start"]:e["end"]] == e["text"]


def test_top_entities_counts_match_the_corpus(client: TestClient, job_id: str) -> None:
    top = client.get(f"/jobs/{job_id}/entities/top", params={"type": "LOC", "limit": 3}).json()["items"]
    assert len(top) == 3 and {t["label"] for t in top} == {"LOC"}
    reference = Counter(e.text for doc in make_tagger().annotate(TEXTS) for e in doc if e.label == "LOC")
    assert [(t["text"], t["count"]) for t in top] == sorted(reference.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    counts = [t["count"] for t in client.get(f"/jobs/{job_id}/entities/top").json()["items"]]
    assert counts == sorted(counts, reverse=True)


def test_document_view_offsets_index_the_stored_text(client: TestClient, job_id: str) -> None:
    doc = client.get(f"/jobs/{job_id}/documents/d01").json()
    assert doc["doc_id"] == "d01" and doc["text"] == TEXTS[1] and doc["state"] == "done"
    assert [e["label"] for e in doc["entities"]] == ["PER", "PER", "LOC", "ORG"]
    for e in doc["entities"]:
        assert doc["text"][e["start"]:e["end"]] == e["text"]


def test_document_ids_with_slashes(client: TestClient, settings: Settings) -> None:
    jid = submit(client, [{"id": "news/2024/1.txt", "text": "张伟在上海。"}])
    work(settings, jid)
    doc = client.get(f"/jobs/{jid}/documents/news/2024/1.txt").json()
    assert [e["text"] for e in doc["entities"]] == ["张伟", "上海"]


def test_export_streams_one_jsonl_record_per_document(client: TestClient, job_id: str) -> None:
    with client.stream("GET", f"/jobs/{job_id}/export") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        assert "attachment" in response.headers["content-disposition"]
        records = [json.loads(line) for line in response.iter_lines() if line]
    assert [r["doc_id"] for r in records] == [d["id"] for d in DOCS]
    by_id = {d["id"]: d["text"] for d in DOCS}
    for r in records:
        assert r["state"] == "done" and len(r["entities"]) == 4
        assert all(by_id[r["doc_id"]][e["start"]:e["end"]] == e["text"] for e in r["entities"])


def test_throughput_accounts_for_every_finished_document(client: TestClient, job_id: str) -> None:
    body = client.get(f"/jobs/{job_id}/throughput", params={"buckets": 10}).json()
    width = body["bucket_seconds"]
    assert width >= 0.1 and 1 <= len(body["points"]) <= 10
    # Every bucket covers `width` seconds except possibly the last; rate x span sums to the totals.
    points = body["points"]
    assert all(p["seconds"] == width for p in points[:-1]) and 0 < points[-1]["seconds"] <= width
    assert round(sum(p["docs"] * p["seconds"] for p in points)) == len(DOCS)
    assert round(sum(p["chars"] * p["seconds"] for p in points)) == sum(len(t) for t in TEXTS)
    times = [p["t"] for p in body["points"]]
    assert times == sorted(times)
