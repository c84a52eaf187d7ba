"""Every command in README.md and docs/ runs: each line of a bash block, each `$ ` line of a console block
(continuation lines joined, leading `VAR=value` assignments dropped), and every python block.

- `pip install` steps are what CI itself runs (`.ci/run`), and `pytest` is this run; both are skipped here.
  `ruff` lines run as they are, in the repository root.
- Trainer commands (`fit`, `validate`, `test`, `predict`) get `--trainer.fast_dev_run=1` (one batch), so a
  documented training command is checked in seconds. The configs they name must exist.
- A trainer command whose data root or checkpoint is not on this machine (`/data/ucf101`, `runs/.../last.ckpt`)
  is parsed and validated with `--print_config` (every class_path and option resolved; a typo fails), then
  skipped, saying which path is missing. The configs themselves train on miniature trees in tests/test_configs.py.
- `python tests/benchmarks/*.py` lines are benchmarks of minutes, run by hand (docs/benchmarks.md): the script
  must exist and compile, then the case is skipped.
- A `bash chain` block is a pipeline whose commands read what the earlier ones wrote (the quickstart tokenizer,
  then the masked LM on its tokens, then generation): its commands run in order, in a fresh folder holding only
  `configs/`, as on a fresh clone, with `fit` shortened to 2 steps and one validation batch so that each writes
  its checkpoints to the fixed paths the next command reads; `test` runs two batches, `predict` two batches per
  loader (token shards of a few clips per split); compression commands take a short slice (`SHORTENED`). Files a
  user downloads by hand (released checkpoints, a dataset folder) and a chain names are made first as tiny
  stand-ins by the builders of `CHAIN_INPUTS` (same layout, tiny sizes); a command naming a config of
  `CHAIN_SIZES` gets that config's size overrides, which fit it to its stand-in (a full-size config would train
  ViT-B on 224 × 224 clips).
"""

import py_compile
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from dataset_trees import build_image_folder
from open_magvit2_files import imagenet_256_stand_in, ucf101_stand_in
from tiny_videomae import CHAIN_OVERRIDES, build_tiny_kinetics, build_tiny_videomae_base
from workdir import fresh_workdir

from lfq_kit.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
CHAIN = re.compile(r"^```bash chain\n(.*?)^```", re.S | re.M)
SHORT_FIT = [
    "--trainer.max_steps=2",
    "--trainer.val_check_interval=2",
    "--trainer.limit_val_batches=1",
    "--trainer.max_time=null",
    "--trainer.enable_progress_bar=false",
]
SHORT_TEST = ["--trainer.limit_test_batches=2", "--trainer.enable_progress_bar=false"]
SHORT_PREDICT = ["--trainer.limit_predict_batches=2", "--trainer.enable_progress_bar=false"]
# Compression commands in chains: a 17-frame slice, back-to-back prior chunks, 2 masked-LM coding steps and one
# H.264 point (the documented figures come from the commands as written; docs/compression.md).
SHORT_COMPRESS = ["--mlm-steps", "2"]
SHORT_FIT_PRIOR = ["--stride", "17"]
SHORT_RD = ["--frames", "17", "--mlm-steps", "2", "--codecs", "h264", "--crf-h264", "38"]
SHORTENED = {
    "fit": SHORT_FIT,
    "test": SHORT_TEST,
    "predict": SHORT_PREDICT,
    "compress": SHORT_COMPRESS,
    "fit-prior": SHORT_FIT_PRIOR,
    "rd": SHORT_RD,
}
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=")
# What a chain reads that the user downloads by hand: relative path → builder(path) of a tiny stand-in.
CHAIN_INPUTS = {
    "downloads/imagenet_256_L.ckpt": imagenet_256_stand_in,  # Open-MAGVIT2 (docs/pretrained.md)
    "downloads/video_128_262144.ckpt": ucf101_stand_in,
    "downloads/imagenet": build_image_folder,
    "downloads/videomae-base": build_tiny_videomae_base,  # VideoMAE (docs/pretrained.md)
    "data/kinetics400": build_tiny_kinetics,
}
# Configs that a chain runs on a stand-in of another size: config → overrides for its fit / test commands.
CHAIN_SIZES = {"configs/kinetics_finetune_videomae.yaml": CHAIN_OVERRIDES}
TRAINER_COMMANDS = ("fit", "validate", "test", "predict")


def blocks(*langs: str):
    for doc in DOCS:
        for match in FENCE.finditer(doc.read_text()):
            if match.group(1) in langs:
                yield doc, match.group(1), match.group(2)


def command_lines(lang: str, block: str) -> list[str]:
    """The commands of a block: every line of a bash block, the `$ ` lines of a console block (the rest is
    output), with backslash-continued lines joined."""
    lines = block.replace("\\\n", " ").splitlines()
    return lines if lang == "bash" else [line[2:] for line in lines if line.startswith("$ ")]


def commands():
    for doc, lang, block in blocks("bash", "console"):
        for line in command_lines(lang, block):
            for part in line.split("&&"):
                argv = shlex.split(part, comments=True)
                while argv and ENV_ASSIGNMENT.match(argv[0]):
                    argv = argv[1:]
                if argv and argv[0] not in ("pip", "pytest"):
                    yield pytest.param(doc.name, argv, id=f"{doc.name}: {' '.join(argv)}")


def _exit_code(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as exit_:
        return exit_.code or 0


def _missing_paths(args: list[str], capsys) -> list[str]:
    """Parse and validate a trainer command (`--print_config`), and return the data root and checkpoint it names
    that do not exist here."""
    capsys.readouterr()
    assert _exit_code([*args, "--print_config"]) == 0, capsys.readouterr().err[-3000:]
    resolved = yaml.safe_load(capsys.readouterr().out)
    root = ((resolved.get("data") or {}).get("init_args") or {}).get("root")
    ckpt = resolved.get("ckpt_path")
    if ckpt in ("last", "best", "hpc", "registry"):  # Lightning's names, resolved by the Trainer (none: from scratch)
        ckpt = None
    return [str(p) for p in (root, ckpt) if p is not None and not Path(p).exists()]


def test_the_command_lines_are_found():
    found = [" ".join(p.values[1]) for p in commands()]
    assert "lfq-kit fit --config configs/quickstart.yaml" in found  # README, bash
    assert "lfq-kit fit --config configs/ucf101.yaml --data.init_args.root /data/ucf101" in found  # console
    assert any(c.startswith("python tests/benchmarks/bench_data.py") for c in found)  # OMP_NUM_THREADS=1 dropped
    assert any(
        c.endswith("--data.init_args.val_annotations annotations/validate.csv --data.init_args.val_dir validate")
        for c in found
    )  # a continued line


@pytest.mark.parametrize("doc, argv", list(commands()))
def test_documented_command_runs(doc, argv, tmp_path, monkeypatch, capsys):
    fresh_workdir(tmp_path, monkeypatch)  # as on a fresh clone: relative runs/ paths land in tmp_path
    if argv[:3] == ["python", "-m", "lfq_kit"]:
        argv = ["lfq-kit", *argv[3:]]
    if argv[0] == "python" and len(argv) > 1 and argv[1].startswith("tests/benchmarks/"):
        assert (ROOT / argv[1]).is_file(), f"{doc}: {argv[1]} does not exist"
        py_compile.compile(str(ROOT / argv[1]), doraise=True)
        pytest.skip(f"{argv[1]}: tests/benchmarks/ scripts run by hand (minutes); it exists and compiles")
    if argv[0] == "ruff":
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{doc}: {' '.join(argv)}\n{done.stdout}{done.stderr}"
        return
    assert argv[0] == "lfq-kit", f"{doc}: documented command {argv} is not an lfq-kit command; test it"
    args = argv[1:]
    asks_help = any(a in ("-h", "--help") or a.endswith(".help") for a in args)
    if args[:1] and args[0] in TRAINER_COMMANDS and not asks_help:
        for flag, value in zip(args, args[1:]):
            if flag in ("--config", "-c"):
                assert (ROOT / value).is_file(), f"{doc}: {value} does not exist"
        missing = _missing_paths(args, capsys)
        if missing:
            pytest.skip(f"parsed and validated (--print_config); not run: {', '.join(missing)} not on this machine")
        args += ["--trainer.fast_dev_run=1", f"--trainer.default_root_dir={tmp_path}"]
    assert _exit_code(args) == 0


PYTHON_BLOCKS = [pytest.param(d.name, c, id=f"{d.name}:{i}") for i, (d, _, c) in enumerate(blocks("python"))]


@pytest.mark.parametrize("doc, code", PYTHON_BLOCKS)
def test_documented_python_runs(doc, code, monkeypatch):
    monkeypatch.chdir(ROOT)
    exec(compile(code, doc, "exec"), {})


CHAINS = [
    pytest.param(doc, match.group(1), id=f"{doc.name}:chain{i}")
    for doc in DOCS
    for i, match in enumerate(CHAIN.finditer(doc.read_text()))
]


@pytest.mark.parametrize("doc, block", CHAINS)
def test_documented_chain_runs(doc, block, tmp_path, monkeypatch):
    fresh_workdir(tmp_path, monkeypatch)  # relative runs/ paths land here, as in a fresh clone
    for line in command_lines("bash", block):
        argv = shlex.split(line, comments=True)
        if not argv:
            continue
        assert argv[0] == "lfq-kit", f"{doc.name}: chained command {argv} is not an lfq-kit command"
        for arg in argv[1:]:
            path = arg.split("=", 1)[-1]
            if path in CHAIN_INPUTS and not (tmp_path / path).exists():
                CHAIN_INPUTS[path](tmp_path / path)
        args = argv[1:] + SHORTENED.get(argv[1] if len(argv) > 1 else "", [])
        args += [a for config, sizes in CHAIN_SIZES.items() if config in argv for a in sizes]
        assert _exit_code(args) == 0, f"{doc.name}: {line}"


def test_every_chain_input_stand_in_is_read_by_a_chain():
    chained = " ".join(block for _, block in (p.values for p in CHAINS))
    assert [path for path in CHAIN_INPUTS if path not in chained] == []
