"""Settings handed to a child process name the same directories whatever the child's working
directory (workers run from the repository root; `shiti demo` may run anywhere)."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.core.settings import Settings


def test_relative_directories_are_exported_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = Settings(data_dir=Path(".shiti")).to_env()
    assert env["SHITI_DATA_DIR"] == str(tmp_path.resolve() / ".shiti")
    monkeypatch.chdir("/")
    child = Settings(**{"data_dir": Path(env["SHITI_DATA_DIR"])})
    assert child.sqlalchemy_url == f"sqlite:///{tmp_path.resolve() / '.shiti' / 'shiti.sqlite'}"
