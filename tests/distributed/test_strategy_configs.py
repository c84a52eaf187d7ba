"""configs/strategies/*.yaml compose (``-c``) with every paper model config, parse against Lightning's signatures,
and build their strategy (and, for DDP, the whole Trainer on CPU). FSDP needs GPUs in Lightning, so its Trainer
is not built here; DDP also runs on 2 CPU processes (test_fit_ddp.py)."""

from __future__ import annotations

import re
import shlex
from datetime import timedelta
from pathlib import Path

import lightning as L
import pytest
import yaml
from lightning.pytorch.cli import LightningArgumentParser
from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy
from timm.models.vision_transformer import Block

from lfq_kit.cli import LfqKitCLI
from lfq_kit.nn.res_block import ResBlock

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
MODELS = ["ucf101.yaml", "ucf101_mlm.yaml", "videomae_ucf101.yaml", "kinetics_finetune.yaml"]
STRATEGIES = {"ddp": DDPStrategy, "fsdp": FSDPStrategy, "ddp_multinode": DDPStrategy}


class ParseOnly(LfqKitCLI):
    """The lfq-kit CLI up to the parsed, validated config: nothing instantiated (no data, no weights)."""

    def instantiate_classes(self) -> None:
        pass


def parse(*configs: str, overrides: tuple[str, ...] = ()) -> dict:
    args = [a for c in configs for a in ("-c", str(CONFIGS / c))]
    cli = ParseOnly(args=[*args, *overrides], run=False)
    return yaml.safe_load(cli.parser.dump(cli.config, skip_validation=True))


def fragment(name: str) -> dict:
    return yaml.safe_load((CONFIGS / "strategies" / f"{name}.yaml").read_text())


def build(node: dict, name: str = "trainer"):
    """Instantiate a ``trainer`` node (or its ``strategy``) the way LightningCLI does."""
    parser = LightningArgumentParser()
    if name == "trainer":
        parser.add_lightning_class_args(L.Trainer, "trainer")
    else:
        parser.add_argument("--strategy", type=str | L.pytorch.strategies.Strategy)
    built = getattr(parser.instantiate(parser.parse_object({name: node})), name)
    return L.Trainer(**vars(built)) if name == "trainer" else built


def test_strategy_fragments_hold_trainer_settings_only():
    for name in STRATEGIES:
        assert list(fragment(name)) == ["trainer"], name
        assert fragment(name)["trainer"]["precision"] == "bf16-mixed"


@pytest.mark.parametrize("strategy", list(STRATEGIES))
@pytest.mark.parametrize("model", MODELS)
def test_strategy_composes_with_model_config(model, strategy):
    alone = parse(model)
    composed = parse(model, f"strategies/{strategy}.yaml")
    assert composed["model"] == alone["model"] and composed["data"] == alone["data"]
    ours = fragment(strategy)["trainer"]
    for key, value in composed["trainer"].items():  # the fragment's keys win, the model config keeps the rest
        if key == "strategy":
            assert value["class_path"] == f"lightning.pytorch.strategies.{STRATEGIES[strategy].__name__}"
        elif key in ours:
            assert value == ours[key], key
        else:
            assert value == alone["trainer"][key], key


@pytest.mark.parametrize("strategy", ["ddp", "ddp_multinode"])
def test_ddp_trainer_is_instantiated_on_cpu(strategy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    node = parse("ucf101.yaml", f"strategies/{strategy}.yaml", overrides=("--trainer.accelerator=cpu",))["trainer"]
    trainer = build(node)
    assert isinstance(trainer.strategy, DDPStrategy)
    assert trainer.strategy._ddp_kwargs["find_unused_parameters"] is True
    assert trainer.num_nodes == fragment(strategy)["trainer"]["num_nodes"]
    assert trainer.precision == "bf16-mixed"
    if strategy == "ddp_multinode":
        assert trainer.num_devices == 8
        assert trainer.strategy._process_group_backend == "nccl"
        assert trainer.strategy._timeout == timedelta(minutes=30)


def test_fsdp_strategy_wraps_and_checkpoints_the_big_blocks():
    strategy = build(fragment("fsdp")["trainer"]["strategy"], "strategy")
    assert isinstance(strategy, FSDPStrategy)
    for policy in (strategy.kwargs["auto_wrap_policy"], strategy._activation_checkpointing_kwargs["auto_wrap_policy"]):
        assert policy._module_classes == {Block, ResBlock}
    assert strategy._state_dict_type == "full"
    assert fragment("fsdp")["trainer"]["gradient_clip_val"] is None  # Lightning's FSDP refuses norm clipping


def _launch_commands() -> list[list[str]]:
    """The ``lfq-kit`` arguments of every launch line in docs/scaling.md's ``sh`` blocks (plain, after ``srun``,
    or after torchrun's ``$(which lfq-kit)``); line continuations joined."""
    text = (ROOT / "docs" / "scaling.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    commands = []
    for line in "\n".join(blocks).replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        for i, word in enumerate(words[:-1]):
            if word in ("lfq-kit", "lfq-kit)") and words[i + 1] == "fit":
                commands.append(words[i + 2 :])
    return commands


def test_every_launch_line_of_the_scaling_docs_parses():
    """GPUs, SLURM and torchrun are not here: each documented ``lfq-kit fit`` parses and validates instead."""
    commands = _launch_commands()
    assert len(commands) == 3, commands  # one machine, SLURM, torchrun
    for args in commands:
        configs = [a.removeprefix("configs/") for a, flag in zip(args[1:], args) if flag == "-c"]
        overrides = [a for a, flag in zip(args, ["", *args]) if a != "-c" and flag != "-c"]
        assert configs and configs[0] == "ucf101.yaml", args
        parsed = parse(*configs, overrides=tuple(overrides))
        assert parsed["data"]["init_args"]["root"] == "/data/ucf101"
        assert parsed["trainer"]["strategy"]["class_path"] == "lightning.pytorch.strategies.DDPStrategy"
