"""Every dataset DataModule is built by LightningCLI from its short class name and typed arguments (as the
commands in docs/data.md do), with num_classes known before any data is loaded."""

import pytest

from lfq_kit.cli import LfqKitCLI
from lfq_kit.data import (
    HMDB51DataModule,
    ImageFolderDataModule,
    KineticsDataModule,
    SomethingSomethingV2DataModule,
)

CASES = {
    "kinetics": (KineticsDataModule, ["--data.class_list=classes.txt", "--data.annotation_format=csv"], 3),
    "hmdb": (HMDB51DataModule, ["--data.fold=2"], 3),
    "ssv2": (SomethingSomethingV2DataModule, [], 3),
    "image": (ImageFolderDataModule, ["--data.crop_scale=[0.08, 1.0]"], 3),
}


@pytest.mark.parametrize("dataset", list(CASES))
def test_cli_builds_the_datamodule(dataset, request, tmp_path):
    tree = request.getfixturevalue(f"{dataset}_tree")
    cls, extra, num_classes = CASES[dataset]
    cli = LfqKitCLI(
        args=[
            "--model=video_fixtures.TinyVideoAutoencoder",
            f"--data={cls.__name__}",
            f"--data.root={tree.root}",
            "--data.batch_size=2",
            "--trainer.logger=false",
            f"--trainer.default_root_dir={tmp_path}",
            *extra,
        ],
        run=False,
    )
    assert type(cli.datamodule) is cls and cli.datamodule.num_classes == num_classes
    assert cli.datamodule.batch_size == 2
    if dataset == "image":
        assert cli.datamodule.crop_scale == (0.08, 1.0)
    if dataset == "ssv2":
        assert cli.datamodule.random_flip is False
