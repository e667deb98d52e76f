"""Dictionaries through the REST API: stored from a TSV body or a multipart file, a bad line
answered 422 with its number and nothing stored, listed and used only by their owner (and admin
keys), named by a job in each way a job option is given; and the `min_score` filter."""

from __future__ import annotations

from fastapi.testclient import TestClient

from producer.api.app import create_app
from storage.core.settings import Settings
from storage.sql import keys as api_keys
from storage.sql.db import get_database
from tests.api.conftest import assert_error, submit, work

TSV = {"Content-Type": "text/tab-separated-values"}
DOCS = [{"id": "1", "text": "张伟在北京的瑞丰数码科技上班。"}]


def test_store_list_show_and_use_a_dictionary(client: TestClient, settings: Settings) -> None:
    made = client.post("/dicts", params={"name": "shop"}, content="瑞丰数码科技\tORG\n北京\tLOC\tblock\n".encode(),
                       headers=TSV)
    assert made.status_code == 201, made.text
    assert (made.json()["dictionary"], made.json()["entries"]) == ("shop@1", 2)
    again = client.post("/dicts", params={"name": "shop"},
                        files={"file": ("d.tsv", "瑞丰数码科技\tORG\n".encode())})
    assert again.status_code == 201 and again.json()["dictionary"] == "shop@2"
    assert [d["dictionary"] for d in client.get("/dicts").json()] == ["shop@2"]
    shown = client.get("/dicts/shop", params={"version": 1}).json()
    assert [t["text"] for t in shown["terms"]] == ["北京", "瑞丰数码科技"] and len(shown["versions"]) == 2
    assert_error(client.get("/dicts/nope"), 404, "not_found")

    # A job names it as a query parameter, a JSON key or a form field
    by_query = submit(client, DOCS, dict="shop@1")
    by_json = client.post("/jobs", json={"documents": DOCS, "dict": "shop@1"}).json()["job_id"]
    by_form = client.post("/jobs", files={"file": ("c.jsonl", '{"id": "1", "text": "瑞丰数码科技"}\n'.encode())},
                          data={"dict": "shop"}).json()["job_id"]
    for job, want in ((by_query, "shop@1"), (by_json, "shop@1"), (by_form, "shop@2")):
        assert client.get(f"/jobs/{job}").json()["dictionary"] == want
    work(settings, by_query)
    ents = client.get(f"/jobs/{by_query}/entities").json()["items"]
    assert [(e["text"], e["label"], e["source"]) for e in ents] == [("张伟", "PER", "model"),
                                                                   ("瑞丰数码科技", "ORG", "dict")]
    rerun = client.post(f"/jobs/{by_query}/rerun", params={"dict": "shop@2"}).json()["job_id"]
    assert client.get(f"/jobs/{rerun}").json()["dictionary"] == "shop@2"

    # min_score filters at query time: the forced entity scores 1.0, the fake model's 0.9
    high = client.get(f"/jobs/{by_query}/entities", params={"min_score": 0.95}).json()["items"]
    assert [e["text"] for e in high] == ["瑞丰数码科技"]
    exported = client.get(f"/jobs/{by_query}/export", params={"min_score": 0.95}).text
    assert "瑞丰数码科技" in exported and "张伟" not in exported and '"dictionary": "shop@1"' in exported
    for bad in ("1.5", "-0.1", "nan", "inf", "x"):
        assert_error(client.get(f"/jobs/{by_query}/entities", params={"min_score": bad}), 422, "invalid_input")


def test_a_bad_dictionary_is_422_with_its_line_and_stores_nothing(client: TestClient) -> None:
    got = client.post("/dicts", params={"name": "bad"}, content="北京\tLOC\n上海\tGPE\n".encode(), headers=TSV)
    assert_error(got, 422, "invalid_input")
    assert got.json()["error"]["line"] == 2 and "GPE" in got.json()["error"]["message"]
    assert_error(client.post("/dicts", params={"name": "bad"}, content=b"\xff\tLOC\n", headers=TSV), 422,
                 "invalid_input")
    assert_error(client.post("/dicts", params={"name": "../x"}, content="北京\tLOC\n".encode(), headers=TSV), 422,
                 "invalid_input")
    assert_error(client.post("/dicts", params={"name": "big"}, content=b"a\tLOC\n" * 3_000_000, headers=TSV), 413,
                 "payload_too_large")
    assert_error(client.post("/dicts", params={"name": "j"}, json={"x": 1}), 415, "unsupported_media_type")
    assert client.get("/dicts").json() == []
    # An unknown dictionary refuses the job and stores nothing
    before = client.get("/jobs").json()["items"]
    assert_error(client.post("/jobs", json={"documents": DOCS, "dict": "nope"}), 422, "invalid_input")
    assert_error(client.post("/jobs", json={"documents": DOCS, "dict": 3}), 422, "invalid_input")
    assert client.get("/jobs").json()["items"] == before


def test_a_keys_dictionaries_are_its_own(settings: Settings) -> None:
    db = get_database(settings)
    bob, carol, root = (api_keys.create_key(db, name=n, scope=s)
                        for n, s in (("bob", "submit"), ("carol", "submit"), ("root", "admin")))
    with TestClient(create_app(settings)) as client:
        def as_(key: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {key}"}

        assert client.post("/dicts", params={"name": "b"}, content="北京\tLOC\n".encode(),
                           headers={**TSV, **as_(bob)}).status_code == 201
        assert [d["name"] for d in client.get("/dicts", headers=as_(carol)).json()] == []
        assert [d["name"] for d in client.get("/dicts", headers=as_(root)).json()] == ["b"]
        assert_error(client.get("/dicts/b", headers=as_(carol)), 404, "not_found")
        # carol can neither use bob's dictionary nor add a version to it
        assert_error(client.post("/jobs", json={"documents": DOCS, "dict": "b"}, headers=as_(carol)), 422,
                     "invalid_input")
        assert_error(client.post("/dicts", params={"name": "b"}, content="上海\tLOC\n".encode(),
                                 headers={**TSV, **as_(carol)}), 422, "invalid_input")
        assert client.post("/jobs", json={"documents": DOCS, "dict": "b"}, headers=as_(bob)).status_code == 202
