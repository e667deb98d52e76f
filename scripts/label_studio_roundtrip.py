"""A real round trip through a running Label Studio (1.23.2 measured), and the README's screenshot.

A shiti job tagged by the shipped model; its 6 least certain documents (and one with emoji) go to
a new Label Studio project as tasks with predictions; an "annotator" accepts each prediction as an
annotation, removing one entity of the emoji document; Label Studio's JSON export comes back
through `shiti data import --job`, and the script prints how many documents came back unchanged
and whether the edited one is exactly the edit. Then a screenshot of the labeling view
(docs/label-studio.png).

Label Studio's dependencies clash with shiti's, so it runs from its own environment:

    python3.11 -m venv /tmp/lsapp && /tmp/lsapp/bin/pip install label-studio==1.23.2 "sentry-sdk<3"
    LABEL_STUDIO_BASE_DATA_DIR=/tmp/lsdata LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true \
      /tmp/lsapp/bin/label-studio start --no-browser --port 8089 --username demo@shiti.local \
      --password shitidemo123 --user-token shitidemotoken0123456789abcdef0123456
    # once: sqlite3 /tmp/lsdata/label_studio.sqlite3 "update jwt_auth_jwtsettings set legacy_api_tokens_enabled=1"
    .venv/bin/python -W ignore scripts/label_studio_roundtrip.py /tmp/lsdemo
"""

import json
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from producer.service import JobOptions, submit_corpus
from producer.review import sample, export, label_config
from producer.corrections import import_corrections
from storage.catalog import resolve
from storage.core.settings import Settings
from storage.sql import repo, queries
from storage.sql.db import get_database
from worker.batch import run_batch
from worker.tagger.loading import load_tagger

LS, TOKEN = "http://127.0.0.1:8089", "shitidemotoken0123456789abcdef0123456"
def call(method, path, body=None):
    req = urllib.request.Request(LS + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Token {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        raw = r.read()
        return json.loads(raw) if raw else None

out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/lsdemo")
out.mkdir(parents=True, exist_ok=True)
s = Settings(data_dir=out / "data", redis_url="")
docs = [json.loads(l) for l in (Path(__file__).resolve().parents[1] / "producer" / "samples" / "news.jsonl").read_text().splitlines()][:40]
docs.append({"id": "emoji", "text": "😀😀新华社北京电，国务院总理李克强今天在人民大会堂会见了🇫🇷法国总统马克龙。"})
docs.append({"id": "crlf", "text": "记者从深圳市政府获悉：\r\n华为技术有限公司将在东莞建设新园区。"})
info = resolve(s)
job = submit_corpus(s, docs, options=JobOptions(info.name, info.content_hash)).job_id
ids = [i for i, _ in repo.next_pending(get_database(s), job, limit=100)]
run_batch(s, job_id=job, doc_ids=ids, tagger=load_tagger(info.path, threads=1), topup=False)
picks = sample(s, job, n=6, by="uncertainty")
tasks = json.loads("".join(export(s, job, "label-studio", rows=[p.row_id for p in picks])))
# the emoji and crlf documents too
extra = json.loads("".join(export(s, job, "label-studio")))
tasks += [t for t in extra if t["data"]["doc_id"] in ("emoji", "crlf") and t["data"]["doc_id"] not in {x["data"]["doc_id"] for x in tasks}]
project = call("POST", "/api/projects", {"title": "shiti corrections", "label_config": label_config(s, job)})
call("POST", f"/api/projects/{project['id']}/import", tasks)
ls_tasks = call("GET", f"/api/tasks?project={project['id']}&page_size=100")["tasks"]
edited = None
for t in ls_tasks:
    preds = t.get("predictions") or call("GET", f"/api/predictions?task={t['id']}")
    result = preds[0]["result"]
    if t["data"]["doc_id"] == "emoji" and result:
        result = result[:-1]  # the annotator removes the last entity
        edited = t["data"]["doc_id"]
    call("POST", f"/api/tasks/{t['id']}/annotations", {"result": result, "was_cancelled": False})
exported = urllib.request.urlopen(urllib.request.Request(
    LS + f"/api/projects/{project['id']}/export?exportType=JSON", headers={"Authorization": f"Token {TOKEN}"})).read()
(out / "ls-export.json").write_bytes(exported)
done = import_corrections(s, exported, tool="label-studio", job_id=job, source_name="ls-export.json")
mine = {r["doc_id"]: [(e["start"], e["end"], e["label"]) for e in r["entities"]] for r in queries.iter_export(get_database(s), job)}
back = {r["doc_id"]: [(e["start"], e["end"], e["label"]) for e in r["entities"]] for r in queries.iter_export(get_database(s), done.gold_job)}
same = sum(back[k] == mine[k] for k in back)
print(json.dumps({"project": project["id"], "tasks": len(tasks), "imported": done.view(), "unchanged_docs": same,
                  "edited_doc": edited, "edited_matches": back.get("emoji") == mine["emoji"][:-1],
                  "emoji_entities": len(mine["emoji"])}, ensure_ascii=False))
first_emoji = next(t["id"] for t in ls_tasks if t["data"]["doc_id"] == "emoji")
ids = {"project": project["id"], "task": first_emoji}

from playwright.sync_api import sync_playwright  # noqa: E402

with sync_playwright() as p:
    b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = b.new_page(viewport={"width": 1280, "height": 720})
    page.goto("http://127.0.0.1:8089/user/login")
    page.fill("input[name=email]", "demo@shiti.local")
    page.fill("input[name=password]", "shitidemo123")
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    page.goto(f"http://127.0.0.1:8089/projects/{ids['project']}/data?task={ids['task']}")
    page.wait_for_timeout(6000)
    page.screenshot(path=str(out / "label-studio.png"))
    b.close()
