"""A third-party quantizer found through the `lfq_kit.quantizers` entry point and trained from YAML.

The example plugin package (examples/quantizer_plugin) is "installed" the way pip would: a .dist-info
folder with its entry_points.txt on the path of a fresh `lfq-kit` process.
"""

import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_SRC = ROOT / "examples" / "quantizer_plugin" / "src"
HELPERS = Path(__file__).parent / "helpers"


def install_plugin_metadata(site: Path) -> None:
    dist = site / "lfq_ternary-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: lfq-ternary\nVersion: 0.1.0\n")
    # the same entry point as examples/quantizer_plugin/pyproject.toml declares
    pyproject = (ROOT / "examples" / "quantizer_plugin" / "pyproject.toml").read_text()
    assert 'ternary = "lfq_ternary:TernaryQuantizer"' in pyproject
    (dist / "entry_points.txt").write_text("[lfq_kit.quantizers]\nternary = lfq_ternary:TernaryQuantizer\n")


def test_plugin_quantizer_trains_from_yaml_by_short_name(tmp_path):
    site = tmp_path / "site"
    install_plugin_metadata(site)
    config = tmp_path / "plugin.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": {
                    "class_path": "toy.ToyAutoencoder",
                    "init_args": {"quantizer": {"class_path": "TernaryQuantizer", "init_args": {"dim": 4}}},
                },
                "data": {"class_path": "toy.ToyData"},
                "trainer": {
                    "max_steps": 3,
                    "logger": False,
                    "accelerator": "cpu",
                    "enable_progress_bar": False,
                    "default_root_dir": str(tmp_path / "run"),
                },
            }
        )
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(map(str, [site, PLUGIN_SRC, HELPERS])))
    listed = subprocess.run(["lfq-kit", "list", "quantizers"], env=env, capture_output=True, text=True, timeout=120)
    assert "TernaryQuantizer         lfq_ternary.TernaryQuantizer" in listed.stdout, listed.stderr

    run = subprocess.run(["lfq-kit", "fit", "-c", str(config)], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    ckpts = list((tmp_path / "run").rglob("*.ckpt"))
    assert len(ckpts) == 1 and "step=3" in ckpts[0].name
    state = torch.load(ckpts[0], weights_only=False)
    assert state["hyper_parameters"]["quantizer"]["class_path"] == "lfq_ternary.TernaryQuantizer"


def test_ternary_example_keeps_the_contract():
    sys.path.insert(0, str(PLUGIN_SRC))
    try:
        from lfq_ternary import TernaryQuantizer
    finally:
        sys.path.remove(str(PLUGIN_SRC))
    q = TernaryQuantizer(dim=3).eval()
    z = torch.tensor([[-2.0, 0.2, 0.9]]).T.unsqueeze(0)  # codes (−1, 0, +1): digits (0, 1, 2)
    out = q(z)
    assert out.indices.item() == 0 * 1 + 1 * 3 + 2 * 9
    assert torch.equal(q.indices_to_codes(out.indices), out.quantized)
