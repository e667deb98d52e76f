"""`incremental` through the REST API: as a query parameter, JSON key or form field; the submit
answer and the status count what was reused; a value that is not yes or no is refused."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import assert_error, submit, work

DOCS = [{"id": str(i), "text": f"张伟在北京。第{i}条"} for i in range(4)]


def test_incremental_reuses_and_says_so(client: TestClient, settings) -> None:
    first = submit(client, DOCS)
    work(settings, first)
    by_json = client.post("/jobs", json={"documents": DOCS + [{"id": "9", "text": "王芳在上海。"}], "incremental": True})
    assert by_json.status_code == 202 and by_json.json()["reused"] == 4
    status = client.get(f"/jobs/{by_json.json()['job_id']}").json()
    assert (status["incremental"], status["reused"], status["pending"]) == (True, 4, 1)
    by_query = client.post("/jobs", json=DOCS, params={"incremental": "true"}).json()
    by_form = client.post("/jobs", files={"file": ("c.jsonl", '{"id": "0", "text": "张伟在北京。第0条"}\n'.encode())},
                          data={"incremental": "true"}).json()
    assert (by_query["reused"], by_form["reused"]) == (4, 1)
    assert client.post("/jobs", json=DOCS).json()["reused"] == 0  # off by default
    rerun = client.post(f"/jobs/{first}/rerun", params={"incremental": "true"}).json()
    assert rerun["reused"] == 4
    assert_error(client.post("/jobs", json={"documents": DOCS, "incremental": "yes"}), 422, "invalid_input")
