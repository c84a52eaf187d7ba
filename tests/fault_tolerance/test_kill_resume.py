"""A real ``lfq-kit fit`` subprocess SIGKILLed at a random step, and one killed in the middle of writing a checkpoint,
resume with ``--ckpt_path last`` and finish exactly as the run that was never interrupted: every tensor of the
final checkpoint (weights, EMA, optimizers, schedulers, LeCAM and quantizer buffers, loops' progress) equal.

The tiny tokenizer with its GAN on the real sample clips, deterministic, one checkpoint per step (see
helpers/resume_runs.py); each test runs two subprocesses (about 12 s each), the uninterrupted run is shared.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import yaml
from resume_runs import assert_same_checkpoint, kill_fit_when, load, run_fit, tokenizer_run_config

MAX_STEPS = 7


def _write_config(folder: Path, **kwargs) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "fit.yaml"
    config.write_text(yaml.safe_dump(tokenizer_run_config(folder, MAX_STEPS, **kwargs)))
    return config


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("uninterrupted")
    run_fit(_write_config(folder), cwd=folder)
    return load(folder / "checkpoints" / "last.ckpt")


def _resume_and_compare(folder: Path, config: Path, uninterrupted: dict, *extra: str) -> None:
    last = folder / "checkpoints" / "last.ckpt"
    resumed_from = load(last)["global_step"]
    assert 0 < resumed_from < uninterrupted["global_step"]  # a real resume from the middle of the run
    run_fit(config, "--ckpt_path", "last", *extra, cwd=folder)
    final = load(last)
    assert final["global_step"] == uninterrupted["global_step"]
    assert_same_checkpoint(final, uninterrupted)


def test_killed_at_a_random_step_resumes_to_the_uninterrupted_result(tmp_path, uninterrupted):
    progress = tmp_path / "progress"
    config = _write_config(
        tmp_path, extra_callbacks=[{"class_path": "fault_injection.ProgressFile", "init_args": {"path": str(progress)}}]
    )
    # Any step with a checkpoint before it; seeded so that a failure reproduces (LFQ_KIT_KILL_SEED picks others).
    seed = int(os.environ.get("LFQ_KIT_KILL_SEED", "0"))
    kill_at = random.Random(seed).randint(2, uninterrupted["global_step"] - 2)
    print(f"SIGKILL once global step {kill_at} starts (LFQ_KIT_KILL_SEED={seed})")

    def reached() -> bool:
        text = progress.read_text() if progress.exists() else ""
        return bool(text) and int(text) >= kill_at

    kill_fit_when(config, reached, cwd=tmp_path)
    _resume_and_compare(tmp_path, config, uninterrupted)


def test_killed_while_writing_a_checkpoint_leaves_no_partial_file_and_resumes_exactly(tmp_path, uninterrupted):
    marker = tmp_path / "stalled"
    stall_at = 4  # the global step whose checkpoint is cut in half (mid-epoch; one batch makes two steps)
    config = _write_config(
        tmp_path,
        plugins=[
            {
                "class_path": "fault_injection.StallingCheckpointIO",
                "init_args": {"stall_at_step": stall_at, "marker": str(marker)},
            }
        ],
    )
    kill_fit_when(config, marker.exists, cwd=tmp_path)
    checkpoints = tmp_path / "checkpoints"
    names = sorted(p.name for p in checkpoints.iterdir())
    # half a file under its temporary name only; last.ckpt still the previous, complete checkpoint
    assert names == [f".epoch=0-step={stall_at}.ckpt.partial", "epoch=0-step=2.ckpt", "last.ckpt"], names
    assert (checkpoints / names[0]).stat().st_size * 2 <= int(marker.read_text())
    assert load(checkpoints / "last.ckpt")["global_step"] == 2
    _resume_and_compare(tmp_path, config, uninterrupted, "--trainer.plugins=null")  # the default writer again
    assert not list(checkpoints.glob("*.partial"))  # the resumed run removed the killed writer's leftover
