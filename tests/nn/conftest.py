"""Tiny tensors run fastest on one thread; with several, OpenMP spin-waiting on a shared machine costs 10×."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
