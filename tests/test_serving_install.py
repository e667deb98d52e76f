"""A serving install (no torch) collects the whole suite: every module that needs torch is skipped
with the reason, and no other module fails to import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Runs pytest's collection with torch and its libraries unimportable, as on `pip install shiti[test]`.
NO_TORCH = """
import sys
from importlib.abc import MetaPathFinder

class NoTorch(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "modelscope", "torchcrf", "safetensors"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, NoTorch())
import pytest
sys.exit(pytest.main(["--collect-only", "-q", "-rs", "-p", "no:cacheprovider", "tests"]))
"""


def test_without_torch_the_suite_collects_and_skips_only_torch_modules() -> None:
    done = subprocess.run([sys.executable, "-c", NO_TORCH], cwd=REPO, capture_output=True, text=True, timeout=300)
    out = done.stdout
    assert done.returncode == 0, out[-3000:]
    assert "error" not in out.lower().split("short test summary")[-1], out[-3000:]
    skipped = {line.split(": ")[1].split()[0] for line in out.splitlines() if line.startswith("SKIPPED")}
    # The torch modules are skipped, each by name ...
    assert {"test_train.py", "test_artifact.py", "test_modelscope_parity.py", "test_pipeline_model.py"} <= skipped
    # ... and the serving ones still run: the shipped ONNX model, the worker on it, the API, the store
    collected = {line.split("::")[0] for line in out.splitlines() if "::" in line}
    assert {"tests/model/test_shipped_model.py", "tests/model/test_onnx.py", "tests/integration/test_onnx_worker.py",
            "tests/api/test_jobs.py", "tests/component/test_repo.py"} <= collected
    assert not any(Path(c).name in skipped for c in collected)
