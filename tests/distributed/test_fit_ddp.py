"""``lfq-kit fit`` composed with configs/strategies/ddp.yaml runs on 2 CPU processes (gloo): a tokenizer with its
GAN (two optimizers, manual optimization, ``find_unused_parameters``) trains 2 generator steps, validates and
ends with one checkpoint at global step 4."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def test_lfq_kit_fit_runs_the_ddp_recipe_on_two_cpu_processes(tmp_path):
    args = [
        sys.executable,
        "-m",
        "lfq_kit",
        "fit",
        "-c",
        str(HERE / "tiny_gan.yaml"),
        "-c",
        str(ROOT / "configs/strategies/ddp.yaml"),
        "--trainer.accelerator=cpu",
        "--trainer.devices=2",
        "--trainer.precision=32",
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Starting with 2 processes" in done.stdout + done.stderr
    checkpoints = sorted((tmp_path / "checkpoints").glob("*.ckpt"))
    assert [c.name for c in checkpoints] == ["epoch=0-step=4.ckpt"]
    state = torch.load(checkpoints[0], map_location="cpu", weights_only=False)
    assert state["global_step"] == 4
    assert len(state["optimizer_states"]) == 2  # generator and discriminator
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())
