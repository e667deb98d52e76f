"""The dashboard in headless Chromium, served by a real ``shiti serve`` with a real redis-server
and a real ``celery worker`` subprocess on the fake tagger.

Uses Debian's ``/usr/bin/chromium`` through Playwright (never a downloaded browser). Skips
locally when Chromium or Playwright is absent; fails under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from storage.broker.redis_server import RedisServer
from storage.core.settings import Settings
from tests.helpers.fake_tagger import make_tagger
from tests.helpers.processes import WorkerPool
from tests.helpers.serve import ROOT, serve

pytestmark = [pytest.mark.browser, pytest.mark.integration]

# ~50 ms per document: the job runs long enough for live progress and a throughput curve.
SLOW_FAKE_MODEL = "py:tests.helpers.fake_tagger:make_slow_tagger"
N_DOCS = 40
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ENTITY_TYPES = ("PER", "LOC", "ORG")


def _chromium() -> str:
    """The system Chromium, or skip (fail under CI=true)."""
    found = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and Path(p).exists()), None)
    missing = "Debian's chromium package is not installed" if not found else None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "the playwright Python package is not installed"
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{missing} (required under CI=true)")
        pytest.skip(missing)
    assert found
    return found


@contextmanager
def _page(**options: Any) -> Iterator[tuple[Any, list[str]]]:
    """A fresh page of the system Chromium, and the page errors it raises (tests assert none)."""
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(**options)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page, errors
        finally:
            browser.close()


@pytest.fixture
def served(tmp_path: Path, redis_server: RedisServer, workers: WorkerPool) -> Iterator[tuple[str, Settings]]:
    """``shiti serve`` on a free port plus one real worker; both stopped by pid."""
    settings = Settings(data_dir=tmp_path / "data", redis_url=redis_server.url, model=SLOW_FAKE_MODEL,
                        queue=f"q-{uuid.uuid4().hex[:8]}", batch_docs=4, high_water=4)
    workers.start(settings)
    with serve(settings, tmp_path / "serve.log") as url:
        yield url, settings


def _corpus(path: Path) -> list[dict[str, str]]:
    samples = ROOT / "producer" / "samples" / "news.jsonl"
    docs = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()[:N_DOCS]]
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    return docs


def test_upload_watch_and_inspect_a_document(served: tuple[str, Settings], tmp_path: Path) -> None:
    from playwright.sync_api import expect

    base, _ = served
    docs = _corpus(tmp_path / "news.jsonl")
    ARTIFACTS.mkdir(exist_ok=True)
    with _page(viewport={"width": 1320, "height": 900}, device_scale_factor=1) as (page, errors):
        # Given the empty dashboard
        page.goto(base + "/")
        expect(page.get_by_role("heading", name="Extraction jobs")).to_be_visible()

        # When a corpus is uploaded through the form
        page.get_by_test_id("upload-file").set_input_files(str(tmp_path / "news.jsonl"))
        page.get_by_test_id("upload-name").fill("新闻样本 news sample")
        page.get_by_test_id("upload-submit").click()

        # Then the job page shows it running to the end
        page.wait_for_url("**/#/jobs/*")
        job_id = page.url.rsplit("/", 1)[1]
        expect(page.get_by_test_id("job-state")).to_have_text("succeeded", timeout=90_000)
        expect(page.get_by_test_id("stat-done")).to_contain_text(str(len(docs)))
        expect(page.get_by_test_id("progress")).to_have_attribute("aria-valuenow", "100")
        expect(page.get_by_test_id("top-entities")).to_be_visible()
        expect(page.get_by_test_id("chart")).to_be_visible()
        expect(page.get_by_test_id("entity-row").first).to_be_visible()
        page.wait_for_timeout(400)
        # Each entity is listed once (overlapping refreshes must not append a page twice)
        shown = page.get_by_test_id("entity-row").all_inner_texts()
        assert len(shown) == len(set(shown)) == 25, shown
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

        # When the entity browser is filtered by type
        page.locator("#ent-type button[data-type=LOC]").click()
        page.wait_for_timeout(600)
        labels = page.get_by_test_id("entity-row").locator(".chip").all_inner_texts()
        assert labels and set(labels) == {"LOC"}
        # And by a least score (the fake model scores a name 0.5 + its length / 20: LOC names 0.6)
        page.get_by_test_id("min-score").fill("0.65")
        expect(page.get_by_test_id("min-score-out")).to_have_text("0.65")
        expect(page.get_by_text("No entities match these filters")).to_be_visible()
        page.locator("#ent-type button[data-type=ORG]").click()
        page.wait_for_timeout(600)
        scores = page.get_by_test_id("entity-row").locator("td:nth-child(5)").all_inner_texts()
        assert scores and all(float(s.rstrip("%")) >= 65 for s in scores), scores
        assert set(page.get_by_test_id("entity-source").all_inner_texts()) == {"model"}

        # And a document is opened
        doc = docs[0]
        page.goto(f"{base}/#/jobs/{job_id}/docs/{doc['id']}")
        text_box = page.get_by_test_id("doc-text")
        expect(text_box).to_be_visible()

        # Then its entities are highlighted by type, exactly where the tagger put them
        expected = [(e.label, e.text, e.start) for e in make_tagger().annotate([doc["text"]])[0]]
        marks = text_box.locator("mark")
        expect(marks).to_have_count(len(expected))
        found = [(m.get_attribute("data-label"), m.inner_text(), int(m.get_attribute("data-start") or -1))
                 for m in marks.all()]
        assert found == expected
        assert text_box.evaluate("el => el.textContent") == doc["text"]  # nothing lost or added
        colours = {label: text_box.locator(f"mark[data-label={label}]").first
                   .evaluate("el => getComputedStyle(el).backgroundColor")
                   for label in {lab for lab, _, _ in expected}}
        assert len(set(colours.values())) == len(colours), colours  # one colour per type
        legend = page.get_by_test_id("legend")
        for label in ENTITY_TYPES:
            expect(legend.locator(f"[data-label={label}]")).to_contain_text(label)
        page.screenshot(path=str(ARTIFACTS / "dashboard-document.png"), full_page=True)

        # And the try-a-sentence box answers through a worker
        page.goto(f"{base}/#/try")
        page.get_by_test_id("try-text").fill("张伟在北京大学读书，毕业后加入了阿里巴巴，常驻杭州。")
        page.get_by_test_id("try-submit").click()
        out = page.get_by_test_id("try-output")
        expect(out.locator("mark")).to_have_count(4, timeout=30_000)
        assert out.locator("mark").all_inner_texts() == ["张伟", "北京大学", "阿里巴巴", "杭州"]
        page.screenshot(path=str(ARTIFACTS / "dashboard-try.png"), full_page=True)

        # And the job list shows both jobs, finished, with full progress bars
        page.goto(f"{base}/#/")
        rows = page.get_by_test_id("job-row")
        expect(rows).to_have_count(2)
        expect(rows.first.get_by_test_id("job-state")).to_have_text("succeeded")
        page.screenshot(path=str(ARTIFACTS / "dashboard-jobs.png"), full_page=True)

        # When the job is re-run from its page (the same documents, the default model)
        page.goto(f"{base}/#/jobs/{job_id}")
        expect(page.get_by_test_id("job-state")).to_have_text("succeeded")
        page.get_by_test_id("rerun").click()
        page.wait_for_url(lambda url: "/#/jobs/" in url and not url.endswith(job_id))
        rerun_id = page.url.rsplit("/", 1)[1]
        expect(page.get_by_test_id("job-state")).to_have_text("succeeded", timeout=90_000)
        # Then its diff against the first job, linked from the page, finds no difference
        page.get_by_test_id("diff-link").click()
        counts = page.get_by_test_id("diff-counts")
        expect(counts).to_contain_text("all")
        assert page.url.endswith(f"/#/jobs/{job_id}/diff/{rerun_id}")
        assert counts.locator("tbody tr").last.locator("td.num").all_inner_texts() == ["0", "0", "0"]
        expect(page.get_by_test_id("diff-only-a")).to_contain_text("None.")
        page.screenshot(path=str(ARTIFACTS / "dashboard-diff.png"), full_page=True)
        assert errors == []


MARKUP = '<img src=x onerror="window.__pwned=1">'


def test_key_prompt_sign_in_401_and_markup_rendered_inert(served: tuple[str, Settings]) -> None:
    from playwright.sync_api import expect

    from producer.service import submit_corpus
    from storage.sql import keys as api_keys
    from storage.sql.db import get_database

    base, settings = served
    # Given keys exist (so the running API requires one) and a job named, and filled, with markup
    db = get_database(settings)
    key = api_keys.create_key(db, name="web-user", scope="submit")
    job = submit_corpus(settings, [{"id": "</script><b>x</b>", "text": MARKUP + "张伟在北京。"}],
                        name=MARKUP, owner="web-user").job_id
    with _page() as (page, errors):
        page.goto(base + "/")
        # Then the page asks for a key (the open-API re-check allows a couple of seconds)
        expect(page.get_by_test_id("key-form")).to_be_visible(timeout=10_000)
        # When a wrong key is given, Then the prompt comes back
        page.get_by_test_id("key-input").fill("shiti_not-a-key-at-all")
        page.get_by_test_id("key-submit").click()
        expect(page.get_by_test_id("key-form")).to_be_visible()
        # When the right key is given, Then the page shows who is signed in and the job list
        page.get_by_test_id("key-input").fill(key)
        page.get_by_test_id("key-submit").click()
        expect(page.get_by_test_id("whoami")).to_have_text("web-user · submit")
        expect(page.get_by_role("heading", name="Extraction jobs")).to_be_visible()
        expect(page.get_by_text(MARKUP).first).to_be_visible()  # shown as text
        page.goto(f"{base}/#/jobs/{job}/docs/{'</script><b>x</b>'}")
        expect(page.get_by_text(MARKUP + "张伟在北京。").first).to_be_visible()
        assert page.evaluate("window.__pwned") is None
        assert page.locator("img[src=x]").count() == 0
        # When the key is revoked, Then the next request brings the prompt back
        api_keys.revoke_key(db, "web-user")
        page.goto(base + "/#/")
        page.reload()
        expect(page.get_by_test_id("key-form")).to_be_visible()
        # And signing out clears the key
        key2 = api_keys.create_key(db, name="web-user", scope="read")
        page.get_by_test_id("key-input").fill(key2)
        page.get_by_test_id("key-submit").click()
        expect(page.get_by_test_id("whoami")).to_have_text("web-user · read")
        page.get_by_test_id("sign-out").click()
        expect(page.get_by_test_id("key-form")).to_be_visible()
        assert page.evaluate("sessionStorage.getItem('shiti.apiKey')") is None
        assert errors == [], errors


def test_entity_labels_come_from_get_models(served: tuple[str, Settings]) -> None:
    from playwright.sync_api import expect

    from producer.service import job_status, submit_corpus

    base, settings = served
    # Given a job over one document with a PER and a LOC entity
    job = submit_corpus(settings, [{"id": "d1", "text": "张伟在北京。"}], name="labels").job_id
    model = job_status(settings, job)["model"]
    # ... and GET /models (answered by the browser) lists GPE for the job's model, MISC for another
    view = {"content_hash": "0" * 64, "size_bytes": None, "card": "", "ok": True, "error": None, "workers": 1}
    listed = [{**view, "name": model, "labels": ["GPE", "LOC", "PER"]},
              {**view, "name": "other", "labels": ["MISC", "ORG"]}]
    with _page() as (page, errors):
        page.route("**/models", lambda route: route.fulfill(json=listed))
        page.goto(f"{base}/#/jobs/{job}")
        expect(page.get_by_test_id("job-state")).to_have_text("succeeded", timeout=30_000)
        # Then the type filter offers the job's model's labels, known ones first
        expect(page.locator("#ent-type button")).to_have_text(["all", "PER", "LOC", "GPE"])
        # And the footer lists every model's labels, the known ones with their names
        expect(page.locator(".footer .chip")).to_have_text(["PER 人名", "LOC 地名", "ORG 机构", "GPE", "MISC"])
        # And the document's legend counts them, an unknown label in the neutral colour
        page.goto(f"{base}/#/jobs/{job}/docs/d1")
        legend = page.get_by_test_id("legend")
        expect(legend.locator(".chip")).to_have_text(["PER 人名 1", "LOC 地名 1", "GPE 0"])
        expect(legend.locator("[data-label=GPE]")).to_have_class("chip chip-X")

        # When GET /models fails, Then the labels come from the data
        page.unroute("**/models")
        page.route("**/models", lambda route: route.fulfill(
            status=500, json={"error": {"code": "internal", "message": "no models"}}))
        page.goto(f"{base}/#/jobs/{job}")
        page.reload()
        expect(page.get_by_test_id("entity-row")).to_have_count(2)
        expect(page.locator("#ent-type button")).to_have_text(["all", "PER", "LOC"])
        page.goto(f"{base}/#/jobs/{job}/docs/d1")
        expect(page.get_by_test_id("legend").locator(".chip")).to_have_text(["PER 人名 1", "LOC 地名 1"])
        assert errors == [], errors


def test_failed_documents_are_listed_by_reason_and_retried_by_reason(served: tuple[str, Settings]) -> None:
    from playwright.sync_api import expect

    from producer.service import submit_corpus

    base, settings = served
    # Given a job whose model raises on two documents and whose one document is bad input
    docs = [{"id": "ok", "text": "张伟在北京。"}, {"id": "boom1", "text": "[[RAISE]]一"},
            {"id": "boom2", "text": "[[RAISE]]二"}, {"id": "bad", "text": "\ud800"}]
    job = submit_corpus(settings, docs, name="failures").job_id
    with _page() as (page, errors):
        page.goto(f"{base}/#/jobs/{job}")
        expect(page.get_by_test_id("job-state")).to_have_text("partially failed", timeout=60_000)
        # Then every failed document is listed, with the count per reason as a filter
        card = page.get_by_test_id("failures-card")
        expect(card.get_by_test_id("failure-row")).to_have_count(3)
        expect(card.get_by_test_id("fail-reason")).to_have_text(["all 3", "error 2", "surrogate 1"])
        expect(page.get_by_test_id("retry-reason")).to_be_hidden()
        # When filtered by a reason that a retry can change, Then its documents and a retry button show
        card.locator("button[data-reason=error]").click()
        expect(card.get_by_test_id("failure-row")).to_have_count(2)
        expect(card.get_by_test_id("failure-row").first).to_contain_text("boom1")
        expect(page.get_by_test_id("retry-reason")).to_be_visible()
        # Bad input cannot be retried: no button for it
        card.locator("button[data-reason=surrogate]").click()
        expect(card.get_by_test_id("failure-row")).to_have_count(1)
        expect(page.get_by_test_id("retry-reason")).to_be_hidden()
        # When the error ones are retried, Then the job runs them again (and they fail again)
        card.locator("button[data-reason=error]").click()
        page.get_by_test_id("retry-reason").click()
        expect(page.get_by_text("Re-queued 2 documents that failed with error")).to_be_visible()
        expect(page.get_by_test_id("job-state")).to_have_text("partially failed", timeout=60_000)
        assert errors == [], errors


def test_corpus_view_draws_the_top_entities_and_pairs_and_finds_documents(served: tuple[str, Settings]) -> None:
    from playwright.sync_api import expect

    from producer.service import submit_corpus, wait_job
    from storage.sql import groups
    from storage.sql.db import get_database

    base, settings = served
    # Given a finished job whose documents mention names together, one of them in Traditional script
    docs = [{"id": f"d{i}", "text": f"张伟和王芳在北京见面，随后去了{org}。"}
            for i, org in enumerate(["清华大学", "北京大学", "新华社", "清华大学"])]
    docs.append({"id": "trad", "text": "張偉在上海。"})
    job = submit_corpus(settings, docs, name="glance").job_id
    wait_job(settings, job, timeout=60, poll=0.1)
    db = get_database(settings)
    with _page(viewport={"width": 1400, "height": 1300}) as (page, errors):
        page.goto(f"{base}/#/jobs/{job}")
        page.get_by_test_id("corpus-link").click()
        expect(page.get_by_test_id("corpus-meta")).to_contain_text("all 5 done documents")
        expect(page.get_by_test_id("top-chart")).to_have_count(3)
        # Then each type's bar chart (ECharts) holds the API's top groups of that type, in rank order
        page.wait_for_function("() => window.echarts && document.querySelectorAll('[data-testid=top-chart] canvas').length === 3")
        drawn = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('[data-testid=top-chart]')].map(
            (el) => [el.dataset.label, echarts.getInstanceByDom(el).getOption().series[0].data]))""")
        for label in ENTITY_TYPES:
            want = [g["documents"] for g in groups.group_page(db, job, label=label, limit=12)]
            assert drawn[label] == want, (label, drawn[label], want)
        # And the co-occurrence graph has one edge per pair the API lists
        page.wait_for_function("() => { const el = document.querySelector('[data-testid=pair-graph]');"
                               " return el && echarts.getInstanceByDom(el); }")
        links = page.evaluate("() => echarts.getInstanceByDom(document.querySelector('[data-testid=pair-graph]'))"
                              ".getOption().series[0].links.length")
        assert links == len(groups.pairs(db, job, limit=60)) > 0
        # When a name is looked up by its Traditional spelling, Then its documents are listed once each
        page.get_by_test_id("corpus-name").fill("張偉")
        page.get_by_test_id("corpus-find").click()
        expect(page.get_by_test_id("mention-doc")).to_have_count(5)
        expect(page.get_by_test_id("mention-forms")).to_contain_text("張偉")
        page.get_by_test_id("mention-doc").first.locator("a").click()
        expect(page).to_have_url(f"{base}/#/jobs/{job}/docs/d0")
        assert errors == [], errors
