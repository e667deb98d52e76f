"""Run modelscope's own NER pipeline on checkpoint dirs; print JSON (used by the parity test).

Usage: python modelscope_run.py JOBS_JSON  where JOBS_JSON = {dir: [text, ...]}.
Prints one line ``@@RESULT@@{dir: [entities or {"error": ...} per text]}``.
"""

import json
import sys

from modelscope.pipelines import pipeline

jobs = json.loads(sys.argv[1])
result = {}
for model_dir, texts in jobs.items():
    ner = pipeline("named-entity-recognition", model=model_dir, sequence_length=64)
    out = []
    for text in texts:
        try:
            got = ner(text)["output"]
            out.append([[e["type"], int(e["start"]), int(e["end"]), float(e["prob"]), e["span"]] for e in got])
        except Exception as exc:  # modelscope crashes on some inputs (docs/raner_format.md §4.4)
            out.append({"error": repr(exc)})
    result[model_dir] = out
print("@@RESULT@@" + json.dumps(result, ensure_ascii=False))
