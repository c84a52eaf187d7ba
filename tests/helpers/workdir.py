"""A working folder like a fresh clone's for commands with relative paths: only ``configs/`` (a link to the
repository's), so the fixed relative ``runs/...`` folders the configs write land in the test's tmp folder."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def fresh_workdir(tmp_path: Path, monkeypatch) -> Path:
    """Link ``tmp_path/configs`` to the repository's configs and change into ``tmp_path``."""
    link = tmp_path / "configs"
    if not link.exists():
        link.symlink_to(ROOT / "configs")
    monkeypatch.chdir(tmp_path)
    return tmp_path
