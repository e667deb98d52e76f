"""Check shiti's Label Studio export with Label Studio's own SDK (label-studio-sdk), and refresh
the fixtures tests/component/test_label_studio_sdk.py reads.

Run in a throwaway environment (the SDK pins numpy, pandas and opencv versions shiti does not use):

    python3.11 -m venv /tmp/ls && /tmp/ls/bin/pip install label-studio-sdk==2.1.2
    /tmp/ls/bin/python scripts/label_studio_check.py tests/fixtures/label_studio

It validates every prediction of ``tasks.json`` against ``label_config.xml`` with the SDK's
``LabelInterface.validate_prediction`` (exits 1 on any error), then accepts each prediction as an
annotation and converts the project export with the SDK's ``Converter`` to JSON-MIN
(``sdk_json_min.json``), the file the test imports back.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from label_studio_sdk.converter import Converter
from label_studio_sdk.label_interface import LabelInterface


def main(folder: Path) -> None:
    config = (folder / "label_config.xml").read_text(encoding="utf-8")
    tasks = json.loads((folder / "tasks.json").read_text(encoding="utf-8"))
    li = LabelInterface(config)
    bad = [(t["data"]["doc_id"], e) for t in tasks for p in t["predictions"]
           for e in li.validate_prediction(p, return_errors=True) or []]
    for doc, err in bad:
        print(f"{doc}: {err}")
    print(f"{len(tasks)} tasks, {len(bad)} invalid predictions (label-studio-sdk LabelInterface)")
    annotated = [{"id": i + 1, "data": t["data"], "predictions": [],
                  "annotations": [{"id": i + 1, "result": t["predictions"][0]["result"], "was_cancelled": False,
                                   "created_at": "2026-12-07T00:00:00Z", "updated_at": "2026-12-07T00:00:00Z",
                                   "lead_time": 1.0, "completed_by": 1}]} for i, t in enumerate(tasks)]
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "export.json", Path(tmp) / "out"
        src.write_text(json.dumps(annotated, ensure_ascii=False), encoding="utf-8")
        Converter(config=config, project_dir=None, download_resources=False).convert_to_json_min(
            str(src), str(out), is_dir=False)
        shutil.copyfile(out / "result.json", folder / "sdk_json_min.json")
    print(f"wrote {folder / 'sdk_json_min.json'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
