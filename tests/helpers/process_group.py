"""A pytest fixture: a one-process gloo group, and Lightning told it runs distributed, so it warns about unsynced
epoch-level logs (and syncs through the strategy's reduce) exactly as on several ranks, without spawning any."""

import tempfile

import pytest
import torch.distributed as dist
from lightning.pytorch.trainer.connectors.accelerator_connector import _AcceleratorConnector
from lightning.pytorch.trainer.connectors.logger_connector import result


@pytest.fixture
def process_group(tmp_path, monkeypatch):
    monkeypatch.setattr(_AcceleratorConnector, "is_distributed", property(lambda self: True))
    dist.init_process_group("gloo", init_method=f"file://{tempfile.mktemp(dir=tmp_path)}", rank=0, world_size=1)
    result.warning_cache.clear()  # the warning is emitted once per process and message
    yield
    dist.destroy_process_group()
