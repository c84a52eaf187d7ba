"""The lfq-kit command: help, print_config, short class names, composition, errors, extra commands."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from small_quantizers import SMALL_QUANTIZERS

from lfq_kit.cli import QUICKSTART, LfqKitCLI, main
from lfq_kit.registry import QUANTIZERS, REGISTRIES

ROOT = Path(__file__).resolve().parents[1]
TRAINER = [
    "--trainer.max_steps=2",
    "--trainer.logger=false",
    "--trainer.enable_checkpointing=false",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--trainer.accelerator=cpu",
]


def toy_config(tmp_path, quantizer: str, init_args: dict, name: str = "toy.yaml"):
    path = tmp_path / name
    config = {
        "model": {
            "class_path": "toy.ToyAutoencoder",
            "init_args": {"quantizer": {"class_path": quantizer, "init_args": init_args}},
        },
        "data": {"class_path": "toy.ToyData"},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_console_script_and_module_help():
    for cmd in (["lfq-kit", "--help"], [sys.executable, "-m", "lfq_kit", "--help"]):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "fit" in out.stdout and "predict" in out.stdout and "list" in out.stdout


def test_fit_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "--model" in text and "--data" in text and "--trainer.max_steps" in text


def test_component_help_lists_quantizer_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--model.help", "toy.ToyAutoencoder"])
    text = capsys.readouterr().out
    assert "--model.quantizer" in text and "--model.optimizer" in text


@pytest.mark.parametrize("name", sorted(SMALL_QUANTIZERS))
def test_every_quantizer_trains_by_short_name(tmp_path, name):
    cfg = toy_config(tmp_path, name, SMALL_QUANTIZERS[name])
    cli = LfqKitCLI(args=["fit", "-c", str(cfg), f"--trainer.default_root_dir={tmp_path}", *TRAINER])
    assert type(cli.model.quantizer) is QUANTIZERS.get(name)
    assert cli.trainer.global_step == 2
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])


def test_print_config_resolves_short_names(tmp_path, capsys):
    cfg = toy_config(tmp_path, "LFQ", {"dim": 5})
    with pytest.raises(SystemExit):
        main(["fit", "-c", str(cfg), "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    q = printed["model"]["init_args"]["quantizer"]
    assert q["class_path"] == "lfq_kit.quantizers.LFQ"
    assert q["init_args"]["dim"] == 5 and q["init_args"]["inv_temperature"] == 100.0


def test_configs_compose_later_files_override(tmp_path, capsys):
    base = toy_config(tmp_path, "LFQ", {"dim": 5}, "base.yaml")
    override = tmp_path / "vq.yaml"
    override.write_text(
        yaml.safe_dump({"model": {"init_args": {"quantizer": {"class_path": "VQ", "init_args": {"dim": 4}}}}})
    )
    with pytest.raises(SystemExit):
        main(["fit", "-c", str(base), "-c", str(override), "--print_config"])
    q = yaml.safe_load(capsys.readouterr().out)["model"]["init_args"]["quantizer"]
    assert q["class_path"] == "lfq_kit.quantizers.VQ" and q["init_args"]["dim"] == 4


def test_resolved_config_is_saved_next_to_the_run(tmp_path):
    cfg = toy_config(tmp_path, "LFQ", {"dim": 5})
    args = ["fit", "-c", str(cfg), f"--trainer.default_root_dir={tmp_path}", *TRAINER]
    args[args.index("--trainer.logger=false")] = "--trainer.logger=true"
    cli = LfqKitCLI(args=args)
    saved = yaml.safe_load((tmp_path / "lightning_logs" / "version_0" / "config.yaml").read_text())
    assert saved["model"]["init_args"]["quantizer"]["class_path"] == "lfq_kit.quantizers.LFQ"
    assert cli.trainer.log_dir.endswith("version_0")


def test_unknown_quantizer_lists_registered_ones_once(tmp_path, capsys):
    cfg = toy_config(tmp_path, "NoSuchQuantizer", {})
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "-c", str(cfg)])
    assert exit_.value.code != 0
    err = capsys.readouterr().err
    assert "NoSuchQuantizer" in err
    assert "Registered quantizers: " + ", ".join(QUANTIZERS.names()) in err
    # regression: the nested class_path parser and the top-level one both appended the block
    assert err.count("NoSuchQuantizer: not an importable class path") == 1
    assert err.count("Registered quantizers") == err.count("Registered callbacks") == 1


@pytest.mark.parametrize("command", ["fit", "validate"])
def test_no_config_points_at_configs_and_the_quickstart(command, capsys):
    """Regression: `lfq-kit fit` alone said only "the following arguments are required: fit.model"."""
    with pytest.raises(SystemExit) as exit_:
        main([command])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"required: {command}.model" in err
    assert "configs/" in err and f"\n  {QUICKSTART}\n" in err
    assert QUICKSTART == "lfq-kit fit --config configs/quickstart.yaml" and (ROOT / "configs/quickstart.yaml").is_file()


def test_other_errors_get_no_hint(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--trainer.max_steps=many"])
    err = capsys.readouterr().err
    assert "max_steps" in err and "Registered quantizers" not in err


def _listed(out: str) -> dict[str, dict[str, str]]:
    """`lfq-kit list` output → {kind: {name: import path}}."""
    listed: dict[str, dict[str, str]] = {}
    for line in out.splitlines():
        if not line.startswith(" "):
            kind = listed.setdefault(line.rstrip(":"), {})
        else:
            name, path = line.split()
            kind[name] = path
    return listed


def test_list_command_shows_every_registry(capsys):
    assert main(["list"]) == 0
    listed = _listed(capsys.readouterr().out)
    assert list(listed) == ["quantizers", "backbones", "models", "data", "callbacks"] == list(REGISTRIES)
    for kind, registry in REGISTRIES.items():
        classes = {name: registry.get(name) for name in registry.names()}
        assert listed[kind] == {n: f"{c.__module__}.{c.__qualname__}" for n, c in classes.items()}
    assert {"LFQ", "VQ", "FSQ", "BSQ"} <= set(listed["quantizers"])
    assert listed["models"]["VideoTokenizer"] == "lfq_kit.models.tokenizer.VideoTokenizer"
    assert {"SampleClipsDataModule", "UCF101DataModule", "ImageFolderDataModule"} <= set(listed["data"])
    assert {"TokenWriter", "ReconstructionLogger", "SkippedFilesReport"} <= set(listed["callbacks"])


def test_list_command_filters(capsys):
    assert main(["list", "quantizers"]) == 0
    out = capsys.readouterr().out
    for name in SMALL_QUANTIZERS:
        assert f"  {name} " in out
    assert main(["list", "quantizers", "?Q"]) == 0
    assert _listed(capsys.readouterr().out) == {"quantizers": {"VQ": "lfq_kit.quantizers.vq.VQ"}}
    assert main(["list", "data", "*Clips*"]) == 0
    assert list(_listed(capsys.readouterr().out)["data"]) == ["SampleClipsDataModule"]
    with pytest.raises(SystemExit):
        main(["list", "widgets"])
    assert "invalid choice: 'widgets'" in capsys.readouterr().err


def test_fit_of_a_predict_only_module_names_the_predict_command(tmp_path, capsys):
    from tokenizer_checkpoint import make_tokenizer_checkpoint

    tokenizer = make_tokenizer_checkpoint(tmp_path / "tok")
    args = ["fit", "--config", str(ROOT / "configs/quickstart_tokens.yaml"), f"--model.init_args.tokenizer={tokenizer}"]
    with pytest.raises(SystemExit, match="TokenizeClips trains nothing; it only predicts: run `lfq-kit predict`"):
        main([*args, f"--trainer.default_root_dir={tmp_path}", "--trainer.logger=false"])
