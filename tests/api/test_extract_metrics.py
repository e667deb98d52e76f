"""``POST /extract`` answered by a worker, ``/metrics`` against a real redis-server, and the
API's import boundary (no torch)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from producer.api.app import create_app
from storage.sql.db import dispose_all
from storage.broker.queue import queue_for
from storage.broker.redis_server import start_redis, stop_redis
from tests.api.conftest import make_settings, submit, work

ROOT = Path(__file__).resolve().parents[2]


def test_extract_returns_entities_with_code_point_offsets(client: TestClient, background_worker: None) -> None:
    text = "𠀀张伟在北京大学读书，毕业后加入了阿里巴巴。"  # an astral char first: offsets are code points
    response = client.post("/extract", json={"text": text, "timeout": 20})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "done" and body["text"] == text
    assert [(e["label"], e["text"]) for e in body["entities"]] == [("PER", "张伟"), ("ORG", "北京大学"), ("ORG", "阿里巴巴")]
    for e in body["entities"]:
        assert text[e["start"]:e["end"]] == e["text"]
    assert client.get(f"/jobs/{body['job_id']}").json()["state"] == "succeeded"


def _metric(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    assert match, f"{name}{labels} missing from:\n{text}"
    return float(match.group(1))


def test_metrics_report_jobs_documents_rates_and_queue_depth(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis")
    try:
        settings = make_settings(tmp_path, redis_url=server.url, batch_docs=10)
        with TestClient(create_app(settings)) as client:
            # Given: 25 documents, into a queue no worker reads (one batch of 10 waits, the rest pending).
            job_id = submit(client, [{"id": str(i), "text": f"张伟在北京{i}"} for i in range(25)])
            text = client.get("/metrics").text
            assert _metric(text, "shiti_broker_up") == 1
            assert _metric(text, "shiti_queue_depth", f'{{queue="{queue_for(settings, settings.model_name)}"}}') == 1
            assert _metric(text, "shiti_jobs", '{state="submitted"}') == 1
            assert _metric(text, "shiti_documents", '{status="queued"}') == 10
            assert _metric(text, "shiti_documents", '{status="pending"}') == 15
            assert _metric(text, "shiti_documents_per_second") == 0

            # When: a worker finishes the job.
            work(settings, job_id)
            text = client.get("/metrics").text
            assert _metric(text, "shiti_jobs", '{state="succeeded"}') == 1
            assert _metric(text, "shiti_documents", '{status="done"}') == 25
            assert _metric(text, "shiti_documents_per_second") == pytest.approx(25 / 60)
            chars = sum(len(f"张伟在北京{i}") for i in range(25))
            assert _metric(text, "shiti_chars_per_second") == pytest.approx(chars / 60)
            assert "# TYPE shiti_queue_depth gauge" in text
    finally:
        stop_redis(server)
        dispose_all()


def test_metrics_answer_when_the_broker_is_down(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert _metric(response.text, "shiti_broker_up") == 0
    assert re.search(r'^shiti_queue_depth\{queue="shiti\.[^"]+"\} NaN$', response.text, re.M)


def test_openapi_docs_list_every_route(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/jobs", "/jobs/{job_id}", "/jobs/{job_id}/cancel", "/jobs/{job_id}/retry",
                 "/jobs/{job_id}/entities", "/jobs/{job_id}/entities/top",
                 "/jobs/{job_id}/documents/{doc_id}", "/jobs/{job_id}/export", "/extract", "/metrics"):
        assert path in paths, path


def test_dashboard_is_served_with_every_module_it_imports(client: TestClient) -> None:
    import re

    page = client.get("/")
    assert page.status_code == 200 and '<script type="module" src="/static/js/main.js">' in page.text
    assert client.get("/static/style.css").status_code == 200
    # Every ES module reachable from main.js is served as JavaScript (no build step: the browser
    # fetches each import as it is written)
    todo, seen = ["/static/js/main.js"], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        got = client.get(path)
        assert got.status_code == 200 and "javascript" in got.headers["content-type"], path
        base = path.rsplit("/", 1)[0]
        for rel in re.findall(r"""(?:import|from)\s*["'](\.{1,2}/[^"']+)["']""", got.text):
            parts = (base + "/" + rel).split("/")
            norm: list[str] = []
            for part in parts:
                if part == "..":
                    norm.pop()
                elif part != ".":
                    norm.append(part)
            todo.append("/".join(norm))
    assert len(seen) >= 10, seen


def test_the_api_never_imports_torch_or_worker() -> None:
    code = ("import sys, producer.api.app, producer.api.metrics; "
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'worker'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
