"""Every command in README.md and docs/ runs: `lfq-kit` lines in bash blocks, and every python block.

`pip install` steps are what CI itself runs (`.ci/run`), and `pytest` is this run; both are skipped here.
`fit` commands get `--trainer.fast_dev_run=1` so a documented training command is checked in seconds.
"""

import re
import shlex
from pathlib import Path

import pytest

from lfq_kit.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(lang: str):
    for doc in DOCS:
        for match in FENCE.finditer(doc.read_text()):
            if match.group(1) == lang:
                yield doc, match.group(2)


def commands():
    for doc, block in blocks("bash"):
        for line in block.splitlines():
            for part in line.split("&&"):
                argv = shlex.split(part, comments=True)
                if argv and argv[0] not in ("pip", "pytest"):
                    yield pytest.param(doc.name, argv, id=f"{doc.name}: {' '.join(argv)}")


@pytest.mark.parametrize("doc, argv", list(commands()))
def test_documented_command_runs(doc, argv, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    if argv[:3] == ["python", "-m", "lfq_kit"]:
        argv = ["lfq-kit", *argv[3:]]
    assert argv[0] == "lfq-kit", f"{doc}: documented command {argv} is not an lfq-kit command; test it"
    args = argv[1:]
    if args[:1] == ["fit"]:
        for flag in ("--config", "-c"):
            if flag in args and not (ROOT / args[args.index(flag) + 1]).exists():
                pytest.skip(f"{args[args.index(flag) + 1]} does not exist yet (see the README note)")
        args += ["--trainer.fast_dev_run=1", f"--trainer.default_root_dir={tmp_path}"]
    try:
        code = main(args)
    except SystemExit as exit_:
        code = exit_.code or 0
    assert code == 0


@pytest.mark.parametrize("doc, code", [pytest.param(d.name, c, id=f"{d.name}:{i}") for i, (d, c) in enumerate(blocks("python"))])
def test_documented_python_runs(doc, code, monkeypatch):
    monkeypatch.chdir(ROOT)
    exec(compile(code, doc, "exec"), {})
